//! The Key Protect endpoints added for the SDKs, in process
//! (`actix_web::test` over `keyledger::server::app`): key policies,
//! instance policies, allowed_ip_port, import tokens and secure import,
//! aliases, key rings, moving keys, registrations, keys with policy
//! overrides, the list `filter` parameter. Happy paths check status, media
//! type and envelope; bad input the exact Key Protect error code; role
//! refusals 403 and `access.denied`.

mod common;

use actix_web::http::Method;
use actix_web::test::{TestRequest, call_service, init_service, read_body};
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::{Value, json};

use common::rest_kp_env::{BODY_LIMIT, ERROR_MEDIA, KEY_MEDIA, RestEnv, rest_env};

const POLICY_MEDIA: &str = "application/vnd.ibm.kms.policy+json";

struct Reply {
    status: u16,
    media: String,
    body: Value,
}

impl Reply {
    fn code(&self) -> &str {
        assert_eq!(self.media, ERROR_MEDIA, "{:?}", self.body);
        self.body["resources"][0]["reasons"][0]["code"]
            .as_str()
            .unwrap_or_default()
    }
}

async fn send(env: &RestEnv, req: TestRequest) -> Reply {
    let app = init_service(keyledger::server::app(env.state.clone(), BODY_LIMIT)).await;
    let resp = call_service(&app, req.to_request()).await;
    let status = resp.status().as_u16();
    let media = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .to_string();
    let bytes = read_body(resp).await;
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).expect("JSON body")
    };
    Reply {
        status,
        media,
        body,
    }
}

/// `POST /keys/{id}/actions/{action}` with no body, as `role`.
async fn act(env: &RestEnv, id: &str, action: &str, role: &str) -> Reply {
    send(
        env,
        env.req(Method::POST, &format!("/keys/{id}/actions/{action}"), role),
    )
    .await
}

fn json_req(env: &RestEnv, method: Method, path: &str, role: &str, body: Value) -> TestRequest {
    env.req(method, path, role)
        .insert_header(("content-type", KEY_MEDIA))
        .set_payload(body.to_string())
}

fn key_body(resource: Value) -> Value {
    json!({"metadata": {"collectionType": KEY_MEDIA, "collectionTotal": 1}, "resources": [resource]})
}

async fn create_key(env: &RestEnv, resource: Value) -> Value {
    let r = send(
        env,
        json_req(env, Method::POST, "/keys", "writer", key_body(resource)),
    )
    .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    r.body["resources"][0].clone()
}

async fn root_key(env: &RestEnv, name: &str) -> String {
    let key = create_key(env, json!({"name": name, "extractable": false})).await;
    key["id"].as_str().expect("id").to_string()
}

fn assert_collection(r: &Reply, status: u16, media: &str, total: usize) {
    assert_eq!(r.status, status, "{:?}", r.body);
    assert_eq!(r.media, media);
    assert_eq!(r.body["metadata"]["collectionType"], media);
    assert_eq!(r.body["metadata"]["collectionTotal"], total);
    assert_eq!(r.body["resources"].as_array().map(Vec::len), Some(total));
}

fn policy_body(resource: Value) -> Value {
    json!({"metadata": {"collectionType": POLICY_MEDIA, "collectionTotal": 1}, "resources": [resource]})
}

#[actix_web::test]
async fn key_policies_get_and_put() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = rest_env(dir.path());
    let id = root_key(&env, "policy-key").await;
    let path = format!("/keys/{id}/policies");
    let r = send(&env, env.req(Method::GET, &path, "reader")).await;
    assert_collection(&r, 200, POLICY_MEDIA, 2);
    let put = policy_body(
        json!({"type": POLICY_MEDIA, "rotation": {"enabled": true, "interval_month": 4}}),
    );
    let r = send(
        &env,
        json_req(
            &env,
            Method::PUT,
            &format!("{path}?policy=rotation"),
            "manager",
            put.clone(),
        ),
    )
    .await;
    assert_collection(&r, 200, POLICY_MEDIA, 1);
    assert_eq!(
        r.body["resources"][0]["rotation"],
        json!({"enabled": true, "interval_month": 4})
    );
    let r = send(
        &env,
        env.req(Method::GET, &format!("/keys/{id}/metadata"), "reader"),
    )
    .await;
    assert_eq!(r.body["resources"][0]["rotation"]["interval_month"], 4);
    let r = send(
        &env,
        env.req(
            Method::GET,
            &format!("{path}?policy=dualAuthDelete"),
            "reader",
        ),
    )
    .await;
    assert_collection(&r, 200, POLICY_MEDIA, 1);
    assert_eq!(r.body["resources"][0]["dualAuthDelete"]["enabled"], false);

    // Bad input.
    let bad = policy_body(json!({"rotation": {"enabled": true, "interval_month": 13}}));
    let r = send(&env, json_req(&env, Method::PUT, &path, "manager", bad)).await;
    assert_eq!((r.status, r.code()), (400, "BAD_BODY_ERR"));
    let r = send(
        &env,
        json_req(
            &env,
            Method::PUT,
            &format!("{path}?policy=dualAuthDelete"),
            "manager",
            put.clone(),
        ),
    )
    .await;
    assert_eq!((r.status, r.code()), (400, "BAD_BODY_ERR"));
    let r = send(
        &env,
        env.req(Method::GET, &format!("{path}?policy=nope"), "reader"),
    )
    .await;
    assert_eq!((r.status, r.code()), (400, "INVALID_QUERY_PARAM_ERR"));
    let r = send(
        &env,
        env.req(Method::PUT, &path, "manager")
            .insert_header(("content-type", "application/json"))
            .set_payload("{not json"),
    )
    .await;
    assert_eq!((r.status, r.code()), (400, "BAD_BODY_ERR"));
    let r = send(
        &env,
        env.req(Method::PUT, &path, "manager")
            .insert_header(("content-type", "text/plain"))
            .set_payload(put.to_string()),
    )
    .await;
    assert_eq!((r.status, r.code()), (415, "BAD_BODY_ERR"));
    let r = send(
        &env,
        json_req(
            &env,
            Method::PUT,
            "/keys/no-such-key/policies",
            "manager",
            put.clone(),
        ),
    )
    .await;
    assert_eq!((r.status, r.code()), (404, "KEY_NOT_FOUND_ERR"));

    // Role: a writer may not set policies.
    let before = env.denials();
    let r = send(&env, json_req(&env, Method::PUT, &path, "writer", put)).await;
    assert_eq!((r.status, r.code()), (403, "FORBIDDEN_ERR"));
    assert_eq!(env.denials(), before + 1);
}

