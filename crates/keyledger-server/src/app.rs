//! The two applications: the API (every route, in matching order, with
//! the middleware that guards, measures and logs each request and turns
//! every error into a Key Protect body) and the operations listener's.

use actix_web::body::BoxBody;
use actix_web::dev::ServiceResponse;
use actix_web::middleware::{ErrorHandlerResponse, ErrorHandlers, from_fn};
use actix_web::{App, HttpRequest, HttpResponse, web};

use super::config::ServeConfig;
use super::errors::{ApiError, ERROR_MEDIA_TYPE};
use super::ops::{health, metrics_text, ops_ready, ready};
use super::registry::AppState;
use super::{
    access_log, admin_api, guard, import_tokens, keys, ledger_api, metrics, openapi, policies,
    registrations, rings_aliases,
};

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
