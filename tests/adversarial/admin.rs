//! See `main.rs`. Issue 14, items 4, 9 (ceremony status), 11 (admin
//! commands) and 12: the admin and ceremony endpoints write to the log only
//! for principals they proved (an administrator's or key owner's valid
//! signature), answer strangers exactly as they answer for an instance that
//! does not exist, tell a malformed command from an unauthenticated one, and
//! the data directory is private to the service user.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use chrono::{Duration, Utc};
use ed25519_dalek::{Signer, SigningKey};
use serde_json::{Value, json};

use crate::common::http::{Conn, Response};
use crate::common::serve::{DevServer, INSTANCE, call, create_root_key};
use keyledger::event::AdminSignature;
use keyledger::governance::{AdminCommand, CommandDocument, SignedCommand, admin_id};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
const UNKNOWN: &str = "no-such-instance";

fn start(tmp: &Path) -> DevServer {
    DevServer::start(&tmp.join("data"), &tmp.join("stderr.txt"), &[])
}

fn code(res: &Response) -> String {
    res.json()["resources"][0]["reasons"][0]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no reason code: {}", String::from_utf8_lossy(&res.body)))
        .to_string()
}

fn post(conn: &mut Conn, path: &str, instance: &str, body: &str) -> Response {
    conn.request(
        "POST",
        path,
        &[("bluemix-instance", instance)],
        Some(body.as_bytes()),
    )
    .expect("request")
}

/// The administrator `serve --dev` generated.
fn dev_admin(server: &DevServer) -> SigningKey {
    keyledger::admin_key::read(&server.data_dir.join("dev/admin.key")).expect("dev admin key")
}

/// A key owner `serve --dev` generated (`dev/owner-*.key`).
fn dev_owner(server: &DevServer, id: &str) -> SigningKey {
    let path = server.data_dir.join(format!("dev/{id}.key"));
    let owner: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("owner file")).expect("json");
    let mut seed = [0u8; 32];
    hex::decode_to_slice(owner["signing_seed_hex"].as_str().expect("seed"), &mut seed)
        .expect("hex");
    SigningKey::from_bytes(&seed)
}

fn command(expires_in: Duration, cmd: AdminCommand) -> SignedCommand {
    let doc = CommandDocument::new(INSTANCE, cmd, Utc::now() + expires_in).expect("document");
    SignedCommand::unsigned(&doc).expect("unsigned")
}

fn add_admin(name: &str) -> AdminCommand {
    AdminCommand::AddAdmin {
        name: name.into(),
        public_key: B64.encode(SigningKey::from_bytes(&[9; 32]).verifying_key().as_bytes()),
    }
}

