//! Known-answer tests from published vectors, stored verbatim as data files
//! in `tests/vectors/kat/` (each starts with a SOURCE note). A missing,
//! empty or short vector file fails the test.
//!
//! - NIST CAVP AES-256-GCM (encrypt, decrypt with FAIL cases): the `aes-gcm`
//!   crate, the software HSM's envelope code with the vector's nonce, and
//!   the software HSM's `decrypt` through the trait after importing the key.
//! - RFC 8032 ed25519: `ed25519-dalek` (key, signature, verification) and
//!   `LedgerKey::from_seed` (the public key it derives, and its signatures
//!   through the `LedgerSigner` trait the writer uses). The same vectors run
//!   through the PKCS#11 backend's `sign` in `crates/keyledger-kms/tests/hsm_pkcs11.rs`.
//! - RFC 3394 / RFC 5649 AES key wrap (with padding): the `aes-kw` crate
//!   (CKM_AES_KEY_WRAP_PAD, which the PKCS#11 backend uses, is RFC 5649).
//! - NIST AESAVS ECBKeySbox256: key check values from `ceremony::kcv` and
//!   from the software HSM's `import_key`.

use aes::cipher::{Array, BlockCipherEncrypt};
use aes_gcm::aead::AeadInOut;
use aes_gcm::{Aes256Gcm, KeyInit, Nonce, Tag};
use ed25519_dalek::{Signer, SigningKey, Verifier};
use keyledger_kms::hsm::prelude::*;
use keyledger_kms::hsm::software::{SoftwareHsm, envelope};
use keyledger_kms::hsm::{HsmError, KeyBinding, ceremony};
use keyledger_kms::secret::SecretBytes;
use keyledger_kms::signer::LedgerSigner;
use keyledger_ledger::ledger_key::LedgerKey;

mod common;

use common::vectors::{bytes, records};

fn gcm(key: &[u8]) -> Aes256Gcm {
    Aes256Gcm::new_from_slice(key).expect("32-byte key")
}

/// A software HSM with instance `kat` at master-key generation 1.
fn kat_hsm() -> SoftwareHsm {
    let hsm = SoftwareHsm::new();
    let public = hsm.ceremony_public_key("kat", 1).expect("ceremony key");
    for owner in ["a", "b"] {
        let part = SecretBytes::random(32).expect("rng");
        let sealed = ceremony::seal_part(&public, "kat", 1, owner, &part).expect("seal");
        hsm.load_part("kat", 1, owner, &sealed).expect("load");
    }
    hsm.commit("kat", 1, 2).expect("commit");
    hsm.activate("kat", 1).expect("activate");
    hsm
}

fn kat_binding(id: &str) -> KeyBinding {
    KeyBinding {
        instance: "kat".into(),
        key_id: id.into(),
        version: 1,
        mk_generation: 1,
    }
}

/// Imports `key` into the software HSM as key version `id`.
fn import(
    hsm: &SoftwareHsm,
    id: &str,
    key: &[u8],
) -> (KeyBinding, keyledger_kms::hsm::WrappedMaterial) {
    let b = kat_binding(id);
    let w = hsm
        .import_key(&b, &SecretBytes::from_slice(key))
        .expect("import")
        .wrapped;
    (b, w)
}

#[test]
fn nist_aes256_gcm_encrypt() {
    let hsm = kat_hsm();
    for (n, r) in records("gcmEncryptExtIV256.rsp", 12).iter().enumerate() {
        let (key, iv, pt, aad) = (
            bytes(r, "Key"),
            bytes(r, "IV"),
            bytes(r, "PT"),
            bytes(r, "AAD"),
        );
        let (ct, tag) = (bytes(r, "CT"), bytes(r, "Tag"));
        let mut expected = ct.clone();
        expected.extend_from_slice(&tag);

        // aes-gcm directly.
        let mut buf = pt.clone();
        let nonce = Nonce::try_from(&iv[..]).expect("96-bit IV");
        let got_tag = gcm(&key)
            .encrypt_inout_detached(&nonce, &aad, buf.as_mut_slice().into())
            .expect("encrypt");
        assert_eq!(
            (buf.as_slice(), got_tag.as_slice()),
            (ct.as_slice(), tag.as_slice()),
            "case {n}"
        );

        // The software HSM's envelope: nonce || ct || tag.
        let iv12: [u8; 12] = iv.clone().try_into().expect("12 bytes");
        let sealed = envelope::seal_with_nonce(&gcm(&key), &iv12, &pt, &aad).expect("seal");
        assert_eq!(sealed[..12], iv[..], "case {n}");
        assert_eq!(sealed[12..], expected[..], "case {n}");

        // Through the trait: what the vector's encryption gives, `decrypt` opens.
        let (b, w) = import(&hsm, &format!("enc{n}"), &key);
        let plain = hsm
            .decrypt(&b, &w, &sealed, &aad)
            .expect("decrypt through the trait");
        assert_eq!(plain.expose(), pt.as_slice(), "case {n}");
        // And the trait's own encryption under the vector key opens with aes-gcm.
        let mine = hsm
            .encrypt(&b, &w, &SecretBytes::from_slice(&pt), &aad)
            .expect("encrypt");
        let opened = envelope::open(&gcm(&key), &mine, &aad).expect("open");
        assert_eq!(opened.expose(), pt.as_slice(), "case {n}");
    }
}

