//! The REST server (`keyledger serve`): the Key Protect v2 API on
//! actix-web, over the same key service the command line uses.
//!
//! - [`auth`]: bearer credentials (digests from the log), roles.
//! - [`keys`]: key endpoints and actions.
//! - [`ledger_api`]: auditor endpoints (checkpoint, records, proofs, bundle).
//! - [`admin_api`]: signed admin commands, the ceremony, governance state.
//! - [`errors`]: Key Protect error bodies for every refusal, including the
//!   ones actix itself produces (unknown route, oversized body, ...).
//! - [`metrics`]: Prometheus metrics; `/health` and `/ready` are here.
//! - [`access_log`]: one JSON line per request on stderr (no secrets).
//! - [`dev`]: `--dev` bootstrap.
//!
//! Blocking work (appending events, HSM calls) runs on actix's blocking
//! pool; an operation's event is durable before its response is written.

pub mod access_log;
pub mod admin_api;
pub mod auth;
pub mod config;
pub mod dev;
pub mod errors;
pub mod import_tokens;
pub mod keys;
pub mod ledger_api;
pub mod metrics;
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
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};

pub use config::ServeConfig;
use errors::{ApiError, ERROR_MEDIA_TYPE};
use registry::Registry;

use crate::hsm::HsmBackend;
use crate::writer::Clock;

/// Shared by every request.
pub struct AppState {
    pub registry: Arc<Registry>,
    pub clock: Clock,
}

async fn health() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// 200 when every instance can do crypto, 503 naming the sealed ones.
async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let sealed: Vec<String> = state
        .registry
        .all()
        .iter()
        .filter(|s| s.sealed())
        .map(|s| s.instance().to_string())
        .collect();
    if sealed.is_empty() {
        HttpResponse::Ok().json(serde_json::json!({"status": "ready"}))
    } else {
        HttpResponse::ServiceUnavailable()
            .json(serde_json::json!({"status": "sealed", "sealed_instances": sealed}))
    }
}

async fn metrics_text(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(metrics::render(&state.registry))
}

async fn not_found(_req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found("the requested resource does not exist"))
}

/// Turns any error response that is not already a Key Protect error body
/// (actix's own 404/405/413/400) into one.
fn key_protect_errors<B>(res: ServiceResponse<B>) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let already = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with(ERROR_MEDIA_TYPE));
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

/// Registers every route on `cfg`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/health", web::get().to(health))
        .route("/ready", web::get().to(ready))
        .route("/metrics", web::get().to(metrics_text))
        .service(
            web::scope("/api/v2")
                .configure(ledger_api::routes)
                .configure(admin_api::routes)
                .service(
                    web::resource("/keys")
                        .route(web::head().to(keys::head))
                        .route(web::get().to(keys::list))
                        .route(web::post().to(keys::create)),
                )
                .route(
                    "/keys_with_policy_overrides",
                    web::post().to(keys::create_with_policy_overrides),
                )
                .route("/keys/registrations", web::get().to(registrations::all))
                .route(
                    "/keys/{id}/registrations",
                    web::get().to(registrations::of_key),
                )
                .service(
                    web::resource("/keys/{id}/policies")
                        .route(web::get().to(policies::get_key_policies))
                        .route(web::put().to(policies::put_key_policies)),
                )
                .service(
                    web::resource("/keys/{id}/aliases/{alias}")
                        .route(web::post().to(rings_aliases::create_alias))
                        .route(web::delete().to(rings_aliases::delete_alias)),
                )
                .service(
                    web::resource("/instance/policies")
                        .route(web::get().to(policies::get_instance_policies))
                        .route(web::put().to(policies::put_instance_policies)),
                )
                .route(
                    "/instance/allowed_ip_port",
                    web::get().to(policies::allowed_ip_port),
                )
                .service(
                    web::resource("/import_token")
                        .route(web::get().to(import_tokens::get))
                        .route(web::post().to(import_tokens::create)),
                )
                .route("/key_rings", web::get().to(rings_aliases::list_key_rings))
                .service(
                    web::resource("/key_rings/{id}")
                        .route(web::post().to(rings_aliases::create_key_ring))
                        .route(web::delete().to(rings_aliases::delete_key_ring)),
                )
                .route("/keys/{id}/metadata", web::get().to(keys::metadata))
                .route("/keys/{id}/versions", web::get().to(keys::versions))
                .route("/keys/{id}/purge", web::delete().to(keys::purge))
                .route("/keys/{id}/restore", web::post().to(keys::restore))
                .route("/keys/{id}/actions/{action}", web::post().to(keys::action))
                .service(
                    web::resource("/keys/{id}")
                        .route(web::get().to(keys::get))
                        .route(web::post().to(keys::action_query))
                        .route(web::patch().to(rings_aliases::patch_key))
                        .route(web::delete().to(keys::delete)),
                ),
        );
}

/// Builds the application (also used by in-process tests).
pub fn app(
    state: web::Data<AppState>,
    body_limit: usize,
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
        .app_data(web::PayloadConfig::new(body_limit))
        .wrap(ErrorHandlers::new().default_handler(key_protect_errors))
        .wrap(from_fn(metrics::observe))
        .wrap(from_fn(access_log::log_requests))
        .configure(routes)
        .default_service(web::to(not_found))
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
    let limit = config.body_limit_bytes;
    let mut server = HttpServer::new(move || app(state.clone(), limit))
        .shutdown_timeout(30)
        .backlog(1024);
    if config.workers > 0 {
        server = server.workers(config.workers);
    }
    let server = match tls {
        Some(tls) => server.bind_rustls_0_23(&config.listen, tls),
        None => server.bind(&config.listen),
    }
    .map_err(|e| format!("{}: {e}", config.listen))?;
    let scheme = if config.plain_http { "http" } else { "https" };
    let addrs = server.addrs();
    let url = addrs
        .first()
        .map(|a| format!("{scheme}://{a}"))
        .unwrap_or_default();
    if config.dev {
        dev::set_url(&config.data_dir, &url)?;
        eprintln!("keyledger: {}", dev::WARNING);
        eprintln!(
            "keyledger: dev credentials in {}",
            dev::credentials_path(&config.data_dir).display()
        );
    }
    eprintln!(
        "keyledger: serving {} instance(s) on {url}",
        registry.names().len()
    );
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let scheduler = scheduler::spawn(
        registry.clone(),
        std::time::Duration::from_secs(config.scheduler_interval_secs.max(1)),
        stop.clone(),
    )
    .map_err(|e| format!("scheduler: {e}"))?;
    let result = actix_web::rt::System::new().block_on(server.run());
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = scheduler.join();
    registry.shutdown();
    result.map_err(|e| e.to_string())
}
