//! Conformance checks of the signing capability (ed25519 ledger keys).
//!
//! A backend either supports signing (`supports_signing() == true`, and
//! then every check below runs against it) or refuses every signing call
//! with `HsmError::Unsupported` (checked by each check instead). Each
//! backend's test file pins which of the two it is, so neither branch can
//! pass by accident.

use crate::hsm::{HsmBackend, HsmError};
use ed25519_dalek::{Signature, VerifyingKey};

use super::instance;

/// Message sizes signed by the checks: empty, short, the 62-byte record
/// message, block boundaries, a checkpoint-sized note and a large one.
pub const MESSAGE_SIZES: &[usize] = &[0, 1, 31, 32, 62, 63, 64, 65, 128, 300, 1000, 4096, 65536];

/// Deterministic test message of `len` bytes.
pub fn message(len: usize, salt: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(salt))
        .collect()
}

fn verifying_key(public: &[u8; 32]) -> VerifyingKey {
    let key = VerifyingKey::from_bytes(public).expect("a valid ed25519 public key");
    assert!(!key.is_weak(), "small-order public key");
    key
}

/// Strict RFC 8032 verification with ed25519-dalek.
pub fn verifies(public: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> bool {
    verifying_key(public)
        .verify_strict(message, &Signature::from_bytes(signature))
        .is_ok()
}

/// For a backend without signing: every signing call is `Unsupported`.
/// Returns whether the backend supports signing.
fn supported(hsm: &dyn HsmBackend) -> bool {
    if hsm.supports_signing() {
        return true;
    }
    let inst = instance("nosign");
    let refused = |r: Result<(), HsmError>, what: &str| {
        assert!(matches!(r, Err(HsmError::Unsupported(_))), "{what}: {r:?}");
    };
    refused(hsm.generate_signing_key(&inst, "k").map(drop), "generate");
    refused(hsm.signing_public_key(&inst, "k").map(drop), "public key");
    refused(hsm.sign(&inst, "k", b"m").map(drop), "sign");
    refused(hsm.destroy_signing_key(&inst, "k"), "destroy");
    false
}

pub fn check_signing_round_trip(hsm: &dyn HsmBackend) {
    if !supported(hsm) {
        return;
    }
    let inst = instance("sign");
    let public = hsm
        .generate_signing_key(&inst, "ledger-1")
        .expect("generate");
    assert_eq!(
        hsm.signing_public_key(&inst, "ledger-1")
            .expect("public key"),
        public,
        "the public key is the one generation returned"
    );
    for &len in MESSAGE_SIZES {
        let msg = message(len, 7);
        let sig = hsm.sign(&inst, "ledger-1", &msg).expect("sign");
        assert!(verifies(&public, &msg, &sig), "{len}-byte message");
        // Pure Ed25519 is deterministic: the same message, the same signature.
        assert_eq!(hsm.sign(&inst, "ledger-1", &msg).expect("sign"), sig);
        let mut other = msg.clone();
        match other.last_mut() {
            Some(b) => *b ^= 0x01,
            None => other.push(0),
        }
        assert!(!verifies(&public, &other, &sig), "{len}: another message");
        let mut bad = sig;
        bad[len % 64] ^= 0x10;
        assert!(!verifies(&public, &msg, &bad), "{len}: a changed signature");
    }
}

pub fn check_signing_refusals(hsm: &dyn HsmBackend) {
    if !supported(hsm) {
        return;
    }
    let inst = instance("signref");
    let other = instance("signref-other");
    let public = hsm.generate_signing_key(&inst, "k").expect("generate");
    assert_eq!(
        hsm.generate_signing_key(&inst, "k"),
        Err(HsmError::SigningKeyExists {
            instance: inst.clone(),
            label: "k".into()
        }),
        "a label is used once per instance"
    );
    assert_eq!(
        hsm.signing_public_key(&inst, "k").expect("unchanged"),
        public
    );
    let missing = |i: &str, l: &str| HsmError::NoSigningKey {
        instance: i.into(),
        label: l.into(),
    };
    assert_eq!(hsm.sign(&other, "k", b"m"), Err(missing(&other, "k")));
    assert_eq!(
        hsm.signing_public_key(&other, "k"),
        Err(missing(&other, "k"))
    );
    assert_eq!(hsm.sign(&inst, "nope", b"m"), Err(missing(&inst, "nope")));
    assert_eq!(hsm.signing_public_key(&inst, "K"), Err(missing(&inst, "K")));
    assert_eq!(
        hsm.destroy_signing_key(&inst, "nope"),
        Err(missing(&inst, "nope"))
    );
    let long = "x".repeat(65536);
    for (i, l) in [
        ("", "k"),
        (inst.as_str(), ""),
        (long.as_str(), "k"),
        (inst.as_str(), long.as_str()),
    ] {
        assert!(
            matches!(hsm.generate_signing_key(i, l), Err(HsmError::Invalid(_))),
            "generate {}/{}",
            i.len(),
            l.len()
        );
        assert!(matches!(hsm.sign(i, l, b"m"), Err(HsmError::Invalid(_))));
        assert!(matches!(
            hsm.signing_public_key(i, l),
            Err(HsmError::Invalid(_))
        ));
        assert!(matches!(
            hsm.destroy_signing_key(i, l),
            Err(HsmError::Invalid(_))
        ));
    }
    let sig = hsm.sign(&inst, "k", b"still works").expect("sign");
    assert!(verifies(&public, b"still works", &sig));
}

pub fn check_signing_key_isolation(hsm: &dyn HsmBackend) {
    if !supported(hsm) {
        return;
    }
    let a = instance("signiso-a");
    let b = instance("signiso-b");
    let pa = hsm.generate_signing_key(&a, "ledger").expect("a");
    let pb = hsm.generate_signing_key(&b, "ledger").expect("b");
    let pa2 = hsm.generate_signing_key(&a, "ledger-2").expect("a2");
    assert_ne!(pa, pb, "same label, other instance: another key");
    assert_ne!(pa, pa2, "other label: another key");
    let msg = message(62, 1);
    let sa = hsm.sign(&a, "ledger", &msg).expect("sign a");
    let sb = hsm.sign(&b, "ledger", &msg).expect("sign b");
    let sa2 = hsm.sign(&a, "ledger-2", &msg).expect("sign a2");
    assert!(verifies(&pa, &msg, &sa) && verifies(&pb, &msg, &sb) && verifies(&pa2, &msg, &sa2));
    assert!(!verifies(&pa, &msg, &sb), "b's key does not sign for a");
    assert!(!verifies(&pb, &msg, &sa), "a's key does not sign for b");
    assert!(!verifies(&pa, &msg, &sa2));
}

pub fn check_signing_key_destroy(hsm: &dyn HsmBackend) {
    if !supported(hsm) {
        return;
    }
    let (inst, _) = super::ready_instance(hsm, "signdel");
    let public = hsm.generate_signing_key(&inst, "k").expect("generate");
    // Shredding the master keys leaves the ledger key: it still has to sign
    // the events that record the shredding.
    hsm.zeroize(&inst).expect("zeroize");
    let sig = hsm.sign(&inst, "k", b"after zeroize").expect("sign");
    assert!(verifies(&public, b"after zeroize", &sig));
    hsm.destroy_signing_key(&inst, "k").expect("destroy");
    let missing = || HsmError::NoSigningKey {
        instance: inst.clone(),
        label: "k".into(),
    };
    assert_eq!(hsm.sign(&inst, "k", b"m"), Err(missing()));
    assert_eq!(hsm.signing_public_key(&inst, "k"), Err(missing()));
    assert_eq!(hsm.destroy_signing_key(&inst, "k"), Err(missing()));
    let again = hsm
        .generate_signing_key(&inst, "k")
        .expect("label free again");
    assert_ne!(again, public, "a new key, not the destroyed one");
    let sig = hsm.sign(&inst, "k", b"new").expect("sign");
    assert!(verifies(&again, b"new", &sig));
    assert!(!verifies(&public, b"new", &sig));
}

pub fn check_signing_concurrency(hsm: &dyn HsmBackend) {
    if !supported(hsm) {
        return;
    }
    let inst = instance("signconc");
    let public = hsm.generate_signing_key(&inst, "k").expect("generate");
    std::thread::scope(|scope| {
        for t in 0..4u8 {
            let (inst, public) = (&inst, &public);
            scope.spawn(move || {
                for i in 0..25usize {
                    let msg = message(62 + i, t);
                    let sig = hsm.sign(inst, "k", &msg).expect("sign");
                    assert!(verifies(public, &msg, &sig), "thread {t}, message {i}");
                }
            });
        }
        // Key pairs created and destroyed meanwhile do not disturb signing.
        let inst = &inst;
        scope.spawn(move || {
            for i in 0..5 {
                let label = format!("churn-{i}");
                hsm.generate_signing_key(inst, &label).expect("generate");
                hsm.destroy_signing_key(inst, &label).expect("destroy");
            }
        });
    });
}
