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

use std::sync::Arc;

use actix_web::{HttpMessage, HttpRequest};
use sha2::{Digest, Sha256};

use super::access_log::{Authenticated, CorrelationId};
use super::errors::ApiError;
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

/// The client's `correlation-id` header, if it is a clean token.
pub fn client_correlation_id(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get("correlation-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| keyledger_core::event::check_token("correlation_id", v, 128).is_ok())
        .map(str::to_string)
}

/// The correlation id of a request: the one the access log decided, else
/// the client's if it is a clean token, else a new one.
pub fn correlation_id(req: &HttpRequest) -> String {
    if let Some(id) = req.extensions().get::<CorrelationId>() {
        return id.0.clone();
    }
    client_correlation_id(req).unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
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
pub async fn authenticate(
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

#[cfg(test)]
mod tests {
    use super::*;

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
