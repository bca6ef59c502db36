//! The governance projection of one instance: administrators and
//! thresholds, API credentials, instance policies, approvals and the nonces
//! of accepted commands. Computed only from events; `apply` never fails on
//! a well-formed log and ignores events it does not govern.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::command::{CommandDocument, decode_public_key};
use crate::event::{
    AdminAdded, AdminRemoved, AdminThresholdsSet, ApprovalCancelled, ApprovalExpired,
    ApprovalGranted, ApprovalRequested, CredentialIssued, CredentialRevoked, Envelope,
    ExportSinksSet, InstanceCreated, InstancePolicyUpdated, InstanceZeroized, KeyDestroyed,
    KeyPurged, MasterKeyLoadApproved, OperationExecuted, OperationFailed, SignedCommandRef,
};

/// An instance administrator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admin {
    /// Display name.
    pub name: String,
    /// Ed25519 public key the administrator signs commands with.
    pub public_key: [u8; 32],
    /// Sequence number of the event that added them.
    pub added_seq: u64,
}

/// Signature and revocation thresholds (set once imprint mode is left).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// Distinct administrator signatures most commands need.
    pub signature: u8,
    /// Signatures removals and revocations need.
    pub revocation: u8,
}

/// An API credential (bearer token known only by its SHA-256).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// The role it grants.
    pub role: String,
    /// SHA-256 hex of the bearer token.
    pub token_digest: String,
    /// Sequence number of the event that issued it.
    pub issued_seq: u64,
    /// Whether it was revoked.
    pub revoked: bool,
}

/// An instance policy as last set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstancePolicy {
    /// Whether the policy is on.
    pub enabled: bool,
    /// The policy's settings.
    pub attributes: BTreeMap<String, serde_json::Value>,
    /// Sequence number of the event that last set it.
    pub updated_seq: u64,
}

/// Where an approval request stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApprovalStatus {
    /// Waiting for approvals or for the worker.
    Pending,
    /// Executed by the crypto worker; the seq of the outcome event.
    Executed(u64),
    /// The worker tried and failed, for this reason.
    Failed(String),
    /// It was cancelled before it was executed.
    Cancelled,
    /// It expired before it was executed.
    Expired,
}

/// A gated operation waiting for (or past) its approvals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    /// The gated operation (e.g. `key.delete`).
    pub operation: String,
    /// What it acts on (e.g. a key id).
    pub target: String,
    /// The principal who requested it (counts as the first authorisation).
    pub requester: String,
    /// Approvals needed from principals other than the requester.
    pub required: u8,
    /// When the request lapses.
    pub expires_at: DateTime<Utc>,
    /// Distinct approvers and the seq of their approval.
    pub approvers: BTreeMap<String, u64>,
    /// Sequence number of the request event.
    pub requested_seq: u64,
    /// Where it stands.
    pub status: ApprovalStatus,
}

impl Approval {
    /// The seq at which the quorum was reached, if it was.
    pub fn quorum_seq(&self) -> Option<u64> {
        if self.required == 0 {
            return Some(self.requested_seq);
        }
        let mut seqs: Vec<u64> = self
            .approvers
            .iter()
            .filter(|(who, _)| **who != self.requester)
            .map(|(_, seq)| *seq)
            .collect();
        seqs.sort_unstable();
        seqs.get(usize::from(self.required) - 1).copied()
    }

    /// Pending, unexpired at `now`, and with its quorum.
    pub fn ready(&self, now: DateTime<Utc>) -> bool {
        self.status == ApprovalStatus::Pending
            && now < self.expires_at
            && self.quorum_seq().is_some()
    }

    /// Pending and unexpired at `now`.
    pub fn open(&self, now: DateTime<Utc>) -> bool {
        self.status == ApprovalStatus::Pending && now < self.expires_at
    }

    /// Pending with its quorum: the crypto worker owes it an outcome. No
    /// clock here: approvals are only accepted before the expiry, so a quorum
    /// in the log was reached in time even if the outcome comes later (after
    /// a crash and restart).
    pub fn awaiting_execution(&self) -> bool {
        self.status == ApprovalStatus::Pending && self.quorum_seq().is_some()
    }

