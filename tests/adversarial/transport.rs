//! Transport: what a client can make the server do before it has proved who
//! it is, and the anonymous surface.
//!
//! - A bearer route identifies its caller from the headers before reading a
//!   body: an unknown caller's body is never waited for (401 at once, the
//!   connection closed), however many such connections there are.
//! - A known caller's body must arrive in time (408, connection closed, no
//!   event).
//! - `authorization` and `bluemix-instance` appear at most once (400); the
//!   `Bearer` scheme is case-insensitive.
//! - `/ready` answers 503 while an instance is sealed; only the operations
//!   listener names it, and `/metrics` is only there.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::common::http::{Response, parse_head};
use crate::common::serve::{DevServer, INSTANCE, call, create_root_key};

/// Long enough that only a server that never answers makes a read fail.
const PATIENCE: Duration = Duration::from_secs(60);

fn start(dir: &Path, env: &[(&str, &str)]) -> DevServer {
    DevServer::start(&dir.join("data"), &dir.join("stderr.log"), env)
}

/// Sends `head` (a request head without its final blank line) and
/// `body_start`, and returns the response. [`raw`] reads until the server
/// closes the connection and fails the test if it neither answers nor
/// closes within [`PATIENCE`], so a returned response means both.
fn send_partial(addr: &str, head: &str, body_start: &[u8]) -> Response {
    let mut request = format!("{head}\r\n\r\n").into_bytes();
    request.extend_from_slice(body_start);
    let out = raw(addr, &request);
    responses(&out)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no response: {:?}", String::from_utf8_lossy(&out)))
}

fn reason(res: &Response) -> (u16, String) {
    let body = res.json();
    (
        res.status(),
        body["resources"][0]["reasons"][0]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("no Key Protect error body: {body}"))
            .to_string(),
    )
}

fn wrap_head(key: &str, auth: Option<&str>, instance: Option<&str>, length: usize) -> String {
    let mut head = format!(
        "POST /api/v2/keys/{key}/actions/wrap HTTP/1.1\r\nhost: kl\r\ncontent-type: application/json\r\ncontent-length: {length}"
    );
    if let Some(auth) = auth {
        head.push_str(&format!("\r\nauthorization: {auth}"));
    }
    if let Some(instance) = instance {
        head.push_str(&format!("\r\nbluemix-instance: {instance}"));
    }
    head
}

#[test]
fn an_unknown_caller_is_refused_before_its_body_is_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(dir.path(), &[]);
    let key = create_root_key(
        &mut server.conn(),
        &server.token("writer"),
        "transport-root",
    );
    let before = server.log_records();
    let cases: [(Option<&str>, Option<&str>, u16, &str); 5] = [
        (None, Some(INSTANCE), 401, "UNAUTHORIZED_ERR"),
        (
            Some("Bearer not-a-token"),
            Some(INSTANCE),
            401,
            "UNAUTHORIZED_ERR",
        ),
        (
            Some("Basic dXNlcjpwYXNz"),
            Some(INSTANCE),
            401,
            "UNAUTHORIZED_ERR",
        ),
        (
            Some("Bearer not-a-token"),
            Some("no-such-instance"),
            401,
            "UNAUTHORIZED_ERR",
        ),
        (Some("Bearer not-a-token"), None, 400, "INVALID_HEADER_ERR"),
    ];
    for (auth, instance, status, code) in cases {
        // 100 bytes announced, one sent: the answer must not wait for the rest.
        // send_partial returns only once the server has closed.
        let res = send_partial(&server.addr, &wrap_head(&key, auth, instance, 100), b"{");
        assert_eq!(
            reason(&res),
            (status, code.to_string()),
            "{auth:?} {instance:?}"
        );
    }
    // Many at once: each is answered and closed, none is held.
    let handles: Vec<_> = (0..200)
        .map(|_| {
            let addr = server.addr.clone();
            let head = wrap_head(&key, Some("Bearer not-a-token"), Some(INSTANCE), 100);
            std::thread::spawn(move || send_partial(&addr, &head, b"{"))
        })
        .collect();
    for h in handles {
        let res = h.join().expect("client");
        assert_eq!(res.status(), 401);
    }
    assert_eq!(
        server.log_records(),
        before,
        "a refused caller wrote to the log"
    );
}

