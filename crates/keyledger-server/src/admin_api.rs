//! Governance endpoints: signed administrator commands, the master-key
//! ceremony (status and key-owner part submission) and, for auditors, the
//! governance state. See `docs/REST.md`, "Auditor and admin endpoints".
//!
//! Commands, parts and status requests carry their own authentication
//! (administrator signatures over the command digest; the key owner's
//! signature over the sealed part or the status request), so these routes
//! take no bearer token. What is checked, in order, so that a stranger
//! learns nothing about which instances exist and writes nothing:
//! 1. the request's form, which needs no state (`bluemix-instance` present;
//!    the body a well-formed command or part; the owner headers well-formed):
//!    400 whatever the instance;
//! 2. the instance exists, and the request proves a principal of it (an
//!    administrator's or registered key owner's valid signature): if not,
//!    the very 401 of an unknown instance, counted in the metrics
//!    (`keyledger_unauthenticated_requests_total`) and not logged;
//! 3. the governance and ceremony rules: their refusals are logged under the
//!    proven principal (`admin.command_denied`, `access.denied`).

use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use serde::Deserialize;
use std::sync::Arc;

use super::access_log::correlation_id;
use super::auth::{Authorized, actions};
use super::errors::ApiError;
use super::model::{
    ApprovalExecuted, ApprovalFailed, ApprovalState, ApprovalWord, CeremonyStatus, CommandResult,
    GovernanceAdmin, GovernanceApproval, GovernanceCredential, GovernancePolicy,
    GovernanceStateBody, GovernanceThresholds, PartResult, ReceiptBody,
};
use super::registry::AppState;
use super::wire::{blocking, json_response, parse_body};
use keyledger_core::governance::{ApprovalStatus, SignedCommand};
use keyledger_kms::hsm::SealedPart;
use keyledger_kms::service::{KeyError, KeyService};
use keyledger_ledger::writer::Receipt;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
/// The media type of the JSON answers.
const JSON: &str = "application/json";

/// The `bluemix-instance` header, or 400.
fn instance_name(req: &HttpRequest) -> Result<String, ApiError> {
    req.headers()
        .get("bluemix-instance")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .ok_or_else(|| ApiError::invalid_header("the bluemix-instance header is required"))
}

/// The 401 of a request that proves nobody: the same body as for an unknown
/// instance (`auth.rs`), counted in the metrics, never logged.
fn stranger() -> ApiError {
    super::metrics::count_unauthenticated();
    ApiError::unauthorized()
}

/// The named instance, or the 401 every unknown instance gets.
fn instance(state: &AppState, name: &str) -> Result<Arc<KeyService>, ApiError> {
    state.registry.get(name).ok_or_else(stranger)
}

/// A service error as the API answers it; the refusals of requests that
/// prove no principal are [`stranger`]'s 401.
fn service_error(e: KeyError) -> ApiError {
    match e {
        KeyError::Unauthenticated(_)
        | KeyError::UnknownKeyOwner(_)
        | KeyError::BadOwnerSignature(_) => stranger(),
        other => ApiError::from(other),
    }
}

