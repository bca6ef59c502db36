//! Key Protect error bodies. Every refusal the API returns has Key
//! Protect's shape ([`ErrorBody`]): `{"metadata":{"collectionTotal":1,
//! "collectionType":"application/vnd.ibm.kms.error+json"},"resources":
//! [{"errorMsg":…,"reasons":[{"code":…,"message":…,"moreInfo":…,"status":…}]}]}`
//! with media type `application/vnd.ibm.kms.error+json`.
//!
//! The one mapping from the domain's reason codes ([`Reason`]) to HTTP
//! statuses lives here ([`http_status`]); the Key Protect code of a body is
//! the reason's recorded name ([`Reason::code`]). Statuses come from
//! reasons, never from message text; 5xx bodies say nothing internal.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

use super::model::{ERROR_MEDIA, ErrorBody, ErrorReason, ErrorResource, answer_bytes};
use keyledger_core::reason::Reason;
use keyledger_kms::hsm::HsmError;
use keyledger_kms::material::MaterialError;
use keyledger_kms::service::KeyError;
use keyledger_ledger::writer::WriteError;

pub const ERROR_MEDIA_TYPE: &str = ERROR_MEDIA;
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
        ApiError::from_reason(
            Reason::RoleNotAllowed,
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
    pub fn body(&self) -> ErrorBody {
        let error_msg = StatusCode::from_u16(self.status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("Internal Server Error");
        ErrorBody::of(ErrorResource {
            error_msg: format!("{error_msg}: {}", self.message),
            reasons: vec![ErrorReason {
                code: self.code,
                message: self.message.clone(),
                status: self.status,
                more_info: MORE_INFO,
            }],
        })
    }

    /// The bytes of [`body`](Self::body), as every answer is written
    /// ([`answer_bytes`]).
    pub fn body_bytes(&self) -> Vec<u8> {
        // An error body always serialises (strings and numbers only).
        answer_bytes(&self.body()).unwrap_or_default()
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
            .body(self.body_bytes())
    }
}

/// The HTTP status Key Protect answers a reason with.
pub fn http_status(reason: Reason) -> u16 {
    use Reason as R;
    match reason {
        R::KeyExpired
        | R::RestoreExpired
        | R::RootKeyRequired
        | R::InvalidField
        | R::PayloadRequired
        | R::ImportedKeyRequired
        | R::NotExtractable
        | R::AliasQuotaReached
        | R::NonceIvMismatch
        | R::WrongNonce
        | R::InvalidRequest
        | R::InvalidQuery
        | R::CommandInvalid
        | R::BadKeyPart => 400,
        R::Unauthenticated => 401,
        R::CommandRefused | R::CreateImportForbidden | R::RoleNotAllowed => 403,
        R::KeyNotFound
        | R::KeyRingNotFound
        | R::AliasNotFound
        | R::NotFound
        | R::CommandTargetNotFound => 404,
        R::InvalidState
        | R::TooEarly
        | R::RotationTooSoon
        | R::NotDualAuth
        | R::AuthorizationsNotMet
        | R::KeyRingExists
        | R::KeyRingNotEmpty
        | R::AliasNotUnique
        | R::ImportTokenExpired
        | R::CommandConflict
        | R::Ceremony
        | R::DuplicateKeyPart => 409,
        R::KeyDeleted => 410,
        R::KeyNotActive | R::UnprocessableCiphertext => 422,
        R::ImportTokenBroken | R::Internal => 500,
        R::Sealed | R::LedgerUnavailable => 503,
    }
}

impl ApiError {
    /// The error body of a domain reason with the message a client may
    /// see. A 5xx other than 503 (sealed) says nothing of the reason.
    pub fn from_reason(reason: Reason, message: impl Into<String>) -> Self {
        let status = http_status(reason);
        if status >= 500 && status != 503 {
            return ApiError::internal();
        }
        ApiError::new(status, reason.code(), message)
    }
}

/// The message a client may see of a key error: the error's own, except
/// for input an HSM backend refused, whose wording is the backend's
/// internals.
fn public_message(e: &KeyError) -> String {
    match e {
        KeyError::Hsm(HsmError::Invalid(_)) => {
            "Invalid body data was passed: the key material or data in the request cannot be used"
                .into()
        }
        // The cause (a database error, a path) is the operator's business.
        KeyError::Write(WriteError::Storage(_) | WriteError::Stale | WriteError::Closed)
        | KeyError::Material(MaterialError::Unavailable(_)) => {
            "The audit log cannot be written right now, so nothing was done; retry later".into()
        }
        other => other.to_string(),
    }
}

impl From<KeyError> for ApiError {
    fn from(e: KeyError) -> Self {
        ApiError::from_reason(e.reason(), public_message(&e))
    }
}

impl From<keyledger_core::keys::projection::QueryError> for ApiError {
    fn from(e: keyledger_core::keys::projection::QueryError) -> Self {
        ApiError::from_reason(e.reason(), e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_key_protect_shape() {
        let e = ApiError::new(404, "KEY_NOT_FOUND_ERR", "Key does not exist");
        let b = e.body();
        assert_eq!(b.metadata.collection_total, 1);
        assert_eq!(b.resources[0].reasons[0].code, "KEY_NOT_FOUND_ERR");
        assert_eq!(b.resources[0].reasons[0].status, 404);
        assert_eq!(b.resources[0].error_msg, "Not Found: Key does not exist");
    }

    /// The exact bytes (as they were when the body was built with `json!`):
    /// members sorted by name, no `totalCount`.
    #[test]
    fn body_bytes_are_key_protects() {
        let e = ApiError::new(409, "KEY_RING_CONFLICT_ERR", "key ring \"r\" exists");
        assert_eq!(
            String::from_utf8(e.body_bytes()).expect("utf8"),
            r#"{"metadata":{"collectionTotal":1,"collectionType":"application/vnd.ibm.kms.error+json"},"resources":[{"errorMsg":"Conflict: key ring \"r\" exists","reasons":[{"code":"KEY_RING_CONFLICT_ERR","message":"key ring \"r\" exists","moreInfo":"https://cloud.ibm.com/apidocs/key-protect","status":409}]}]}"#
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
            assert_eq!(b.resources[0].error_msg, format!("{phrase}: why"));
        }
    }

    /// The whole reason table as Key Protect answers it (these pairs were
    /// each error type's `http_status`/`kp_code` before the mapping moved
    /// here).
    #[test]
    fn every_reason_has_its_key_protect_status_and_code() {
        use Reason as R;
        let table = [
            (R::KeyNotFound, 404, "KEY_NOT_FOUND_ERR"),
            (R::InvalidState, 409, "KEY_ACTION_INVALID_STATE_ERR"),
            (R::KeyExpired, 400, "KEY_EXPIRED_ERR"),
            (R::KeyDeleted, 410, "KEY_DELETED_ERR"),
            (R::KeyNotActive, 422, "KEY_INVALID_STATE_ERR"),
            (R::RestoreExpired, 400, "KEY_RESTORE_EXPIRED"),
            (R::TooEarly, 409, "REQ_TOO_EARLY_ERR"),
            (R::RotationTooSoon, 409, "KEY_ROTATION_NOT_PERMITTED"),
            (R::NotDualAuth, 409, "NOT_DUAL_AUTH_ERR"),
            (R::AuthorizationsNotMet, 409, "AUTHORIZATIONS_NOT_MET"),
            (R::RootKeyRequired, 400, "KEY_ROOT_REQ_ERR"),
            (R::InvalidField, 400, "INVALID_FIELD_ERR"),
            (R::PayloadRequired, 400, "KEY_PAYLOAD_REQ_ERR"),
            (R::ImportedKeyRequired, 400, "KEY_IMPT_REQ_ERR"),
            (R::NotExtractable, 400, "KEY_PAYLOAD_NOT_RETRIEVABLE"),
            (
                R::UnprocessableCiphertext,
                422,
                "UNPROCESSABLE_CIPHERTEXT_ERR",
            ),
            (
                R::CreateImportForbidden,
                403,
                "KEY_CREATE_IMPORT_ACCESS_ERR",
            ),
            (R::KeyRingNotFound, 404, "KEY_RING_NOT_FOUND_ERR"),
            (R::KeyRingExists, 409, "KEY_RING_CONFLICT_ERR"),
            (R::KeyRingNotEmpty, 409, "KEY_RING_NOT_EMPTY_ERR"),
            (R::AliasNotFound, 404, "KEY_ALIAS_NOT_FOUND_ERR"),
            (R::AliasNotUnique, 409, "KEY_ALIAS_NOT_UNIQUE_ERR"),
            (R::AliasQuotaReached, 400, "KEY_ALIAS_QUOTA_ERR"),
            (R::ImportTokenExpired, 409, "IMPORT_TOKEN_EXPIRED_ERR"),
            (R::NonceIvMismatch, 400, "INCORRECT_NONCE_IV_ERR"),
            (R::WrongNonce, 400, "INCORRECT_NONCE_ERR"),
            (R::ImportTokenBroken, 500, "INTERNAL_SERVER_ERR"),
            (R::NotFound, 404, "NOT_FOUND_ERR"),
            (R::InvalidRequest, 400, "BAD_BODY_ERR"),
            (R::InvalidQuery, 400, "INVALID_QUERY_PARAM_ERR"),
            (R::Unauthenticated, 401, "UNAUTHORIZED_ERR"),
            (R::CommandRefused, 403, "UNAUTHORIZED_ERR"),
            (R::CommandInvalid, 400, "UNAUTHORIZED_ERR"),
            (R::CommandConflict, 409, "UNAUTHORIZED_ERR"),
            (R::CommandTargetNotFound, 404, "UNAUTHORIZED_ERR"),
            (R::RoleNotAllowed, 403, "FORBIDDEN_ERR"),
            (R::Sealed, 503, "INSTANCE_SEALED_ERR"),
            (R::Ceremony, 409, "MASTER_KEY_CEREMONY_ERR"),
            (R::DuplicateKeyPart, 409, "DUPLICATE_KEY_PART_ERR"),
            (R::BadKeyPart, 400, "BAD_KEY_PART_ERR"),
            (R::Internal, 500, "INTERNAL_SERVER_ERROR"),
            (R::LedgerUnavailable, 503, "LEDGER_UNAVAILABLE_ERR"),
        ];
        for (reason, status, code) in table {
            assert_eq!(
                (http_status(reason), reason.code()),
                (status, code),
                "{reason:?}"
            );
            let e = ApiError::from_reason(reason, "why");
            if status >= 500 && status != 503 {
                assert_eq!(e, ApiError::internal());
            } else {
                assert_eq!(
                    (e.status, e.code, e.message.as_str()),
                    (status, code, "why")
                );
            }
        }
    }

    #[test]
    fn hsm_input_errors_are_client_errors_in_our_words() {
        let e: ApiError = KeyError::from(keyledger_kms::hsm::HsmError::Invalid(
            "key material is not an AES-256 key",
        ))
        .into();
        assert_eq!((e.status, e.code), (400, "BAD_BODY_ERR"));
        assert!(!e.message.contains("AES-256"), "{}", e.message);
        assert!(!e.message.contains("HSM: invalid input"), "{}", e.message);
    }

    #[test]
    fn internal_errors_say_nothing_internal() {
        let e: ApiError = KeyError::Write(WriteError::Storage(
            "/var/lib/secret/path: disk full".into(),
        ))
        .into();
        assert_eq!((e.status, e.code), (503, "LEDGER_UNAVAILABLE_ERR"));
        assert!(!e.message.contains("/var/lib"), "{}", e.message);
        let e: ApiError = KeyError::Write(WriteError::Signing("pkcs11 slot 3".into())).into();
        assert_eq!(e, ApiError::internal());
    }

    /// The key-material store's database down (a key created while
    /// PostgreSQL fails over) is the same retryable 503 as the log's, in
    /// our words; a broken material store stays a 500 that says nothing.
    #[test]
    fn an_unavailable_material_store_is_a_503_like_the_log() {
        let e: ApiError = KeyError::Material(MaterialError::Unavailable(
            "postgres connection pool: timed out waiting for connection to 10.0.0.7".into(),
        ))
        .into();
        assert_eq!((e.status, e.code), (503, "LEDGER_UNAVAILABLE_ERR"));
        assert!(!e.message.contains("10.0.0.7"), "{}", e.message);
        let e: ApiError =
            KeyError::Material(MaterialError::Backend("field too large".into())).into();
        assert_eq!(e, ApiError::internal());
    }
}
