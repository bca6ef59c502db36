//! The HSM conformance suite: the behaviour of the three HSM capabilities
//! ([`MasterKeyCeremony`](crate::hsm::MasterKeyCeremony),
//! [`KeyCrypto`](crate::hsm::KeyCrypto),
//! [`LedgerSigning`](crate::hsm::LedgerSigning)) that the key service and
//! the ledger rely on, as checks every backend must pass (compiled with the
//! `conformance` feature; the software and PKCS#11 backends run it from
//! `tests/hsm_software.rs` and `tests/hsm_pkcs11.rs`, as the store
//! conformance suite of `keyledger_ledger` is run per store backend).
//!
//! Either
//!
//! - `keyledger_kms::hsm_conformance_tests!(hsm);` in a test file, where
//!   `hsm()` returns the backend under test (shared by every check),
//!   generates one `#[test]` per check, named after it; or
//! - [`check_all`]`(&backend)` runs every check in one test.
//!
//! Only the traits and the pure `ceremony` functions are used. Every check
//! works on instances of its own with a random suffix, so checks may run
//! concurrently against one shared backend (and one persistent token). A
//! backend without the signing capability passes the signing checks by
//! refusing every signing call with `HsmError::Unsupported`.
//! Backend-specific behaviour (restarts, token attributes, caches) is
//! tested by the backend itself, not here.
//!
//! [`material_store`] is the same for the key-material store
//! ([`KeyMaterialStore`](crate::material::KeyMaterialStore)):
//! `keyledger_kms::material_store_conformance_tests!(fresh);`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod material;
pub mod material_store;
mod signing;
pub use material::*;
pub use signing::*;

use crate::hsm::{
    HsmBackend, HsmError, KeyBinding, MasterKeyStatus, NewRegister, SealedPart, ceremony,
};
use crate::secret::SecretBytes;

/// One conformance check.
pub type Check = fn(&dyn HsmBackend);

/// Every check, by name, for backends that run them in one test.
pub const CHECKS: &[(&str, Check)] = &[
    ("check_full_ceremony", check_full_ceremony),
    (
        "check_commit_needs_enough_parts",
        check_commit_needs_enough_parts,
    ),
    (
        "check_bad_parts_refused_without_state_change",
        check_bad_parts_refused_without_state_change,
    ),
    (
        "check_activate_before_commit_refused",
        check_activate_before_commit_refused,
    ),
    ("check_discard_new", check_discard_new),
    (
        "check_sealed_instance_refuses_key_operations",
        check_sealed_instance_refuses_key_operations,
    ),
    (
        "check_generate_import_export_and_kcv",
        check_generate_import_export_and_kcv,
    ),
    (
        "check_encrypt_decrypt_round_trip",
        check_encrypt_decrypt_round_trip,
    ),
    (
        "check_envelope_tampering_fails_closed",
        check_envelope_tampering_fails_closed,
    ),
    (
        "check_other_aad_binding_instance_generation_fail",
        check_other_aad_binding_instance_generation_fail,
    ),
    ("check_master_key_rotation", check_master_key_rotation),
    ("check_zeroize_and_reload", check_zeroize_and_reload),
    ("check_instance_isolation", check_instance_isolation),
    ("check_concurrency", check_concurrency),
    ("check_random", check_random),
    ("check_signing_round_trip", check_signing_round_trip),
    ("check_signing_refusals", check_signing_refusals),
    ("check_signing_key_isolation", check_signing_key_isolation),
    ("check_signing_key_destroy", check_signing_key_destroy),
    ("check_signing_concurrency", check_signing_concurrency),
];

pub fn check_all(hsm: &dyn HsmBackend) {
    for (name, check) in CHECKS {
        eprintln!("hsm conformance: {name}");
        check(hsm);
    }
}

// ---- helpers ----

/// A fresh instance name for one check.
pub fn instance(tag: &str) -> String {
    let suffix = SecretBytes::random(6).expect("rng");
    format!("conf-{tag}-{}", hex::encode(suffix.expose()))
}

