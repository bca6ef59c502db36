//! Key Protect error bodies. Every refusal the API returns has Key
//! Protect's shape: `{"metadata":{"collectionType":
//! "application/vnd.ibm.kms.error+json","collectionTotal":1},"resources":
//! [{"errorMsg":…,"reasons":[{"code":…,"message":…,"status":…,"moreInfo":…}]}]}`
//! with media type `application/vnd.ibm.kms.error+json`. Statuses come from
//! error variants, never from message text; 5xx bodies say nothing internal.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

use crate::keys::service::KeyError;

pub const ERROR_MEDIA_TYPE: &str = "application/vnd.ibm.kms.error+json";
const MORE_INFO: &str = "https://cloud.ibm.com/apidocs/key-protect";

/// An API error: HTTP status, Key Protect reason code, message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn unauthorized() -> Self {
        ApiError::new(
            401,
            "UNAUTHORIZED_ERR",
            "The user does not have access to the specified resource",
        )
    }

    pub fn forbidden() -> Self {
        ApiError::new(
            403,
            "FORBIDDEN_ERR",
            "The caller's role does not allow this action",
        )
    }

    pub fn bad_body(message: impl Into<String>) -> Self {
        ApiError::new(400, "BAD_BODY_ERR", message)
    }

    pub fn invalid_header(message: impl Into<String>) -> Self {
        ApiError::new(400, "INVALID_HEADER_ERR", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(404, "NOT_FOUND_ERR", message)
    }

    pub fn internal() -> Self {
        ApiError::new(
            500,
            "INTERNAL_SERVER_ERROR",
            "The service could not complete the request",
        )
    }

    /// The Key Protect error body; `errorMsg` starts with the status's
    /// reason phrase (a 410 is "Gone: ...", not "Internal Server Error").
    pub fn body(&self) -> serde_json::Value {
        let error_msg = StatusCode::from_u16(self.status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("Internal Server Error");
        json!({
            "metadata": {"collectionType": ERROR_MEDIA_TYPE, "collectionTotal": 1},
            "resources": [{
                "errorMsg": format!("{error_msg}: {}", self.message),
                "reasons": [{
                    "code": self.code,
                    "message": self.message,
                    "status": self.status,
                    "moreInfo": MORE_INFO,
                }],
            }],
        })
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code, self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code())
            .content_type(ERROR_MEDIA_TYPE)
            .json(self.body())
    }
}

impl From<KeyError> for ApiError {
    fn from(e: KeyError) -> Self {
        let status = e.http_status();
        if status >= 500 && status != 503 {
            return ApiError::internal();
        }
        ApiError::new(status, e.kp_code(), e.public_message())
    }
}

impl From<crate::keys::projection::QueryError> for ApiError {
    fn from(e: crate::keys::projection::QueryError) -> Self {
        ApiError::new(e.http_status(), e.kp_code(), e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_key_protect_shape() {
        let e = ApiError::new(404, "KEY_NOT_FOUND_ERR", "Key does not exist");
        let b = e.body();
        assert_eq!(b["metadata"]["collectionTotal"], 1);
        assert_eq!(b["resources"][0]["reasons"][0]["code"], "KEY_NOT_FOUND_ERR");
        assert_eq!(b["resources"][0]["reasons"][0]["status"], 404);
        assert_eq!(
            b["resources"][0]["errorMsg"],
            "Not Found: Key does not exist"
        );
    }

    #[test]
    fn error_msg_names_every_status_the_api_answers() {
        for (status, phrase) in [
            (400, "Bad Request"),
            (401, "Unauthorized"),
            (403, "Forbidden"),
            (404, "Not Found"),
            (405, "Method Not Allowed"),
            (409, "Conflict"),
            (410, "Gone"),
            (413, "Payload Too Large"),
            (415, "Unsupported Media Type"),
            (422, "Unprocessable Entity"),
            (500, "Internal Server Error"),
            (503, "Service Unavailable"),
        ] {
            let b = ApiError::new(status, "X_ERR", "why").body();
            assert_eq!(b["resources"][0]["errorMsg"], format!("{phrase}: why"));
        }
    }

    #[test]
    fn hsm_input_errors_are_client_errors_in_our_words() {
        let e: ApiError = KeyError::from(crate::hsm::HsmError::Invalid(
            "key material is not an AES-256 key",
        ))
        .into();
        assert_eq!((e.status, e.code), (400, "BAD_BODY_ERR"));
        assert!(!e.message.contains("AES-256"), "{}", e.message);
        assert!(!e.message.contains("HSM: invalid input"), "{}", e.message);
    }

    #[test]
    fn internal_errors_say_nothing_internal() {
        let e: ApiError = KeyError::Write(crate::writer::WriteError::Storage(
            "/var/lib/secret/path: disk full".into(),
        ))
        .into();
        assert_eq!(e.status, 500);
        assert!(!e.message.contains("/var/lib"));
    }
}
