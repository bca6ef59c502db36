//! The OpenAPI 3.1 document of the REST API, generated from the code.
//!
//! - Each handler carries a `#[utoipa::path]` annotation (method, path,
//!   parameters, request body, every status it answers); the request types
//!   the handlers parse derive `ToSchema`, so a field added to a body is a
//!   field added to the document.
//! - Every JSON answer is one type of [`super::model`] ([`KeyResource`],
//!   [`WrapResult`], ...) that derives both `Serialize`, which the handler
//!   building the answer writes, and `ToSchema`, which this document uses:
//!   a field added to an answer is a field added to the document, so the
//!   two cannot drift. The schemas still say `additionalProperties: false`,
//!   so an answer not built from its documented type breaks
//!   `tests/openapi.rs` and the schemathesis run (`scripts/schemathesis`)
//!   rather than passing unnoticed. A shape's field order is its property
//!   order here; the wire order is `model::answer_bytes`'s. Headers, path
//!   and query parameters are in `model::params`.
//! - One handler, [`super::keys::action`], serves every
//!   `POST /keys/{id}/actions/{action}`; each action has its own body and
//!   answer, so [`ActionOperations`] documents each as its own operation.
//! - Cross-cutting facts are added once by [`Conventions`]: the bearer
//!   security scheme, the `correlation-id` request and response header
//!   (the access log middleware reads and echoes it on every request), and
//!   the links from a created key to the operations on it.
//!
//! Committed as `schemas/openapi.json` (`tests/openapi.rs` checks it is
//! current; `KEYLEDGER_UPDATE_SCHEMAS=1 cargo test --test openapi`
//! rewrites it) and served at `GET /api/v2/openapi.json`.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use actix_web::HttpResponse;
use utoipa::openapi::path::{HttpMethod, Operation, Parameter, ParameterIn};
use utoipa::openapi::request_body::RequestBody;
use utoipa::openapi::response::Response;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{Content, Header, Ref, RefOr, Required};
use utoipa::{IntoParams, Modify, OpenApi, PartialSchema};

use super::errors::ApiError;
use super::model::actions::{ACTIONS, Action, ActionAnswer};
use super::model::*;

pub use super::model::actions::action_names;

/// The error responses: component name, status, and the only reason
/// codes the server answers with that status (empty: several).
const ERROR_RESPONSES: &[(&str, u16, &[&str])] = &[
    ("BadRequest", 400, &[]),
    ("Unauthorized", 401, &["UNAUTHORIZED_ERR"]),
    ("Forbidden", 403, &[]),
    ("NotFound", 404, &[]),
    ("Conflict", 409, &[]),
    ("Gone", 410, &["KEY_DELETED_ERR"]),
    ("PayloadTooLarge", 413, &["BODY_TOO_LARGE_ERR"]),
    ("UnsupportedMediaType", 415, &["BAD_BODY_ERR"]),
    (
        "Unprocessable",
        422,
        &["KEY_INVALID_STATE_ERR", "UNPROCESSABLE_CIPHERTEXT_ERR"],
    ),
    ("InternalError", 500, &["INTERNAL_SERVER_ERROR"]),
    ("Unavailable", 503, &["INSTANCE_SEALED_ERR"]),
];

fn error_ref(status: u16) -> (String, RefOr<Response>) {
    let name = ERROR_RESPONSES
        .iter()
        .find(|(_, s, _)| *s == status)
        .map_or("InternalError", |(name, _, _)| name);
    (status.to_string(), Ref::from_response_name(name).into())
}

/// The body of an error answer with `status`: Key Protect's error body
/// whose reason carries that status (and one of `codes`, when given) and
/// whose `errorMsg` starts with the status's reason phrase (`errors.rs`).
fn error_schema(status: u16, codes: &[&str]) -> RefOr<Schema> {
    let phrase = actix_web::http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Internal Server Error");
    let mut reason = ObjectBuilder::new().property(
        "status",
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .enum_values(Some([status])),
    );
    if !codes.is_empty() {
        reason = reason.property("code", names(codes));
    }
    let resource = ObjectBuilder::new()
        .property(
            "errorMsg",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(format!("^{phrase}: "))),
        )
        .property(
            "reasons",
            utoipa::openapi::schema::ArrayBuilder::new().items(reason),
        );
    let body = ObjectBuilder::new().property(
        "resources",
        utoipa::openapi::schema::ArrayBuilder::new().items(resource),
    );
    utoipa::openapi::schema::AllOfBuilder::new()
        .item(Ref::from_schema_name("ErrorBody"))
        .item(body)
        .into()
}