#[actix_web::test]
async fn keys_with_policy_overrides() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = rest_env(dir.path());
    let body = key_body(json!({
        "name": "overridden", "extractable": false,
        "rotation": {"enabled": true, "interval_month": 2},
        "dualAuthDelete": {"enabled": true},
    }));
    let r = send(
        &env,
        json_req(
            &env,
            Method::POST,
            "/keys_with_policy_overrides",
            "writer",
            body.clone(),
        ),
    )
    .await;
    assert_collection(&r, 201, KEY_MEDIA, 1);
    let key = &r.body["resources"][0];
    assert_eq!(
        key["rotation"],
        json!({"enabled": true, "interval_month": 2})
    );
    assert_eq!(key["dualAuthDelete"]["enabled"], true);
    // Plain /keys refuses policies; bad overrides create nothing.
    let r = send(&env, json_req(&env, Method::POST, "/keys", "writer", body)).await;
    assert_eq!((r.status, r.code()), (400, "BAD_BODY_ERR"));
    let bad = key_body(json!({"name": "bad", "rotation": {"interval_month": 0}}));
    let r = send(
        &env,
        json_req(
            &env,
            Method::POST,
            "/keys_with_policy_overrides",
            "writer",
            bad,
        ),
    )
    .await;
    assert_eq!((r.status, r.code()), (400, "BAD_BODY_ERR"));
    let r = send(&env, env.req(Method::GET, "/keys", "reader")).await;
    assert_collection(&r, 200, KEY_MEDIA, 1);
    let r = send(
        &env,
        json_req(
            &env,
            Method::POST,
            "/keys_with_policy_overrides",
            "reader",
            key_body(json!({"name": "x1"})),
        ),
    )
    .await;
    assert_eq!(r.status, 403);
}

#[actix_web::test]
async fn instance_policies_are_read_only_here() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = rest_env(dir.path());
    common::key_env::admin_command(
        &env.service,
        &env.clock,
        keyledger::governance::AdminCommand::SetInstancePolicy {
            policy_type: "allowedIP".into(),
            enabled: true,
            attributes: [("allowed_ip".to_string(), json!(["10.0.0.0/8"]))].into(),
        },
    )
    .expect("set policy");
    let r = send(&env, env.req(Method::GET, "/instance/policies", "reader")).await;
    assert_collection(&r, 200, POLICY_MEDIA, 1);
    let p = &r.body["resources"][0];
    assert_eq!(p["policy_type"], "allowedIP");
    assert_eq!(
        p["policy_data"],
        json!({"enabled": true, "attributes": {"allowed_ip": ["10.0.0.0/8"]}})
    );
    assert!(p["lastUpdated"].is_string());
    // Who set it: the administrator whose signed command the log recorded.
    let by = p["updatedBy"].as_str().expect("updatedBy");
    assert!(!by.is_empty(), "{p}");
    let r = send(
        &env,
        env.req(
            Method::GET,
            "/instance/policies?policy=dualAuthDelete",
            "reader",
        ),
    )
    .await;
    assert_collection(&r, 200, POLICY_MEDIA, 0);
    let r = send(
        &env,
        env.req(Method::GET, "/instance/policies?policy=bogus", "reader"),
    )
    .await;
    assert_eq!((r.status, r.code()), (400, "INVALID_QUERY_PARAM_ERR"));
    let r = send(
        &env,
        env.req(Method::GET, "/instance/allowed_ip_port", "reader"),
    )
    .await;
    assert_collection(
        &r,
        200,
        "application/vnd.ibm.kms.allowed_ip_metadata+json",
        1,
    );
    assert!(r.body["resources"][0]["private_endpoint_port"].is_u64());

    // PUT is refused for every role, with the reason, and recorded.
    let put =
        policy_body(json!({"policy_type": "dualAuthDelete", "policy_data": {"enabled": true}}));
    for role in ["manager", "reader"] {
        let before = env.denials();
        let r = send(
            &env,
            json_req(&env, Method::PUT, "/instance/policies", role, put.clone()),
        )
        .await;
        assert_eq!((r.status, r.code()), (403, "FORBIDDEN_ERR"));
        if role == "manager" {
            let msg = r.body["resources"][0]["reasons"][0]["message"]
                .as_str()
                .unwrap_or_default();
            assert!(msg.contains("administrator command"), "{msg}");
        }
        assert_eq!(env.denials(), before + 1, "{role}");
    }
    let r = send(&env, env.req(Method::GET, "/instance/policies", "reader")).await;
    assert_collection(&r, 200, POLICY_MEDIA, 1);
    // The auditor role reads only the ledger.
    let r = send(&env, env.req(Method::GET, "/instance/policies", "auditor")).await;
    assert_eq!(r.status, 403);
}

