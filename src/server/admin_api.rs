//! Governance endpoints: signed administrator commands, the master-key
//! ceremony (status and key-owner part submission) and, for auditors, the
//! governance state. See `docs/REST.md`, "Auditor and admin endpoints".
//!
//! Commands and parts carry their own authentication (administrator
//! signatures over the command digest; the key owner's signature over the
//! sealed part), so these routes take no bearer token; the
//! `bluemix-instance` header must name an existing instance, and an unknown
//! one gets the same 401 as `auth.rs` gives. Every refusal of a command is
//! recorded by the key service as `admin.command_denied`.

use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

use super::AppState;
use super::auth::{Need, authenticate, correlation_id};
use super::errors::ApiError;
use super::keys::parse_body;
use super::ledger_api::blocking;
use crate::event::{Actor, AuthMethod, Role};
use crate::governance::{ApprovalStatus, SignedCommand};
use crate::hsm::SealedPart;
use crate::keys::service::KeyService;
use crate::writer::Receipt;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// The instance named by `bluemix-instance`, or the 401 every unknown
/// instance gets.
fn instance(req: &HttpRequest, state: &AppState) -> Result<Arc<KeyService>, ApiError> {
    let name = req
        .headers()
        .get("bluemix-instance")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ApiError::invalid_header("the bluemix-instance header is required"))?;
    state.registry.get(name).ok_or_else(|| {
        super::metrics::count_unauthenticated();
        ApiError::unauthorized()
    })
}

fn receipt_json(r: &Receipt) -> Value {
    json!({"seq": r.seq, "leaf_hash": hex::encode(r.leaf)})
}

fn with_receipt(mut resp: HttpResponse, r: &Receipt, correlation: &str) -> HttpResponse {
    let headers = resp.headers_mut();
    let pairs = [
        ("keyledger-receipt-seq", r.seq.to_string()),
        ("keyledger-receipt-leaf", hex::encode(r.leaf)),
        ("correlation-id", correlation.to_string()),
    ];
    for (name, value) in pairs {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), v);
        }
    }
    resp
}

/// `POST /api/v2/admin/commands`: body = the signed command file
/// `{"document": "...", "signatures": [...]}`.
#[utoipa::path(
    post,
    path = "/api/v2/admin/commands",
    tag = "admin",
    operation_id = "submitAdminCommand",
    description = "No bearer token: the administrators' signatures authenticate the command (`docs/GOVERNANCE.md`). A refused command is recorded as `admin.command_denied`; refusals by the governance rules (signatures, threshold, imprint mode, replay, expiry) are 403 `UNAUTHORIZED_ERR`.",
    params(super::openapi::InstanceHeader),
    request_body(content = crate::governance::SignedCommand, content_type = "application/json"),
    responses(
        (status = 200, description = "Accepted and recorded.", body = super::openapi::CommandResult),
        (status = 400, response = super::openapi::BadRequest),
        (status = 401, response = super::openapi::Unauthorized),
        (status = 403, response = super::openapi::Forbidden),
        (status = 404, response = super::openapi::NotFound),
        (status = 409, response = super::openapi::Conflict),
        (status = 413, response = super::openapi::PayloadTooLarge),
        (status = 415, response = super::openapi::UnsupportedMediaType),
        (status = 500, response = super::openapi::InternalError),
        (status = 503, response = super::openapi::Unavailable),
    )
)]
pub async fn submit_command(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let service = instance(&req, &state)?;
    let signed: SignedCommand = parse_body(&req, &body)?;
    let correlation = correlation_id(&req);
    // The submitter is unauthenticated: the signatures are what count.
    let submitter = Actor {
        principal: "rest-client".into(),
        role: Role::Anonymous,
        auth: AuthMethod::None,
    };
    let c = correlation.clone();
    let receipt = blocking(move || {
        service
            .submit_admin_command(&submitter, &c, &signed)
            .map_err(ApiError::from)
    })
    .await?;
    let event = crate::event::Envelope::parse(&receipt.event).map_err(|_| ApiError::internal())?;
    let body = json!({
        "seq": receipt.seq,
        "type": event.event_type,
        "receipt": receipt_json(&receipt),
    });
    Ok(with_receipt(
        HttpResponse::Ok().json(body),
        &receipt,
        &correlation,
    ))
}

/// `GET /api/v2/admin/ceremony`: what a key owner needs to seal a part.
#[utoipa::path(
    get,
    path = "/api/v2/admin/ceremony",
    tag = "admin",
    operation_id = "getCeremonyStatus",
    description = "No bearer token. What a key owner needs to seal a master-key part.",
    params(super::openapi::InstanceHeader),
    responses(
        (status = 200, description = "The ceremony.", body = super::openapi::CeremonyStatus),
        (status = 400, response = super::openapi::BadRequest),
        (status = 401, response = super::openapi::Unauthorized),
        (status = 409, response = super::openapi::Conflict),
        (status = 500, response = super::openapi::InternalError),
    )
)]
pub async fn ceremony_status(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let service = instance(&req, &state)?;
    let status = blocking(move || service.ceremony_status().map_err(ApiError::from)).await?;
    Ok(HttpResponse::Ok().json(json!({
        "generation": status.generation,
        "unseal": status.unseal,
        "public_key": B64.encode(status.public_key),
        "loaded_owners": status.loaded,
        "registered_owners": status.owners,
    })))
}