pub fn random_part() -> SecretBytes {
    SecretBytes::random(32).expect("rng")
}

pub fn binding(instance: &str, key_id: &str, version: u32, generation: u32) -> KeyBinding {
    KeyBinding {
        instance: instance.into(),
        key_id: key_id.into(),
        version,
        mk_generation: generation,
    }
}

pub(crate) fn seal(
    hsm: &dyn HsmBackend,
    instance: &str,
    generation: u32,
    owner: &str,
    part: &SecretBytes,
) -> SealedPart {
    let public = hsm
        .ceremony_public_key(instance, generation)
        .expect("ceremony public key");
    ceremony::seal_part(&public, instance, generation, owner, part).expect("seal part")
}

/// Loads `parts` (owners `owner-0`, `owner-1`, ...) for `generation`,
/// commits and activates; checks and returns the master key's VP.
pub fn load_master_key(
    hsm: &dyn HsmBackend,
    instance: &str,
    generation: u32,
    parts: &[SecretBytes],
) -> String {
    for (i, part) in parts.iter().enumerate() {
        let owner = format!("owner-{i}");
        let sealed = seal(hsm, instance, generation, &owner, part);
        let vp = hsm
            .load_part(instance, generation, &owner, &sealed)
            .expect("load part");
        assert_eq!(vp, ceremony::part_verification_pattern(part), "part VP");
    }
    let vp = hsm.commit(instance, generation, 2).expect("commit");
    let mk = ceremony::combine_parts(parts).expect("combine");
    assert_eq!(
        vp,
        ceremony::master_key_verification_pattern(&mk),
        "master key VP"
    );
    hsm.activate(instance, generation).expect("activate");
    vp
}

/// A fresh instance with master key generation 1 from two random parts.
pub fn ready_instance(hsm: &dyn HsmBackend, tag: &str) -> (String, Vec<SecretBytes>) {
    let name = instance(tag);
    let parts = vec![random_part(), random_part()];
    load_master_key(hsm, &name, 1, &parts);
    (name, parts)
}

pub(crate) fn status(hsm: &dyn HsmBackend, instance: &str) -> MasterKeyStatus {
    hsm.master_key_status(instance).expect("status")
}

pub(crate) fn dek() -> SecretBytes {
    SecretBytes::random(32).expect("rng")
}

// ---- ceremony ----

pub fn check_full_ceremony(hsm: &dyn HsmBackend) {
    let inst = instance("ceremony");
    assert_eq!(status(hsm, &inst), MasterKeyStatus::default());
    let public = hsm.ceremony_public_key(&inst, 1).expect("ceremony key");
    assert_eq!(
        hsm.ceremony_public_key(&inst, 1).expect("again"),
        public,
        "stable until activated"
    );
    let parts = [random_part(), random_part(), random_part()];
    for (i, part) in parts.iter().enumerate() {
        let owner = format!("owner-{i}");
        let sealed = ceremony::seal_part(&public, &inst, 1, &owner, part).expect("seal");
        let vp = hsm.load_part(&inst, 1, &owner, &sealed).expect("load");
        assert_eq!(vp, ceremony::part_verification_pattern(part));
        let loaded = u8::try_from(i + 1).expect("small");
        let expected = NewRegister {
            generation: 1,
            parts_loaded: loaded,
            committed: None,
        };
        assert_eq!(status(hsm, &inst).new, Some(expected));
    }
    let vp = hsm.commit(&inst, 1, 3).expect("commit");
    let mk = ceremony::combine_parts(&parts).expect("combine");
    assert_eq!(vp, ceremony::master_key_verification_pattern(&mk));
    let st = status(hsm, &inst);
    assert_eq!(st.current, None);
    assert_eq!(st.new.expect("new register").committed, Some(vp.clone()));
    hsm.activate(&inst, 1).expect("activate");
    assert_eq!(
        status(hsm, &inst),
        MasterKeyStatus {
            current: Some((1, vp)),
            new: None
        }
    );
}