/// The records appended since `start`, as parsed events (auditor token).
fn events_since(server: &DevServer, start: u64) -> Vec<Value> {
    let mut conn = server.conn();
    let res = call(
        &mut conn,
        &server.token("auditor"),
        "GET",
        &format!("/api/v2/ledger/records?start={start}"),
        None,
    );
    assert_eq!(res.status(), 200, "{}", String::from_utf8_lossy(&res.body));
    res.json()["records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|r| serde_json::from_str(r["event"].as_str().expect("event")).expect("event json"))
        .collect()
}

/// The 401 every request naming an unknown instance gets.
fn unknown_instance_401(conn: &mut Conn) -> Value {
    let unsigned = serde_json::to_string(&command(Duration::hours(1), add_admin("x"))).unwrap();
    let res = post(conn, "/api/v2/admin/commands", UNKNOWN, &unsigned);
    assert_eq!(res.status(), 401);
    res.json()
}

#[test]
fn commands_without_a_valid_admin_signature_append_nothing() {
    let tmp = tempfile::tempdir().expect("tmp");
    let server = start(tmp.path());
    let mut conn = server.conn();
    let unknown = unknown_instance_401(&mut conn);
    let admin = dev_admin(&server);
    let stranger = SigningKey::from_bytes(&[0x5a; 32]);
    let before = server.log_records();

    // Unsigned; signed by a key that is no administrator; a signature by
    // that key under the real administrator's id; a signature that is not
    // even 64 bytes. All well-formed commands, none proving anyone.
    let mut bodies = Vec::new();
    let unsigned = command(Duration::hours(1), add_admin("eve"));
    bodies.push(unsigned.clone());
    let mut by_stranger = unsigned.clone();
    by_stranger.sign(&stranger);
    bodies.push(by_stranger.clone());
    let mut forged = unsigned.clone();
    forged.signatures = vec![AdminSignature {
        admin_id: admin_id(&admin.verifying_key()),
        signature: by_stranger.signatures[0].signature.clone(),
    }];
    bodies.push(forged);
    let mut short = unsigned.clone();
    short.signatures = vec![AdminSignature {
        admin_id: admin_id(&admin.verifying_key()),
        signature: B64.encode([1u8; 10]),
    }];
    bodies.push(short);
    for i in 0..100 {
        let body = serde_json::to_string(&bodies[i % bodies.len()]).unwrap();
        let res = post(&mut conn, "/api/v2/admin/commands", INSTANCE, &body);
        assert_eq!(
            res.status(),
            401,
            "{i}: {}",
            String::from_utf8_lossy(&res.body)
        );
        assert_eq!(code(&res), "UNAUTHORIZED_ERR");
        // Exactly the unknown instance's answer: nothing learned.
        assert_eq!(res.json(), unknown, "{i}");
    }
    assert_eq!(
        server.log_records(),
        before,
        "strangers appended to the log"
    );
}

#[test]
fn a_refused_command_of_a_proven_admin_is_logged_under_that_admin() {
    let tmp = tempfile::tempdir().expect("tmp");
    let server = start(tmp.path());
    let mut conn = server.conn();
    let admin = dev_admin(&server);
    let before = server.log_records();
    // Backdated: the administrator's signature verifies, the rules refuse.
    let mut expired = command(Duration::minutes(-5), add_admin("late"));
    expired.sign(&admin);
    let body = serde_json::to_string(&expired).unwrap();
    let res = post(&mut conn, "/api/v2/admin/commands", INSTANCE, &body);
    assert_eq!(res.status(), 403, "{}", String::from_utf8_lossy(&res.body));
    assert_eq!(code(&res), "UNAUTHORIZED_ERR");
    assert_eq!(server.log_records(), before + 1);
    let events = events_since(&server, before);
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert_eq!(event["type"], "admin.command_denied", "{event}");
    assert_eq!(
        event["payload"]["reason"]
            .as_str()
            .map(|r| r.starts_with("command expired")),
        Some(true),
        "{event}"
    );
    assert_eq!(
        event["actor"],
        json!({"principal": admin_id(&admin.verifying_key()), "role": "admin", "auth": "admin_signatures"}),
        "the actor is the administrator whose signature verified, not the caller's choice"
    );
}

#[test]
fn malformed_commands_are_body_errors_and_append_nothing() {
    let tmp = tempfile::tempdir().expect("tmp");
    let server = start(tmp.path());
    let mut conn = server.conn();
    let admin = dev_admin(&server);
    let before = server.log_records();
    let mut too_many = command(Duration::hours(1), add_admin("many"));
    too_many.sign(&admin);
    for n in 0..16u8 {
        too_many.sign(&SigningKey::from_bytes(&[n + 1; 32]));
    }
    assert_eq!(too_many.signatures.len(), 17);
    let mut bad_nonce = command(Duration::hours(1), add_admin("n"));
    bad_nonce.document = bad_nonce.document.replace("\"nonce\":\"", "\"nonce\":\"!");
    bad_nonce.sign(&admin);
    let mut unknown_kind = command(Duration::hours(1), add_admin("k"));
    unknown_kind.document = unknown_kind.document.replace("admin.add", "admin.explode");
    unknown_kind.sign(&admin);
    let cases = [
        json!({"document": "not a command", "signatures": []}).to_string(),
        serde_json::to_string(&bad_nonce).unwrap(),
        serde_json::to_string(&unknown_kind).unwrap(),
        serde_json::to_string(&too_many).unwrap(),
        "{\"nope\":1}".to_string(),
        "not json".to_string(),
    ];
    for body in &cases {
        for instance in [INSTANCE, UNKNOWN] {
            let res = post(&mut conn, "/api/v2/admin/commands", instance, body);
            assert_eq!(
                (res.status(), code(&res).as_str()),
                (400, "BAD_BODY_ERR"),
                "{instance} {body}: {}",
                String::from_utf8_lossy(&res.body)
            );
        }
    }
    assert_eq!(server.log_records(), before, "a body error was logged");
}

fn part_body(owner_id: &str, generation: u32, signer: &SigningKey) -> String {
    let part = keyledger::hsm::SealedPart {
        enc: vec![7; 32],
        ciphertext: vec![8; 48],
    };
    let message =
        keyledger::keys::service::part_submission_message(INSTANCE, generation, owner_id, &part);
    json!({
        "owner_id": owner_id,
        "enc": B64.encode(&part.enc),
        "ciphertext": B64.encode(&part.ciphertext),
        "signature": B64.encode(signer.sign(&message).to_bytes()),
    })
    .to_string()
}

#[test]
fn ceremony_parts_of_unproven_owners_append_nothing() {
    let tmp = tempfile::tempdir().expect("tmp");
    let server = start(tmp.path());
    let mut conn = server.conn();
    let unknown = unknown_instance_401(&mut conn);
    let owner_a = dev_owner(&server, "owner-a");
    let mallory = SigningKey::from_bytes(&[0x66; 32]);
    let before = server.log_records();
    // An owner id the caller made up, signed by the caller; a registered
    // owner's id signed by the wrong key. The next generation is 2.
    for body in [
        part_body("mallory", 2, &mallory),
        part_body("owner-a", 2, &mallory),
        part_body("root\"injected", 2, &mallory),
    ] {
        for _ in 0..10 {
            let res = post(&mut conn, "/api/v2/admin/ceremony/parts", INSTANCE, &body);
            assert_eq!(res.status(), 401, "{}", String::from_utf8_lossy(&res.body));
            assert_eq!(code(&res), "UNAUTHORIZED_ERR");
            assert_eq!(
                res.json(),
                unknown,
                "an unproven part is answered as an unknown instance"
            );
        }
    }
    assert_eq!(
        server.log_records(),
        before,
        "unproven parts appended to the log"
    );

    // A proven owner refused (loading generation 2 was never approved) is
    // logged, under that owner.
    let res = post(
        &mut conn,
        "/api/v2/admin/ceremony/parts",
        INSTANCE,
        &part_body("owner-a", 2, &owner_a),
    );
    assert_eq!(res.status(), 409, "{}", String::from_utf8_lossy(&res.body));
    assert_eq!(code(&res), "MASTER_KEY_CEREMONY_ERR");
    let events = events_since(&server, before);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["type"], "access.denied");
    assert_eq!(
        events[0]["actor"],
        json!({"principal": "owner-a", "role": "key_owner", "auth": "key_owner_credential"})
    );
}