/// A key owner's master-key part, sealed to the ceremony key and signed.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct PartSubmission {
    owner_id: String,
    /// HPKE encapsulated key, base64.
    #[schema(
        pattern = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)?$"
    )]
    enc: String,
    /// HPKE ciphertext of the part, base64.
    #[schema(
        pattern = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)?$"
    )]
    ciphertext: String,
    /// The owner's ed25519 signature over `part_submission_message`, 64
    /// bytes, base64.
    #[schema(pattern = r"^[A-Za-z0-9+/]{86}[AQgw]==$")]
    signature: String,
}

fn b64_field(field: &str, value: &str) -> Result<Vec<u8>, ApiError> {
    B64.decode(value.trim())
        .map_err(|_| ApiError::bad_body(format!("{field} must be base64")))
}

/// `POST /api/v2/admin/ceremony/parts`: a key owner's sealed, signed part.
#[utoipa::path(
    post,
    path = "/api/v2/admin/ceremony/parts",
    tag = "admin",
    operation_id = "submitKeyPart",
    description = "No bearer token: the key owner's signature authenticates the part.",
    params(super::openapi::InstanceHeader),
    request_body(content = PartSubmission, content_type = "application/json"),
    responses(
        (status = 200, description = "Loaded and recorded.", body = super::openapi::PartResult),
        (status = 400, response = super::openapi::BadRequest),
        (status = 401, response = super::openapi::Unauthorized),
        (status = 404, response = super::openapi::NotFound),
        (status = 409, response = super::openapi::Conflict),
        (status = 413, response = super::openapi::PayloadTooLarge),
        (status = 415, response = super::openapi::UnsupportedMediaType),
        (status = 500, response = super::openapi::InternalError),
    )
)]
pub async fn submit_part(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let service = instance(&req, &state)?;
    let submission: PartSubmission = parse_body(&req, &body)?;
    let part = SealedPart {
        enc: b64_field("enc", &submission.enc)?,
        ciphertext: b64_field("ciphertext", &submission.ciphertext)?,
    };
    let signature: [u8; 64] = b64_field("signature", &submission.signature)?
        .try_into()
        .map_err(|_| ApiError::bad_body("signature must be 64 bytes"))?;
    let correlation = correlation_id(&req);
    let c = correlation.clone();
    let owner = submission.owner_id;
    let (pattern, receipt) = blocking(move || {
        service
            .submit_part(&c, &owner, &part, &signature)
            .map_err(ApiError::from)
    })
    .await?;
    let body = json!({
        "verification_pattern": pattern,
        "seq": receipt.seq,
        "receipt": receipt_json(&receipt),
    });
    Ok(with_receipt(
        HttpResponse::Ok().json(body),
        &receipt,
        &correlation,
    ))
}

fn approval_status(s: &ApprovalStatus) -> Value {
    match s {
        ApprovalStatus::Pending => json!("pending"),
        ApprovalStatus::Executed(seq) => json!({"executed_at_seq": seq}),
        ApprovalStatus::Failed(why) => json!({"failed": why}),
        ApprovalStatus::Cancelled => json!("cancelled"),
        ApprovalStatus::Expired => json!("expired"),
    }
}

/// The governance projection as JSON: no token digests.
fn governance_json(g: &crate::governance::GovernanceState) -> Value {
    let admins: serde_json::Map<String, Value> = g
        .admins
        .iter()
        .map(|(id, a)| {
            let v = json!({"name": a.name, "public_key": B64.encode(a.public_key),
                "added_seq": a.added_seq});
            (id.clone(), v)
        })
        .collect();
    let credentials: serde_json::Map<String, Value> = g
        .credentials
        .iter()
        .map(|(id, c)| {
            let v = json!({"role": c.role, "issued_seq": c.issued_seq, "revoked": c.revoked});
            (id.clone(), v)
        })
        .collect();
    let policies: serde_json::Map<String, Value> = g
        .policies
        .iter()
        .map(|(name, p)| {
            let v = json!({"enabled": p.enabled, "attributes": p.attributes,
                "updated_seq": p.updated_seq});
            (name.clone(), v)
        })
        .collect();
    let approvals: serde_json::Map<String, Value> = g
        .approvals
        .iter()
        .map(|(id, a)| {
            let v = json!({
                "operation": a.operation, "target": a.target, "requester": a.requester,
                "required": a.required, "expires_at": a.expires_at.to_rfc3339(),
                "approvers": a.approvers, "requested_seq": a.requested_seq,
                "status": approval_status(&a.status),
            });
            (id.clone(), v)
        })
        .collect();
    json!({
        "imprint_mode": g.imprint_mode(),
        "thresholds": g.thresholds.map(|t| json!({
            "signature": t.signature, "revocation": t.revocation})),
        "admins": admins,
        "credentials": credentials,
        "policies": policies,
        "approvals": approvals,
        "load_approved_generations": g.load_approved,
    })
}

/// `GET /api/v2/admin/state` (auditor): administrators, thresholds,
/// credentials (without digests), policies and approvals.
#[utoipa::path(
    get,
    path = "/api/v2/admin/state",
    tag = "admin",
    operation_id = "getGovernanceState",
    description = "Role: auditor. Administrators, thresholds, credentials (never their token digests), policies and approvals.",
    params(super::openapi::InstanceHeader),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The governance state.", body = super::openapi::GovernanceStateBody),
        (status = 400, response = super::openapi::BadRequest),
        (status = 401, response = super::openapi::Unauthorized),
        (status = 403, response = super::openapi::Forbidden),
    )
)]
pub async fn state(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let caller = authenticate(&req, &state.registry, Need::Auditor, "admin.state").await?;
    let body = caller
        .service
        .with_projections(|p| governance_json(&p.governance));
    Ok(HttpResponse::Ok().json(body))
}