#[actix_web::test]
async fn import_token_and_secure_import() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = rest_env(dir.path());
    let r = send(&env, env.req(Method::GET, "/import_token", "writer")).await;
    assert_eq!(r.status, 404, "{:?}", r.body);
    let r = send(
        &env,
        env.req(Method::POST, "/import_token", "writer")
            .insert_header(("content-type", "application/json"))
            .set_payload(json!({"expiration": 1200, "maxAllowedRetrievals": 2}).to_string()),
    )
    .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.media, "application/vnd.ibm.kms.import_token+json");
    assert_eq!(r.body["maxAllowedRetrievals"], 2);
    assert_eq!(r.body["remainingRetrievals"], 2);
    let bad = send(
        &env,
        env.req(Method::POST, "/import_token", "writer")
            .insert_header(("content-type", "application/json"))
            .set_payload(json!({"expiration": 10}).to_string()),
    )
    .await;
    assert_eq!(bad.status, 400, "{:?}", bad.body);
    let r = send(&env, env.req(Method::GET, "/import_token", "writer")).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["remainingRetrievals"], 1);
    let contents: keyledger::keys::import_token::ImportTokenContents =
        keyledger::keys::import_token::ImportTokenContents {
            metadata: keyledger::keys::import_token::ImportTokenMetadata {
                id: String::new(),
                creation_date: String::new(),
                expiration_date: String::new(),
                max_allowed_retrievals: 0,
                remaining_retrievals: 0,
            },
            payload: r.body["payload"].as_str().expect("payload").into(),
            nonce: r.body["nonce"].as_str().expect("nonce").into(),
        };
    let key = [0x42u8; 32];
    let payload = common::kp_client::encrypt_key(&contents, &key);
    let nonce = common::kp_client::nonce(&contents);
    let (encrypted_nonce, iv) = common::kp_client::encrypt_nonce(&nonce, &key, [7u8; 12]);
    let imported = create_key(
        &env,
        json!({"name": "imported", "extractable": false, "payload": payload,
               "encryptedNonce": encrypted_nonce, "iv": iv, "encryptionAlgorithm": "RSAES_OAEP_SHA_256"}),
    )
    .await;
    assert_eq!(imported["imported"], true);
    // A wrong IV, invalid base64 and a half-given import are refused.
    let (wrong_nonce, _) = common::kp_client::encrypt_nonce(&nonce, &[0x43u8; 32], [7u8; 12]);
    for (resource, code) in [
        (
            json!({"name": "bad1", "payload": payload, "encryptedNonce": wrong_nonce, "iv": iv}),
            None,
        ),
        (
            json!({"name": "bad2", "payload": payload, "encryptedNonce": "%%%", "iv": iv}),
            Some("BAD_BODY_ERR"),
        ),
        (
            json!({"name": "bad3", "payload": payload, "iv": iv}),
            Some("BAD_BODY_ERR"),
        ),
        (
            json!({"name": "bad4", "payload": payload, "encryptedNonce": encrypted_nonce, "iv": iv, "encryptionAlgorithm": "RSAES_OAEP_SHA_1"}),
            Some("BAD_BODY_ERR"),
        ),
    ] {
        let r = send(
            &env,
            json_req(&env, Method::POST, "/keys", "writer", key_body(resource)),
        )
        .await;
        assert_eq!(r.status, 400, "{:?}", r.body);
        if let Some(code) = code {
            assert_eq!(r.code(), code);
        }
    }
    let r = send(&env, env.req(Method::POST, "/import_token", "reader")).await;
    assert_eq!(r.status, 403);
}

