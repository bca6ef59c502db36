//! keyledger-server: the REST server (`keyledger serve`), the Key Protect
//! v2 API on actix-web over the same key service the command line uses.
//! It depends on `keyledger-core`, `keyledger-ledger` and `keyledger-kms`,
//! never on the root package (the command line).
//!
//! - [`auth`]: bearer credentials (digests from the log), roles.
//! - [`keys`]: key endpoints and actions.
//! - [`ledger_api`]: auditor endpoints (checkpoint, records, proofs, bundle).
//! - [`admin_api`]: signed admin commands, the ceremony, governance state.
//! - [`errors`]: Key Protect error bodies for every refusal, including the
//!   ones actix itself produces (unknown route, oversized body, ...).
//! - [`listener`]: the listening sockets; the HTTP/1 parser's own 400/431
//!   get Key Protect bodies there.
//! - [`guard`]: what a request must satisfy before its body is read
//!   (identity from headers, single-valued headers, body timeout).
//! - [`metrics`]: Prometheus metrics, served with `/health` and `/ready` on
//!   the separate operations listener (`ops_listen`); the API listener
//!   answers `/health` and `/ready` without naming any instance.
//! - [`openapi`]: the OpenAPI document (`schemas/openapi.json`), served at
//!   `/api/v2/openapi.json`.
//! - [`access_log`]: one JSON line per request on stderr (no secrets).
//! - [`dev`]: `--dev` bootstrap.
//!
//! Blocking work (appending events, HSM calls) runs on actix's blocking
//! pool; an operation's event is durable before its response is written.
//! Wrap and unwrap on a backend whose calls never wait run on the event loop
//! and await their event's durability instead (`keys::deferred`).

#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod access_log;
pub mod admin_api;
pub mod auth;
pub mod config;
pub mod dev;
pub mod errors;
pub mod guard;
pub mod import_tokens;
pub mod keys;
pub mod ledger_api;
pub mod listener;
pub mod metrics;
pub mod openapi;
pub mod policies;
pub mod registrations;
pub mod registry;
pub mod resources;
pub mod rings_aliases;
pub mod scheduler;

use std::sync::Arc;

use actix_web::body::BoxBody;
use actix_web::dev::ServiceResponse;
use actix_web::middleware::{ErrorHandlerResponse, ErrorHandlers, from_fn};
use actix_web::{App, HttpRequest, HttpResponse, web};

pub use config::ServeConfig;
use errors::{ApiError, ERROR_MEDIA_TYPE};
pub use registry::AppState;
use registry::Registry;

use keyledger_kms::hsm::HsmBackend;
use keyledger_ledger::writer::Clock;

/// `GET /health`: the process answers.
#[utoipa::path(
    get,
    path = "/health",
    tag = "operations",
    operation_id = "health",
    responses((status = 200, description = "The process answers.", body = openapi::Health))
)]
async fn health() -> HttpResponse {
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
        (status = 200, description = "Every instance can do crypto.", body = openapi::Ready),
        (status = 503, description = "Some instances are sealed (their key owners have not re-submitted their parts).", body = openapi::Sealed),
    )
)]
async fn ready(state: web::Data<AppState>) -> HttpResponse {
    readiness(&state, false)
}

/// The operations listener's `GET /ready`: 503 names the sealed instances.
async fn ops_ready(state: web::Data<AppState>) -> HttpResponse {
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
async fn metrics_text(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(metrics::render(&state.registry))
}

async fn not_found(_req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found("the requested resource does not exist"))
}