    /// Pending, short of its quorum, and past its expiry at `now`: the sweep
    /// records `approval.expired` for it.
    pub fn lapsed(&self, now: DateTime<Utc>) -> bool {
        self.status == ApprovalStatus::Pending
            && self.quorum_seq().is_none()
            && now >= self.expires_at
    }
}

/// The governance projection.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GovernanceState {
    /// Administrators by admin id.
    pub admins: BTreeMap<String, Admin>,
    /// `None`: imprint mode.
    pub thresholds: Option<Thresholds>,
    /// Nonces of accepted commands (single use).
    pub used_nonces: BTreeSet<String>,
    /// API credentials by credential id.
    pub credentials: BTreeMap<String, Credential>,
    /// Instance policies by policy type.
    pub policies: BTreeMap<String, InstancePolicy>,
    /// Approval requests by request id.
    pub approvals: BTreeMap<String, Approval>,
    /// Master-key generations whose part loading the admins approved.
    pub load_approved: BTreeSet<u32>,
    /// The SIEM sinks in force (`export.sinks_set`).
    pub sinks: Vec<super::sinks::SinkSpec>,
    /// Sequence number of the event that last set the sinks.
    pub sinks_set_seq: Option<u64>,
}

/// Any payload's `command` field, to consume its nonce.
#[derive(Deserialize)]
struct AnyCommand {
    #[serde(default)]
    command: Option<SignedCommandRef>,
}