fn header(schema: impl Into<RefOr<Schema>>, description: &str) -> Header {
    let mut h = Header::new(schema);
    h.description = Some(description.to_string());
    h
}

fn with_receipt(mut response: Response, receipt: bool) -> Response {
    if receipt {
        response.headers.insert(
            "keyledger-receipt-seq".into(),
            header(u64::schema(), RECEIPT_SEQ).into(),
        );
        response.headers.insert(
            "keyledger-receipt-leaf".into(),
            header(String::schema(), RECEIPT_LEAF).into(),
        );
    }
    response
}

fn json_content(schema: &str) -> Content {
    Content::new(Some(Ref::from_schema_name(schema)))
}

fn action_operation(a: &Action) -> Operation {
    let mut op = Operation::new();
    op.tags = Some(vec!["actions".into()]);
    op.operation_id = Some(a.operation_id.into());
    op.summary = Some(a.summary.into());
    op.description = Some(format!(
        "Role: {}. Served by `POST /api/v2/keys/{{id}}/actions/{{action}}` with `action` = `{}`; the deprecated `POST /api/v2/keys/{{id}}?action={}` does the same.",
        a.role, a.name, a.name
    ));
    let mut params: Vec<Parameter> = InstanceHeader::into_params(|| Some(ParameterIn::Header));
    params.extend(KeyId::into_params(|| Some(ParameterIn::Path)));
    if matches!(a.answer, ActionAnswer::KeyOrNoContent) {
        params.extend(PreferHeader::into_params(|| Some(ParameterIn::Header)));
    }
    op.parameters = Some(params.into_iter().map(RefOr::T).collect());
    if let Some((schema, optional)) = a.body {
        let mut body = RequestBody::new();
        body.content
            .insert("application/json".into(), json_content(schema).into());
        body.content
            .insert(KEY_ACTION_MEDIA.into(), json_content(schema).into());
        body.required = Some(if optional {
            Required::False
        } else {
            Required::True
        });
        if optional {
            body.description = Some("May be omitted (an empty body).".into());
        }
        op.request_body = Some(body.into());
    }
    op.security = Some(vec![utoipa::openapi::security::SecurityRequirement::new(
        "bearer",
        Vec::<String>::new(),
    )]);
    let mut responses = BTreeMap::new();
    match &a.answer {
        ActionAnswer::Json(schema, media) => {
            let mut ok = Response::new("Done; the event is durable.");
            ok.content
                .insert((*media).into(), json_content(schema).into());
            responses.insert("200".to_string(), with_receipt(ok, a.receipt).into());
        }
        ActionAnswer::KeyOrNoContent => {
            let mut ok = Response::new("With `prefer: return=representation`: the key.");
            ok.content
                .insert(KEY_MEDIA.into(), json_content("KeyCollection").into());
            responses.insert("200".to_string(), with_receipt(ok, a.receipt).into());
            let none = Response::new("Done (the default, `return=minimal`).");
            responses.insert("204".to_string(), with_receipt(none, a.receipt).into());
        }
        ActionAnswer::NoContent => {
            let none = Response::new("The key exists; nothing to sync.");
            responses.insert("204".to_string(), with_receipt(none, a.receipt).into());
        }
    }
    let mut statuses = vec![400, 401, 403, 404];
    if a.body.is_some() {
        statuses.extend([413, 415]);
    }
    if a.name != "sync" {
        statuses.extend([409, 410, 422, 500]);
    }
    if a.crypto {
        statuses.push(503);
    }
    for s in statuses {
        let (k, v) = error_ref(s);
        responses.insert(k, v);
    }
    op.responses.responses = responses.into_iter().collect();
    op
}

