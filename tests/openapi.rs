//! The OpenAPI document (`schemas/openapi.json`):
//!
//! - the committed file is exactly what the code generates (regenerate
//!   with `KEYLEDGER_UPDATE_SCHEMAS=1 cargo test --test openapi`), and the
//!   server serves exactly that file at `GET /api/v2/openapi.json`;
//! - it documents exactly the routes the server registers
//!   (`keyledger::server::ROUTES`, the table `routes` is built from), and
//!   every documented operation reaches a handler of the app (neither 404
//!   nor 405) while every undocumented method on a documented path does not;
//! - real answers, in process, to a walk through every kind of operation
//!   (and to refusals) have a documented status and media type, and their
//!   bodies validate against the documented schema.
#![cfg(feature = "server")]

mod common;

use std::collections::BTreeSet;

use actix_web::http::Method;
use actix_web::test::{TestRequest, call_service, init_service, read_body};
use base64::Engine;
use serde_json::{Value, json};

use common::rest_kp_env::{BODY_LIMIT, INSTANCE, KEY_MEDIA, RestEnv, rest_env};
use keyledger::server::openapi::document_json;
use keyledger::server::{ROUTES, app};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn committed_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/openapi.json")
}

fn document() -> Value {
    serde_json::from_str(&document_json().expect("document")).expect("document JSON")
}

const METHODS: [&str; 6] = ["get", "put", "post", "delete", "head", "patch"];

/// `(method, path)` of every documented operation.
fn documented(doc: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for m in METHODS {
            if item.get(m).is_some() {
                out.push((m.to_string(), path.clone()));
            }
        }
    }
    out
}

/// Whether an actix path pattern matches a documented path (a documented
/// `{param}` is one concrete, non-empty segment).
fn pattern_matches(pattern: &str, path: &str) -> bool {
    let p: Vec<&str> = pattern.split('/').collect();
    let d: Vec<&str> = path.split('/').collect();
    p.len() == d.len()
        && p.iter()
            .zip(&d)
            .all(|(p, d)| (p.starts_with('{') && !d.is_empty()) || p == d)
}

/// The route pattern actix would pick for `path`: the first in ROUTES order.
fn route_for(path: &str) -> Option<&'static str> {
    ROUTES
        .iter()
        .map(|(_, pattern)| *pattern)
        .find(|pattern| pattern_matches(pattern, path))
}

#[test]
fn committed_document_is_the_generated_one() {
    let generated = document_json().expect("document");
    if std::env::var_os("KEYLEDGER_UPDATE_SCHEMAS").is_some() {
        std::fs::write(committed_path(), &generated).expect("write schemas/openapi.json");
    }
    let committed = std::fs::read_to_string(committed_path()).unwrap_or_default();
    assert!(
        committed == generated,
        "schemas/openapi.json is out of date (run KEYLEDGER_UPDATE_SCHEMAS=1 cargo test --test openapi)"
    );
    let doc: Value = serde_json::from_str(&committed).expect("JSON");
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1"))
    );
}

