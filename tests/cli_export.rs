//! `keyledger export`: every record of a `ledger generate` log, from
//! `--since` to the head, in every format, one line each (a reader that
//! stops early is no error); `--out` creates a
//! 0600 file and never overwrites one; and no export holds the tokens,
//! plaintexts and ciphertexts the events were made from. The same command
//! reads an instance on PostgreSQL (`--database-url`, a throwaway database
//! on `KEYLEDGER_TEST_PG_URL`, default the server on 127.0.0.1:5432; no
//! database is a failure, not a skip). Its refusals, as an attacker would
//! try them: a lying server (records with a wrong leaf hash, records other
//! than the ones asked for, fewer records than announced), an unreachable
//! one, and malformed or unreachable `--database-url` values.

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

// ------------------------------------------------------------ refusals

/// `keyledger` with `args`, killed (and the test failed) if it has not
/// ended within a minute: a `--follow` that does not stop must not hang
/// the suite. Both outputs are read while it runs.
fn keyledger_bounded(args: &[&str]) -> Output {
    use std::io::Read;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_keyledger"))
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn keyledger");
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("stdout")));
    let stderr = drain(Box::new(child.stderr.take().expect("stderr")));
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("keyledger {args:?} still running after 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

/// A record as the server's `GET /api/v2/ledger/records` carries it
/// (`LedgerRecord`: seq, the stored event as a string, signature and leaf
/// hash in base64), made from one line of a JSON lines export.
fn served_record(jsonl_line: &str) -> Value {
    use base64::Engine;
    let b64 = |hex_text: &Value| {
        base64::engine::general_purpose::STANDARD
            .encode(hex::decode(hex_text.as_str().expect("hex")).expect("hex"))
    };
    let v: Value = serde_json::from_str(jsonl_line).expect("json");
    // The line ends with `"event":<the stored bytes>}`, unchanged.
    let at = jsonl_line.find(",\"event\":").expect("event") + ",\"event\":".len();
    let event = &jsonl_line[at..jsonl_line.len() - 1];
    serde_json::json!({
        "seq": v["seq"],
        "event": event,
        "signature": b64(&v["signature"]),
        "leaf_hash": b64(&v["leaf"]),
    })
}

/// A server that lies: it answers `GET /api/v2/ledger/records?start=S`
/// (any token) with the pages the test crafted, `page` records at most,
/// announcing `size` records in the log. Loopback, port 0; stopped on drop.
struct LyingServer {
    addr: std::net::SocketAddr,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LyingServer {
    fn start(records: Vec<Value>, size: u64, page: usize) -> LyingServer {
        LyingServer::start_sized(records, move |_| size, page)
    }

    /// As [`LyingServer::start`], the size announced being `size(start)`
    /// for a page from `start` (a log that grows while it is read).
    fn start_sized(
        records: Vec<Value>,
        size: impl Fn(u64) -> u64 + Send + 'static,
        page: usize,
    ) -> LyingServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    let _ = LyingServer::answer(stream, &records, &size, page);
                }
            }
        });
        LyingServer {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn answer(
        stream: std::net::TcpStream,
        records: &[Value],
        size: &dyn Fn(u64) -> u64,
        page: usize,
    ) -> std::io::Result<()> {
        use std::io::{BufRead, Write};
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        let mut reader = std::io::BufReader::new(stream.try_clone()?);
        let mut request_line = String::new();
        reader.read_line(&mut request_line)?;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header)? == 0 || header == "\r\n" {
                break;
            }
        }
        let start = request_line
            .strip_prefix("GET /api/v2/ledger/records?start=")
            .and_then(|rest| rest.split([' ', '&']).next())
            .and_then(|n| n.parse::<usize>().ok());
        let (status, body) = match start {
            Some(start) => {
                let from = start.min(records.len());
                let to = (from + page).min(records.len());
                let body = serde_json::json!({
                    "start": start,
                    "end": start + (to - from),
                    "size": size(start as u64),
                    "records": records[from..to],
                });
                ("200 OK", body.to_string())
            }
            None => ("404 Not Found", "{}".to_string()),
        };
        let mut stream = stream;
        write!(
            stream,
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )?;
        stream.flush()
    }
}