#[test]
fn a_slow_body_times_out_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(dir.path(), &[("KEYLEDGER_BODY_TIMEOUT_SECS", "2")]);
    let writer = server.token("writer");
    let key = create_root_key(&mut server.conn(), &writer, "slow-root");
    let before = server.log_records();
    let auth = format!("Bearer {writer}");
    // Answered, and the connection closed (send_partial waits for both).
    let res = send_partial(
        &server.addr,
        &wrap_head(&key, Some(&auth), Some(INSTANCE), 100),
        b"{",
    );
    assert_eq!(reason(&res), (408, "REQUEST_TIMEOUT_ERR".to_string()));
    // Creating a key with a slow body: refused the same way, nothing stored.
    let head = "POST /api/v2/keys HTTP/1.1\r\nhost: kl\r\ncontent-type: application/vnd.ibm.kms.key+json\r\ncontent-length: 400";
    let head = format!("{head}\r\nauthorization: {auth}\r\nbluemix-instance: {INSTANCE}");
    let res = send_partial(&server.addr, &head, br#"{"metadata":"#);
    assert_eq!(res.status(), 408);
    assert_eq!(
        server.log_records(),
        before,
        "a timed-out request wrote to the log"
    );
    let keys = call(&mut server.conn(), &writer, "GET", "/api/v2/keys", None);
    assert_eq!(
        keys.json()["metadata"]["collectionTotal"],
        1,
        "only the first key exists"
    );
    // A body that arrives in time still works.
    let ok = call(
        &mut server.conn(),
        &writer,
        "POST",
        &format!("/api/v2/keys/{key}/actions/wrap"),
        Some(&json!({})),
    );
    assert_eq!(ok.status(), 200, "{}", String::from_utf8_lossy(&ok.body));
    assert_eq!(server.log_records(), before + 1);
}

#[test]
fn identity_headers_may_not_be_repeated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(dir.path(), &[]);
    let writer = format!("Bearer {}", server.token("writer"));
    let manager = format!("Bearer {}", server.token("manager"));
    let before = server.log_records();
    let create = serde_json::to_vec(&json!({
        "metadata": {"collectionType": "application/vnd.ibm.kms.key+json", "collectionTotal": 1},
        "resources": [{"type": "application/vnd.ibm.kms.key+json", "name": "twice", "extractable": false}],
    }))
    .expect("json");
    let cases: [&[(&str, &str)]; 4] = [
        &[
            ("authorization", &writer),
            ("authorization", &manager),
            ("bluemix-instance", INSTANCE),
        ],
        &[
            ("authorization", "Bearer not-a-token"),
            ("authorization", &writer),
            ("bluemix-instance", INSTANCE),
        ],
        &[
            ("authorization", &writer),
            ("bluemix-instance", INSTANCE),
            ("bluemix-instance", "other-instance"),
        ],
        &[
            ("authorization", &writer),
            ("bluemix-instance", "other-instance"),
            ("bluemix-instance", INSTANCE),
        ],
    ];
    for headers in cases {
        let mut conn = server.conn();
        let res = conn
            .request("POST", "/api/v2/keys", headers, Some(&create))
            .expect("request");
        assert_eq!(
            reason(&res),
            (400, "INVALID_HEADER_ERR".to_string()),
            "{headers:?}"
        );
        // A refusal with an unread body closes its connection.
        let res = server
            .conn()
            .request("GET", "/api/v2/keys", headers, None)
            .expect("request");
        assert_eq!(res.status(), 400, "{headers:?}");
    }
    assert_eq!(
        server.log_records(),
        before,
        "a refused request wrote to the log"
    );
    let keys = call(
        &mut server.conn(),
        &server.token("reader"),
        "GET",
        "/api/v2/keys",
        None,
    );
    assert_eq!(keys.json()["metadata"]["collectionTotal"], 0);
}

