//! Key Protect policy endpoints: key policies (`GET|PUT
//! /keys/{id}/policies?policy=rotation|dualAuthDelete`), instance policies
//! (`GET|PUT /instance/policies`) and `GET /instance/allowed_ip_port`.
//!
//! Instance policies are governance in keyledger: only a signed
//! administrator command (`instance.set_policy`) sets them, so `PUT
//! /instance/policies` is always refused with 403 (and an `access.denied`
//! event) whatever the caller's role; `GET` shows them in Key Protect shape.

use std::collections::HashMap;

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::auth::{Authorized, actions};
use super::errors::ApiError;
use super::model::{
    AllowedIpPort, AllowedIpPortCollection, DualAuthPolicyData, InstancePolicy,
    InstancePolicyCollection, InstancePolicyData, KeyPolicy, KeyPolicyCollection, PolicyMediaType,
    RotationPolicyData,
};
use super::resources::{crn, date};
use super::wire::{CollectionBody, blocking, correlation, json_response, parse_body, receipt};
use keyledger_core::event::AccessDenied;
use keyledger_core::keys::projection::KeyRecord;
use keyledger_core::keys::state::check_dual_auth_policy;
use keyledger_kms::service::KeyError;

const INSTANCE_POLICIES: [&str; 4] = [
    "allowedIP",
    "allowedNetwork",
    "dualAuthDelete",
    "keyCreateImportAccess",
];

/// `rotation` in a policy body or a key created with overrides.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotationBody {
    /// Default `true`.
    enabled: Option<bool>,
    /// Months between rotations: 1-12, needed when enabling (unless set before).
    #[schema(minimum = 1, maximum = 12)]
    interval_month: Option<u8>,
}

/// `dualAuthDelete` in a policy body or a key created with overrides.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DualAuthBody {
    enabled: bool,
}

/// A key policy to set: type, enabled, rotation interval.
pub type PolicyChange = (&'static str, bool, Option<u8>);

fn rotation_change(r: &RotationBody, current: Option<u8>) -> Result<PolicyChange, ApiError> {
    let enabled = r.enabled.unwrap_or(true);
    let interval = r.interval_month.or(if enabled { current } else { None });
    match interval {
        Some(1..=12) => Ok(("rotation", enabled, interval)),
        None if !enabled => Ok(("rotation", false, None)),
        _ => Err(ApiError::bad_body(
            "rotation.interval_month must be 1-12 when rotation is enabled",
        )),
    }
}

/// A `dualAuthDelete` change for a key whose dual-authorisation delete is
/// `current` (a new key's: the instance policy's), by the domain rule
/// [`check_dual_auth_policy`]: once on, never switched off.
fn dual_auth_change(current: bool, d: &DualAuthBody) -> Result<PolicyChange, ApiError> {
    check_dual_auth_policy(current, d.enabled).map_err(|e| ApiError::from(KeyError::from(e)))?;
    Ok(("dualAuthDelete", d.enabled, None))
}

/// The policies of `POST /keys_with_policy_overrides`, checked before the
/// key is created; on `POST /keys` policies are refused. A key created
/// while the instance policy `dualAuthDelete` is on (`inherited_dual_auth`)
/// inherits it and cannot be created with it off.
pub fn overrides(
    allowed: bool,
    rotation: Option<&RotationBody>,
    dual: Option<&DualAuthBody>,
    inherited_dual_auth: bool,
) -> Result<Vec<PolicyChange>, ApiError> {
    if !allowed && (rotation.is_some() || dual.is_some()) {
        return Err(ApiError::bad_body(
            "policies are set with POST /keys_with_policy_overrides",
        ));
    }
    let mut out = Vec::new();
    if let Some(r) = rotation {
        out.push(rotation_change(r, None)?);
    }
    if let Some(d) = dual {
        out.push(dual_auth_change(inherited_dual_auth, d)?);
    }
    Ok(out)
}

fn invalid_query(message: &str) -> ApiError {
    ApiError::new(400, "INVALID_QUERY_PARAM_ERR", message)
}

fn policy_filter<'a>(
    q: &'a HashMap<String, String>,
    known: &[&str],
) -> Result<Option<&'a str>, ApiError> {
    match q.get("policy").map(String::as_str) {
        None => Ok(None),
        Some(p) if known.contains(&p) => Ok(Some(p)),
        Some(_) => Err(invalid_query(&format!(
            "policy must be one of {}",
            known.join(", ")
        ))),
    }
}

