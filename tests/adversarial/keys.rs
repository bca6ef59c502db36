//! Keys (issue 14, items 2, 3, 7 and the key part of 11), against a real
//! `keyledger serve --dev`:
//!
//! - every path that brings key material in (create with a payload, create
//!   through the import token, rotate, restore) refuses a payload of the
//!   wrong size alike (400 `INVALID_FIELD_ERR`, in our words, nothing
//!   appended), so no key ever gets a version it cannot use: after the
//!   refused rotations the key still wraps, older ciphertexts still unwrap,
//!   and the next good rotation is not held back by the hourly limit;
//! - a standard (extractable) key refuses wrap, unwrap, rewrap, rotate and
//!   disable with 400 `KEY_ROOT_REQ_ERR` in both URL forms, appending
//!   nothing and changing nothing;
//! - activation and expiration dates hold at the moment they come, not at
//!   the next scheduler pass (which is kept an hour away here);
//! - an unknown key ring at creation is `KEY_RING_NOT_FOUND_ERR`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::common::http::{Conn, Response};
use crate::common::kp_client;
use crate::common::serve::{DevServer, INSTANCE, call, create_root_key};
use keyledger::keys::import_token::{ImportTokenContents, ImportTokenMetadata};

/// The payload sizes no path may accept for any key.
const BAD_SIZES: [usize; 4] = [0, 15, 17, 33];
/// Sizes a standard key takes and a root key does not (both backends wrap
/// with AES-256 only, so a root key of these sizes could never wrap).
const STANDARD_ONLY_SIZES: [usize; 2] = [16, 24];

fn start(env: &[(&str, &str)]) -> (TempDir, DevServer) {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = DevServer::start(
        &dir.path().join("data"),
        &dir.path().join("stderr.log"),
        env,
    );
    (dir, server)
}

fn key_collection(resource: Value) -> Value {
    json!({
        "metadata": {"collectionType": "application/vnd.ibm.kms.key+json", "collectionTotal": 1},
        "resources": [resource],
    })
}

fn create(conn: &mut Conn, token: &str, resource: Value) -> Response {
    call(
        conn,
        token,
        "POST",
        "/api/v2/keys",
        Some(&key_collection(resource)),
    )
}

fn created_id(res: &Response) -> String {
    assert_eq!(res.status(), 201, "{}", text(res));
    res.json()["resources"][0]["id"]
        .as_str()
        .expect("key id")
        .to_string()
}

/// Distinct bytes per size and seed, so no two test keys are equal.
fn material(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| seed.wrapping_mul(31).wrapping_add(i as u8))
        .collect()
}

fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

fn text(res: &Response) -> String {
    String::from_utf8_lossy(&res.body).into_owned()
}

/// The refusal has `status` and Key Protect `code`, and says nothing of
/// the HSM backend's internals.
fn assert_refused(res: &Response, status: u16, code: &str, what: &str) {
    assert_eq!(res.status(), status, "{what}: {}", text(res));
    let body = res.json();
    assert_eq!(
        body["resources"][0]["reasons"][0]["code"], code,
        "{what}: {body}"
    );
    let body = text(res);
    for internal in ["HSM", "invalid input", "INTERNAL_SERVER_ERROR"] {
        assert!(!body.contains(internal), "{what}: {internal} in {body}");
    }
}

/// The event types appended since `from` (read as the auditor).
fn event_types_since(server: &DevServer, from: u64) -> Vec<String> {
    let auditor = server.token("auditor");
    let res = call(
        &mut server.conn(),
        &auditor,
        "GET",
        &format!("/api/v2/ledger/records?start={from}"),
        None,
    );
    assert_eq!(res.status(), 200, "{}", text(&res));
    res.json()["records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|r| {
            let event: Value =
                serde_json::from_str(r["event"].as_str().expect("event")).expect("event json");
            event["type"].as_str().expect("type").to_string()
        })
        .collect()
}

fn wrap(conn: &mut Conn, token: &str, key: &str, dek: &[u8]) -> Response {
    call(
        conn,
        token,
        "POST",
        &format!("/api/v2/keys/{key}/actions/wrap"),
        Some(&json!({"plaintext": b64(dek)})),
    )
}

fn wrapped(res: &Response) -> String {
    assert_eq!(res.status(), 200, "wrap: {}", text(res));
    res.json()["ciphertext"]
        .as_str()
        .expect("ciphertext")
        .to_string()
}

