//! `keyledger serve` on PostgreSQL, as users run it past one machine: two
//! servers (`serve --dev --database-url URL`, the same data directory,
//! different ports) on one throwaway database serve one instance as one
//! chain. A key created through one is used through the other at once;
//! concurrent wraps through both are each stored once; a state change
//! through one is obeyed by the other; the exported log verifies, with its
//! policy, and every acknowledged wrap is in it and unwraps.
//!
//! PostgreSQL: `KEYLEDGER_TEST_PG_URL` (default `host=127.0.0.1 port=5432
//! user=postgres dbname=postgres`; `scripts/postgres-setup` makes sure it
//! runs). The test never skips: no database is a failure.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use base64::Engine;
use common::http::Conn;
use common::pg::Db;
use common::serve::{DevServer, INSTANCE, call, create_root_key};
use keyledger::event::Envelope;
use serde_json::json;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn keyledger(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_keyledger"))
        .args(args)
        .output()
        .expect("run keyledger")
}

fn wrap(conn: &mut Conn, token: &str, key: &str, dek: &[u8]) -> (String, u64) {
    let res = call(
        conn,
        token,
        "POST",
        &format!("/api/v2/keys/{key}/actions/wrap"),
        Some(&json!({"plaintext": B64.encode(dek)})),
    );
    assert_eq!(
        res.status(),
        200,
        "wrap: {}",
        String::from_utf8_lossy(&res.body)
    );
    let seq = res
        .header("keyledger-receipt-seq")
        .and_then(|s| s.parse().ok())
        .expect("receipt seq");
    let ciphertext = res.json()["ciphertext"]
        .as_str()
        .expect("ciphertext")
        .to_string();
    (ciphertext, seq)
}

fn unwrap(conn: &mut Conn, token: &str, key: &str, ciphertext: &str) -> Vec<u8> {
    let res = call(
        conn,
        token,
        "POST",
        &format!("/api/v2/keys/{key}/actions/unwrap"),
        Some(&json!({"ciphertext": ciphertext})),
    );
    assert_eq!(
        res.status(),
        200,
        "unwrap: {}",
        String::from_utf8_lossy(&res.body)
    );
    B64.decode(res.json()["plaintext"].as_str().expect("plaintext"))
        .expect("base64")
}

