//! `keyledger serve --dev` as a child process, over plain HTTP/1.1:
//!
//! - the access log is one JSON line per request with route pattern,
//!   principal and correlation id, and the process output holds none of the
//!   dev tokens, data keys (given or generated) or ciphertexts;
//! - SIGTERM during concurrent wraps: exit 0, every wrap answered 200 is in
//!   the log at its receipt seq with its receipt leaf, the log verifies;
//! - an oversized body gets 413 with a Key Protect error body, and no event.

mod common;

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::secrets_scan;
use common::serve::{DevServer, INSTANCE, call, create_root_key};
use keyledger::store::EventStore;
use keyledger::store::embedded::EmbeddedStore;
use serde_json::json;

const KNOWN_DEK: &[u8; 32] = b"KNOWN-rest-data-encryption-key!!";
const WRAP_PATH_PATTERN: &str = "/api/v2/keys/{id}/actions/{action}";

fn wrap_body(plaintext: &[u8]) -> serde_json::Value {
    json!({"plaintext": STANDARD.encode(plaintext), "aad": ["tenant-7"]})
}

#[test]
fn access_log_is_structured_and_the_output_holds_no_secrets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let mut server = DevServer::start(&data, &dir.path().join("stderr.log"), &[]);
    let writer = server.token("writer");
    let mut conn = server.conn();
    let key = create_root_key(&mut conn, &writer, "logged-root");
    let wrap_path = format!("/api/v2/keys/{key}/actions/wrap");
    let unwrap_path = format!("/api/v2/keys/{key}/actions/unwrap");

    // Wrap a known data key, with a client correlation id.
    let body = serde_json::to_vec(&wrap_body(KNOWN_DEK)).expect("json");
    let auth = format!("Bearer {writer}");
    let res = conn
        .request(
            "POST",
            &wrap_path,
            &[
                ("authorization", &auth),
                ("bluemix-instance", INSTANCE),
                ("correlation-id", "corr-rest-log-1"),
            ],
            Some(&body),
        )
        .expect("wrap");
    assert_eq!(res.status(), 200, "{}", String::from_utf8_lossy(&res.body));
    assert_eq!(res.header("correlation-id"), Some("corr-rest-log-1"));
    let given_ct = res.json()["ciphertext"]
        .as_str()
        .expect("ciphertext")
        .to_string();

    // Wrap with a generated data key.
    let res = call(&mut conn, &writer, "POST", &wrap_path, Some(&json!({})));
    assert_eq!(res.status(), 200, "{}", String::from_utf8_lossy(&res.body));
    let generated_ct = res.json()["ciphertext"]
        .as_str()
        .expect("ciphertext")
        .to_string();
    let generated = STANDARD
        .decode(
            res.json()["plaintext"]
                .as_str()
                .expect("generated plaintext"),
        )
        .expect("base64");
    assert_eq!(generated.len(), 32);

    // Unwrap both.
    for (ct, want) in [
        (&given_ct, KNOWN_DEK.as_slice()),
        (&generated_ct, generated.as_slice()),
    ] {
        let aad: Vec<&str> = if ct == &given_ct {
            vec!["tenant-7"]
        } else {
            vec![]
        };
        let res = call(
            &mut conn,
            &writer,
            "POST",
            &unwrap_path,
            Some(&json!({"ciphertext": ct, "aad": aad})),
        );
        assert_eq!(res.status(), 200, "{}", String::from_utf8_lossy(&res.body));
        let got = STANDARD
            .decode(res.json()["plaintext"].as_str().expect("plaintext"))
            .expect("base64");
        assert_eq!(got, want);
    }
    // A refused request (bad token) and an unknown route are logged too.
    assert_eq!(
        call(&mut conn, "kl_not-a-token", "GET", "/api/v2/keys", None).status(),
        401
    );
    assert_eq!(
        conn.request("GET", "/nowhere", &[], None)
            .expect("404")
            .status(),
        404
    );
    drop(conn);
    let status = server.terminate();
    assert!(status.success(), "exit status {status}");

    let output = server.output();
    let text = String::from_utf8(output.clone()).expect("stderr is UTF-8");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    // create, 2 wraps, 2 unwraps, 401, 404.
    assert_eq!(lines.len(), 7, "{text}");
    for line in &lines {
        for field in [
            "ts",
            "method",
            "route",
            "status",
            "latency_ms",
            "correlation_id",
        ] {
            assert!(!line[field].is_null(), "{field} missing in {line}");
        }
        assert!(line["latency_ms"].as_f64().is_some_and(|l| l >= 0.0));
    }
    let wraps: Vec<_> = lines
        .iter()
        .filter(|l| l["route"] == WRAP_PATH_PATTERN && l["status"] == 200)
        .collect();
    assert_eq!(wraps.len(), 4, "{text}");
    for w in &wraps {
        assert_eq!(w["method"], "POST");
        assert_eq!(w["instance"], INSTANCE);
        assert_eq!(w["principal"], "dev-writer");
    }
    assert_eq!(wraps[0]["correlation_id"], "corr-rest-log-1");
    assert!(
        lines
            .iter()
            .any(|l| l["status"] == 401 && l["principal"].is_null() && l["instance"].is_null())
    );
    assert!(
        lines
            .iter()
            .any(|l| l["status"] == 404 && l["route"] == "unmatched")
    );
    // The logged correlation id is the one in the wrap event.
    let store = EmbeddedStore::open(&data).expect("store");
    let log = store.open_instance(INSTANCE).expect("instance");
    let records = log.read(0, log.head().size).expect("read");
    assert!(records.iter().any(|r| {
        let e: serde_json::Value = serde_json::from_slice(&r.event).expect("event");
        e["type"] == "key.wrapped" && e["correlation_id"] == "corr-rest-log-1"
    }));
    drop(log);
    drop(store);

    // No token, data key or ciphertext in the output; no data key on disk.
    let mut secrets: Vec<(String, Vec<u8>)> = server
        .tokens
        .iter()
        .map(|(role, t)| (format!("{role} token"), t.as_bytes().to_vec()))
        .collect();
    secrets.push(("known DEK".into(), KNOWN_DEK.to_vec()));
    secrets.push(("generated DEK".into(), generated.clone()));
    let refs: Vec<(&str, &[u8])> = secrets
        .iter()
        .map(|(l, s)| (l.as_str(), s.as_slice()))
        .collect();
    let found = secrets_scan::find_in(&output, &refs);
    assert!(found.is_empty(), "secrets in the server output: {found:?}");
    for ct in [&given_ct, &generated_ct] {
        assert!(
            !text.contains(ct.as_str()),
            "a ciphertext is in the server output"
        );
    }
    secrets_scan::assert_dir_clean(
        &data,
        &[
            ("known DEK", KNOWN_DEK.as_slice()),
            ("generated DEK", generated.as_slice()),
        ],
    );
}

