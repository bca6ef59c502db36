//! Known-answer vectors for the ledger format (docs/LEDGER-FORMAT.md).
//!
//! A small log is written through the real writer with fixed keys (the RFC
//! 8032 test 1 and test 2 secret keys) and a fixed clock. Its records, links,
//! signatures, leaf hashes, root and checkpoint are in the workspace root's
//! `tests/vectors/ledger/vectors.json`, and the exported bundle in
//! `tests/vectors/ledger/bundle/`. This test (1) recomputes every value from
//! the spec's rules with the primitives directly (blake3, sha2,
//! ed25519-dalek), independently of keyledger's own helpers, and (2) checks
//! the writer still produces exactly these bytes. Regenerate (only on a
//! deliberate format change) with `KEYLEDGER_UPDATE_VECTORS=1 cargo test -p keyledger-ledger --test ledger_vectors`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::TimeZone;
use ed25519_dalek::{Signer, SigningKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use keyledger_core::event::{
    Actor, AuthMethod, EventDraft, InstanceCreated, KeyCreated, KeyUnwrapped, KeyWrapped, Role,
};
use keyledger_ledger::audit::SignedCheckpoint;
use keyledger_ledger::ledger_key::LedgerKey;
use keyledger_ledger::store::EventStore;
use keyledger_ledger::store::embedded::EmbeddedStore;
use keyledger_ledger::writer::{LedgerWriter, WriterConfig, origin_for};

const RFC8032_TEST1_SECRET: &str =
    "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
const RFC8032_TEST2_SECRET: &str =
    "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb";

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct Vectors {
    note: String,
    instance: String,
    origin: String,
    ledger_key_seeds_hex: Vec<String>,
    verifier_keys: Vec<String>,
    records: Vec<VectorRecord>,
    root_hex: String,
    checkpoint: String,
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct VectorRecord {
    seq: u64,
    event: String,
    link_hex: String,
    signature_hex: String,
    leaf_hash_hex: String,
}

fn vector_dir() -> PathBuf {
    // The vectors stay in the workspace root's `tests/vectors/`.
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors/ledger")
}

fn seed(hex_seed: &str) -> [u8; 32] {
    let mut s = [0u8; 32];
    hex::decode_to_slice(hex_seed, &mut s).expect("seed hex");
    s
}

/// Writes the vector log through the real writer.
fn write_vector_log(dir: &Path) -> (Vectors, PathBuf) {
    let instance = "vectors";
    let origin = origin_for(instance);
    let store = EmbeddedStore::open(dir).expect("store");
    let log = store.create_instance(instance).expect("create");
    let key1 = LedgerKey::from_seed(&origin, &seed(RFC8032_TEST1_SECRET));
    let key2 = LedgerKey::from_seed(&origin, &seed(RFC8032_TEST2_SECRET));
    let verifier_keys = vec![
        key1.note_verifier().to_string(),
        key2.note_verifier().to_string(),
    ];
    let fixed = chrono::Utc
        .with_ymd_and_hms(2026, 11, 28, 12, 0, 0)
        .single()
        .expect("time");
    let config = WriterConfig {
        clock: Arc::new(move || fixed),
        ..WriterConfig::default()
    };
    let genesis = InstanceCreated {
        origin: origin.clone(),
        ledger_key_id: key1.key_id_hex(),
        ledger_public_key: b64(key1.verifying_key().as_bytes()),
        initial_admin_id: "admin-1".into(),
        initial_admin_public_key: b64(key2.verifying_key().as_bytes()),
    };
    let writer = LedgerWriter::start(log.clone(), key1, config);
    let user = Actor {
        principal: "cred-0001".into(),
        role: Role::Writer,
        auth: AuthMethod::Bearer,
    };
    writer
        .append(EventDraft::new(Actor::operator("vectors"), "corr-0", &genesis).expect("draft"))
        .expect("append");
    let key_id = "0b3a3d4e-8a1c-4f7e-9d2a-5c6b7a8f9e01".to_string();
    writer
        .append(
            EventDraft::new(
                user.clone(),
                "corr-1",
                &KeyCreated {
                    key_id: key_id.clone(),
                    name: "payments-root".into(),
                    description: None,
                    key_ring_id: "default".into(),
                    extractable: false,
                    imported: false,
                    algorithm: "AES".into(),
                    bit_length: 256,
                    version_id: "v-0001".into(),
                    key_check_value: "8f3a21".into(),
                    expiration_date: None,
                    aliases: vec!["payments".into()],
                    activation_date: None,
                    import_token_id: None,
                },
            )
            .expect("draft"),
        )
        .expect("append");
    writer
        .append(
            EventDraft::new(
                user.clone(),
                "corr-2",
                &KeyWrapped {
                    key_id: key_id.clone(),
                    version_id: "v-0001".into(),
                    generated_dek: true,
                    aad_entries: 1,
                    ciphertext_digest: hex::encode(Sha256::digest(b"ciphertext")),
                },
            )
            .expect("draft"),
        )
        .expect("append");
    writer
        .rotate_key(key2, Actor::operator("vectors"), "corr-3")
        .expect("rotate");
    writer
        .append(
            EventDraft::new(
                user,
                "corr-4",
                &KeyUnwrapped {
                    key_id,
                    version_id: "v-0001".into(),
                    rewrapped_version_id: None,
                    ciphertext_digest: hex::encode(Sha256::digest(b"ciphertext")),
                },
            )
            .expect("draft"),
        )
        .expect("append");
    let checkpoint = writer.checkpoint().expect("checkpoint");
    let records = log.read(0, log.head().size).expect("read");
    let bundle = dir.join("bundle");
    let signed = SignedCheckpoint {
        note: checkpoint.clone(),
        size: records.len() as u64,
    };
    keyledger_ledger::export::export_bundle(&writer, &signed, &bundle).expect("export");
    writer.shutdown();
    let records: Vec<VectorRecord> = records
        .iter()
        .enumerate()
        .map(|(i, r)| VectorRecord {
            seq: i as u64,
            event: String::from_utf8(r.event.clone()).expect("utf8"),
            link_hex: hex::encode(r.link()),
            signature_hex: hex::encode(r.signature),
            leaf_hash_hex: hex::encode(r.leaf_hash()),
        })
        .collect();
    let root = keyledger_core::checkpoint::parse_unverified(checkpoint.as_bytes())
        .expect("cp")
        .root;
    let vectors = Vectors {
        note: "Generated by tests/ledger_vectors.rs through the real writer with a fixed clock; ledger key 1 = RFC 8032 test 1 secret key, key 2 (after the rotation at seq 3) = RFC 8032 test 2 secret key.".into(),
        instance: instance.into(),
        origin,
        ledger_key_seeds_hex: vec![RFC8032_TEST1_SECRET.into(), RFC8032_TEST2_SECRET.into()],
        verifier_keys,
        records,
        root_hex: hex::encode(root),
        checkpoint,
    };
    (vectors, bundle)
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// RFC 9162 §2.1.1 MTH, written naively from the spec.
fn mth(leaves: &[[u8; 32]]) -> [u8; 32] {
    match leaves.len() {
        0 => Sha256::digest(b"").into(),
        1 => leaves[0],
        n => {
            let k = 1usize << (usize::BITS - 1 - (n - 1).leading_zeros());
            let mut h = Sha256::new();
            h.update([1u8]);
            h.update(mth(&leaves[..k]));
            h.update(mth(&leaves[k..]));
            h.finalize().into()
        }
    }
}

#[test]
fn vectors_follow_the_spec_and_the_writer_reproduces_them() {
    let dir = tempfile::tempdir().expect("tmp");
    let (fresh, bundle) = write_vector_log(dir.path());
    let path = vector_dir().join("vectors.json");
    if std::env::var_os("KEYLEDGER_UPDATE_VECTORS").is_some() {
        std::fs::write(
            &path,
            serde_json::to_string_pretty(&fresh).expect("json") + "\n",
        )
        .expect("write");
        let out = vector_dir().join("bundle");
        let _ = std::fs::remove_dir_all(&out);
        std::fs::create_dir_all(&out).expect("mkdir");
        for f in ["manifest.json", "records.bin", "checkpoint"] {
            std::fs::copy(bundle.join(f), out.join(f)).expect("copy");
        }
    }
    let stored: Vectors =
        serde_json::from_slice(&std::fs::read(&path).expect("vectors.json")).expect("parse");
    assert_eq!(
        stored, fresh,
        "the writer no longer produces the committed vectors"
    );
    assert!(
        !bundle.join("keys").exists(),
        "the format has no keys file (LEDGER-FORMAT §8)"
    );
    for f in ["records.bin", "checkpoint"] {
        assert_eq!(
            std::fs::read(vector_dir().join("bundle").join(f)).expect("committed"),
            std::fs::read(bundle.join(f)).expect("fresh"),
            "bundle file {f} differs"
        );
    }

    // Independent recomputation from the spec.
    let keys: Vec<SigningKey> = stored
        .ledger_key_seeds_hex
        .iter()
        .map(|s| SigningKey::from_bytes(&seed(s)))
        .collect();
    let mut prev = [0u8; 32];
    let mut leaves = Vec::new();
    for (i, r) in stored.records.iter().enumerate() {
        let event: serde_json::Value = serde_json::from_str(&r.event).expect("event");
        assert_eq!(event["seq"], i as u64);
        assert_eq!(event["prev"], hex::encode(prev));
        let mut chain = blake3::Hasher::new();
        chain.update(b"keyledger/v1/chain\x00");
        chain.update(r.event.as_bytes());
        let link: [u8; 32] = *chain.finalize().as_bytes();
        assert_eq!(hex::encode(link), r.link_hex, "link of record {i}");
        let signer = if i <= 3 { &keys[0] } else { &keys[1] };
        let mut message = b"keyledger/v1/record-signature\x00".to_vec();
        message.extend_from_slice(&link);
        assert_eq!(message.len(), 62);
        assert_eq!(
            hex::encode(signer.sign(&message).to_bytes()),
            r.signature_hex,
            "signature of record {i}"
        );
        let key_id: [u8; 4] = {
            let mut h = Sha256::new();
            h.update(stored.origin.as_bytes());
            h.update([0x0a, 0x01]);
            h.update(signer.verifying_key().as_bytes());
            h.finalize()[..4].try_into().expect("4")
        };
        assert_eq!(
            event["ledger_key"],
            hex::encode(key_id),
            "key id of record {i}"
        );
        let mut leaf = Sha256::new();
        leaf.update([0u8]);
        leaf.update(r.event.as_bytes());
        leaf.update(hex::decode(&r.signature_hex).expect("sig"));
        let leaf: [u8; 32] = leaf.finalize().into();
        assert_eq!(hex::encode(leaf), r.leaf_hash_hex, "leaf of record {i}");
        leaves.push(leaf);
        prev = link;
    }
    assert_eq!(hex::encode(mth(&leaves)), stored.root_hex);
    // Checkpoint body and signature, per C2SP signed-note.
    let body = format!(
        "{}\n{}\n{}\nkeyledger-chain {}\n",
        stored.origin,
        leaves.len(),
        b64(&mth(&leaves)),
        hex::encode(prev)
    );
    assert!(
        stored.checkpoint.starts_with(&format!("{body}\n")),
        "checkpoint body"
    );
    let sig_line = stored.checkpoint[body.len() + 1..].trim_end_matches('\n');
    let expected_sig = {
        let signer = &keys[1];
        let mut kid = Sha256::new();
        kid.update(stored.origin.as_bytes());
        kid.update([0x0a, 0x01]);
        kid.update(signer.verifying_key().as_bytes());
        let mut blob = kid.finalize()[..4].to_vec();
        blob.extend_from_slice(&signer.sign(body.as_bytes()).to_bytes());
        format!("\u{2014} {} {}", stored.origin, b64(&blob))
    };
    assert_eq!(sig_line, expected_sig);
    // And the verifier accepts the committed bundle with the genesis key trusted.
    let trust = keyledger_core::verify::Trust {
        keys: keyledger_core::verify::parse_trusted_keys(&stored.verifier_keys[0]).expect("key"),
        checkpoint: None,
    };
    let report = keyledger_verify::verify_bundle(&vector_dir().join("bundle"), &trust, &|_| {})
        .expect("verify");
    assert!(report.ok(), "{:?}", report.failure);
    assert_eq!(report.key_rotations, 1);
}
