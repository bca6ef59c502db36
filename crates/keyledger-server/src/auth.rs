//! Bearer authentication and role checks.
//!
//! A request names its instance (`bluemix-instance`) and carries `authorization:
//! Bearer <token>`. The token's SHA-256 is looked up among the instance's
//! active credentials (issued by administrator command; only digests are in
//! the log). An unknown instance, an unknown token and a token of another
//! instance all get the same 401, so a caller learns nothing about other
//! instances. Lookup is by digest: timing reveals nothing about the token.
//! A known caller whose role does not allow the action gets 403 and an
//! `access.denied` event; unauthenticated noise is only counted in metrics.
//!
//! Handlers take [`Authorized<A>`] as an argument: the one extractor that
//! authenticates the caller and checks its role against what the route's
//! [`Action`] needs, before the handler runs. The actions are types
//! ([`actions`]), so a handler's signature says what role it requires.

use std::borrow::Cow;
use std::future::Future;
use std::marker::PhantomData;
use std::ops::Deref;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use sha2::{Digest, Sha256};

use super::access_log::{Authenticated, correlation_id};
use super::errors::ApiError;
use super::registry::AppState;
use keyledger_core::event::{AccessDenied, Actor, AuthMethod};
use keyledger_kms::service::KeyService;

pub use keyledger_core::roles::Need;
use keyledger_core::roles::{allows, role_of};

/// An authenticated caller.
#[derive(Clone)]
pub struct Caller {
    pub service: Arc<KeyService>,
    pub actor: Actor,
    pub correlation_id: String,
}

/// Who a bearer token proves the caller to be: decided by [`identify`]
/// (run by the request guard before any body is read), then checked
/// against the action's role by [`authenticate`].
#[derive(Clone)]
pub struct Identity {
    service: Arc<KeyService>,
    credential_id: String,
    role_name: String,
    ip_allowed: bool,
}

/// The value of a header that must appear at most once: `Ok(None)` when
/// absent, 400 when repeated (a proxy and a client disagreeing on who the
/// caller is must not be settled by "first value wins").
pub fn single_header<'a>(req: &'a HttpRequest, name: &str) -> Result<Option<&'a str>, ApiError> {
    let mut values = req.headers().get_all(name);
    let first = values.next();
    if values.next().is_some() {
        return Err(ApiError::invalid_header(format!(
            "the {name} header must appear at most once"
        )));
    }
    Ok(first.and_then(|v| v.to_str().ok()))
}

/// The token of an `authorization: Bearer <token>` header; the scheme is
/// case-insensitive (RFC 9110 section 11.1).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Identifies the caller of a bearer-authenticated route from its headers
/// alone: 400 for a missing or repeated `bluemix-instance` or a repeated
/// `authorization`, the same 401 for a missing token, an unknown instance
/// and a token that is not one of the instance's active credentials.
pub fn identify(
    req: &HttpRequest,
    registry: &super::registry::Registry,
) -> Result<Identity, ApiError> {
    let instance = single_header(req, "bluemix-instance")?
        .ok_or_else(|| ApiError::invalid_header("the bluemix-instance header is required"))?;
    let token = single_header(req, "authorization")?
        .and_then(bearer_token)
        .ok_or_else(ApiError::unauthorized)?;
    super::metrics::count_auth_attempt();
    let Some(service) = registry.get(instance) else {
        super::metrics::count_unauthenticated();
        return Err(ApiError::unauthorized());
    };
    let digest = base16ct::lower::encode_string(&Sha256::digest(token.as_bytes()));
    let peer = req.peer_addr().map(|a| a.ip());
    let credential = service.with_projections(|p| {
        p.governance
            .credential_by_digest(&digest)
            .map(|(id, c)| (id.clone(), c.role.clone()))
            .map(|c| (c, peer.is_none_or(|ip| p.governance.admits(ip))))
    });
    let Some(((credential_id, role_name), ip_allowed)) = credential else {
        super::metrics::count_unauthenticated();
        return Err(ApiError::unauthorized());
    };
    Ok(Identity {
        service,
        credential_id,
        role_name,
        ip_allowed,
    })
}

