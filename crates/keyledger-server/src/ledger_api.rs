//! Auditor endpoints (role `auditor` only): the latest checkpoint, records
//! by range, RFC 9162 inclusion and consistency proofs, and a streamed
//! export bundle that `keyledger verify --url` reads. See `docs/REST.md`,
//! "Auditor and admin endpoints".
//!
//! Everything here reads the instance's durable log; nothing is answered
//! from a cache that the log does not back. Bad parameters are 400
//! (`INVALID_QUERY_PARAM_ERR`), sizes or positions beyond the durable log
//! are 404 (`NOT_FOUND_ERR`): never a 5xx for bad input.

use std::collections::HashMap;

use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use futures_util::StreamExt;

use super::auth::{Authorized, actions};
use super::errors::ApiError;
use super::model::{
    BundleStreamHeader, ConsistencyProof, InclusionProof, LedgerRecord, RecordsPage, answer_bytes,
};
use super::wire::{blocking, json_response};
use keyledger_core::merkle::{self, Hash, ProofError};
use keyledger_kms::service::KeyService;
use keyledger_ledger::audit::{self, AuditError, AuditNodes, SignedCheckpoint};
use keyledger_ledger::store::StoreError;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Most records one `GET /ledger/records` returns.
pub const MAX_RECORDS_PAGE: u64 = 1000;
/// Records read from the store per step of a bundle download (smaller
/// than an export's step: each is one chunk of the HTTP stream).
const BUNDLE_CHUNK: u64 = 1024;
/// Media type of the streamed bundle (`docs/REST.md`).
pub const BUNDLE_STREAM_MEDIA_TYPE: &str = "application/vnd.keyledger.bundle-stream";
/// Format name in the stream's header line.
pub const BUNDLE_STREAM_FORMAT: &str = "keyledger-bundle-stream/1";
/// The media type of the JSON answers.
const JSON: &str = "application/json";

fn invalid(param: &str, why: &str) -> ApiError {
    ApiError::new(
        400,
        "INVALID_QUERY_PARAM_ERR",
        format!("invalid query parameter {param}: {why}"),
    )
}

fn beyond_log(what: &str, value: u64, size: u64) -> ApiError {
    ApiError::not_found(format!(
        "{what} {value} is beyond the log, which has {size} records"
    ))
}

/// The query parameters, parsed strictly (a malformed query is a 400).
fn query(req: &HttpRequest) -> Result<HashMap<String, String>, ApiError> {
    web::Query::<HashMap<String, String>>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .map_err(|_| invalid("(query string)", "not a valid query string"))
}

/// A decimal `u64` parameter; `None` when absent.
fn number(q: &HashMap<String, String>, name: &str) -> Result<Option<u64>, ApiError> {
    match q.get(name) {
        None => Ok(None),
        Some(v) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => v
            .parse()
            .map(Some)
            .map_err(|_| invalid(name, "number too large")),
        Some(_) => Err(invalid(name, "must be a non-negative decimal integer")),
    }
}

fn required(q: &HashMap<String, String>, name: &str) -> Result<u64, ApiError> {
    number(q, name)?.ok_or_else(|| invalid(name, "is required"))
}

fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::OutOfRange { start, size, .. } => beyond_log("position", start, size),
        _ => ApiError::internal(),
    }
}

fn proof_error(e: ProofError<StoreError>) -> ApiError {
    match e {
        ProofError::Source(e) => store_error(e),
        ProofError::IndexOutOfRange { index, size } => {
            invalid("seq", &format!("{index} is not below size {size}"))
        }
        ProofError::Size1GreaterThanSize2 { size1, size2 } => {
            invalid("from", &format!("{size1} is greater than to {size2}"))
        }
        _ => ApiError::internal(),
    }
}

fn b64_hashes(hashes: &[Hash]) -> Vec<String> {
    hashes.iter().map(|h| B64.encode(h)).collect()
}

/// The checkpoint the auditor endpoints answer with: one covering the
/// whole durable log (`AuditLog::checkpoint`). Returns the note and its
/// size.
pub(super) fn current_checkpoint(service: &KeyService) -> Result<(String, u64), ApiError> {
    let SignedCheckpoint { note, size } =
        service.audit_log().checkpoint().map_err(|e| match e {
            AuditError::Store(e) => store_error(e),
            _ => ApiError::internal(),
        })?;
    Ok((note, size))
}