fn parse_time(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

impl GovernanceState {
    /// Whether the instance is still in imprint mode.
    pub fn imprint_mode(&self) -> bool {
        self.thresholds.is_none()
    }

    /// The active credential whose token has this SHA-256 hex digest.
    pub fn credential_by_digest(&self, token_digest: &str) -> Option<(&String, &Credential)> {
        self.credentials
            .iter()
            .find(|(_, c)| !c.revoked && c.token_digest == token_digest)
    }

    /// An instance policy, if set and enabled.
    pub fn policy(&self, policy_type: &str) -> Option<&InstancePolicy> {
        self.policies.get(policy_type).filter(|p| p.enabled)
    }

    /// Approvals pending for `operation` on `target`.
    pub fn open_approval(
        &self,
        operation: &str,
        target: &str,
        now: DateTime<Utc>,
    ) -> Option<(&String, &Approval)> {
        self.approvals
            .iter()
            .find(|(_, a)| a.operation == operation && a.target == target && a.open(now))
    }

    /// The latest request (by request seq) for `operation` on `target`,
    /// whatever its status.
    pub fn latest_approval(&self, operation: &str, target: &str) -> Option<(&String, &Approval)> {
        self.approvals
            .iter()
            .filter(|(_, a)| a.operation == operation && a.target == target)
            .max_by_key(|(_, a)| a.requested_seq)
    }

    /// Ids of the requests awaiting execution, in the order their quorums
    /// were reached.
    pub fn awaiting_execution(&self) -> Vec<String> {
        let mut ready: Vec<(u64, &String)> = self
            .approvals
            .iter()
            .filter(|(_, a)| a.awaiting_execution())
            .filter_map(|(id, a)| a.quorum_seq().map(|q| (q, id)))
            .collect();
        ready.sort();
        ready.into_iter().map(|(_, id)| id.clone()).collect()
    }

    /// Ids of the requests that lapsed at `now` (see [`Approval::lapsed`]).
    pub fn lapsed_approvals(&self, now: DateTime<Utc>) -> Vec<String> {
        self.approvals
            .iter()
            .filter(|(_, a)| a.lapsed(now))
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Applies one stored event.
    pub fn apply(&mut self, seq: u64, envelope: &Envelope<'_>) {
        if let Ok(AnyCommand { command: Some(c) }) = serde_json::from_str(envelope.payload.get())
            && let Ok(doc) = CommandDocument::parse(&c.document)
        {
            self.used_nonces.insert(doc.nonce);
        }
        if let Some(Ok(e)) = envelope.payload_as::<InstanceCreated>() {
            self.add_admin(
                e.initial_admin_id,
                "initial".into(),
                &e.initial_admin_public_key,
                seq,
            );
        } else if let Some(Ok(e)) = envelope.payload_as::<AdminAdded>() {
            self.add_admin(e.admin_id, e.name, &e.public_key, seq);
        } else if let Some(Ok(e)) = envelope.payload_as::<AdminRemoved>() {
            self.admins.remove(&e.admin_id);
        } else if let Some(Ok(e)) = envelope.payload_as::<AdminThresholdsSet>() {
            self.thresholds = Some(Thresholds {
                signature: e.signature_threshold,
                revocation: e.revocation_threshold,
            });
        } else if let Some(Ok(_)) = envelope.payload_as::<InstanceZeroized>() {
            self.thresholds = None;
            self.load_approved.clear();
        } else if let Some(Ok(e)) = envelope.payload_as::<CredentialIssued>() {
            self.credentials.insert(
                e.credential_id,
                Credential {
                    role: e.role,
                    token_digest: e.token_digest,
                    issued_seq: seq,
                    revoked: false,
                },
            );
        } else if let Some(Ok(e)) = envelope.payload_as::<CredentialRevoked>() {
            if let Some(c) = self.credentials.get_mut(&e.credential_id) {
                c.revoked = true;
            }
        } else if let Some(Ok(e)) = envelope.payload_as::<InstancePolicyUpdated>() {
            self.policies.insert(
                e.policy_type,
                InstancePolicy {
                    enabled: e.enabled,
                    attributes: e.attributes,
                    updated_seq: seq,
                },
            );
        } else if let Some(Ok(e)) = envelope.payload_as::<ExportSinksSet>() {
            self.sinks = e.sinks;
            self.sinks_set_seq = Some(seq);
        } else if let Some(Ok(e)) = envelope.payload_as::<MasterKeyLoadApproved>() {
            self.load_approved.insert(e.generation);
        } else {
            self.apply_approval(seq, envelope);
        }
    }

    fn add_admin(&mut self, id: String, name: String, public_key: &str, seq: u64) {
        if let Ok(key) = decode_public_key(public_key) {
            self.admins.insert(
                id,
                Admin {
                    name,
                    public_key: key.to_bytes(),
                    added_seq: seq,
                },
            );
        }
    }

    fn apply_approval(&mut self, seq: u64, envelope: &Envelope<'_>) {
        if let Some(Ok(e)) = envelope.payload_as::<ApprovalRequested>() {
            self.approvals.insert(
                e.request_id,
                Approval {
                    operation: e.operation,
                    target: e.target,
                    requester: envelope.actor.principal.clone(),
                    required: e.required_approvals,
                    expires_at: parse_time(&e.expires_at),
                    approvers: BTreeMap::new(),
                    requested_seq: seq,
                    status: ApprovalStatus::Pending,
                },
            );
        } else if let Some(Ok(e)) = envelope.payload_as::<ApprovalGranted>() {
            // Grants count only while the request is open, and the
            // requester never counts towards their own quorum.
            if let Some(a) = self.approvals.get_mut(&e.request_id)
                && a.status == ApprovalStatus::Pending
                && a.requester != e.approver
            {
                a.approvers.entry(e.approver).or_insert(seq);
            }
        } else if let Some(Ok(e)) = envelope.payload_as::<ApprovalCancelled>() {
            self.set_status(&e.request_id, ApprovalStatus::Cancelled);
        } else if let Some(Ok(e)) = envelope.payload_as::<ApprovalExpired>() {
            self.set_status(&e.request_id, ApprovalStatus::Expired);
        } else if let Some(Ok(e)) = envelope.payload_as::<OperationExecuted>() {
            self.set_status(&e.request_id, ApprovalStatus::Executed(seq));
        } else if let Some(Ok(e)) = envelope.payload_as::<OperationFailed>() {
            self.set_status(&e.request_id, ApprovalStatus::Failed(e.reason));
        } else if let Some(Ok(e)) = envelope.payload_as::<KeyDestroyed>() {
            if let Some(id) = e.approval_request_id {
                self.set_status(&id, ApprovalStatus::Executed(seq));
            }
        } else if let Some(Ok(e)) = envelope.payload_as::<KeyPurged>()
            && let Some(id) = e.approval_request_id
        {
            self.set_status(&id, ApprovalStatus::Executed(seq));
        }
    }

    fn set_status(&mut self, request_id: &str, status: ApprovalStatus) {
        if let Some(a) = self.approvals.get_mut(request_id)
            && a.status == ApprovalStatus::Pending
        {
            a.status = status;
        }
    }
}
