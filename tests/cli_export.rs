//! `keyledger export`: every record of a `ledger generate` log, from
//! `--since` to the head, in every format, one line each (a reader that
//! stops early is no error); `--out` creates a
//! 0600 file and never overwrites one; and no export holds the tokens,
//! plaintexts and ciphertexts the events were made from. The same command
//! reads an instance on PostgreSQL (`--database-url`, a throwaway database
//! on `KEYLEDGER_TEST_PG_URL`, default the server on 127.0.0.1:5432; no
//! database is a failure, not a skip).

#[allow(dead_code)]
#[path = "common/http.rs"]
mod http;
#[allow(dead_code)]
#[path = "common/pg.rs"]
mod pg;
#[allow(dead_code)]
#[path = "common/secrets_scan.rs"]
mod secrets_scan;
#[allow(dead_code)]
#[path = "common/serve.rs"]
mod serve;

use pg::Db;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use keyledger_core::event::{self, Actor, AuthMethod, EventDraft, Role};
use keyledger_ledger::ledger::{InitialAdmin, Ledger};
use keyledger_ledger::store::embedded::EmbeddedStore;
use keyledger_ledger::writer::WriterConfig;
use serde_json::Value;
use sha2::Digest;

const FORMATS: [&str; 5] = ["cadf", "ocsf", "cef", "leef", "jsonl"];

fn keyledger(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_keyledger"))
        .args(args)
        .output()
        .expect("run keyledger")
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf8")
}

fn export(data: &Path, instance: &str, format: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "export",
        "--data-dir",
        data.to_str().expect("utf8"),
        "--instance",
        instance,
        "--format",
        format,
    ];
    args.extend_from_slice(extra);
    keyledger(&args)
}

fn generate(data: &Path, events: u64) {
    ok(keyledger(&[
        "ledger",
        "generate",
        "--data-dir",
        data.to_str().expect("utf8"),
        "--instance",
        "life",
        "--events",
        &events.to_string(),
    ]));
}

#[test]
fn every_record_of_a_generated_log_exports_in_every_format() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    generate(&data, 600);
    let jsonl = ok(export(&data, "life", "jsonl", &[]));
    let records: Vec<Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert!(records.len() >= 600, "{}", records.len());
    let types: BTreeSet<&str> = records
        .iter()
        .map(|r| r["event"]["type"].as_str().expect("type"))
        .collect();
    // A busy instance's mix: key use, lifecycle, approvals, administration.
    for ty in [
        "key.created",
        "key.wrapped",
        "key.unwrapped",
        "admin.added",
        "credential.issued",
    ] {
        assert!(types.contains(ty), "{ty} missing from {types:?}");
    }
    for (seq, r) in records.iter().enumerate() {
        assert_eq!(r["seq"], seq as u64);
        assert_eq!(r["instance"], "life");
    }
    for format in FORMATS {
        let text = ok(export(&data, "life", format, &[]));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), records.len(), "{format}");
        for (line, record) in lines.iter().zip(&records) {
            let leaf = record["leaf"].as_str().expect("leaf");
            assert!(line.contains(leaf), "{format}: no leaf hash in {line}");
            if matches!(format, "cadf" | "ocsf" | "jsonl") {
                serde_json::from_str::<Value>(line).expect("one JSON object a line");
            }
        }
        // --since: from that record to the head.
        let tail = ok(export(&data, "life", format, &["--since", "500"]));
        let tail: Vec<&str> = tail.lines().collect();
        assert_eq!(tail.len(), records.len() - 500, "{format}");
        assert_eq!(tail[0], lines[500], "{format}");
    }
    let beyond = ok(export(&data, "life", "cef", &["--since", "100000"]));
    assert!(beyond.is_empty());
    let bad = export(&data, "life", "xml", &[]);
    assert!(!bad.status.success());

    // A reader that stops early (`| head`) is not an export error. The
    // export is several pipe buffers long, so the writer meets the
    // closed pipe.
    assert!(jsonl.len() > 4 * 65536, "{}", jsonl.len());
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_keyledger"))
        .args(["export", "--data-dir", data.to_str().expect("utf8")])
        .args(["--instance", "life", "--format", "jsonl"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut first = [0u8; 100];
    std::io::Read::read_exact(&mut child.stdout.take().expect("stdout"), &mut first).expect("read");
    let out = child.wait_with_output().expect("wait");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(first.starts_with(b"{\"instance\":\"life\",\"seq\":0,"));
}

#[test]
fn out_creates_a_private_file_and_never_overwrites_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    generate(&data, 50);
    let file = dir.path().join("events.cef");
    let path = file.to_str().expect("utf8");
    let stdout = ok(export(&data, "life", "cef", &["--out", path]));
    assert!(stdout.is_empty());
    let written = std::fs::read_to_string(&file).expect("read");
    assert_eq!(written, ok(export(&data, "life", "cef", &[])));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let again = export(&data, "life", "jsonl", &["--out", path]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("never overwrites"));
    assert_eq!(std::fs::read_to_string(&file).expect("read"), written);
}

