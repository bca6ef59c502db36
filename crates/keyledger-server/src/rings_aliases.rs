//! Key rings, aliases and moving keys: `GET /key_rings`, `POST|DELETE
//! /key_rings/{id}`, `POST|DELETE /keys/{id}/aliases/{alias}` and `PATCH
//! /keys/{id}` (body `{"keyRingID": …}`).

use std::collections::HashMap;

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::auth::{Authorized, actions};
use super::errors::ApiError;
use super::model::{KeyAlias, KeyAliasCollection, KeyCollection, KeyRing, KeyRingCollection};
use super::registry::AppState;
use super::resources::{date, key_resource};
use super::wire::{blocking, correlation, json_response, parse_body, receipt};
use keyledger_core::keys::projection::DEFAULT_KEY_RING;

fn number(q: &HashMap<String, String>, p: &str, default: usize) -> Result<usize, ApiError> {
    q.get(p)
        .map(|v| v.parse::<usize>())
        .transpose()
        .map_err(|_| {
            ApiError::new(
                400,
                "INVALID_QUERY_PARAM_ERR",
                format!("{p} must be a number"),
            )
        })
        .map(|v| v.unwrap_or(default))
}

/// `GET /api/v2/key_rings[?limit&offset&totalCount]`
#[utoipa::path(
    get,
    path = "/api/v2/key_rings",
    tag = "key rings and aliases",
    operation_id = "listKeyRings",
    description = "Role: reader. The key rings, `default` first (`limit` defaults to 100).",
    params(super::model::InstanceHeader, super::model::Paging),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of key rings.", body = super::model::KeyRingCollection, content_type = "application/vnd.ibm.kms.key_ring+json"),
        (status = 400, response = super::model::BadRequest),
        (status = 401, response = super::model::Unauthorized),
        (status = 403, response = super::model::Forbidden),
    )
)]
pub async fn list_key_rings(
    caller: Authorized<actions::ListKeyRings>,
    q: web::Query<HashMap<String, String>>,
) -> Result<HttpResponse, ApiError> {
    let limit = number(&q, "limit", 100)?;
    let offset = number(&q, "offset", 0)?;
    let mut rings: Vec<String> = caller
        .service
        .with_projections(|p| p.keys.key_rings.iter().cloned().collect());
    rings.insert(0, DEFAULT_KEY_RING.to_string());
    let total = rings.len();
    let resources = rings
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(|id| KeyRing { id })
        .collect();
    let mut body = KeyRingCollection::new(resources);
    if q.get("totalCount").is_some_and(|v| v == "true") {
        body = body.with_total_count(total);
    }
    let mut resp = json_response(200, KeyRingCollection::MEDIA, &body);
    correlation(&mut resp, &caller);
    Ok(resp)
}

/// `POST /api/v2/key_rings/{id}`: 201, no body.
#[utoipa::path(
    post,
    path = "/api/v2/key_rings/{id}",
    tag = "key rings and aliases",
    operation_id = "createKeyRing",
    description = "Role: manager. Creates a key ring; no body in or out.",
    params(super::model::InstanceHeader, super::model::KeyRingId),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created."),
        (status = 400, response = super::model::BadRequest),
        (status = 401, response = super::model::Unauthorized),
        (status = 403, response = super::model::Forbidden),
        (status = 404, response = super::model::NotFound),
        (status = 409, response = super::model::Conflict),
        (status = 500, response = super::model::InternalError),
    )
)]
pub async fn create_key_ring(
    caller: Authorized<actions::CreateKeyRing>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let c = caller.clone();
    let id = id.into_inner();
    let r = blocking(move || {
        c.service
            .create_key_ring(&c.actor, &c.correlation_id, &id)
            .map_err(ApiError::from)
    })
    .await?;
    let mut resp = HttpResponse::Created().finish();
    receipt(&mut resp, &r);
    correlation(&mut resp, &caller);
    Ok(resp)
}

/// `DELETE /api/v2/key_rings/{id}[?force=true]`: 204.
#[utoipa::path(
    delete,
    path = "/api/v2/key_rings/{id}",
    tag = "key rings and aliases",
    operation_id = "deleteKeyRing",
    description = "Role: manager. Deletes an empty key ring; with `force=true` a ring holding only destroyed keys (they move to `default`).",
    params(super::model::InstanceHeader, super::model::KeyRingId, ("force" = Option<bool>, Query, description = "Move destroyed keys to `default` first.")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted."),
        (status = 400, response = super::model::BadRequest),
        (status = 401, response = super::model::Unauthorized),
        (status = 403, response = super::model::Forbidden),
        (status = 404, response = super::model::NotFound),
        (status = 409, response = super::model::Conflict),
        (status = 500, response = super::model::InternalError),
    )
)]
pub async fn delete_key_ring(
    caller: Authorized<actions::DeleteKeyRing>,
    id: web::Path<String>,
    q: web::Query<HashMap<String, String>>,
) -> Result<HttpResponse, ApiError> {
    let force = q.get("force").is_some_and(|v| v == "true");
    let c = caller.clone();
    let id = id.into_inner();
    let r = blocking(move || {
        c.service
            .delete_key_ring(&c.actor, &c.correlation_id, &id, force)
            .map_err(ApiError::from)
    })
    .await?;
    let mut resp = HttpResponse::NoContent().finish();
    receipt(&mut resp, &r);
    correlation(&mut resp, &caller);
    Ok(resp)
}

/// `PATCH /keys/{id}`: the key ring to move the key to.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct KeyPatch {
    #[serde(rename = "keyRingID")]
    #[schema(pattern = r"^[A-Za-z0-9-]{2,100}$")]
    key_ring_id: String,
}

