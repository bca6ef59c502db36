//! Key Protect registrations (`GET /keys/{id}/registrations`, `GET
//! /keys/registrations`): which cloud resources use a key. keyledger has
//! no registration API and records none, so both answer an empty
//! collection in Key Protect's shape; the per-key form first checks the
//! key exists (404 otherwise).

use std::collections::HashMap;

use actix_web::{HttpResponse, web};

use super::auth::{Authorized, actions};
use super::errors::ApiError;
use super::model::RegistrationCollection;
use super::wire::{correlation, json_response};

fn check_paging(q: &HashMap<String, String>) -> Result<(), ApiError> {
    for p in ["limit", "offset"] {
        if let Some(v) = q.get(p)
            && v.parse::<u32>().is_err()
        {
            return Err(ApiError::new(
                400,
                "INVALID_QUERY_PARAM_ERR",
                format!("{p} must be a number"),
            ));
        }
    }
    Ok(())
}

fn empty(q: &HashMap<String, String>) -> RegistrationCollection {
    let body = RegistrationCollection::none();
    if q.get("totalCount").is_some_and(|v| v == "true") {
        return body.with_total_count(0);
    }
    body
}

/// `GET /api/v2/keys/{id}/registrations`
#[utoipa::path(
    get,
    path = "/api/v2/keys/{id}/registrations",
    tag = "registrations",
    operation_id = "getRegistrations",
    description = "Role: reader. Always empty: keyledger records no registrations. 404 when the key does not exist.",
    params(super::model::InstanceHeader, super::model::KeyId, super::model::Paging),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "No registrations.", body = super::model::RegistrationCollection, content_type = "application/vnd.ibm.kms.registration+json"),
        (status = 400, response = super::model::BadRequest),
        (status = 401, response = super::model::Unauthorized),
        (status = 403, response = super::model::Forbidden),
        (status = 404, response = super::model::NotFound),
    )
)]
pub async fn of_key(
    caller: Authorized<actions::ListRegistrations>,
    id: web::Path<String>,
    q: web::Query<HashMap<String, String>>,
) -> Result<HttpResponse, ApiError> {
    check_paging(&q)?;
    caller.service.key(&id).map_err(ApiError::from)?;
    let mut resp = json_response(200, RegistrationCollection::MEDIA, &empty(&q));
    correlation(&mut resp, &caller);
    Ok(resp)
}

/// `GET /api/v2/keys/registrations`
#[utoipa::path(
    get,
    path = "/api/v2/keys/registrations",
    tag = "registrations",
    operation_id = "getRegistrationsAllKeys",
    description = "Role: reader. Always empty: keyledger records no registrations.",
    params(super::model::InstanceHeader, super::model::Paging),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "No registrations.", body = super::model::RegistrationCollection, content_type = "application/vnd.ibm.kms.registration+json"),
        (status = 400, response = super::model::BadRequest),
        (status = 401, response = super::model::Unauthorized),
        (status = 403, response = super::model::Forbidden),
    )
)]
pub async fn all(
    caller: Authorized<actions::ListRegistrations>,
    q: web::Query<HashMap<String, String>>,
) -> Result<HttpResponse, ApiError> {
    check_paging(&q)?;
    let mut resp = json_response(200, RegistrationCollection::MEDIA, &empty(&q));
    correlation(&mut resp, &caller);
    Ok(resp)
}