pub fn check_commit_needs_enough_parts(hsm: &dyn HsmBackend) {
    let inst = instance("parts");
    assert!(
        hsm.commit(&inst, 1, 2).is_err(),
        "commit with nothing loaded"
    );
    let p0 = random_part();
    hsm.load_part(&inst, 1, "owner-0", &seal(hsm, &inst, 1, "owner-0", &p0))
        .expect("load");
    assert_eq!(
        hsm.commit(&inst, 1, 0),
        Err(HsmError::NotEnoughParts {
            needed: 2,
            loaded: 1
        })
    );
    assert_eq!(
        hsm.commit(&inst, 1, 1),
        Err(HsmError::NotEnoughParts {
            needed: 2,
            loaded: 1
        })
    );
    let p1 = random_part();
    hsm.load_part(&inst, 1, "owner-1", &seal(hsm, &inst, 1, "owner-1", &p1))
        .expect("load");
    assert_eq!(
        hsm.commit(&inst, 1, 3),
        Err(HsmError::NotEnoughParts {
            needed: 3,
            loaded: 2
        })
    );
    assert_eq!(status(hsm, &inst).new.expect("new").committed, None);
    let vp = hsm.commit(&inst, 1, 2).expect("commit");
    let mk = ceremony::combine_parts(&[p0, p1]).expect("combine");
    assert_eq!(vp, ceremony::master_key_verification_pattern(&mk));
}

pub fn check_bad_parts_refused_without_state_change(hsm: &dyn HsmBackend) {
    let inst = instance("badpart");
    let other = instance("badpart-other");
    let p0 = random_part();
    hsm.load_part(&inst, 1, "alice", &seal(hsm, &inst, 1, "alice", &p0))
        .expect("load");
    let before = status(hsm, &inst);
    let public = hsm.ceremony_public_key(&inst, 1).expect("key");
    let other_public = hsm.ceremony_public_key(&other, 1).expect("other key");
    let part = random_part();

    // The same owner again, even with a good part.
    let again = ceremony::seal_part(&public, &inst, 1, "alice", &part).expect("seal");
    assert_eq!(
        hsm.load_part(&inst, 1, "alice", &again),
        Err(HsmError::DuplicatePart("alice".into()))
    );

    let good = ceremony::seal_part(&public, &inst, 1, "bob", &part).expect("seal");
    let mut bad = Vec::new();
    for i in 0..good.ciphertext.len() {
        let mut s = good.clone();
        s.ciphertext[i] ^= 0x01;
        bad.push(("ciphertext byte", s));
    }
    for i in 0..good.enc.len() {
        let mut s = good.clone();
        s.enc[i] ^= 0x80;
        bad.push(("enc byte", s));
    }
    let mut s = good.clone();
    s.enc.pop();
    bad.push(("short enc", s));
    let mut s = good.clone();
    s.ciphertext.pop();
    bad.push(("short ciphertext", s));
    bad.push((
        "empty",
        SealedPart {
            enc: vec![],
            ciphertext: vec![],
        },
    ));
    let seal_for = |pk: &[u8; 32], i: &str, g: u32, o: &str| {
        ceremony::seal_part(pk, i, g, o, &part).expect("seal")
    };
    bad.push((
        "sealed for another owner",
        seal_for(&public, &inst, 1, "carol"),
    ));
    bad.push((
        "sealed for another instance",
        seal_for(&public, &other, 1, "bob"),
    ));
    bad.push((
        "sealed for another generation",
        seal_for(&public, &inst, 2, "bob"),
    ));
    bad.push((
        "sealed to another instance's key",
        seal_for(&other_public, &inst, 1, "bob"),
    ));
    for (what, sealed) in &bad {
        assert_eq!(
            hsm.load_part(&inst, 1, "bob", sealed),
            Err(HsmError::BadPart),
            "{what}"
        );
        assert_eq!(status(hsm, &inst), before, "state changed by: {what}");
    }
    // A part sealed for `inst` does not load into `other`.
    assert_eq!(
        hsm.load_part(&other, 1, "bob", &good),
        Err(HsmError::BadPart)
    );
    assert_eq!(status(hsm, &other).new, None);
    // A part identical to a loaded one would cancel it out: refused at load or at commit.
    let twin = ceremony::seal_part(&public, &inst, 1, "dave", &p0).expect("seal");
    if hsm.load_part(&inst, 1, "dave", &twin).is_ok() {
        assert!(
            hsm.commit(&inst, 1, 2).is_err(),
            "identical parts must not commit"
        );
    } else {
        assert_eq!(status(hsm, &inst), before);
    }
    // The good one still loads.
    let fresh = ceremony::seal_part(&public, &inst, 1, "erin", &random_part()).expect("seal");
    hsm.load_part(&inst, 1, "erin", &fresh)
        .expect("good part after bad ones");
}