#[actix_web::test]
async fn aliases() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = rest_env(dir.path());
    let id = root_key(&env, "alias-key").await;
    let other = root_key(&env, "other-key").await;
    let r = send(
        &env,
        env.req(
            Method::POST,
            &format!("/keys/{id}/aliases/my-alias"),
            "writer",
        ),
    )
    .await;
    assert_collection(&r, 201, "application/vnd.ibm.kms.key_alias+json", 1);
    assert_eq!(r.body["resources"][0]["alias"], "my-alias");
    assert_eq!(r.body["resources"][0]["keyId"], id.as_str());
    let r = send(
        &env,
        env.req(Method::GET, "/keys/my-alias/metadata", "reader"),
    )
    .await;
    assert_eq!(r.body["resources"][0]["id"], id.as_str());
    let r = send(
        &env,
        env.req(
            Method::POST,
            &format!("/keys/{other}/aliases/my-alias"),
            "writer",
        ),
    )
    .await;
    assert_eq!((r.status, r.code()), (409, "KEY_ALIAS_NOT_UNIQUE_ERR"));
    let r = send(
        &env,
        env.req(
            Method::POST,
            &format!("/keys/{id}/aliases/bad%20alias"),
            "writer",
        ),
    )
    .await;
    assert_eq!((r.status, r.code()), (400, "BAD_BODY_ERR"));
    let r = send(
        &env,
        env.req(
            Method::POST,
            &format!("/keys/{id}/aliases/{other}"),
            "writer",
        ),
    )
    .await;
    assert_eq!((r.status, r.code()), (400, "BAD_BODY_ERR"));
    for n in 1..5 {
        let r = send(
            &env,
            env.req(Method::POST, &format!("/keys/{id}/aliases/a-{n}"), "writer"),
        )
        .await;
        assert_eq!(r.status, 201);
    }
    let r = send(
        &env,
        env.req(Method::POST, &format!("/keys/{id}/aliases/a-6"), "writer"),
    )
    .await;
    assert_eq!((r.status, r.code()), (400, "KEY_ALIAS_QUOTA_ERR"));
    let r = send(
        &env,
        env.req(Method::POST, "/keys/no-such-key/aliases/zz", "writer"),
    )
    .await;
    assert_eq!((r.status, r.code()), (404, "KEY_NOT_FOUND_ERR"));
    let r = send(
        &env,
        env.req(
            Method::DELETE,
            &format!("/keys/{id}/aliases/my-alias"),
            "writer",
        ),
    )
    .await;
    assert_eq!((r.status, r.body.clone()), (204, Value::Null));
    let r = send(
        &env,
        env.req(
            Method::DELETE,
            &format!("/keys/{id}/aliases/my-alias"),
            "writer",
        ),
    )
    .await;
    assert_eq!((r.status, r.code()), (404, "KEY_ALIAS_NOT_FOUND_ERR"));
    let r = send(&env, env.req(Method::GET, "/keys/my-alias", "writer")).await;
    assert_eq!((r.status, r.code()), (404, "KEY_NOT_FOUND_ERR"));
    let before = env.denials();
    let r = send(
        &env,
        env.req(
            Method::POST,
            &format!("/keys/{id}/aliases/reader-alias"),
            "reader",
        ),
    )
    .await;
    assert_eq!((r.status, r.code()), (403, "FORBIDDEN_ERR"));
    assert_eq!(env.denials(), before + 1);
    common::key_env::assert_log_consistent(&env.service);
}

#[actix_web::test]
async fn key_rings_and_moving_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = rest_env(dir.path());
    let r = send(
        &env,
        env.req(Method::GET, "/key_rings?totalCount=true", "reader"),
    )
    .await;
    assert_collection(&r, 200, "application/vnd.ibm.kms.key_ring+json", 1);
    assert_eq!(r.body["resources"][0]["id"], "default");
    assert_eq!(r.body["metadata"]["totalCount"], 1);
    let r = send(&env, env.req(Method::POST, "/key_rings/ring-a", "manager")).await;
    assert_eq!((r.status, r.body.clone()), (201, Value::Null));
    let r = send(&env, env.req(Method::POST, "/key_rings/ring-a", "manager")).await;
    assert_eq!((r.status, r.code()), (409, "KEY_RING_CONFLICT_ERR"));
    let r = send(
        &env,
        env.req(Method::POST, "/key_rings/bad_ring!", "manager"),
    )
    .await;
    assert_eq!((r.status, r.code()), (400, "BAD_BODY_ERR"));
    let r = send(&env, env.req(Method::GET, "/key_rings", "reader")).await;
    assert_collection(&r, 200, "application/vnd.ibm.kms.key_ring+json", 2);

    let id = root_key(&env, "ring-key").await;
    let patch = |ring: &str| json!({"keyRingID": ring});
    let r = send(
        &env,
        json_req(
            &env,
            Method::PATCH,
            &format!("/keys/{id}"),
            "manager",
            patch("ring-a"),
        ),
    )
    .await;
    assert_collection(&r, 200, KEY_MEDIA, 1);
    assert_eq!(r.body["resources"][0]["keyRingID"], "ring-a");
    let r = send(
        &env,
        env.req(Method::GET, "/keys", "reader")
            .insert_header(("x-kms-key-ring", "ring-a")),
    )
    .await;
    assert_collection(&r, 200, KEY_MEDIA, 1);
    let r = send(
        &env,
        json_req(
            &env,
            Method::PATCH,
            &format!("/keys/{id}"),
            "manager",
            patch("nowhere"),
        ),
    )
    .await;
    assert_eq!((r.status, r.code()), (404, "KEY_RING_NOT_FOUND_ERR"));
    let r = send(
        &env,
        json_req(
            &env,
            Method::PATCH,
            &format!("/keys/{id}"),
            "manager",
            json!({"keyRing": "x"}),
        ),
    )
    .await;
    assert_eq!((r.status, r.code()), (400, "BAD_BODY_ERR"));
    let r = send(
        &env,
        json_req(
            &env,
            Method::PATCH,
            &format!("/keys/{id}"),
            "manager",
            patch("default"),
        )
        .insert_header(("x-kms-key-ring", "default")),
    )
    .await;
    assert_eq!((r.status, r.code()), (404, "KEY_NOT_FOUND_ERR"));
    let r = send(
        &env,
        json_req(
            &env,
            Method::PATCH,
            &format!("/keys/{id}"),
            "writer",
            patch("default"),
        ),
    )
    .await;
    assert_eq!(r.status, 403);

    let r = send(
        &env,
        env.req(Method::DELETE, "/key_rings/ring-a", "manager"),
    )
    .await;
    assert_eq!((r.status, r.code()), (409, "KEY_RING_NOT_EMPTY_ERR"));
    // Destroyed keys only: force deletes the ring and moves them to default.
    let r = send(
        &env,
        env.req(Method::DELETE, &format!("/keys/{id}"), "manager"),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = send(
        &env,
        env.req(Method::DELETE, "/key_rings/ring-a", "manager"),
    )
    .await;
    assert_eq!((r.status, r.code()), (409, "KEY_RING_NOT_EMPTY_ERR"));
    let r = send(
        &env,
        env.req(Method::DELETE, "/key_rings/ring-a?force=true", "manager"),
    )
    .await;
    assert_eq!((r.status, r.body.clone()), (204, Value::Null));
    let r = send(
        &env,
        env.req(Method::GET, &format!("/keys/{id}/metadata"), "reader"),
    )
    .await;
    assert_eq!(r.body["resources"][0]["keyRingID"], "default");
    let r = send(
        &env,
        env.req(Method::DELETE, "/key_rings/ring-a", "manager"),
    )
    .await;
    assert_eq!((r.status, r.code()), (404, "KEY_RING_NOT_FOUND_ERR"));
    let r = send(
        &env,
        env.req(Method::DELETE, "/key_rings/default", "manager"),
    )
    .await;
    assert_eq!((r.status, r.code()), (400, "BAD_BODY_ERR"));
    let before = env.denials();
    let r = send(&env, env.req(Method::POST, "/key_rings/ring-b", "writer")).await;
    assert_eq!((r.status, r.code()), (403, "FORBIDDEN_ERR"));
    assert_eq!(env.denials(), before + 1);
    common::key_env::assert_log_consistent(&env.service);
}