/// Unwraps `ciphertext` and checks it gives `dek` back.
fn assert_unwraps(conn: &mut Conn, token: &str, key: &str, ciphertext: &str, dek: &[u8]) {
    let res = call(
        conn,
        token,
        "POST",
        &format!("/api/v2/keys/{key}/actions/unwrap"),
        Some(&json!({"ciphertext": ciphertext})),
    );
    assert_eq!(res.status(), 200, "unwrap: {}", text(&res));
    let plaintext = STANDARD
        .decode(res.json()["plaintext"].as_str().expect("plaintext"))
        .expect("base64");
    assert_eq!(plaintext, dek);
}

fn versions(conn: &mut Conn, token: &str, key: &str) -> usize {
    let res = call(
        conn,
        token,
        "GET",
        &format!("/api/v2/keys/{key}/versions"),
        None,
    );
    assert_eq!(res.status(), 200, "{}", text(&res));
    res.json()["resources"].as_array().expect("versions").len()
}

fn key_state(conn: &mut Conn, token: &str, key: &str) -> u64 {
    let res = call(
        conn,
        token,
        "GET",
        &format!("/api/v2/keys/{key}/metadata"),
        None,
    );
    assert_eq!(res.status(), 200, "{}", text(&res));
    res.json()["resources"][0]["state"].as_u64().expect("state")
}

/// The import token as `GET /import_token` gives it.
fn import_token(conn: &mut Conn, writer: &str) -> ImportTokenContents {
    let res = call(
        conn,
        writer,
        "POST",
        "/api/v2/import_token",
        Some(&json!({"expiration": 3600, "maxAllowedRetrievals": 5})),
    );
    assert!(
        [200, 201].contains(&res.status()),
        "create token: {}",
        text(&res)
    );
    let res = call(conn, writer, "GET", "/api/v2/import_token", None);
    assert_eq!(res.status(), 200, "get token: {}", text(&res));
    let t = res.json();
    let s = |f: &str| t[f].as_str().expect(f).to_string();
    let n = |f: &str| t[f].as_u64().expect(f) as u32;
    ImportTokenContents {
        metadata: ImportTokenMetadata {
            // Key Protect's answer names no token id.
            id: String::new(),
            creation_date: s("creationDate"),
            expiration_date: s("expirationDate"),
            max_allowed_retrievals: n("maxAllowedRetrievals"),
            remaining_retrievals: n("remainingRetrievals"),
        },
        payload: s("payload"),
        nonce: s("nonce"),
    }
}

/// A secure-import resource for `key`: the key encrypted to the token, and
/// the token's nonce encrypted under the key where AES can take it (other
/// sizes get a nonce sealed under an unrelated 32-byte key: the server
/// must refuse the size before it looks at the nonce).
fn token_import(contents: &ImportTokenContents, name: &str, key: &[u8]) -> Value {
    let nonce_key = if [16, 24, 32].contains(&key.len()) {
        key.to_vec()
    } else {
        material(32, 0xEE)
    };
    let (encrypted_nonce, iv) = kp_client::encrypt_nonce(
        &kp_client::nonce(contents),
        &nonce_key,
        kp_client::random_iv(),
    );
    json!({
        "type": "application/vnd.ibm.kms.key+json",
        "name": name,
        "extractable": false,
        "payload": kp_client::encrypt_key(contents, key),
        "encryptedNonce": encrypted_nonce,
        "iv": iv,
        "encryptionAlgorithm": "RSAES_OAEP_SHA_256",
    })
}

