//! The command line on PostgreSQL (`--database-url`, and
//! `KEYLEDGER_DATABASE_URL`), as scripts drive it: `instance create`,
//! `admin submit` (refusals and replays included), `ledger generate`,
//! `ledger checkpoint`, `ledger keys`, `ledger rotate-key` and `ledger
//! export` on a throwaway database, then `verify --policy` of the export.
//! Nothing of the log goes to the data directory, which keeps only the
//! ledger keys.
//!
//! PostgreSQL: `KEYLEDGER_TEST_PG_URL` (default `host=127.0.0.1 port=5432
//! user=postgres dbname=postgres`); no database is a failure, not a skip.

use std::path::Path;
use std::process::{Command, Output};

#[allow(dead_code)]
#[path = "common/pg.rs"]
mod pg;

use pg::Db;

/// Runs keyledger in `dir`, with `KEYLEDGER_DATABASE_URL=url` unless `url`
/// is empty.
fn keyledger(dir: &Path, url: &str, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_keyledger"));
    cmd.current_dir(dir)
        .env_remove("KEYLEDGER_DATABASE_URL")
        .args(args);
    if !url.is_empty() {
        cmd.env("KEYLEDGER_DATABASE_URL", url);
    }
    cmd.output().expect("run keyledger")
}

fn ok(dir: &Path, url: &str, args: &[&str]) -> String {
    let out = keyledger(dir, url, args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf8")
}

#[test]
fn the_command_line_keeps_an_instance_in_postgresql() {
    let db = Db::create();
    let url = db.url();
    let tmp = tempfile::tempdir().expect("tmp");
    let d = tmp.path();
    let data = ["--data-dir", "data", "--instance", "acme"];

    // An instance created with the flag; its log is in the database.
    ok(d, "", &["admin", "keygen", "--out", "alice.key"]);
    let create = [
        &["instance", "create"][..],
        &data[..],
        &[
            "--database-url",
            &url,
            "--admin-public-key",
            "alice.key.pub",
        ],
    ]
    .concat();
    let out = ok(d, "", &create);
    assert!(
        out.contains("instance acme created (imprint mode)"),
        "{out}"
    );
    assert_eq!(db.size("acme"), 1, "the genesis record is in the database");
    let stored: Vec<_> = walk(&d.join("data"));
    assert!(
        stored.iter().all(|p| p.contains("ledger-keys")),
        "the data directory holds only ledger keys: {stored:?}"
    );

    // admin submit through the environment variable: signed, then replayed.
    ok(
        d,
        &url,
        &[
            "admin",
            "draft",
            "--instance",
            "acme",
            "--out",
            "th.json",
            r#"{"kind":"admin.set_thresholds","signature_threshold":1,"revocation_threshold":1}"#,
        ],
    );
    let submit = [
        "admin",
        "submit",
        "--data-dir",
        "data",
        "--instance",
        "acme",
        "th.json",
    ];
    let refused = keyledger(d, &url, &submit);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("it has 0"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    ok(d, &url, &["admin", "sign", "--key", "alice.key", "th.json"]);
    assert!(ok(d, &url, &submit).contains("accepted: admin.thresholds_set at seq"));
    let replay = keyledger(d, &url, &submit);
    assert_eq!(replay.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&replay.stderr).contains("replay"));

    // A generated life on another instance, then the ledger commands.
    let life = ["--data-dir", "data", "--instance", "life"];
    let gen_args = [&["ledger", "generate"][..], &life[..], &["--events", "400"]].concat();
    ok(d, &url, &gen_args);
    assert_eq!(db.size("life"), 401, "the genesis record and 400 events");
    let note = ok(
        d,
        &url,
        &[&["ledger", "checkpoint"][..], &life[..]].concat(),
    );
    assert!(note.starts_with("keyledger/life\n401\n"), "{note}");
    let out = ok(
        d,
        &url,
        &[&["ledger", "rotate-key"][..], &life[..]].concat(),
    );
    assert!(out.contains("rotated at seq 401"), "{out}");
    let keys = ok(d, &url, &[&["ledger", "keys"][..], &life[..]].concat());
    assert_eq!(keys.lines().count(), 2, "{keys}");
    let out = ok(
        d,
        &url,
        &[&["ledger", "export"][..], &life[..], &["--out", "bundle"]].concat(),
    );
    assert!(
        out.contains("exported 402 records of instance life"),
        "{out}"
    );
    ok(d, "", &["verify", "--policy", "bundle"]);
}

/// Every file under `dir`, as a path string.
fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path.display().to_string());
            }
        }
    }
    out
}