#[test]
fn nist_aes256_gcm_decrypt_including_tag_failures() {
    let hsm = kat_hsm();
    let all = records("gcmDecrypt256.rsp", 15);
    let fails = all.iter().filter(|r| r.contains_key("FAIL")).count();
    assert!(fails >= 6, "expected FAIL cases, found {fails}");
    for (n, r) in all.iter().enumerate() {
        let (key, iv, ct, aad, tag) = (
            bytes(r, "Key"),
            bytes(r, "IV"),
            bytes(r, "CT"),
            bytes(r, "AAD"),
            bytes(r, "Tag"),
        );
        let expected = if r.contains_key("FAIL") {
            None
        } else {
            Some(bytes(r, "PT"))
        };

        let mut buf = ct.clone();
        let nonce = Nonce::try_from(&iv[..]).expect("96-bit IV");
        let tag_arr = Tag::try_from(&tag[..]).expect("128-bit tag");
        let direct =
            gcm(&key).decrypt_inout_detached(&nonce, &aad, buf.as_mut_slice().into(), &tag_arr);
        assert_eq!(
            direct.ok().map(|()| buf.clone()),
            expected,
            "aes-gcm, case {n}"
        );

        let mut sealed = iv.clone();
        sealed.extend_from_slice(&ct);
        sealed.extend_from_slice(&tag);
        let via_envelope = envelope::open(&gcm(&key), &sealed, &aad);
        let (b, w) = import(&hsm, &format!("dec{n}"), &key);
        let via_trait = hsm.decrypt(&b, &w, &sealed, &aad);
        match &expected {
            Some(pt) => {
                assert_eq!(
                    via_envelope.expect("envelope").expose(),
                    pt.as_slice(),
                    "case {n}"
                );
                assert_eq!(
                    via_trait.expect("trait").expose(),
                    pt.as_slice(),
                    "case {n}"
                );
            }
            None => {
                assert_eq!(via_envelope.err(), Some(HsmError::Decrypt), "case {n}");
                assert_eq!(via_trait.err(), Some(HsmError::Decrypt), "case {n}");
            }
        }
    }
}

#[test]
fn rfc8032_ed25519() {
    let all = records("ed25519_rfc8032.txt", 5);
    let names: Vec<&str> = all.iter().map(|r| r["SECTION"].as_str()).collect();
    assert_eq!(
        names,
        ["TEST 1", "TEST 2", "TEST 3", "TEST 1024", "TEST SHA(abc)"]
    );
    for r in &all {
        let name = &r["SECTION"];
        let seed: [u8; 32] = bytes(r, "SECRET KEY").try_into().expect("32-byte seed");
        let (public, msg, sig) = (
            bytes(r, "PUBLIC KEY"),
            bytes(r, "MESSAGE"),
            bytes(r, "SIGNATURE"),
        );
        let signing = SigningKey::from_bytes(&seed);
        assert_eq!(
            signing.verifying_key().to_bytes().as_slice(),
            public.as_slice(),
            "{name}"
        );
        let signature = signing.sign(&msg);
        assert_eq!(signature.to_bytes().as_slice(), sig.as_slice(), "{name}");
        signing
            .verifying_key()
            .verify(&msg, &signature)
            .expect("verifies");
        let mut bad = sig.clone();
        bad[0] ^= 1;
        let bad = ed25519_dalek::Signature::from_slice(&bad).expect("64 bytes");
        assert!(
            signing.verifying_key().verify(&msg, &bad).is_err(),
            "{name}"
        );
        // The ledger key derives the same public key from the same seed, and
        // signs through the writer's signer interface exactly as RFC 8032 says.
        let ledger = LedgerKey::from_seed("kat.example/log", &seed);
        assert_eq!(
            ledger.verifying_key().to_bytes().as_slice(),
            public.as_slice(),
            "{name}"
        );
        let signer: &dyn LedgerSigner = &ledger;
        assert_eq!(
            signer.sign_message(&msg).expect("sign").as_slice(),
            sig.as_slice(),
            "{name}: LedgerSigner::sign_message"
        );
    }
    assert_eq!(bytes(&all[3], "MESSAGE").len(), 1023);
}

