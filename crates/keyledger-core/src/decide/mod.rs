//! Decisions as pure functions, shared by the key service and the policy
//! verifier: for an aggregate, `decide(&state, &command)` says which events
//! a command produces or why it is refused ([`Refusal`]), and `apply`
//! folds a stored event into the state ([`apply`], the projections).
//!
//! The service is the imperative shell around a decision: it builds the
//! command (with what only it can know: the time, new ids, what the HSM
//! produced), calls `decide`, appends the drafts and answers. `verify
//! --policy` rebuilds, for each logged event, the command it records and
//! asks the same `decide` whether the state before the event accepts it.
//! Nothing here reads a clock, draws an id or calls an HSM. See
//! `docs/DECISIONS.md`.
//!
//! - [`key`]: the key aggregate (state machine, dual-authorisation delete,
//!   root-key-only actions, key material size, rotation, policies, the role
//!   table for each key command).
//! - [`approval`]: the approval aggregate (requests of gated operations,
//!   their approvals, cancellations, expiries and executions).
//! - [`governance`]: the instance-governance aggregate (signed administrator
//!   commands: administrators, thresholds, credentials, instance policies,
//!   key owners, master-key load approvals).
//! - [`import_token`]: the import-token aggregate (the instance's one
//!   token, created and retrieved).
//! - [`master_key`]: the master-key aggregate (ceremony, rotation, unseal).
//! - [`key_ring`]: the key-ring aggregate (create, delete).
//! - `harness` (tests only): given/when/then tests of aggregates.

pub mod approval;
pub mod governance;
#[cfg(test)]
mod harness;
pub mod import_token;
pub mod key;
pub mod key_ring;
pub mod master_key;

use chrono::{DateTime, Utc};

use crate::event::{Envelope, Role};
use crate::governance::{ApprovalDenial, Denial};
use crate::keys::payload::PayloadError;
use crate::keys::state::StateError;
use crate::projections::Projections;
use crate::reason::Reason;
use crate::roles::Need;

