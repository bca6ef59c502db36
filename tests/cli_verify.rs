//! The command-line contract: `ledger generate`, `ledger export`,
//! `ledger keys`, `verify` with `--trusted-key`, `--trusted-checkpoint` and
//! `--json`, and its exit codes (0 intact, 1 tampered, 2 unreadable); the
//! `keyledger-verify` binary agrees with `keyledger verify` on each.

mod common;

use std::path::Path;
use std::process::{Command, Output};

fn keyledger(args: &[&str], data: &Path) -> Output {
    if let Some((&"verify", rest)) = args.split_first() {
        return common::verifiers::both(rest);
    }
    Command::new(env!("CARGO_BIN_EXE_keyledger"))
        .args(args)
        .env("KEYLEDGER_DATA_DIR", data)
        .output()
        .expect("run keyledger")
}

#[test]
fn generate_export_verify_and_exit_codes() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let ok = keyledger(
        &[
            "ledger",
            "generate",
            "--instance",
            "cli",
            "--events",
            "300",
            "--threads",
            "4",
        ],
        &data,
    );
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let keys = keyledger(&["ledger", "keys", "--instance", "cli"], &data);
    let key_file = dir.path().join("trusted.pub");
    std::fs::write(&key_file, &keys.stdout).expect("key file");
    let cp = keyledger(&["ledger", "checkpoint", "--instance", "cli"], &data);
    let cp_file = dir.path().join("trusted.checkpoint");
    std::fs::write(&cp_file, &cp.stdout).expect("checkpoint file");
    let bundle = dir.path().join("bundle");
    let export = keyledger(
        &[
            "ledger",
            "export",
            "--instance",
            "cli",
            "--out",
            bundle.to_str().expect("utf8"),
        ],
        &data,
    );
    assert!(
        export.status.success(),
        "{}",
        String::from_utf8_lossy(&export.stderr)
    );

    let b = bundle.to_str().expect("utf8");
    let args = [
        "verify",
        b,
        "--trusted-key",
        key_file.to_str().expect("p"),
        "--trusted-checkpoint",
        cp_file.to_str().expect("p"),
    ];
    let out = keyledger(&args, &data);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .starts_with("OK: 301 records of instance cli verified")
    );
    let json = keyledger(&["verify", b, "--json"], &data);
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json report");
    assert_eq!(
        (report["ok"].as_bool(), report["records"].as_u64()),
        (Some(true), Some(301))
    );

    // Flip one byte inside record 100's event: exit 1, located, machine-readable.
    let path = bundle.join("records.bin");
    let mut bytes = std::fs::read(&path).expect("records");
    let mut offset = 0usize;
    for _ in 0..100 {
        let len = u32::from_be_bytes(bytes[offset..offset + 4].try_into().expect("len")) as usize;
        offset += 4 + len + 64;
    }
    bytes[offset + 20] ^= 0x01;
    std::fs::write(&path, &bytes).expect("write");
    let bad = keyledger(&["verify", b, "--json"], &data);
    assert_eq!(bad.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&bad.stdout).expect("json report");
    assert_eq!(report["ok"], false);
    assert_eq!(report["failure"]["seq"], 100, "{report}");
    let text = keyledger(&["verify", b], &data);
    assert_eq!(text.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&text.stdout).contains("first bad position: 100"));

    // Unreadable input: exit 2 with a clear error.
    let missing = keyledger(
        &["verify", dir.path().join("nope").to_str().expect("p")],
        &data,
    );
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("keyledger: error:"));
}
