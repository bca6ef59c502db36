//! The import-token aggregate: the instance's one import token, created
//! and retrieved, decided against the instance's projections.
//!
//! As for keys, a command is the event it records ([`ImportTokenChange`])
//! plus who asks and when; the token itself (RSA key pair, nonce, id) is
//! made outside, by the service, and the event carries only its id, expiry,
//! retrieval count and public-key digest. The verifier rebuilds the command
//! from the logged event ([`ImportTokenCommand::from_envelope`]) and asks
//! the same [`check`].

use chrono::{DateTime, Duration, Utc};

use super::Refusal;
use crate::event::{Actor, Envelope, EventDraft, ImportTokenCreated, ImportTokenRetrieved, Role};
use crate::projections::Projections;
use crate::roles::{self, Need};

/// Longest import-token lifetime, seconds (Key Protect's bound).
pub const MAX_EXPIRATION_SECS: u32 = 86_400;
/// Most retrievals an import token may allow (Key Protect's bound).
pub const MAX_RETRIEVALS: u32 = 500;

/// One change to the instance's import token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportTokenChange {
    /// A new token replaces the current one.
    Create(ImportTokenCreated),
    /// One retrieval of the current token's public key and nonce.
    Retrieve(ImportTokenRetrieved),
}

/// An import-token command: who asks, when, under which correlation id,
/// for what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportTokenCommand {
    /// Who asks.
    pub actor: Actor,
    /// Correlation id of the request.
    pub correlation_id: String,
    /// The time the command is decided at.
    pub at: DateTime<Utc>,
    /// What it asks for.
    pub change: ImportTokenChange,
}

impl ImportTokenCommand {
    /// The command a stored import-token event records; `None` for other
    /// events, `Some(Err)` for one that does not read.
    pub fn from_envelope(envelope: &Envelope<'_>) -> Option<Result<ImportTokenCommand, String>> {
        let change = super::read_change(envelope, ImportTokenChange::Create)
            .or_else(|| super::read_change(envelope, ImportTokenChange::Retrieve))?;
        Some(change.and_then(|change| {
            let at = super::recorded_at(envelope)?;
            Ok(ImportTokenCommand {
                actor: envelope.actor.clone(),
                correlation_id: envelope.correlation_id.clone(),
                at,
                change,
            })
        }))
    }
}

/// Decides an import-token command against the state before it: the
/// command's one event, or why it is refused.
pub fn decide(
    state: &Projections,
    command: &ImportTokenCommand,
) -> Result<Vec<EventDraft>, Refusal> {
    check(state, command)?;
    let (actor, correlation_id) = (command.actor.clone(), command.correlation_id.as_str());
    let draft = match &command.change {
        ImportTokenChange::Create(p) => EventDraft::new(actor, correlation_id, p),
        ImportTokenChange::Retrieve(p) => EventDraft::new(actor, correlation_id, p),
    };
    Ok(vec![draft.map_err(|e| Refusal::Invalid(e.to_string()))?])
}

/// The rules of [`decide`] without building the event: a token is made
/// under an active master key, expires within a day and allows 1 to 500
/// retrievals; a retrieval is of the current, unexpired token, with a
/// retrieval left, and counts down by one. Both need a writer.
pub fn check(state: &Projections, command: &ImportTokenCommand) -> Result<(), Refusal> {
    super::check_credential(state, &command.actor)?;
    let at = command.at;
    match &command.change {
        ImportTokenChange::Create(p) => {
            if state.master.current.is_none() {
                return Err(Refusal::NoMasterKey);
            }
            let expires = DateTime::parse_from_rfc3339(&p.expiration_date)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| invalid("expiration_date is not an RFC 3339 time"))?;
            if expires <= at || expires > at + Duration::seconds(MAX_EXPIRATION_SECS.into()) {
                return Err(invalid(
                    "the token must expire within a day of its creation",
                ));
            }
            if !(1..=MAX_RETRIEVALS).contains(&p.max_retrievals) {
                return Err(invalid("max_retrievals must be 1 to 500"));
            }
        }
        ImportTokenChange::Retrieve(p) => {
            let current = state
                .import_token
                .current
                .as_ref()
                .filter(|t| t.id == p.token_id)
                .ok_or(Refusal::ImportTokenNotFound)?;
            if current.is_expired(at) {
                return Err(Refusal::ImportTokenExpired);
            }
            if current.remaining_retrievals == 0 {
                return Err(Refusal::ImportTokenExhausted);
            }
            if p.remaining_retrievals != current.remaining_retrievals - 1 {
                return Err(invalid(
                    "remaining_retrievals is not one less than the token had",
                ));
            }
        }
    }
    let role = command.actor.role;
    let bound = matches!(
        role,
        Role::Manager | Role::Writer | Role::Reader | Role::Auditor | Role::Anonymous
    );
    if bound && !roles::allows(role, Need::Writer) {
        return Err(Refusal::RoleNotAllowed {
            role,
            command: match command.change {
                ImportTokenChange::Create(_) => "create_import_token",
                ImportTokenChange::Retrieve(_) => "get_import_token",
            },
            need: Need::Writer,
        });
    }
    Ok(())
}

fn invalid(why: &str) -> Refusal {
    Refusal::ImportTokenInvalid(why.to_string())
}

#[cfg(test)]
mod tests;
