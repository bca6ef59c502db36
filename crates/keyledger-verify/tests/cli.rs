//! The `keyledger-verify` binary on bundle directories written with
//! `keyledger-core` alone: exit 0 on an intact bundle, 1 with the first bad
//! position on a tampered one, 2 naming the file on disk when a bundle file
//! cannot be read (the directory layer of this crate).
//!
//! Most bundles here are forgeries a compromised server could make: every
//! record is chained and signed with the instance's own ledger key and the
//! checkpoint matches, so plain integrity would pass; only the format's
//! stricter rules (docs/LEDGER-FORMAT.md §1, §4, §6, §8, §9) catch them, each
//! with its named, located finding.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine;
use ed25519_dalek::{Signer, SigningKey};
use keyledger_core::bundle::{
    BUNDLE_FORMAT, CHECKPOINT_FILE, MANIFEST_FILE, Manifest, RECORDS_FILE,
};
use keyledger_core::chain::{self, GENESIS_PREV};
use keyledger_core::checkpoint::{Checkpoint, NoteVerifierKey};
use keyledger_core::event::{
    Actor, EnvelopeOut, EventPayload, InstanceCreated, InstancePolicyUpdated, KeyEnabled,
    LedgerKeyRotated,
};
use keyledger_core::merkle::Frontier;
use keyledger_core::record::Record;
use serde_json::Value;

const INSTANCE: &str = "cli";
const ORIGIN: &str = "keyledger/cli";
const RECORDS: u64 = 10;
/// The record the forgeries edit: an ordinary `key.enabled`.
const EDITED: u64 = 4;
/// An `instance.policy_updated` with nested attributes.
const POLICY: u64 = 5;
/// The ledger-key rotation.
const ROTATION: u64 = 6;

fn genesis_key() -> SigningKey {
    SigningKey::from_bytes(&[7; 32])
}

fn rotated_key() -> SigningKey {
    SigningKey::from_bytes(&[9; 32])
}

