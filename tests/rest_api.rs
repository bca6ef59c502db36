//! The REST API in process (actix test service over real instances):
//! bad input gets Key Protect's status and error body and never a 5xx or a
//! partial event; a token of one instance can read or change nothing in
//! another and is refused exactly as an unknown instance; when the log
//! cannot be written, wrap returns an error and no ciphertext.
#![cfg(feature = "server")]

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use actix_web::test;
use base64::Engine;
use serde_json::{Value, json};

use common::flaky_log::FlakyLog;
use common::key_env::{self, KeyEnv, admin_command};
use keyledger::event::Envelope;
use keyledger::governance::AdminCommand;
use keyledger::hsm::software::SoftwareHsm;
use keyledger::keys::material::embedded::EmbeddedMaterialStore;
use keyledger::keys::service::KeyService;
use keyledger::ledger_key::LedgerKey;
use keyledger::server::registry::Registry;
use keyledger::server::{AppState, app};
use keyledger::store::embedded::EmbeddedStore;
use keyledger::store::{EventStore, InstanceLog};
use keyledger::writer::{LedgerWriter, WriterConfig};

const LIMIT: usize = 16 * 1024;

struct Instance {
    service: Arc<KeyService>,
    flaky: Arc<FlakyLog>,
    tokens: std::collections::BTreeMap<&'static str, String>,
}

/// A governed instance with an active master key and one credential per
/// role, re-opened over a log whose appends can be made to fail.
fn instance(dir: &std::path::Path, name: &str) -> Instance {
    let env: KeyEnv = key_env::ready(dir, name, Arc::new(SoftwareHsm::new()));
    let mut tokens = std::collections::BTreeMap::new();
    for role in ["manager", "writer", "reader", "auditor"] {
        let token =
            key_env::issue_credential(&env.service, &env.clock, &format!("{name}-{role}"), role);
        tokens.insert(role, token);
    }
    let KeyEnv { service, hsm, .. } = env;
    service.shutdown();
    let store = EmbeddedStore::open(dir).expect("store");
    let log = store.open_instance(name).expect("log");
    let size = log.head().size;
    let last = log.read(size - 1, size).expect("read");
    let key_id = Envelope::parse(&last[0].event)
        .expect("event")
        .ledger_key
        .clone();
    let key =
        LedgerKey::read_file(&keyledger::ledger::keys_dir(dir, name).join(format!("{key_id}.key")))
            .expect("ledger key");
    let flaky = Arc::new(FlakyLog::new(log));
    let writer = LedgerWriter::start(flaky.clone(), key, WriterConfig::default());
    let material = Arc::new(EmbeddedMaterialStore::open(dir).expect("material"));
    let service =
        KeyService::open(writer, hsm, material, Arc::new(chrono::Utc::now)).expect("service");
    Instance {
        service: Arc::new(service),
        flaky,
        tokens,
    }
}

fn state(instances: &[&Instance]) -> actix_web::web::Data<AppState> {
    actix_web::web::Data::new(AppState {
        registry: Arc::new(Registry::from_services(
            instances.iter().map(|i| i.service.clone()).collect(),
        )),
        clock: Arc::new(chrono::Utc::now),
        sinks: Default::default(),
    })
}

fn log_size(i: &Instance) -> u64 {
    i.service.writer().log().head().size
}

fn req(method: &str, path: &str) -> test::TestRequest {
    let r = match method {
        "GET" => test::TestRequest::get(),
        "POST" => test::TestRequest::post(),
        "DELETE" => test::TestRequest::delete(),
        "HEAD" => test::TestRequest::default().method(actix_web::http::Method::HEAD),
        "PATCH" => test::TestRequest::patch(),
        "PUT" => test::TestRequest::put(),
        other => panic!("method {other}"),
    };
    r.uri(path)
}

fn auth(r: test::TestRequest, i: &Instance, role: &str, instance: &str) -> test::TestRequest {
    r.insert_header(("authorization", format!("Bearer {}", i.tokens[role])))
        .insert_header(("bluemix-instance", instance.to_string()))
}

