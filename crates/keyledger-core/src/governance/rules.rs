//! The rules an administrator command must pass, as pure functions of the
//! projections before it. The server runs them before appending a command's
//! event; `keyledger verify --policy` runs the very same functions over a
//! bundle, so a server that signs an event these rules forbid is caught.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};

use super::command::{
    AdminCommand, CommandDocument, CommandError, MAX_SIGNATURES, SignedCommand, admin_id,
    decode_public_key, signature_valid,
};
use super::state::GovernanceState;
use crate::master_key::MasterKeyState;
use crate::reason::Reason;

/// Most administrators an instance may have, and the highest threshold.
pub const MAX_THRESHOLD: u8 = 8;
/// How far in the future a command may expire.
pub const MAX_COMMAND_LIFETIME: Duration = Duration::days(31);
/// Fewest key owners (parts) a master key is made of.
pub const MIN_KEY_OWNERS: usize = 2;
/// Roles a credential can be issued for.
pub const CREDENTIAL_ROLES: [&str; 4] = ["manager", "writer", "reader", "auditor"];
/// Instance policy types and the attributes each accepts.
pub const INSTANCE_POLICIES: [&str; 4] = [
    "dualAuthDelete",
    "allowedNetwork",
    "allowedIP",
    "keyCreateImportAccess",
];

/// Why a command was refused. Each variant is one clear reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denial {
    /// The document or its signatures are malformed.
    #[error(transparent)]
    Command(#[from] CommandError),
    /// The command names another instance.
    #[error("command is for instance {got:?}, not {expected:?}")]
    WrongInstance {
        /// This instance.
        expected: String,
        /// The instance the command names.
        got: String,
    },
    /// The command's expiry has passed.
    #[error("command expired at {expires_at}")]
    Expired {
        /// Its expiry (RFC 3339).
        expires_at: String,
    },
    /// The command expires more than 31 days from now.
    #[error("command expires more than 31 days ahead ({expires_at})")]
    ExpiryTooFar {
        /// Its expiry (RFC 3339).
        expires_at: String,
    },
    /// The nonce was used by an accepted command.
    #[error("command nonce {nonce:?} was already used (replay)")]
    Replayed {
        /// The nonce an earlier accepted command already used.
        nonce: String,
    },
    /// More than [`MAX_SIGNATURES`] signatures.
    #[error("more than {MAX_SIGNATURES} signatures")]
    TooManySignatures,
    /// A signature does not verify under the administrator's key.
    #[error("signature of {admin_id} does not verify over this command")]
    ForgedSignature {
        /// The administrator it claims to be from.
        admin_id: String,
    },
    /// One administrator signed twice.
    #[error("{admin_id} signed more than once")]
    DuplicateSigner {
        /// The administrator whose signature appears twice.
        admin_id: String,
    },
    /// A signer is not an administrator.
    #[error("{admin_id} is not an administrator of this instance")]
    NotAnAdmin {
        /// The signer's id.
        admin_id: String,
    },
    /// Fewer verified signatures than the threshold.
    #[error("{kind} needs {need} administrator signatures, it has {have}")]
    NotEnoughSignatures {
        /// The command's kind.
        kind: String,
        /// Distinct administrators whose signatures verify.
        have: usize,
        /// The threshold the command's kind needs.
        need: usize,
    },
    /// The command needs thresholds, which are not set yet.
    #[error("{kind} is not allowed in imprint mode: set the thresholds first")]
    ImprintMode {
        /// The command's kind.
        kind: String,
    },
    /// A threshold is 0 or above the largest allowed.
    #[error("threshold must be between 1 and {MAX_THRESHOLD}, got {0}")]
    ThresholdOutOfRange(u8),
    /// A threshold exceeds the number of administrators.
    #[error("threshold {threshold} is above the number of administrators ({admins})")]
    ThresholdAboveAdmins {
        /// The threshold asked for.
        threshold: u8,
        /// Administrators there would be.
        admins: usize,
    },
    /// What the command adds exists already.
    #[error("{0} already exists")]
    Conflict(String),
    /// What the command acts on does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The command's content breaks a rule.
    #[error("invalid command: {0}")]
    Invalid(String),
    /// The master-key ceremony is not at a step that allows the command.
    #[error("master-key step refused: {0}")]
    Ceremony(String),
}

