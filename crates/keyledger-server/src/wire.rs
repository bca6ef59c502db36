//! Request and response plumbing every handler shares: Key Protect's
//! media-type check and body parsing, the collection body, writing a typed
//! answer ([`json_response`]), response headers (correlation id, the
//! event's receipt) and running blocking key-service calls off the async
//! workers. Knows no endpoint.

use actix_web::http::header::HeaderValue;
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::auth::Caller;
use super::errors::ApiError;
use super::model::{answer_bytes, secret_answer_bytes};
use keyledger_kms::secret::SecretBytes;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Runs a blocking key-service call off the async workers.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    web::block(f).await.map_err(|_| ApiError::internal())?
}

/// Checks the media type and parses a JSON body into `T`.
pub fn parse_body<T: DeserializeOwned>(req: &HttpRequest, body: &[u8]) -> Result<T, ApiError> {
    let media = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    let json_like = media == "application/json"
        || (media.starts_with("application/vnd.ibm.kms.") && media.ends_with("+json"));
    if !json_like {
        return Err(ApiError::new(
            415,
            "BAD_BODY_ERR",
            "the request body must be application/json or application/vnd.ibm.kms.*+json",
        ));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_body(format!("the request body is not valid: {e}")))
}

/// A base64 field of a body, as secret bytes (400 naming `field` if not base64).
pub fn decode_b64(field: &str, value: &str) -> Result<SecretBytes, ApiError> {
    B64.decode(value.trim())
        .map(SecretBytes::new)
        .map_err(|_| ApiError::bad_body(format!("{field} must be base64")))
}

/// The `x-kms-key-ring` header.
pub fn key_ring(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get("x-kms-key-ring")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Whether `prefer: return=minimal` asks for no body.
pub fn prefers_minimal(req: &HttpRequest) -> bool {
    req.headers()
        .get("prefer")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("return=minimal"))
}

/// Echoes the request's correlation id in the `correlation-id` header.
pub fn correlation(resp: &mut HttpResponse, caller: &Caller) {
    if let Ok(v) = HeaderValue::from_str(&caller.correlation_id) {
        resp.headers_mut().insert(
            actix_web::http::header::HeaderName::from_static("correlation-id"),
            v,
        );
    }
}

/// Adds the receipt headers: the event's `seq` and RFC 9162 leaf hash,
/// which the client can later prove is in the log.
pub fn receipt(resp: &mut HttpResponse, r: &keyledger_ledger::writer::Receipt) {
    let headers = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&r.seq.to_string()) {
        headers.insert(
            actix_web::http::header::HeaderName::from_static("keyledger-receipt-seq"),
            v,
        );
    }
    if let Ok(v) = HeaderValue::from_str(&base16ct::lower::encode_string(&r.leaf)) {
        headers.insert(
            actix_web::http::header::HeaderName::from_static("keyledger-receipt-leaf"),
            v,
        );
    }
}

/// A JSON answer: `body` (one of the `model` shapes) with `status` and
/// media type `media`, written by [`answer_bytes`] (members sorted by name).
pub fn json_response<T: Serialize + ?Sized>(status: u16, media: &str, body: &T) -> HttpResponse {
    answered(status, media, answer_bytes(body))
}

/// [`json_response`] of a body that carries key material (`GET /keys/{id}`
/// of a standard key): the intermediate copy is wiped.
pub fn secret_json_response<T: Serialize + ?Sized>(
    status: u16,
    media: &str,
    body: &T,
) -> HttpResponse {
    answered(status, media, secret_answer_bytes(body))
}

fn answered(status: u16, media: &str, bytes: serde_json::Result<Vec<u8>>) -> HttpResponse {
    match bytes {
        Ok(bytes) => HttpResponse::build(
            actix_web::http::StatusCode::from_u16(status)
                .unwrap_or(actix_web::http::StatusCode::OK),
        )
        .content_type(media)
        .body(bytes),
        Err(_) => actix_web::ResponseError::error_response(&ApiError::internal()),
    }
}

// Key Protect's request collection: `metadata` (ignored) and `resources`.
// Undocumented on purpose: doc comments here would become descriptions in
// schemas/openapi.json.
#[allow(missing_docs)]
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CollectionBody<T> {
    #[allow(dead_code)]
    pub metadata: Option<Value>,
    pub resources: Vec<T>,
}

/// The address of the listener a request came in on (app data).
#[derive(Debug, Clone, Copy)]
pub struct LocalAddr(pub std::net::SocketAddr);