/// `keyledger-key-owner*` headers for `GET /admin/ceremony`, signed over
/// `"keyledger/v1/ceremony-status" || 0x00 || u16be len || instance ||
/// u16be len || owner_id || i64be unix time` (docs/REST.md).
fn owner_headers(
    instance: &str,
    owner: &str,
    key: &SigningKey,
    time: i64,
) -> [(String, String); 3] {
    let mut message = b"keyledger/v1/ceremony-status\0".to_vec();
    for field in [instance, owner] {
        message.extend_from_slice(&(field.len() as u16).to_be_bytes());
        message.extend_from_slice(field.as_bytes());
    }
    message.extend_from_slice(&time.to_be_bytes());
    [
        ("keyledger-key-owner".into(), owner.into()),
        ("keyledger-key-owner-time".into(), time.to_string()),
        (
            "keyledger-key-owner-signature".into(),
            B64.encode(key.sign(&message).to_bytes()),
        ),
    ]
}

fn ceremony(conn: &mut Conn, instance: &str, extra: &[(String, String)]) -> Response {
    let mut headers = vec![("bluemix-instance", instance)];
    headers.extend(extra.iter().map(|(n, v)| (n.as_str(), v.as_str())));
    conn.request("GET", "/api/v2/admin/ceremony", &headers, None)
        .expect("request")
}

