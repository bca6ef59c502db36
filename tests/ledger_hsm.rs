//! Instance ledgers whose ledger key lives in an HSM (SoftHSM2 through the
//! PKCS#11 backend): created, appended to, rotated (new key generated in the
//! token, rotation signed by the old one), closed and reopened with a fresh
//! session to the token, exported, and verified offline by `keyledger
//! verify` exactly like a file-signed log. Also: moving a file key into the
//! HSM by rotation, refusing what cannot work (no HSM given, the wrong
//! backend, a reference to another key, a backend that cannot sign), and the
//! same through the `keyledger ledger` commands with `--pkcs11-*` flags.
//!
//! SoftHSM2 must be installed (`scripts/softhsm-setup`).
#![cfg(feature = "pkcs11")]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use common::softhsm::{self, USER_PIN};
use keyledger::audit::SignedCheckpoint;
use keyledger::event::Actor;
use keyledger::hsm::pkcs11::{Pkcs11Config, Pkcs11Hsm};
use keyledger::hsm::software::SoftwareHsm;
use keyledger::hsm::{HsmBackend, HsmError};
use keyledger::ledger::{InitialAdmin, KeyHome, Ledger, LedgerError};
use keyledger::sample_events::realistic_event;
use keyledger::secret::SecretBytes;
use keyledger::store::EventStore;
use keyledger::store::embedded::EmbeddedStore;
use keyledger::writer::WriterConfig;

const TOKEN: &str = "keyledger-ledger";

/// The token directory (one per test process) with the test token in it.
fn token_dir() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        softhsm::use_token_dir(dir.path());
        softhsm::init_token(TOKEN);
        dir
    })
    .path()
}

/// A new connection to the test token (its own session pool).
fn open_token() -> Arc<dyn HsmBackend> {
    token_dir();
    let mut config = Pkcs11Config::new(
        softhsm::module_path(),
        TOKEN,
        SecretBytes::from_slice(USER_PIN.as_bytes()),
    );
    config.pool_size = 2;
    Arc::new(Pkcs11Hsm::open(config).expect("open the test token"))
}

fn admin() -> InitialAdmin {
    InitialAdmin {
        admin_id: "admin-1".into(),
        public_key: "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=".into(),
    }
}

fn config() -> WriterConfig {
    WriterConfig {
        checkpoint_interval: Duration::ZERO,
        ..WriterConfig::default()
    }
}

/// Appends `n` realistic events from 4 threads.
fn append(ledger: &Ledger, from: u64, n: u64) {
    std::thread::scope(|s| {
        for t in 0..4u64 {
            s.spawn(move || {
                for i in (from + t..from + n).step_by(4) {
                    ledger
                        .append(realistic_event(i, t as usize).expect("draft"))
                        .expect("append");
                }
            });
        }
    });
}