#[test]
fn no_export_holds_the_secrets_its_events_were_made_from() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let token = b"kl-token-5d1e7a0c9b3f44e2a8c6d2f1e0b9a7c3".to_vec();
    let plaintext = b"data-key-plaintext-0123456789abcdef".to_vec();
    let ciphertext = b"wrapped-ciphertext-fedcba9876543210!".to_vec();
    let hex_sha = |b: &[u8]| hex::encode(sha2::Sha256::digest(b));
    {
        let store = EmbeddedStore::open(&data).expect("store");
        let admin = InitialAdmin {
            admin_id: "admin-1".into(),
            public_key: "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=".into(),
        };
        let config = WriterConfig {
            checkpoint_interval: Duration::ZERO,
            ..WriterConfig::default()
        };
        let ledger: Ledger =
            Ledger::create(&store, &data, "acme", &admin, "op", config).expect("create");
        let user = Actor {
            principal: "cred-w".into(),
            role: Role::Writer,
            auth: AuthMethod::Bearer,
        };
        let key_id = "4a1f0c2e-1111-4000-8000-000000000001".to_string();
        let drafts = [
            EventDraft::new(
                Actor::system(),
                "c1",
                &event::CredentialIssued {
                    credential_id: "cred-w".into(),
                    role: "writer".into(),
                    token_digest: hex_sha(&token),
                    command: None,
                },
            ),
            EventDraft::new(
                user.clone(),
                "c2",
                &event::KeyWrapped {
                    key_id: key_id.clone(),
                    version_id: "v1".into(),
                    generated_dek: false,
                    aad_entries: 1,
                    ciphertext_digest: hex_sha(&ciphertext),
                },
            ),
            EventDraft::new(
                user,
                "c3",
                &event::KeyUnwrapped {
                    key_id,
                    version_id: "v1".into(),
                    rewrapped_version_id: None,
                    ciphertext_digest: hex_sha(&ciphertext),
                },
            ),
        ];
        for draft in drafts {
            ledger.append(draft.expect("draft")).expect("append");
        }
        ledger.shutdown();
    }
    let secrets: [(&str, &[u8]); 3] = [
        ("token", &token),
        ("plaintext", &plaintext),
        ("ciphertext", &ciphertext),
    ];
    for format in FORMATS {
        let text = ok(export(&data, "acme", format, &[]));
        assert_eq!(text.lines().count(), 4, "{format}");
        let found = secrets_scan::find_in(text.as_bytes(), &secrets);
        assert!(found.is_empty(), "{format} leaks {found:?}");
    }
    // The scan does find a secret that is there.
    let planted = format!("x{}", hex::encode(&token));
    assert!(!secrets_scan::find_in(planted.as_bytes(), &secrets).is_empty());
}

#[test]
fn exports_an_instance_stored_on_postgresql() {
    let db = Db::create();
    let url = db.url();
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let data_arg = data.to_str().expect("utf8");
    ok(keyledger(&[
        "ledger",
        "generate",
        "--data-dir",
        data_arg,
        "--instance",
        "life",
        "--events",
        "120",
        "--database-url",
        &url,
    ]));
    let jsonl = ok(export(&data, "life", "jsonl", &["--database-url", &url]));
    let records: Vec<Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert!(records.len() >= 120, "{}", records.len());
    for (seq, r) in records.iter().enumerate() {
        assert_eq!(r["seq"], seq as u64);
    }
    let cadf = ok(export(
        &data,
        "life",
        "cadf",
        &["--database-url", &url, "--since", "100"],
    ));
    let lines: Vec<Value> = cadf
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(lines.len(), records.len() - 100);
    for (line, record) in lines.iter().zip(&records[100..]) {
        assert_eq!(line["keyledger"]["leafHash"], record["leaf"]);
        assert_eq!(line["keyledger"]["seq"], record["seq"]);
    }
}