#[test]
fn the_bearer_scheme_is_case_insensitive() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(dir.path(), &[]);
    let token = server.token("reader");
    let list_keys = |auth: &str| {
        server
            .conn()
            .request(
                "GET",
                "/api/v2/keys",
                &[("authorization", auth), ("bluemix-instance", INSTANCE)],
                None,
            )
            .expect("request")
    };
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let res = list_keys(&format!("{scheme} {token}"));
        assert_eq!(
            res.status(),
            200,
            "{scheme}: {}",
            String::from_utf8_lossy(&res.body)
        );
    }
    let res = list_keys(&format!("Bearer{token}"));
    assert_eq!(reason(&res), (401, "UNAUTHORIZED_ERR".to_string()));
}

fn keyledger(dir: &Path, args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_keyledger"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run keyledger");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn ready_says_sealed_and_only_the_operations_listener_names_instances() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = start(dir.path(), &[]);
    let ready = server
        .conn()
        .request("GET", "/ready", &[], None)
        .expect("ready");
    assert_eq!(ready.status(), 200);
    assert!(server.terminate().success());
    // A second instance with no master key loaded yet: sealed after the restart.
    keyledger(dir.path(), &["admin", "keygen", "--out", "alice.key"]);
    keyledger(
        dir.path(),
        &[
            "instance",
            "create",
            "--data-dir",
            "data",
            "--instance",
            "acme-sealed",
            "--admin-public-key",
            "alice.key.pub",
        ],
    );
    let server = DevServer::start(&dir.path().join("data"), &dir.path().join("again.log"), &[]);

    let res = server
        .conn()
        .request("GET", "/ready", &[], None)
        .expect("ready");
    assert_eq!(res.status(), 503, "{}", String::from_utf8_lossy(&res.body));
    assert_eq!(res.json(), json!({"status": "sealed", "sealed_count": 1}));
    let res = server
        .ops_conn()
        .request("GET", "/ready", &[], None)
        .expect("ready");
    assert_eq!(res.status(), 503, "{}", String::from_utf8_lossy(&res.body));
    assert_eq!(
        res.json(),
        json!({"status": "sealed", "sealed_instances": ["acme-sealed"]})
    );

    // Metrics name instances: not on the API listener, to anyone.
    let res = server
        .conn()
        .request("GET", "/metrics", &[], None)
        .expect("metrics");
    assert_eq!(reason(&res), (404, "NOT_FOUND_ERR".to_string()));
    let res = server
        .ops_conn()
        .request("GET", "/metrics", &[], None)
        .expect("metrics");
    assert_eq!(res.status(), 200);
    let text = String::from_utf8(res.body).expect("text");
    assert!(text.contains("instance=\"acme-sealed\""), "{text}");
    // The operations listener serves nothing else.
    let res = server
        .ops_conn()
        .request(
            "GET",
            "/api/v2/keys",
            &[
                (
                    "authorization",
                    &format!("Bearer {}", server.token("reader")),
                ),
                ("bluemix-instance", INSTANCE),
            ],
            None,
        )
        .expect("keys");
    assert_eq!(res.status(), 404);
}

/// Sends raw bytes and reads until the server closes.
fn raw(addr: &str, bytes: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(PATIENCE)).expect("timeout");
    stream.write_all(bytes).expect("write");
    let mut out = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&chunk[..n]),
            // Unread request bytes make the kernel reset the connection.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!(
                "the server neither answered nor closed within {PATIENCE:?} ({e}); got {:?}",
                String::from_utf8_lossy(&out)
            ),
        }
    }
    out
}

/// The responses in `bytes`, in order.
fn responses(mut bytes: &[u8]) -> Vec<Response> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let head = parse_head(bytes)
            .expect("response head")
            .unwrap_or_else(|| panic!("truncated: {:?}", String::from_utf8_lossy(bytes)));
        let end = head.head_len + head.content_length;
        out.push(Response {
            body: bytes[head.head_len..end].to_vec(),
            head,
        });
        bytes = &bytes[end..];
    }
    out
}