impl Denial {
    /// A short stable code for events and API error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            Denial::Command(_) => "malformed",
            Denial::WrongInstance { .. } => "wrong_instance",
            Denial::Expired { .. } => "expired",
            Denial::ExpiryTooFar { .. } => "expiry_too_far",
            Denial::Replayed { .. } => "replayed",
            Denial::TooManySignatures => "too_many_signatures",
            Denial::ForgedSignature { .. } => "forged_signature",
            Denial::DuplicateSigner { .. } => "duplicate_signer",
            Denial::NotAnAdmin { .. } => "not_an_admin",
            Denial::NotEnoughSignatures { .. } => "not_enough_signatures",
            Denial::ImprintMode { .. } => "imprint_mode",
            Denial::ThresholdOutOfRange(_) => "threshold_out_of_range",
            Denial::ThresholdAboveAdmins { .. } => "threshold_above_admins",
            Denial::Conflict(_) => "conflict",
            Denial::NotFound(_) => "not_found",
            Denial::Invalid(_) => "invalid",
            Denial::Ceremony(_) => "ceremony",
        }
    }

    /// The reason code of this refusal.
    pub fn reason(&self) -> Reason {
        match self {
            Denial::Conflict(_) => Reason::CommandConflict,
            Denial::NotFound(_) => Reason::CommandTargetNotFound,
            Denial::Command(_) | Denial::Invalid(_) => Reason::CommandInvalid,
            _ => Reason::CommandRefused,
        }
    }
}

/// A command that passed every rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorized {
    /// The parsed document.
    pub document: CommandDocument,
    /// Distinct administrators whose signatures verified, sorted.
    pub signers: Vec<String>,
}

/// What a command is checked against.
#[derive(Debug, Clone, Copy)]
pub struct View<'a> {
    /// The instance the command must name.
    pub instance: &'a str,
    /// The governance projection before the command.
    pub governance: &'a GovernanceState,
    /// The master-key projection before the command.
    pub master: &'a MasterKeyState,
}

/// Checks a signed command at `now` against the state before it.
pub fn authorize(
    view: View<'_>,
    signed: &SignedCommand,
    now: DateTime<Utc>,
) -> Result<Authorized, Denial> {
    let document = CommandDocument::parse(&signed.document)?;
    if document.instance != view.instance {
        return Err(Denial::WrongInstance {
            expected: view.instance.to_string(),
            got: document.instance.chars().take(64).collect(),
        });
    }
    let expiry = document.expiry()?;
    if now >= expiry {
        return Err(Denial::Expired {
            expires_at: document.expires_at.clone(),
        });
    }
    if expiry > now + MAX_COMMAND_LIFETIME {
        return Err(Denial::ExpiryTooFar {
            expires_at: document.expires_at.clone(),
        });
    }
    if view.governance.used_nonces.contains(&document.nonce) {
        return Err(Denial::Replayed {
            nonce: document.nonce.clone(),
        });
    }
    let signers = check_signatures(view.governance, signed)?;
    let need = required_signatures(view.governance, &document.command)?;
    // The command's own preconditions come before the count, so admins
    // learn that a threshold is impossible rather than that it is unmet.
    check_effect(view, &document.command)?;
    if signers.len() < need {
        return Err(Denial::NotEnoughSignatures {
            kind: document.command.kind().to_string(),
            have: signers.len(),
            need,
        });
    }
    Ok(Authorized { document, signers })
}

/// Every signature must verify and come from a distinct current admin.
fn check_signatures(gov: &GovernanceState, signed: &SignedCommand) -> Result<Vec<String>, Denial> {
    if signed.signatures.len() > MAX_SIGNATURES {
        return Err(Denial::TooManySignatures);
    }
    let digest = signed.digest();
    let mut seen = BTreeSet::new();
    for s in &signed.signatures {
        let id: String = s.admin_id.chars().take(64).collect();
        if !seen.insert(id.clone()) {
            return Err(Denial::DuplicateSigner { admin_id: id });
        }
        let admin = gov
            .admins
            .get(&s.admin_id)
            .ok_or_else(|| Denial::NotAnAdmin {
                admin_id: id.clone(),
            })?;
        let key = ed25519_dalek::VerifyingKey::from_bytes(&admin.public_key).map_err(|_| {
            Denial::NotAnAdmin {
                admin_id: id.clone(),
            }
        })?;
        if !signature_valid(&key, &digest, &s.signature) {
            return Err(Denial::ForgedSignature { admin_id: id });
        }
    }
    Ok(seen.into_iter().collect())
}