/// Item 2 (and 11's HSM errors): one payload rule on every path, and no
/// key version that cannot be used ever becomes current.
#[test]
fn payloads_of_the_wrong_size_are_refused_alike_on_every_path() {
    let (_dir, server) = start(&[]);
    let writer = server.token("writer");
    let manager = server.token("manager");
    let mut conn = server.conn();

    // Rotate an imported root key (the review's case: a 17-byte rotation
    // answered 204 and broke the key): the wrong sizes are refused before
    // any version is made; the key keeps wrapping and unwrapping.
    let first = material(32, 4);
    let key = created_id(&create(
        &mut conn,
        &writer,
        json!({"name": "imported-root", "extractable": false, "payload": b64(&first)}),
    ));
    let dek = material(32, 5);
    let old_ciphertext = wrapped(&wrap(&mut conn, &writer, &key, &dek));
    let rotate = format!("/api/v2/keys/{key}/actions/rotate");
    for len in [&BAD_SIZES[..], &STANDARD_ONLY_SIZES[..]].concat() {
        let before = server.log_records();
        let res = call(
            &mut conn,
            &writer,
            "POST",
            &rotate,
            Some(&json!({"payload": b64(&material(len, 6))})),
        );
        let what = format!("rotate to {len} bytes");
        assert_refused(&res, 400, "INVALID_FIELD_ERR", &what);
        assert_eq!(server.log_records(), before, "{what} appended");
    }
    assert_eq!(versions(&mut conn, &writer, &key), 1);
    let ciphertext = wrapped(&wrap(&mut conn, &writer, &key, &dek));
    assert_unwraps(&mut conn, &writer, &key, &ciphertext, &dek);
    assert_unwraps(&mut conn, &writer, &key, &old_ciphertext, &dek);
    // The good rotation is the key's first: not held back for an hour.
    let second = material(32, 7);
    let res = call(
        &mut conn,
        &writer,
        "POST",
        &rotate,
        Some(&json!({"payload": b64(&second)})),
    );
    assert_eq!(res.status(), 204, "good rotation: {}", text(&res));
    assert_eq!(versions(&mut conn, &writer, &key), 2);
    assert_unwraps(&mut conn, &writer, &key, &old_ciphertext, &dek);
    let newer = wrapped(&wrap(&mut conn, &writer, &key, &dek));
    assert_unwraps(&mut conn, &writer, &key, &newer, &dek);

    // Create with a payload: a root key takes 32 bytes, a standard key 16,
    // 24 or 32; nothing else, and a refusal appends nothing.
    for (extractable, sizes) in [
        (false, [&BAD_SIZES[..], &STANDARD_ONLY_SIZES[..]].concat()),
        (true, BAD_SIZES.to_vec()),
    ] {
        for len in sizes {
            let before = server.log_records();
            let res = create(
                &mut conn,
                &writer,
                json!({"name": format!("bad-{len}"), "extractable": extractable,
                       "payload": b64(&material(len, 1))}),
            );
            let what = format!("create extractable={extractable} with {len} bytes");
            assert_refused(&res, 400, "INVALID_FIELD_ERR", &what);
            assert_eq!(server.log_records(), before, "{what} appended");
        }
    }
    for len in [16, 24, 32] {
        let res = create(
            &mut conn,
            &writer,
            json!({"name": format!("std-{len}"), "extractable": true,
                   "payload": b64(&material(len, 2))}),
        );
        created_id(&res);
    }

    // Create through the import token: the same rule once the token opens
    // the material (a 16 or 24-byte key with a valid nonce proof included).
    let token = import_token(&mut conn, &writer);
    for len in [&BAD_SIZES[..], &STANDARD_ONLY_SIZES[..]].concat() {
        let before = server.log_records();
        let res = create(
            &mut conn,
            &writer,
            token_import(&token, &format!("tok-{len}"), &material(len, 3)),
        );
        let what = format!("token import of {len} bytes");
        assert_refused(&res, 400, "INVALID_FIELD_ERR", &what);
        assert_eq!(server.log_records(), before, "{what} appended");
    }
    let res = create(
        &mut conn,
        &writer,
        token_import(&token, "tok-32", &material(32, 3)),
    );
    created_id(&res);

    // Restore with a payload (Key Protect's restore of an imported key):
    // the same rule, and it must be the key's current material.
    let res = call(
        &mut conn,
        &manager,
        "DELETE",
        &format!("/api/v2/keys/{key}"),
        None,
    );
    assert_eq!(res.status(), 200, "delete: {}", text(&res));
    let restore = format!("/api/v2/keys/{key}/restore");
    let restore_body = |payload: &[u8]| key_collection(json!({"payload": b64(payload)}));
    let refusals = [&BAD_SIZES[..], &STANDARD_ONLY_SIZES[..]]
        .concat()
        .into_iter()
        .map(|len| (format!("restore with {len} bytes"), material(len, 8)))
        .chain([(
            "restore with the material of the key's old version".into(),
            first.clone(),
        )]);
    for (what, payload) in refusals {
        let before = server.log_records();
        let res = call(
            &mut conn,
            &manager,
            "POST",
            &restore,
            Some(&restore_body(&payload)),
        );
        assert_refused(&res, 400, "INVALID_FIELD_ERR", &what);
        assert_eq!(server.log_records(), before, "{what} appended");
        assert_eq!(key_state(&mut conn, &writer, &key), 5, "{what}");
    }
    let res = call(
        &mut conn,
        &manager,
        "POST",
        &restore,
        Some(&restore_body(&second)),
    );
    assert_eq!(res.status(), 201, "restore: {}", text(&res));
    assert_unwraps(&mut conn, &writer, &key, &old_ciphertext, &dek);
    assert_unwraps(&mut conn, &writer, &key, &newer, &dek);

    // A generated key takes no key material to restore.
    let generated = create_root_key(&mut conn, &writer, "generated-root");
    let res = call(
        &mut conn,
        &manager,
        "DELETE",
        &format!("/api/v2/keys/{generated}"),
        None,
    );
    assert_eq!(res.status(), 200, "delete: {}", text(&res));
    let before = server.log_records();
    let res = call(
        &mut conn,
        &manager,
        "POST",
        &format!("/api/v2/keys/{generated}/actions/restore"),
        Some(&restore_body(&material(32, 9))),
    );
    assert_refused(
        &res,
        400,
        "KEY_IMPT_REQ_ERR",
        "restore a generated key with a payload",
    );
    assert_eq!(server.log_records(), before);
}

