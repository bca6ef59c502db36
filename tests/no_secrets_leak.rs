//! Key material never reaches the disk or the process output: a child
//! process runs a ceremony with known parts, creates and imports keys with a
//! known payload, wraps and unwraps a known data key, rotates, reads the
//! standard key back and rotates the master key; then the whole data
//! directory and everything the child printed are scanned for those secrets
//! (raw, hex, base64 at every alignment).

mod common;

use std::process::Command;
use std::sync::Arc;

use common::key_env::{self, admin, user};
use common::secrets_scan;
use keyledger::hsm::ceremony;
use keyledger::hsm::software::SoftwareHsm;
use keyledger::keys::service::{CreateKey, KeyMaterialSource};
use keyledger::secret::SecretBytes;

const KNOWN_PAYLOAD: &[u8; 32] = b"KNOWN-standard-key-payload-0001!";
const KNOWN_DEK: &[u8; 32] = b"KNOWN-data-encryption-key-00002!";
const NEW_PARTS: [[u8; 32]; 2] = [[0xa7; 32], [0x3c; 32]];
const CHILD_ENV: &str = "KEYLEDGER_LEAK_CHILD_DIR";

/// The scenario, run only inside the child process.
#[test]
#[ignore = "run as a child process by the test below"]
fn leak_scenario_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let env = key_env::ready(
        std::path::Path::new(&dir),
        "acme",
        Arc::new(SoftwareHsm::new()),
    );
    let s = &env.service;
    let (root, _) = s
        .create_key(
            &user("alice"),
            "c1",
            CreateKey {
                name: "root".into(),
                description: None,
                extractable: false,
                key_ring_id: None,
                aliases: vec!["root-alias".into()],
                expiration_date: None,
                activation_date: None,
                material: KeyMaterialSource::Generate,
            },
        )
        .expect("root");
    let (standard, _) = s
        .create_key(
            &user("alice"),
            "c2",
            CreateKey {
                name: "std".into(),
                description: None,
                extractable: true,
                key_ring_id: None,
                aliases: vec![],
                expiration_date: None,
                activation_date: None,
                material: KeyMaterialSource::Payload(SecretBytes::from_slice(KNOWN_PAYLOAD)),
            },
        )
        .expect("standard");
    let wrapped = s
        .wrap(
            &user("bob"),
            "w",
            &root.id,
            Some(SecretBytes::from_slice(KNOWN_DEK)),
            &["aad-1".into()],
        )
        .expect("wrap");
    println!("wrapped ciphertext {}", wrapped.ciphertext);
    let opened = s
        .unwrap(
            &user("bob"),
            "u",
            &root.id,
            &wrapped.ciphertext,
            &["aad-1".into()],
        )
        .expect("unwrap");
    println!(
        "unwrapped {:?} with version {}",
        opened.plaintext, opened.key_version_id
    );
    let (payload, _) = s
        .key_payload(&user("alice"), "p", &standard.id)
        .expect("payload");
    println!(
        "payload {payload:?}; keys {:?}",
        s.key(&root.id).expect("key")
    );
    eprintln!(
        "debug of everything: {:?} {:?}",
        s.projections(),
        env.owners.iter().map(|o| &o.part).collect::<Vec<_>>()
    );
    for (o, p) in env.owners.iter().zip(NEW_PARTS) {
        o.submit(s, &SecretBytes::from_slice(&p))
            .expect("rotation part");
    }
    s.commit_master_key(&admin(), "c").expect("commit");
    s.activate_master_key(&admin(), "a")
        .expect("rotate master key");
    let _ = s
        .wrap(&user("bob"), "w2", &root.id, None, &[])
        .expect("wrap generated");
    let err = s
        .unwrap(&user("bob"), "u2", &root.id, "AAAA", &[])
        .expect_err("bad ciphertext");
    eprintln!("error: {err} / {err:?}");
    // Part values of the first ceremony are derived in key_env::Owner::new.
    for o in &env.owners {
        println!(
            "owner {} part vp {}",
            o.id,
            ceremony::part_verification_pattern(&o.part)
        );
    }
}

#[test]
fn no_key_material_on_disk_or_in_process_output() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = Command::new(std::env::current_exe().expect("exe"))
        .args([
            "--exact",
            "leak_scenario_child",
            "--ignored",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD_ENV, dir.path())
        .output()
        .expect("run child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("wrapped ciphertext"),
        "the scenario ran: {stdout}"
    );

    let first_parts = [
        key_env::Owner::new("owner-a", 0x11).part,
        key_env::Owner::new("owner-b", 0x5c).part,
    ];
    let first_mk = ceremony::combine_parts(&first_parts).expect("mk1");
    let second_mk =
        ceremony::combine_parts(&NEW_PARTS.map(|p| SecretBytes::from_slice(&p))).expect("mk2");
    let secrets: Vec<(&str, &[u8])> = vec![
        ("standard key payload", KNOWN_PAYLOAD),
        ("data key", KNOWN_DEK),
        ("owner-a part", first_parts[0].expose()),
        ("owner-b part", first_parts[1].expose()),
        ("master key 1", first_mk.expose()),
        ("rotation part a", &NEW_PARTS[0]),
        ("rotation part b", &NEW_PARTS[1]),
        ("master key 2", second_mk.expose()),
    ];
    let files = secrets_scan::assert_dir_clean(dir.path(), &secrets);
    assert!(
        files >= 5,
        "the data directory holds the log, keys and material ({files} files)"
    );
    let mut output = out.stdout.clone();
    output.extend_from_slice(&out.stderr);
    let leaks = secrets_scan::find_in(&output, &secrets);
    assert!(leaks.is_empty(), "secrets in process output: {leaks:?}");
    assert!(
        String::from_utf8_lossy(&output).contains("[redacted]"),
        "secret values print as [redacted]"
    );
}