/// The key's policies in Key Protect shape (dates: the key's).
fn key_policies(instance: &str, key: &KeyRecord, only: Option<&str>) -> KeyPolicyCollection {
    let policy = || KeyPolicy {
        kind: PolicyMediaType,
        crn: crn(instance, &key.id),
        creation_date: date(&key.creation_date),
        created_by: key.created_by.clone(),
        last_update_date: date(&key.last_update_date),
        rotation: None,
        dual_auth_delete: None,
    };
    let mut out = Vec::new();
    if only.is_none_or(|p| p == "rotation") {
        out.push(KeyPolicy {
            rotation: Some(RotationPolicyData {
                enabled: key.rotation.enabled,
                interval_month: key.rotation.interval_month,
            }),
            ..policy()
        });
    }
    if only.is_none_or(|p| p == "dualAuthDelete") {
        out.push(KeyPolicy {
            dual_auth_delete: Some(DualAuthPolicyData {
                enabled: key.dual_auth_delete.enabled,
            }),
            ..policy()
        });
    }
    KeyPolicyCollection::new(out)
}

/// `GET /api/v2/keys/{id}/policies[?policy=…]`
#[utoipa::path(
    get,
    path = "/api/v2/keys/{id}/policies",
    tag = "policies",
    operation_id = "getPolicy",
    description = "Role: reader. The key's rotation and dual-authorisation-delete policies.",
    params(super::model::InstanceHeader, super::model::KeyId, ("policy" = Option<super::model::KeyPolicyName>, Query, description = "Only this policy.")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The policies.", body = super::model::KeyPolicyCollection, content_type = "application/vnd.ibm.kms.policy+json"),
        (status = 400, response = super::model::BadRequest),
        (status = 401, response = super::model::Unauthorized),
        (status = 403, response = super::model::Forbidden),
        (status = 404, response = super::model::NotFound),
    )
)]
pub async fn get_key_policies(
    caller: Authorized<actions::ReadKeyPolicies>,
    id: web::Path<String>,
    q: web::Query<HashMap<String, String>>,
) -> Result<HttpResponse, ApiError> {
    let only = policy_filter(&q, &["rotation", "dualAuthDelete"])?;
    let key = caller.service.key(&id).map_err(ApiError::from)?;
    let body = key_policies(caller.service.instance(), &key, only);
    let mut resp = json_response(200, KeyPolicyCollection::MEDIA, &body);
    correlation(&mut resp, &caller);
    Ok(resp)
}

/// A key policy to set: `rotation` or `dualAuthDelete`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PolicyBody {
    #[serde(rename = "type")]
    #[allow(dead_code)]
    kind: Option<String>,
    rotation: Option<RotationBody>,
    dual_auth_delete: Option<DualAuthBody>,
}

