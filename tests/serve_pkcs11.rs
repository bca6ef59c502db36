//! `keyledger serve` on a PKCS#11 HSM (SoftHSM2): the master key is loaded
//! into the token by the ceremony, wraps and unwraps run against it, and
//! after a restart the instance is unsealed by the token itself (no part is
//! loaded again, no event is added) and opens what it wrapped before. A
//! wrong PIN stops the server with a clear error that does not echo it.

mod common;

use std::process::{Command, Stdio};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::json;

use common::serve::{DevServer, call, create_root_key};
use common::softhsm::{self, USER_PIN, init_token, module_path};

const TOKEN_LABEL: &str = "keyledger-serve";

#[test]
fn the_server_keeps_its_master_key_in_a_pkcs11_token_across_restarts() {
    let tmp = tempfile::tempdir().expect("tmp");
    softhsm::use_token_dir(tmp.path());
    init_token(TOKEN_LABEL);
    let module = module_path();
    let module = module.to_str().expect("utf-8 module path");
    let data = tmp.path().join("data");
    let env = [
        ("KEYLEDGER_PKCS11_MODULE", module),
        ("KEYLEDGER_PKCS11_TOKEN", TOKEN_LABEL),
        ("KEYLEDGER_PKCS11_PIN", USER_PIN),
    ];

    let mut first = DevServer::start(&data, &tmp.path().join("first.log"), &env);
    let output = String::from_utf8(first.output()).expect("utf-8");
    assert!(output.contains("HSM backend pkcs11"), "{output}");
    let writer = first.token("writer");
    let mut conn = first.conn();
    let key = create_root_key(&mut conn, &writer, "token-root");
    let dek = [0x5au8; 32];
    let res = call(
        &mut conn,
        &writer,
        "POST",
        &format!("/api/v2/keys/{key}/actions/wrap"),
        Some(&json!({"plaintext": B64.encode(dek)})),
    );
    assert_eq!(res.status(), 200, "{}", String::from_utf8_lossy(&res.body));
    let ciphertext = res.json()["ciphertext"]
        .as_str()
        .expect("ciphertext")
        .to_string();
    let size = first.log_records();
    drop(conn);
    assert!(first.terminate().success());

    // Restart: the token still holds the master key, so the dev start does
    // not load parts (which would append ceremony events).
    let second = DevServer::start(&data, &tmp.path().join("second.log"), &env);
    let mut conn = second.conn();
    assert_eq!(
        second.log_records(),
        size,
        "nothing recorded by the restart"
    );
    let res = conn.request("GET", "/ready", &[], None).expect("ready");
    assert_eq!(res.status(), 200, "{}", String::from_utf8_lossy(&res.body));
    let res = call(
        &mut conn,
        &writer,
        "POST",
        &format!("/api/v2/keys/{key}/actions/unwrap"),
        Some(&json!({"ciphertext": ciphertext})),
    );
    assert_eq!(res.status(), 200, "{}", String::from_utf8_lossy(&res.body));
    assert_eq!(
        res.json()["plaintext"].as_str(),
        Some(B64.encode(dek).as_str())
    );
    let metrics = second
        .ops_conn()
        .request("GET", "/metrics", &[], None)
        .expect("metrics")
        .body;
    let metrics = String::from_utf8(metrics).expect("utf-8");
    assert!(
        metrics
            .contains(r#"keyledger_hsm_operation_duration_seconds_count{operation="decrypt"} 1"#),
        "{metrics}"
    );
    drop(conn);
    drop(second);

    // A wrong PIN: the server does not start, says why, and never echoes it.
    let wrong_pin = "wrong-pin-31337";
    let out = serve_once(&data, module, Some(wrong_pin));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(TOKEN_LABEL), "{stderr}");
    assert!(
        !stderr.contains(wrong_pin) && !String::from_utf8_lossy(&out.stdout).contains(wrong_pin)
    );

    // Without the PIN variable: refused before the module is touched.
    let out = serve_once(&data, module, None);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("a PKCS#11 HSM needs the token's user PIN in KEYLEDGER_PKCS11_PIN"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `keyledger serve` on the token with `pin` (none: no PIN variable), run
/// to its exit (it is expected to refuse to start).
fn serve_once(data: &std::path::Path, module: &str, pin: Option<&str>) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_keyledger"));
    cmd.args([
        "serve",
        "--plain-http",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
    ])
    .arg(data)
    .args(["--pkcs11-module", module, "--pkcs11-token", TOKEN_LABEL])
    .env_remove("KEYLEDGER_PKCS11_PIN")
    .stdin(Stdio::null());
    if let Some(pin) = pin {
        cmd.env("KEYLEDGER_PKCS11_PIN", pin);
    }
    cmd.output().expect("run serve")
}
