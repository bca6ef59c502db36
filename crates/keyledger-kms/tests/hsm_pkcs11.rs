//! The PKCS#11 backend against a throwaway SoftHSM2 token: the backend-
//! agnostic conformance suite (`keyledger_kms::conformance`), one
//! `#[test]` per check, plus what only a PKCS#11 token can show: the master
//! key is a sensitive, non-extractable token object that survives a restart,
//! key-version objects are never extractable, ledger signing keys are
//! sensitive, never-extractable token key pairs that survive a restart, and
//! `CKM_EDDSA` reproduces the RFC 8032 test vectors.
//!
//! SoftHSM2 must be installed (`scripts/softhsm-setup`); without it these
//! tests fail, they do not skip. `KEYLEDGER_PKCS11_MODULE` overrides the
//! module path.
#![cfg(feature = "pkcs11")]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::softhsm::{self, USER_PIN, init_token, module_path};
use keyledger_kms::conformance;
use keyledger_kms::hsm::pkcs11::{Pkcs11Config, Pkcs11Hsm};
use keyledger_kms::hsm::prelude::*;
use keyledger_kms::hsm::{HsmError, KeyBinding, SealedPart, WrappedMaterial, ceremony};
use keyledger_kms::secret::SecretBytes;

const TOKEN: &str = "keyledger-test";
/// A second token nobody in this process logs into before the PIN test.
const TOKEN_PIN_TEST: &str = "keyledger-pin-test";
/// A third token holding the RFC 8032 vectors' keys, imported by
/// softhsm2-util before this process first initialises the module.
const TOKEN_KAT: &str = "keyledger-kat";
/// Set (to a state file) in the child process of the restart test.
const RESTART_ENV: &str = "KEYLEDGER_P11_RESTART_STATE";

struct Env {
    _dir: Option<tempfile::TempDir>,
    module: PathBuf,
    hsm: Pkcs11Hsm,
}

fn config(module: &Path, label: &str, pin: &str) -> Pkcs11Config {
    let mut c = Pkcs11Config::new(module, label, SecretBytes::from_slice(pin.as_bytes()));
    c.pool_size = 2;
    c
}

/// One token in a temporary directory for the whole test process. The child
/// of the restart test reuses its parent's token (`SOFTHSM2_CONF` is inherited).
fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        let module = module_path();
        let dir = if std::env::var_os(RESTART_ENV).is_some() {
            None
        } else {
            let dir = tempfile::tempdir().expect("temp dir");
            softhsm::use_token_dir(dir.path());
            init_token(TOKEN);
            init_token(TOKEN_PIN_TEST);
            init_token(TOKEN_KAT);
            import_rfc8032_keys(dir.path());
            Some(dir)
        };
        let hsm = Pkcs11Hsm::open(config(&module, TOKEN, USER_PIN)).expect("open the test token");
        Env {
            _dir: dir,
            module,
            hsm,
        }
    })
}

fn hsm() -> &'static Pkcs11Hsm {
    &env().hsm
}

// ---- the conformance suite, one test per check ----

keyledger_kms::hsm_conformance_tests!(hsm);

#[test]
fn every_check_is_listed() {
    // `check_all` runs the same list; a check added there must be added above.
    assert_eq!(conformance::CHECKS.len(), 20);
}

// ---- PKCS#11-specific ----

/// Loads `generation` of `instance`'s master key from two random parts,
/// commits and activates it; returns its verification pattern.
fn load_master_key(hsm: &dyn HsmBackend, instance: &str, generation: u32) -> String {
    let public = hsm
        .ceremony_public_key(instance, generation)
        .expect("ceremony key");
    for owner in ["alice", "bob"] {
        let part = SecretBytes::random(32).expect("rng");
        let sealed: SealedPart =
            ceremony::seal_part(&public, instance, generation, owner, &part).expect("seal");
        hsm.load_part(instance, generation, owner, &sealed)
            .expect("load part");
    }
    let vp = hsm.commit(instance, generation, 2).expect("commit");
    hsm.activate(instance, generation).expect("activate");
    vp
}

