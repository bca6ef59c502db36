//! Key Protect v2 key endpoints: create, list, head, get, metadata,
//! versions, delete, purge, restore, and the actions (wrap, unwrap, rewrap,
//! rotate, enable, disable, setKeyForDeletion, unsetKeyForDeletion), also in
//! their deprecated `POST /keys/{id}?action=…` form. Handlers are thin: they
//! authenticate, parse, call the key service on the blocking pool (where the
//! event is made durable before anything is answered) and shape the result.

use std::collections::HashMap;

use actix_web::http::header::HeaderValue;
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use serde::Deserialize;

use super::auth::{Authorized, Caller, actions};
use super::errors::ApiError;
use super::model::requests::{RestoreBody, RestoreKey, RotateBody, UnwrapBody, WrapBody};
use super::model::{
    CreatedKey, CreatedKeyCollection, KeyCollection, KeyMediaType, KeyMinimal,
    KeyVersionCollection, RewrapResult, UnwrapResult, VersionRef, WrapResult,
};
use super::registry::AppState;
use super::resources::{crn, key_resource, version_info};
use super::wire::{
    CollectionBody, blocking, correlation, decode_b64, json_response, key_ring, parse_body,
    prefers_minimal, receipt, secret_json_response,
};
use keyledger_core::keys::list_filter::KeyFilter;
use keyledger_core::keys::projection::{KeyQuery, Search, SortKey};
use keyledger_core::keys::state::KeyState;
use keyledger_kms::service::{
    CreateKey, Deferred, Gated, KeyError, KeyMaterialSource, TokenImport,
};
use keyledger_ledger::writer::WriteError;
use zeroize::Zeroizing;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Runs a wrap or unwrap: when the HSM backend never waits, its work runs
/// right here and only the wait for the event's durability is awaited (no
/// thread is held while the batch commits); otherwise the whole operation
/// runs on the blocking pool. Either way nothing is answered before the
/// event is durable.
async fn deferred<T: Send + 'static>(
    caller: Caller,
    start: impl Fn(&Caller) -> Deferred<T> + Send + 'static,
) -> Result<T, ApiError> {
    // A use decided just before another server's record changed its key
    // (several servers on one database) was refused unrecorded: start it
    // again on the state that now includes that record.
    let stale = |outcome: &Result<T, KeyError>, attempt: u32| {
        attempt < KEY_USE_ATTEMPTS && matches!(outcome, Err(KeyError::Write(WriteError::Stale)))
    };
    if caller.service.key_use_is_immediate() {
        let mut attempt = 1;
        loop {
            let outcome = start(&caller).outcome().await;
            if !stale(&outcome, attempt) {
                return outcome.map_err(ApiError::from);
            }
            attempt += 1;
        }
    } else {
        blocking(move || {
            let mut attempt = 1;
            loop {
                let outcome = start(&caller).wait();
                if !stale(&outcome, attempt) {
                    return outcome.map_err(ApiError::from);
                }
                attempt += 1;
            }
        })
        .await
    }
}

/// How often a key use is started when other servers' records keep
/// changing its key first (each start follows one such record).
const KEY_USE_ATTEMPTS: u32 = 8;

/// A key to create: generated, from `payload`, or securely imported
/// (`payload`, `encryptedNonce` and `iv` against the import token). Any
/// other field is refused (400 `BAD_BODY_ERR`), as Key Protect does.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewKey {
    #[serde(rename = "type")]
    #[allow(dead_code)]
    kind: Option<String>,
    /// 2-90 characters of letters, digits, `-`, `_`, `.`, `:` and inner spaces.
    #[schema(
        min_length = 2,
        max_length = 90,
        pattern = r"^[A-Za-z0-9_.:-](?:[A-Za-z0-9_.: -]*[A-Za-z0-9_.:-])?$"
    )]
    name: String,
    #[schema(max_length = 240)]
    description: Option<String>,
    #[serde(default)]
    extractable: bool,
    /// Key material to import, base64: an AES key of 16, 24 or 32 bytes,
    /// or (secure import) that key encrypted to the import token.
    #[schema(
        pattern = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)?$"
    )]
    payload: Option<String>,
    #[schema(format = DateTime)]
    expiration_date: Option<String>,
    /// keyledger extension: the key stays in state 0 until this date.
    #[schema(format = DateTime)]
    activation_date: Option<String>,
    /// At most 5, each as `POST /keys/{id}/aliases/{alias}` takes it: 2-90
    /// characters of letters, digits, `-` and `_`, not a key id (UUID), not
    /// `registrations`, none twice.
    #[serde(default)]
    #[schema(max_items = 5)]
    aliases: Vec<String>,
    #[serde(rename = "keyRingID")]
    #[schema(pattern = r"^[A-Za-z0-9-]{2,100}$")]
    key_ring_id: Option<String>,
    /// Secure import: the token nonce encrypted under the key (base64).
    #[schema(
        pattern = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)?$"
    )]
    encrypted_nonce: Option<String>,
    /// Secure import: the GCM IV of `encryptedNonce` (base64).
    #[schema(
        pattern = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)?$"
    )]
    iv: Option<String>,
    /// Secure import: only `RSAES_OAEP_SHA_256` (Key Protect's default).
    #[schema(pattern = "^RSAES_OAEP_SHA_256$")]
    encryption_algorithm: Option<String>,
    /// `/keys_with_policy_overrides` only.
    rotation: Option<super::policies::RotationBody>,
    /// `/keys_with_policy_overrides` only.
    dual_auth_delete: Option<super::policies::DualAuthBody>,
}