impl Drop for LyingServer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        // Wakes the accept loop, which then sees the flag.
        let _ = std::net::TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A `ledger generate` log of `instance` in `dir`, as its JSON lines (the
/// genuine records the lying server starts from).
fn genuine_lines(dir: &Path, instance: &str, events: u64) -> Vec<String> {
    let data = dir.join(format!("data-{instance}"));
    ok(keyledger(&[
        "ledger",
        "generate",
        "--data-dir",
        data.to_str().expect("utf8"),
        "--instance",
        instance,
        "--events",
        &events.to_string(),
    ]));
    let lines: Vec<String> = ok(export(&data, instance, "jsonl", &[]))
        .lines()
        .map(str::to_string)
        .collect();
    assert!(lines.len() as u64 >= events, "{}", lines.len());
    lines
}

/// Changes one byte of a served record's event (a letter of the actor's
/// principal), keeping the JSON valid and the leaf hash as it was.
fn tamper_event(record: &mut Value) {
    let event = record["event"].as_str().expect("event").to_string();
    let at = event.find("\"principal\":\"").expect("principal") + "\"principal\":\"".len();
    let mut bytes = event.into_bytes();
    bytes[at] = if bytes[at] == b'x' { b'y' } else { b'x' };
    record["event"] = Value::String(String::from_utf8(bytes).expect("utf8"));
}

/// Exports `life` from `server` as `format` (plus `extra`) with a
/// throwaway token file in `dir`.
fn export_from(server: &LyingServer, dir: &Path, format: &str, extra: &[&str]) -> Output {
    let token_file = dir.join("auditor.token");
    std::fs::write(&token_file, "kl-liar-never-checks-this\n").expect("token file");
    let url = server.url();
    let mut args = vec![
        "export",
        "--url",
        url.as_str(),
        "--instance",
        "life",
        "--token-file",
        token_file.to_str().expect("utf8"),
        "--format",
        format,
    ];
    args.extend_from_slice(extra);
    keyledger_bounded(&args)
}

/// One refused export from a lying server, checked as an attacker's
/// victim would: exit 2, exactly `error` on stderr, stdout the genuine
/// lines before the bad record (and nothing for it or after it); with
/// `--out`, no file left behind (the partial one is removed). Both
/// without and with `--follow`.
fn assert_refused(server: &LyingServer, genuine: &[String], bad: usize, error: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    for follow in [&[][..], &["--follow"][..]] {
        let refused = export_from(server, dir.path(), "jsonl", follow);
        assert_eq!(
            String::from_utf8_lossy(&refused.stderr),
            format!("keyledger: error: {error}\n"),
            "{follow:?}"
        );
        assert_eq!(refused.status.code(), Some(2), "{follow:?}");
        let stdout = String::from_utf8(refused.stdout).expect("utf8");
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(
            lines,
            genuine[..bad],
            "{follow:?}: only the records before {bad}"
        );

        // Another format: the record is refused before it is rendered.
        let cef = export_from(server, dir.path(), "cef", follow);
        assert_eq!(cef.status.code(), Some(2), "{follow:?}");
        assert_eq!(
            cef.stderr,
            format!("keyledger: error: {error}\n").as_bytes()
        );
        assert_eq!(
            String::from_utf8_lossy(&cef.stdout).lines().count(),
            bad,
            "{follow:?}"
        );

        let out = dir.path().join("partial.jsonl");
        let out_arg = out.to_str().expect("utf8");
        let refused = export_from(
            server,
            dir.path(),
            "jsonl",
            &[follow, &["--out", out_arg]].concat(),
        );
        assert_eq!(refused.status.code(), Some(2), "{follow:?}");
        assert_eq!(
            String::from_utf8_lossy(&refused.stderr),
            format!("keyledger: error: {error}\n"),
            "{follow:?}"
        );
        assert!(refused.stdout.is_empty());
        assert!(!out.exists(), "{follow:?}: a failed export left {out:?}");
    }
}

/// A server that sends record k with a leaf hash that is not its event's
/// (one byte of the event changed, on the second page): the records
/// before k are written, the export stops at k naming it, exit 2, and
/// `--out` leaves no partial file; `--follow` stops the same way.
#[test]
fn a_record_whose_leaf_hash_is_not_its_events_stops_the_export() {
    let dir = tempfile::tempdir().expect("tempdir");
    let genuine = genuine_lines(dir.path(), "life", 20);
    let mut records: Vec<Value> = genuine.iter().map(|l| served_record(l)).collect();
    let size = records.len() as u64;

    // The genuine pages export as the stores do, line for line.
    let honest = LyingServer::start(records.clone(), size, 7);
    let out = export_from(&honest, dir.path(), "jsonl", &[]);
    assert_eq!(ok(out).lines().collect::<Vec<_>>(), genuine);
    drop(honest);

    let bad = 12;
    tamper_event(&mut records[bad]);
    let liar = LyingServer::start(records, size, 7);
    assert_refused(
        &liar,
        &genuine,
        bad,
        "record 12 from the server: the leaf hash sent with it is not the record's",
    );
}

/// A server that sends, at position k, another record than the one asked
/// for: the next one under its own seq (a record left out), the next one
/// relabelled as k (leaf hash genuine), a replay of k-1, or record k of
/// another instance. Each is refused at k.
#[test]
fn a_record_that_is_not_the_one_asked_for_stops_the_export() {
    let dir = tempfile::tempdir().expect("tempdir");
    let genuine = genuine_lines(dir.path(), "life", 20);
    let other = genuine_lines(dir.path(), "other", 20);
    let records: Vec<Value> = genuine.iter().map(|l| served_record(l)).collect();
    let size = records.len() as u64;
    let bad = 9;
    let with = |k: usize, record: Value| {
        let mut records = records.clone();
        records[k] = record;
        records
    };
    let relabelled = |mut record: Value| {
        record["seq"] = bad.into();
        record
    };

    // Record k left out: record k+1 comes under its own seq.
    let skipped = LyingServer::start(with(bad, records[bad + 1].clone()), size, 7);
    assert_refused(
        &skipped,
        &genuine,
        bad,
        "record 9 from the server: the server sent record 10 in its place",
    );
    drop(skipped);

    // Record k+1 relabelled as k: its event still names seq k+1.
    let relabel = LyingServer::start(with(bad, relabelled(records[bad + 1].clone())), size, 7);
    assert_refused(
        &relabel,
        &genuine,
        bad,
        "record 9: it names instance \"life\" seq 10",
    );
    drop(relabel);

    // A replay of record k-1 as k.
    let replay = LyingServer::start(with(bad, relabelled(records[bad - 1].clone())), size, 7);
    assert_refused(
        &replay,
        &genuine,
        bad,
        "record 9: it names instance \"life\" seq 8",
    );
    drop(replay);

    // Record k of another instance, genuine and well signed.
    let foreign = LyingServer::start(with(bad, served_record(&other[bad])), size, 7);
    assert_refused(
        &foreign,
        &genuine,
        bad,
        "record 9: it names instance \"other\" seq 9",
    );
}

/// A server that announces more records than it sends (its pages stop
/// short of the size it gives): the export does not end quietly short of
/// the head it was told of; it fails naming the first record missing.
#[test]
fn a_server_that_sends_fewer_records_than_it_announces_fails_the_export() {
    let dir = tempfile::tempdir().expect("tempdir");
    let genuine = genuine_lines(dir.path(), "life", 20);
    let records: Vec<Value> = genuine.iter().map(|l| served_record(l)).collect();
    let sent = 12;
    let announced = records.len() as u64 + 5;
    let short = LyingServer::start(records[..sent].to_vec(), announced, 7);
    let dir2 = tempfile::tempdir().expect("tempdir");
    let refused = export_from(&short, dir2.path(), "jsonl", &[]);
    assert_eq!(
        String::from_utf8_lossy(&refused.stderr),
        format!(
            "keyledger: error: record {sent} from the server: none came, though the server announced {announced} records\n"
        )
    );
    assert_eq!(refused.status.code(), Some(2));
    let stdout = String::from_utf8(refused.stdout).expect("utf8");
    assert_eq!(stdout.lines().collect::<Vec<_>>(), genuine[..sent]);
    let out = dir2.path().join("short.jsonl");
    let refused = export_from(
        &short,
        dir2.path(),
        "cadf",
        &["--out", out.to_str().expect("utf8")],
    );
    assert_eq!(refused.status.code(), Some(2));
    assert!(!out.exists(), "a failed export left {out:?}");
}

/// Without `--follow`, the export from a server ends at the head the
/// server announced when it started, as from the stores, however the log
/// grows while it is read (a busy server would otherwise keep it going).
#[test]
fn an_export_from_a_server_ends_at_the_head_it_started_with() {
    let dir = tempfile::tempdir().expect("tempdir");
    let genuine = genuine_lines(dir.path(), "life", 20);
    let records: Vec<Value> = genuine.iter().map(|l| served_record(l)).collect();
    let all = records.len() as u64;
    let head = 12;
    let growing =
        LyingServer::start_sized(records, move |start| if start == 0 { head } else { all }, 7);
    let exported = ok(export_from(&growing, dir.path(), "jsonl", &[]));
    assert_eq!(
        exported.lines().collect::<Vec<_>>(),
        genuine[..head as usize]
    );
}

/// A server that cannot be reached: exit 2, an error naming the
/// server, no file created; a URL with a password in it is refused
/// without printing it.
#[test]
fn an_unreachable_server_fails_the_export_without_a_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = closed.local_addr().expect("addr");
    drop(closed);
    let token_file = dir.path().join("auditor.token");
    std::fs::write(&token_file, "kl-token-for-nobody\n").expect("token file");
    let out = dir.path().join("never.jsonl");
    let url = format!("http://{addr}");
    let refused = keyledger_bounded(&[
        "export",
        "--url",
        &url,
        "--instance",
        "life",
        "--token-file",
        token_file.to_str().expect("utf8"),
        "--format",
        "jsonl",
        "--out",
        out.to_str().expect("utf8"),
    ]);
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.starts_with(&format!(
            "keyledger: error: reading records from 0: {url}: "
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("kl-token-for-nobody"), "{stderr}");
    assert!(!out.exists());

    // A password in the URL's user info is refused before any request,
    // and printed nowhere (the auditor token goes in --token-file).
    for url in [
        format!("http://auditor:hunter2-secret@{addr}"),
        format!("http://hunter2-secret@{addr}/"),
    ] {
        let refused = keyledger_bounded(&[
            "export",
            "--url",
            &url,
            "--instance",
            "life",
            "--token-file",
            token_file.to_str().expect("utf8"),
            "--format",
            "jsonl",
            "--out",
            out.to_str().expect("utf8"),
        ]);
        assert_eq!(refused.status.code(), Some(2));
        let all = String::from_utf8_lossy(&[&refused.stdout[..], &refused.stderr[..]].concat())
            .into_owned();
        assert_eq!(
            all,
            "keyledger: error: --url must not carry a user or password: the auditor token goes in --token-file\n"
        );
        assert!(!out.exists());
    }
}

/// `--database-url` that does not parse (a URL cut short, an empty host,
/// an unknown sslmode, a port that is no number) or names a closed port:
/// exit 2, the driver's reason, no output file, and the password in the
/// URL printed nowhere.
#[test]
fn a_malformed_or_unreachable_database_url_fails_without_a_file_or_its_password() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let cases = [
        (
            "postgres://keyledger:hunter2-secret@[::1".to_string(),
            "PostgreSQL: postgres: invalid connection string: invalid value for option `host`",
        ),
        (
            "postgres://keyledger:hunter2-secret@127.0.0.1:notaport/db".to_string(),
            "PostgreSQL: postgres: invalid connection string: invalid value for option `port`",
        ),
        (
            "host=127.0.0.1 user=keyledger password=hunter2-secret sslmode=bogus".to_string(),
            "PostgreSQL: connection string: unknown sslmode \"bogus\"; use disable, prefer, require, verify-ca or verify-full",
        ),
        (
            "host= user=keyledger password=hunter2-secret".to_string(),
            "PostgreSQL: postgres: error connecting to server: failed to lookup address information: Name or service not known",
        ),
        (
            "host=127.0.0.1 password='hunter2-secret".to_string(),
            "PostgreSQL: connection string: unterminated quote in the value of \"password\"",
        ),
        (
            format!("postgres://keyledger:hunter2-secret@127.0.0.1:{port}/keyledger"),
            "PostgreSQL: postgres: error connecting to server: Connection refused (os error 111)",
        ),
        (
            format!("host=127.0.0.1 port={port} user=keyledger password=hunter2-secret"),
            "PostgreSQL: postgres: error connecting to server: Connection refused (os error 111)",
        ),
    ];
    for (url, error) in &cases {
        for follow in [&[][..], &["--follow"][..]] {
            let out = dir.path().join("never.jsonl");
            let out_arg = out.to_str().expect("utf8");
            let args = [&["--database-url", url.as_str(), "--out", out_arg], follow].concat();
            let refused = export(&data, "life", "jsonl", &args);
            assert_eq!(refused.status.code(), Some(2), "{url}");
            assert_eq!(
                String::from_utf8_lossy(&refused.stderr),
                format!("keyledger: error: {error}\n"),
                "{url}"
            );
            assert!(refused.stdout.is_empty(), "{url}");
            assert!(!out.exists(), "{url}: left {out:?}");
            // The URL through the environment, to stdout.
            let from_env = std::process::Command::new(env!("CARGO_BIN_EXE_keyledger"))
                .args(["export", "--data-dir", data.to_str().expect("utf8")])
                .args(["--instance", "life", "--format", "cef"])
                .args(follow)
                .env("KEYLEDGER_DATABASE_URL", url)
                .output()
                .expect("run keyledger");
            assert_eq!(from_env.status.code(), Some(2), "{url}");
            assert_eq!(from_env.stderr, refused.stderr, "{url}");
            assert!(from_env.stdout.is_empty(), "{url}");
            // Nor a data directory: the database is opened first.
            assert!(!data.exists(), "{url}: created {data:?}");
            for output in [&refused, &from_env] {
                let all = [&output.stdout[..], &output.stderr[..]].concat();
                assert!(
                    !String::from_utf8_lossy(&all).contains("hunter2"),
                    "{url}: the password printed"
                );
            }
        }
    }
}