fn binding(instance: &str, key: &str, generation: u32) -> KeyBinding {
    KeyBinding {
        instance: instance.into(),
        key_id: key.into(),
        version: 1,
        mk_generation: generation,
    }
}

#[test]
fn master_key_is_a_sensitive_non_extractable_token_object() {
    let hsm = hsm();
    load_master_key(hsm, "p11-mk-attrs", 1);
    let info = hsm
        .master_key_object_info("p11-mk-attrs", 1)
        .expect("mk object");
    assert!(info.token_object, "master key must be a token object");
    assert!(info.sensitive, "master key must be CKA_SENSITIVE");
    assert!(!info.extractable, "master key must not be CKA_EXTRACTABLE");
    assert!(
        !info.value_readable,
        "the token must refuse CKA_VALUE of the master key"
    );
}

#[test]
fn key_version_objects_are_never_extractable() {
    let hsm = hsm();
    load_master_key(hsm, "p11-root", 1);
    let b = binding("p11-root", "root-1", 1);
    let material = hsm.generate_key(&b, 32).expect("generate");
    let dek = SecretBytes::random(32).expect("rng");
    let sealed = hsm
        .encrypt(&b, &material.wrapped, &dek, b"aad")
        .expect("encrypt");
    assert_eq!(
        hsm.decrypt(&b, &material.wrapped, &sealed, b"aad")
            .expect("decrypt"),
        dek
    );
    let info = hsm
        .key_object_info(&b, &material.wrapped)
        .expect("key object");
    assert!(
        !info.token_object,
        "unwrapped key versions are session objects"
    );
    assert!(
        info.sensitive && !info.extractable && !info.value_readable,
        "{info:?}"
    );
}

#[test]
fn kcv_is_computed_in_the_token_and_matches_the_reference() {
    let hsm = hsm();
    load_master_key(hsm, "p11-kcv", 1);
    for (i, key) in [[0u8; 32], [0x5a; 32]].iter().enumerate() {
        let b = binding("p11-kcv", &format!("k{i}"), 1);
        let material = SecretBytes::from_slice(key);
        let imported = hsm.import_key(&b, &material).expect("import");
        assert_eq!(imported.kcv, ceremony::kcv(key));
        assert_eq!(
            hsm.export_key(&b, &imported.wrapped).expect("export"),
            material
        );
    }
    assert_eq!(ceremony::kcv(&[0u8; 32]), "dc95c0");
}

#[test]
fn wrapped_material_only_unwraps_under_its_own_binding() {
    let hsm = hsm();
    load_master_key(hsm, "p11-bind", 1);
    let b = binding("p11-bind", "k", 1);
    let m = hsm.generate_key(&b, 32).expect("generate");
    for other in [
        KeyBinding {
            key_id: "k2".into(),
            ..b.clone()
        },
        KeyBinding {
            version: 2,
            ..b.clone()
        },
    ] {
        assert_eq!(hsm.export_key(&other, &m.wrapped), Err(HsmError::Decrypt));
        let dek = SecretBytes::random(32).expect("rng");
        assert_eq!(
            hsm.encrypt(&other, &m.wrapped, &dek, b""),
            Err(HsmError::Decrypt)
        );
    }
    let mut bad = m.wrapped.clone();
    let last = bad.blob.len() - 1;
    bad.blob[last] ^= 1;
    assert_eq!(hsm.export_key(&b, &bad), Err(HsmError::Decrypt));
}

/// Encrypts a DEK under a fresh key; returns what is needed to decrypt it.
fn sealed_dek(
    hsm: &Pkcs11Hsm,
    instance: &str,
) -> (KeyBinding, WrappedMaterial, Vec<u8>, SecretBytes) {
    let b = binding(instance, "survivor", 1);
    let m = hsm.generate_key(&b, 32).expect("generate");
    let dek = SecretBytes::random(32).expect("rng");
    let sealed = hsm
        .encrypt(&b, &m.wrapped, &dek, b"restart")
        .expect("encrypt");
    (b, m.wrapped, sealed, dek)
}