fn action(conn: &mut Conn, token: &str, key: &str, action: &str) -> (u16, String) {
    let res = call(
        conn,
        token,
        "POST",
        &format!("/api/v2/keys/{key}/actions/{action}"),
        None,
    );
    let code = if res.status() < 300 {
        String::new()
    } else {
        res.json()["resources"][0]["reasons"][0]["code"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    (res.status(), code)
}

/// Starts the two servers on `db` with one data directory.
fn two_servers(data: &Path, logs: &Path, db: &Db) -> (DevServer, DevServer) {
    let url = db.url();
    let env = [("KEYLEDGER_DATABASE_URL", url.as_str())];
    let a = DevServer::start(data, &logs.join("a.err"), &env);
    // The second finds the instance in the database and unseals itself
    // from the same dev parts.
    let b = DevServer::start(data, &logs.join("b.err"), &env);
    (a, b)
}

#[test]
fn two_servers_on_one_database_serve_one_instance_as_one_chain() {
    let db = Db::create();
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let (mut a, mut b) = two_servers(&data, dir.path(), &db);
    let (writer, manager) = (a.token("writer"), a.token("manager"));
    assert_eq!(
        writer,
        b.token("writer"),
        "one instance, one set of credentials"
    );

    // Created through A, used through B immediately.
    let key = create_root_key(&mut a.conn(), &manager, "shared-key");
    let (first, _) = wrap(&mut b.conn(), &writer, &key, b"first data key..");
    assert_eq!(
        unwrap(&mut a.conn(), &writer, &key, &first),
        b"first data key.."
    );

    // Concurrent wraps through both servers: each acknowledged once.
    let acked: Vec<(Vec<u8>, String, u64)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let (server, writer, key) = (if t % 2 == 0 { &a } else { &b }, &writer, &key);
                s.spawn(move || {
                    let mut conn = server.conn();
                    (0..60)
                        .map(|i| {
                            let dek = format!("dek-{t}-{i:04}-0123456789").into_bytes();
                            let (ct, seq) = wrap(&mut conn, writer, key, &dek);
                            (dek, ct, seq)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("wrapper"))
            .collect()
    });
    let mut seqs: Vec<u64> = acked.iter().map(|a| a.2).collect();
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), acked.len(), "no two wraps share a seq");

    // A state change through B is obeyed by A at once, with B's answer.
    assert_eq!(
        action(&mut b.conn(), &manager, &key, "disable"),
        (204, String::new())
    );
    let refused_by_a = action(&mut a.conn(), &writer, &key, "wrap");
    let refused_by_b = action(&mut b.conn(), &writer, &key, "wrap");
    assert_ne!(refused_by_a.0, 200, "A wrapped with a key B disabled");
    assert_eq!(refused_by_a, refused_by_b, "both servers refuse alike");
    assert_eq!(
        action(&mut a.conn(), &manager, &key, "enable"),
        (204, String::new())
    );
    wrap(&mut b.conn(), &writer, &key, b"after enable....");

    // Every acknowledged wrap unwraps, through either server.
    for (i, (dek, ct, _)) in acked.iter().enumerate() {
        let server = if i % 2 == 0 { &b } else { &a };
        assert_eq!(&unwrap(&mut server.conn(), &writer, &key, ct), dek);
    }

    // The log, exported from the database, is one chain that keeps the rules.
    let bundle = dir.path().join("bundle");
    let data_arg = data.to_str().expect("utf-8 path");
    let url = db.url();
    common::pg::export_and_verify(&data, INSTANCE, &url, &bundle);
    let records = common::fixture::read_records(&bundle);
    let types: BTreeMap<u64, String> = records
        .iter()
        .map(|r| {
            let e = Envelope::parse(&r.event).expect("event");
            (e.seq, e.event_type)
        })
        .collect();
    for (_, _, seq) in &acked {
        assert_eq!(
            types.get(seq).map(String::as_str),
            Some("key.wrapped"),
            "seq {seq}"
        );
    }

    // An instance created while both run (same data directory, so both hold
    // its ledger key) is served by both without a restart: sealed until its
    // key owners load a master key, as any new instance.
    let admin_key = dir.path().join("acme-admin.key");
    let out = keyledger(&[
        "admin",
        "keygen",
        "--out",
        admin_key.to_str().expect("utf-8"),
    ]);
    assert!(
        out.status.success(),
        "keygen: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let admin_pub = format!("{}.pub", admin_key.display());
    let out = keyledger(&[
        "instance",
        "create",
        "--data-dir",
        data_arg,
        "--instance",
        "acme",
        "--database-url",
        &url,
        "--admin-public-key",
        &admin_pub,
    ]);
    assert!(
        out.status.success(),
        "instance create: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for server in [&a, &b] {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let res = server
                .ops_conn()
                .request("GET", "/ready", &[], None)
                .expect("ready");
            let body = String::from_utf8_lossy(&res.body).to_string();
            if res.status() == 503 && body.contains("acme") {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the new instance is not served: {} {body}",
                res.status()
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
    a.terminate();
    b.terminate();
}

/// Nothing secret reaches the database: a `pg_dump` of it (and both
/// servers' output) holds no data key, imported key, token or master-key
/// part, in any encoding, while it does hold the key's id and events.
#[test]
fn a_dump_of_the_database_holds_no_secret() {
    let db = Db::create();
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let (a, b) = two_servers(&data, dir.path(), &db);
    let (writer, manager) = (a.token("writer"), a.token("manager"));
    let key = create_root_key(&mut a.conn(), &manager, "dump-key");
    let dek = *b"a data key nobody may see 0123..";
    let (ciphertext, _) = wrap(&mut b.conn(), &writer, &key, &dek);
    assert_eq!(unwrap(&mut a.conn(), &writer, &key, &ciphertext), dek);
    // A generated data key, which only the caller ever sees.
    let res = call(
        &mut a.conn(),
        &writer,
        "POST",
        &format!("/api/v2/keys/{key}/actions/wrap"),
        None,
    );
    assert_eq!(res.status(), 200);
    let generated = B64
        .decode(res.json()["plaintext"].as_str().expect("generated"))
        .expect("base64");
    // An imported standard key's payload.
    let payload = *b"imported standard key payload!!!";
    let body = json!({
        "metadata": {"collectionType": "application/vnd.ibm.kms.key+json", "collectionTotal": 1},
        "resources": [{"type": "application/vnd.ibm.kms.key+json", "name": "imported",
                       "extractable": true, "payload": B64.encode(payload)}],
    });
    let res = call(&mut b.conn(), &manager, "POST", "/api/v2/keys", Some(&body));
    assert_eq!(res.status(), 201, "{}", String::from_utf8_lossy(&res.body));

    let mut parts = Vec::new();
    for owner in ["owner-a", "owner-b"] {
        let file: serde_json::Value = serde_json::from_slice(
            &std::fs::read(data.join("dev").join(format!("{owner}.key"))).expect("owner file"),
        )
        .expect("owner JSON");
        parts.push(hex::decode(file["part_hex"].as_str().expect("part")).expect("hex"));
    }
    let tokens: Vec<(String, String)> = a
        .tokens
        .iter()
        .map(|(role, token)| (format!("{role} token"), token.clone()))
        .collect();
    let mut secrets: Vec<(&str, &[u8])> = vec![
        ("data key", &dek),
        ("generated data key", &generated),
        ("imported payload", &payload),
        ("owner-a part", &parts[0]),
        ("owner-b part", &parts[1]),
    ];
    secrets.extend(tokens.iter().map(|(l, t)| (l.as_str(), t.as_bytes())));

    let dump = Command::new("pg_dump")
        .arg("--dbname")
        .arg(db.url())
        .output()
        .expect("run pg_dump");
    assert!(
        dump.status.success(),
        "pg_dump: {}",
        String::from_utf8_lossy(&dump.stderr)
    );
    let text = String::from_utf8_lossy(&dump.stdout);
    assert!(
        text.contains(&key),
        "the dump holds the key's events (the scan is not vacuous)"
    );
    assert!(
        text.contains("key_material"),
        "the dump holds the material table"
    );
    let found = common::secrets_scan::find_in(&dump.stdout, &secrets);
    assert!(found.is_empty(), "secrets in pg_dump: {found:?}");
    for server in [&a, &b] {
        let found = common::secrets_scan::find_in(&server.output(), &secrets);
        assert!(found.is_empty(), "secrets in server output: {found:?}");
    }
}

/// Each server holds the master key like one crypto unit: with PKCS#11 both
/// open the same token (SoftHSM2 here), so the second is unsealed by the
/// token itself, and a key created through one wraps through the other and
/// unwraps through the first.
#[test]
fn two_servers_share_one_pkcs11_token_and_one_database() {
    use common::softhsm::{self, USER_PIN, init_token, module_path};
    const TOKEN_LABEL: &str = "keyledger-shared";
    let db = Db::create();
    let dir = tempfile::tempdir().expect("tmp");
    softhsm::use_token_dir(dir.path());
    init_token(TOKEN_LABEL);
    let module = module_path();
    let module = module.to_str().expect("utf-8 module path");
    let url = db.url();
    let env = [
        ("KEYLEDGER_DATABASE_URL", url.as_str()),
        ("KEYLEDGER_PKCS11_MODULE", module),
        ("KEYLEDGER_PKCS11_TOKEN", TOKEN_LABEL),
        ("KEYLEDGER_PKCS11_PIN", USER_PIN),
    ];
    let data = dir.path().join("data");
    let mut a = DevServer::start(&data, &dir.path().join("a.err"), &env);
    let mut b = DevServer::start(&data, &dir.path().join("b.err"), &env);
    for server in [&a, &b] {
        let output = String::from_utf8(server.output()).expect("utf-8");
        assert!(output.contains("HSM backend pkcs11"), "{output}");
    }
    let (writer, manager) = (a.token("writer"), a.token("manager"));
    let key = create_root_key(&mut a.conn(), &manager, "token-shared");
    let dek = *b"one token, two servers, one key!";
    let (ciphertext, _) = wrap(&mut b.conn(), &writer, &key, &dek);
    assert_eq!(unwrap(&mut a.conn(), &writer, &key, &ciphertext), dek);
    let (ciphertext, _) = wrap(&mut a.conn(), &writer, &key, &dek);
    assert_eq!(unwrap(&mut b.conn(), &writer, &key, &ciphertext), dek);
    a.terminate();
    b.terminate();
}