/// Adds the ten action operations.
struct ActionOperations;

impl Modify for ActionOperations {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for a in ACTIONS {
            let path = format!("/api/v2/keys/{{id}}/actions/{}", a.name);
            openapi
                .paths
                .add_path_operation(path, vec![HttpMethod::Post], action_operation(a));
        }
        let components = openapi.components.get_or_insert_with(Default::default);
        for (name, schema) in [
            ("WrapBody", super::model::requests::WrapBody::schema()),
            ("UnwrapBody", super::model::requests::UnwrapBody::schema()),
            ("RotateBody", super::model::requests::RotateBody::schema()),
        ] {
            components.schemas.insert(name.into(), schema);
        }
    }
}

/// The annotated operations whose every success response carries the
/// receipt of the event the request appended (the key actions get theirs
/// in [`action_operation`]); [`Conventions`] adds the headers.
const RECEIPT_OPERATIONS: &[&str] = &[
    "submitAdminCommand",
    "submitKeyPart",
    "postImportToken",
    "getImportToken",
    "createKey",
    "createKeyWithPolicyOverrides",
    "getKey",
    "deleteKey",
    "purgeKey",
    "restoreKey",
    "actionOnKey",
    "putPolicy",
    "createKeyRing",
    "deleteKeyRing",
    "patchKey",
    "createKeyAlias",
    "deleteKeyAlias",
];

/// Adds the receipt headers to every 2xx response of [`RECEIPT_OPERATIONS`].
fn add_receipts(openapi: &mut utoipa::openapi::OpenApi) {
    for item in openapi.paths.paths.values_mut() {
        for op in operations(item) {
            let carries = op
                .operation_id
                .as_deref()
                .is_some_and(|id| RECEIPT_OPERATIONS.contains(&id));
            if !carries {
                continue;
            }
            for (status, response) in op.responses.responses.iter_mut() {
                if status.starts_with('2')
                    && let RefOr::T(r) = response
                {
                    *r = with_receipt(std::mem::take(r), true);
                }
            }
        }
    }
}

const RECEIPT_SEQ: &str = "The sequence number of the event this request appended: ask `GET /api/v2/ledger/proofs/inclusion?seq=` for its proof.";
const RECEIPT_LEAF: &str = "That event's RFC 9162 leaf hash, hex.";

/// Bearer scheme, `correlation-id` everywhere, links from a created key.
struct Conventions;

impl Modify for Conventions {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut bearer = Http::new(HttpAuthScheme::Bearer);
        bearer.description = Some(
            "An API token of the instance named by `bluemix-instance`, issued by administrator command (`credential.issue`) with a role: reader, writer, manager or auditor.".into(),
        );
        components
            .security_schemes
            .insert("bearer".into(), SecurityScheme::Http(bearer).into());
        for response in components.responses.values_mut() {
            if let RefOr::T(r) = response {
                add_correlation_header(r);
            }
        }
        for (name, status, codes) in ERROR_RESPONSES {
            if let Some(RefOr::T(r)) = components.responses.get_mut(*name) {
                for content in r.content.values_mut() {
                    if let RefOr::T(content) = content {
                        content.schema = Some(error_schema(*status, codes));
                    }
                }
            }
        }
        // `POST /keys` and `/keys_with_policy_overrides` take exactly one
        // key (`create_with`: `[NewKey; 1]`).
        if let Some(RefOr::T(Schema::Object(body))) =
            components.schemas.get_mut("CollectionBody_NewKey")
            && let Some(RefOr::T(Schema::Array(resources))) = body.properties.get_mut("resources")
        {
            resources.min_items = Some(1);
            resources.max_items = Some(1);
        }
        let correlation = {
            let mut p = Parameter::new("correlation-id");
            p.parameter_in = ParameterIn::Header;
            p.required = Required::False;
            p.description = Some("The request's correlation id: kept when it is a clean token (at most 128 characters), otherwise a new one is made; either way it is in the response, the access log and the events.".into());
            p.schema = Some(String::schema());
            p
        };
        for item in openapi.paths.paths.values_mut() {
            for op in operations(item) {
                let params = op.parameters.get_or_insert_with(Vec::new);
                for p in params.iter_mut() {
                    if let RefOr::T(p) = p
                        && let Some(schema) = p.schema.as_mut()
                    {
                        not_null(schema);
                    }
                }
                params.push(RefOr::T(correlation.clone()));
                if let Some(RefOr::T(body)) = op.request_body.as_mut()
                    && body.required != Some(Required::True)
                {
                    for content in body.content.values_mut() {
                        if let RefOr::T(content) = content
                            && let Some(schema) = content.schema.as_mut()
                        {
                            not_null(schema);
                        }
                    }
                }
                for response in op.responses.responses.values_mut() {
                    if let RefOr::T(r) = response {
                        add_correlation_header(r);
                    }
                }
            }
        }
        // `POST /keys/{id}?action=` is Key Protect's deprecated form.
        if let Some(op) = openapi
            .paths
            .paths
            .get_mut("/api/v2/keys/{id}")
            .and_then(|item| item.post.as_mut())
        {
            op.deprecated = Some(utoipa::openapi::Deprecated::True);
        }
        add_receipts(openapi);
        link_created_key(openapi);
    }
}