#[test]
fn master_key_survives_reopening_the_module() {
    let env = env();
    let first = Pkcs11Hsm::open(config(&env.module, TOKEN, USER_PIN)).expect("open");
    let vp = load_master_key(&first, "p11-reopen", 1);
    let (b, wrapped, sealed, dek) = sealed_dek(&first, "p11-reopen");
    drop(first); // closes its sessions: every session object is gone
    let second = Pkcs11Hsm::open(config(&env.module, TOKEN, USER_PIN)).expect("re-open");
    let status = second.master_key_status("p11-reopen").expect("status");
    assert_eq!(
        status.current,
        Some((1, vp)),
        "the current master key is found on the token"
    );
    assert_eq!(status.new, None);
    assert_eq!(
        second
            .decrypt(&b, &wrapped, &sealed, b"restart")
            .expect("decrypt"),
        dek
    );
}

/// The restart test's state file: wrapped blob, ciphertext, DEK,
/// verification pattern and the signing key's public key, hex, one per line.
fn write_state(path: &Path, wrapped: &WrappedMaterial, sealed: &[u8], dek: &SecretBytes, vp: &str) {
    let signing = hsm()
        .generate_signing_key("p11-restart", "ledger")
        .expect("signing key");
    let text = format!(
        "{}\n{}\n{}\n{}\n{}\n",
        hex::encode(&wrapped.blob),
        hex::encode(sealed),
        hex::encode(dek.expose()),
        vp,
        hex::encode(signing),
    );
    std::fs::write(path, text).expect("state file");
}

