//! Structured access log: one JSON line per request on stderr.
//!
//! Each line names the method, the matched route *pattern* (never the raw
//! path or query), the status, the latency, the authenticated instance and
//! principal (credential id) and the correlation id. Bodies, headers other
//! than the correlation id, tokens and key material are never logged: the
//! line is built only from the fields below.
//!
//! The correlation id is decided here, before any handler runs (the
//! client's `correlation-id` header if it is a clean token, else a new
//! one), so the log line, the events the request makes and the response
//! header all carry the same id.

use std::io::Write;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpRequest};
use serde::Serialize;

/// The request's correlation id (set by [`log_requests`]).
#[derive(Clone)]
pub struct CorrelationId(pub String);

/// Who the request authenticated as (set by the `auth::Authorized` extractor).
#[derive(Clone)]
pub struct Authenticated {
    pub instance: String,
    pub principal: String,
}

#[derive(Serialize)]
struct Line<'a> {
    ts: String,
    level: &'static str,
    msg: &'static str,
    method: &'a str,
    route: &'a str,
    status: u16,
    latency_ms: f64,
    instance: Option<&'a str>,
    principal: Option<&'a str>,
    correlation_id: &'a str,
}

fn write_line(line: &Line<'_>) {
    if let Ok(mut bytes) = serde_json::to_vec(line) {
        bytes.push(b'\n');
        // One write per line so concurrent workers never interleave.
        let _ = std::io::stderr().lock().write_all(&bytes);
    }
}

/// Middleware: decides the correlation id, then logs the finished request.
pub async fn log_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let start = Instant::now();
    let correlation =
        client_correlation_id(req.request()).unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    req.extensions_mut()
        .insert(CorrelationId(correlation.clone()));
    let method = req.method().clone();
    let result = next.call(req).await;
    let latency_ms = start.elapsed().as_secs_f64() * 1000.0;
    let ts = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    match result {
        Ok(mut res) => {
            let route = res
                .request()
                .match_pattern()
                .unwrap_or_else(|| "unmatched".into());
            let who = res.request().extensions().get::<Authenticated>().cloned();
            write_line(&Line {
                ts,
                level: "info",
                msg: "request",
                method: method.as_str(),
                route: &route,
                status: res.status().as_u16(),
                latency_ms,
                instance: who.as_ref().map(|w| w.instance.as_str()),
                principal: who.as_ref().map(|w| w.principal.as_str()),
                correlation_id: &correlation,
            });
            let name = HeaderName::from_static("correlation-id");
            if !res.headers().contains_key(&name)
                && let Ok(v) = HeaderValue::from_str(&correlation)
            {
                res.headers_mut().insert(name, v);
            }
            Ok(res)
        }
        Err(e) => {
            write_line(&Line {
                ts,
                level: "warn",
                msg: "request",
                method: method.as_str(),
                route: "unmatched",
                status: e.as_response_error().status_code().as_u16(),
                latency_ms,
                instance: None,
                principal: None,
                correlation_id: &correlation,
            });
            Err(e)
        }
    }
}

/// The client's `correlation-id` header, if it is a clean token.
pub fn client_correlation_id(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get("correlation-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| keyledger_core::event::check_token("correlation_id", v, 128).is_ok())
        .map(str::to_string)
}

/// The correlation id of a request: the one the access log decided, else
/// the client's if it is a clean token, else a new one.
pub fn correlation_id(req: &HttpRequest) -> String {
    if let Some(id) = req.extensions().get::<CorrelationId>() {
        return id.0.clone();
    }
    client_correlation_id(req).unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}
