//! Key rings, aliases and moving keys: `GET /key_rings`, `POST|DELETE
//! /key_rings/{id}`, `POST|DELETE /keys/{id}/aliases/{alias}` and `PATCH
//! /keys/{id}` (body `{"keyRingID": …}`).

use std::collections::HashMap;

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::auth::{Need, authenticate};
use super::errors::ApiError;
use super::keys::{blocking, correlation, json_response, parse_body, receipt};
use super::resources::{KEY_MEDIA_TYPE, collection, key_resource};
use crate::keys::projection::DEFAULT_KEY_RING;

const KEY_RING_MEDIA_TYPE: &str = "application/vnd.ibm.kms.key_ring+json";
const ALIAS_MEDIA_TYPE: &str = "application/vnd.ibm.kms.key_alias+json";

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
pub async fn list_key_rings(
    req: HttpRequest,
    state: web::Data<AppState>,
    q: web::Query<HashMap<String, String>>,
) -> Result<HttpResponse, ApiError> {
    let caller = authenticate(&req, &state.registry, Need::Reader, "list_key_rings").await?;
    let limit = number(&q, "limit", 100)?;
    let offset = number(&q, "offset", 0)?;
    let mut rings: Vec<String> = caller
        .service
        .with_projections(|p| p.keys.key_rings.iter().cloned().collect());
    rings.insert(0, DEFAULT_KEY_RING.to_string());
    let total = rings.len();
    let resources: Vec<Value> = rings
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(|id| json!({"id": id}))
        .collect();
    let mut body = collection(KEY_RING_MEDIA_TYPE, resources);
    if q.get("totalCount").is_some_and(|v| v == "true") {
        body["metadata"]["totalCount"] = json!(total);
    }
    let mut resp = json_response(200, KEY_RING_MEDIA_TYPE, body);
    correlation(&mut resp, &caller);
    Ok(resp)
}

/// `POST /api/v2/key_rings/{id}`: 201, no body.
pub async fn create_key_ring(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let caller = authenticate(&req, &state.registry, Need::Manager, "create_key_ring").await?;
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
pub async fn delete_key_ring(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    q: web::Query<HashMap<String, String>>,
) -> Result<HttpResponse, ApiError> {
    let caller = authenticate(&req, &state.registry, Need::Manager, "delete_key_ring").await?;
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyPatch {
    #[serde(rename = "keyRingID")]
    key_ring_id: String,
}

/// `PATCH /api/v2/keys/{id}`: moves the key to another key ring. A given
/// `x-kms-key-ring` must name the key's current ring.
pub async fn patch_key(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let caller = authenticate(&req, &state.registry, Need::Manager, "patch").await?;
    let patch: KeyPatch = parse_body(&req, &body)?;
    let key = caller.service.key(&id).map_err(ApiError::from)?;
    if let Some(ring) = super::keys::key_ring(&req)
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
        KEY_MEDIA_TYPE,
        collection(KEY_MEDIA_TYPE, vec![resource]),
    );
    receipt(&mut resp, &r);
    correlation(&mut resp, &caller);
    Ok(resp)
}

/// `POST /api/v2/keys/{id}/aliases/{alias}`: 201 with the alias.
pub async fn create_alias(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let caller = authenticate(&req, &state.registry, Need::Writer, "create_alias").await?;
    let (id, alias) = path.into_inner();
    let c = caller.clone();
    let name = alias.clone();
    let (key, r) = blocking(move || {
        c.service
            .create_alias(&c.actor, &c.correlation_id, &id, &name)
            .map_err(ApiError::from)
    })
    .await?;
    let resource = json!({
        "keyId": key.id,
        "alias": alias,
        "creationDate": key.last_update_date.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "createdBy": caller.actor.principal,
    });
    let mut resp = json_response(
        201,
        ALIAS_MEDIA_TYPE,
        collection(ALIAS_MEDIA_TYPE, vec![resource]),
    );
    receipt(&mut resp, &r);
    correlation(&mut resp, &caller);
    Ok(resp)
}

/// `DELETE /api/v2/keys/{id}/aliases/{alias}`: 204.
pub async fn delete_alias(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let caller = authenticate(&req, &state.registry, Need::Writer, "delete_alias").await?;
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