/// How a new key's material is given: generated, a payload, or a payload
/// encrypted to the instance's import token (with `encryptedNonce`, `iv`).
fn material(new: &NewKey) -> Result<KeyMaterialSource, ApiError> {
    material_of(
        &new.payload,
        &new.encrypted_nonce,
        &new.iv,
        &new.encryption_algorithm,
    )
}

/// Key material as a key resource gives it (create, restore): none, a
/// `payload`, or a secure import (`payload`, `encryptedNonce`, `iv`).
fn material_of(
    payload: &Option<String>,
    encrypted_nonce: &Option<String>,
    iv: &Option<String>,
    encryption_algorithm: &Option<String>,
) -> Result<KeyMaterialSource, ApiError> {
    if let Some(alg) = encryption_algorithm
        && alg != "RSAES_OAEP_SHA_256"
    {
        return Err(ApiError::bad_body(
            "encryptionAlgorithm must be RSAES_OAEP_SHA_256",
        ));
    }
    match (payload, encrypted_nonce, iv) {
        (None, None, None) => Ok(KeyMaterialSource::Generate),
        (Some(p), None, None) => Ok(KeyMaterialSource::Payload(decode_b64("payload", p)?)),
        (Some(p), Some(n), Some(iv)) => {
            for (field, value) in [("payload", p), ("encryptedNonce", n), ("iv", iv)] {
                decode_b64(field, value)?;
            }
            Ok(KeyMaterialSource::ImportToken(TokenImport {
                encrypted_payload: p.clone(),
                encrypted_nonce: n.clone(),
                iv: iv.clone(),
            }))
        }
        _ => Err(ApiError::bad_body(
            "a secure import needs payload, encryptedNonce and iv together",
        )),
    }
}

/// `POST /api/v2/keys`
#[utoipa::path(
    post,
    path = "/api/v2/keys",
    tag = "keys",
    operation_id = "createKey",
    description = "Role: writer. Key Protect: `resources` holds exactly one key; `payload` alone imports that material, with `encryptedNonce` and `iv` it is a secure import against the import token.",
    params(super::model::InstanceHeader, super::model::KeyRingHeader, super::model::PreferHeader),
    request_body(
        description = "A collection of one key.",
        content(
            (CollectionBody<NewKey> = "application/vnd.ibm.kms.key+json"),
            (CollectionBody<NewKey> = "application/json"),
        ),
    ),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The key (with `prefer: return=minimal`: type, id, name and crn); its `key.created` event is durable.", body = super::model::CreatedKeyCollection, content_type = "application/vnd.ibm.kms.key+json"),
        (status = 400, response = super::model::BadRequest),
        (status = 401, response = super::model::Unauthorized),
        (status = 403, response = super::model::Forbidden),
        (status = 404, response = super::model::NotFound),
        (status = 409, response = super::model::Conflict),
        (status = 413, response = super::model::PayloadTooLarge),
        (status = 415, response = super::model::UnsupportedMediaType),
        (status = 500, response = super::model::InternalError),
        (status = 503, response = super::model::Unavailable),
    )
)]
pub async fn create(
    caller: Authorized<actions::CreateKey>,
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    create_with(caller, req, state, body, false).await
}