/// utoipa writes `Option<T>` as "T or null". A parameter (a header or
/// query string, never JSON) and an optional request body are absent when
/// not given, never `null` (the server refuses a `null` body), so their
/// schemas say just T.
fn not_null(schema: &mut RefOr<Schema>) {
    let replacement = match schema {
        RefOr::T(Schema::Object(o)) => {
            if let utoipa::openapi::schema::SchemaType::Array(types) = &o.schema_type {
                let kept: Vec<Type> = types
                    .iter()
                    .filter(|t| **t != Type::Null)
                    .cloned()
                    .collect();
                if let [only] = kept.as_slice() {
                    o.schema_type = utoipa::openapi::schema::SchemaType::Type(only.clone());
                }
            }
            None
        }
        RefOr::T(Schema::OneOf(one)) => {
            let kept: Vec<RefOr<Schema>> = one
                .items
                .iter()
                .filter(|s| {
                    !matches!(s, RefOr::T(Schema::Object(o))
                        if o.schema_type == utoipa::openapi::schema::SchemaType::Type(Type::Null))
                })
                .cloned()
                .collect();
            match kept.as_slice() {
                [only] => Some(only.clone()),
                _ => None,
            }
        }
        _ => None,
    };
    if let Some(r) = replacement {
        *schema = r;
    }
}

fn add_correlation_header(r: &mut Response) {
    r.headers.insert(
        "correlation-id".into(),
        header(
            String::schema(),
            "The request's correlation id (the client's, or a new one).",
        )
        .into(),
    );
}

