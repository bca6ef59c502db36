//! `keyledger verify --policy`: replays the governance rules over a log.
//!
//! Integrity verification proves that the ledger key signed every record;
//! it cannot tell whether the server should have written them. A
//! compromised server holds the ledger key and can append a correctly
//! signed `key.destroyed` without its approvals or an `admin.added` without
//! the administrators' signatures. This replay catches that: it feeds the
//! events, in log order, through the very projections the server uses
//! ([`Projections`]) and, before applying each event, rebuilds the command
//! the event records and asks the server's own decision for it
//! (`crate::decide`): the key, instance-governance, approval, import-token,
//! key-ring and master-key aggregates, each the same `decide` the key
//! service runs before it appends. An administrator event must moreover be
//! exactly the event its signed command records, under the actor the server
//! records it under (its signers). Each event is decided at the latest time
//! the log has reached (an event stamped back in time is judged when it was
//! appended at the earliest). Every event a decision refuses becomes a
//! located [`Finding`] (seq, event type, reason code, reason).
//!
//! Pure code: no I/O. [`super::replay_policy`] streams a bundle through it.
//! The rules and their codes are listed in `docs/VERIFY-POLICY.md`; the
//! decisions in `docs/DECISIONS.md`.
//!

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::decide::Refusal;
use crate::decide::approval::{self, ApprovalCommand};
use crate::decide::governance::{self, GovernanceCommand, GovernanceEvent};
use crate::decide::import_token::{self, ImportTokenCommand};
use crate::decide::key::{self, KeyChange, KeyCommand};
use crate::decide::key_ring::{self, KeyRingCommand};
use crate::decide::master_key::{self, MasterKeyCommand};
use crate::event::{
    AdminAdded, AdminRemoved, AdminThresholdsSet, CredentialIssued, CredentialRevoked, Envelope,
    EventPayload, ExportSinksSet, InstanceCreated, InstancePolicyUpdated, InstanceZeroized,
    KeyOwnerRegistered, KeyOwnerRemoved, MasterKeyActivated, MasterKeyCommitted,
    MasterKeyLoadApproved, MasterKeyRotated, SignedCommandRef,
};
use crate::governance::ApprovalDenial;
use crate::governance::{AdminCommand, Approval, CommandDocument, Denial, SignedCommand, View};
use crate::keys::state::StateError;
use crate::projections::Projections;

/// Findings kept in a report; later ones are only counted.
pub const MAX_FINDINGS: usize = 100_000;