/// `POST /api/v2/keys_with_policy_overrides`: a key created with its own
/// rotation and dual-authorisation-delete policies (each a
/// `key.policy_updated` event right after `key.created`).
#[utoipa::path(
    post,
    path = "/api/v2/keys_with_policy_overrides",
    tag = "keys",
    operation_id = "createKeyWithPolicyOverrides",
    description = "Role: writer. The key may carry `rotation` and `dualAuthDelete` policies (each a `key.policy_updated` event after `key.created`; the receipt is the last event's). While the instance policy `dualAuthDelete` is on, new keys inherit it and `dualAuthDelete: {\"enabled\": false}` is refused (409 `KEY_ACTION_INVALID_STATE_ERR`, no key). Key Protect: `resources` holds exactly one key; `payload` alone imports that material, with `encryptedNonce` and `iv` it is a secure import against the import token.",
    params(super::model::InstanceHeader, super::model::KeyRingHeader, super::model::PreferHeader),
    request_body(
        description = "A collection of one key.",
        content(
            (CollectionBody<NewKey> = "application/vnd.ibm.kms.key+json"),
            (CollectionBody<NewKey> = "application/json"),
        ),
    ),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The key (with `prefer: return=minimal`: type, id, name and crn); its `key.created` event is durable.", body = super::model::CreatedKeyCollection, content_type = "application/vnd.ibm.kms.key+json"),
        (status = 400, response = super::model::BadRequest),
        (status = 401, response = super::model::Unauthorized),
        (status = 403, response = super::model::Forbidden),
        (status = 404, response = super::model::NotFound),
        (status = 409, response = super::model::Conflict),
        (status = 413, response = super::model::PayloadTooLarge),
        (status = 415, response = super::model::UnsupportedMediaType),
        (status = 500, response = super::model::InternalError),
        (status = 503, response = super::model::Unavailable),
    )
)]
pub async fn create_with_policy_overrides(
    caller: Authorized<actions::CreateKey>,
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    create_with(caller, req, state, body, true).await
}

async fn create_with(
    caller: Authorized<actions::CreateKey>,
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
    overrides: bool,
) -> Result<HttpResponse, ApiError> {
    let parsed: CollectionBody<NewKey> = parse_body(&req, &body)?;
    let [new]: [NewKey; 1] = parsed
        .resources
        .try_into()
        .map_err(|_| ApiError::bad_body("resources must hold exactly one key"))?;
    let date = |field: &str, value: Option<&str>| {
        value
            .map(|d| {
                chrono::DateTime::parse_from_rfc3339(d)
                    .map(|t| t.with_timezone(&chrono::Utc))
                    .map_err(|_| ApiError::bad_body(format!("{field} must be an RFC 3339 time")))
            })
            .transpose()
    };
    let expiration_date = date("expirationDate", new.expiration_date.as_deref())?;
    let activation_date = date("activationDate", new.activation_date.as_deref())?;
    let material = material(&new)?;
    let inherited_dual_auth = caller
        .service
        .with_projections(|p| p.keys.instance_dual_auth_delete);
    let policies = super::policies::overrides(
        overrides,
        new.rotation.as_ref(),
        new.dual_auth_delete.as_ref(),
        inherited_dual_auth,
    )?;
    let request = CreateKey {
        name: new.name,
        description: new.description,
        extractable: new.extractable,
        key_ring_id: new.key_ring_id.or_else(|| key_ring(&req)),
        aliases: new.aliases,
        expiration_date,
        activation_date,
        material,
    };
    let minimal = prefers_minimal(&req);
    let c = caller.clone();
    let now = (state.clock)();
    let (key, r) = blocking(move || {
        let (key, mut r) = c
            .service
            .create_key(&c.actor, &c.correlation_id, request)
            .map_err(ApiError::from)?;
        for (policy, enabled, interval) in policies {
            r = c
                .service
                .set_key_policy(
                    &c.actor,
                    &c.correlation_id,
                    &key.id,
                    policy,
                    enabled,
                    interval,
                )
                .map_err(ApiError::from)?;
        }
        let key = c.service.key(&key.id).map_err(ApiError::from)?;
        Ok((key, r))
    })
    .await?;
    let instance = caller.service.instance();
    let created = if minimal {
        CreatedKey::Minimal(KeyMinimal {
            kind: KeyMediaType,
            crn: crn(instance, &key.id),
            id: key.id,
            name: key.name,
        })
    } else {
        CreatedKey::Full(Box::new(key_resource(instance, &key, now)))
    };
    let mut resp = json_response(
        201,
        CreatedKeyCollection::MEDIA,
        &CreatedKeyCollection::new(vec![created]),
    );
    receipt(&mut resp, &r);
    correlation(&mut resp, &caller);
    Ok(resp)
}