fn operations(item: &mut utoipa::openapi::PathItem) -> Vec<&mut Operation> {
    [
        item.get.as_mut(),
        item.put.as_mut(),
        item.post.as_mut(),
        item.delete.as_mut(),
        item.head.as_mut(),
        item.patch.as_mut(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Links from `createKey`'s answer to every operation on `/keys/{id}...`,
/// so a client (and schemathesis' stateful phase) can follow a created
/// key's id.
fn link_created_key(openapi: &mut utoipa::openapi::OpenApi) {
    let mut targets = Vec::new();
    for (path, item) in openapi.paths.paths.iter_mut() {
        if !path.starts_with("/api/v2/keys/{id}") || path.contains("{alias}") {
            continue;
        }
        for op in operations(item) {
            if let Some(id) = &op.operation_id {
                targets.push(id.clone());
            }
        }
    }
    for path in ["/api/v2/keys", "/api/v2/keys_with_policy_overrides"] {
        let Some(item) = openapi.paths.paths.get_mut(path) else {
            continue;
        };
        let Some(op) = item.post.as_mut() else {
            continue;
        };
        let Some(RefOr::T(created)) = op.responses.responses.get_mut("201") else {
            continue;
        };
        for target in &targets {
            let link = utoipa::openapi::link::LinkBuilder::new()
                .operation_id(target)
                .parameter("id", "$response.body#/resources/0/id")
                .build();
            created.links.insert(target.clone(), link.into());
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "keyledger",
        description = "The IBM Key Protect API v2 as keyledger serves it, plus keyledger's auditor (`/api/v2/ledger`) and governance (`/api/v2/admin`) endpoints and its operations endpoints. Generated from the code (`crates/keyledger-server/src/openapi.rs`); see `docs/REST.md`.\n\nEvery error is Key Protect's error body (`application/vnd.ibm.kms.error+json`). Request bodies are `application/json` or `application/vnd.ibm.kms.*+json`. Responses to requests that append an event carry `keyledger-receipt-seq` and `keyledger-receipt-leaf`."
    ),
    paths(
        super::ops::health,
        super::ops::ready,
        serve,
        super::keys::list,
        super::keys::head,
        super::keys::create,
        super::keys::create_with_policy_overrides,
        super::keys::get,
        super::keys::action_query,
        super::rings_aliases::patch_key,
        super::keys::delete,
        super::keys::metadata,
        super::keys::versions,
        super::keys::purge,
        super::keys::restore,
        super::policies::get_key_policies,
        super::policies::put_key_policies,
        super::policies::get_instance_policies,
        super::policies::put_instance_policies,
        super::policies::allowed_ip_port,
        super::import_tokens::create,
        super::import_tokens::get,
        super::rings_aliases::create_alias,
        super::rings_aliases::delete_alias,
        super::rings_aliases::list_key_rings,
        super::rings_aliases::create_key_ring,
        super::rings_aliases::delete_key_ring,
        super::registrations::all,
        super::registrations::of_key,
        super::ledger_api::checkpoint,
        super::ledger_api::records,
        super::ledger_api::inclusion,
        super::ledger_api::consistency,
        super::ledger_api::bundle,
        super::admin_api::submit_command,
        super::admin_api::ceremony_status,
        super::admin_api::submit_part,
        super::admin_api::state,
    ),
    components(
        responses(
            BadRequest,
            Unauthorized,
            Forbidden,
            NotFound,
            Conflict,
            Gone,
            PayloadTooLarge,
            UnsupportedMediaType,
            Unprocessable,
            InternalError,
            Unavailable
        ),
        schemas(
            ErrorBody,
            WrapResult,
            UnwrapResult,
            RewrapResult,
            KeyCollection,
            ActionName,
            KeyPolicyName,
            InstancePolicyName
        )
    ),
    modifiers(&ActionOperations, &Conventions),
    tags(
        (name = "keys", description = "Key Protect keys"),
        (name = "actions", description = "Key Protect key actions"),
        (name = "policies", description = "Key and instance policies"),
        (name = "import tokens", description = "Secure import"),
        (name = "key rings and aliases"),
        (name = "registrations"),
        (name = "ledger", description = "Auditor endpoints (role `auditor`)"),
        (name = "admin", description = "Governance: signed administrator commands and the master-key ceremony"),
        (name = "operations", description = "Health, readiness and this document (metrics are on the operations listener, `docs/REST.md`)"),
    )
)]
struct ApiDoc;

/// The document.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The document as committed: pretty JSON and a final newline.
pub fn document_json() -> Result<String, serde_json::Error> {
    document().to_pretty_json().map(|mut s| {
        s.push('\n');
        s
    })
}

static DOCUMENT: OnceLock<Option<String>> = OnceLock::new();

/// `GET /api/v2/openapi.json`: this document (no authentication).
#[utoipa::path(
    get,
    path = "/api/v2/openapi.json",
    tag = "operations",
    operation_id = "getOpenApiDocument",
    responses(
        (status = 200, description = "The OpenAPI 3.1 document (`schemas/openapi.json`).", content_type = "application/json", body = Object),
    )
)]
pub async fn serve() -> Result<HttpResponse, ApiError> {
    let doc = DOCUMENT
        .get_or_init(|| document_json().ok())
        .clone()
        .ok_or_else(ApiError::internal)?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(doc))
}