#[actix_web::test]
async fn registrations_are_empty_collections() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = rest_env(dir.path());
    let id = root_key(&env, "reg-key").await;
    let media = "application/vnd.ibm.kms.registration+json";
    let r = send(
        &env,
        env.req(
            Method::GET,
            &format!("/keys/{id}/registrations?totalCount=true"),
            "reader",
        ),
    )
    .await;
    assert_collection(&r, 200, media, 0);
    assert_eq!(r.body["metadata"]["totalCount"], 0);
    let r = send(&env, env.req(Method::GET, "/keys/registrations", "reader")).await;
    assert_collection(&r, 200, media, 0);
    let r = send(
        &env,
        env.req(Method::GET, "/keys/no-such-key/registrations", "reader"),
    )
    .await;
    assert_eq!((r.status, r.code()), (404, "KEY_NOT_FOUND_ERR"));
    let r = send(
        &env,
        env.req(Method::GET, "/keys/registrations?limit=x", "reader"),
    )
    .await;
    assert_eq!((r.status, r.code()), (400, "INVALID_QUERY_PARAM_ERR"));
    let r = send(&env, env.req(Method::GET, "/keys/registrations", "auditor")).await;
    assert_eq!(r.status, 403);
}

#[actix_web::test]
async fn dual_auth_delete_needs_a_second_manager() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = rest_env(dir.path());
    let body = key_body(
        json!({"name": "dual", "extractable": false, "dualAuthDelete": {"enabled": true}}),
    );
    let r = send(
        &env,
        json_req(
            &env,
            Method::POST,
            "/keys_with_policy_overrides",
            "writer",
            body,
        ),
    )
    .await;
    let id = r.body["resources"][0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let r = act(&env, &id, "setKeyForDeletion", "manager").await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let r = send(
        &env,
        env.req(Method::DELETE, &format!("/keys/{id}"), "manager"),
    )
    .await;
    assert_eq!((r.status, r.code()), (409, "AUTHORIZATIONS_NOT_MET"));
    let r = send(
        &env,
        env.req(Method::DELETE, &format!("/keys/{id}"), "manager2"),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["resources"][0]["state"], 5);
}