fn list_query(q: &HashMap<String, String>) -> Result<KeyQuery, ApiError> {
    let mut query = KeyQuery::default();
    let invalid = |p: &str, why: &str| {
        ApiError::new(
            400,
            "INVALID_QUERY_PARAM_ERR",
            format!("invalid query parameter {p}: {why}"),
        )
    };
    if let Some(limit) = q.get("limit") {
        let n: usize = limit
            .parse()
            .map_err(|_| invalid("limit", "not a number"))?;
        if !(1..=keyledger_core::keys::projection::MAX_LIMIT).contains(&n) {
            return Err(invalid("limit", "must be 1-5000"));
        }
        query.limit = n;
    }
    if let Some(offset) = q.get("offset") {
        query.offset = offset
            .parse()
            .map_err(|_| invalid("offset", "not a number"))?;
    }
    // IBM's SDKs send `state=` (empty) when no state is asked for.
    if let Some(states) = q.get("state").filter(|s| !s.is_empty()) {
        query.states = states
            .split(',')
            .map(|s| {
                s.trim()
                    .parse::<u8>()
                    .ok()
                    .and_then(KeyState::from_u8)
                    .ok_or_else(|| invalid("state", "must be a list of 0, 1, 2, 3, 5"))
            })
            .collect::<Result<_, _>>()?;
    }
    // Empty is "not given", as for `state`.
    if let Some(filter) = q.get("filter").filter(|f| !f.is_empty()) {
        query.filter = KeyFilter::parse(filter).map_err(|e| invalid("filter", &e.to_string()))?;
        // Key Protect: 400 when a property is in both the filter and its
        // deprecated standalone parameter.
        if query.filter.has_state() && !query.states.is_empty() {
            return Err(invalid(
                "state",
                "state is also in filter; give it in one place only",
            ));
        }
        if query.filter.has_extractable() && q.get("extractable").is_some_and(|x| !x.is_empty()) {
            return Err(invalid(
                "extractable",
                "extractable is also in filter; give it in one place only",
            ));
        }
    }
    if let Some(x) = q.get("extractable") {
        query.extractable = Some(match x.as_str() {
            "true" => true,
            "false" => false,
            _ => return Err(invalid("extractable", "must be true or false")),
        });
    }
    if let Some(s) = q.get("search") {
        query.search = Some(Search::parse(s)?);
    }
    if let Some(s) = q.get("sort") {
        query.sort = SortKey::parse_list(s)?;
    }
    Ok(query)
}

/// `GET /api/v2/keys`
#[utoipa::path(
    get,
    path = "/api/v2/keys",
    tag = "keys",
    operation_id = "getKeys",
    description = "Role: reader. Keys of the instance (or of the key ring in `x-kms-key-ring`), newest first unless `sort` says otherwise.",
    params(super::model::InstanceHeader, super::model::KeyRingHeader, super::model::KeyListQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of keys.", body = super::model::KeyCollection, content_type = "application/vnd.ibm.kms.key+json"),
        (status = 400, response = super::model::BadRequest),
        (status = 401, response = super::model::Unauthorized),
        (status = 403, response = super::model::Forbidden),
    )
)]
pub async fn list(
    caller: Authorized<actions::ListKeys>,
    req: HttpRequest,
    state: web::Data<AppState>,
    q: web::Query<HashMap<String, String>>,
) -> Result<HttpResponse, ApiError> {
    let mut query = list_query(&q)?;
    query.key_ring_id = key_ring(&req);
    let now = (state.clock)();
    let instance = caller.service.instance().to_string();
    let (resources, total) = caller.service.with_projections(|p| {
        let page = p.keys.list(&query);
        (
            page.keys
                .iter()
                .map(|k| key_resource(&instance, k, now))
                .collect::<Vec<_>>(),
            page.total,
        )
    });
    let mut body = KeyCollection::new(resources);
    if q.get("totalCount").is_some_and(|v| v == "true") {
        body = body.with_total_count(total);
    }
    let mut resp = json_response(200, KeyCollection::MEDIA, &body);
    correlation(&mut resp, &caller);
    Ok(resp)
}

/// `HEAD /api/v2/keys`: the number of keys in `Key-Total`.
#[utoipa::path(
    head,
    path = "/api/v2/keys",
    tag = "keys",
    operation_id = "getKeyCollectionMetadata",
    description = "Role: reader. How many keys match, in `Key-Total`; no body (errors too: a HEAD answer has none).",
    params(super::model::InstanceHeader, super::model::KeyRingHeader, super::model::KeyListQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The count.", headers(("key-total" = u64, description = "How many keys match (ignoring `limit` and `offset`)."))),
        (status = 400, response = super::model::BadRequest),
        (status = 401, response = super::model::Unauthorized),
        (status = 403, response = super::model::Forbidden),
    )
)]
pub async fn head(
    caller: Authorized<actions::CountKeys>,
    req: HttpRequest,
    q: web::Query<HashMap<String, String>>,
) -> Result<HttpResponse, ApiError> {
    let mut query = list_query(&q)?;
    query.key_ring_id = key_ring(&req);
    query.limit = usize::MAX;
    let total = caller
        .service
        .with_projections(|p| p.keys.list(&query).total);
    let mut resp = HttpResponse::Ok().finish();
    if let Ok(v) = HeaderValue::from_str(&total.to_string()) {
        resp.headers_mut().insert(
            actix_web::http::header::HeaderName::from_static("key-total"),
            v,
        );
    }
    correlation(&mut resp, &caller);
    Ok(resp)
}