/// `PATCH /api/v2/keys/{id}`: moves the key to another key ring. A given
/// `x-kms-key-ring` must name the key's current ring.
#[utoipa::path(
    patch,
    path = "/api/v2/keys/{id}",
    tag = "key rings and aliases",
    operation_id = "patchKey",
    description = "Role: manager. Moves the key to another key ring. A given `x-kms-key-ring` must name the key's current ring (else 404 `KEY_NOT_FOUND_ERR`).",
    params(super::model::InstanceHeader, super::model::KeyId, super::model::KeyRingHeader),
    request_body(
        content(
            (KeyPatch = "application/vnd.ibm.kms.key+json"),
            (KeyPatch = "application/json"),
        ),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The moved key.", body = super::model::KeyCollection, content_type = "application/vnd.ibm.kms.key+json"),
        (status = 400, response = super::model::BadRequest),
        (status = 401, response = super::model::Unauthorized),
        (status = 403, response = super::model::Forbidden),
        (status = 404, response = super::model::NotFound),
        (status = 409, response = super::model::Conflict),
        (status = 410, response = super::model::Gone),
        (status = 413, response = super::model::PayloadTooLarge),
        (status = 415, response = super::model::UnsupportedMediaType),
        (status = 422, response = super::model::Unprocessable),
        (status = 500, response = super::model::InternalError),
    )
)]
pub async fn patch_key(
    caller: Authorized<actions::MoveKey>,
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let patch: KeyPatch = parse_body(&req, &body)?;
    let key = caller.service.key(&id).map_err(ApiError::from)?;
    if let Some(ring) = super::wire::key_ring(&req)
        && ring != key.key_ring_id
    {
        return Err(ApiError::new(
            404,
            "KEY_NOT_FOUND_ERR",
            "the key is not in the key ring named by x-kms-key-ring",
        ));
    }
    let c = caller.clone();
    let (key, r) = blocking(move || {
        c.service
            .move_key(&c.actor, &c.correlation_id, &key.id, &patch.key_ring_id)
            .map_err(ApiError::from)
    })
    .await?;
    let resource = key_resource(caller.service.instance(), &key, (state.clock)());
    let mut resp = json_response(
        200,
        KeyCollection::MEDIA,
        &KeyCollection::new(vec![resource]),
    );
    receipt(&mut resp, &r);
    correlation(&mut resp, &caller);
    Ok(resp)
}

/// `POST /api/v2/keys/{id}/aliases/{alias}`: 201 with the alias.
#[utoipa::path(
    post,
    path = "/api/v2/keys/{id}/aliases/{alias}",
    tag = "key rings and aliases",
    operation_id = "createKeyAlias",
    description = "Role: writer. Adds an alias to the key (at most 5 per key, unique in the instance).",
    params(super::model::InstanceHeader, super::model::KeyId, super::model::AliasName),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The alias.", body = super::model::KeyAliasCollection, content_type = "application/vnd.ibm.kms.key_alias+json"),
        (status = 400, response = super::model::BadRequest),
        (status = 401, response = super::model::Unauthorized),
        (status = 403, response = super::model::Forbidden),
        (status = 404, response = super::model::NotFound),
        (status = 409, response = super::model::Conflict),
        (status = 410, response = super::model::Gone),
        (status = 422, response = super::model::Unprocessable),
        (status = 500, response = super::model::InternalError),
    )
)]
pub async fn create_alias(
    caller: Authorized<actions::CreateAlias>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, alias) = path.into_inner();
    let c = caller.clone();
    let name = alias.clone();
    let (key, r) = blocking(move || {
        c.service
            .create_alias(&c.actor, &c.correlation_id, &id, &name)
            .map_err(ApiError::from)
    })
    .await?;
    let resource = KeyAlias {
        key_id: key.id,
        alias,
        creation_date: date(&key.last_update_date),
        created_by: caller.actor.principal.clone(),
    };
    let mut resp = json_response(
        201,
        KeyAliasCollection::MEDIA,
        &KeyAliasCollection::new(vec![resource]),
    );
    receipt(&mut resp, &r);
    correlation(&mut resp, &caller);
    Ok(resp)
}

/// `DELETE /api/v2/keys/{id}/aliases/{alias}`: 204.
#[utoipa::path(
    delete,
    path = "/api/v2/keys/{id}/aliases/{alias}",
    tag = "key rings and aliases",
    operation_id = "deleteKeyAlias",
    description = "Role: writer. Removes an alias of the key.",
    params(super::model::InstanceHeader, super::model::KeyId, super::model::AliasName),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Removed."),
        (status = 400, response = super::model::BadRequest),
        (status = 401, response = super::model::Unauthorized),
        (status = 403, response = super::model::Forbidden),
        (status = 404, response = super::model::NotFound),
        (status = 409, response = super::model::Conflict),
        (status = 410, response = super::model::Gone),
        (status = 422, response = super::model::Unprocessable),
        (status = 500, response = super::model::InternalError),
    )
)]
pub async fn delete_alias(
    caller: Authorized<actions::DeleteAlias>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, alias) = path.into_inner();
    let c = caller.clone();
    let r = blocking(move || {
        c.service
            .delete_alias(&c.actor, &c.correlation_id, &id, &alias)
            .map_err(ApiError::from)
    })
    .await?;
    let mut resp = HttpResponse::NoContent().finish();
    receipt(&mut resp, &r);
    correlation(&mut resp, &caller);
    Ok(resp)
}