fn key_id(key: &SigningKey) -> String {
    NoteVerifierKey::new(ORIGIN, key.verifying_key())
        .key_id()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn b64(key: &SigningKey) -> String {
    base64::engine::general_purpose::STANDARD.encode(key.verifying_key().as_bytes())
}

/// The event text the writer would store at `seq`.
fn honest_event(seq: u64, key: &SigningKey, prev: &chain::Link) -> String {
    fn envelope<P: EventPayload>(
        seq: u64,
        payload: &P,
        key: &SigningKey,
        prev: &chain::Link,
    ) -> String {
        let payload = serde_json::value::to_raw_value(payload).expect("payload");
        serde_json::to_string(&EnvelopeOut {
            instance: INSTANCE,
            seq,
            time: &format!("2026-12-07T12:00:{seq:02}.000000Z"),
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
    match seq {
        0 => envelope(
            seq,
            &InstanceCreated {
                origin: ORIGIN.into(),
                ledger_key_id: key_id(&genesis_key()),
                ledger_public_key: b64(&genesis_key()),
                initial_admin_id: "admin".into(),
                initial_admin_public_key: b64(&SigningKey::from_bytes(&[8; 32])),
            },
            key,
            prev,
        ),
        POLICY => {
            let attributes =
                serde_json::from_str(r#"{"allowed_ip":{"ranges":["10.0.0.0/8"],"mode":"allow"}}"#)
                    .expect("attributes");
            envelope(
                seq,
                &InstancePolicyUpdated {
                    policy_type: "allowedIP".into(),
                    enabled: true,
                    attributes,
                    command: None,
                },
                key,
                prev,
            )
        }
        ROTATION => envelope(
            seq,
            &LedgerKeyRotated {
                old_key_id: key_id(&genesis_key()),
                new_key_id: key_id(&rotated_key()),
                new_public_key: b64(&rotated_key()),
            },
            key,
            prev,
        ),
        _ => envelope(
            seq,
            &KeyEnabled {
                key_id: format!("key-{seq}"),
            },
            key,
            prev,
        ),
    }
}

/// A log of [`RECORDS`] records, each event text passed through `edit`
/// (given its seq) before it is chained and signed with the key in force,
/// and its checkpoint (the §6 body passed through `body`), signed by the key
/// in force at the end.
fn forged(edit: &dyn Fn(u64, String) -> String, body: &dyn Fn(String) -> String) -> Log {
    let mut prev = GENESIS_PREV;
    let mut frontier = Frontier::new();
    let mut records = Vec::new();
    for seq in 0..RECORDS {
        let key = if seq <= ROTATION {
            genesis_key()
        } else {
            rotated_key()
        };
        let event = edit(seq, honest_event(seq, &key, &prev)).into_bytes();
        let link = chain::link(&event);
        let record = Record {
            event,
            signature: key.sign(&chain::signing_message(&link)).to_bytes(),
        };
        frontier.push(record.leaf_hash());
        records.push(record);
        prev = link;
    }
    let checkpoint = Checkpoint {
        origin: ORIGIN.into(),
        size: RECORDS,
        root: frontier.root(),
        extensions: vec![format!("keyledger-chain {}", chain::to_hex(&prev))],
    };
    // Sign whatever body the forger wants, with the key in force.
    let body = body(checkpoint.body());
    let signer = rotated_key();
    let mut blob = NoteVerifierKey::new(ORIGIN, signer.verifying_key())
        .key_id()
        .to_vec();
    blob.extend_from_slice(&signer.sign(body.as_bytes()).to_bytes());
    let note = format!(
        "{body}\n\u{2014} {ORIGIN} {}\n",
        base64::engine::general_purpose::STANDARD.encode(blob)
    );
    Log { records, note }
}

struct Log {
    records: Vec<Record>,
    note: String,
}

/// The honest log.
fn genuine() -> Log {
    forged(&|_, text| text, &|body| body)
}

/// A bundle directory, removed on drop.
struct Bundle(PathBuf);

impl Drop for Bundle {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn manifest_json() -> Vec<u8> {
    let manifest = Manifest {
        format: BUNDLE_FORMAT.into(),
        instance: INSTANCE.into(),
        origin: ORIGIN.into(),
        size: RECORDS,
    };
    serde_json::to_vec_pretty(&manifest).expect("json")
}

fn write_bundle(name: &str, log: &Log) -> Bundle {
    let dir = std::env::temp_dir().join(format!(
        "keyledger-verify-cli-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("bundle dir");
    let mut frames = Vec::new();
    for record in &log.records {
        record.encode_frame(&mut frames);
    }
    let write = |file: &str, bytes: &[u8]| std::fs::write(dir.join(file), bytes).expect("write");
    write(MANIFEST_FILE, &manifest_json());
    write(RECORDS_FILE, &frames);
    write(CHECKPOINT_FILE, log.note.as_bytes());
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

/// Runs `--json` on the bundle: exit 1 and the failure's JSON.
fn failure_of(bundle: &Bundle) -> Value {
    let out = run(&bundle.0, &["--json"]);
    let json: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("json report: {e}; {}", text(&out.stderr)));
    assert_eq!(out.status.code(), Some(1), "{json}");
    assert_eq!(json["ok"], false);
    json["failure"].clone()
}

fn assert_intact(bundle: &Bundle) {
    let out = run(&bundle.0, &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{} {}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

#[test]
fn intact_bundle_exits_0() {
    let bundle = write_bundle("intact", &genuine());
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
    assert_eq!(json["key_rotations"], 1);
}

#[test]
fn tampered_bundle_exits_1_with_the_first_bad_position() {
    let mut log = genuine();
    log.records[4].signature[0] ^= 1;
    let bundle = write_bundle("tampered", &log);
    let out = run(&bundle.0, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "FAILED: bad signature on record 4\nfirst bad position: 4\n"
    );
}

#[test]
fn unreadable_bundle_files_exit_2_naming_the_file() {
    let bundle = write_bundle("unreadable", &genuine());
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

/// Replaces exactly one occurrence of `from` in `text`.
fn once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(text.matches(from).count(), 1, "{from:?} in {text}");
    text.replacen(from, to, 1)
}

/// Every "must reject" of §1, each in a record signed by the instance's own
/// key: `malformed` at that record.
#[test]
fn signed_events_that_break_the_strict_format_are_malformed_at_their_record() {
    type Edit = fn(String) -> String;
    let cases: Vec<(&str, u64, Edit)> = vec![
        ("a byte after the object", EDITED, |t| t + " "),
        ("a second object after it", EDITED, |t| t + "{}"),
        ("a leading space", EDITED, |t| format!(" {t}")),
        ("a leading newline", EDITED, |t| format!("\n{t}")),
        ("whitespace inside", EDITED, |t| {
            once(&t, r#""seq":4"#, r#""seq": 4"#)
        }),
        ("seq with a leading zero", EDITED, |t| {
            once(&t, r#""seq":4"#, r#""seq":04"#)
        }),
        ("type_version 0", EDITED, |t| {
            once(&t, r#""type_version":1"#, r#""type_version":0"#)
        }),
        ("time without fraction", EDITED, |t| {
            once(&t, ".000000Z", "Z")
        }),
        ("time with 3 fractional digits", EDITED, |t| {
            once(&t, ".000000Z", ".000Z")
        }),
        ("time with an offset", EDITED, |t| {
            once(&t, ".000000Z", ".000000+00:00")
        }),
        ("time not a real date", EDITED, |t| {
            once(&t, "2026-12-07", "2026-02-30")
        }),
        ("empty correlation_id", EDITED, |t| {
            once(&t, r#""c-4""#, r#""""#)
        }),
        ("correlation_id with a space", EDITED, |t| {
            once(&t, r#""c-4""#, r#""c 4""#)
        }),
        ("correlation_id with a control character", EDITED, |t| {
            once(&t, r#""c-4""#, r#""c\u00074""#)
        }),
        ("payload not an object", EDITED, |t| {
            once(&t, r#"{"key_id":"key-4"}"#, r#""key-4""#)
        }),
        ("a lone surrogate escape", EDITED, |t| {
            once(&t, r#""key-4""#, r#""key-\ud800""#)
        }),
        ("a duplicate envelope member", EDITED, |t| {
            once(
                &t,
                r#""instance":"cli""#,
                r#""instance":"cli","instance":"cli""#,
            )
        }),
        ("a duplicate actor member", EDITED, |t| {
            once(
                &t,
                r#""auth":"internal""#,
                r#""auth":"internal","auth":"internal""#,
            )
        }),
        ("a duplicate payload member", EDITED, |t| {
            once(
                &t,
                r#""key_id":"key-4""#,
                r#""key_id":"key-4","key_id":"key-4""#,
            )
        }),
        ("a duplicate member nested in the payload", POLICY, |t| {
            once(&t, r#""mode":"allow""#, r#""mode":"allow","mode":"deny""#)
        }),
        ("a duplicate attribute name", POLICY, |t| {
            once(&t, r#""attributes":{"#, r#""attributes":{"allowed_ip":1,"#)
        }),
        ("an unknown envelope member", EDITED, |t| {
            once(&t, r#","prev":"#, r#","extra":1,"prev":"#)
        }),
        ("a missing envelope member", EDITED, |t| {
            once(&t, r#","correlation_id":"c-4""#, "")
        }),
        ("an unknown payload member", EDITED, |t| {
            once(&t, r#""key_id":"key-4""#, r#""key_id":"key-4","extra":1"#)
        }),
        ("a payload member of the wrong type", EDITED, |t| {
            once(&t, r#""key_id":"key-4""#, r#""key_id":4"#)
        }),
        ("an unknown actor role", EDITED, |t| {
            once(&t, r#""role":"system""#, r#""role":"root""#)
        }),
    ];
    for (what, at, edit) in cases {
        let log = forged(&|seq, t| if seq == at { edit(t) } else { t }, &|b| b);
        let bundle = write_bundle("malformed", &log);
        let failure = failure_of(&bundle);
        assert_eq!(failure["kind"], "malformed", "{what}: {failure}");
        assert_eq!(failure["seq"], at, "{what}: {failure}");
    }
}

/// What the strict reading must still accept: escapes that decode to valid
/// values, and a valid surrogate pair.
#[test]
fn signed_events_with_valid_escapes_verify() {
    type Edit = fn(String) -> String;
    let cases: Vec<(&str, Edit)> = vec![
        ("an escaped correlation_id character", |t| {
            once(&t, r#""c-4""#, r#""c\u002d4""#)
        }),
        ("a surrogate pair in the payload", |t| {
            once(&t, r#""key-4""#, r#""key-\ud83d\ude00""#)
        }),
    ];
    for (what, edit) in cases {
        let log = forged(&|seq, t| if seq == EDITED { edit(t) } else { t }, &|b| b);
        let bundle = write_bundle("escapes", &log);
        let out = run(&bundle.0, &[]);
        assert_eq!(out.status.code(), Some(0), "{what}: {}", text(&out.stdout));
    }
}

#[test]
fn signed_events_of_unknown_types_or_versions_are_findings() {
    type Edit = fn(String) -> String;
    let cases: Vec<(&str, Edit)> = vec![
        ("unknown type", |t| {
            once(&t, r#""type":"key.enabled""#, r#""type":"key.teleported""#)
        }),
        ("unknown version", |t| {
            once(&t, r#""type_version":1"#, r#""type_version":2"#)
        }),
    ];
    for (what, edit) in cases {
        let log = forged(&|seq, t| if seq == EDITED { edit(t) } else { t }, &|b| b);
        let failure = failure_of(&write_bundle("unknown", &log));
        assert_eq!(failure["kind"], "unknown_event", "{what}: {failure}");
        assert_eq!(failure["seq"], EDITED, "{what}: {failure}");
    }
}

#[test]
fn a_signed_event_stamped_earlier_than_the_one_before_is_time_backwards() {
    let log = forged(
        &|seq, t| {
            if seq == EDITED {
                once(&t, "12:00:04.000000Z", "12:00:02.999999Z")
            } else {
                t
            }
        },
        &|b| b,
    );
    let failure = failure_of(&write_bundle("backwards", &log));
    assert_eq!(failure["kind"], "time_backwards", "{failure}");
    assert_eq!(failure["seq"], EDITED);
    // Equal times are fine (non-decreasing).
    let log = forged(
        &|seq, t| {
            if seq == EDITED {
                once(&t, "12:00:04.000000Z", "12:00:03.000000Z")
            } else {
                t
            }
        },
        &|b| b,
    );
    assert_intact(&write_bundle("same-time", &log));
}

#[test]
fn a_genesis_of_another_origin_is_bad_genesis() {
    let log = forged(
        &|seq, t| {
            if seq == 0 {
                once(
                    &t,
                    r#""origin":"keyledger/cli""#,
                    r#""origin":"keyledger/other""#,
                )
            } else {
                t
            }
        },
        &|b| b,
    );
    let failure = failure_of(&write_bundle("genesis-origin", &log));
    assert_eq!(failure["kind"], "bad_genesis", "{failure}");
    assert!(
        failure["reason"]
            .as_str()
            .expect("reason")
            .contains("origin"),
        "{failure}"
    );
}

#[test]
fn a_rotation_that_does_not_name_the_key_in_force_is_bad_rotation() {
    let old = key_id(&genesis_key());
    let new = key_id(&rotated_key());
    let log = forged(
        &|seq, t| {
            if seq == ROTATION {
                once(
                    &t,
                    &format!(r#""old_key_id":"{old}""#),
                    &format!(r#""old_key_id":"{new}""#),
                )
            } else {
                t
            }
        },
        &|b| b,
    );
    let failure = failure_of(&write_bundle("rotation", &log));
    assert_eq!(failure["kind"], "bad_rotation", "{failure}");
    assert_eq!(failure["seq"], ROTATION);
}

#[test]
fn checkpoints_of_another_shape_are_checkpoint_shape() {
    type Body = fn(String) -> String;
    let cases: Vec<(&str, Body)> = vec![
        ("an extra line", |b| b + "extra line\n"),
        ("no keyledger-chain line", |b| {
            let cut = b.find("keyledger-chain ").expect("chain line");
            b[..cut].to_string()
        }),
        ("the chain line replaced", |b| {
            let cut = b.find("keyledger-chain ").expect("chain line");
            format!("{}other-extension 1\n", &b[..cut])
        }),
    ];
    for (what, body) in cases {
        let log = forged(&|_, t| t, &body);
        let failure = failure_of(&write_bundle("shape", &log));
        assert_eq!(failure["kind"], "checkpoint_shape", "{what}: {failure}");
    }
}

#[test]
fn a_keys_file_is_ignored_whatever_it_holds() {
    let foreign = NoteVerifierKey::new(ORIGIN, SigningKey::from_bytes(&[3; 32]).verifying_key());
    for keys in [
        String::new(),
        "garbage\n\u{0}\u{1}not a key\n".to_string(),
        format!("{foreign}\n"),
    ] {
        let bundle = write_bundle("keys", &genuine());
        std::fs::write(bundle.0.join("keys"), &keys).expect("keys");
        assert_intact(&bundle);
    }
}

#[test]
fn a_malformed_manifest_is_a_finding_not_unreadable_input() {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("not JSON", b"{".to_vec()),
        (
            "an unknown member",
            br#"{"format":"keyledger-bundle/1","instance":"cli","origin":"keyledger/cli","size":10,"keys":[]}"#
                .to_vec(),
        ),
        (
            "another format",
            br#"{"format":"keyledger-bundle/9","instance":"cli","origin":"keyledger/cli","size":10}"#
                .to_vec(),
        ),
        (
            "an origin of another instance",
            br#"{"format":"keyledger-bundle/1","instance":"cli","origin":"keyledger/other","size":10}"#
                .to_vec(),
        ),
    ];
    for (what, manifest) in cases {
        let bundle = write_bundle("manifest", &genuine());
        std::fs::write(bundle.0.join(MANIFEST_FILE), manifest).expect("manifest");
        let failure = failure_of(&bundle);
        assert_eq!(failure["kind"], "bad_manifest", "{what}: {failure}");
    }
}

#[test]
fn an_empty_records_file_is_truncated() {
    let bundle = write_bundle("empty", &genuine());
    std::fs::write(bundle.0.join(RECORDS_FILE), b"").expect("records");
    let failure = failure_of(&bundle);
    assert_eq!(failure["kind"], "truncated", "{failure}");
    assert_eq!(failure["expected"], RECORDS);
    assert_eq!(failure["found"], 0);
}