/// Why an event breaks the governance rules. [`Violation::code`] is the
/// stable reason code; the `Display` text says what exactly is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    /// The server's own rules refuse the event's command or its effect
    /// (signatures, threshold, expiry, nonce, instance, preconditions).
    /// The code is the rule's [`Denial::code`].
    #[error(transparent)]
    Denied(Denial),
    /// A governance event without the signed command it must carry.
    #[error("the event needs a quorum-signed administrator command and carries none")]
    CommandMissing,
    /// The event differs from the one its signed command decides (what differs).
    #[error("the event does not do what its command says: {0}")]
    CommandMismatch(String),
    /// The recorded command digest is not the hash of the recorded document.
    #[error("the command's recorded digest is not the SHA-256 of its document")]
    DigestMismatch,
    #[error("instance.created may only be record 0 (it adds an administrator without signatures)")]
    /// `instance.created` somewhere other than record 0.
    GenesisNotFirst,
    /// The event's payload does not parse as its type (the parse error).
    #[error("event cannot be read: {0}")]
    MalformedEvent(String),
    /// A master-key part from an owner not registered (the owner id).
    #[error("key owner {0:?} is not registered")]
    UnknownKeyOwner(String),
    #[error(
        "loading master-key generation {0} was not approved by the administrators (master_key.load_approved)"
    )]
    /// A master-key generation loaded without the administrators' approval.
    LoadNotApproved(u32),
    /// An event names a key the log never created (the key id).
    #[error("key {0:?} does not exist")]
    UnknownKey(String),
    /// A key, version, alias or ring created twice (what already exists).
    #[error("{0} already exists")]
    KeyConflict(String),
    /// Key material created while no master key was active.
    #[error("key material was created with no active master key")]
    NoMasterKey,
    /// The key state machine forbids the action (state table or time window).
    #[error("{0}")]
    KeyState(StateError),
    #[error("the payload of root key {0:?} was read (root keys never leave the service)")]
    /// The payload of a root key was read (the key id).
    NotExtractable(String),
    #[error("key {0:?} was expired before its expiration date")]
    /// A key expired before its expiration date (the key id).
    NotDue(String),
    #[error("approval request {0:?} does not exist")]
    /// An approval event names a request never made (the request id).
    ApprovalUnknown(String),
    #[error("approval request {0:?} was already requested")]
    /// An approval request id requested twice.
    ApprovalDuplicate(String),
    #[error("approval request {0:?} is not open (expired, cancelled or done)")]
    /// An approval event for a request no longer open (the request id).
    ApprovalClosed(String),
    /// A key command the key aggregate refuses for a reason the rules
    /// above do not name (key material, role table, command shape).
    #[error("{0}")]
    KeyRefused(Refusal),
    #[error("{approver:?} approved their own request {request_id:?}")]
    /// A requester approved their own request.
    ApprovalByRequester {
        /// The request approved.
        request_id: String,
        /// Who approved it (the requester).
        approver: String,
    },
    #[error("request {request_id:?} was executed without its quorum: {why}")]
    /// An operation executed without its quorum of approvals.
    QuorumNotReached {
        /// The request executed.
        request_id: String,
        /// What the quorum lacked.
        why: String,
    },
    #[error("the event does not match its approval request: {0}")]
    /// The executed operation is not the one its request was approved for.
    ApprovalMismatch(String),
    /// An event a signed administrator command records, whose actor is not
    /// the administrators whose signatures verified (what the server
    /// records: [`governance::signers_actor`]).
    #[error("the event's actor {actor:?} is not its command's signers {signers:?}")]
    ActorNotSigner {
        /// The actor the event names.
        actor: String,
        /// The administrators whose signatures verified.
        signers: String,
    },
}

impl Violation {
    /// A short stable reason code.
    pub fn code(&self) -> &'static str {
        match self {
            Violation::Denied(d) => d.code(),
            Violation::CommandMissing => "command_missing",
            Violation::CommandMismatch(_) => "command_mismatch",
            Violation::DigestMismatch => "command_digest_mismatch",
            Violation::GenesisNotFirst => "genesis_not_first",
            Violation::MalformedEvent(_) => "malformed_event",
            Violation::UnknownKeyOwner(_) => "unknown_key_owner",
            Violation::LoadNotApproved(_) => "load_not_approved",
            Violation::UnknownKey(_) => "unknown_key",
            Violation::KeyConflict(_) => "key_conflict",
            Violation::NoMasterKey => "no_master_key",
            Violation::KeyState(e) => match e {
                StateError::InvalidState { .. } => "key_invalid_state",
                StateError::Expired { .. } => "key_expired",
                StateError::Deleted { .. } => "key_deleted",
                StateError::NotActive { .. } => "key_not_active",
                StateError::RestoreExpired => "key_restore_expired",
                StateError::PurgeTooEarly { .. } => "key_purge_too_early",
                StateError::RotatedTooRecently => "key_rotated_too_recently",
                StateError::NotDualAuth => "key_not_dual_auth",
                StateError::AuthorizationsNotMet => "dual_auth_not_met",
                StateError::DualAuthIrreversible => "dual_auth_reverted",
                StateError::RootKeyRequired { .. } => "key_root_required",
            },
            Violation::NotExtractable(_) => "key_not_extractable",
            Violation::KeyRefused(r) => match r {
                Refusal::Payload(_) => "key_material_invalid",
                Refusal::TokenImportNeedsRootKey => "key_root_required",
                Refusal::RoleNotAllowed { .. } => "role_not_allowed",
                Refusal::AliasQuota(_) => "alias_quota",
                Refusal::AliasNotFound => "alias_unknown",
                Refusal::ApprovalDenied {
                    denial: ApprovalDenial::AlreadyApproved { .. },
                    ..
                } => "approval_already_granted",
                Refusal::ApprovalDenied {
                    denial: ApprovalDenial::QuorumReached,
                    ..
                } => "approval_quorum_reached",
                Refusal::NotLapsed(_) => "approval_not_lapsed",
                Refusal::ImportTokenNotFound => "import_token_unknown",
                Refusal::ImportTokenExpired => "import_token_expired",
                Refusal::ImportTokenExhausted => "import_token_exhausted",
                Refusal::ImportTokenInvalid(_) => "import_token_invalid",
                Refusal::CredentialUnknown(_) => "credential_unknown",
                Refusal::CredentialRevoked(_) => "credential_revoked",
                Refusal::KeyRingUnknown(_) => "key_ring_unknown",
                Refusal::KeyRingExists(_) => "key_ring_conflict",
                Refusal::KeyRingNotEmpty(_) => "key_ring_not_empty",
                Refusal::ApprovalRequestInvalid(_) => "approval_request_invalid",
                Refusal::PolicyDenied(_) => "instance_policy_denied",
                Refusal::CredentialRoleMismatch { .. } => "credential_role_mismatch",
                _ => "key_command_invalid",
            },
            Violation::NotDue(_) => "key_not_due",
            Violation::ApprovalUnknown(_) => "approval_unknown",
            Violation::ApprovalDuplicate(_) => "approval_duplicate",
            Violation::ApprovalClosed(_) => "approval_closed",
            Violation::ApprovalByRequester { .. } => "approval_by_requester",
            Violation::QuorumNotReached { .. } => "quorum_not_reached",
            Violation::ApprovalMismatch(_) => "approval_mismatch",
            Violation::ActorNotSigner { .. } => "actor_not_signer",
        }
    }
}