/// The current administrators whose signatures over `signed` verify
/// (distinct, sorted), whatever else is wrong with the command: who, if
/// anyone, the command proves is behind it. Looks at no more than
/// [`MAX_SIGNATURES`] signatures, so a stranger cannot make the server
/// verify more.
pub fn verified_signers(gov: &GovernanceState, signed: &SignedCommand) -> Vec<String> {
    let digest = signed.digest();
    let mut signers = BTreeSet::new();
    for s in signed.signatures.iter().take(MAX_SIGNATURES) {
        let Some(admin) = gov.admins.get(&s.admin_id) else {
            continue;
        };
        let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(&admin.public_key) else {
            continue;
        };
        if signature_valid(&key, &digest, &s.signature) {
            signers.insert(s.admin_id.clone());
        }
    }
    signers.into_iter().collect()
}

/// How many distinct admin signatures `command` needs now.
pub fn required_signatures(gov: &GovernanceState, command: &AdminCommand) -> Result<usize, Denial> {
    let new_signature = match command {
        AdminCommand::SetThresholds {
            signature_threshold,
            ..
        } => usize::from(*signature_threshold),
        _ => 0,
    };
    match gov.thresholds {
        None => match command {
            // Imprint mode: an existing administrator adds the others.
            AdminCommand::AddAdmin { .. } => Ok(1),
            AdminCommand::SetThresholds { .. } => Ok(new_signature.max(1)),
            other => Err(Denial::ImprintMode {
                kind: other.kind().to_string(),
            }),
        },
        Some(t) => {
            let base = if command.is_removal() || removes_a_sink(gov, command) {
                t.revocation
            } else {
                t.signature
            };
            Ok(usize::from(base).max(new_signature))
        }
    }
}

/// Whether `command` sets the sinks without one the instance has now:
/// turning forwarding off takes the revocation threshold, like the other
/// removals.
fn removes_a_sink(gov: &GovernanceState, command: &AdminCommand) -> bool {
    match command {
        AdminCommand::SetSinks { sinks } => gov
            .sinks
            .iter()
            .any(|old| !sinks.iter().any(|new| new.name == old.name)),
        _ => false,
    }
}