/// Authenticates the request (the identity the guard established, else
/// [`identify`]) and checks its role allows `need` for `action` (named in
/// the denial event).
async fn authenticate(
    req: &HttpRequest,
    registry: &super::registry::Registry,
    need: Need,
    action: &str,
) -> Result<Caller, ApiError> {
    let known = req.extensions().get::<Identity>().cloned();
    let Identity {
        service,
        credential_id,
        role_name,
        ip_allowed,
    } = match known {
        Some(identity) => identity,
        None => identify(req, registry)?,
    };
    let role = role_of(&role_name).ok_or_else(ApiError::unauthorized)?;
    req.extensions_mut().insert(Authenticated {
        instance: service.instance().to_string(),
        principal: credential_id.clone(),
    });
    let caller = Caller {
        service,
        actor: Actor {
            principal: credential_id,
            role,
            auth: AuthMethod::Bearer,
        },
        correlation_id: correlation_id(req),
    };
    let refusal = if !ip_allowed {
        Some((
            "the instance policies allowedIP/allowedNetwork do not admit this address".to_string(),
            ApiError::new(
                403,
                "FORBIDDEN_ERR",
                "requests from this address are not allowed by the instance's allowedIP or allowedNetwork policy",
            ),
        ))
    } else if !allows(role, need) {
        Some((
            format!("role {role_name} may not {action}"),
            ApiError::forbidden(),
        ))
    } else {
        None
    };
    if let Some((reason, error)) = refusal {
        let event = AccessDenied {
            action: action.to_string(),
            target: req.path().chars().take(128).collect(),
            reason,
        };
        // Answered once the denial is durable; the worker thread serves
        // other requests meanwhile.
        if let Ok(pending) =
            caller
                .service
                .submit_access_denied(&caller.actor, &caller.correlation_id, &event)
        {
            let _ = pending.received().await;
        }
        return Err(error);
    }
    Ok(caller)
}

/// What a route needs of its caller: the [`Need`] its role must meet and
/// the action name a denial records (`access.denied`).
pub trait Action: 'static {
    /// The need and action name of this request, or the 400 of a request
    /// that names no action this route knows.
    fn requirement(req: &HttpRequest) -> Result<(Need, Cow<'static, str>), ApiError>;
}

/// An authenticated caller whose role allows action `A`: extracting it
/// authenticates the request and checks the role; a denial is durable
/// (`access.denied`) before the refusal is answered.
pub struct Authorized<A> {
    caller: Caller,
    action: Cow<'static, str>,
    _action: PhantomData<fn() -> A>,
}

impl<A> Authorized<A> {
    /// The action this request was authorised for (e.g. `wrap`).
    pub fn action(&self) -> &str {
        &self.action
    }

    /// The caller, apart from the authorisation.
    pub fn into_caller(self) -> Caller {
        self.caller
    }
}

impl<A> Deref for Authorized<A> {
    type Target = Caller;
    fn deref(&self) -> &Caller {
        &self.caller
    }
}

impl<A: Action> FromRequest for Authorized<A> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = req
                .app_data::<web::Data<AppState>>()
                .cloned()
                .ok_or_else(ApiError::internal)?;
            let (need, action) = A::requirement(&req)?;
            let caller = authenticate(&req, &state.registry, need, &action).await?;
            Ok(Authorized {
                caller,
                action,
                _action: PhantomData,
            })
        })
    }
}

/// The actions of the routes, one type each: the role a route needs is
/// in its handler's signature (`Authorized<actions::Wrap>` ...).
pub mod actions {
    use std::borrow::Cow;

    use actix_web::HttpRequest;

    use super::{Action, Need};
    use crate::errors::ApiError;