impl From<Denial> for Violation {
    fn from(d: Denial) -> Self {
        Violation::Denied(d)
    }
}

impl From<Refusal> for Violation {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::UnknownKey(id) => Violation::UnknownKey(id),
            Refusal::Conflict(what) => Violation::KeyConflict(what),
            Refusal::AliasInUse(alias) => Violation::KeyConflict(format!("alias {alias:?}")),
            Refusal::NoMasterKey => Violation::NoMasterKey,
            Refusal::State(e) => Violation::KeyState(e),
            Refusal::NotExtractable(id) => Violation::NotExtractable(id),
            Refusal::NotDue(id) => Violation::NotDue(id),
            Refusal::Denied(d) => Violation::Denied(d),
            Refusal::CommandMissing => Violation::CommandMissing,
            Refusal::CommandMismatch(m) => Violation::CommandMismatch(m),
            Refusal::DigestMismatch => Violation::DigestMismatch,
            Refusal::UnknownKeyOwner(id) => Violation::UnknownKeyOwner(id),
            Refusal::LoadNotApproved(g) => Violation::LoadNotApproved(g),
            Refusal::ApprovalDenied {
                request_id,
                denial: ApprovalDenial::NotFound(_),
            } => Violation::ApprovalUnknown(request_id),
            Refusal::ApprovalDenied {
                request_id,
                denial: ApprovalDenial::SelfApproval { principal, .. },
            } => Violation::ApprovalByRequester {
                request_id,
                approver: principal,
            },
            Refusal::ApprovalDenied {
                request_id,
                denial:
                    ApprovalDenial::Expired { .. }
                    | ApprovalDenial::Cancelled
                    | ApprovalDenial::Executed
                    | ApprovalDenial::Failed(_),
            } => Violation::ApprovalClosed(request_id),
            Refusal::ApprovalDuplicate(id) => Violation::ApprovalDuplicate(id),
            Refusal::ApprovalMismatch(m) => Violation::ApprovalMismatch(m),
            Refusal::QuorumNotReached { request_id, why } => {
                Violation::QuorumNotReached { request_id, why }
            }
            other => Violation::KeyRefused(other),
        }
    }
}

impl From<StateError> for Violation {
    fn from(e: StateError) -> Self {
        Violation::KeyState(e)
    }
}