/// `PUT /api/v2/keys/{id}/policies[?policy=…]`
#[utoipa::path(
    put,
    path = "/api/v2/keys/{id}/policies",
    tag = "policies",
    operation_id = "putPolicy",
    description = "Role: manager. Sets the key's policies (each a `key.policy_updated` event; the receipt is the last one's). With `policy`, the body may set only that one. A key's `dualAuthDelete`, once on (set on the key or inherited from the instance policy at creation), cannot be switched off: 409 `KEY_ACTION_INVALID_STATE_ERR`, and no policy of the body is set.",
    params(super::model::InstanceHeader, super::model::KeyId, ("policy" = Option<super::model::KeyPolicyName>, Query, description = "Only this policy.")),
    request_body(
        description = "A collection of policies.",
        content(
            (super::wire::CollectionBody<PolicyBody> = "application/vnd.ibm.kms.policy+json"),
            (super::wire::CollectionBody<PolicyBody> = "application/json"),
        ),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The key's policies as now set.", body = super::model::KeyPolicyCollection, content_type = "application/vnd.ibm.kms.policy+json"),
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
pub async fn put_key_policies(
    caller: Authorized<actions::SetKeyPolicies>,
    req: HttpRequest,
    id: web::Path<String>,
    q: web::Query<HashMap<String, String>>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let only = policy_filter(&q, &["rotation", "dualAuthDelete"])?;
    let parsed: CollectionBody<PolicyBody> = parse_body(&req, &body)?;
    let key = caller.service.key(&id).map_err(ApiError::from)?;
    let mut changes = Vec::new();
    let mut dual_auth = key.dual_auth_delete.enabled;
    for p in &parsed.resources {
        if let Some(r) = &p.rotation {
            changes.push(rotation_change(r, key.rotation.interval_month)?);
        }
        // Every change is checked before the first is applied: a body
        // that also switches dual authorisation off changes nothing.
        if let Some(d) = &p.dual_auth_delete {
            changes.push(dual_auth_change(dual_auth, d)?);
            dual_auth = d.enabled;
        }
    }
    if changes.is_empty() {
        return Err(ApiError::bad_body(
            "resources must hold a rotation or dualAuthDelete policy",
        ));
    }
    if let Some(only) = only
        && changes.iter().any(|(t, _, _)| *t != only)
    {
        return Err(ApiError::bad_body(format!(
            "the body sets a policy other than {only}"
        )));
    }
    let c = caller.clone();
    let key_id = key.id.clone();
    let (key, r) = blocking(move || {
        let mut last = None;
        for (policy, enabled, interval) in changes {
            let r = c
                .service
                .set_key_policy(
                    &c.actor,
                    &c.correlation_id,
                    &key_id,
                    policy,
                    enabled,
                    interval,
                )
                .map_err(ApiError::from)?;
            last = Some(r);
        }
        let key = c.service.key(&key_id).map_err(ApiError::from)?;
        last.map(|r| (key, r)).ok_or_else(ApiError::internal)
    })
    .await?;
    let body = key_policies(caller.service.instance(), &key, only);
    let mut resp = json_response(200, KeyPolicyCollection::MEDIA, &body);
    receipt(&mut resp, &r);
    correlation(&mut resp, &caller);
    Ok(resp)
}

/// `GET /api/v2/instance/policies[?policy=…]`
#[utoipa::path(
    get,
    path = "/api/v2/instance/policies",
    tag = "policies",
    operation_id = "getInstancePolicy",
    description = "Role: reader. The instance policies set by administrator command.",
    params(super::model::InstanceHeader, ("policy" = Option<super::model::InstancePolicyName>, Query, description = "Only this policy.")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The policies.", body = super::model::InstancePolicyCollection, content_type = "application/vnd.ibm.kms.policy+json"),
        (status = 400, response = super::model::BadRequest),
        (status = 401, response = super::model::Unauthorized),
        (status = 403, response = super::model::Forbidden),
        (status = 500, response = super::model::InternalError),
    )
)]
pub async fn get_instance_policies(
    caller: Authorized<actions::ReadInstancePolicies>,
    q: web::Query<HashMap<String, String>>,
) -> Result<HttpResponse, ApiError> {
    let only = policy_filter(&q, &INSTANCE_POLICIES)?;
    let policies: Vec<(InstancePolicy, u64)> = caller.service.with_projections(|p| {
        p.governance
            .policies
            .iter()
            .filter(|(t, _)| only.is_none_or(|o| o == t.as_str()))
            .map(|(t, p)| {
                let policy = InstancePolicy {
                    policy_type: t.clone(),
                    policy_data: InstancePolicyData {
                        enabled: p.enabled,
                        attributes: p.attributes.clone(),
                    },
                    last_updated: None,
                    updated_by: None,
                };
                (policy, p.updated_seq)
            })
            .collect()
    });
    let service = caller.service.clone();
    let resources = blocking(move || {
        Ok(policies
            .into_iter()
            .map(|(mut policy, seq)| {
                if let Some((time, by)) = service.recorded_by(seq) {
                    policy.last_updated = Some(time);
                    policy.updated_by = Some(by);
                }
                policy
            })
            .collect::<Vec<_>>())
    })
    .await?;
    let mut resp = json_response(
        200,
        InstancePolicyCollection::MEDIA,
        &InstancePolicyCollection::new(resources),
    );
    correlation(&mut resp, &caller);
    Ok(resp)
}