#[test]
fn ceremony_status_tells_strangers_nothing() {
    let tmp = tempfile::tempdir().expect("tmp");
    let server = start(tmp.path());
    let mut conn = server.conn();
    let owner_a = dev_owner(&server, "owner-a");
    let mallory = SigningKey::from_bytes(&[0x66; 32]);
    let now = Utc::now().timestamp();
    let before = server.log_records();

    let anonymous = ceremony(&mut conn, INSTANCE, &[]);
    assert_eq!(
        anonymous.status(),
        401,
        "{}",
        String::from_utf8_lossy(&anonymous.body)
    );
    assert_eq!(code(&anonymous), "UNAUTHORIZED_ERR");
    let unknown = ceremony(&mut conn, UNKNOWN, &[]);
    assert_eq!(unknown.status(), 401);
    assert_eq!(anonymous.json(), unknown.json());
    assert!(!String::from_utf8_lossy(&anonymous.body).contains("owner-a"));
    // Every way of not being a registered owner of this instance: the same 401.
    for headers in [
        owner_headers(INSTANCE, "mallory", &mallory, now),
        owner_headers(INSTANCE, "owner-a", &mallory, now),
        owner_headers(INSTANCE, "owner-a", &owner_a, now - 3600),
        owner_headers(UNKNOWN, "owner-a", &owner_a, now),
        owner_headers("other", "owner-a", &owner_a, now),
    ] {
        for instance in [INSTANCE, UNKNOWN] {
            let res = ceremony(&mut conn, instance, &headers);
            assert_eq!(res.status(), 401, "{instance} {headers:?}");
            assert_eq!(res.json(), unknown.json(), "{instance} {headers:?}");
        }
    }
    // The registered owner, signing now, gets what sealing a part needs.
    let res = ceremony(
        &mut conn,
        INSTANCE,
        &owner_headers(INSTANCE, "owner-a", &owner_a, now),
    );
    assert_eq!(res.status(), 200, "{}", String::from_utf8_lossy(&res.body));
    let status = res.json();
    assert_eq!(status["generation"], 2);
    assert_eq!(status["unseal"], false);
    assert_eq!(
        B64.decode(status["public_key"].as_str().expect("key"))
            .expect("b64")
            .len(),
        32
    );
    assert_eq!(status["registered_owners"], json!(["owner-a", "owner-b"]));
    assert_eq!(
        server.log_records(),
        before,
        "a status read is not an event"
    );
}

fn keyledger_cmd(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_keyledger"))
        .args(args)
        .env_remove("KEYLEDGER_DATA_DIR")
        .output()
        .expect("run keyledger")
}

/// Every directory under (and including) `root` is 0700, every file 0600.
fn assert_private(root: &Path) -> usize {
    let mut seen = 0;
    let mut stack: Vec<PathBuf> = vec![root.to_path_buf()];
    while let Some(path) = stack.pop() {
        let meta = std::fs::symlink_metadata(&path).expect("stat");
        let mode = meta.permissions().mode() & 0o7777;
        seen += 1;
        if meta.is_dir() {
            assert_eq!(mode, 0o700, "{} is a {mode:o} directory", path.display());
            for entry in std::fs::read_dir(&path).expect("read_dir") {
                stack.push(entry.expect("entry").path());
            }
        } else {
            assert!(
                meta.is_file(),
                "{} is neither file nor directory",
                path.display()
            );
            assert_eq!(mode, 0o600, "{} is a {mode:o} file", path.display());
        }
    }
    seen
}