/// One event the rules forbid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Sequence number of the event.
    pub seq: u64,
    /// The event's type (`key.destroyed`, ...).
    pub event_type: String,
    /// Stable reason code (see `docs/VERIFY-POLICY.md`).
    pub code: &'static str,
    /// What exactly is wrong, in words.
    pub reason: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "policy violation at seq {} ({}): {}: {}",
            self.seq, self.event_type, self.code, self.reason
        )
    }
}

/// The outcome of a policy replay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyReport {
    /// True when no event breaks the rules.
    pub ok: bool,
    /// Events replayed.
    pub events: u64,
    /// Number of findings (may exceed `findings.len()`).
    pub violations: u64,
    /// The first [`MAX_FINDINGS`] findings, in log order.
    pub findings: Vec<Finding>,
}

/// The replay: the projections so far and what was found.
#[derive(Debug, Default)]
pub struct PolicyReplay {
    instance: Option<String>,
    /// The latest time of the events replayed so far: no event can have
    /// been appended before it.
    latest: Option<DateTime<Utc>>,
    projections: Projections,
    events: u64,
    violations: u64,
    findings: Vec<Finding>,
}

/// What an event is checked with besides its payload.
#[derive(Clone, Copy)]
struct At {
    seq: u64,
    /// When the event was appended at the earliest: its own time, or the
    /// time of an event before it when that is later (an event stamped
    /// back in time is decided at the time the log had reached).
    time: DateTime<Utc>,
}

type Checked = Result<(), Violation>;

/// Runs `f` on the payload when the event is of type `P`.
fn on<P: EventPayload>(envelope: &Envelope<'_>, f: impl FnOnce(P) -> Checked) -> Option<Checked> {
    envelope.payload_as::<P>().map(|payload| match payload {
        Ok(p) => f(p),
        Err(e) => Err(Violation::MalformedEvent(format!(
            "payload is not a valid {}: {e}",
            P::TYPE
        ))),
    })
}

impl PolicyReplay {
    /// A replay at the start of a log (nothing applied yet).
    pub fn new() -> Self {
        Self::default()
    }

    /// The projections after the events replayed so far.
    pub fn projections(&self) -> &Projections {
        &self.projections
    }

    /// Checks the event at `seq` against the state before it, then applies
    /// it. Returns its finding, if the rules forbid it.
    pub fn push(&mut self, seq: u64, event: &[u8]) -> Option<Finding> {
        self.events += 1;
        let envelope = match Envelope::parse(event) {
            Ok(e) => e,
            Err(e) => {
                return self.found(seq, "unknown", Violation::MalformedEvent(e.to_string()));
            }
        };
        if self.instance.is_none() {
            self.instance = Some(envelope.instance.clone());
        }
        let checked = self.check(seq, &envelope);
        self.projections.apply(seq, &envelope);
        match checked {
            Ok(()) => None,
            Err(v) => self.found(seq, &envelope.event_type, v),
        }
    }

    /// The report of everything replayed.
    pub fn finish(self) -> PolicyReport {
        PolicyReport {
            ok: self.violations == 0,
            events: self.events,
            violations: self.violations,
            findings: self.findings,
        }
    }

    fn found(&mut self, seq: u64, event_type: &str, violation: Violation) -> Option<Finding> {
        let finding = Finding {
            seq,
            event_type: printable(event_type, 64),
            code: violation.code(),
            reason: printable(&violation.to_string(), 512),
        };
        self.violations += 1;
        if self.findings.len() < MAX_FINDINGS {
            self.findings.push(finding.clone());
        }
        Some(finding)
    }