#[test]
fn master_key_survives_a_process_restart() {
    let hsm = hsm();
    let vp = load_master_key(hsm, "p11-restart", 1);
    let (_, wrapped, sealed, dek) = sealed_dek(hsm, "p11-restart");
    let state = tempfile::NamedTempFile::new().expect("state file");
    write_state(state.path(), &wrapped, &sealed, &dek, &vp);
    let out = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "restart_child_process",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(RESTART_ENV, state.path())
        .output()
        .expect("spawn the child test process");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child process failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs only as the child of `master_key_survives_a_process_restart`: a new
/// process opens the token, finds the master key and decrypts, and finds the
/// signing key and signs with it.
#[test]
#[ignore = "run by master_key_survives_a_process_restart in a child process"]
fn restart_child_process() {
    let Some(state) = std::env::var_os(RESTART_ENV) else {
        return;
    };
    let text = std::fs::read_to_string(state).expect("state file");
    let lines: Vec<&str> = text.lines().collect();
    let hsm = hsm();
    let status = hsm.master_key_status("p11-restart").expect("status");
    assert_eq!(status.current, Some((1, lines[3].to_string())));
    let wrapped = WrappedMaterial {
        mk_generation: 1,
        blob: hex::decode(lines[0]).expect("hex"),
    };
    let sealed = hex::decode(lines[1]).expect("hex");
    let dek = hex::decode(lines[2]).expect("hex");
    let b = binding("p11-restart", "survivor", 1);
    let plain = hsm
        .decrypt(&b, &wrapped, &sealed, b"restart")
        .expect("decrypt after restart");
    assert_eq!(plain.expose(), &dek[..]);
    let public: [u8; 32] = hex::decode(lines[4])
        .expect("hex")
        .try_into()
        .expect("32 bytes");
    assert_eq!(
        hsm.signing_public_key("p11-restart", "ledger")
            .expect("signing key after restart"),
        public
    );
    let sig = hsm
        .sign("p11-restart", "ledger", b"after a restart")
        .expect("sign after restart");
    assert!(conformance::verifies(&public, b"after a restart", &sig));
}

#[test]
fn a_wrong_pin_is_refused_without_echoing_it() {
    let env = env();
    let err = Pkcs11Hsm::open(config(&env.module, TOKEN_PIN_TEST, "not-the-pin-4242"))
        .expect_err("wrong PIN must fail");
    let text = format!("{err} {err:?}");
    assert!(text.contains("PIN"), "{text}");
    assert!(
        !text.contains("not-the-pin-4242"),
        "the PIN leaked into the error: {text}"
    );
    let ok = Pkcs11Hsm::open(config(&env.module, TOKEN_PIN_TEST, USER_PIN));
    assert!(ok.is_ok(), "{ok:?}");
}

#[test]
fn unknown_token_is_a_clear_error() {
    let env = env();
    let err =
        Pkcs11Hsm::open(config(&env.module, "no-such-token", USER_PIN)).expect_err("no token");
    assert!(format!("{err}").contains("no-such-token"), "{err}");
}

#[test]
fn a_small_key_cache_evicts_and_stays_correct() {
    let env = env();
    let mut c = config(&env.module, TOKEN, USER_PIN);
    c.key_cache_capacity = 2;
    let hsm = Pkcs11Hsm::open(c).expect("open");
    load_master_key(&hsm, "p11-cache", 1);
    let keys: Vec<_> = (0..5)
        .map(|i| {
            let b = binding("p11-cache", &format!("k{i}"), 1);
            let m = hsm.generate_key(&b, 32).expect("generate");
            (b, m.wrapped)
        })
        .collect();
    std::thread::scope(|scope| {
        for t in 0..2 {
            let (hsm, keys) = (&hsm, &keys);
            scope.spawn(move || {
                for round in 0..50 {
                    let (b, w) = &keys[(round + t) % keys.len()];
                    let dek = SecretBytes::random(32).expect("rng");
                    let sealed = hsm.encrypt(b, w, &dek, b"x").expect("encrypt");
                    assert_eq!(hsm.decrypt(b, w, &sealed, b"x").expect("decrypt"), dek);
                }
            });
        }
    });
    assert!(hsm.cached_keys() <= 2);
}

#[test]
fn mechanisms_work_from_two_threads() {
    let hsm = hsm();
    load_master_key(hsm, "p11-threads", 1);
    let b = binding("p11-threads", "k", 1);
    let m = hsm.generate_key(&b, 32).expect("generate");
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                for _ in 0..200 {
                    let dek = SecretBytes::random(32).expect("rng");
                    let sealed = hsm.encrypt(&b, &m.wrapped, &dek, b"t").expect("encrypt");
                    assert_eq!(sealed.len(), 12 + 32 + 16);
                    assert_eq!(
                        hsm.decrypt(&b, &m.wrapped, &sealed, b"t").expect("decrypt"),
                        dek
                    );
                }
            });
        }
    });
}

