//! The operations endpoints: `GET /health`, `GET /ready` (on both
//! listeners; only the operations listener names sealed instances) and
//! `GET /metrics` (operations listener only).

use actix_web::{HttpResponse, web};

use super::metrics;
use super::registry::AppState;

/// `GET /health`: the process answers.
#[utoipa::path(
    get,
    path = "/health",
    tag = "operations",
    operation_id = "health",
    responses((status = 200, description = "The process answers.", body = super::model::Health))
)]
pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// The instances that cannot do crypto (their key owners have not
/// re-submitted their parts since the restart).
fn sealed_instances(state: &AppState) -> Vec<String> {
    state
        .registry
        .all()
        .iter()
        .filter(|s| s.sealed())
        .map(|s| s.instance().to_string())
        .collect()
}

/// 200 when every instance can do crypto, else 503 with how many cannot
/// (naming them is for the operations listener: anyone can ask this one).
#[utoipa::path(
    get,
    path = "/ready",
    tag = "operations",
    operation_id = "ready",
    responses(
        (status = 200, description = "Every instance can do crypto.", body = super::model::Ready),
        (status = 503, description = "Some instances are sealed (their key owners have not re-submitted their parts).", body = super::model::Sealed),
    )
)]
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    readiness(&state, false)
}

/// The operations listener's `GET /ready`: 503 names the sealed instances.
pub async fn ops_ready(state: web::Data<AppState>) -> HttpResponse {
    readiness(&state, true)
}

/// 200 `ready`, or 503 `sealed` with the sealed instances' names
/// (`name_them`) or only their number.
fn readiness(state: &AppState, name_them: bool) -> HttpResponse {
    let sealed = sealed_instances(state);
    if sealed.is_empty() {
        HttpResponse::Ok().json(serde_json::json!({"status": "ready"}))
    } else if name_them {
        HttpResponse::ServiceUnavailable()
            .json(serde_json::json!({"status": "sealed", "sealed_instances": sealed}))
    } else {
        HttpResponse::ServiceUnavailable()
            .json(serde_json::json!({"status": "sealed", "sealed_count": sealed.len()}))
    }
}

/// The operations listener's `GET /metrics`: Prometheus text exposition.
pub async fn metrics_text(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(metrics::render(&state.registry))
}