/// Why a decision refused a command. Every variant names a [`Reason`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The command names a key that does not exist.
    #[error("key {0:?} does not exist")]
    UnknownKey(String),
    /// The command would create a key id or alias that exists (or existed).
    #[error("{0} already exists")]
    Conflict(String),
    /// New key material needs an active master key.
    #[error("key material was created with no active master key")]
    NoMasterKey,
    /// The key state machine refuses the action (state table, time window,
    /// key type, dual-authorisation rules).
    #[error("{0}")]
    State(#[from] StateError),
    /// Caller-supplied key material of a size the key cannot have.
    #[error("{0}")]
    Payload(#[from] PayloadError),
    /// The alias names a key already.
    #[error("alias {0:?} is already in use")]
    AliasInUse(String),
    /// The key has as many aliases as it may have.
    #[error("a key has at most {0} aliases")]
    AliasQuota(usize),
    /// The key has no such alias.
    #[error("the key has no such alias")]
    AliasNotFound,
    /// Import tokens import root keys only.
    #[error("import tokens import root keys only (extractable must be false)")]
    TokenImportNeedsRootKey,
    /// A root key's payload never leaves the service.
    #[error("the payload of root key {0:?} was read (root keys never leave the service)")]
    NotExtractable(String),
    /// An expiry before the key's expiration date.
    #[error("key {0:?} was expired before its expiration date")]
    NotDue(String),
    /// The actor's credential role does not allow the command
    /// ([`crate::roles`]).
    #[error("a {role:?} credential may not {command}: it needs {need:?}")]
    RoleNotAllowed {
        /// The actor's role.
        role: Role,
        /// The command's name.
        command: &'static str,
        /// What the command needs.
        need: Need,
    },
    /// The approval rules refuse an action on a request.
    #[error("{denial}")]
    ApprovalDenied {
        /// The request the command acts on.
        request_id: String,
        /// The approval rule it breaks.
        denial: ApprovalDenial,
    },
    /// A request id that exists already.
    #[error("approval request {0:?} was already requested")]
    ApprovalDuplicate(String),
    /// The event does not match its approval request.
    #[error("the event does not match its approval request: {0}")]
    ApprovalMismatch(String),
    /// An execution without a ready quorum.
    #[error("request {request_id:?} was executed without its quorum: {why}")]
    QuorumNotReached {
        /// The request executed.
        request_id: String,
        /// What is missing.
        why: String,
    },
    /// An expiry of a request that has not lapsed.
    #[error(
        "approval request {0:?} has not lapsed (pending, short of its quorum, past its expiry)"
    )]
    NotLapsed(String),
    /// No current import token with that id.
    #[error("the instance has no such import token")]
    ImportTokenNotFound,
    /// The import token has expired.
    #[error("the import token has expired")]
    ImportTokenExpired,
    /// The import token has no retrievals left.
    #[error("the import token has no retrievals left")]
    ImportTokenExhausted,
    /// An import token (or its retrieval count) out of bounds.
    #[error("invalid import token: {0}")]
    ImportTokenInvalid(String),
    /// A step that needs the administrators carries no signed command.
    #[error("the event needs a quorum-signed administrator command and carries none")]
    CommandMissing,
    /// The step does something else than its signed command says.
    #[error("the event does not do what its command says: {0}")]
    CommandMismatch(String),
    /// The signed command's recorded digest is not its document's.
    #[error("the command's recorded digest is not the SHA-256 of its document")]
    DigestMismatch,
    /// A part from someone who is not a registered key owner.
    #[error("key owner {0:?} is not registered")]
    UnknownKeyOwner(String),
    /// A part of a new generation the administrators did not approve.
    #[error(
        "loading master-key generation {0} was not approved by the administrators (master_key.load_approved)"
    )]
    LoadNotApproved(u32),
    /// The governance rules refuse an administrator command.
    #[error("{0}")]
    Denied(#[from] Denial),
    /// The command itself is malformed.
    #[error("invalid command: {0}")]
    Invalid(String),
    /// An approval request that is not one the key service makes.
    #[error("not a request the key service makes: {0}")]
    ApprovalRequestInvalid(String),
    /// The key ring exists already.
    #[error("key ring {0} already exists")]
    KeyRingExists(String),
    /// The key ring still holds keys.
    #[error(
        "the key ring {0:?} holds keys: move or delete them first (destroyed keys: force=true)"
    )]
    KeyRingNotEmpty(String),
    /// The key ring named does not exist.
    #[error("key ring {0:?} does not exist")]
    KeyRingUnknown(String),
    /// An instance policy (`keyCreateImportAccess`) forbids the command.
    #[error("{0}")]
    PolicyDenied(String),
    /// The actor authenticated with a bearer credential the instance never
    /// issued.
    #[error("{0:?} is not a credential of the instance")]
    CredentialUnknown(String),
    /// The actor is an API credential that was revoked before the command.
    #[error("credential {0:?} was revoked")]
    CredentialRevoked(String),
    /// The actor is an API credential acting with another role than the
    /// one it was issued with.
    #[error("credential {credential:?} was issued as {issued:?}, not {acting:?}")]
    CredentialRoleMismatch {
        /// The credential id.
        credential: String,
        /// The role the credential was issued with.
        issued: String,
        /// The role the actor claims.
        acting: Role,
    },
}