#[test]
fn requests_the_http_parser_refuses_get_key_protect_bodies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(dir.path(), &[]);
    let many: String = (0..100).map(|i| format!("x-h{i}: v\r\n")).collect();
    let huge = format!("x-big: {}\r\n", "a".repeat(140_000));
    let cases: [(Vec<u8>, u16, &str); 5] = [
        (
            b"GET /health HTTP/1.1\r\nbad header\r\n\r\n".to_vec(),
            400,
            "BAD_REQUEST_ERR",
        ),
        (
            b"GET /health HTTP/9.9\r\n\r\n".to_vec(),
            400,
            "BAD_REQUEST_ERR",
        ),
        (
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n".to_vec(),
            400,
            "BAD_REQUEST_ERR",
        ),
        (
            format!("GET /health HTTP/1.1\r\n{many}\r\n").into_bytes(),
            431,
            "HEADERS_TOO_LARGE_ERR",
        ),
        (
            format!("GET /health HTTP/1.1\r\n{huge}\r\n").into_bytes(),
            431,
            "HEADERS_TOO_LARGE_ERR",
        ),
    ];
    for (request, status, code) in cases {
        let out = raw(&server.addr, &request);
        let all = responses(&out);
        assert_eq!(all.len(), 1, "{:?}", String::from_utf8_lossy(&out));
        let res = &all[0];
        assert_eq!(
            res.header("content-type"),
            Some("application/vnd.ibm.kms.error+json")
        );
        assert_eq!(reason(res), (status, code.to_string()));
    }
    // Behind a good request on the same connection: that one is answered
    // as usual, then the refusal.
    let out = raw(
        &server.addr,
        b"GET /health HTTP/1.1\r\nhost: kl\r\n\r\nGET /health HTTP/1.1\r\nbad\r\n\r\n",
    );
    let all = responses(&out);
    assert_eq!(all.len(), 2, "{:?}", String::from_utf8_lossy(&out));
    assert_eq!(all[0].status(), 200);
    assert_eq!(all[0].json(), json!({"status": "ok"}));
    assert_eq!(reason(&all[1]), (400, "BAD_REQUEST_ERR".to_string()));
}

#[test]
fn both_listeners_serve_tls_when_configured() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let status = Command::new("openssl")
        .current_dir(d)
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "key.pem",
            "-out",
            "cert.pem",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .output()
        .expect("openssl");
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let log = d.join("stderr.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_keyledger"))
        .args([
            "serve",
            "--dev",
            "--listen",
            "127.0.0.1:0",
            "--ops-listen",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(d.join("data"))
        .arg("--tls-cert")
        .arg(d.join("cert.pem"))
        .arg("--tls-key")
        .arg(d.join("key.pem"))
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("serve");
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let (api, ops) = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let url = |what: &str| {
            text.lines()
                .filter(|l| l.starts_with(what))
                .find_map(|l| l.split_once(" on ").map(|(_, u)| u.trim().to_string()))
        };
        if let (Some(api), Some(ops)) = (url("keyledger: serving "), url("keyledger: operations "))
        {
            break (api, ops);
        }
        assert!(std::time::Instant::now() < deadline, "no start: {text}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        api.starts_with("https://") && ops.starts_with("https://"),
        "{api} {ops}"
    );
    let creds: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(d.join("data/dev-credentials.json")).expect("credentials"),
    )
    .expect("json");
    let auth = format!(
        "authorization: Bearer {}",
        creds["tokens"]["reader"].as_str().expect("token")
    );
    let curl = |args: &[&str]| {
        let out = Command::new("curl")
            .args(["-sS", "--cacert"])
            .arg(d.join("cert.pem"))
            .args(args)
            .output()
            .expect("curl");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf8")
    };
    let keys = curl(&[
        "-H",
        &auth,
        "-H",
        &format!("bluemix-instance: {INSTANCE}"),
        &format!("{api}/api/v2/keys"),
    ]);
    assert!(keys.contains("\"collectionTotal\":0"), "{keys}");
    let metrics = curl(&[&format!("{ops}/metrics")]);
    assert!(
        metrics.contains("keyledger_log_records{instance=\"dev-instance\"}"),
        "{metrics}"
    );
    // Plain HTTP to the TLS listener is not served.
    let plain = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "10",
            &format!("{}/health", api.replace("https://", "http://")),
        ])
        .output()
        .expect("curl");
    assert!(!String::from_utf8_lossy(&plain.stdout).contains("\"ok\""));
    let _ = child.kill();
    let _ = child.wait();
}