fn activity(server: &DevServer, name: &str) {
    let mut conn = server.conn();
    let writer = server.token("writer");
    let id = create_root_key(&mut conn, &writer, name);
    let wrap = call(
        &mut conn,
        &writer,
        "POST",
        &format!("/api/v2/keys/{id}/actions/wrap"),
        Some(&json!({})),
    );
    assert_eq!(
        wrap.status(),
        200,
        "{}",
        String::from_utf8_lossy(&wrap.body)
    );
    let rotate = call(
        &mut conn,
        &server.token("manager"),
        "POST",
        &format!("/api/v2/keys/{id}/actions/rotate"),
        Some(&json!({})),
    );
    assert_eq!(
        rotate.status(),
        204,
        "{}",
        String::from_utf8_lossy(&rotate.body)
    );
    let checkpoint = call(
        &mut conn,
        &server.token("auditor"),
        "GET",
        "/api/v2/ledger/checkpoint",
        None,
    );
    assert_eq!(checkpoint.status(), 200);
}

#[test]
fn the_data_directory_is_private_to_the_service_user() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    let mut server = start(tmp.path());
    activity(&server, "first");
    assert!(server.terminate().success());
    // A ledger key rotation by the operator between two runs adds key files.
    let out = keyledger_cmd(&[
        "ledger",
        "rotate-key",
        "--data-dir",
        data.to_str().unwrap(),
        "--instance",
        INSTANCE,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut server = start(tmp.path());
    activity(&server, "second");
    assert!(server.terminate().success());
    let files = assert_private(&data);
    assert!(files > 20, "only {files} entries: the walk saw too little");

    // A data directory left loose (an older version, a careless copy) is
    // refused, changing nothing, until the operator makes it private: the
    // server never chmods a tree it did not create (a mistaken --data-dir).
    let loose = [
        (data.clone(), 0o755),
        (data.join(format!("instances/{INSTANCE}")), 0o750),
        (
            data.join(format!("instances/{INSTANCE}/log/records.log")),
            0o644,
        ),
        (data.join("dev-credentials.json"), 0o604),
    ];
    for (path, mode) in &loose {
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(*mode)).unwrap();
        let out = keyledger_cmd(&[
            "serve",
            "--dev",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data.to_str().unwrap(),
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{}: {stderr}", path.display());
        assert!(
            stderr.contains(&format!("{} is mode {mode:o}", path.display())),
            "{stderr}"
        );
        assert!(stderr.contains("chmod -R go-rwx"), "{stderr}");
        let now = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(now, *mode, "a refused start changed {}", path.display());
        let mode = if path.is_dir() { 0o700 } else { 0o600 };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let mut server = start(tmp.path());
    activity(&server, "third");
    assert!(server.terminate().success());
    assert_private(&data);
}

#[test]
fn a_refused_serve_start_creates_no_data_directory() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("never");
    let data_arg = data.to_str().unwrap();
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let busy_addr = busy.local_addr().unwrap().to_string();
    let missing = tmp.path().join("missing.pem");
    let missing = missing.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        // Neither TLS nor plain HTTP asked for.
        (vec!["--listen", "127.0.0.1:0"], "TLS needs both"),
        // TLS files that do not exist.
        (
            vec![
                "--listen",
                "127.0.0.1:0",
                "--tls-cert",
                missing,
                "--tls-key",
                missing,
            ],
            "missing.pem",
        ),
        // An address that cannot be listened on.
        (
            vec!["--dev", "--listen", "not-an-address"],
            "not-an-address",
        ),
        (vec!["--dev", "--listen", &busy_addr], &busy_addr),
    ];
    for (args, why) in cases {
        let mut all = vec!["serve", "--data-dir", data_arg];
        all.extend(args.iter());
        let out = keyledger_cmd(&all);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(why), "{args:?}: {stderr}");
        assert!(!data.exists(), "{args:?} created {}", data.display());
    }
    drop(busy);
}
