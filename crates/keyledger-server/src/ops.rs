//! The operations endpoints: `GET /health`, `GET /ready` (on both
//! listeners; only the operations listener names sealed instances) and
//! `GET /metrics` (operations listener only).

use actix_web::{HttpResponse, web};

use super::metrics;
use super::model::{Health, Ready, Sealed, SealedInstances, StatusOk, StatusReady, StatusSealed};
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
        json_response(
            200,
            JSON,
            &Ready {
                status: StatusReady,
            },
        )
    } else if name_them {
        json_response(
            503,
            JSON,
            &SealedInstances {
                status: StatusSealed,
                sealed_instances: sealed,
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
        .body(metrics::render(&state.registry))
}
