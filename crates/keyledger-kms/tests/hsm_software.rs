//! The software HSM: the backend-agnostic conformance suite
//! (`keyledger_kms::conformance`), one `#[test]` per check, plus what
//! only the software HSM shows: nothing survives a restart (a new
//! `SoftwareHsm` is sealed until the key owners resubmit their parts), the
//! cipher cache stays bounded and is not needed for correctness, and it
//! holds no signing keys (the ledger key of a software instance is a file).

mod common;

use std::sync::OnceLock;

use keyledger_kms::conformance;
use keyledger_kms::hsm::prelude::*;
use keyledger_kms::hsm::software::{SoftwareHsm, envelope};
use keyledger_kms::hsm::{HsmError, ceremony};
use keyledger_kms::secret::SecretBytes;

/// One backend shared by all checks, as a service would have it.
fn hsm() -> &'static SoftwareHsm {
    static HSM: OnceLock<SoftwareHsm> = OnceLock::new();
    HSM.get_or_init(SoftwareHsm::new)
}

keyledger_kms::hsm_conformance_tests!(hsm);

#[test]
fn every_check_is_listed() {
    // `check_all` runs the same list; a check added there must be added above.
    assert_eq!(conformance::CHECKS.len(), 20);
}

#[test]
fn signing_is_not_offered() {
    // Nothing survives a restart, so no ledger key could: the conformance
    // signing checks assert that every signing call is `Unsupported`.
    assert!(!hsm().supports_signing());
    let err = hsm()
        .generate_signing_key("acme", "ledger")
        .expect_err("unsupported");
    assert!(err.to_string().contains("key file"), "{err}");
}

#[test]
fn whole_suite_without_the_cipher_cache() {
    conformance::check_all(&SoftwareHsm::with_cache_capacity(0));
}

#[test]
fn restart_seals_every_instance_until_the_same_parts_are_resubmitted() {
    let inst = conformance::instance("restart");
    let parts = vec![conformance::random_part(), conformance::random_part()];
    let b = conformance::binding(&inst, "root", 1, 1);
    let dek = SecretBytes::random(32).expect("rng");
    let (vp, wrapped, ct) = {
        let before = SoftwareHsm::new();
        let vp = conformance::load_master_key(&before, &inst, 1, &parts);
        let wrapped = before.generate_key(&b, 32).expect("generate").wrapped;
        let ct = before.encrypt(&b, &wrapped, &dek, b"aad").expect("encrypt");
        (vp, wrapped, ct)
    }; // the process "exits": every key is dropped and zeroized

    let after = SoftwareHsm::new();
    assert_eq!(
        after.master_key_status(&inst).expect("status"),
        Default::default()
    );
    assert_eq!(
        after.decrypt(&b, &wrapped, &ct, b"aad").err(),
        Some(HsmError::Sealed(inst.clone()))
    );
    // Key owners seal to the new process's ceremony key (the old one is gone).
    assert_eq!(conformance::load_master_key(&after, &inst, 1, &parts), vp);
    assert_eq!(
        after.decrypt(&b, &wrapped, &ct, b"aad").expect("decrypt"),
        dek
    );
}

#[test]
fn a_part_sealed_to_a_previous_process_does_not_load() {
    let inst = conformance::instance("old-key");
    let part = conformance::random_part();
    let old_public = SoftwareHsm::new()
        .ceremony_public_key(&inst, 1)
        .expect("key");
    let sealed = ceremony::seal_part(&old_public, &inst, 1, "alice", &part).expect("seal");
    let now = SoftwareHsm::new();
    now.ceremony_public_key(&inst, 1).expect("key");
    assert_eq!(
        now.load_part(&inst, 1, "alice", &sealed),
        Err(HsmError::BadPart)
    );
}

#[test]
fn cipher_cache_is_bounded_and_purged() {
    let hsm = SoftwareHsm::with_cache_capacity(64);
    let (inst, _) = conformance::ready_instance(&hsm, "cache");
    let dek = SecretBytes::random(32).expect("rng");
    let keys: Vec<_> = (0..300)
        .map(|i| {
            let b = conformance::binding(&inst, &format!("k{i}"), 1, 1);
            let w = hsm.generate_key(&b, 32).expect("generate").wrapped;
            (b, w)
        })
        .collect();
    for (b, w) in &keys {
        let ct = hsm.encrypt(b, w, &dek, b"").expect("encrypt");
        assert_eq!(hsm.decrypt(b, w, &ct, b"").expect("decrypt"), dek);
    }
    assert!(
        hsm.cached_ciphers() <= 64 + 16,
        "{} cached",
        hsm.cached_ciphers()
    );
    assert!(hsm.cached_ciphers() > 0);
    hsm.zeroize(&inst).expect("zeroize");
    assert_eq!(hsm.cached_ciphers(), 0);
}

#[test]
fn material_that_is_not_an_aes_key_is_refused_for_encryption() {
    let hsm = SoftwareHsm::new();
    let (inst, _) = conformance::ready_instance(&hsm, "payload");
    let b = conformance::binding(&inst, "std", 1, 1);
    let payload = SecretBytes::from_slice(b"a standard key payload of odd length");
    let new = hsm.import_key(&b, &payload).expect("import");
    assert_eq!(new.kcv, ceremony::kcv(payload.expose()));
    assert_eq!(hsm.export_key(&b, &new.wrapped).expect("export"), payload);
    let dek = SecretBytes::random(32).expect("rng");
    assert!(matches!(
        hsm.encrypt(&b, &new.wrapped, &dek, b""),
        Err(HsmError::Invalid(_))
    ));
    assert!(matches!(hsm.generate_key(&b, 0), Err(HsmError::Invalid(_))));
    assert!(matches!(
        hsm.generate_key(&b, 8193),
        Err(HsmError::Invalid(_))
    ));
}

#[test]
fn wrapped_material_layout_is_nonce_ciphertext_tag_under_the_binding_aad() {
    let hsm = SoftwareHsm::new();
    let (inst, _) = conformance::ready_instance(&hsm, "layout");
    let b = conformance::binding(&inst, "k", 1, 1);
    let new = hsm.generate_key(&b, 32).expect("generate");
    assert_eq!(
        new.wrapped.blob.len(),
        envelope::NONCE_LEN + 32 + envelope::TAG_LEN
    );
}

#[test]
fn nothing_secret_in_debug_output() {
    let hsm = SoftwareHsm::new();
    let (inst, parts) = conformance::ready_instance(&hsm, "debug");
    let b = conformance::binding(&inst, "k", 1, 1);
    let material = SecretBytes::from_slice(&[0x5a; 32]);
    hsm.import_key(&b, &material).expect("import");
    let text = format!("{hsm:?} {material:?} {:?}", parts);
    assert!(!text.contains("5a5a"), "{text}");
    for p in &parts {
        assert!(!text.contains(&hex::encode(p.expose())));
    }
    let key = ceremony::CeremonyKey::generate().expect("key");
    assert!(format!("{key:?}").contains("[redacted]"));
}
