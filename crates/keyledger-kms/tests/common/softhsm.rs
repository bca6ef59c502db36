//! SoftHSM2 for the PKCS#11 tests: finding the module, a throwaway token
//! directory and configuration, and initialising tokens in it.
//!
//! SoftHSM2 must be installed (`scripts/softhsm-setup`); without it the
//! tests that need it fail with a message saying so, they do not skip.
//! `KEYLEDGER_PKCS11_MODULE` overrides the module path.

use std::path::{Path, PathBuf};
use std::process::Command;

pub const SO_PIN: &str = "so-secret-12345";
pub const USER_PIN: &str = "user-secret-6789";

/// The SoftHSM2 module, or a failure that says how to install it.
pub fn module_path() -> PathBuf {
    if let Ok(p) = std::env::var("KEYLEDGER_PKCS11_MODULE") {
        return PathBuf::from(p);
    }
    let candidates = [
        "/usr/lib/softhsm/libsofthsm2.so",
        "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
        "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
        "/usr/local/lib/softhsm/libsofthsm2.so",
    ];
    if let Some(p) = candidates.iter().map(Path::new).find(|p| p.is_file()) {
        return p.to_path_buf();
    }
    let listed = Command::new("dpkg")
        .args(["-L", "libsofthsm2", "softhsm2"])
        .output();
    if let Ok(out) = listed {
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if let Some(p) = text.lines().find(|l| l.ends_with("/libsofthsm2.so")) {
            return PathBuf::from(p);
        }
    }
    panic!(
        "SoftHSM2 is not installed (libsofthsm2.so not found): run scripts/softhsm-setup \
         (apt-get install softhsm2) or set KEYLEDGER_PKCS11_MODULE"
    );
}

/// Writes a `softhsm2.conf` whose token directory is `dir/tokens` and points
/// `SOFTHSM2_CONF` at it. Call once per test process, before the first
/// `C_Initialize` and before any other thread reads the environment.
pub fn use_token_dir(dir: &Path) {
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
    // SAFETY: called once per test process, inside a OnceLock, before the
    // first C_Initialize; every test of the process starts by going through
    // that OnceLock, so nothing reads or writes the environment concurrently.
    unsafe { std::env::set_var("SOFTHSM2_CONF", &conf) };
}

/// Initialises a token labelled `label` (SO and user PIN above) in the
/// first free slot.
pub fn init_token(label: &str) {
    softhsm2_util(&[
        "--init-token",
        "--free",
        "--label",
        label,
        "--so-pin",
        SO_PIN,
        "--pin",
        USER_PIN,
    ]);
}

/// Runs `softhsm2-util` with `args`; fails the test if it fails.
pub fn softhsm2_util(args: &[&str]) {
    let out = Command::new("softhsm2-util")
        .args(args)
        .output()
        .expect("softhsm2-util not found: run scripts/softhsm-setup");
    assert!(
        out.status.success(),
        "softhsm2-util {} failed: {}",
        args.first().copied().unwrap_or_default(),
        String::from_utf8_lossy(&out.stderr)
    );
}