/// Files of the instance's ledger-keys directory with extension `ext`.
fn key_files(ledger_keys: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(ledger_keys)
        .expect("ledger-keys dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    out.sort();
    out
}

/// The label an `<id>.hsm` reference names.
fn label_of(reference: &Path) -> String {
    let text = std::fs::read_to_string(reference).expect("reference");
    text.lines()
        .find_map(|l| l.strip_prefix("label "))
        .expect("label line")
        .to_string()
}

/// Exports the ledger at a fresh checkpoint into `out`.
fn export(ledger: &Ledger, out: &Path) -> u64 {
    let note = ledger.writer().checkpoint().expect("checkpoint");
    let size = keyledger::checkpoint::parse_unverified(note.as_bytes())
        .expect("checkpoint")
        .size;
    let checkpoint = SignedCheckpoint { note, size };
    keyledger::bundle::export_bundle(ledger.writer(), &checkpoint, out).expect("export");
    size
}

#[test]
fn an_hsm_held_ledger_key_signs_rotates_survives_reopening_and_verifies_offline() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let hsm = open_token();
    let store = EmbeddedStore::open(&data).expect("store");
    let ledger = Ledger::create_in(
        &store,
        &data,
        "vault",
        &admin(),
        "op",
        config(),
        KeyHome::Hsm(hsm.clone()),
    )
    .expect("create with the ledger key in the token");
    let genesis = ledger.writer().current_key();
    assert_eq!(genesis.location(), "hsm:pkcs11");
    let keys_dir = ledger.keys_dir().to_path_buf();
    assert!(
        key_files(&keys_dir, "key").is_empty(),
        "no private key file"
    );
    let refs = key_files(&keys_dir, "hsm");
    assert_eq!(refs.len(), 1);
    assert_eq!(
        refs[0].file_stem().and_then(|s| s.to_str()),
        Some(genesis.key_id_hex().as_str())
    );
    // The published key is the token's key pair.
    assert_eq!(
        hsm.signing_public_key("vault", &label_of(&refs[0]))
            .expect("token key"),
        genesis.verifying_key().to_bytes()
    );
    let trusted_key = genesis.note_verifier().to_string();

    append(&ledger, 0, 40);
    let trusted_checkpoint = ledger.writer().checkpoint().expect("checkpoint");
    ledger
        .rotate_key(Actor::operator("op"), "rotate-1")
        .expect("rotate in the token");
    let second = ledger.writer().current_key();
    assert_ne!(second.key_id_hex(), genesis.key_id_hex());
    assert_eq!(second.location(), "hsm:pkcs11", "rotation stays in the HSM");
    assert_eq!(key_files(&keys_dir, "hsm").len(), 2);
    append(&ledger, 100, 10);
    ledger.shutdown();
    drop(store);
    let second_id = second.key_id_hex();
    drop((genesis, second));
    assert_eq!(Arc::strong_count(&hsm), 1, "nothing else holds the token");
    drop(hsm); // closes every session to the token

    let store = EmbeddedStore::open(&data).expect("store");
    let err = Ledger::open(&store, &data, "vault", config())
        .err()
        .expect("an HSM-held key needs the HSM");
    assert!(
        matches!(err, LedgerError::KeyStorage { ref key_id, .. } if *key_id == second_id),
        "{err}"
    );
    assert!(err.to_string().contains("pkcs11"), "{err}");
    let software: Arc<dyn HsmBackend> = Arc::new(SoftwareHsm::new());
    let err = Ledger::open_with_hsm(&store, &data, "vault", config(), software)
        .err()
        .expect("not the backend holding the key");
    assert!(err.to_string().contains("pkcs11"), "{err}");

    let hsm = open_token();
    let ledger = Ledger::open_with_hsm(&store, &data, "vault", config(), hsm)
        .expect("reopen with a new connection to the token");
    assert_eq!(
        ledger.writer().current_key().key_id_hex(),
        second_id,
        "reopen finds the key in force in the token"
    );
    assert!(matches!(ledger.key_home(), KeyHome::Hsm(_)));
    append(&ledger, 200, 10);
    ledger
        .rotate_key(Actor::operator("op"), "rotate-2")
        .expect("rotate after reopening");
    append(&ledger, 300, 5);
    let bundle = dir.path().join("bundle");
    let size = export(&ledger, &bundle);
    ledger.shutdown();
    assert_eq!(size, 1 + 40 + 1 + 10 + 10 + 1 + 5);

    let report =
        keyledger::verify::verify_bundle(&bundle, &Default::default(), &|_| {}).expect("verify");
    assert!(report.ok(), "{:?}", report.failure);
    assert_eq!((report.records, report.key_rotations), (size, 2));

    // The offline verifier, with the genesis key and an earlier checkpoint as
    // trust anchors, exactly as for a file-signed log.
    let key_file = dir.path().join("trusted.pub");
    std::fs::write(&key_file, format!("{trusted_key}\n")).expect("key file");
    let cp_file = dir.path().join("trusted.checkpoint");
    std::fs::write(&cp_file, &trusted_checkpoint).expect("checkpoint file");
    let out = Command::new(env!("CARGO_BIN_EXE_keyledger"))
        .args([
            "verify",
            bundle.to_str().expect("utf8"),
            "--trusted-key",
            key_file.to_str().expect("utf8"),
            "--trusted-checkpoint",
            cp_file.to_str().expect("utf8"),
        ])
        .output()
        .expect("run keyledger verify");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.starts_with(&format!("OK: {size} records of instance vault verified")),
        "{stdout}"
    );
}