/// `GET /api/v2/ledger/checkpoint`: the C2SP signed note, `text/plain`.
#[utoipa::path(
    get,
    path = "/api/v2/ledger/checkpoint",
    tag = "ledger",
    operation_id = "getCheckpoint",
    description = "Role: auditor. The C2SP signed note of the whole durable log (the latest stored one if it covers it, else one signed now).",
    params(super::model::InstanceHeader),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The signed note (`docs/LEDGER-FORMAT.md` §6).", body = String, content_type = "text/plain; charset=utf-8"),
        (status = 400, response = super::model::BadRequest),
        (status = 401, response = super::model::Unauthorized),
        (status = 403, response = super::model::Forbidden),
        (status = 404, response = super::model::NotFound),
        (status = 500, response = super::model::InternalError),
    )
)]
pub async fn checkpoint(
    caller: Authorized<actions::LedgerCheckpoint>,
) -> Result<HttpResponse, ApiError> {
    let service = caller.service.clone();
    let (note, _) = blocking(move || current_checkpoint(&service)).await?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body(note))
}

/// `GET /api/v2/ledger/records?start=S[&end=E]`: records `S..E` (end
/// exclusive; default and maximum `S + 1000`, clipped to the log).
#[utoipa::path(
    get,
    path = "/api/v2/ledger/records",
    tag = "ledger",
    operation_id = "getRecords",
    description = "Role: auditor. Records `start..end` (end exclusive, at most 1000; default `min(start + 1000, size)`).",
    params(super::model::InstanceHeader, ("start" = u64, Query, description = "First record."), ("end" = Option<u64>, Query, description = "End, exclusive.")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The records.", body = super::model::RecordsPage),
        (status = 400, response = super::model::BadRequest),
        (status = 401, response = super::model::Unauthorized),
        (status = 403, response = super::model::Forbidden),
        (status = 404, response = super::model::NotFound),
        (status = 500, response = super::model::InternalError),
    )
)]
pub async fn records(
    caller: Authorized<actions::LedgerRecords>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let q = query(&req)?;
    let start = required(&q, "start")?;
    let end = number(&q, "end")?;
    if let Some(end) = end {
        if end < start {
            return Err(invalid("end", "must not be below start"));
        }
        if end - start > MAX_RECORDS_PAGE {
            return Err(invalid("end", "at most 1000 records per page"));
        }
    }
    let service = caller.service.clone();
    let body = blocking(move || {
        let log = service.audit_log();
        let size = log.size();
        if start > size {
            return Err(beyond_log("start", start, size));
        }
        let end = match end {
            Some(end) if end > size => return Err(beyond_log("end", end, size)),
            Some(end) => end,
            None => start.saturating_add(MAX_RECORDS_PAGE).min(size),
        };
        let records = log.records(start, end).map_err(store_error)?;
        let mut items = Vec::with_capacity(records.len());
        for (seq, record) in (start..).zip(records) {
            let event =
                String::from_utf8(record.event.clone()).map_err(|_| ApiError::internal())?;
            items.push(LedgerRecord {
                seq,
                event,
                signature: B64.encode(record.signature),
                leaf_hash: B64.encode(record.leaf_hash()),
            });
        }
        Ok(RecordsPage {
            start,
            end,
            size,
            records: items,
        })
    })
    .await?;
    Ok(json_response(200, JSON, &body))
}

/// `GET /api/v2/ledger/proofs/inclusion?seq=N[&size=M]`: the RFC 9162
/// inclusion proof of record N in the tree of size M (default: the durable
/// log), its leaf hash and that tree's root.
#[utoipa::path(
    get,
    path = "/api/v2/ledger/proofs/inclusion",
    tag = "ledger",
    operation_id = "getInclusionProof",
    description = "Role: auditor. The RFC 9162 inclusion proof of record `seq` in the tree of `size` (default: the durable log).",
    params(super::model::InstanceHeader, ("seq" = u64, Query, description = "The record."), ("size" = Option<u64>, Query, description = "The tree size.")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The proof.", body = super::model::InclusionProof),
        (status = 400, response = super::model::BadRequest),
        (status = 401, response = super::model::Unauthorized),
        (status = 403, response = super::model::Forbidden),
        (status = 404, response = super::model::NotFound),
        (status = 500, response = super::model::InternalError),
    )
)]
pub async fn inclusion(
    caller: Authorized<actions::LedgerProof>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let q = query(&req)?;
    let seq = required(&q, "seq")?;
    let size = number(&q, "size")?;
    let service = caller.service.clone();
    let body = blocking(move || {
        let log = service.audit_log();
        let head = log.size();
        let size = size.unwrap_or(head);
        if size > head {
            return Err(beyond_log("size", size, head));
        }
        if seq >= size {
            return Err(invalid("seq", &format!("{seq} is not below size {size}")));
        }
        let nodes = AuditNodes(log);
        let leaf = log.node(0, seq).map_err(store_error)?;
        let proof = merkle::inclusion_proof(&nodes, seq, size).map_err(proof_error)?;
        let root = merkle::root_at(&nodes, size).map_err(proof_error)?;
        Ok(InclusionProof {
            seq,
            size,
            leaf_hash: B64.encode(leaf),
            leaf_hash_hex: hex::encode(leaf),
            proof: b64_hashes(&proof),
            root: B64.encode(root),
        })
    })
    .await?;
    Ok(json_response(200, JSON, &body))
}