/// `--follow` on PostgreSQL: after the head, the export goes on writing
/// what another process appends (here `ledger generate` continuing the
/// instance), each record once, in order; on the embedded store it is
/// refused (the writing process holds that log's lock).
#[test]
fn follow_writes_what_others_append_on_postgresql() {
    let db = Db::create();
    let url = db.url();
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let data_arg = data.to_str().expect("utf8");
    let generate_pg = |events: &str| {
        ok(keyledger(&[
            "ledger",
            "generate",
            "--data-dir",
            data_arg,
            "--instance",
            "life",
            "--events",
            events,
            "--database-url",
            &url,
        ]));
    };
    generate_pg("50");
    let mut follow = Following::start(&[
        "export",
        "--data-dir",
        data_arg,
        "--instance",
        "life",
        "--format",
        "jsonl",
        "--follow",
        "--database-url",
        &url,
    ]);
    let mut seqs = Vec::new();
    for _ in 0..51 {
        seqs.push(follow.next_json()["seq"].as_u64().expect("seq"));
    }
    // Another process appends; the follower writes it without a restart.
    generate_pg("30");
    let size = db.size("life") as u64;
    while (seqs.len() as u64) < size {
        seqs.push(follow.next_json()["seq"].as_u64().expect("seq"));
    }
    follow.stop();
    assert_eq!(
        seqs,
        (0..size).collect::<Vec<_>>(),
        "each record once, in order"
    );

    let embedded = dir.path().join("embedded");
    generate(&embedded, 5);
    let refused = export(&embedded, "life", "jsonl", &["--follow"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("--follow needs --database-url"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}

/// `--url` with an auditor token: the records come from the server's
/// auditor endpoint, each checked against its leaf hash, the same lines as
/// from the stores; with `--follow`, a wrap made after the export started
/// shows up as its `key.wrapped` line; a wrong token is refused.
#[test]
fn exports_from_a_server_with_an_auditor_token_and_follows_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let server = serve::DevServer::start(&data, &dir.path().join("serve.err"), &[]);
    let token_file = dir.path().join("auditor.token");
    std::fs::write(&token_file, server.token("auditor")).expect("token file");
    let url = format!("http://{}", server.addr);
    let token_arg = token_file.to_str().expect("utf8");
    let base = [
        "export",
        "--url",
        url.as_str(),
        "--instance",
        serve::INSTANCE,
        "--token-file",
        token_arg,
        "--format",
    ];
    let size = server.log_records();
    let jsonl = ok(keyledger(&[&base[..], &["jsonl"]].concat()));
    let lines: Vec<Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(lines.len() as u64, size);
    for (seq, line) in lines.iter().enumerate() {
        assert_eq!(line["seq"], seq as u64);
    }
    let cef = ok(keyledger(&[&base[..], &["cef", "--since", "3"]].concat()));
    assert_eq!(cef.lines().count() as u64, size - 3);

    let wrong = dir.path().join("wrong.token");
    std::fs::write(&wrong, server.token("writer")).expect("token file");
    let refused = keyledger(&[
        "export",
        "--url",
        url.as_str(),
        "--instance",
        serve::INSTANCE,
        "--token-file",
        wrong.to_str().expect("utf8"),
        "--format",
        "jsonl",
    ]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("403"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    let mut follow = Following::start(&[&base[..], &["jsonl", "--follow"]].concat());
    let mut seen = 0u64;
    let writer = server.token("writer");
    let key = serve::create_root_key(&mut server.conn(), &writer, "followed-key");
    let res = serve::call(
        &mut server.conn(),
        &writer,
        "POST",
        &format!("/api/v2/keys/{key}/actions/wrap"),
        None,
    );
    assert_eq!(res.status(), 200);
    let wrapped_seq: u64 = res
        .header("keyledger-receipt-seq")
        .and_then(|s| s.parse().ok())
        .expect("receipt seq");
    let wrapped = loop {
        let v = follow.next_json();
        assert_eq!(v["seq"], seen, "each record once, in order");
        seen += 1;
        if v["seq"] == wrapped_seq {
            break v;
        }
    };
    assert_eq!(wrapped["event"]["type"], "key.wrapped", "{wrapped}");
    follow.stop();
}

/// A running `keyledger export --follow` whose JSON lines are read one by
/// one. It never hangs the suite: a follower that stops writing is killed
/// after a minute, which ends its output and fails the next read.
struct Following {
    child: std::process::Child,
    lines: std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
    done: std::sync::mpsc::Sender<()>,
    watchdog: std::thread::JoinHandle<()>,
}

impl Following {
    fn start(args: &[&str]) -> Following {
        use std::io::BufRead;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_keyledger"))
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn export --follow");
        let (done, finished) = std::sync::mpsc::channel::<()>();
        let pid = child.id().to_string();
        let watchdog = std::thread::spawn(move || {
            if finished.recv_timeout(Duration::from_secs(60)).is_err() {
                let _ = std::process::Command::new("kill")
                    .args(["-9", &pid])
                    .status();
            }
        });
        let lines = std::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
        Following {
            child,
            lines,
            done,
            watchdog,
        }
    }

    /// The next line, as JSON.
    fn next_json(&mut self) -> Value {
        let line = self.lines.next().expect("a line").expect("utf8");
        serde_json::from_str(&line).expect("json")
    }

    fn stop(mut self) {
        let _ = self.done.send(());
        let _ = self.watchdog.join();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