/// `GET /api/v2/keys/{id|alias}`: the key, with the payload of a standard key.
#[utoipa::path(
    get,
    path = "/api/v2/keys/{id}",
    tag = "keys",
    operation_id = "getKey",
    description = "Role: writer. The key; a standard key that is not destroyed also carries its `payload` (reading it appends `key.payload_read`, and the answer then carries receipt headers).",
    params(super::model::InstanceHeader, super::model::KeyId),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The key.", body = super::model::KeyCollection, content_type = "application/vnd.ibm.kms.key+json"),
        (status = 400, response = super::model::BadRequest),
        (status = 401, response = super::model::Unauthorized),
        (status = 403, response = super::model::Forbidden),
        (status = 404, response = super::model::NotFound),
        (status = 409, response = super::model::Conflict),
        (status = 410, response = super::model::Gone),
        (status = 422, response = super::model::Unprocessable),
        (status = 500, response = super::model::InternalError),
        (status = 503, response = super::model::Unavailable),
    )
)]
pub async fn get(
    caller: Authorized<actions::ReadKey>,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let key = caller.service.key(&id).map_err(ApiError::from)?;
    let now = (state.clock)();
    let mut resource = key_resource(caller.service.instance(), &key, now);
    let mut receipt_of = None;
    if key.extractable && key.state != KeyState::Destroyed {
        let c = caller.clone();
        let key_id = key.id.clone();
        let (payload, r) = blocking(move || {
            c.service
                .key_payload(&c.actor, &c.correlation_id, &key_id)
                .map_err(ApiError::from)
        })
        .await?;
        resource.payload = Some(Zeroizing::new(B64.encode(payload.expose())));
        receipt_of = Some(r);
    }
    // The payload is key material: the answer's intermediate copy is wiped.
    let mut resp = secret_json_response(
        200,
        KeyCollection::MEDIA,
        &KeyCollection::new(vec![resource]),
    );
    if let Some(r) = &receipt_of {
        receipt(&mut resp, r);
    }
    correlation(&mut resp, &caller);
    Ok(resp)
}

/// `GET /api/v2/keys/{id}/metadata`
#[utoipa::path(
    get,
    path = "/api/v2/keys/{id}/metadata",
    tag = "keys",
    operation_id = "getKeyMetadata",
    description = "Role: reader. The key without its payload.",
    params(super::model::InstanceHeader, super::model::KeyId),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The key.", body = super::model::KeyCollection, content_type = "application/vnd.ibm.kms.key+json"),
        (status = 400, response = super::model::BadRequest),
        (status = 401, response = super::model::Unauthorized),
        (status = 403, response = super::model::Forbidden),
        (status = 404, response = super::model::NotFound),
    )
)]
pub async fn metadata(
    caller: Authorized<actions::ReadKeyMetadata>,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let key = caller.service.key(&id).map_err(ApiError::from)?;
    let resource = key_resource(caller.service.instance(), &key, (state.clock)());
    let mut resp = json_response(
        200,
        KeyCollection::MEDIA,
        &KeyCollection::new(vec![resource]),
    );
    correlation(&mut resp, &caller);
    Ok(resp)
}

/// `GET /api/v2/keys/{id}/versions`
#[utoipa::path(
    get,
    path = "/api/v2/keys/{id}/versions",
    tag = "keys",
    operation_id = "getKeyVersions",
    description = "Role: reader. The key's versions, newest first (`limit` defaults to 200).",
    params(super::model::InstanceHeader, super::model::KeyId, super::model::Paging),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of versions.", body = super::model::KeyVersionCollection, content_type = "application/vnd.ibm.kms.key_version+json"),
        (status = 400, response = super::model::BadRequest),
        (status = 401, response = super::model::Unauthorized),
        (status = 403, response = super::model::Forbidden),
        (status = 404, response = super::model::NotFound),
    )
)]
pub async fn versions(
    caller: Authorized<actions::ListKeyVersions>,
    id: web::Path<String>,
    q: web::Query<HashMap<String, String>>,
) -> Result<HttpResponse, ApiError> {
    let key = caller.service.key(&id).map_err(ApiError::from)?;
    let limit: usize = q
        .get("limit")
        .map(|l| l.parse())
        .transpose()
        .map_err(|_| ApiError::new(400, "INVALID_QUERY_PARAM_ERR", "limit must be a number"))?
        .unwrap_or(200);
    let offset: usize = q
        .get("offset")
        .map(|l| l.parse())
        .transpose()
        .map_err(|_| ApiError::new(400, "INVALID_QUERY_PARAM_ERR", "offset must be a number"))?
        .unwrap_or(0);
    let resources = key
        .versions
        .iter()
        .rev()
        .skip(offset)
        .take(limit)
        .map(version_info)
        .collect();
    let mut body = KeyVersionCollection::new(resources);
    if q.get("totalCount").is_some_and(|v| v == "true") {
        body = body.with_total_count(key.versions.len());
    }
    let mut resp = json_response(200, KeyVersionCollection::MEDIA, &body);
    correlation(&mut resp, &caller);
    Ok(resp)
}

