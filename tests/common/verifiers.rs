//! The two offline verifiers side by side: `keyledger verify` (the full
//! binary) and `keyledger-verify` (built from keyledger-core and clap
//! alone). Every bundle a test verifies through [`both`] must get the same
//! exit code and the same standard output from each.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The `keyledger-verify` binary next to this test's `keyledger`, built
/// first when a test is run without the rest of the workspace.
pub fn keyledger_verify() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let bin = std::path::Path::new(env!("CARGO_BIN_EXE_keyledger"))
            .with_file_name(format!("keyledger-verify{}", std::env::consts::EXE_SUFFIX));
        if !bin.exists() {
            let mut build = Command::new(env!("CARGO"));
            build.args([
                "build",
                "-p",
                "keyledger-verify",
                "--bin",
                "keyledger-verify",
            ]);
            if bin.components().any(|c| c.as_os_str() == "release") {
                build.arg("--release");
            }
            let status = build.status().expect("cargo build -p keyledger-verify");
            assert!(status.success(), "building keyledger-verify failed");
        }
        bin
    })
    .clone()
}

/// Runs `keyledger verify ARGS` and `keyledger-verify ARGS`, asserts they
/// agree (exit code and standard output), and returns the first's output.
pub fn both(args: &[&str]) -> Output {
    let full = Command::new(env!("CARGO_BIN_EXE_keyledger"))
        .arg("verify")
        .args(args)
        .output()
        .expect("run keyledger verify");
    let alone = Command::new(keyledger_verify())
        .args(args)
        .output()
        .expect("run keyledger-verify");
    assert_eq!(
        (full.status.code(), String::from_utf8_lossy(&full.stdout)),
        (alone.status.code(), String::from_utf8_lossy(&alone.stdout)),
        "keyledger verify and keyledger-verify disagree on {args:?}; stderr: {} | {}",
        String::from_utf8_lossy(&full.stderr),
        String::from_utf8_lossy(&alone.stderr),
    );
    full
}