pub fn check_activate_before_commit_refused(hsm: &dyn HsmBackend) {
    let inst = instance("activate");
    assert!(
        matches!(hsm.activate(&inst, 1), Err(HsmError::State(_))),
        "nothing loaded"
    );
    for i in 0..2 {
        let owner = format!("owner-{i}");
        hsm.load_part(
            &inst,
            1,
            &owner,
            &seal(hsm, &inst, 1, &owner, &random_part()),
        )
        .expect("load");
    }
    let before = status(hsm, &inst);
    assert!(
        matches!(hsm.activate(&inst, 1), Err(HsmError::State(_))),
        "loaded, not committed"
    );
    assert_eq!(status(hsm, &inst), before);
    assert_eq!(status(hsm, &inst).current, None);
    let b = binding(&inst, "k", 1, 1);
    assert_eq!(
        hsm.generate_key(&b, 32).err(),
        Some(HsmError::Sealed(inst.clone()))
    );
    hsm.commit(&inst, 1, 2).expect("commit");
    hsm.activate(&inst, 1).expect("activate after commit");
    hsm.generate_key(&b, 32).expect("generate once active");
}

pub fn check_discard_new(hsm: &dyn HsmBackend) {
    let inst = instance("discard");
    hsm.load_part(
        &inst,
        1,
        "owner-0",
        &seal(hsm, &inst, 1, "owner-0", &random_part()),
    )
    .expect("load");
    hsm.discard_new(&inst).expect("discard");
    assert_eq!(status(hsm, &inst).new, None);
    // A new ceremony for the same generation starts from scratch.
    load_master_key(hsm, &inst, 1, &[random_part(), random_part()]);
}

/// One `#[test]` per conformance check against the backend `$hsm()`
/// returns, and one test that the list is [`CHECKS`](crate::conformance::CHECKS);
/// each backend's test file invokes it once.
#[macro_export]
macro_rules! hsm_conformance_tests {
    ($hsm:ident) => {
        $crate::hsm_conformance_tests!(@each $hsm;
    check_full_ceremony,
    check_commit_needs_enough_parts,
    check_bad_parts_refused_without_state_change,
    check_activate_before_commit_refused,
    check_discard_new,
    check_sealed_instance_refuses_key_operations,
    check_generate_import_export_and_kcv,
    check_encrypt_decrypt_round_trip,
    check_envelope_tampering_fails_closed,
    check_other_aad_binding_instance_generation_fail,
    check_master_key_rotation,
    check_zeroize_and_reload,
    check_instance_isolation,
    check_concurrency,
    check_random,
    check_signing_round_trip,
    check_signing_refusals,
    check_signing_key_isolation,
    check_signing_key_destroy,
    check_signing_concurrency);
    };
    (@each $hsm:ident; $($check:ident),* $(,)?) => {
        $(
            #[test]
            fn $check() {
                $crate::conformance::$check($hsm());
            }
        )*

        #[test]
        fn conformance_runs_every_check() {
            let names: &[&str] = &[$(stringify!($check)),*];
            let all: Vec<&str> = $crate::conformance::CHECKS.iter().map(|(n, _)| *n).collect();
            assert_eq!(names, all.as_slice());
        }
    };
}