#[test]
fn opaque_payloads_are_generic_secrets() {
    let hsm = hsm();
    load_master_key(hsm, "p11-generic", 1);
    for len in [1usize, 7, 20, 64, 8192] {
        let b = binding("p11-generic", &format!("g{len}"), 1);
        let generated = hsm.generate_key(&b, len).expect("generate");
        let exported = hsm.export_key(&b, &generated.wrapped).expect("export");
        assert_eq!(exported.len(), len);
        assert_eq!(generated.kcv, ceremony::kcv(exported.expose()));
        let payload = SecretBytes::random(len).expect("rng");
        let imported = hsm.import_key(&b, &payload).expect("import");
        assert_eq!(imported.kcv, ceremony::kcv(payload.expose()));
        assert_eq!(
            hsm.export_key(&b, &imported.wrapped).expect("export"),
            payload
        );
        // Not an AES-256 key: no data-key envelope under it.
        let dek = SecretBytes::random(32).expect("rng");
        let refused = hsm.encrypt(&b, &imported.wrapped, &dek, b"");
        assert!(matches!(refused, Err(HsmError::Invalid(_))), "{refused:?}");
        // Relabelling it as an AES key (first byte) does not unwrap.
        let mut relabelled = imported.wrapped.clone();
        relabelled.blob[0] = 0x01;
        assert_eq!(
            hsm.encrypt(&b, &relabelled, &dek, b""),
            Err(HsmError::Decrypt)
        );
    }
    // Master-key rotation re-wraps opaque payloads exactly.
    let b1 = binding("p11-generic", "rotated", 1);
    let payload = SecretBytes::random(20).expect("rng");
    let w1 = hsm.import_key(&b1, &payload).expect("import").wrapped;
    load_master_key(hsm, "p11-generic", 2);
    let w2 = hsm.rewrap_material(&b1, &w1, 2).expect("rewrap");
    let b2 = KeyBinding {
        mk_generation: 2,
        ..b1
    };
    assert_eq!(hsm.export_key(&b2, &w2).expect("export"), payload);
    let b = binding("p11-generic", "bounds", 2);
    assert!(matches!(hsm.generate_key(&b, 0), Err(HsmError::Invalid(_))));
    assert!(matches!(
        hsm.generate_key(&b, 8193),
        Err(HsmError::Invalid(_))
    ));
}

#[test]
fn no_master_key_part_or_key_material_reaches_the_token_files_in_clear() {
    let env = env();
    let Some(dir) = env._dir.as_ref() else { return };
    let hsm = &env.hsm;
    let (inst, generation) = ("p11-disk", 1);
    let parts = [
        SecretBytes::random(32).expect("rng"),
        SecretBytes::random(32).expect("rng"),
    ];
    let public = hsm
        .ceremony_public_key(inst, generation)
        .expect("ceremony key");
    for (i, part) in parts.iter().enumerate() {
        let owner = format!("owner-{i}");
        let sealed = ceremony::seal_part(&public, inst, generation, &owner, part).expect("seal");
        hsm.load_part(inst, generation, &owner, &sealed)
            .expect("load");
    }
    hsm.commit(inst, generation, 2).expect("commit");
    hsm.activate(inst, generation).expect("activate");
    let master_key = ceremony::combine_parts(&parts).expect("combine");
    let b = binding(inst, "k", generation);
    let material = SecretBytes::random(32).expect("rng");
    let wrapped = hsm.import_key(&b, &material).expect("import").wrapped;
    hsm.encrypt(&b, &wrapped, &material, b"").expect("encrypt");
    let scanned = common::secrets_scan::assert_dir_clean(
        &dir.path().join("tokens"),
        &[
            ("master key", master_key.expose()),
            ("part 0", parts[0].expose()),
            ("part 1", parts[1].expose()),
            ("key material", material.expose()),
        ],
    );
    assert!(scanned > 0, "the token directory holds the token's files");
}

// ---- signing keys ----

#[test]
fn signing_is_offered() {
    assert!(hsm().supports_signing(), "PKCS#11 holds ledger keys");
}

#[test]
fn signing_private_key_is_a_sensitive_never_extractable_token_object() {
    let hsm = hsm();
    hsm.generate_signing_key("p11-sig-attrs", "ledger")
        .expect("generate");
    let info = hsm
        .signing_key_object_info("p11-sig-attrs", "ledger")
        .expect("private key object");
    assert!(
        info.token_object,
        "the key pair survives restarts: {info:?}"
    );
    assert!(info.sensitive && info.always_sensitive, "{info:?}");
    assert!(!info.extractable && info.never_extractable, "{info:?}");
    assert!(
        !info.value_readable,
        "the token must refuse CKA_VALUE of the private key"
    );
    assert!(matches!(
        hsm.signing_key_object_info("p11-sig-attrs", "other"),
        Err(HsmError::NoSigningKey { .. })
    ));
}