/// `PUT /api/v2/instance/policies`: always 403. Instance policies are set
/// by signed administrator command; the refusal is recorded.
#[utoipa::path(
    put,
    path = "/api/v2/instance/policies",
    tag = "policies",
    operation_id = "putInstancePolicy",
    description = "Always refused, whatever the role and body: instance policies are set by signed administrator command (`instance.set_policy`). The refusal is an `access.denied` event.",
    params(super::model::InstanceHeader),
    security(("bearer" = [])),
    responses(
        (status = 400, response = super::model::BadRequest),
        (status = 401, response = super::model::Unauthorized),
        (status = 403, response = super::model::Forbidden),
        (status = 500, response = super::model::InternalError),
    )
)]
pub async fn put_instance_policies(
    caller: Authorized<actions::SetInstancePolicies>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let reason = "instance policies are set by administrator command (instance.set_policy, signed by the instance administrators), not through the API";
    let event = AccessDenied {
        action: "set_instance_policy".into(),
        target: req.path().chars().take(128).collect(),
        reason: reason.into(),
    };
    let c = caller.clone();
    blocking(move || {
        c.service
            .record_access_denied(&c.actor, &c.correlation_id, &event)
            .map_err(|_| ApiError::internal())
    })
    .await?;
    Err(ApiError::new(403, "FORBIDDEN_ERR", reason))
}

/// `GET /api/v2/instance/allowed_ip_port`: with an enabled `allowedIP`
/// policy, the port this server answers on (keyledger has no separate
/// private endpoint); without one, an empty collection.
#[utoipa::path(
    get,
    path = "/api/v2/instance/allowed_ip_port",
    tag = "policies",
    operation_id = "getAllowedIPPort",
    description = "Role: reader. With an enabled `allowedIP` policy, the port this server answers on; else an empty collection.",
    params(super::model::InstanceHeader),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The port, or nothing.", body = super::model::AllowedIpPortCollection, content_type = "application/vnd.ibm.kms.allowed_ip_metadata+json"),
        (status = 400, response = super::model::BadRequest),
        (status = 401, response = super::model::Unauthorized),
        (status = 403, response = super::model::Forbidden),
    )
)]
pub async fn allowed_ip_port(
    caller: Authorized<actions::ReadAllowedIpPort>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let enabled = caller
        .service
        .with_projections(|p| p.governance.policy("allowedIP").is_some_and(|p| p.enabled));
    let resources = if enabled {
        let port = req
            .app_data::<super::wire::LocalAddr>()
            .map_or_else(|| req.app_config().local_addr().port(), |a| a.0.port());
        vec![AllowedIpPort {
            private_endpoint_port: port,
        }]
    } else {
        Vec::new()
    };
    let mut resp = json_response(
        200,
        AllowedIpPortCollection::MEDIA,
        &AllowedIpPortCollection::new(resources),
    );
    correlation(&mut resp, &caller);
    Ok(resp)
}
