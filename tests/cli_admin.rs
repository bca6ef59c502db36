//! The administrator command line, as scripts drive it: `instance create`,
//! `admin keygen | draft | sign | submit | new-token`, with exit codes and
//! messages; then `ledger export` + `verify` accept the governed log.

use std::path::Path;
use std::process::{Command, Output};

fn keyledger(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_keyledger"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run keyledger")
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = keyledger(dir, args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf8")
}

fn fails(dir: &Path, args: &[&str]) -> String {
    let out = keyledger(dir, args);
    assert_eq!(out.status.code(), Some(2), "{args:?} should fail");
    String::from_utf8(out.stderr).expect("utf8")
}

#[test]
fn admins_bootstrap_an_instance_from_the_command_line() {
    let tmp = tempfile::tempdir().expect("tmp");
    let d = tmp.path();
    let out = ok(d, &["admin", "keygen", "--out", "alice.key"]);
    assert!(out.contains("admin id: "), "{out}");
    ok(d, &["admin", "keygen", "--out", "bob.key"]);
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(d.join("alice.key"))
            .expect("meta")
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    let err = fails(d, &["admin", "keygen", "--out", "alice.key"]);
    assert!(err.contains("refusing to overwrite"), "{err}");

    let out = ok(
        d,
        &[
            "instance",
            "create",
            "--data-dir",
            "data",
            "--instance",
            "acme",
            "--admin-public-key",
            "alice.key.pub",
        ],
    );
    assert!(
        out.contains("instance acme created (imprint mode)"),
        "{out}"
    );
    let bob_pub = std::fs::read_to_string(d.join("bob.key.pub")).expect("pub");
    let add_bob = format!(
        r#"{{"kind":"admin.add","name":"bob","public_key":"{}"}}"#,
        bob_pub.trim()
    );
    ok(
        d,
        &[
            "admin",
            "draft",
            "--instance",
            "acme",
            "--out",
            "add-bob.json",
            &add_bob,
        ],
    );
    // Unsigned: refused with the reason.
    let submit = [
        "admin",
        "submit",
        "--data-dir",
        "data",
        "--instance",
        "acme",
        "add-bob.json",
    ];
    let err = fails(d, &submit);
    assert!(
        err.contains("admin.add needs 1 administrator signatures, it has 0"),
        "{err}"
    );
    ok(d, &["admin", "sign", "--key", "alice.key", "add-bob.json"]);
    let out = ok(d, &submit);
    assert!(out.contains("accepted: admin.added at seq"), "{out}");
    let err = fails(d, &submit);
    assert!(err.contains("was already used (replay)"), "{err}");

    // Leaving imprint mode with threshold 2 needs both signatures.
    ok(
        d,
        &[
            "admin",
            "draft",
            "--instance",
            "acme",
            "--out",
            "th.json",
            r#"{"kind":"admin.set_thresholds","signature_threshold":2,"revocation_threshold":2}"#,
        ],
    );
    ok(d, &["admin", "sign", "--key", "alice.key", "th.json"]);
    let th = [
        "admin",
        "submit",
        "--data-dir",
        "data",
        "--instance",
        "acme",
        "th.json",
    ];
    let err = fails(d, &th);
    assert!(
        err.contains("needs 2 administrator signatures, it has 1"),
        "{err}"
    );
    ok(d, &["admin", "sign", "--key", "bob.key", "th.json"]);
    assert!(ok(d, &th).contains("accepted: admin.thresholds_set"));

    // A credential: the token is printed once, only its digest is sent.
    let token_out = ok(d, &["admin", "new-token"]);
    let token = token_out
        .lines()
        .find_map(|l| l.strip_prefix("token: "))
        .expect("token line");
    let digest = token_out
        .lines()
        .find_map(|l| l.strip_prefix("token_digest: "))
        .expect("digest line");
    let issue = format!(
        r#"{{"kind":"credential.issue","credential_id":"cred-w","role":"writer","token_digest":"{digest}"}}"#
    );
    ok(
        d,
        &[
            "admin",
            "draft",
            "--instance",
            "acme",
            "--out",
            "issue.json",
            &issue,
        ],
    );
    ok(d, &["admin", "sign", "--key", "alice.key", "issue.json"]);
    ok(d, &["admin", "sign", "--key", "bob.key", "issue.json"]);
    ok(
        d,
        &[
            "admin",
            "submit",
            "--data-dir",
            "data",
            "--instance",
            "acme",
            "issue.json",
        ],
    );

    // Bad input.
    let err = fails(
        d,
        &[
            "admin",
            "draft",
            "--instance",
            "acme",
            "--out",
            "x.json",
            r#"{"kind":"admin.explode"}"#,
        ],
    );
    assert!(err.contains("unknown variant `admin.explode`"), "{err}");
    std::fs::set_permissions(
        d.join("bob.key"),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .expect("chmod");
    let err = fails(d, &["admin", "sign", "--key", "bob.key", "issue.json"]);
    assert!(err.contains("readable by group or others"), "{err}");

    // The governed log exports and verifies; the token is nowhere in it.
    ok(
        d,
        &[
            "ledger",
            "export",
            "--data-dir",
            "data",
            "--instance",
            "acme",
            "--out",
            "bundle",
        ],
    );
    let out = keyledger(d, &["verify", "bundle"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let records = std::fs::read(d.join("bundle/records.bin")).expect("records");
    assert!(
        !records.windows(token.len()).any(|w| w == token.as_bytes()),
        "token in the log"
    );
}