/// Percent-encodes a query value (everything but RFC 3986 unreserved).
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `t` to the second, RFC 3339.
fn secs(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `t` to the second, as a filter date in double quotes.
fn quoted(t: DateTime<Utc>) -> String {
    format!("\"{}\"", secs(t))
}

async fn create_key_id(env: &RestEnv, resource: Value) -> String {
    let key = create_key(env, resource).await;
    key["id"].as_str().expect("id").to_string()
}

fn set_clock(env: &RestEnv, t: DateTime<Utc>) {
    *env.clock.0.lock().expect("clock") = t;
}

/// `GET /keys?{query}` as a reader: 200, and the ids in order.
async fn listed(env: &RestEnv, query: &str) -> Vec<String> {
    let r = send(
        env,
        env.req(Method::GET, &format!("/keys?{query}"), "reader"),
    )
    .await;
    assert_eq!(r.status, 200, "{query}: {:?}", r.body);
    let ids: Vec<String> = r.body["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .map(|k| k["id"].as_str().expect("id").to_string())
        .collect();
    assert_eq!(r.body["metadata"]["collectionTotal"], ids.len(), "{query}");
    ids
}

/// `GET /keys?filter={filter}`: the ids in order.
async fn filtered(env: &RestEnv, filter: &str) -> Vec<String> {
    listed(env, &format!("filter={}", enc(filter))).await
}

/// `HEAD /keys?{query}`: status and `Key-Total`.
async fn key_total(env: &RestEnv, query: &str) -> (u16, Option<String>) {
    let app = init_service(keyledger::server::app(env.state.clone(), BODY_LIMIT)).await;
    let req = env.req(Method::HEAD, &format!("/keys?{query}"), "reader");
    let resp = call_service(&app, req.to_request()).await;
    let total = resp
        .headers()
        .get("key-total")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (resp.status().as_u16(), total)
}

/// A 400 `INVALID_QUERY_PARAM_ERR` for `GET /keys?{query}`; its message.
async fn refused(env: &RestEnv, query: &str) -> String {
    let r = send(
        env,
        env.req(Method::GET, &format!("/keys?{query}"), "reader"),
    )
    .await;
    assert_eq!(
        (r.status, r.code()),
        (400, "INVALID_QUERY_PARAM_ERR"),
        "{query}: {:?}",
        r.body
    );
    let (status, total) = key_total(env, query).await;
    assert_eq!((status, total), (400, None), "HEAD {query}");
    r.body["resources"][0]["reasons"][0]["message"]
        .as_str()
        .expect("message")
        .to_string()
}

#[actix_web::test]
async fn list_filter() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = rest_env(dir.path());
    // Whole hours from tomorrow, plus 700 µs: the ledger records the
    // microseconds, responses (and so filters) the milliseconds.
    let t0 = (Utc::now() + Duration::days(1))
        .date_naive()
        .and_hms_micro_opt(0, 0, 0, 700)
        .expect("time")
        .and_utc();
    let at = |minutes: i64| t0 + Duration::minutes(minutes);
    let h = |hours: i64| at(hours * 60);

    set_clock(&env, h(0));
    let a = root_key(&env, "flt-root-a").await;
    set_clock(&env, h(1));
    let b = create_key_id(
        &env,
        json!({"name": "flt-std-b", "extractable": true, "expirationDate": secs(h(24 * 30))}),
    )
    .await;
    set_clock(&env, h(2));
    let c = create_key_id(
        &env,
        json!({"name": "flt-root-c", "extractable": false, "expirationDate": secs(h(5))}),
    )
    .await;
    set_clock(&env, h(3));
    let d = root_key(&env, "flt-root-d").await;
    set_clock(&env, h(4));
    let e = root_key(&env, "flt-root-e").await;
    set_clock(&env, at(4 * 60 + 30));
    let f = create_key_id(
        &env,
        json!({"name": "flt-pre-f", "extractable": false, "activationDate": secs(h(24 * 100))}),
    )
    .await;
    set_clock(&env, h(6));
    let r = act(&env, &a, "rotate", "writer").await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    assert_eq!(env.service.expire_due().expect("expire"), 1);
    set_clock(&env, at(6 * 60 + 30));
    let r = act(&env, &d, "rotate", "writer").await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    set_clock(&env, h(7));
    let r = act(&env, &d, "disable", "manager").await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let r = send(
        &env,
        env.req(Method::DELETE, &format!("/keys/{e}"), "manager"),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    set_clock(&env, h(8));
    let (a, b, c, d, e, f) = (
        a.as_str(),
        b.as_str(),
        c.as_str(),
        d.as_str(),
        e.as_str(),
        f.as_str(),
    );

    // a: 1 root, rotated 6h; b: 1 standard, expires in 30 days; c: 3
    // (expired at 6h); d: 2, rotated 6h30; e: 5, deleted 7h; f: 0.
    let all = listed(&env, "state=0,1,2,3,5").await;
    assert_eq!(all, [a, b, c, d, e, f]);
    let states: Vec<u64> = {
        let r = send(
            &env,
            env.req(Method::GET, "/keys?state=0,1,2,3,5", "reader"),
        )
        .await;
        r.body["resources"]
            .as_array()
            .expect("resources")
            .iter()
            .map(|k| k["state"].as_u64().expect("state"))
            .collect()
    };
    assert_eq!(states, [1, 1, 3, 2, 5, 0]);

    // lastRotateDate: operators, equality to the millisecond shown, none.
    let rotated_a = quoted(h(6));
    let rotated_d = quoted(at(6 * 60 + 30));
    assert_eq!(
        filtered(&env, &format!("lastRotateDate={rotated_a}")).await,
        [a]
    );
    assert_eq!(
        filtered(&env, &format!("lastRotateDate=gte:{rotated_a}")).await,
        [a, d]
    );
    assert_eq!(
        filtered(&env, &format!("lastRotateDate=gt:{rotated_a}")).await,
        [d]
    );
    assert_eq!(
        filtered(&env, &format!("lastRotateDate=lt:{rotated_d}")).await,
        [a]
    );
    assert_eq!(
        filtered(&env, &format!("lastRotateDate=lte:{rotated_d}")).await,
        [a, d]
    );
    assert_eq!(filtered(&env, "lastRotateDate=none").await, [b, c, f]);
    assert_eq!(filtered(&env, "lastRotateDate=NONE").await, [b, c, f]);
    assert_eq!(
        filtered(&env, "lastRotateDate=none state=0,1,2,3,5").await,
        [b, c, e, f]
    );

    // A date copied from a response selects its key.
    let r = send(
        &env,
        env.req(Method::GET, &format!("/keys/{c}/metadata"), "reader"),
    )
    .await;
    let created_c = r.body["resources"][0]["creationDate"]
        .as_str()
        .expect("creationDate")
        .to_string();
    assert!(created_c.ends_with(".000Z"), "{created_c}");
    assert_eq!(
        filtered(&env, &format!("creationDate=\"{created_c}\"")).await,
        [c]
    );
    // ... but not the microseconds the ledger holds.
    let micros = h(2).to_rfc3339_opts(SecondsFormat::Micros, true);
    assert!(micros.ends_with(".000700Z"), "{micros}");
    assert_eq!(
        filtered(&env, &format!("creationDate=\"{micros}\"")).await,
        [""; 0]
    );

    // creationDate: a range of up to three terms.
    assert_eq!(
        filtered(
            &env,
            &format!(
                "creationDate=gte:{} creationDate=lt:{}",
                quoted(h(1)),
                quoted(h(3))
            )
        )
        .await,
        [b, c]
    );
    assert_eq!(
        filtered(
            &env,
            &format!(
                "creationDate=gt:{} creationDate=lt:{} creationDate=lte:{}",
                quoted(h(0)),
                quoted(h(5)),
                quoted(h(2))
            )
        )
        .await,
        [b, c]
    );

    // expirationDate and lastUpdateDate.
    assert_eq!(filtered(&env, "expirationDate=none").await, [a, d, f]);
    assert_eq!(
        filtered(&env, &format!("expirationDate=lt:{}", quoted(h(24)))).await,
        [c]
    );
    assert_eq!(
        filtered(&env, &format!("expirationDate=gte:{}", quoted(h(24)))).await,
        [b]
    );
    assert_eq!(
        filtered(&env, &format!("lastUpdateDate=lt:{}", quoted(h(5)))).await,
        [b, f]
    );
    assert_eq!(filtered(&env, "lastUpdateDate=none").await, [""; 0]);

    // deletionDate: deleted keys are state 5, hidden unless a state asks.
    let deleted_e = quoted(h(7));
    assert_eq!(
        filtered(&env, &format!("deletionDate={deleted_e}")).await,
        [""; 0]
    );
    assert_eq!(
        filtered(&env, &format!("deletionDate={deleted_e} state=5")).await,
        [e]
    );
    assert_eq!(
        listed(
            &env,
            &format!(
                "state=5&filter={}",
                enc(&format!("deletionDate=gte:{deleted_e}"))
            )
        )
        .await,
        [e]
    );
    assert_eq!(filtered(&env, "deletionDate=none state=1,5").await, [a, b]);

    // extractable and state, alone, repeated, and with the other standalone one.
    assert_eq!(filtered(&env, "extractable=TRUE").await, [b]);
    assert_eq!(filtered(&env, "extractable=false").await, [a, c, d, f]);
    assert_eq!(
        listed(&env, "state=1&filter=extractable%3Dfalse").await,
        [a]
    );
    assert_eq!(
        listed(&env, "extractable=false&filter=state%3D1%2C2").await,
        [a, d]
    );
    assert_eq!(filtered(&env, "state=1,2,3").await, [a, b, c, d]);
    assert_eq!(filtered(&env, "state=0,5").await, [e, f]);
    assert_eq!(filtered(&env, "state=1,2 state=2,3").await, [d]);
    // IBM's SDK sends `state=` when no state is asked for: not given.
    assert_eq!(listed(&env, "state=&filter=state%3D0").await, [f]);

    // With paging, sort, search and totals.
    let q = format!("filter={}", enc("extractable=false"));
    assert_eq!(listed(&env, &format!("{q}&limit=2&offset=1")).await, [c, d]);
    let r = send(
        &env,
        env.req(
            Method::GET,
            &format!("/keys?{q}&limit=2&offset=1&totalCount=true"),
            "reader",
        ),
    )
    .await;
    assert_eq!(r.body["metadata"]["totalCount"], 4);
    assert_eq!(
        listed(&env, &format!("{q}&sort=-creationDate")).await,
        [f, d, c, a]
    );
    assert_eq!(
        listed(
            &env,
            &format!("search=root&filter={}", enc("lastRotateDate=none"))
        )
        .await,
        [c]
    );
    assert_eq!(key_total(&env, &q).await, (200, Some("4".into())));
    assert_eq!(
        key_total(&env, &format!("filter={}", enc("state=0,5"))).await,
        (200, Some("2".into()))
    );
    assert_eq!(
        key_total(
            &env,
            &format!("filter={}", enc(&format!("lastRotateDate=gte:{rotated_a}")))
        )
        .await,
        (200, Some("2".into()))
    );
    assert_eq!(key_total(&env, "").await, (200, Some("5".into())));

    // Refusals: 400 INVALID_QUERY_PARAM_ERR naming the fault, GET and HEAD.
    assert_eq!(
        refused(&env, "state=1&filter=state%3D1").await,
        "invalid query parameter state: state is also in filter; give it in one place only"
    );
    assert_eq!(
        refused(&env, "extractable=true&filter=extractable%3Dtrue").await,
        "invalid query parameter extractable: extractable is also in filter; give it in one place only"
    );
    for (filter, message) in [
        (
            "name=x",
            "unknown property \"name\" (expected creationDate, deletionDate, expirationDate, \
             extractable, lastRotateDate, lastUpdateDate or state)",
        ),
        (
            "creationDate=2022-02-15T00:00:00Z",
            "creationDate: the date must be an RFC 3339 date in double quotes, \
             e.g. \"2022-02-15T00:00:00Z\"",
        ),
        (
            "creationDate=eq:\"2022-02-15T00:00:00Z\"",
            "creationDate: unknown operator \"eq\" (expected lt, lte, gt or gte)",
        ),
        (
            "expirationDate=\"2022-13-01T00:00:00Z\"",
            "expirationDate: \"2022-13-01T00:00:00Z\" is not an RFC 3339 date",
        ),
        (
            "state=1 state=1 state=1 state=1",
            "more than 3 terms of state",
        ),
        ("state=lt:1", "state takes no operator, only a value"),
        (
            "extractable=gt:true",
            "extractable takes no operator, only a value",
        ),
        (
            "state=4",
            "state must be a comma-separated list of 0, 1, 2, 3, 5 without spaces",
        ),
        ("lastRotateDate=", "lastRotateDate has no value"),
        (
            "lastRotateDate=gte:none",
            "lastRotateDate: none takes no operator",
        ),
        (
            " ",
            "no terms (expected <property>=<value>, separated by spaces)",
        ),
    ] {
        assert_eq!(
            refused(&env, &format!("filter={}", enc(filter))).await,
            format!("invalid query parameter filter: {message}"),
            "{filter}"
        );
    }
    // An empty filter is no filter.
    assert_eq!(listed(&env, "filter=").await, [a, b, c, d, f]);
}

/// An error body's `errorMsg` starts with its own status's reason phrase,
/// and a 405 keeps the `Allow` header. Both found by schemathesis
/// (`scripts/schemathesis`): a destroyed key's 410 said "Internal Server
/// Error: key has already been deleted", and every 405 lacked `Allow`.
#[actix_web::test]
async fn error_messages_name_their_status_and_405_says_allow() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = rest_env(dir.path());
    let id = root_key(&env, "gone-key").await;
    let path = format!("/keys/{id}");
    let r = send(&env, env.req(Method::DELETE, &path, "manager")).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = send(&env, env.req(Method::DELETE, &path, "manager")).await;
    assert_eq!((r.status, r.code()), (410, "KEY_DELETED_ERR"));
    assert_eq!(
        r.body["resources"][0]["errorMsg"],
        "Gone: key has already been deleted"
    );
    assert_eq!(r.body["resources"][0]["reasons"][0]["status"], 410);

    let app = init_service(keyledger::server::app(env.state.clone(), BODY_LIMIT)).await;
    let resp = call_service(&app, env.req(Method::PUT, "/keys", "reader").to_request()).await;
    assert_eq!(resp.status().as_u16(), 405);
    let allow = resp
        .headers()
        .get("allow")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let mut allowed: Vec<&str> = allow.split(',').map(str::trim).collect();
    allowed.sort_unstable();
    assert_eq!(allowed, ["GET", "HEAD", "POST"]);
    let body: Value = serde_json::from_slice(&read_body(resp).await).expect("JSON");
    assert_eq!(
        body["resources"][0]["reasons"][0]["code"],
        "METHOD_NOT_ALLOWED_ERR"
    );
    assert_eq!(
        body["resources"][0]["errorMsg"],
        "Method Not Allowed: method not allowed on this resource"
    );
}

/// A credential revoked by administrator command is refused from the
/// revocation on: the same request that wrapped before gets Key Protect's
/// 401 and nothing reaches the log (no `key.wrapped`, no denial by a
/// principal that no longer exists). The key service refuses revoked
/// credentials itself as well (`decide::check_credential`, tested in
/// `keyledger-kms`'s `key_service`), so a request authenticated just
/// before the revocation is refused there.
#[actix_web::test]
async fn a_revoked_credential_is_refused_and_nothing_is_stored() {
    let dir = tempfile::tempdir().expect("tmp");
    let env = rest_env(&dir.path().join("data"));
    let id = root_key(&env, "revocation").await;
    let wrap = || {
        env.req(Method::POST, &format!("/keys/{id}/actions/wrap"), "writer")
            .insert_header(("content-type", "application/json"))
            .set_payload(json!({}).to_string())
    };
    let r = send(&env, wrap()).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    common::key_env::admin_command(
        &env.service,
        &env.clock,
        keyledger::governance::AdminCommand::RevokeCredential {
            credential_id: "cred-writer".into(),
        },
    )
    .expect("revoke");
    let head = || env.service.writer().log().head().size;
    let before = head();
    let r = send(&env, wrap()).await;
    assert_eq!(r.status, 401, "{:?}", r.body);
    assert_eq!(r.code(), "UNAUTHORIZED_ERR");
    assert_eq!(
        r.body["resources"][0]["errorMsg"],
        "Unauthorized: The user does not have access to the specified resource"
    );
    assert_eq!(head(), before, "nothing is stored");
    // The other credentials are unaffected.
    let r = send(
        &env,
        env.req(Method::POST, &format!("/keys/{id}/actions/wrap"), "manager")
            .insert_header(("content-type", "application/json"))
            .set_payload(json!({}).to_string()),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}