#[test]
fn a_file_ledger_key_moves_into_the_hsm_by_rotation() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let hsm = open_token();
    let store = EmbeddedStore::open(&data).expect("store");
    let ledger = Ledger::create(&store, &data, "moving", &admin(), "op", config()).expect("create");
    assert_eq!(ledger.writer().current_key().location(), "file");
    append(&ledger, 0, 8);
    ledger
        .rotate_key_to(KeyHome::Hsm(hsm.clone()), Actor::operator("op"), "into-hsm")
        .expect("rotate into the HSM");
    let first_hsm = ledger.writer().current_key();
    assert_eq!(first_hsm.location(), "hsm:pkcs11");
    append(&ledger, 100, 8);
    ledger
        .rotate_key(Actor::operator("op"), "again")
        .expect("rotate");
    let in_force = ledger.writer().current_key();
    assert_eq!(in_force.location(), "hsm:pkcs11", "later rotations stay");
    let keys_dir = ledger.keys_dir().to_path_buf();
    ledger.shutdown();
    assert_eq!(
        key_files(&keys_dir, "key").len(),
        1,
        "only the genesis key file"
    );
    assert_eq!(key_files(&keys_dir, "hsm").len(), 2);

    // A reference that names another key pair of the token is refused.
    let reference = keys_dir.join(format!("{}.hsm", in_force.key_id_hex()));
    let original = std::fs::read_to_string(&reference).expect("reference");
    let other_label = label_of(&keys_dir.join(format!("{}.hsm", first_hsm.key_id_hex())));
    let forged = original
        .lines()
        .map(|l| match l.strip_prefix("label ") {
            Some(_) => format!("label {other_label}"),
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n";
    std::fs::write(&reference, forged).expect("forge");
    let err = Ledger::open_with_hsm(&store, &data, "moving", config(), hsm.clone())
        .err()
        .expect("a reference to another key");
    assert!(
        err.to_string().contains(&first_hsm.key_id_hex()) && err.to_string().contains("wrong"),
        "{err}"
    );
    std::fs::write(&reference, original).expect("restore");

    let ledger = Ledger::open_with_hsm(&store, &data, "moving", config(), hsm).expect("reopen");
    assert_eq!(
        ledger.writer().current_key().key_id_hex(),
        in_force.key_id_hex()
    );
    append(&ledger, 200, 4);
    let bundle = dir.path().join("bundle");
    let size = export(&ledger, &bundle);
    ledger.shutdown();
    let report =
        keyledger::verify::verify_bundle(&bundle, &Default::default(), &|_| {}).expect("verify");
    assert!(report.ok(), "{:?}", report.failure);
    assert_eq!((report.records, report.key_rotations), (size, 2));
}

#[test]
fn a_backend_that_cannot_sign_cannot_hold_a_ledger_key() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let store = EmbeddedStore::open(&data).expect("store");
    let software: Arc<dyn HsmBackend> = Arc::new(SoftwareHsm::new());
    let err = Ledger::create_in(
        &store,
        &data,
        "soft",
        &admin(),
        "op",
        config(),
        KeyHome::Hsm(software.clone()),
    )
    .err()
    .expect("refused");
    assert!(
        matches!(err, LedgerError::Hsm(HsmError::Unsupported(_))),
        "{err}"
    );
    assert!(
        store.list_instances().expect("list").is_empty(),
        "nothing was created"
    );
    let ledger = Ledger::create(&store, &data, "soft", &admin(), "op", config()).expect("create");
    let before = ledger.writer().current_key().key_id_hex();
    let err = ledger
        .rotate_key_to(KeyHome::Hsm(software), Actor::operator("op"), "rot")
        .expect_err("refused");
    assert!(
        matches!(err, LedgerError::Hsm(HsmError::Unsupported(_))),
        "{err}"
    );
    assert_eq!(ledger.writer().current_key().key_id_hex(), before);
    assert!(matches!(ledger.key_home(), KeyHome::File));
    ledger
        .append(realistic_event(1, 0).expect("d"))
        .expect("the file key still signs");
    ledger.shutdown();
}

/// Runs the `keyledger` binary on `data` (the token's PIN in the environment
/// only when `pin` is set).
fn keyledger(args: &[&str], data: &Path, pin: bool) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_keyledger"));
    cmd.args(args).env("KEYLEDGER_DATA_DIR", data);
    if pin {
        cmd.env("KEYLEDGER_PKCS11_PIN", USER_PIN);
    } else {
        cmd.env_remove("KEYLEDGER_PKCS11_PIN");
    }
    cmd.output().expect("run keyledger")
}

#[test]
fn the_command_line_keeps_an_instance_ledger_key_in_the_token() {
    token_dir(); // SOFTHSM2_CONF for the child processes
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let module = softhsm::module_path();
    let token_flags = [
        "--pkcs11-module",
        module.to_str().expect("utf8"),
        "--pkcs11-token",
        TOKEN,
    ];
    // `keyledger ledger <args> --instance cli-hsm [token flags]`
    let ledger = |args: &[&str], token: bool, pin: bool| {
        let mut all = vec!["ledger"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--instance", "cli-hsm"]);
        if token {
            all.extend_from_slice(&token_flags);
        }
        keyledger(&all, &data, pin)
    };
    let ok = |out: std::process::Output| {
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{stderr}");
        out
    };
    ok(ledger(
        &["generate", "--events", "50", "--threads", "2"],
        true,
        true,
    ));
    let keys_dir = keyledger::ledger::keys_dir(&data, "cli-hsm");
    assert!(
        key_files(&keys_dir, "key").is_empty(),
        "no private key file"
    );
    assert_eq!(key_files(&keys_dir, "hsm").len(), 1);

    let no_token = ledger(&["checkpoint"], false, true);
    assert_eq!(no_token.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&no_token.stderr).contains("pkcs11"));
    let no_pin = ledger(&["checkpoint"], true, false);
    assert_eq!(no_pin.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&no_pin.stderr).contains("KEYLEDGER_PKCS11_PIN"));

    let keys = ok(ledger(&["keys"], false, false));
    let key_file = dir.path().join("trusted.pub");
    std::fs::write(&key_file, &keys.stdout).expect("key file");
    ok(ledger(&["rotate-key"], true, true));
    assert_eq!(
        key_files(&keys_dir, "hsm").len(),
        2,
        "the new key is in the token"
    );
    ok(ledger(
        &["generate", "--events", "20", "--threads", "2"],
        true,
        true,
    ));
    let bundle = dir.path().join("bundle");
    let bundle = bundle.to_str().expect("utf8");
    ok(ledger(&["export", "--out", bundle], true, true));
    let trusted = key_file.to_str().expect("utf8");
    let out = keyledger(&["verify", bundle, "--trusted-key", trusted], &data, false);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.starts_with("OK: 72 records of instance cli-hsm verified"),
        "{stdout}"
    );
}