fn receipt_body(r: &Receipt) -> ReceiptBody {
    ReceiptBody {
        seq: r.seq,
        leaf_hash: hex::encode(r.leaf),
    }
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
    description = "No bearer token: the administrators' signatures authenticate the command (`docs/GOVERNANCE.md`). A body that is not a well-formed command (not a command file, a document that does not parse, more than 16 signatures) is 400 `BAD_BODY_ERR`, for any instance, and is not logged. A command no signature of a current administrator of the instance verifies over gets the same 401 as an unknown instance and is not logged. Refusals of a command whose signers are proven are recorded as `admin.command_denied` under those signers: 403 `UNAUTHORIZED_ERR` for signature, threshold, imprint mode, replay and expiry refusals, 409 for conflicts, 404 for unknown targets, 400 for invalid commands.",
    params(super::model::InstanceHeader),
    request_body(content = keyledger_core::governance::SignedCommand, content_type = "application/json"),
    responses(
        (status = 200, description = "Accepted and recorded.", body = super::model::CommandResult),
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
pub async fn submit_command(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let name = instance_name(&req)?;
    let signed: SignedCommand = parse_body(&req, &body)?;
    signed
        .check_form()
        .map_err(|e| ApiError::bad_body(e.to_string()))?;
    let service = instance(&state, &name)?;
    let correlation = correlation_id(&req);
    let c = correlation.clone();
    let receipt = blocking(move || {
        service
            .submit_signed_command(&c, &signed)
            .map_err(service_error)
    })
    .await?;
    let event =
        keyledger_core::event::Envelope::parse(&receipt.event).map_err(|_| ApiError::internal())?;
    let body = CommandResult {
        seq: receipt.seq,
        event_type: event.event_type,
        receipt: receipt_body(&receipt),
    };
    Ok(with_receipt(
        json_response(200, JSON, &body),
        &receipt,
        &correlation,
    ))
}

/// A key owner's signed status request, from the `keyledger-key-owner*`
/// headers: `None` when none of them is sent.
struct OwnerRequest {
    owner_id: String,
    time: i64,
    signature: [u8; 64],
}

fn owner_request(req: &HttpRequest) -> Result<Option<OwnerRequest>, ApiError> {
    let header = |name: &str| req.headers().get(name).map(|v| v.to_str().ok());
    let names = [
        "keyledger-key-owner",
        "keyledger-key-owner-time",
        "keyledger-key-owner-signature",
    ];
    let values = names.map(header);
    if values.iter().all(Option::is_none) {
        return Ok(None);
    }
    let malformed = || {
        ApiError::invalid_header(
            "keyledger-key-owner, keyledger-key-owner-time (Unix seconds) and keyledger-key-owner-signature (64 bytes, base64) go together",
        )
    };
    let [
        Some(Some(owner_id)),
        Some(Some(time)),
        Some(Some(signature)),
    ] = values
    else {
        return Err(malformed());
    };
    let time = time.trim().parse().map_err(|_| malformed())?;
    let signature = B64
        .decode(signature.trim())
        .ok()
        .and_then(|s| <[u8; 64]>::try_from(s).ok())
        .ok_or_else(malformed)?;
    if owner_id.is_empty() || owner_id.len() > 64 {
        return Err(malformed());
    }
    Ok(Some(OwnerRequest {
        owner_id: owner_id.to_string(),
        time,
        signature,
    }))
}

/// `GET /api/v2/admin/ceremony`: what a key owner needs to seal a part,
/// for a registered key owner of the instance who signed the request.
#[utoipa::path(
    get,
    path = "/api/v2/admin/ceremony",
    tag = "admin",
    operation_id = "getCeremonyStatus",
    description = "No bearer token: a registered key owner signs the request (`keyledger-key-owner*` headers, `docs/REST.md`). What a key owner needs to seal a master-key part. Without a registered owner's valid signature made within 5 minutes of the server's clock: the same 401 as an unknown instance, so a stranger learns nothing about the instance or its owners.",
    params(super::model::InstanceHeader, super::model::KeyOwnerHeaders),
    responses(
        (status = 200, description = "The ceremony.", body = super::model::CeremonyStatus),
        (status = 400, response = super::model::BadRequest),
        (status = 401, response = super::model::Unauthorized),
        (status = 409, response = super::model::Conflict),
        (status = 500, response = super::model::InternalError),
    )
)]
pub async fn ceremony_status(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let name = instance_name(&req)?;
    let owner = owner_request(&req)?;
    let service = instance(&state, &name)?;
    let Some(owner) = owner else {
        return Err(stranger());
    };
    let status = blocking(move || {
        service
            .ceremony_status_for_owner(&owner.owner_id, owner.time, &owner.signature)
            .map_err(service_error)
    })
    .await?;
    let body = CeremonyStatus {
        generation: status.generation,
        unseal: status.unseal,
        public_key: B64.encode(status.public_key),
        loaded_owners: status.loaded,
        registered_owners: status.owners,
    };
    Ok(json_response(200, JSON, &body))
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
    description = "No bearer token: the key owner's signature authenticates the part. A part whose owner is not registered, or whose signature does not verify with the registered owner's key, gets the same 401 as an unknown instance and is not logged; refusals of a proven owner (loading not approved, a duplicate part) are logged as `access.denied` under that owner.",
    params(super::model::InstanceHeader),
    request_body(content = PartSubmission, content_type = "application/json"),
    responses(
        (status = 200, description = "Loaded and recorded.", body = super::model::PartResult),
        (status = 400, response = super::model::BadRequest),
        (status = 401, response = super::model::Unauthorized),
        (status = 404, response = super::model::NotFound),
        (status = 409, response = super::model::Conflict),
        (status = 413, response = super::model::PayloadTooLarge),
        (status = 415, response = super::model::UnsupportedMediaType),
        (status = 500, response = super::model::InternalError),
    )
)]
pub async fn submit_part(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let name = instance_name(&req)?;
    let submission: PartSubmission = parse_body(&req, &body)?;
    let part = SealedPart {
        enc: b64_field("enc", &submission.enc)?,
        ciphertext: b64_field("ciphertext", &submission.ciphertext)?,
    };
    let signature: [u8; 64] = b64_field("signature", &submission.signature)?
        .try_into()
        .map_err(|_| ApiError::bad_body("signature must be 64 bytes"))?;
    let service = instance(&state, &name)?;
    let correlation = correlation_id(&req);
    let c = correlation.clone();
    let owner = submission.owner_id;
    let (pattern, receipt) = blocking(move || {
        service
            .submit_part(&c, &owner, &part, &signature)
            .map_err(service_error)
    })
    .await?;
    let body = PartResult {
        verification_pattern: pattern,
        seq: receipt.seq,
        receipt: receipt_body(&receipt),
    };
    Ok(with_receipt(
        json_response(200, JSON, &body),
        &receipt,
        &correlation,
    ))
}