#[test]
fn every_route_is_documented_and_nothing_else() {
    let doc = document();
    let mut covered = BTreeSet::new();
    let mut unrouted = Vec::new();
    for (method, path) in documented(&doc) {
        match route_for(&path) {
            Some(pattern) if ROUTES.contains(&(method.as_str(), pattern)) => {
                covered.insert((method, pattern));
            }
            _ => unrouted.push(format!("{} {path}", method.to_uppercase())),
        }
    }
    assert!(
        unrouted.is_empty(),
        "documented but not routed: {unrouted:?}"
    );
    let undocumented: Vec<String> = ROUTES
        .iter()
        .filter(|(m, p)| !covered.contains(&(m.to_string(), *p)))
        .map(|(m, p)| format!("{} {p}", m.to_uppercase()))
        .collect();
    assert!(
        undocumented.is_empty(),
        "routes without an OpenAPI operation (annotate the handler, see crates/keyledger-server/src/openapi.rs): {undocumented:?}"
    );
    // Every action `POST /keys/{id}/actions/{action}` accepts is documented
    // on its own, and the deprecated `?action=` lists the same.
    let actions: BTreeSet<&str> = keyledger::server::openapi::action_names().collect();
    let documented_actions: BTreeSet<&str> = doc["paths"]
        .as_object()
        .expect("paths")
        .keys()
        .filter_map(|p| p.strip_prefix("/api/v2/keys/{id}/actions/"))
        .collect();
    assert_eq!(actions, documented_actions);
    let query = &doc["paths"]["/api/v2/keys/{id}"]["post"]["parameters"];
    let action_param = query
        .as_array()
        .expect("parameters")
        .iter()
        .find(|p| p["name"] == "action")
        .expect("action parameter");
    let schema = resolve(&doc, &action_param["schema"]);
    let listed: BTreeSet<&str> = schema["enum"]
        .as_array()
        .expect("enum")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(listed, actions);
}

fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => doc
            .pointer(r.trim_start_matches('#'))
            .unwrap_or_else(|| panic!("dangling {r}")),
        None => schema,
    }
}

struct Reply {
    status: u16,
    media: Option<String>,
    headers: actix_web::http::header::HeaderMap,
    body: Vec<u8>,
}

async fn call(env: &RestEnv, req: TestRequest) -> Reply {
    let app = init_service(app(env.state.clone(), BODY_LIMIT)).await;
    let resp = call_service(&app, req.to_request()).await;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let media = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = read_body(resp).await.to_vec();
    Reply {
        status,
        media,
        headers,
        body,
    }
}

fn concrete(path: &str) -> String {
    path.replace("{id}", "probe-id")
        .replace("{alias}", "probe-alias")
}

/// Every documented operation reaches the app's handler or the guard (no
/// headers, so they answer 200 or a 400/401 of their own, never the
/// default 404 or 405); every other method on a documented path is 404 or
/// 405 to a caller with a credential.
#[actix_web::test]
async fn documented_operations_reach_handlers_and_others_do_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = rest_env(dir.path());
    let doc = document();
    let ops = documented(&doc);
    for (method, path) in &ops {
        let m = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
        let r = call(&env, TestRequest::default().method(m).uri(&concrete(path))).await;
        let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
        let code = body["resources"][0]["reasons"][0]["code"].as_str();
        assert!(
            r.status != 405 && !(r.status == 404 && code == Some("NOT_FOUND_ERR")),
            "{method} {path}: {} {code:?}",
            r.status
        );
    }
    for path in doc["paths"].as_object().expect("paths").keys() {
        for m in METHODS {
            if ops.contains(&(m.to_string(), path.clone())) {
                continue;
            }
            let method = Method::from_bytes(m.to_uppercase().as_bytes()).expect("method");
            // With a credential: an anonymous caller is refused by the
            // guard before routing, whatever the method.
            let request = match concrete(path).strip_prefix("/api/v2") {
                Some(rest) => env.req(method, rest, "manager"),
                None => TestRequest::default().method(method).uri(&concrete(path)),
            };
            let r = call(&env, request).await;
            assert!(
                r.status == 404 || r.status == 405,
                "{m} {path} is not documented but answers {}",
                r.status
            );
        }
    }
}

#[actix_web::test]
async fn the_served_document_is_the_committed_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = rest_env(dir.path());
    let r = call(&env, TestRequest::get().uri("/api/v2/openapi.json")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.media.as_deref(), Some("application/json"));
    let committed = std::fs::read(committed_path()).expect("schemas/openapi.json");
    assert!(
        r.body == committed,
        "served document differs from schemas/openapi.json"
    );
}

/// Checks one answer against the document: its status is documented for
/// the operation, its media type too, its body validates against the
/// documented schema, and the receipt headers it carries are documented.
struct Checker {
    doc: Value,
    checked: BTreeSet<(String, String, u16)>,
}