/// Turns any error response that is not already a Key Protect error body
/// (actix's own 404/405/413/400, which are text) into one. A JSON answer a
/// handler composed on purpose (`/ready`'s 503) is kept as it is.
fn key_protect_errors<B>(res: ServiceResponse<B>) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let already = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with(ERROR_MEDIA_TYPE) || v.starts_with("application/json"));
    if already {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status().as_u16();
    let error = match status {
        404 => ApiError::not_found("the requested resource does not exist"),
        405 => ApiError::new(
            405,
            "METHOD_NOT_ALLOWED_ERR",
            "method not allowed on this resource",
        ),
        413 => ApiError::new(413, "BODY_TOO_LARGE_ERR", "the request body is too large"),
        415 => ApiError::new(415, "BAD_BODY_ERR", "unsupported media type"),
        400..=499 => ApiError::new(status, "BAD_REQUEST_ERR", "the request is malformed"),
        _ => ApiError::internal(),
    };
    // A 405 keeps actix's `Allow` header (RFC 9110 §15.5.6).
    let allow = res.headers().get(actix_web::http::header::ALLOW).cloned();
    let (req, _) = res.into_parts();
    let mut response: HttpResponse<BoxBody> = actix_web::ResponseError::error_response(&error);
    if let Some(allow) = allow {
        response
            .headers_mut()
            .insert(actix_web::http::header::ALLOW, allow);
    }
    Ok(ErrorHandlerResponse::Response(
        ServiceResponse::new(req, response).map_into_right_body::<B>(),
    ))
}

/// Every route the server answers, in matching order (actix tries the
/// paths in this order; a path that matches with another method answers
/// 405). Both [`routes`] and [`ROUTES`] come from this one table, so
/// `tests/openapi.rs` can check that the OpenAPI document covers exactly
/// the routes the server registers.
macro_rules! route_table {
    ($($path:literal => { $($method:ident: $handler:path),+ $(,)? })+) => {
        /// `(method, path)` of every registered route, in matching order.
        pub const ROUTES: &[(&str, &str)] = &[$($((stringify!($method), $path)),+),+];

        /// Registers every route on `cfg`.
        pub fn routes(cfg: &mut web::ServiceConfig) {
            $(cfg.service(web::resource($path)$(.route(web::$method().to($handler)))+);)+
        }
    };
}

route_table! {
    "/health" => { get: health }
    "/ready" => { get: ready }
    // The hot path early: each pattern with a parameter tried before it
    // costs a regex match.
    "/api/v2/keys/{id}/actions/{action}" => { post: keys::action }
    "/api/v2/openapi.json" => { get: openapi::serve }
    "/api/v2/ledger/checkpoint" => { get: ledger_api::checkpoint }
    "/api/v2/ledger/records" => { get: ledger_api::records }
    "/api/v2/ledger/proofs/inclusion" => { get: ledger_api::inclusion }
    "/api/v2/ledger/proofs/consistency" => { get: ledger_api::consistency }
    "/api/v2/ledger/bundle" => { get: ledger_api::bundle }
    "/api/v2/admin/commands" => { post: admin_api::submit_command }
    "/api/v2/admin/ceremony" => { get: admin_api::ceremony_status }
    "/api/v2/admin/ceremony/parts" => { post: admin_api::submit_part }
    "/api/v2/admin/state" => { get: admin_api::state }
    "/api/v2/keys" => { head: keys::head, get: keys::list, post: keys::create }
    "/api/v2/keys_with_policy_overrides" => { post: keys::create_with_policy_overrides }
    "/api/v2/keys/registrations" => { get: registrations::all }
    "/api/v2/keys/{id}/registrations" => { get: registrations::of_key }
    "/api/v2/keys/{id}/policies" => {
        get: policies::get_key_policies,
        put: policies::put_key_policies,
    }
    "/api/v2/keys/{id}/aliases/{alias}" => {
        post: rings_aliases::create_alias,
        delete: rings_aliases::delete_alias,
    }
    "/api/v2/instance/policies" => {
        get: policies::get_instance_policies,
        put: policies::put_instance_policies,
    }
    "/api/v2/instance/allowed_ip_port" => { get: policies::allowed_ip_port }
    "/api/v2/import_token" => { get: import_tokens::get, post: import_tokens::create }
    "/api/v2/key_rings" => { get: rings_aliases::list_key_rings }
    "/api/v2/key_rings/{id}" => {
        post: rings_aliases::create_key_ring,
        delete: rings_aliases::delete_key_ring,
    }
    "/api/v2/keys/{id}/metadata" => { get: keys::metadata }
    "/api/v2/keys/{id}/versions" => { get: keys::versions }
    "/api/v2/keys/{id}/purge" => { delete: keys::purge }
    "/api/v2/keys/{id}/restore" => { post: keys::restore }
    "/api/v2/keys/{id}" => {
        get: keys::get,
        post: keys::action_query,
        patch: rings_aliases::patch_key,
        delete: keys::delete,
    }
}