/// Item 3: a standard key is not a root key.
#[test]
fn standard_keys_refuse_root_key_actions_and_nothing_is_appended() {
    let (_dir, server) = start(&[]);
    let writer = server.token("writer");
    let manager = server.token("manager");
    let mut conn = server.conn();
    let generated = created_id(&create(
        &mut conn,
        &writer,
        json!({"name": "std-generated", "extractable": true}),
    ));
    let imported = created_id(&create(
        &mut conn,
        &writer,
        json!({"name": "std-imported", "extractable": true, "payload": b64(&material(32, 10))}),
    ));
    // A real ciphertext (of a root key) to offer the standard keys.
    let root = create_root_key(&mut conn, &writer, "a-root");
    let dek = material(32, 11);
    let ciphertext = wrapped(&wrap(&mut conn, &writer, &root, &dek));

    let payload_of = |conn: &mut Conn, key: &str| {
        let res = call(conn, &writer, "GET", &format!("/api/v2/keys/{key}"), None);
        assert_eq!(res.status(), 200, "{}", text(&res));
        res.json()["resources"][0]["payload"]
            .as_str()
            .expect("payload")
            .to_string()
    };
    let payloads: Vec<String> = [&generated, &imported]
        .iter()
        .map(|k| payload_of(&mut conn, k))
        .collect();

    for key in [&generated, &imported] {
        let attempts: Vec<(&str, &str, Option<Value>)> = vec![
            (
                "wrap",
                writer.as_str(),
                Some(json!({"plaintext": b64(&dek)})),
            ),
            ("wrap", writer.as_str(), None),
            (
                "unwrap",
                writer.as_str(),
                Some(json!({"ciphertext": ciphertext})),
            ),
            (
                "rewrap",
                writer.as_str(),
                Some(json!({"ciphertext": ciphertext})),
            ),
            ("rotate", writer.as_str(), None),
            (
                "rotate",
                writer.as_str(),
                Some(json!({"payload": b64(&material(32, 12))})),
            ),
            ("disable", manager.as_str(), None),
        ];
        for (action, token, body) in attempts {
            for path in [
                format!("/api/v2/keys/{key}/actions/{action}"),
                format!("/api/v2/keys/{key}?action={action}"),
            ] {
                let before = server.log_records();
                let res = call(&mut conn, token, "POST", &path, body.as_ref());
                let what = format!("{action} on standard key {key} via {path}");
                assert_refused(&res, 400, "KEY_ROOT_REQ_ERR", &what);
                assert_eq!(server.log_records(), before, "{what} appended");
            }
        }
        // Nothing changed: still active, one version.
        assert_eq!(key_state(&mut conn, &writer, key), 1);
        assert_eq!(versions(&mut conn, &writer, key), 1);
    }
    // Nothing lost: the payloads are what they were, the root key's
    // ciphertext still unwraps under the root key.
    for (key, payload) in [&generated, &imported].iter().zip(&payloads) {
        assert_eq!(&payload_of(&mut conn, key), payload);
    }
    assert_unwraps(&mut conn, &writer, &root, &ciphertext, &dek);
}