#[test]
fn signing_key_survives_reopening_the_module() {
    let env = env();
    let first = Pkcs11Hsm::open(config(&env.module, TOKEN, USER_PIN)).expect("open");
    let public = first
        .generate_signing_key("p11-sig-reopen", "ledger")
        .expect("generate");
    let before = first.sign("p11-sig-reopen", "ledger", b"m").expect("sign");
    drop(first);
    let second = Pkcs11Hsm::open(config(&env.module, TOKEN, USER_PIN)).expect("re-open");
    assert_eq!(
        second
            .signing_public_key("p11-sig-reopen", "ledger")
            .expect("found on the token"),
        public,
        "the public key is stable across re-opening"
    );
    let after = second.sign("p11-sig-reopen", "ledger", b"m").expect("sign");
    assert_eq!(
        after, before,
        "the same key signs (Ed25519 is deterministic)"
    );
    assert!(conformance::verifies(&public, b"m", &after));
}

/// PKCS#8 PEM of an Ed25519 seed (RFC 8410).
fn ed25519_pkcs8_pem(seed: &[u8]) -> String {
    use base64::Engine;
    let mut der = hex::decode("302e020100300506032b657004220420").expect("hex");
    der.extend_from_slice(seed);
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    format!("-----BEGIN PRIVATE KEY-----\n{b64}\n-----END PRIVATE KEY-----\n")
}

/// The label under which RFC 8032 vector `i` is imported into `TOKEN_KAT`.
fn kat_label(i: usize) -> String {
    format!("kat-{i}")
}

/// Imports each RFC 8032 section 7.1 seed into `TOKEN_KAT` (softhsm2-util,
/// under the backend's object id for the pair). Done while setting up the
/// token directory, before the first `C_Initialize`: SoftHSM2 notices
/// objects another process adds to a token this process already has open
/// only through a generation counter that concurrent writers in this
/// process can race (CI once saw `NoSigningKey` for a key imported a moment
/// earlier), so the keys must be on disk before the module first reads it.
fn import_rfc8032_keys(dir: &Path) {
    let vectors = common::vectors::records("ed25519_rfc8032.txt", 5);
    for (i, r) in vectors.iter().enumerate() {
        let label = kat_label(i);
        let pem = dir.join(format!("{label}.pem"));
        std::fs::write(
            &pem,
            ed25519_pkcs8_pem(&common::vectors::bytes(r, "SECRET KEY")),
        )
        .expect("pem");
        let id = hex::encode(keyledger_kms::hsm::pkcs11::signing_key_object_id(
            "p11-kat", &label,
        ));
        softhsm::softhsm2_util(&[
            "--import",
            pem.to_str().expect("utf8"),
            "--token",
            TOKEN_KAT,
            "--label",
            &label,
            "--id",
            &id,
            "--pin",
            USER_PIN,
        ]);
        std::fs::remove_file(&pem).expect("remove pem");
    }
}

/// RFC 8032 section 7.1 through the backend's `sign` (`CKM_EDDSA`): with
/// each vector's seed imported into the token (see `import_rfc8032_keys`),
/// the backend must return exactly the vector's public key and signature.
#[test]
fn rfc8032_known_answers_through_the_token() {
    let env = env();
    let hsm = Pkcs11Hsm::open(config(&env.module, TOKEN_KAT, USER_PIN)).expect("open KAT token");
    let vectors = common::vectors::records("ed25519_rfc8032.txt", 5);
    for (i, r) in vectors.iter().enumerate() {
        let name = &r["SECTION"];
        let label = kat_label(i);
        let public = hsm
            .signing_public_key("p11-kat", &label)
            .expect("public key");
        assert_eq!(
            public.as_slice(),
            common::vectors::bytes(r, "PUBLIC KEY").as_slice(),
            "{name}: public key"
        );
        let msg = common::vectors::bytes(r, "MESSAGE");
        let sig = hsm.sign("p11-kat", &label, &msg).expect("sign");
        assert_eq!(
            sig.as_slice(),
            common::vectors::bytes(r, "SIGNATURE").as_slice(),
            "{name}: signature"
        );
    }
}
