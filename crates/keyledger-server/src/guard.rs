//! The request guard: what every request must satisfy before a handler
//! reads its body.
//!
//! - A bearer-authenticated route (every `/api/v2/` route except the
//!   OpenAPI document and the signed admin routes, whose signature is in the
//!   body) identifies its caller from the headers first ([`auth::identify`]):
//!   a caller who proves no identity gets its 400/401 at once, its body is
//!   never read and its connection is closed, so an anonymous client cannot
//!   make the server hold a body for it.
//! - `authorization` and `bluemix-instance` may appear at most once (400).
//! - A body must arrive within `body_timeout` of the request head; a slower
//!   one gets 408 `REQUEST_TIMEOUT_ERR` and its connection is closed.
//!
//! The role check stays with each handler (it names the action).
//!
//! [`auth::identify`]: super::auth::identify

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::ConnectionType;
use actix_web::middleware::Next;
use actix_web::rt::time::{Sleep, sleep};
use actix_web::web::{Bytes, Data};
use actix_web::{HttpMessage, ResponseError};
use futures_util::Stream;

use super::auth::{identify, single_header};
use super::errors::ApiError;
use super::registry::AppState;

/// How long a body may take to arrive, counted from the request head.
#[derive(Clone, Copy)]
pub struct BodyTimeout(pub Duration);

/// Routes under `/api/v2/` that do not take a bearer token.
const NOT_BEARER: &[&str] = &[
    "/api/v2/openapi.json",
    "/api/v2/admin/commands",
    "/api/v2/admin/ceremony",
    "/api/v2/admin/ceremony/parts",
];

/// Whether `path` is served only to a bearer of a credential.
fn takes_bearer(path: &str) -> bool {
    path.starts_with("/api/v2/") && !NOT_BEARER.contains(&path)
}

/// Whether the request announces a body (`content-length` above zero, or a
/// transfer coding).
fn announces_body(req: &ServiceRequest) -> bool {
    let headers = req.headers();
    if headers.contains_key("transfer-encoding") {
        return true;
    }
    headers
        .get("content-length")
        .is_some_and(|v| v.to_str().ok().and_then(|v| v.trim().parse::<u64>().ok()) != Some(0))
}

/// A refusal answered before the handler: the error body, and the
/// connection closed when a body is left unread behind it.
fn refuse<B>(req: ServiceRequest, error: ApiError, close: bool) -> ServiceResponse<EitherBody<B>> {
    let mut response = error.error_response();
    if close {
        response
            .head_mut()
            .set_connection_type(ConnectionType::Close);
    }
    req.into_response(response).map_into_right_body()
}

/// Middleware: see the module documentation.
pub async fn guard(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let has_body = announces_body(&req);
    if takes_bearer(req.path()) {
        // identify refuses repeated identity headers too.
        let Some(state) = req.app_data::<Data<AppState>>().cloned() else {
            return Ok(refuse(req, ApiError::internal(), has_body));
        };
        match identify(req.request(), &state.registry) {
            Ok(identity) => {
                req.extensions_mut().insert(identity);
            }
            Err(e) => return Ok(refuse(req, e, has_body)),
        }
    } else {
        for name in ["authorization", "bluemix-instance"] {
            if let Err(e) = single_header(req.request(), name) {
                return Ok(refuse(req, e, has_body));
            }
        }
    }
    let timeout = req.app_data::<BodyTimeout>().copied();
    let expired = Rc::new(Cell::new(false));
    if has_body && let Some(BodyTimeout(limit)) = timeout {
        let inner = req.take_payload();
        let timed: Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>> = Box::pin(Deadline {
            inner,
            sleep: Box::pin(sleep(limit)),
            expired: expired.clone(),
        });
        req.set_payload(Payload::from(timed));
    }
    let res = next.call(req).await?;
    if expired.get() {
        let (req, _) = res.into_parts();
        let error = ApiError::new(
            408,
            "REQUEST_TIMEOUT_ERR",
            "the request body did not arrive in time",
        );
        let mut response = error.error_response();
        response
            .head_mut()
            .set_connection_type(ConnectionType::Close);
        return Ok(ServiceResponse::new(req, response).map_into_right_body());
    }
    Ok(res.map_into_left_body())
}

/// A payload that fails once its time is up.
struct Deadline {
    inner: Payload,
    sleep: Pin<Box<Sleep>>,
    expired: Rc<Cell<bool>>,
}

impl Stream for Deadline {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.expired.get() {
            return Poll::Ready(None);
        }
        if let Poll::Ready(item) = Pin::new(&mut self.inner).poll_next(cx) {
            return Poll::Ready(item);
        }
        if self.sleep.as_mut().poll(cx).is_ready() {
            self.expired.set(true);
            return Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "request body timeout",
            )))));
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_routes() {
        for path in [
            "/api/v2/keys",
            "/api/v2/keys/k/actions/wrap",
            "/api/v2/ledger/records",
            "/api/v2/admin/state",
            "/api/v2/nowhere",
        ] {
            assert!(takes_bearer(path), "{path}");
        }
        for path in [
            "/health",
            "/ready",
            "/api/v2/openapi.json",
            "/api/v2/admin/commands",
            "/api/v2/admin/ceremony",
            "/api/v2/admin/ceremony/parts",
        ] {
            assert!(!takes_bearer(path), "{path}");
        }
    }
}
