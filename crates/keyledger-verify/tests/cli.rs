//! The `keyledger-verify` binary on bundle directories written with
//! `keyledger-core` alone: exit 0 on an intact bundle, 1 with the first bad
//! position on a tampered one, 2 naming the file on disk when a bundle file
//! cannot be read (the directory layer of this crate).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine;
use ed25519_dalek::{Signer, SigningKey};
use keyledger_core::bundle::{
    BUNDLE_FORMAT, CHECKPOINT_FILE, KEYS_FILE, MANIFEST_FILE, Manifest, RECORDS_FILE,
};
use keyledger_core::chain::{self, GENESIS_PREV};
use keyledger_core::checkpoint::{Checkpoint, NoteVerifierKey};
use keyledger_core::event::{Actor, EnvelopeOut, EventPayload, InstanceCreated, KeyEnabled};
use keyledger_core::merkle::Frontier;
use keyledger_core::record::Record;

const INSTANCE: &str = "cli";
const ORIGIN: &str = "keyledger/cli";
const RECORDS: u64 = 10;

fn key_id(key: &SigningKey) -> String {
    NoteVerifierKey::new(ORIGIN, key.verifying_key())
        .key_id()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn event<P: EventPayload>(seq: u64, payload: &P, key: &SigningKey, prev: &chain::Link) -> Vec<u8> {
    let payload = serde_json::value::to_raw_value(payload).expect("payload");
    serde_json::to_vec(&EnvelopeOut {
        instance: INSTANCE,
        seq,
        time: "2026-12-07T12:00:00Z",
        event_type: P::TYPE,
        type_version: P::VERSION,
        actor: &Actor::system(),
        correlation_id: &format!("c-{seq}"),
        payload: &payload,
        ledger_key: &key_id(key),
        prev: &chain::to_hex(prev),
    })
    .expect("envelope")
}

/// The records of a small genuine log, and the bundle's other files.
fn genuine() -> (Vec<Record>, String, String) {
    let key = SigningKey::from_bytes(&[7; 32]);
    let b64 = |k: &SigningKey| {
        base64::engine::general_purpose::STANDARD.encode(k.verifying_key().as_bytes())
    };
    let mut prev = GENESIS_PREV;
    let mut frontier = Frontier::new();
    let mut records = Vec::new();
    for seq in 0..RECORDS {
        let bytes = if seq == 0 {
            let genesis = InstanceCreated {
                origin: ORIGIN.into(),
                ledger_key_id: key_id(&key),
                ledger_public_key: b64(&key),
                initial_admin_id: "admin".into(),
                initial_admin_public_key: b64(&SigningKey::from_bytes(&[8; 32])),
            };
            event(seq, &genesis, &key, &prev)
        } else {
            let enabled = KeyEnabled {
                key_id: format!("key-{seq}"),
            };
            event(seq, &enabled, &key, &prev)
        };
        let link = chain::link(&bytes);
        let record = Record {
            event: bytes,
            signature: key.sign(&chain::signing_message(&link)).to_bytes(),
        };
        frontier.push(record.leaf_hash());
        records.push(record);
        prev = link;
    }
    let note = Checkpoint {
        origin: ORIGIN.into(),
        size: RECORDS,
        root: frontier.root(),
        extensions: vec![format!("keyledger-chain {}", chain::to_hex(&prev))],
    }
    .sign(ORIGIN, &key);
    let keys = format!("{}\n", NoteVerifierKey::new(ORIGIN, key.verifying_key()));
    (records, note, keys)
}

/// A bundle directory, removed on drop.
struct Bundle(PathBuf);

impl Drop for Bundle {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn write_bundle(name: &str, records: &[Record], note: &str, keys: &str) -> Bundle {
    let dir = std::env::temp_dir().join(format!(
        "keyledger-verify-cli-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("bundle dir");
    let mut frames = Vec::new();
    for record in records {
        record.encode_frame(&mut frames);
    }
    let manifest = Manifest {
        format: BUNDLE_FORMAT.into(),
        instance: INSTANCE.into(),
        origin: ORIGIN.into(),
        size: RECORDS,
    };
    let write = |file: &str, bytes: &[u8]| std::fs::write(dir.join(file), bytes).expect("write");
    write(
        MANIFEST_FILE,
        &serde_json::to_vec_pretty(&manifest).expect("json"),
    );
    write(RECORDS_FILE, &frames);
    write(CHECKPOINT_FILE, note.as_bytes());
    write(KEYS_FILE, keys.as_bytes());
    Bundle(dir)
}

fn run(bundle: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_keyledger-verify"))
        .arg(bundle)
        .args(extra)
        .output()
        .expect("run keyledger-verify")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn intact_bundle_exits_0() {
    let (records, note, keys) = genuine();
    let bundle = write_bundle("intact", &records, &note, &keys);
    let out = run(&bundle.0, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with(&format!(
            "OK: {RECORDS} records of instance {INSTANCE} verified"
        )),
        "{}",
        text(&out.stdout)
    );
    let out = run(&bundle.0, &["--json"]);
    assert_eq!(out.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json report");
    assert_eq!(json["ok"], true);
    assert_eq!(json["records"], RECORDS);
}

#[test]
fn tampered_bundle_exits_1_with_the_first_bad_position() {
    let (mut records, note, keys) = genuine();
    records[4].signature[0] ^= 1;
    let bundle = write_bundle("tampered", &records, &note, &keys);
    let out = run(&bundle.0, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "FAILED: bad signature on record 4\nfirst bad position: 4\n"
    );
}

#[test]
fn unreadable_bundle_files_exit_2_naming_the_file() {
    let (records, note, keys) = genuine();
    let bundle = write_bundle("unreadable", &records, &note, &keys);
    std::fs::remove_file(bundle.0.join(RECORDS_FILE)).expect("remove records");
    let out = run(&bundle.0, &[]);
    assert_eq!(out.status.code(), Some(2));
    let records_path = bundle.0.join(RECORDS_FILE);
    assert!(
        text(&out.stderr).starts_with(&format!(
            "keyledger-verify: error: cannot read {}: ",
            records_path.display()
        )),
        "{}",
        text(&out.stderr)
    );
    std::fs::remove_file(bundle.0.join(MANIFEST_FILE)).expect("remove manifest");
    let out = run(&bundle.0, &[]);
    assert_eq!(out.status.code(), Some(2));
    let manifest_path = bundle.0.join(MANIFEST_FILE);
    assert!(
        text(&out.stderr).starts_with(&format!(
            "keyledger-verify: error: bundle file {}: ",
            manifest_path.display()
        )),
        "{}",
        text(&out.stderr)
    );
}