    fn view(&self) -> View<'_> {
        View {
            instance: self.instance.as_deref().unwrap_or_default(),
            governance: &self.projections.governance,
            master: &self.projections.master,
        }
    }

    fn check(&mut self, seq: u64, envelope: &Envelope<'_>) -> Checked {
        let own = DateTime::parse_from_rfc3339(&envelope.time)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| Violation::MalformedEvent("time is not an RFC 3339 time".into()))?;
        let time = self.latest.map_or(own, |latest| latest.max(own));
        self.latest = Some(time);
        let at = At { seq, time };
        let e = envelope;
        on(e, |p: InstanceCreated| self.instance_created(at, p))
            .or_else(|| self.governance_event(at, e))
            .or_else(|| self.ceremony_event(at, e))
            .or_else(|| self.key_event(at, e))
            .or_else(|| self.approval_event(at, e))
            .or_else(|| self.import_token_event(at, e))
            .or_else(|| self.key_ring_event(at, e))
            .unwrap_or(Ok(()))
            .and_then(|()| self.signers_acted(at, e))
    }

    /// An event a signed administrator command records is recorded by the
    /// administrators whose signatures verified, as the server records it
    /// ([`governance::command_actor`], the actor the service appends such
    /// events under). Checked after every other rule, so the command is
    /// known to be authorised.
    fn signers_acted(&self, at: At, e: &Envelope<'_>) -> Checked {
        if !COMMAND_EVENTS.contains(&e.event_type.as_str()) {
            return Ok(());
        }
        let Ok(AnyCommand {
            command: Some(reference),
        }) = serde_json::from_str(e.payload.get())
        else {
            return Ok(());
        };
        let signed = SignedCommand::from_ref(&reference);
        let expected = governance::command_actor(self.view(), &signed, at.time)?;
        if expected == e.actor {
            Ok(())
        } else {
            Err(Violation::ActorNotSigner {
                actor: e.actor.principal.clone(),
                signers: expected.principal,
            })
        }
    }

    fn instance_created(&self, at: At, _: InstanceCreated) -> Checked {
        if at.seq == 0 {
            Ok(())
        } else {
            Err(Violation::GenesisNotFirst)
        }
    }

    /// A governance event is the one event its signed command records: it
    /// must be what [`governance::recorded`] makes of the command, carry the
    /// document's digest, and the instance-governance aggregate's decision
    /// ([`governance::decide`], shared with the service) must accept the
    /// command at the event's time. Zeroization carries what the
    /// key-material store did, so it is checked by [`Self::command`].
    fn governance_event(&self, at: At, e: &Envelope<'_>) -> Option<Checked> {
        if let Some(reference) = governance_reference(e) {
            return Some(reference.and_then(|r| self.decided(at, e, r)));
        }
        on(e, |p: InstanceZeroized| {
            let step =
                master_key::signed_step(self.view(), at.time, Some(&p.command), |c| match c {
                    AdminCommand::Zeroize {} => Ok(()),
                    other => master_key::wrong_kind(other, "instance.zeroize"),
                });
            Ok(step?)
        })
    }

    fn decided(&self, at: At, e: &Envelope<'_>, reference: Option<SignedCommandRef>) -> Checked {
        let Some(reference) = reference else {
            return Err(Violation::CommandMissing);
        };
        let signed = SignedCommand::from_ref(&reference);
        if let Ok(document) = CommandDocument::parse(&signed.document) {
            // A public key that does not decode is left to `decide`
            // (which reports the command malformed).
            match governance::recorded(&document.command, reference.clone()) {
                Ok(Some(expected)) => {
                    same_event(&expected, e).map_err(Violation::CommandMismatch)?
                }
                Ok(None) => {
                    return Err(Violation::CommandMismatch(format!(
                        "it carries a {} command, not one that records {}",
                        document.command.kind(),
                        printable(&e.event_type, 64)
                    )));
                }
                Err(_) => {}
            }
        }
        if reference.digest != hex::encode(signed.digest()) {
            return Err(Violation::DigestMismatch);
        }
        let command = GovernanceCommand {
            instance: self.instance.as_deref().unwrap_or_default(),
            signed: &signed,
            correlation_id: &e.correlation_id,
            at: at.time,
        };
        governance::decide(&self.projections, &command)?;
        Ok(())
    }

    /// A ceremony, rotation or unseal event is the command it records, and
    /// the master-key aggregate's decision ([`master_key::decide`], shared
    /// with the key service) must accept it in the state before it.
    fn ceremony_event(&self, at: At, e: &Envelope<'_>) -> Option<Checked> {
        let command = MasterKeyCommand::from_envelope(e)?;
        let instance = self.instance.as_deref().unwrap_or_default();
        Some(
            command
                .map_err(Violation::MalformedEvent)
                .and_then(|mut c| {
                    c.at = at.time;
                    Ok(master_key::check(&self.projections, instance, &c)?)
                }),
        )
    }

    /// A key event is the command it records: the key aggregate's own
    /// decision ([`key::check`], the rules of [`key::decide`]) must accept
    /// it in the state before it. A delete or purge on the strength of an
    /// approval request also needs that request ready.
    fn key_event(&self, at: At, e: &Envelope<'_>) -> Option<Checked> {
        let command = KeyCommand::from_envelope(e)?;
        Some((|| {
            let mut command = command.map_err(Violation::MalformedEvent)?;
            command.at = at.time;
            key::check(&self.projections, &command)?;
            let approved = match &command.change {
                KeyChange::Destroy(p) => p.approval_request_id.as_ref().map(|r| (r, &p.key_id)),
                KeyChange::Purge(p) => p.approval_request_id.as_ref().map(|r| (r, &p.key_id)),
                _ => None,
            };
            match approved {
                Some((request, key_id)) => self.approved(at, request, key_id),
                None => Ok(()),
            }
        })())
    }

    /// An approval event is the command it records, and the approval
    /// aggregate's decision ([`approval::decide`], shared with the key
    /// service) must accept it in the state before it.
    fn approval_event(&self, at: At, e: &Envelope<'_>) -> Option<Checked> {
        let command = ApprovalCommand::from_envelope(e)?;
        Some(
            command
                .map_err(Violation::MalformedEvent)
                .and_then(|mut c| {
                    c.at = at.time;
                    Ok(approval::check(&self.projections, &c)?)
                }),
        )
    }

    /// An import-token event is the command it records, and the
    /// import-token aggregate's decision ([`import_token::decide`], shared
    /// with the key service) must accept it in the state before it.
    fn import_token_event(&self, at: At, e: &Envelope<'_>) -> Option<Checked> {
        let command = ImportTokenCommand::from_envelope(e)?;
        Some(
            command
                .map_err(Violation::MalformedEvent)
                .and_then(|mut c| {
                    c.at = at.time;
                    Ok(import_token::check(&self.projections, &c)?)
                }),
        )
    }

    /// A key-ring event is the command it records, and the key-ring
    /// aggregate's decision ([`key_ring::decide`], shared with the key
    /// service) must accept it in the state before it.
    fn key_ring_event(&self, at: At, e: &Envelope<'_>) -> Option<Checked> {
        let command = KeyRingCommand::from_envelope(e)?;
        Some(
            command
                .map_err(Violation::MalformedEvent)
                .and_then(|mut c| {
                    c.at = at.time;
                    Ok(key_ring::check(&self.projections, &c)?)
                }),
        )
    }

    fn approval(&self, request_id: &str) -> Result<&Approval, Violation> {
        self.projections
            .governance
            .approvals
            .get(request_id)
            .ok_or_else(|| Violation::ApprovalUnknown(request_id.chars().take(128).collect()))
    }

    /// A key operation executed on the strength of an approval request: the
    /// request must target this key and be ready.
    fn approved(&self, at: At, request_id: &str, key_id: &str) -> Checked {
        let approval = self.approval(request_id)?;
        if approval.target != key_id {
            return Err(Violation::ApprovalMismatch(format!(
                "request {request_id:?} targets {:?}, not key {key_id:?}",
                approval.target
            )));
        }
        Ok(approval::ready(approval, request_id, at.time)?)
    }
}

