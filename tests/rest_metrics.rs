//! `GET /metrics` on the operations listener, in process: per-endpoint request counts and latency,
//! unauthenticated requests, the sealed state and log size, the writer's
//! batch sizes and append latency, and the HSM's latency per operation, all
//! agreeing with what the test did, and no token in the text. (The HTTP
//! counters are process-wide, so this binary holds this one test.)

mod common;

use actix_web::http::StatusCode;
use actix_web::test as at;
use serde_json::{Value, json};

use common::rest_env::RestLedgerEnv;

const LIMIT: usize = 1 << 20;

fn request(
    method: &str,
    path: &str,
    token: &str,
    content_type: &str,
    body: &Value,
) -> actix_http::Request {
    let req = match method {
        "POST" => at::TestRequest::post(),
        _ => at::TestRequest::get(),
    };
    req.uri(path)
        .insert_header(("bluemix-instance", "acme"))
        .insert_header(("authorization", format!("Bearer {token}")))
        .insert_header(("content-type", content_type))
        .set_payload(body.to_string())
        .to_request()
}

/// The value of the sample whose name and labels are exactly `series`
/// (0 when the series is absent).
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.parse().expect("a number"))
        .unwrap_or(0.0)
}

async fn scrape<S, B>(app: &S) -> String
where
    S: actix_web::dev::Service<
            actix_http::Request,
            Response = actix_web::dev::ServiceResponse<B>,
            Error = actix_web::Error,
        >,
    B: actix_web::body::MessageBody,
{
    let resp = at::call_service(app, at::TestRequest::get().uri("/metrics").to_request()).await;
    assert_eq!(resp.status(), StatusCode::OK);
    String::from_utf8(at::read_body(resp).await.to_vec()).expect("utf8")
}

#[actix_web::test]
async fn metrics_count_what_happened() {
    let env = RestLedgerEnv::build(&["acme"], &[]);
    let size_at_open = env.service("acme").writer().log().head().size;
    let app = at::init_service(keyledger::server::app(env.state.clone(), LIMIT)).await;
    let ops = at::init_service(keyledger::server::ops_app(env.state.clone())).await;
    let writer = env.token("acme", "writer");
    let before = scrape(&ops).await;

    let create = json!({"metadata": {"collectionType": "application/vnd.ibm.kms.key+json",
        "collectionTotal": 1},
        "resources": [{"type": "application/vnd.ibm.kms.key+json", "name": "metrics-root",
        "extractable": false}]});
    let resp = at::call_service(
        &app,
        request(
            "POST",
            "/api/v2/keys",
            writer,
            "application/vnd.ibm.kms.key+json",
            &create,
        ),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let body: Value = at::read_body_json(resp).await;
    let id = body["resources"][0]["id"].as_str().expect("id").to_string();
    let wrap_path = format!("/api/v2/keys/{id}/actions/wrap");
    let mut ciphertext = String::new();
    for _ in 0..3 {
        let resp = at::call_service(
            &app,
            request("POST", &wrap_path, writer, "application/json", &json!({})),
        )
        .await;
        assert_eq!(resp.status(), StatusCode::OK);
        let body: Value = at::read_body_json(resp).await;
        ciphertext = body["ciphertext"].as_str().expect("ciphertext").to_string();
    }
    let resp = at::call_service(
        &app,
        request(
            "POST",
            &format!("/api/v2/keys/{id}/actions/unwrap"),
            writer,
            "application/json",
            &json!({"ciphertext": ciphertext}),
        ),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    // An unknown token: refused before authentication, counted, not logged.
    let resp = at::call_service(
        &app,
        request(
            "POST",
            &wrap_path,
            "not-a-token",
            "application/json",
            &json!({}),
        ),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    let after = scrape(&ops).await;
    let delta = |series: &str| sample(&after, series) - sample(&before, series);

    // Requests by route pattern, method and status; latency per route.
    let actions = r#"endpoint="/api/v2/keys/{id}/actions/{action}""#;
    assert_eq!(
        delta(&format!(
            r#"keyledger_http_requests_total{{{actions},method="POST",status="200"}}"#
        )),
        4.0,
        "3 wraps and 1 unwrap:\n{after}"
    );
    assert_eq!(
        delta(&format!(
            r#"keyledger_http_requests_total{{{actions},method="POST",status="401"}}"#
        )),
        1.0
    );
    assert_eq!(
        delta(&format!(
            r#"keyledger_http_request_duration_seconds_count{{{actions}}}"#
        )),
        5.0
    );
    assert_eq!(
        delta(
            r#"keyledger_http_requests_total{endpoint="/api/v2/keys",method="POST",status="201"}"#
        ),
        1.0
    );
    assert_eq!(delta("keyledger_unauthenticated_requests_total"), 1.0);

    // The instance's gauges.
    let size = env.service("acme").writer().log().head().size;
    assert_eq!(
        sample(&after, r#"keyledger_instance_sealed{instance="acme"}"#),
        0.0
    );
    assert_eq!(
        sample(&after, r#"keyledger_log_records{instance="acme"}"#),
        size as f64
    );

    // Every record appended since the registry opened the instance was in
    // one counted batch; the buckets add up to the count.
    let appended = (size - size_at_open) as f64;
    assert!(appended >= 5.0, "create + 3 wraps + unwrap at least");
    assert_eq!(
        sample(
            &after,
            r#"keyledger_append_batch_records_sum{instance="acme"}"#
        ),
        appended
    );
    let batches = sample(
        &after,
        r#"keyledger_append_batch_records_count{instance="acme"}"#,
    );
    assert!(batches >= 1.0 && batches <= appended);
    assert_eq!(
        sample(
            &after,
            r#"keyledger_append_batch_records_bucket{le="+Inf",instance="acme"}"#
        ),
        batches,
        "{after}"
    );
    assert_eq!(
        sample(
            &after,
            r#"keyledger_append_duration_seconds_count{instance="acme"}"#
        ),
        batches
    );
    assert!(
        sample(
            &after,
            r#"keyledger_append_duration_seconds_sum{instance="acme"}"#
        ) > 0.0
    );

    // HSM calls by operation: one encrypt per wrap, one decrypt per unwrap,
    // and one of each for the created key's self-test (a new version seals
    // and opens a probe before any event names it).
    assert_eq!(
        delta(r#"keyledger_hsm_operation_duration_seconds_count{operation="encrypt"}"#),
        3.0 + 1.0
    );
    assert_eq!(
        delta(r#"keyledger_hsm_operation_duration_seconds_count{operation="decrypt"}"#),
        1.0 + 1.0
    );
    assert_eq!(
        delta(r#"keyledger_hsm_operation_duration_seconds_count{operation="generate_key"}"#),
        1.0
    );

    // No credential in the exposition.
    for role in ["writer", "manager", "reader", "auditor"] {
        assert!(!after.contains(env.token("acme", role)));
    }
    assert!(!after.contains(&ciphertext));
}
