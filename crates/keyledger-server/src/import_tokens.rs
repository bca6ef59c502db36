//! Key Protect import tokens: `POST /import_token` creates the instance's
//! token (replacing any previous one) and answers its metadata; `GET
//! /import_token` uses one retrieval and answers the public key and nonce.
//! A key is then created from it with `POST /keys` carrying `payload`,
//! `encryptedNonce` and `iv` (see `keys.rs`).

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::auth::{Authorized, actions};
use super::errors::ApiError;
use super::model::{ImportTokenContents, ImportTokenMetadata};
use super::wire::{blocking, correlation, json_response, parse_body, receipt};
use keyledger_kms::import_token::ImportTokenRequest;

const IMPORT_TOKEN_MEDIA_TYPE: &str = "application/vnd.ibm.kms.import_token+json";

/// The import token's lifetime (seconds, 300-86400, default 600) and how
/// often it may be retrieved (1-500, default 1).
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct NewToken {
    #[schema(minimum = 300, maximum = 86400)]
    expiration: Option<u32>,
    #[schema(minimum = 1, maximum = 500)]
    max_allowed_retrievals: Option<u32>,
}

/// `POST /api/v2/import_token`
#[utoipa::path(
    post,
    path = "/api/v2/import_token",
    tag = "import tokens",
    operation_id = "postImportToken",
    description = "Role: writer. Creates the instance's import token, replacing any previous one.",
    params(super::model::InstanceHeader),
    request_body(
        description = "May be omitted (an empty body): the defaults.",
        content(
            (Option<NewToken> = "application/vnd.ibm.kms.import_token+json"),
            (Option<NewToken> = "application/json"),
        ),
    ),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The token's metadata.", body = super::model::ImportTokenMetadata, content_type = "application/vnd.ibm.kms.import_token+json"),
        (status = 400, response = super::model::BadRequest),
        (status = 401, response = super::model::Unauthorized),
        (status = 403, response = super::model::Forbidden),
        (status = 413, response = super::model::PayloadTooLarge),
        (status = 415, response = super::model::UnsupportedMediaType),
        (status = 500, response = super::model::InternalError),
        (status = 503, response = super::model::Unavailable),
    )
)]
pub async fn create(
    caller: Authorized<actions::CreateImportToken>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let b: NewToken = if body.is_empty() {
        NewToken::default()
    } else {
        parse_body(&req, &body)?
    };
    let request = ImportTokenRequest {
        expiration_secs: b.expiration,
        max_retrievals: b.max_allowed_retrievals,
    };
    let c = caller.clone();
    let (metadata, r) = blocking(move || {
        c.service
            .create_import_token(&c.actor, &c.correlation_id, &request)
            .map_err(ApiError::from)
    })
    .await?;
    let out = ImportTokenMetadata {
        creation_date: metadata.creation_date,
        expiration_date: metadata.expiration_date,
        max_allowed_retrievals: metadata.max_allowed_retrievals,
        remaining_retrievals: metadata.remaining_retrievals,
    };
    let mut resp = json_response(201, IMPORT_TOKEN_MEDIA_TYPE, &out);
    receipt(&mut resp, &r);
    correlation(&mut resp, &caller);
    Ok(resp)
}

/// `GET /api/v2/import_token`
#[utoipa::path(
    get,
    path = "/api/v2/import_token",
    tag = "import tokens",
    operation_id = "getImportToken",
    description = "Role: writer. Uses one retrieval of the token: its public key and nonce.",
    params(super::model::InstanceHeader),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The token.", body = super::model::ImportTokenContents, content_type = "application/vnd.ibm.kms.import_token+json"),
        (status = 400, response = super::model::BadRequest),
        (status = 401, response = super::model::Unauthorized),
        (status = 403, response = super::model::Forbidden),
        (status = 404, response = super::model::NotFound),
        (status = 409, response = super::model::Conflict),
        (status = 500, response = super::model::InternalError),
        (status = 503, response = super::model::Unavailable),
    )
)]
pub async fn get(caller: Authorized<actions::ReadImportToken>) -> Result<HttpResponse, ApiError> {
    let c = caller.clone();
    let (contents, r) = blocking(move || {
        c.service
            .get_import_token(&c.actor, &c.correlation_id)
            .map_err(ApiError::from)
    })
    .await?;
    let m = contents.metadata;
    let out = ImportTokenContents {
        creation_date: m.creation_date,
        expiration_date: m.expiration_date,
        max_allowed_retrievals: m.max_allowed_retrievals,
        remaining_retrievals: m.remaining_retrievals,
        payload: contents.payload,
        nonce: contents.nonce,
    };
    let mut resp = json_response(200, IMPORT_TOKEN_MEDIA_TYPE, &out);
    receipt(&mut resp, &r);
    correlation(&mut resp, &caller);
    Ok(resp)
}