/// An acknowledged wrap: receipt seq and leaf.
type Acks = Arc<Mutex<Vec<(u64, String)>>>;

#[test]
fn sigterm_mid_load_exits_zero_and_keeps_every_acknowledged_wrap() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let mut server = DevServer::start(&data, &dir.path().join("stderr.log"), &[]);
    let writer = server.token("writer");
    let key = {
        let mut conn = server.conn();
        create_root_key(&mut conn, &writer, "shutdown-root")
    };
    let acks: Acks = Arc::new(Mutex::new(Vec::new()));
    let done = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..8)
        .map(|i| {
            let (acks, done, stop) = (acks.clone(), done.clone(), stop.clone());
            let (addr, writer) = (server.addr.clone(), writer.clone());
            let path = format!("/api/v2/keys/{key}/actions/wrap");
            std::thread::spawn(move || {
                let mut n = 0u64;
                // Reconnect while the server still accepts; stop on refusal.
                while !stop.load(Ordering::Relaxed) {
                    let Ok(mut conn) = common::http::Conn::connect(&addr) else {
                        break;
                    };
                    loop {
                        n += 1;
                        let dek = format!("dek-{i:02}-{n:020}-padding!");
                        let body = serde_json::to_vec(&wrap_body(dek.as_bytes())).expect("json");
                        let auth = format!("Bearer {writer}");
                        let Ok(res) = conn.request(
                            "POST",
                            &path,
                            &[("authorization", &auth), ("bluemix-instance", INSTANCE)],
                            Some(&body),
                        ) else {
                            break;
                        };
                        if res.status() == 200 {
                            let seq = res
                                .header("keyledger-receipt-seq")
                                .and_then(|s| s.parse().ok())
                                .expect("receipt seq");
                            let leaf = res.header("keyledger-receipt-leaf").expect("leaf");
                            acks.lock().expect("lock").push((seq, leaf.to_string()));
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        })
        .collect();
    while done.load(Ordering::Relaxed) < 300 {
        std::thread::sleep(Duration::from_millis(5));
    }
    let status = server.terminate();
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().expect("client thread");
    }
    assert_eq!(status.code(), Some(0), "exit status {status}");
    let acks = std::mem::take(&mut *acks.lock().expect("lock"));
    assert!(acks.len() >= 300);

    // Restart: the server comes back, with every acknowledged event.
    let mut again = DevServer::start(&data, &dir.path().join("stderr2.log"), &[]);
    let size = again.log_records();
    let max_seq = acks.iter().map(|(s, _)| *s).max().expect("acks");
    assert!(max_seq < size, "seq {max_seq} acknowledged, log has {size}");
    let status = again.terminate();
    assert_eq!(status.code(), Some(0), "exit status {status}");

    let store = EmbeddedStore::open(&data).expect("store");
    let log = store.open_instance(INSTANCE).expect("instance");
    let records = log.read(0, log.head().size).expect("read");
    for (seq, leaf) in &acks {
        let record = &records[usize::try_from(*seq).expect("seq")];
        assert_eq!(&hex::encode(record.leaf_hash()), leaf, "record {seq}");
        let event: serde_json::Value = serde_json::from_slice(&record.event).expect("event");
        assert_eq!(event["type"], "key.wrapped", "record {seq}");
    }
    drop(log);
    drop(store);

    let bundle = dir.path().join("bundle");
    let exported = Command::new(env!("CARGO_BIN_EXE_keyledger"))
        .args(["ledger", "export", "--instance", INSTANCE, "--data-dir"])
        .arg(&data)
        .arg("--out")
        .arg(&bundle)
        .stdout(Stdio::null())
        .status()
        .expect("export");
    assert!(exported.success());
    let verified = Command::new(env!("CARGO_BIN_EXE_keyledger"))
        .arg("verify")
        .arg(&bundle)
        .output()
        .expect("verify");
    assert!(
        verified.status.success(),
        "verify: {}{}",
        String::from_utf8_lossy(&verified.stdout),
        String::from_utf8_lossy(&verified.stderr)
    );
}

#[test]
fn oversized_body_gets_413_with_a_key_protect_error_and_no_event() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let mut server = DevServer::start(
        &data,
        &dir.path().join("stderr.log"),
        &[("KEYLEDGER_BODY_LIMIT_BYTES", "4096")],
    );
    let writer = server.token("writer");
    let mut conn = server.conn();
    let key = create_root_key(&mut conn, &writer, "limited-root");
    let before = server.log_records();

    for path in [
        format!("/api/v2/keys/{key}/actions/wrap"),
        "/api/v2/keys".to_string(),
    ] {
        let big = json!({"plaintext": STANDARD.encode(vec![7u8; 8192])});
        let mut fresh = server.conn();
        let res = call(&mut fresh, &writer, "POST", &path, Some(&big));
        assert_eq!(res.status(), 413, "{path}");
        assert!(
            res.header("content-type")
                .is_some_and(|c| c.starts_with("application/vnd.ibm.kms.error+json")),
            "{:?}",
            res.head.headers
        );
        let body = res.json();
        assert_eq!(body["metadata"]["collectionTotal"], 1);
        let reason = &body["resources"][0]["reasons"][0];
        assert_eq!(reason["code"], "BODY_TOO_LARGE_ERR");
        assert_eq!(reason["status"], 413);
    }
    // A body under the limit still works on the same server.
    let ok = call(
        &mut conn,
        &writer,
        "POST",
        &format!("/api/v2/keys/{key}/actions/wrap"),
        Some(&wrap_body(KNOWN_DEK)),
    );
    assert_eq!(ok.status(), 200);
    let after = server.log_records();
    assert_eq!(after, before + 1, "only the accepted wrap made an event");
    drop(conn);
    assert!(server.terminate().success());
}
