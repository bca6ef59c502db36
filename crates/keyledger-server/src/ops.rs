//! The operations endpoints: `GET /health`, `GET /ready` (on both
//! listeners; only the operations listener names sealed instances and the
//! SIEM sinks that are behind) and
//! `GET /metrics` (operations listener only).

use actix_web::{HttpResponse, web};

use super::metrics;
use super::model::{
    Health, OpsReady, Ready, Sealed, SinkBehind, StatusOk, StatusReady, StatusSealed,
};
use super::registry::AppState;
use super::wire::json_response;

const JSON: &str = "application/json";

/// `GET /health`: the process answers.
#[utoipa::path(
    get,
    path = "/health",
    tag = "operations",
    operation_id = "health",
    responses((status = 200, description = "The process answers.", body = super::model::Health))
)]
pub async fn health() -> HttpResponse {
    json_response(200, JSON, &Health { status: StatusOk })
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
    readiness(&state)
}

/// The operations listener's `GET /ready`: 503 names the sealed
/// instances; either answer names the SIEM sinks that are behind.
pub async fn ops_ready(state: web::Data<AppState>) -> HttpResponse {
    let sealed = sealed_instances(&state);
    state
        .sinks
        .refresh(|i| state.registry.get(i).map(|s| s.audit_log().size()));
    let sinks_behind = state
        .sinks
        .behind()
        .into_iter()
        .map(|s| SinkBehind {
            lag: s.status.lag(),
            error: s.status.error(),
            instance: s.instance,
            sink: s.sink,
        })
        .collect();
    let (code, status) = if sealed.is_empty() {
        (200, "ready")
    } else {
        (503, "sealed")
    };
    json_response(
        code,
        JSON,
        &OpsReady {
            status,
            sealed_instances: sealed,
            sinks_behind,
        },
    )
}

/// 200 `ready`, or 503 `sealed` with the number of sealed instances (the
/// API listener names none: anyone can ask it).
fn readiness(state: &AppState) -> HttpResponse {
    let sealed = sealed_instances(state);
    if sealed.is_empty() {
        json_response(
            200,
            JSON,
            &Ready {
                status: StatusReady,
            },
        )
    } else {
        json_response(
            503,
            JSON,
            &Sealed {
                status: StatusSealed,
                sealed_count: sealed.len() as u64,
            },
        )
    }
}

/// The operations listener's `GET /metrics`: Prometheus text exposition.
pub async fn metrics_text(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(metrics::render(&state.registry, &state.sinks))
}