impl Checker {
    fn check(&mut self, method: &str, path: &str, r: &Reply) {
        let op = &self.doc["paths"][path][method];
        assert!(op.is_object(), "{method} {path} is not documented");
        let status = r.status.to_string();
        let documented = &op["responses"][&status];
        assert!(
            documented.is_object(),
            "{method} {path}: status {status} not documented ({})",
            String::from_utf8_lossy(&r.body)
        );
        let response = resolve(&self.doc, documented).clone();
        for name in ["keyledger-receipt-seq", "keyledger-receipt-leaf"] {
            if r.headers.contains_key(name) {
                assert!(
                    response["headers"][name].is_object(),
                    "{method} {path} {status}: {name} sent but not documented"
                );
            } else if r.status < 300 && op["operationId"] != "getKey" {
                assert!(
                    response["headers"][name].is_null(),
                    "{method} {path} {status}: {name} documented but not sent"
                );
            }
        }
        if method == "head" || r.body.is_empty() {
            assert!(
                response["content"].is_null() || method == "head",
                "{method} {path} {status}: documented a body, sent none"
            );
            self.checked.insert((method.into(), path.into(), r.status));
            return;
        }
        let media = r.media.clone().unwrap_or_default();
        let content = response["content"].as_object().unwrap_or_else(|| {
            panic!("{method} {path} {status}: sent a body ({media}), documented none")
        });
        let schema = content
            .get(&media)
            .or_else(|| content.get(media.split(';').next().unwrap_or_default()))
            .unwrap_or_else(|| {
                panic!(
                    "{method} {path} {status}: media type {media} not documented ({:?})",
                    content.keys().collect::<Vec<_>>()
                )
            })["schema"]
            .clone();
        let instance: Value = if media.starts_with("application/") && media.contains("json") {
            serde_json::from_slice(&r.body).expect("JSON body")
        } else if media.starts_with("text/") {
            Value::String(String::from_utf8(r.body.clone()).expect("UTF-8 text"))
        } else {
            // A binary stream: documented as such, its bytes are not JSON.
            assert_eq!(
                (schema["type"].as_str(), schema["format"].as_str()),
                (Some("string"), Some("binary")),
                "{method} {path} {status}: {media} is binary"
            );
            self.checked.insert((method.into(), path.into(), r.status));
            return;
        };
        let root =
            json!({"$ref": "#/schema", "schema": schema, "components": self.doc["components"]});
        let validator = jsonschema::draft202012::options()
            .should_validate_formats(true)
            .build(&root)
            .expect("schema compiles");
        let errors: Vec<String> = validator
            .iter_errors(&instance)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{method} {path} {status}: the body breaks the document: {errors:?}\n{}",
            instance.to_string().chars().take(2000).collect::<String>()
        );
        self.checked.insert((method.into(), path.into(), r.status));
    }
}

fn kp_json(env: &RestEnv, method: Method, path: &str, role: &str, body: Value) -> TestRequest {
    env.req(method, path, role)
        .insert_header(("content-type", KEY_MEDIA))
        .set_payload(body.to_string())
}

fn one_key(resource: Value) -> Value {
    json!({"metadata": {"collectionType": KEY_MEDIA, "collectionTotal": 1}, "resources": [resource]})
}

fn json_of(r: &Reply) -> Value {
    serde_json::from_slice(&r.body).expect("JSON")
}