/// What a request may cost the server before it is refused.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest body accepted (413 above).
    pub body_bytes: usize,
    /// Longest a body may take to arrive after the head (408 after).
    pub body_timeout: std::time::Duration,
}

impl From<usize> for Limits {
    /// `body_bytes`, with the default body timeout.
    fn from(body_bytes: usize) -> Self {
        Limits {
            body_bytes,
            body_timeout: std::time::Duration::from_secs(ServeConfig::default().body_timeout_secs),
        }
    }
}

/// Builds the application (also used by in-process tests).
pub fn app(
    state: web::Data<AppState>,
    limits: impl Into<Limits>,
) -> App<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl actix_web::body::MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let limits = limits.into();
    App::new()
        .app_data(state)
        .app_data(web::PayloadConfig::new(limits.body_bytes))
        .app_data(guard::BodyTimeout(limits.body_timeout))
        .wrap(ErrorHandlers::new().default_handler(key_protect_errors))
        .wrap(from_fn(guard::guard))
        .wrap(from_fn(metrics::observe))
        .wrap(from_fn(access_log::log_requests))
        .configure(routes)
        .default_service(web::to(not_found))
}

/// The operations listener's application: `/metrics`, `/health` and a
/// `/ready` that names sealed instances; nothing else. It is served only on
/// `ops_listen`, an address the operator keeps private (loopback, a
/// monitoring network), because its answers name every instance.
pub fn ops_app(
    state: web::Data<AppState>,
) -> App<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl actix_web::body::MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .app_data(state)
        .route("/metrics", web::get().to(metrics_text))
        .route("/health", web::get().to(health))
        .route("/ready", web::get().to(ops_ready))
}

fn tls_config(config: &ServeConfig) -> Result<Option<rustls::ServerConfig>, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let (Some(cert), Some(key)) = (&config.tls_cert, &config.tls_key) else {
        return Ok(None);
    };
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map(Some)
        .map_err(|e| format!("TLS: {e}"))
}

/// Runs the server until SIGINT/SIGTERM, then drains in-flight requests and
/// stops every instance's writer (acknowledged events are already durable).
pub fn run(config: ServeConfig, hsm: Arc<dyn HsmBackend>) -> Result<(), String> {
    config.check()?;
    let tls = tls_config(&config)?;
    let bound = listener::bind_all(&config)?;
    let clock: Clock = Arc::new(chrono::Utc::now);
    if config.dev {
        dev::bootstrap(&config.data_dir, hsm.clone())?;
    }
    let registry = Arc::new(Registry::open_all(&config.data_dir, hsm, clock.clone())?);
    if config.dev
        && let Some(service) = registry.get(dev::DEV_INSTANCE)
    {
        dev::unseal(&config.data_dir, &service)?;
    }
    let state = web::Data::new(AppState {
        registry: registry.clone(),
        clock,
    });
    let listening = listener::listen(bound, &config, state, tls)?;
    if config.dev {
        dev::set_url(&config.data_dir, &listening.api_url)?;
        eprintln!("keyledger: {}", dev::WARNING);
        eprintln!(
            "keyledger: dev credentials in {}",
            dev::credentials_path(&config.data_dir).display()
        );
    }
    eprintln!(
        "keyledger: serving {} instance(s) on {}",
        registry.names().len(),
        listening.api_url
    );
    if let Some(url) = &listening.ops_url {
        eprintln!("keyledger: operations (metrics, health, ready) on {url}");
    }
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let scheduler = scheduler::spawn(
        registry.clone(),
        std::time::Duration::from_secs(config.scheduler_interval_secs.max(1)),
        stop.clone(),
    )
    .map_err(|e| format!("scheduler: {e}"))?;
    let result = actix_web::rt::System::new().block_on(listening.server);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = scheduler.join();
    registry.shutdown();
    result.map_err(|e| e.to_string())
}