fn approval_status(s: &ApprovalStatus) -> ApprovalState {
    match s {
        ApprovalStatus::Pending => ApprovalState::Word(ApprovalWord::Pending),
        ApprovalStatus::Executed(seq) => ApprovalState::Executed(ApprovalExecuted {
            executed_at_seq: *seq,
        }),
        ApprovalStatus::Failed(why) => ApprovalState::Failed(ApprovalFailed {
            failed: why.clone(),
        }),
        ApprovalStatus::Cancelled => ApprovalState::Word(ApprovalWord::Cancelled),
        ApprovalStatus::Expired => ApprovalState::Word(ApprovalWord::Expired),
    }
}

/// The governance projection as answered: no token digests.
fn governance_body(g: &keyledger_core::governance::GovernanceState) -> GovernanceStateBody {
    GovernanceStateBody {
        imprint_mode: g.imprint_mode(),
        thresholds: g.thresholds.map(|t| GovernanceThresholds {
            signature: t.signature,
            revocation: t.revocation,
        }),
        admins: g
            .admins
            .iter()
            .map(|(id, a)| {
                let admin = GovernanceAdmin {
                    name: a.name.clone(),
                    public_key: B64.encode(a.public_key),
                    added_seq: a.added_seq,
                };
                (id.clone(), admin)
            })
            .collect(),
        credentials: g
            .credentials
            .iter()
            .map(|(id, c)| {
                let credential = GovernanceCredential {
                    role: c.role.clone(),
                    issued_seq: c.issued_seq,
                    revoked: c.revoked,
                };
                (id.clone(), credential)
            })
            .collect(),
        policies: g
            .policies
            .iter()
            .map(|(name, p)| {
                let policy = GovernancePolicy {
                    enabled: p.enabled,
                    attributes: p.attributes.clone(),
                    updated_seq: p.updated_seq,
                };
                (name.clone(), policy)
            })
            .collect(),
        approvals: g
            .approvals
            .iter()
            .map(|(id, a)| {
                let approval = GovernanceApproval {
                    operation: a.operation.clone(),
                    target: a.target.clone(),
                    requester: a.requester.clone(),
                    required: a.required,
                    expires_at: a.expires_at.to_rfc3339(),
                    approvers: a.approvers.clone(),
                    requested_seq: a.requested_seq,
                    status: approval_status(&a.status),
                };
                (id.clone(), approval)
            })
            .collect(),
        load_approved_generations: g.load_approved.iter().copied().collect(),
    }
}

/// `GET /api/v2/admin/state` (auditor): administrators, thresholds,
/// credentials (without digests), policies and approvals.
#[utoipa::path(
    get,
    path = "/api/v2/admin/state",
    tag = "admin",
    operation_id = "getGovernanceState",
    description = "Role: auditor. Administrators, thresholds, credentials (never their token digests), policies and approvals.",
    params(super::model::InstanceHeader),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The governance state.", body = super::model::GovernanceStateBody),
        (status = 400, response = super::model::BadRequest),
        (status = 401, response = super::model::Unauthorized),
        (status = 403, response = super::model::Forbidden),
    )
)]
pub async fn state(caller: Authorized<actions::AdminState>) -> Result<HttpResponse, ApiError> {
    let body = caller
        .service
        .with_projections(|p| governance_body(&p.governance));
    Ok(json_response(200, JSON, &body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::answer_bytes;

    fn written<T: serde::Serialize>(body: &T) -> String {
        String::from_utf8(answer_bytes(body).expect("json")).expect("utf8")
    }

    /// Every approval status, as it was written when built with `json!`
    /// (the golden walk reaches all but `failed`).
    #[test]
    fn approval_states_are_written_as_before() {
        for (status, expected) in [
            (ApprovalStatus::Pending, r#""pending""#),
            (ApprovalStatus::Executed(7), r#"{"executed_at_seq":7}"#),
            (
                ApprovalStatus::Failed("no \"key\"".into()),
                r#"{"failed":"no \"key\""}"#,
            ),
            (ApprovalStatus::Cancelled, r#""cancelled""#),
            (ApprovalStatus::Expired, r#""expired""#),
        ] {
            assert_eq!(written(&approval_status(&status)), expected);
        }
    }

    /// In imprint mode the thresholds are `null`, not absent.
    #[test]
    fn imprint_mode_answers_null_thresholds() {
        let g = keyledger_core::governance::GovernanceState::default();
        assert_eq!(
            written(&governance_body(&g)),
            r#"{"admins":{},"approvals":{},"credentials":{},"imprint_mode":true,"load_approved_generations":[],"policies":{},"thresholds":null}"#
        );
    }
}