/// The event types a signed administrator command records (the command, if
/// any, in the payload's `command` member).
const COMMAND_EVENTS: [&str; 14] = [
    AdminAdded::TYPE,
    AdminRemoved::TYPE,
    AdminThresholdsSet::TYPE,
    CredentialIssued::TYPE,
    CredentialRevoked::TYPE,
    InstancePolicyUpdated::TYPE,
    ExportSinksSet::TYPE,
    KeyOwnerRegistered::TYPE,
    KeyOwnerRemoved::TYPE,
    MasterKeyLoadApproved::TYPE,
    MasterKeyCommitted::TYPE,
    MasterKeyActivated::TYPE,
    MasterKeyRotated::TYPE,
    InstanceZeroized::TYPE,
];

/// Any payload's `command` member.
#[derive(serde::Deserialize)]
struct AnyCommand {
    #[serde(default)]
    command: Option<SignedCommandRef>,
}

/// Log-controlled text made safe for one output line: at most `max`
/// characters, control characters replaced.
fn printable(text: &str, max: usize) -> String {
    text.chars()
        .take(max)
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect()
}

/// The command reference of an event the instance-governance aggregate
/// records (`None` when the event is of no such type; `Some(Ok(None))`
/// when it has no command).
fn governance_reference(e: &Envelope<'_>) -> Option<Result<Option<SignedCommandRef>, Violation>> {
    fn of<P: EventPayload>(
        e: &Envelope<'_>,
        f: impl FnOnce(P) -> Option<SignedCommandRef>,
    ) -> Option<Result<Option<SignedCommandRef>, Violation>> {
        e.payload_as::<P>().map(|p| {
            p.map(f).map_err(|err| {
                Violation::MalformedEvent(format!("payload is not a valid {}: {err}", P::TYPE))
            })
        })
    }
    of(e, |p: AdminAdded| p.command)
        .or_else(|| of(e, |p: AdminRemoved| Some(p.command)))
        .or_else(|| of(e, |p: AdminThresholdsSet| Some(p.command)))
        .or_else(|| of(e, |p: CredentialIssued| p.command))
        .or_else(|| of(e, |p: CredentialRevoked| p.command))
        .or_else(|| of(e, |p: InstancePolicyUpdated| p.command))
        .or_else(|| of(e, |p: ExportSinksSet| Some(p.command)))
        .or_else(|| of(e, |p: KeyOwnerRegistered| p.command))
        .or_else(|| of(e, |p: KeyOwnerRemoved| Some(p.command)))
        .or_else(|| of(e, |p: MasterKeyLoadApproved| Some(p.command)))
}