#[test]
fn rfc3394_rfc5649_aes_key_wrap() {
    let all = records("aes_keywrap_rfc3394_rfc5649.txt", 8);
    assert_eq!(all.iter().filter(|r| r["MODE"] == "KWP").count(), 2);
    for r in &all {
        let name = &r["SECTION"];
        let (kek, data, expected) = (
            bytes(r, "KEK"),
            bytes(r, "KEY DATA"),
            bytes(r, "CIPHERTEXT"),
        );
        let mut out = vec![0u8; expected.len()];
        let mut back = vec![0u8; expected.len()];
        let (wrapped, unwrapped) = match (r["MODE"].as_str(), kek.len()) {
            ("KW", 16) => kw::<aes_kw::KwAes128>(&kek, &data, &expected, &mut out, &mut back),
            ("KW", 24) => kw::<aes_kw::KwAes192>(&kek, &data, &expected, &mut out, &mut back),
            ("KW", 32) => kw::<aes_kw::KwAes256>(&kek, &data, &expected, &mut out, &mut back),
            ("KWP", 24) => {
                let k = aes_kw::KwpAes192::new_from_slice(&kek).expect("kek");
                let w = k.wrap_key(&data, &mut out).expect("wrap").to_vec();
                let u = k.unwrap_key(&expected, &mut back).expect("unwrap").to_vec();
                let mut tampered = expected.clone();
                tampered[0] ^= 1;
                let mut scratch = vec![0u8; expected.len()];
                assert!(
                    k.unwrap_key(&tampered, &mut scratch).is_err(),
                    "{name}: tampered"
                );
                (w, u)
            }
            other => panic!("{name}: unexpected mode/KEK {other:?}"),
        };
        assert_eq!(wrapped, expected, "{name}");
        assert_eq!(unwrapped, data, "{name}");
    }
}

fn kw<K>(
    kek: &[u8],
    data: &[u8],
    expected: &[u8],
    out: &mut [u8],
    back: &mut [u8],
) -> (Vec<u8>, Vec<u8>)
where
    K: aes_kw::KeyInit + KwOps,
{
    let k = K::new_from_slice(kek).expect("kek");
    (k.wrap(data, out), k.unwrap(expected, back))
}

/// The two operations of `AesKw<C>` for the three AES sizes.
trait KwOps {
    fn wrap(&self, data: &[u8], out: &mut [u8]) -> Vec<u8>;
    fn unwrap(&self, wrapped: &[u8], out: &mut [u8]) -> Vec<u8>;
}

macro_rules! kw_ops {
    ($($t:ty),*) => {$(
        impl KwOps for $t {
            fn wrap(&self, data: &[u8], out: &mut [u8]) -> Vec<u8> {
                self.wrap_key(data, out).expect("wrap").to_vec()
            }
            fn unwrap(&self, wrapped: &[u8], out: &mut [u8]) -> Vec<u8> {
                self.unwrap_key(wrapped, out).expect("unwrap").to_vec()
            }
        }
    )*};
}
kw_ops!(aes_kw::KwAes128, aes_kw::KwAes192, aes_kw::KwAes256);

#[test]
fn nist_aes256_key_check_values() {
    let hsm = kat_hsm();
    for (n, r) in records("aes256_kcv.txt", 6).iter().enumerate() {
        let (key, ciphertext) = (bytes(r, "KEY"), bytes(r, "CIPHERTEXT"));
        let kcv = &r["KCV"];
        let mut block = Array::from([0u8; 16]);
        aes::Aes256::new_from_slice(&key)
            .expect("key")
            .encrypt_block(&mut block);
        assert_eq!(
            block.as_slice(),
            ciphertext.as_slice(),
            "AES-256-ECB, case {n}"
        );
        assert_eq!(&ceremony::kcv(&key), kcv, "ceremony::kcv, case {n}");
        let b = kat_binding(&format!("kcv{n}"));
        assert_eq!(
            &hsm.import_key(&b, &SecretBytes::from_slice(&key))
                .expect("import")
                .kcv,
            kcv,
            "case {n}"
        );
    }
}