/// The command's own preconditions against the current state.
pub fn check_effect(view: View<'_>, command: &AdminCommand) -> Result<(), Denial> {
    let gov = view.governance;
    let master = view.master;
    match command {
        AdminCommand::AddAdmin { name, public_key } => {
            let key = decode_public_key(public_key)?;
            check_label("name", name)?;
            let id = admin_id(&key);
            if gov.admins.contains_key(&id) {
                return Err(Denial::Conflict(format!("administrator {id}")));
            }
            if gov.admins.len() >= usize::from(MAX_THRESHOLD) {
                return Err(Denial::Invalid(format!(
                    "an instance has at most {MAX_THRESHOLD} administrators"
                )));
            }
            Ok(())
        }
        AdminCommand::RemoveAdmin { admin_id } => {
            if !gov.admins.contains_key(admin_id) {
                return Err(Denial::NotFound(format!("administrator {admin_id:?}")));
            }
            let remaining = gov.admins.len() - 1;
            let highest = gov
                .thresholds
                .map(|t| t.signature.max(t.revocation))
                .unwrap_or(1);
            if remaining < usize::from(highest) {
                return Err(Denial::ThresholdAboveAdmins {
                    threshold: highest,
                    admins: remaining,
                });
            }
            Ok(())
        }
        AdminCommand::SetThresholds {
            signature_threshold,
            revocation_threshold,
        } => {
            for t in [*signature_threshold, *revocation_threshold] {
                if !(1..=MAX_THRESHOLD).contains(&t) {
                    return Err(Denial::ThresholdOutOfRange(t));
                }
                if usize::from(t) > gov.admins.len() {
                    return Err(Denial::ThresholdAboveAdmins {
                        threshold: t,
                        admins: gov.admins.len(),
                    });
                }
            }
            Ok(())
        }
        AdminCommand::RegisterKeyOwner {
            owner_id,
            name,
            public_key,
        } => {
            check_id("owner_id", owner_id)?;
            check_label("name", name)?;
            decode_public_key(public_key)?;
            if master.owners.contains_key(owner_id) {
                return Err(Denial::Conflict(format!("key owner {owner_id:?}")));
            }
            Ok(())
        }
        AdminCommand::RemoveKeyOwner { owner_id } => {
            if !master.owners.contains_key(owner_id) {
                return Err(Denial::NotFound(format!("key owner {owner_id:?}")));
            }
            Ok(())
        }
        AdminCommand::ApproveMasterKeyLoad { generation } => {
            let next = master.next_generation();
            if *generation != next {
                return Err(Denial::Ceremony(format!(
                    "the next master-key generation is {next}, not {generation}"
                )));
            }
            if master.owners.len() < MIN_KEY_OWNERS {
                return Err(Denial::Ceremony(format!(
                    "at least {MIN_KEY_OWNERS} key owners must be registered"
                )));
            }
            if gov.load_approved.contains(generation) {
                return Err(Denial::Conflict(format!(
                    "load approval for generation {generation}"
                )));
            }
            Ok(())
        }
        AdminCommand::CommitMasterKey { generation } => {
            let pending = master
                .pending
                .as_ref()
                .filter(|p| p.generation == *generation && !master.pending_is_unseal())
                .ok_or_else(|| {
                    Denial::Ceremony(format!("no parts are loaded for generation {generation}"))
                })?;
            if pending.committed.is_some() {
                return Err(Denial::Ceremony(format!(
                    "generation {generation} is already committed"
                )));
            }
            let missing: Vec<&String> = master
                .owners
                .keys()
                .filter(|o| !pending.parts.contains_key(*o))
                .collect();
            if !missing.is_empty() || pending.parts.len() < MIN_KEY_OWNERS {
                return Err(Denial::Ceremony(format!(
                    "parts missing from key owners {missing:?}; every registered owner (at least {MIN_KEY_OWNERS}) must load one"
                )));
            }
            Ok(())
        }
        AdminCommand::ActivateMasterKey { generation } => {
            let committed = master
                .pending
                .as_ref()
                .is_some_and(|p| p.generation == *generation && p.committed.is_some());
            if committed {
                Ok(())
            } else {
                Err(Denial::Ceremony(format!(
                    "generation {generation} is not committed"
                )))
            }
        }
        AdminCommand::IssueCredential {
            credential_id,
            role,
            token_digest,
        } => {
            check_id("credential_id", credential_id)?;
            if !CREDENTIAL_ROLES.contains(&role.as_str()) {
                return Err(Denial::Invalid(format!(
                    "role must be one of {CREDENTIAL_ROLES:?}"
                )));
            }
            let hex_ok = token_digest.len() == 64
                && token_digest
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
            if !hex_ok {
                return Err(Denial::Invalid(
                    "token_digest must be 64 lower-case hex characters (SHA-256)".into(),
                ));
            }
            if gov.credentials.contains_key(credential_id) {
                return Err(Denial::Conflict(format!("credential {credential_id:?}")));
            }
            if gov
                .credentials
                .values()
                .any(|c| c.token_digest == *token_digest)
            {
                return Err(Denial::Conflict("a credential with this token".into()));
            }
            Ok(())
        }
        AdminCommand::RevokeCredential { credential_id } => {
            match gov.credentials.get(credential_id) {
                Some(c) if !c.revoked => Ok(()),
                _ => Err(Denial::NotFound(format!(
                    "active credential {credential_id:?}"
                ))),
            }
        }
        AdminCommand::SetInstancePolicy {
            policy_type,
            enabled,
            attributes,
        } => super::policies::check_instance_policy(policy_type, *enabled, attributes)
            .map_err(Denial::Invalid),
        AdminCommand::SetSinks { sinks } => {
            super::sinks::check_sinks(sinks).map_err(Denial::Invalid)
        }
        AdminCommand::Zeroize {} => Ok(()),
    }
}

fn check_id(field: &str, value: &str) -> Result<(), Denial> {
    super::sinks::check_name(field, value, 64).map_err(Denial::Invalid)
}

fn check_label(field: &str, value: &str) -> Result<(), Denial> {
    let ok = (1..=128).contains(&value.chars().count()) && !value.chars().any(char::is_control);
    if ok {
        Ok(())
    } else {
        Err(Denial::Invalid(format!(
            "{field} must be 1-128 characters without control characters"
        )))
    }
}