/// `GET /api/v2/ledger/proofs/consistency?from=A&to=B`: the RFC 9162
/// consistency proof between the trees of sizes A and B, and both roots.
#[utoipa::path(
    get,
    path = "/api/v2/ledger/proofs/consistency",
    tag = "ledger",
    operation_id = "getConsistencyProof",
    description = "Role: auditor. The RFC 9162 consistency proof between the trees of sizes `from` and `to` (`from` ≤ `to`).",
    params(super::model::InstanceHeader, ("from" = u64, Query, description = "The older size."), ("to" = u64, Query, description = "The newer size.")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The proof.", body = super::model::ConsistencyProof),
        (status = 400, response = super::model::BadRequest),
        (status = 401, response = super::model::Unauthorized),
        (status = 403, response = super::model::Forbidden),
        (status = 404, response = super::model::NotFound),
        (status = 500, response = super::model::InternalError),
    )
)]
pub async fn consistency(
    caller: Authorized<actions::LedgerProof>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let q = query(&req)?;
    let from = required(&q, "from")?;
    let to = required(&q, "to")?;
    if from > to {
        return Err(invalid("from", &format!("{from} is greater than to {to}")));
    }
    let service = caller.service.clone();
    let body = blocking(move || {
        let log = service.audit_log();
        let head = log.size();
        if to > head {
            return Err(beyond_log("to", to, head));
        }
        let nodes = AuditNodes(log);
        let proof = merkle::consistency_proof(&nodes, from, to).map_err(proof_error)?;
        let from_root = merkle::root_at(&nodes, from).map_err(proof_error)?;
        let to_root = merkle::root_at(&nodes, to).map_err(proof_error)?;
        Ok(ConsistencyProof {
            from,
            to,
            proof: b64_hashes(&proof),
            from_root: B64.encode(from_root),
            to_root: B64.encode(to_root),
        })
    })
    .await?;
    Ok(json_response(200, JSON, &body))
}

/// The stream's first line: manifest and checkpoint as one JSON object,
/// then `\n`; `records.bin` follows verbatim to the end.
fn bundle_header(service: &KeyService) -> Result<(Vec<u8>, u64), ApiError> {
    let (note, size) = current_checkpoint(service)?;
    let manifest = audit::manifest(service.audit_log(), size);
    let header = BundleStreamHeader {
        format: BUNDLE_STREAM_FORMAT,
        manifest,
        checkpoint: &note,
    };
    let mut line = answer_bytes(&header).map_err(|_| ApiError::internal())?;
    line.push(b'\n');
    Ok((line, size))
}

/// `GET /api/v2/ledger/bundle`: the export bundle as one stream (format in
/// `docs/REST.md`), records read in chunks so memory stays bounded.
#[utoipa::path(
    get,
    path = "/api/v2/ledger/bundle",
    tag = "ledger",
    operation_id = "getBundle",
    description = "Role: auditor. The export bundle as one stream: a JSON header line, then `records.bin` (`docs/REST.md`, Bundle stream).",
    params(super::model::InstanceHeader),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The stream.", body = inline(super::model::Binary), content_type = "application/vnd.keyledger.bundle-stream"),
        (status = 400, response = super::model::BadRequest),
        (status = 401, response = super::model::Unauthorized),
        (status = 403, response = super::model::Forbidden),
        (status = 404, response = super::model::NotFound),
        (status = 500, response = super::model::InternalError),
    )
)]
pub async fn bundle(caller: Authorized<actions::LedgerExport>) -> Result<HttpResponse, ApiError> {
    let service = caller.service.clone();
    let (header, size) = blocking(move || bundle_header(&service)).await?;
    let service = caller.service.clone();
    let head =
        futures_util::stream::once(
            async move { Ok::<_, actix_web::Error>(web::Bytes::from(header)) },
        );
    let body = futures_util::stream::unfold(0u64, move |start| {
        let service = service.clone();
        async move {
            if start >= size {
                return None;
            }
            let end = start.saturating_add(BUNDLE_CHUNK).min(size);
            let chunk = web::block(move || {
                let mut frames = Vec::new();
                audit::write_frames(service.audit_log(), start, end, &mut frames)
                    .map(|()| web::Bytes::from(frames))
            })
            .await
            .map_err(actix_web::error::ErrorInternalServerError)
            .and_then(|r| r.map_err(actix_web::error::ErrorInternalServerError));
            Some((chunk, end))
        }
    });
    Ok(HttpResponse::Ok()
        .content_type(BUNDLE_STREAM_MEDIA_TYPE)
        .streaming(head.chain(body)))
}