impl Refusal {
    /// The reason code of this refusal.
    pub fn reason(&self) -> Reason {
        match self {
            Refusal::UnknownKey(_) => Reason::KeyNotFound,
            Refusal::Conflict(_) => Reason::AliasNotUnique,
            Refusal::NoMasterKey => Reason::Sealed,
            Refusal::State(e) => e.reason(),
            Refusal::Payload(e) => e.reason(),
            Refusal::AliasInUse(_) => Reason::AliasNotUnique,
            Refusal::AliasQuota(_) => Reason::AliasQuotaReached,
            Refusal::AliasNotFound => Reason::AliasNotFound,
            Refusal::TokenImportNeedsRootKey => Reason::RootKeyRequired,
            Refusal::NotExtractable(_) => Reason::NotExtractable,
            Refusal::NotDue(_) => Reason::InvalidState,
            Refusal::RoleNotAllowed { .. } => Reason::RoleNotAllowed,
            Refusal::Denied(d) => d.reason(),
            Refusal::ApprovalDenied { denial, .. } => denial.reason(),
            Refusal::ApprovalDuplicate(_) | Refusal::ApprovalMismatch(_) => Reason::InvalidRequest,
            Refusal::QuorumNotReached { .. } => Reason::AuthorizationsNotMet,
            Refusal::NotLapsed(_) => Reason::InvalidState,
            Refusal::ImportTokenNotFound => Reason::NotFound,
            Refusal::ImportTokenExpired | Refusal::ImportTokenExhausted => {
                Reason::ImportTokenExpired
            }
            Refusal::ImportTokenInvalid(_) => Reason::InvalidField,
            Refusal::CommandMissing | Refusal::CommandMismatch(_) | Refusal::DigestMismatch => {
                Reason::CommandInvalid
            }
            Refusal::UnknownKeyOwner(_) => Reason::Unauthenticated,
            Refusal::LoadNotApproved(_) => Reason::Ceremony,
            Refusal::Invalid(_) => Reason::InvalidRequest,
            Refusal::KeyRingUnknown(_) => Reason::KeyRingNotFound,
            Refusal::KeyRingExists(_) => Reason::KeyRingExists,
            Refusal::KeyRingNotEmpty(_) => Reason::KeyRingNotEmpty,
            Refusal::ApprovalRequestInvalid(_) => Reason::InvalidRequest,
            Refusal::PolicyDenied(_) => Reason::CreateImportForbidden,
            Refusal::CredentialUnknown(_)
            | Refusal::CredentialRevoked(_)
            | Refusal::CredentialRoleMismatch { .. } => Reason::Unauthenticated,
        }
    }
}

/// The API credential an actor acts with must be one the instance issued,
/// in force, acting with the role it was issued with. A bearer-authenticated
/// actor's principal is its credential id: it is refused unless the
/// credential was issued (`credential.issued`), once it is revoked, and
/// when it claims another role. Any other actor whose principal names an
/// issued credential is held to the same; the rest (the service itself,
/// administrators, key owners, operators at the command line) are not
/// credentials and pass. Every aggregate a credential can act on (keys,
/// approvals, import tokens) checks this first.
pub fn check_credential(state: &Projections, actor: &crate::event::Actor) -> Result<(), Refusal> {
    let Some(credential) = state.governance.credentials.get(&actor.principal) else {
        if actor.auth == crate::event::AuthMethod::Bearer {
            return Err(Refusal::CredentialUnknown(
                actor.principal.chars().take(128).collect(),
            ));
        }
        return Ok(());
    };
    if credential.revoked {
        return Err(Refusal::CredentialRevoked(
            actor.principal.chars().take(128).collect(),
        ));
    }
    if crate::roles::role_of(&credential.role) != Some(actor.role) {
        return Err(Refusal::CredentialRoleMismatch {
            credential: actor.principal.chars().take(128).collect(),
            issued: credential.role.chars().take(32).collect(),
            acting: actor.role,
        });
    }
    Ok(())
}

/// Folds one stored event (at `seq`) into the state: the projections'
/// own `apply`, the only place state changes.
pub fn apply(state: &mut Projections, seq: u64, envelope: &Envelope<'_>) {
    state.apply(seq, envelope);
}

/// The time a stored event records, read back as the time its command was
/// decided at (every aggregate's `from_envelope`).
pub(crate) fn recorded_at(envelope: &Envelope<'_>) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(&envelope.time)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| "time is not an RFC 3339 time".to_string())
}

/// `envelope`'s payload as a `P`, made into an aggregate's change by `f`;
/// `None` when the event is of another type.
pub(crate) fn read_change<P: crate::event::EventPayload, C>(
    envelope: &Envelope<'_>,
    f: fn(P) -> C,
) -> Option<Result<C, String>> {
    envelope.payload_as::<P>().map(|p| {
        p.map(f)
            .map_err(|e| format!("payload is not a valid {}: {e}", P::TYPE))
    })
}