/// `DELETE /api/v2/keys/{id}[?force=true]`
#[utoipa::path(
    delete,
    path = "/api/v2/keys/{id}",
    tag = "keys",
    operation_id = "deleteKey",
    description = "Role: manager. Destroys the key (state 5; restorable for 30 days). A dual-authorisation key needs `setKeyForDeletion` by another manager first.",
    params(
        super::model::InstanceHeader,
        super::model::KeyId,
        super::model::PreferHeader,
        ("force" = Option<bool>, Query, description = "`true`: delete even if the key has registrations (keyledger has none)."),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The deleted key.", body = super::model::KeyCollection, content_type = "application/vnd.ibm.kms.key+json"),
        (status = 204, description = "Deleted (`prefer: return=minimal`)."),
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
pub async fn delete(
    caller: Authorized<actions::DeleteKey>,
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    q: web::Query<HashMap<String, String>>,
) -> Result<HttpResponse, ApiError> {
    let force = q.get("force").is_some_and(|v| v == "true");
    let c = caller.clone();
    let id = id.into_inner();
    let key_id = id.clone();
    let r = blocking(move || {
        c.service
            .delete_key(&c.actor, &c.correlation_id, &key_id, force)
            .map_err(ApiError::from)
    })
    .await?;
    key_after(&req, &caller, &state, &id, &r, 200, prefers_minimal(&req)).await
}

/// The key after an action, as Key Protect answers (200/201 with the key,
/// or 204 when the client prefers `return=minimal`).
async fn key_after(
    _req: &HttpRequest,
    caller: &Caller,
    state: &AppState,
    id: &str,
    r: &keyledger_ledger::writer::Receipt,
    status: u16,
    minimal: bool,
) -> Result<HttpResponse, ApiError> {
    let mut resp = if minimal {
        HttpResponse::NoContent().finish()
    } else {
        let key = caller.service.key(id).map_err(ApiError::from)?;
        let resource = key_resource(caller.service.instance(), &key, (state.clock)());
        json_response(
            status,
            KeyCollection::MEDIA,
            &KeyCollection::new(vec![resource]),
        )
    };
    receipt(&mut resp, r);
    correlation(&mut resp, caller);
    Ok(resp)
}

/// `DELETE /api/v2/keys/{id}/purge`
#[utoipa::path(
    delete,
    path = "/api/v2/keys/{id}/purge",
    tag = "keys",
    operation_id = "purgeKey",
    description = "Role: manager. Shreds a destroyed key's material (after the 4-hour wait). A dual-authorisation key's purge waits for a second manager: 202 with the approval request id.",
    params(super::model::InstanceHeader, super::model::KeyId),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Purged: the key as it was.", body = super::model::KeyCollection, content_type = "application/vnd.ibm.kms.key+json"),
        (status = 202, description = "Purge requested; a second manager must approve.", body = super::model::KeyCollection, content_type = "application/vnd.ibm.kms.key+json", headers(
            ("keyledger-approval-request" = String, description = "The approval request's id."),
        )),
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
pub async fn purge(
    caller: Authorized<actions::PurgeKey>,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let before = caller.service.key(&id).map_err(ApiError::from)?;
    let c = caller.clone();
    let key_id = id.into_inner();
    let r = blocking(move || {
        c.service
            .purge_key(&c.actor, &c.correlation_id, &key_id)
            .map_err(ApiError::from)
    })
    .await?;
    let resource = key_resource(caller.service.instance(), &before, (state.clock)());
    // A dual-authorisation key's purge waits for a second principal
    // (keyledger's rule; Key Protect has none): 202 with the request id.
    let (status, r, request) = match r {
        Gated::Executed(r) => (200, r, None),
        Gated::Pending {
            request_id,
            receipt,
        } => (202, receipt, Some(request_id)),
    };
    let mut resp = json_response(
        status,
        KeyCollection::MEDIA,
        &KeyCollection::new(vec![resource]),
    );
    if let Some(id) = request.and_then(|id| HeaderValue::from_str(&id).ok()) {
        resp.headers_mut().insert(
            actix_web::http::header::HeaderName::from_static("keyledger-approval-request"),
            id,
        );
    }
    receipt(&mut resp, &r);
    correlation(&mut resp, &caller);
    Ok(resp)
}

/// `POST /api/v2/keys/{id}/restore`
#[utoipa::path(
    post,
    path = "/api/v2/keys/{id}/restore",
    tag = "keys",
    operation_id = "restoreKey",
    description = "Role: manager. Restores a destroyed key within 30 days of its deletion. No body is needed (the material is kept until purge); Key Protect clients restoring an imported key send its current key material, which must be of the key's size (`INVALID_FIELD_ERR`) and be that material (`INVALID_FIELD_ERR`); a generated key takes none (`KEY_IMPT_REQ_ERR`).",
    params(super::model::InstanceHeader, super::model::KeyId),
    request_body(
        description = "Optional: a collection of one resource with the key's current material, `payload` alone or with `encryptedNonce` and `iv` against the import token.",
        content(
            (Option<RestoreBody> = "application/vnd.ibm.kms.key+json"),
            (Option<RestoreBody> = "application/json"),
        ),
    ),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The restored key.", body = super::model::KeyCollection, content_type = "application/vnd.ibm.kms.key+json"),
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
pub async fn restore(
    caller: Authorized<actions::RestoreKey>,
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let material = restore_material(&req, &body)?;
    let c = caller.clone();
    let key_id = id.into_inner();
    let k = key_id.clone();
    let r = blocking(move || {
        c.service
            .restore_key_with(&c.actor, &c.correlation_id, &k, material)
            .map_err(ApiError::from)
    })
    .await?;
    key_after(&req, &caller, &state, &key_id, &r, 201, false).await
}

/// The material a restore body gives (none without a body). It is checked
/// by the key service like every payload: the key's type decides its size,
/// and it must be the key's current material.
fn restore_material(req: &HttpRequest, body: &[u8]) -> Result<KeyMaterialSource, ApiError> {
    if body.is_empty() {
        return Ok(KeyMaterialSource::Generate);
    }
    let parsed: RestoreBody = parse_body(req, body)?;
    let [r]: [RestoreKey; 1] = parsed
        .resources
        .try_into()
        .map_err(|_| ApiError::bad_body("resources must hold exactly one key"))?;
    material_of(
        &r.payload,
        &r.encrypted_nonce,
        &r.iv,
        &r.encryption_algorithm,
    )
}

/// `POST /api/v2/keys/{id}/actions/{action}`
pub async fn action(
    caller: Authorized<actions::KeyAction>,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let (id, _) = path.into_inner();
    run_action(caller, req, state, id, body).await
}

/// Deprecated `POST /api/v2/keys/{id}?action=…`
#[utoipa::path(
    post,
    path = "/api/v2/keys/{id}",
    tag = "actions",
    operation_id = "actionOnKey",
    description = "Deprecated form of `POST /api/v2/keys/{id}/actions/{action}`: the same actions, roles, bodies and answers. Without `action`: 400 `INVALID_QUERY_PARAM_ERR`.",
    params(
        super::model::InstanceHeader,
        super::model::KeyId,
        super::model::PreferHeader,
        ("action" = super::model::ActionName, Query, description = "The action."),
    ),
    request_body(
        description = "`wrap`: WrapBody (or none); `unwrap`, `rewrap`: UnwrapBody; `rotate`: RotateBody (or none); `restore`: RestoreBody (or none); other actions: none.",
        content(
            (Option<super::model::ActionBody> = "application/vnd.ibm.kms.key_action+json"),
            (Option<super::model::ActionBody> = "application/json"),
        ),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`wrap`, `unwrap`, `rewrap`: the result; other actions with `prefer: return=representation`: the key.", content(
            (super::model::WrapResult = "application/vnd.ibm.kms.key_action_wrap+json"),
            (super::model::UnwrapResult = "application/vnd.ibm.kms.key_action_unwrap+json"),
            (super::model::RewrapResult = "application/vnd.ibm.kms.key_action_rewrap+json"),
            (super::model::KeyCollection = "application/vnd.ibm.kms.key+json"),
        )),
        (status = 204, description = "Done (actions other than wrap, unwrap and rewrap; `sync` always)."),
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
        (status = 503, response = super::model::Unavailable),
    ),
)]
pub async fn action_query(
    caller: Authorized<actions::KeyAction>,
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    run_action(caller, req, state, id.into_inner(), body).await
}

