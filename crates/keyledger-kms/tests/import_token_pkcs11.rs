//! The import-token flow with the PKCS#11 backend (SoftHSM2): the token's
//! RSA private key (PKCS#8, ~1.2 KB) and nonce (12 bytes) are wrapped and
//! unwrapped as generic secrets by the token's master key, and the imported
//! root key wraps data keys there. SoftHSM2 must be installed
//! (`scripts/softhsm-setup`); without it this test fails, it does not skip.
#![cfg(feature = "pkcs11")]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use common::key_env::{self, assert_log_consistent, user};
use common::kp_client;
use keyledger_kms::hsm::ceremony;
use keyledger_kms::hsm::pkcs11::{Pkcs11Config, Pkcs11Hsm};
use keyledger_kms::import_token::ImportTokenRequest;
use keyledger_kms::secret::SecretBytes;
use keyledger_kms::service::{CreateKey, KeyMaterialSource};

const LABEL: &str = "keyledger-import";
const PIN: &str = "user-pin-import-1";

fn module_path() -> PathBuf {
    if let Ok(p) = std::env::var("KEYLEDGER_PKCS11_MODULE") {
        return PathBuf::from(p);
    }
    [
        "/usr/lib/softhsm/libsofthsm2.so",
        "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
        "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
        "/usr/local/lib/softhsm/libsofthsm2.so",
    ]
    .iter()
    .map(Path::new)
    .find(|p| p.is_file())
    .map(Path::to_path_buf)
    .expect("SoftHSM2 is not installed: run scripts/softhsm-setup or set KEYLEDGER_PKCS11_MODULE")
}

/// A fresh SoftHSM2 token in `dir` (the only test in this binary, so setting
/// `SOFTHSM2_CONF` races with nothing).
fn softhsm(dir: &Path) -> Pkcs11Hsm {
    let tokens = dir.join("tokens");
    std::fs::create_dir(&tokens).expect("token dir");
    let conf = dir.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
            tokens.display()
        ),
    )
    .expect("softhsm2.conf");
    // SAFETY: single-threaded at this point: the only test of this binary
    // sets the variable before anything calls into PKCS#11.
    unsafe { std::env::set_var("SOFTHSM2_CONF", &conf) };
    let out = Command::new("softhsm2-util")
        .args([
            "--init-token",
            "--free",
            "--label",
            LABEL,
            "--so-pin",
            "so-pin-import-1",
            "--pin",
            PIN,
        ])
        .output()
        .expect("softhsm2-util: run scripts/softhsm-setup");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut config = Pkcs11Config::new(
        module_path(),
        LABEL,
        SecretBytes::from_slice(PIN.as_bytes()),
    );
    config.pool_size = 2;
    Pkcs11Hsm::open(config).expect("open token")
}

#[test]
fn import_tokens_work_with_a_pkcs11_token() {
    let hsm_dir = tempfile::tempdir().expect("tmp");
    let data = tempfile::tempdir().expect("tmp");
    let env = key_env::ready(data.path(), "acme", Arc::new(softhsm(hsm_dir.path())));
    let (metadata, _) = env
        .service
        .create_import_token(&user("a"), "t", &ImportTokenRequest::default())
        .expect("token");
    let (contents, _) = env.service.get_import_token(&user("a"), "g").expect("get");
    assert_eq!(contents.metadata.id, metadata.id);
    let material = [0x19u8; 32];
    let (key, _) = env
        .service
        .create_key(
            &user("a"),
            "i",
            CreateKey {
                name: "byok-p11".into(),
                description: None,
                extractable: false,
                key_ring_id: None,
                aliases: vec![],
                expiration_date: None,
                activation_date: None,
                material: KeyMaterialSource::ImportToken(kp_client::import_request(
                    &contents, &material,
                )),
            },
        )
        .expect("import through the PKCS#11 token");
    assert_eq!(key.versions[0].kcv, ceremony::kcv(&material));
    let dek = SecretBytes::from_slice(b"data key under a PKCS#11 import!");
    let wrapped = env
        .service
        .wrap(&user("a"), "w", &key.id, Some(dek.clone()), &[])
        .expect("wrap");
    assert_eq!(
        env.service
            .unwrap(&user("a"), "u", &key.id, &wrapped.ciphertext, &[])
            .expect("unwrap")
            .plaintext,
        dek
    );
    // A wrong nonce is still refused with Key Protect's code.
    let (enc, iv) = kp_client::encrypt_nonce(b"not the nonce", &material, [4; 12]);
    let mut bad = kp_client::import_request(&contents, &material);
    bad.encrypted_nonce = enc;
    bad.iv = iv;
    let err = env
        .service
        .create_key(
            &user("a"),
            "i",
            CreateKey {
                name: "bad".into(),
                description: None,
                extractable: false,
                key_ring_id: None,
                aliases: vec![],
                expiration_date: None,
                activation_date: None,
                material: KeyMaterialSource::ImportToken(bad),
            },
        )
        .expect_err("wrong nonce");
    assert_eq!(err.reason().code(), "INCORRECT_NONCE_ERR");
    assert_log_consistent(&env.service);
}