fn create_body(name: &str, extractable: bool) -> Value {
    json!({
        "metadata": {"collectionType": "application/vnd.ibm.kms.key+json", "collectionTotal": 1},
        "resources": [{"type": "application/vnd.ibm.kms.key+json", "name": name, "extractable": extractable}]
    })
}

/// The Key Protect error code of a response body.
fn code(body: &Value) -> &str {
    body["resources"][0]["reasons"][0]["code"]
        .as_str()
        .unwrap_or("<no code>")
}

async fn call(
    svc: &impl actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>,
        Error = actix_web::Error,
    >,
    r: test::TestRequest,
) -> (u16, String, Value) {
    let resp = test::call_service(svc, r.to_request()).await;
    let status = resp.status().as_u16();
    let media = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let bytes = test::read_body(resp).await;
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, media, body)
}

#[actix_web::test]
async fn bad_input_gets_key_protect_errors_and_loses_nothing() {
    let dir = tempfile::tempdir().expect("tmp");
    let acme = instance(dir.path(), "acme");
    let svc = test::init_service(app(state(&[&acme]), LIMIT)).await;
    let (status, _, created) = call(
        &svc,
        auth(req("POST", "/api/v2/keys"), &acme, "writer", "acme")
            .insert_header(("content-type", "application/vnd.ibm.kms.key+json"))
            .set_payload(create_body("root-1", false).to_string()),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["resources"][0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let wrap_path = format!("/api/v2/keys/{id}/actions/wrap");
    let json_ct = (
        "content-type",
        "application/vnd.ibm.kms.key_action_wrap+json",
    );
    let cases: Vec<(&str, test::TestRequest, u16, &str)> = vec![
        (
            "malformed JSON",
            auth(req("POST", &wrap_path), &acme, "writer", "acme")
                .insert_header(json_ct)
                .set_payload("{\"plaintext\": "),
            400,
            "BAD_BODY_ERR",
        ),
        (
            "unknown field",
            auth(req("POST", &wrap_path), &acme, "writer", "acme")
                .insert_header(json_ct)
                .set_payload("{\"plaintxt\": \"AAAA\"}"),
            400,
            "BAD_BODY_ERR",
        ),
        (
            "wrong media type",
            auth(req("POST", &wrap_path), &acme, "writer", "acme")
                .insert_header(("content-type", "text/plain"))
                .set_payload("{}"),
            415,
            "BAD_BODY_ERR",
        ),
        (
            "missing instance header",
            req("GET", "/api/v2/keys")
                .insert_header(("authorization", format!("Bearer {}", acme.tokens["reader"]))),
            400,
            "INVALID_HEADER_ERR",
        ),
        (
            "missing authorization",
            req("GET", "/api/v2/keys").insert_header(("bluemix-instance", "acme")),
            401,
            "UNAUTHORIZED_ERR",
        ),
        (
            "invalid base64",
            auth(req("POST", &wrap_path), &acme, "writer", "acme")
                .insert_header(json_ct)
                .set_payload("{\"plaintext\": \"not base64!!\"}"),
            400,
            "BAD_BODY_ERR",
        ),
        (
            "oversized body",
            auth(req("POST", &wrap_path), &acme, "writer", "acme")
                .insert_header(json_ct)
                .set_payload(vec![b' '; LIMIT + 1]),
            413,
            "BODY_TOO_LARGE_ERR",
        ),
        (
            "unknown key id",
            auth(
                req(
                    "POST",
                    "/api/v2/keys/00000000-0000-4000-8000-000000000000/actions/wrap",
                ),
                &acme,
                "writer",
                "acme",
            )
            .insert_header(json_ct)
            .set_payload("{}"),
            404,
            "KEY_NOT_FOUND_ERR",
        ),
        (
            "unknown alias",
            auth(
                req("GET", "/api/v2/keys/no-such-alias/metadata"),
                &acme,
                "reader",
                "acme",
            ),
            404,
            "KEY_NOT_FOUND_ERR",
        ),
        (
            "unknown action",
            auth(
                req("POST", &format!("/api/v2/keys/{id}/actions/explode")),
                &acme,
                "manager",
                "acme",
            ),
            400,
            "INVALID_QUERY_PARAM_ERR",
        ),
        (
            "bad list parameter",
            auth(req("GET", "/api/v2/keys?limit=0"), &acme, "reader", "acme"),
            400,
            "INVALID_QUERY_PARAM_ERR",
        ),
        (
            "unknown route",
            auth(req("GET", "/api/v2/nothing"), &acme, "reader", "acme"),
            404,
            "NOT_FOUND_ERR",
        ),
        (
            "tampered ciphertext",
            auth(
                req("POST", &format!("/api/v2/keys/{id}/actions/unwrap")),
                &acme,
                "writer",
                "acme",
            )
            .insert_header(json_ct)
            .set_payload("{\"ciphertext\": \"S0xXAQAAAAAAAAAA\"}"),
            422,
            "UNPROCESSABLE_CIPHERTEXT_ERR",
        ),
    ];
    for (what, r, want_status, want_code) in cases {
        let before = log_size(&acme);
        let (status, media, body) = call(&svc, r).await;
        assert_eq!(status, want_status, "{what}: {body}");
        assert_eq!(media, "application/vnd.ibm.kms.error+json", "{what}");
        assert_eq!(code(&body), want_code, "{what}: {body}");
        assert_eq!(body["metadata"]["collectionTotal"], 1, "{what}");
        // A key operation the service refuses is recorded (one
        // key.operation_failed); requests refused before reaching it
        // (unparsable, unauthenticated) change nothing.
        let grown = log_size(&acme) - before;
        let expect = u64::from(what == "tampered ciphertext" || what == "unknown key id");
        assert_eq!(grown, expect, "{what}: log grew by {grown}");
    }
    // An action in the wrong key state: disable, then wrap.
    let (status, _, _) = call(
        &svc,
        auth(
            req("POST", &format!("/api/v2/keys/{id}/actions/disable")),
            &acme,
            "manager",
            "acme",
        ),
    )
    .await;
    assert_eq!(status, 204);
    let before = log_size(&acme);
    let (status, _, body) = call(
        &svc,
        auth(req("POST", &wrap_path), &acme, "writer", "acme")
            .insert_header(json_ct)
            .set_payload("{}"),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(code(&body), "KEY_ACTION_INVALID_STATE_ERR", "{body}");
    assert!(body.get("ciphertext").is_none());
    // The refusal was durable before it was answered.
    assert_eq!(log_size(&acme), before + 1, "one key.operation_failed");
}

#[actix_web::test]
async fn a_token_for_one_instance_reaches_nothing_in_another() {
    let dir = tempfile::tempdir().expect("tmp");
    let acme = instance(dir.path(), "acme");
    let beta = instance(dir.path(), "beta");
    let svc = test::init_service(app(state(&[&acme, &beta]), LIMIT)).await;
    let (status, _, created) = call(
        &svc,
        auth(req("POST", "/api/v2/keys"), &beta, "writer", "beta")
            .insert_header(("content-type", "application/json"))
            .set_payload(create_body("beta-key", true).to_string()),
    )
    .await;
    assert_eq!(status, 201);
    let beta_key = created["resources"][0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let endpoints: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", "/api/v2/keys".into(), None),
        ("HEAD", "/api/v2/keys".into(), None),
        ("POST", "/api/v2/keys".into(), Some(create_body("x", false))),
        ("GET", format!("/api/v2/keys/{beta_key}"), None),
        ("GET", format!("/api/v2/keys/{beta_key}/metadata"), None),
        ("GET", format!("/api/v2/keys/{beta_key}/versions"), None),
        ("DELETE", format!("/api/v2/keys/{beta_key}"), None),
        ("DELETE", format!("/api/v2/keys/{beta_key}/purge"), None),
        ("POST", format!("/api/v2/keys/{beta_key}/restore"), None),
        (
            "POST",
            format!("/api/v2/keys/{beta_key}/actions/wrap"),
            Some(json!({})),
        ),
        (
            "POST",
            format!("/api/v2/keys/{beta_key}/actions/unwrap"),
            Some(json!({"ciphertext": "AAAA"})),
        ),
        (
            "POST",
            format!("/api/v2/keys/{beta_key}/actions/rewrap"),
            Some(json!({"ciphertext": "AAAA"})),
        ),
        (
            "POST",
            format!("/api/v2/keys/{beta_key}/actions/rotate"),
            None,
        ),
        (
            "POST",
            format!("/api/v2/keys/{beta_key}/actions/disable"),
            None,
        ),
        (
            "POST",
            format!("/api/v2/keys/{beta_key}/actions/enable"),
            None,
        ),
        (
            "POST",
            format!("/api/v2/keys/{beta_key}/actions/setKeyForDeletion"),
            None,
        ),
        (
            "POST",
            format!("/api/v2/keys/{beta_key}/actions/unsetKeyForDeletion"),
            None,
        ),
        (
            "POST",
            format!("/api/v2/keys/{beta_key}?action=disable"),
            None,
        ),
    ];
    let beta_before = beta.service.projections();
    let beta_size = log_size(&beta);
    for (method, path, body) in &endpoints {
        // acme's manager token, naming instance beta: the same 401 as an
        // instance that does not exist.
        let with = |instance: &str| {
            let mut r = auth(req(method, path), &acme, "manager", instance)
                .insert_header(("content-type", "application/json"));
            if let Some(b) = body {
                r = r.set_payload(b.to_string());
            }
            r
        };
        let (s_other, _, b_other) = call(&svc, with("beta")).await;
        let (s_unknown, _, b_unknown) = call(&svc, with("no-such-instance")).await;
        if *method == "HEAD" {
            assert_eq!((s_other, s_unknown), (401, 401), "{method} {path}");
        } else {
            assert_eq!(s_other, 401, "{method} {path}: {b_other}");
            assert_eq!(b_other, b_unknown, "{method} {path}");
        }
        // acme's token on its own instance does not see beta's key either.
        if path.contains(&beta_key) {
            let (s_own, _, b_own) = call(&svc, with("acme")).await;
            assert_eq!(s_own, 404, "{method} {path}: {b_own}");
        }
    }
    assert_eq!(beta.service.projections(), beta_before, "beta unchanged");
    assert_eq!(log_size(&beta), beta_size, "nothing recorded in beta");
}

#[actix_web::test]
async fn a_role_that_may_not_act_is_refused_and_recorded() {
    let dir = tempfile::tempdir().expect("tmp");
    let acme = instance(dir.path(), "acme");
    let svc = test::init_service(app(state(&[&acme]), LIMIT)).await;
    let before = log_size(&acme);
    let (status, _, body) = call(
        &svc,
        auth(req("POST", "/api/v2/keys"), &acme, "reader", "acme")
            .insert_header(("content-type", "application/json"))
            .set_payload(create_body("nope", false).to_string()),
    )
    .await;
    assert_eq!((status, code(&body)), (403, "FORBIDDEN_ERR"), "{body}");
    let log = acme.service.writer().log();
    let records = log.read(before, log.head().size).expect("read");
    assert_eq!(records.len(), 1);
    let e = Envelope::parse(&records[0].event).expect("event");
    assert_eq!(e.event_type, "access.denied");
    assert_eq!(e.actor.principal, "acme-reader");
    // Unauthenticated noise is not recorded.
    let before = log_size(&acme);
    let (status, _, _) = call(
        &svc,
        req("GET", "/api/v2/keys")
            .insert_header(("authorization", "Bearer guess"))
            .insert_header(("bluemix-instance", "acme")),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(log_size(&acme), before);
}

#[actix_web::test]
async fn when_the_log_cannot_be_written_wrap_fails_closed() {
    let dir = tempfile::tempdir().expect("tmp");
    let acme = instance(dir.path(), "acme");
    let svc = test::init_service(app(state(&[&acme]), LIMIT)).await;
    let (_, _, created) = call(
        &svc,
        auth(req("POST", "/api/v2/keys"), &acme, "writer", "acme")
            .insert_header(("content-type", "application/json"))
            .set_payload(create_body("root", false).to_string()),
    )
    .await;
    let id = created["resources"][0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let dek = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    let (status, _, wrapped) = call(
        &svc,
        auth(
            req("POST", &format!("/api/v2/keys/{id}/actions/wrap")),
            &acme,
            "writer",
            "acme",
        )
        .insert_header(("content-type", "application/json"))
        .set_payload(json!({"plaintext": dek}).to_string()),
    )
    .await;
    assert_eq!(status, 200);
    let ciphertext = wrapped["ciphertext"].as_str().expect("ct").to_string();

    acme.flaky.broken.store(true, Ordering::SeqCst);
    let before = acme.flaky.head();
    for (action, body) in [
        ("wrap", json!({"plaintext": dek})),
        ("wrap", json!({})),
        ("unwrap", json!({"ciphertext": ciphertext})),
    ] {
        let resp = test::call_service(
            &svc,
            auth(
                req("POST", &format!("/api/v2/keys/{id}/actions/{action}")),
                &acme,
                "writer",
                "acme",
            )
            .insert_header(("content-type", "application/json"))
            .set_payload(body.to_string())
            .to_request(),
        )
        .await;
        let status = resp.status().as_u16();
        let bytes = test::read_body(resp).await;
        let text = String::from_utf8_lossy(&bytes);
        assert_eq!(status, 503, "{action}: {text}");
        assert!(text.contains("LEDGER_UNAVAILABLE_ERR"), "{text}");
        assert!(
            !text.contains("disk full"),
            "the cause is the operator's: {text}"
        );
        assert!(
            !text.contains("ciphertext\""),
            "{action} leaked a ciphertext: {text}"
        );
        assert!(
            !text.contains("plaintext"),
            "{action} leaked a plaintext: {text}"
        );
        assert!(!text.contains(&dek), "{action} leaked the data key");
    }
    assert_eq!(acme.flaky.head(), before, "nothing was stored");
    // Repaired: the service answers again.
    acme.flaky.broken.store(false, Ordering::SeqCst);
    let (status, _, _) = call(
        &svc,
        auth(
            req("POST", &format!("/api/v2/keys/{id}/actions/unwrap")),
            &acme,
            "writer",
            "acme",
        )
        .insert_header(("content-type", "application/json"))
        .set_payload(json!({"ciphertext": ciphertext}).to_string()),
    )
    .await;
    assert_eq!(status, 200);
}

#[actix_web::test]
async fn network_policies_refuse_other_addresses_and_record_it() {
    let dir = tempfile::tempdir().expect("tmp");
    let acme = instance(dir.path(), "acme");
    admin_command(
        &acme.service,
        &key_env::TestClock::new(),
        AdminCommand::SetInstancePolicy {
            policy_type: "allowedIP".into(),
            enabled: true,
            attributes: serde_json::from_value(json!({"allowed_ip": ["10.1.0.0/16"]}))
                .expect("attrs"),
        },
    )
    .expect("policy");
    let svc = test::init_service(app(state(&[&acme]), LIMIT)).await;
    let from = |ip: &str| {
        auth(req("GET", "/api/v2/keys"), &acme, "reader", "acme")
            .peer_addr(format!("{ip}:40000").parse().expect("addr"))
    };
    let (status, _, _) = call(&svc, from("10.1.2.3")).await;
    assert_eq!(status, 200);
    let before = log_size(&acme);
    let (status, _, body) = call(&svc, from("192.0.2.9")).await;
    assert_eq!((status, code(&body)), (403, "FORBIDDEN_ERR"), "{body}");
    let log = acme.service.writer().log();
    let records = log.read(before, log.head().size).expect("read");
    assert_eq!(records.len(), 1);
    let e = Envelope::parse(&records[0].event).expect("event");
    assert_eq!(e.event_type, "access.denied");
}