/// Item 7: the dates hold at the moment they come, with the scheduler an
/// hour away.
#[test]
fn activation_and_expiration_dates_hold_at_each_use() {
    let (_dir, server) = start(&[("KEYLEDGER_SCHEDULER_INTERVAL_SECS", "3600")]);
    let writer = server.token("writer");
    let mut conn = server.conn();
    let now = chrono::Utc::now();
    let activation = now + chrono::Duration::seconds(3);
    let expiration = now + chrono::Duration::seconds(7);
    let date =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let key = created_id(&create(
        &mut conn,
        &writer,
        json!({"name": "dated-root", "extractable": false,
               "activationDate": date(activation), "expirationDate": date(expiration)}),
    ));
    let standard = created_id(&create(
        &mut conn,
        &writer,
        json!({"name": "dated-standard", "extractable": true,
               "expirationDate": date(expiration)}),
    ));
    let dek = material(32, 13);

    // Not yet active: refused as Key Protect refuses a non-active key; the
    // refusal is recorded, no wrap.
    let before = server.log_records();
    let res = wrap(&mut conn, &writer, &key, &dek);
    assert_refused(
        &res,
        409,
        "KEY_ACTION_INVALID_STATE_ERR",
        "wrap before activation",
    );
    assert_eq!(event_types_since(&server, before), ["key.operation_failed"]);

    // Active from its activation date on, scheduler or not.
    sleep_until(activation);
    let before = server.log_records();
    let ciphertext = wrapped(&wrap(&mut conn, &writer, &key, &dek));
    assert_eq!(
        event_types_since(&server, before),
        ["key.activated", "key.wrapped"]
    );

    // Expired from its expiration date on: KEY_EXPIRED_ERR at once, the
    // expiry recorded before the refusal, and no wrap.
    sleep_until(expiration);
    let before = server.log_records();
    let res = wrap(&mut conn, &writer, &key, &dek);
    assert_refused(&res, 400, "KEY_EXPIRED_ERR", "wrap after expiry");
    assert_eq!(
        event_types_since(&server, before),
        ["key.expired", "key.operation_failed"]
    );
    assert_eq!(key_state(&mut conn, &writer, &key), 3);
    // A standard key's payload is refused the same way.
    let before = server.log_records();
    let res = call(
        &mut conn,
        &writer,
        "GET",
        &format!("/api/v2/keys/{standard}"),
        None,
    );
    assert_refused(&res, 400, "KEY_EXPIRED_ERR", "payload after expiry");
    assert_eq!(
        event_types_since(&server, before),
        ["key.expired", "key.operation_failed"]
    );

    // Nothing lost: an expired key still unwraps what it wrapped.
    assert_unwraps(&mut conn, &writer, &key, &ciphertext, &dek);
}

fn sleep_until(t: chrono::DateTime<chrono::Utc>) {
    let margin = chrono::Duration::milliseconds(200);
    if let Ok(wait) = (t + margin - chrono::Utc::now()).to_std() {
        std::thread::sleep(wait);
    }
}

/// Item 11 (key part): an unknown key ring is Key Protect's key-ring error,
/// in the body and in the `x-kms-key-ring` header alike.
#[test]
fn an_unknown_key_ring_at_creation_is_key_ring_not_found() {
    let (_dir, server) = start(&[]);
    let writer = server.token("writer");
    let mut conn = server.conn();
    let before = server.log_records();
    let res = create(
        &mut conn,
        &writer,
        json!({"name": "ringless", "extractable": false, "keyRingID": "no-such-ring"}),
    );
    assert_refused(&res, 404, "KEY_RING_NOT_FOUND_ERR", "keyRingID");
    let auth = format!("Bearer {writer}");
    let body = serde_json::to_vec(&key_collection(json!({"name": "ringless"}))).expect("json");
    let res = conn
        .request(
            "POST",
            "/api/v2/keys",
            &[
                ("authorization", &auth),
                ("bluemix-instance", INSTANCE),
                ("x-kms-key-ring", "no-such-ring"),
            ],
            Some(&body),
        )
        .expect("request");
    assert_refused(&res, 404, "KEY_RING_NOT_FOUND_ERR", "x-kms-key-ring");
    assert_eq!(server.log_records(), before);
}