async fn run_action(
    caller: Authorized<actions::KeyAction>,
    req: HttpRequest,
    state: web::Data<AppState>,
    id: String,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let action = caller.action().to_string();
    let caller = caller.into_caller();
    let c = caller.clone();
    match action.as_str() {
        "wrap" => {
            let b: WrapBody = if body.is_empty() {
                WrapBody {
                    plaintext: None,
                    aad: Vec::new(),
                }
            } else {
                parse_body(&req, &body)?
            };
            let plaintext = b
                .plaintext
                .as_deref()
                .map(|p| decode_b64("plaintext", p))
                .transpose()?;
            let result = deferred(c, move |c| {
                c.service
                    .start_wrap(&c.actor, &c.correlation_id, &id, plaintext.clone(), &b.aad)
            })
            .await?;
            // Written as declared, not through a sorted `Value` tree: the
            // hot path's response in one pass.
            let out = WrapResult {
                ciphertext: &result.ciphertext,
                key_version: VersionRef {
                    id: &result.key_version_id,
                },
                plaintext: result
                    .generated
                    .as_ref()
                    .map(|g| Zeroizing::new(B64.encode(g.expose()))),
            };
            let mut resp = HttpResponse::Ok()
                .content_type("application/vnd.ibm.kms.key_action_wrap+json")
                .json(&out);
            receipt(&mut resp, &result.receipt);
            correlation(&mut resp, &caller);
            Ok(resp)
        }
        "unwrap" => {
            let b: UnwrapBody = parse_body(&req, &body)?;
            let result = deferred(c, move |c| {
                c.service
                    .start_unwrap(&c.actor, &c.correlation_id, &id, &b.ciphertext, &b.aad)
            })
            .await?;
            let out = UnwrapResult {
                plaintext: Zeroizing::new(B64.encode(result.plaintext.expose())),
                key_version: VersionRef {
                    id: &result.key_version_id,
                },
                ciphertext: result.rewrapped.as_ref().map(|(ct, _)| ct.as_str()),
                rewrapped_key_version: result
                    .rewrapped
                    .as_ref()
                    .map(|(_, version)| VersionRef { id: version }),
            };
            let mut resp = HttpResponse::Ok()
                .content_type("application/vnd.ibm.kms.key_action_unwrap+json")
                .json(&out);
            receipt(&mut resp, &result.receipt);
            correlation(&mut resp, &caller);
            Ok(resp)
        }
        "rewrap" => {
            let b: UnwrapBody = parse_body(&req, &body)?;
            let (ciphertext, from, to, r) = blocking(move || {
                c.service
                    .rewrap(&c.actor, &c.correlation_id, &id, &b.ciphertext, &b.aad)
                    .map_err(ApiError::from)
            })
            .await?;
            let out = RewrapResult {
                ciphertext: &ciphertext,
                key_version: VersionRef { id: &from },
                rewrapped_key_version: VersionRef { id: &to },
            };
            let mut resp = HttpResponse::Ok()
                .content_type("application/vnd.ibm.kms.key_action_rewrap+json")
                .json(&out);
            receipt(&mut resp, &r);
            correlation(&mut resp, &caller);
            Ok(resp)
        }
        "sync" => {
            caller.service.key(&id).map_err(ApiError::from)?;
            let mut resp = HttpResponse::NoContent().finish();
            correlation(&mut resp, &caller);
            Ok(resp)
        }
        other => {
            let payload = if other == "rotate" && !body.is_empty() {
                let b: RotateBody = parse_body(&req, &body)?;
                b.payload
                    .as_deref()
                    .map(|p| decode_b64("payload", p))
                    .transpose()?
            } else {
                None
            };
            let restore_with = if other == "restore" {
                restore_material(&req, &body)?
            } else {
                KeyMaterialSource::Generate
            };
            let other = other.to_string();
            let key_id = id.clone();
            let r = blocking(move || {
                let s = &c.service;
                let (a, corr) = (&c.actor, c.correlation_id.as_str());
                match other.as_str() {
                    "rotate" => s.rotate_key(a, corr, &key_id, payload),
                    "enable" => s.enable_key(a, corr, &key_id),
                    "disable" => s.disable_key(a, corr, &key_id),
                    "setKeyForDeletion" => s.set_key_for_deletion(a, corr, &key_id),
                    "unsetKeyForDeletion" => s.unset_key_for_deletion(a, corr, &key_id),
                    _ => s.restore_key_with(a, corr, &key_id, restore_with),
                }
                .map_err(ApiError::from)
            })
            .await?;
            let minimal = !req
                .headers()
                .get("prefer")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.contains("return=representation"));
            key_after(&req, &caller, &state, &id, &r, 200, minimal).await
        }
    }
}