/// A walk through every kind of operation, each answer checked against
/// the document.
#[actix_web::test]
async fn answers_conform_to_the_document() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = rest_env(dir.path());
    let mut c = Checker {
        doc: document(),
        checked: BTreeSet::new(),
    };
    macro_rules! expect {
        ($method:literal, $path:literal, $req:expr, $status:expr) => {{
            let r = call(&env, $req).await;
            assert_eq!(
                r.status,
                $status,
                "{} {}: {}",
                $method,
                $path,
                String::from_utf8_lossy(&r.body)
            );
            c.check($method, $path, &r);
            r
        }};
    }

    // Operations.
    expect!("get", "/health", TestRequest::get().uri("/health"), 200);
    expect!("get", "/ready", TestRequest::get().uri("/ready"), 200);

    // Keys.
    let r = expect!(
        "post",
        "/api/v2/keys",
        kp_json(
            &env,
            Method::POST,
            "/keys",
            "writer",
            one_key(json!({"name": "root", "description": "a root key"}))
        ),
        201
    );
    let root = json_of(&r)["resources"][0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let r = expect!(
        "post",
        "/api/v2/keys",
        kp_json(
            &env,
            Method::POST,
            "/keys",
            "writer",
            one_key(json!({"name": "std", "extractable": true, "payload": B64.encode([7u8; 32])}))
        )
        .insert_header(("prefer", "return=minimal")),
        201
    );
    let standard = json_of(&r)["resources"][0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    expect!(
        "post",
        "/api/v2/keys_with_policy_overrides",
        kp_json(
            &env,
            Method::POST,
            "/keys_with_policy_overrides",
            "writer",
            one_key(
                json!({"name": "pol", "rotation": {"enabled": true, "interval_month": 3}, "dualAuthDelete": {"enabled": false}})
            )
        ),
        201
    );
    expect!(
        "get",
        "/api/v2/keys",
        env.req(Method::GET, "/keys?totalCount=true&limit=2", "reader"),
        200
    );
    let r = expect!(
        "head",
        "/api/v2/keys",
        env.req(Method::HEAD, "/keys", "reader"),
        200
    );
    assert_eq!(
        r.headers.get("key-total").and_then(|v| v.to_str().ok()),
        Some("3")
    );
    expect!(
        "get",
        "/api/v2/keys/{id}",
        env.req(Method::GET, &format!("/keys/{standard}"), "writer"),
        200
    );
    expect!(
        "get",
        "/api/v2/keys/{id}",
        env.req(Method::GET, &format!("/keys/{root}"), "writer"),
        200
    );
    expect!(
        "get",
        "/api/v2/keys/{id}/metadata",
        env.req(Method::GET, &format!("/keys/{root}/metadata"), "reader"),
        200
    );
    expect!(
        "get",
        "/api/v2/keys/{id}/versions",
        env.req(
            Method::GET,
            &format!("/keys/{root}/versions?totalCount=true"),
            "reader"
        ),
        200
    );

    // Actions.
    let action = |name: &str, role: &str, body: Option<Value>| {
        let req = env.req(Method::POST, &format!("/keys/{root}/actions/{name}"), role);
        match body {
            Some(b) => req
                .insert_header(("content-type", "application/vnd.ibm.kms.key_action+json"))
                .set_payload(b.to_string()),
            None => req,
        }
    };
    let r = expect!(
        "post",
        "/api/v2/keys/{id}/actions/wrap",
        action("wrap", "writer", None),
        200
    );
    let generated = json_of(&r);
    let r = expect!(
        "post",
        "/api/v2/keys/{id}/actions/wrap",
        action(
            "wrap",
            "writer",
            Some(json!({"plaintext": B64.encode([1u8; 32]), "aad": ["a"]}))
        ),
        200
    );
    let wrapped = json_of(&r)["ciphertext"]
        .as_str()
        .expect("ciphertext")
        .to_string();
    expect!(
        "post",
        "/api/v2/keys/{id}/actions/unwrap",
        action(
            "unwrap",
            "writer",
            Some(json!({"ciphertext": wrapped, "aad": ["a"]}))
        ),
        200
    );
    expect!(
        "post",
        "/api/v2/keys/{id}/actions/rotate",
        action("rotate", "writer", None),
        204
    );
    expect!(
        "post",
        "/api/v2/keys/{id}/actions/unwrap",
        action(
            "unwrap",
            "writer",
            Some(json!({"ciphertext": generated["ciphertext"]}))
        ),
        200
    );
    expect!(
        "post",
        "/api/v2/keys/{id}/actions/rewrap",
        action(
            "rewrap",
            "writer",
            Some(json!({"ciphertext": wrapped, "aad": ["a"]}))
        ),
        200
    );
    expect!(
        "post",
        "/api/v2/keys/{id}/actions/unwrap",
        action(
            "unwrap",
            "writer",
            Some(json!({"ciphertext": wrapped, "aad": ["b"]}))
        ),
        422
    );
    expect!(
        "post",
        "/api/v2/keys/{id}/actions/sync",
        action("sync", "reader", None),
        204
    );
    expect!(
        "post",
        "/api/v2/keys/{id}/actions/disable",
        action("disable", "manager", None).insert_header(("prefer", "return=representation")),
        200
    );
    expect!(
        "post",
        "/api/v2/keys/{id}/actions/wrap",
        action("wrap", "writer", None),
        409
    );
    expect!(
        "post",
        "/api/v2/keys/{id}/actions/enable",
        action("enable", "manager", None),
        204
    );
    expect!(
        "post",
        "/api/v2/keys/{id}/actions/setKeyForDeletion",
        action("setKeyForDeletion", "manager", None),
        409
    );
    expect!(
        "post",
        "/api/v2/keys/{id}",
        env.req(Method::POST, &format!("/keys/{root}?action=wrap"), "writer"),
        200
    );
    expect!(
        "post",
        "/api/v2/keys/{id}",
        env.req(Method::POST, &format!("/keys/{root}?action=nope"), "writer"),
        400
    );

    // Policies.
    expect!(
        "get",
        "/api/v2/keys/{id}/policies",
        env.req(Method::GET, &format!("/keys/{root}/policies"), "reader"),
        200
    );
    expect!(
        "put",
        "/api/v2/keys/{id}/policies",
        env.req(Method::PUT, &format!("/keys/{root}/policies"), "manager")
            .insert_header(("content-type", "application/json"))
            .set_payload(json!({"resources": [{"type": "application/vnd.ibm.kms.policy+json", "rotation": {"enabled": true, "interval_month": 2}}]}).to_string()),
        200
    );
    expect!(
        "get",
        "/api/v2/instance/policies",
        env.req(Method::GET, "/instance/policies", "reader"),
        200
    );
    expect!(
        "put",
        "/api/v2/instance/policies",
        env.req(Method::PUT, "/instance/policies", "manager"),
        403
    );
    expect!(
        "get",
        "/api/v2/instance/allowed_ip_port",
        env.req(Method::GET, "/instance/allowed_ip_port", "reader"),
        200
    );

    // Import tokens.
    expect!(
        "get",
        "/api/v2/import_token",
        env.req(Method::GET, "/import_token", "writer"),
        404
    );
    expect!(
        "post",
        "/api/v2/import_token",
        env.req(Method::POST, "/import_token", "writer"),
        201
    );
    expect!(
        "get",
        "/api/v2/import_token",
        env.req(Method::GET, "/import_token", "writer"),
        200
    );

    // Aliases, key rings, moving keys, registrations.
    expect!(
        "post",
        "/api/v2/keys/{id}/aliases/{alias}",
        env.req(
            Method::POST,
            &format!("/keys/{root}/aliases/my-alias"),
            "writer"
        ),
        201
    );
    expect!(
        "get",
        "/api/v2/keys/{id}",
        env.req(Method::GET, "/keys/my-alias", "writer"),
        200
    );
    expect!(
        "delete",
        "/api/v2/keys/{id}/aliases/{alias}",
        env.req(
            Method::DELETE,
            &format!("/keys/{root}/aliases/my-alias"),
            "writer"
        ),
        204
    );
    expect!(
        "post",
        "/api/v2/key_rings/{id}",
        env.req(Method::POST, "/key_rings/ring-1", "manager"),
        201
    );
    expect!(
        "post",
        "/api/v2/key_rings/{id}",
        env.req(Method::POST, "/key_rings/ring-1", "manager"),
        409
    );
    expect!(
        "get",
        "/api/v2/key_rings",
        env.req(Method::GET, "/key_rings?totalCount=true", "reader"),
        200
    );
    expect!(
        "patch",
        "/api/v2/keys/{id}",
        kp_json(
            &env,
            Method::PATCH,
            &format!("/keys/{standard}"),
            "manager",
            json!({"keyRingID": "ring-1"})
        ),
        200
    );
    expect!(
        "get",
        "/api/v2/keys/registrations",
        env.req(Method::GET, "/keys/registrations?totalCount=true", "reader"),
        200
    );
    expect!(
        "get",
        "/api/v2/keys/{id}/registrations",
        env.req(
            Method::GET,
            &format!("/keys/{root}/registrations"),
            "reader"
        ),
        200
    );

    // Delete, restore, purge.
    expect!(
        "delete",
        "/api/v2/keys/{id}",
        env.req(Method::DELETE, &format!("/keys/{standard}"), "manager"),
        200
    );
    expect!(
        "delete",
        "/api/v2/key_rings/{id}",
        env.req(Method::DELETE, "/key_rings/ring-1", "manager"),
        409
    );
    expect!(
        "delete",
        "/api/v2/key_rings/{id}",
        env.req(Method::DELETE, "/key_rings/ring-1?force=true", "manager"),
        204
    );
    expect!(
        "get",
        "/api/v2/keys/{id}/metadata",
        env.req(Method::GET, &format!("/keys/{standard}/metadata"), "reader"),
        200
    );
    expect!(
        "delete",
        "/api/v2/keys/{id}/purge",
        env.req(
            Method::DELETE,
            &format!("/keys/{standard}/purge"),
            "manager"
        ),
        409
    );
    expect!(
        "post",
        "/api/v2/keys/{id}/restore",
        env.req(
            Method::POST,
            &format!("/keys/{standard}/restore"),
            "manager"
        ),
        201
    );
    expect!(
        "delete",
        "/api/v2/keys/{id}",
        env.req(Method::DELETE, &format!("/keys/{standard}"), "manager")
            .insert_header(("prefer", "return=minimal")),
        204
    );
    expect!(
        "post",
        "/api/v2/keys/{id}/actions/wrap",
        action("wrap", "writer", None),
        200
    );

    // Ledger and admin.
    expect!(
        "get",
        "/api/v2/ledger/checkpoint",
        env.req(Method::GET, "/ledger/checkpoint", "auditor"),
        200
    );
    expect!(
        "get",
        "/api/v2/ledger/records",
        env.req(Method::GET, "/ledger/records?start=0&end=3", "auditor"),
        200
    );
    expect!(
        "get",
        "/api/v2/ledger/records",
        env.req(Method::GET, "/ledger/records", "auditor"),
        400
    );
    expect!(
        "get",
        "/api/v2/ledger/proofs/inclusion",
        env.req(Method::GET, "/ledger/proofs/inclusion?seq=1", "auditor"),
        200
    );
    expect!(
        "get",
        "/api/v2/ledger/proofs/consistency",
        env.req(
            Method::GET,
            "/ledger/proofs/consistency?from=1&to=4",
            "auditor"
        ),
        200
    );
    expect!(
        "get",
        "/api/v2/ledger/proofs/consistency",
        env.req(
            Method::GET,
            "/ledger/proofs/consistency?from=1&to=100000",
            "auditor"
        ),
        404
    );
    expect!(
        "get",
        "/api/v2/ledger/bundle",
        env.req(Method::GET, "/ledger/bundle", "auditor"),
        200
    );
    expect!(
        "get",
        "/api/v2/admin/state",
        env.req(Method::GET, "/admin/state", "auditor"),
        200
    );
    // The ceremony status is for registered key owners, who sign the request.
    let owner = ed25519_dalek::SigningKey::from_bytes(&[0x0c; 32]);
    common::key_env::admin_command(
        &env.service,
        &env.clock,
        keyledger::governance::AdminCommand::RegisterKeyOwner {
            owner_id: "owner-c".into(),
            name: "owner-c".into(),
            public_key: B64.encode(owner.verifying_key().as_bytes()),
        },
    )
    .expect("register owner-c");
    let time = env.clock.as_clock()().timestamp();
    let message = keyledger::keys::service::ceremony_status_message(INSTANCE, "owner-c", time);
    let signature = ed25519_dalek::Signer::sign(&owner, &message).to_bytes();
    expect!(
        "get",
        "/api/v2/admin/ceremony",
        TestRequest::get()
            .uri("/api/v2/admin/ceremony")
            .insert_header(("bluemix-instance", INSTANCE))
            .insert_header(("keyledger-key-owner", "owner-c"))
            .insert_header(("keyledger-key-owner-time", time.to_string()))
            .insert_header(("keyledger-key-owner-signature", B64.encode(signature))),
        200
    );
    expect!(
        "get",
        "/api/v2/admin/ceremony",
        TestRequest::get()
            .uri("/api/v2/admin/ceremony")
            .insert_header(("bluemix-instance", INSTANCE)),
        401
    );
    expect!(
        "get",
        "/api/v2/admin/ceremony",
        TestRequest::get()
            .uri("/api/v2/admin/ceremony")
            .insert_header(("bluemix-instance", INSTANCE))
            .insert_header(("keyledger-key-owner", "owner-c")),
        400
    );
    expect!(
        "post",
        "/api/v2/admin/commands",
        TestRequest::post()
            .uri("/api/v2/admin/commands")
            .insert_header(("bluemix-instance", INSTANCE))
            .insert_header(("content-type", "application/json"))
            .set_payload("{\"document\": \"not a command\"}"),
        400
    );
    expect!(
        "post",
        "/api/v2/admin/ceremony/parts",
        TestRequest::post()
            .uri("/api/v2/admin/ceremony/parts")
            .insert_header(("bluemix-instance", INSTANCE))
            .insert_header(("content-type", "application/json"))
            .set_payload(json!({"owner_id": "nobody", "enc": "AA==", "ciphertext": "AA==", "signature": B64.encode([0u8; 64])}).to_string()),
        401
    );

    // Refusals.
    expect!(
        "get",
        "/api/v2/keys",
        TestRequest::get().uri("/api/v2/keys"),
        400
    );
    expect!(
        "get",
        "/api/v2/keys",
        TestRequest::get()
            .uri("/api/v2/keys")
            .insert_header(("bluemix-instance", INSTANCE))
            .insert_header(("authorization", "Bearer wrong")),
        401
    );
    expect!(
        "get",
        "/api/v2/ledger/checkpoint",
        env.req(Method::GET, "/ledger/checkpoint", "manager"),
        403
    );
    expect!(
        "get",
        "/api/v2/keys/{id}/metadata",
        env.req(Method::GET, "/keys/no-such-key/metadata", "reader"),
        404
    );
    expect!(
        "post",
        "/api/v2/keys",
        env.req(Method::POST, "/keys", "writer")
            .insert_header(("content-type", "text/plain"))
            .set_payload("x"),
        415
    );
    expect!(
        "post",
        "/api/v2/keys",
        env.req(Method::POST, "/keys", "writer")
            .insert_header(("content-type", "application/json"))
            .set_payload(vec![b' '; BODY_LIMIT + 1]),
        413
    );
    expect!(
        "get",
        "/api/v2/keys",
        env.req(Method::GET, "/keys?limit=0", "reader"),
        400
    );
    expect!(
        "get",
        "/api/v2/openapi.json",
        TestRequest::get().uri("/api/v2/openapi.json"),
        200
    );

    assert!(c.checked.len() >= 60, "{} answers checked", c.checked.len());
}