/// Whether the logged event is `expected` (type and payload, field order
/// aside).
fn same_event(expected: &GovernanceEvent, e: &Envelope<'_>) -> Result<(), String> {
    if expected.event_type() != e.event_type {
        return Err(format!(
            "its command records {}, not {}",
            expected.event_type(),
            printable(&e.event_type, 64)
        ));
    }
    let draft = expected
        .draft(&e.actor, "replay")
        .map_err(|err| err.to_string())?;
    let want: serde_json::Value =
        serde_json::from_str(draft.payload.get()).map_err(|err| err.to_string())?;
    let got: serde_json::Value =
        serde_json::from_str(e.payload.get()).map_err(|err| err.to_string())?;
    if want == got {
        Ok(())
    } else {
        Err("its fields differ from what the command records".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreadable_events_are_findings_and_do_not_stop_the_replay() {
        let mut replay = PolicyReplay::new();
        let finding = replay.push(0, b"not json").expect("finding");
        assert_eq!((finding.seq, finding.code), (0, "malformed_event"));
        assert_eq!(finding.event_type, "unknown");
        let bad_time = br#"{"instance":"i","seq":1,"time":"yesterday","type":"key.enabled","type_version":1,"actor":{"principal":"a","role":"manager","auth":"bearer"},"correlation_id":"c","payload":{"key_id":"k"},"ledger_key":"00000000","prev":"00"}"#;
        let finding = replay.push(1, bad_time).expect("finding");
        assert_eq!(
            (finding.code, finding.event_type.as_str()),
            ("malformed_event", "key.enabled")
        );
        let bad_payload = br#"{"instance":"i","seq":2,"time":"2026-01-01T00:00:00Z","type":"key.enabled","type_version":1,"actor":{"principal":"a","role":"manager","auth":"bearer"},"correlation_id":"c","payload":{"id":"k"},"ledger_key":"00000000","prev":"00"}"#;
        let finding = replay.push(2, bad_payload).expect("finding");
        assert_eq!(finding.code, "malformed_event");
        assert!(finding.reason.contains("key.enabled"), "{}", finding.reason);
        let forged_type = br#"{"instance":"i","seq":3,"time":"2026-01-01T00:00:00Z","type":"x\nOK: all fine","type_version":1,"actor":{"principal":"a","role":"manager","auth":"bearer"},"correlation_id":"c","payload":{},"ledger_key":"00000000","prev":"00"}"#;
        assert!(
            replay.push(3, forged_type).is_none(),
            "unknown types change nothing"
        );
        let report = replay.finish();
        assert_eq!((report.ok, report.events, report.violations), (false, 4, 3));
        // Text from the log cannot forge output lines.
        let mut replay = PolicyReplay::new();
        let newline_field = br#"{"instance":"i","seq":0,"time":"2026-01-01T00:00:00Z","type":"key.enabled","type_version":1,"actor":{"principal":"a","role":"manager","auth":"bearer"},"correlation_id":"c","payload":{"key_id":"k","x\nOK: all fine":1},"ledger_key":"00000000","prev":"00"}"#;
        let line = replay.push(0, newline_field).expect("finding").to_string();
        assert!(line.contains("OK: all fine"), "{line}");
        assert!(!line.chars().any(char::is_control), "{line:?}");
        assert_eq!(
            report.findings[2].to_string(),
            format!(
                "policy violation at seq 2 (key.enabled): malformed_event: {}",
                report.findings[2].reason
            )
        );
    }

    #[test]
    fn codes_are_distinct_per_rule() {
        let all = [
            Violation::CommandMissing,
            Violation::CommandMismatch(String::new()),
            Violation::DigestMismatch,
            Violation::GenesisNotFirst,
            Violation::MalformedEvent(String::new()),
            Violation::UnknownKeyOwner(String::new()),
            Violation::LoadNotApproved(1),
            Violation::UnknownKey(String::new()),
            Violation::KeyConflict(String::new()),
            Violation::NoMasterKey,
            Violation::KeyState(StateError::RestoreExpired),
            Violation::KeyState(StateError::AuthorizationsNotMet),
            Violation::KeyState(StateError::DualAuthIrreversible),
            Violation::NotExtractable(String::new()),
            Violation::KeyRefused(Refusal::Payload(
                crate::keys::payload::PayloadError::RootKeySize(1),
            )),
            Violation::KeyRefused(Refusal::RoleNotAllowed {
                role: crate::event::Role::Writer,
                command: "delete",
                need: crate::roles::Need::Manager,
            }),
            Violation::KeyRefused(Refusal::Invalid(String::new())),
            Violation::NotDue(String::new()),
            Violation::ApprovalUnknown(String::new()),
            Violation::ApprovalDuplicate(String::new()),
            Violation::ApprovalClosed(String::new()),
            Violation::ApprovalByRequester {
                request_id: String::new(),
                approver: String::new(),
            },
            Violation::QuorumNotReached {
                request_id: String::new(),
                why: String::new(),
            },
            Violation::ApprovalMismatch(String::new()),
            Violation::Denied(Denial::Replayed {
                nonce: String::new(),
            }),
            Violation::ActorNotSigner {
                actor: String::new(),
                signers: String::new(),
            },
            Violation::KeyRefused(Refusal::CredentialRevoked(String::new())),
            Violation::KeyRefused(Refusal::CredentialUnknown(String::new())),
            Violation::KeyRefused(Refusal::CredentialRoleMismatch {
                credential: String::new(),
                issued: String::new(),
                acting: crate::event::Role::Manager,
            }),
            Violation::KeyRefused(Refusal::KeyRingUnknown(String::new())),
            Violation::KeyRefused(Refusal::KeyRingExists(String::new())),
            Violation::KeyRefused(Refusal::KeyRingNotEmpty(String::new())),
            Violation::KeyRefused(Refusal::PolicyDenied(String::new())),
            Violation::KeyRefused(Refusal::ApprovalRequestInvalid(String::new())),
        ];
        let mut codes: Vec<&str> = all.iter().map(Violation::code).collect();
        codes.sort_unstable();
        let before = codes.len();
        codes.dedup();
        assert_eq!(before, codes.len(), "{codes:?}");
    }
}