    macro_rules! actions {
        ($($(#[$doc:meta])* $name:ident => $need:ident, $action:literal;)*) => {$(
            $(#[$doc])*
            pub enum $name {}
            impl Action for $name {
                fn requirement(_: &HttpRequest) -> Result<(Need, Cow<'static, str>), ApiError> {
                    Ok((Need::$need, Cow::Borrowed($action)))
                }
            }
        )*};
    }

    actions! {
        /// `POST /keys`: create or import a key.
        CreateKey => Writer, "create";
        /// `GET /keys`: list keys.
        ListKeys => Reader, "list";
        /// `HEAD /keys`: count keys.
        CountKeys => Reader, "head";
        /// `GET /keys/{id}`: a key with its payload (standard keys).
        ReadKey => Writer, "read";
        /// `GET /keys/{id}/metadata`.
        ReadKeyMetadata => Reader, "read_metadata";
        /// `GET /keys/{id}/versions`.
        ListKeyVersions => Reader, "list_versions";
        /// `DELETE /keys/{id}`.
        DeleteKey => Manager, "delete";
        /// `DELETE /keys/{id}/purge`.
        PurgeKey => Manager, "purge";
        /// `POST /keys/{id}/restore`.
        RestoreKey => Manager, "restore";
        /// `GET /keys/{id}/policies`.
        ReadKeyPolicies => Reader, "read_policies";
        /// `PUT /keys/{id}/policies`.
        SetKeyPolicies => Manager, "set_policy";
        /// `GET /instance/policies`.
        ReadInstancePolicies => Reader, "read_instance_policies";
        /// `PUT /instance/policies`.
        SetInstancePolicies => Manager, "set_instance_policy";
        /// `GET /instance/allowed_ip_port`.
        ReadAllowedIpPort => Reader, "read_allowed_ip_port";
        /// `GET /keys/{id}/registrations` and `GET /keys/registrations`.
        ListRegistrations => Reader, "list_registrations";
        /// `GET /key_rings`.
        ListKeyRings => Reader, "list_key_rings";
        /// `POST /key_rings/{id}`.
        CreateKeyRing => Manager, "create_key_ring";
        /// `DELETE /key_rings/{id}`.
        DeleteKeyRing => Manager, "delete_key_ring";
        /// `PATCH /keys/{id}`: move a key to another key ring.
        MoveKey => Manager, "patch";
        /// `POST /keys/{id}/aliases/{alias}`.
        CreateAlias => Writer, "create_alias";
        /// `DELETE /keys/{id}/aliases/{alias}`.
        DeleteAlias => Writer, "delete_alias";
        /// `POST /import_token`.
        CreateImportToken => Writer, "create_import_token";
        /// `GET /import_token`.
        ReadImportToken => Writer, "get_import_token";
        /// `GET /ledger/checkpoint`.
        LedgerCheckpoint => Auditor, "ledger.checkpoint";
        /// `GET /ledger/records`.
        LedgerRecords => Auditor, "ledger.records";
        /// `GET /ledger/proofs/inclusion` and `/ledger/proofs/consistency`.
        LedgerProof => Auditor, "ledger.proof";
        /// `GET /ledger/bundle`.
        LedgerExport => Auditor, "ledger.export";
        /// `GET /admin/state`.
        AdminState => Auditor, "admin.state";
    }

    /// `POST /keys/{id}/actions/{action}` and `POST /keys/{id}?action=`:
    /// the need depends on the action named (`wrap` needs a writer,
    /// `disable` a manager, ...; `keyledger_core::roles`).
    pub enum KeyAction {}

    impl Action for KeyAction {
        fn requirement(req: &HttpRequest) -> Result<(Need, Cow<'static, str>), ApiError> {
            let action = match req.match_info().get("action") {
                Some(action) => action.to_string(),
                None => web_query_action(req)?,
            };
            let need = keyledger_core::roles::need_for_key_action(&action).ok_or_else(|| {
                ApiError::new(
                    400,
                    "INVALID_QUERY_PARAM_ERR",
                    format!(
                        "unknown action {:?}",
                        action.chars().take(40).collect::<String>()
                    ),
                )
            })?;
            Ok((need, Cow::Owned(action)))
        }
    }

    /// The `action` query parameter, required.
    fn web_query_action(req: &HttpRequest) -> Result<String, ApiError> {
        let query = actix_web::web::Query::<std::collections::HashMap<String, String>>::from_query(
            req.query_string(),
        )
        .map_err(|_| {
            ApiError::new(
                400,
                "INVALID_QUERY_PARAM_ERR",
                "the action parameter is required",
            )
        })?;
        query.get("action").cloned().ok_or_else(|| {
            ApiError::new(
                400,
                "INVALID_QUERY_PARAM_ERR",
                "the action parameter is required",
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_action_needs_what_the_role_table_says() {
        use actix_web::ResponseError;
        use actix_web::test::TestRequest;
        let need = |req: HttpRequest| {
            <actions::KeyAction as Action>::requirement(&req).map(|(n, a)| (n, a.into_owned()))
        };
        let path = |action: &str| {
            TestRequest::default()
                .param("action", action.to_string())
                .to_http_request()
        };
        let query =
            |q: &str| TestRequest::with_uri(&format!("/api/v2/keys/k{q}")).to_http_request();
        assert_eq!(need(path("wrap")).ok(), Some((Need::Writer, "wrap".into())));
        assert_eq!(
            need(path("disable")).ok(),
            Some((Need::Manager, "disable".into()))
        );
        assert_eq!(
            need(query("?action=rotate")).ok(),
            Some((Need::Writer, "rotate".into()))
        );
        assert_eq!(
            need(query("?action=restore")).ok(),
            Some((Need::Manager, "restore".into()))
        );
        for (req, message) in [
            (path("explode"), "unknown action \"explode\""),
            (query("?action=explode"), "unknown action \"explode\""),
            (query(""), "the action parameter is required"),
            (query("?other=1"), "the action parameter is required"),
        ] {
            let error = need(req).expect_err(message);
            assert_eq!(error.status_code().as_u16(), 400);
            assert!(error.to_string().contains(message), "{error}");
        }
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        for v in ["Bearer t0k", "bearer t0k", "BEARER t0k", "bEaReR   t0k "] {
            assert_eq!(bearer_token(v), Some("t0k"), "{v}");
        }
        for v in [
            "Basic t0k",
            "Bearer",
            "Bearer ",
            "Bearert0k",
            "t0k",
            "Bearer\tt0k",
        ] {
            assert_eq!(bearer_token(v), None, "{v}");
        }
    }
}
