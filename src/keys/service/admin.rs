//! Administrator commands: a signed command is checked by the governance
//! rules against the projections (signatures, threshold, instance, nonce,
//! expiry, the command's own preconditions); a refusal is recorded as
//! `admin.command_denied` under a proven principal (the local operator, or
//! the administrators whose signatures verify: a command that proves nobody
//! is refused unrecorded); an accepted command's effect is one event that
//! carries the whole signed command, so auditors can re-check it.

use base64::Engine;

use super::{KeyError, KeyService};
use crate::event::{
    Actor, AdminAdded, AdminCommandDenied, AdminRemoved, AdminThresholdsSet, AuthMethod,
    CredentialIssued, CredentialRevoked, InstancePolicyUpdated, InstanceZeroized,
    KeyOwnerRegistered, KeyOwnerRemoved, MasterKeyLoadApproved, Role, SignedCommandRef,
};
use crate::governance::{AdminCommand, SignedCommand, View, admin_id, authorize, verified_signers};
use crate::writer::Receipt;

/// The actor of a command's events: the administrators whose signatures
/// verified.
fn signers_actor(signers: &[String]) -> Actor {
    let mut principal = signers.join("+");
    principal.truncate(256);
    Actor {
        principal,
        role: Role::Admin,
        auth: AuthMethod::AdminSignatures,
    }
}

fn unproven() -> KeyError {
    KeyError::Unauthenticated(
        "no signature of an administrator of this instance verifies over the command".into(),
    )
}

impl KeyService {
    /// Checks and executes a signed administrator command submitted by a
    /// proven `submitter` (the operator's local command line). Refusals are
    /// recorded (`admin.command_denied`, actor: the submitter) and
    /// returned; nothing else changes.
    pub fn submit_admin_command(
        &self,
        submitter: &Actor,
        correlation_id: &str,
        signed: &SignedCommand,
    ) -> Result<Receipt, KeyError> {
        self.submit_command(Some(submitter), correlation_id, signed)
    }

    /// Checks and executes a signed administrator command that arrived with
    /// no identity of its own (`POST /admin/commands`): its signatures are
    /// the only authentication. Unless at least one signature of a current
    /// administrator verifies, it is refused with
    /// [`KeyError::Unauthenticated`] and nothing is logged: a stranger
    /// cannot write to the log. A refusal of a command that proves its
    /// signers is recorded (`admin.command_denied`) under those signers.
    pub fn submit_signed_command(
        &self,
        correlation_id: &str,
        signed: &SignedCommand,
    ) -> Result<Receipt, KeyError> {
        self.submit_command(None, correlation_id, signed)
    }

    fn submit_command(
        &self,
        submitter: Option<&Actor>,
        correlation_id: &str,
        signed: &SignedCommand,
    ) -> Result<Receipt, KeyError> {
        // Strangers are turned away before they can take the command lock.
        if submitter.is_none() && verified_signers(&self.read().governance, signed).is_empty() {
            return Err(unproven());
        }
        let _guard = self.lock_commands();
        let checked = {
            let state = self.read();
            let view = View {
                instance: &self.instance,
                governance: &state.governance,
                master: &state.master,
            };
            authorize(view, signed, self.now())
        };
        let authorized = match checked {
            Ok(a) => a,
            Err(denial) => {
                // Who the refusal is recorded under: the proven submitter,
                // else the administrators whose signatures verify (checked
                // again under the command lock: one may have been removed).
                let actor = match submitter {
                    Some(s) => s.clone(),
                    None => {
                        let proven = verified_signers(&self.read().governance, signed);
                        if proven.is_empty() {
                            return Err(unproven());
                        }
                        signers_actor(&proven)
                    }
                };
                let kind = crate::governance::CommandDocument::parse(&signed.document)
                    .map(|d| d.command.kind().to_string())
                    .unwrap_or_else(|_| "unparsable".into());
                let event = AdminCommandDenied {
                    command_digest: hex::encode(signed.digest()),
                    command_kind: kind,
                    reason: denial.to_string().chars().take(512).collect(),
                };
                let _ = self.record_use(&actor, correlation_id, &event);
                return Err(denial.into());
            }
        };
        let actor = signers_actor(&authorized.signers);
        let command = signed.to_ref();
        self.execute_admin_command(&actor, correlation_id, authorized.document.command, command)
    }

    fn execute_admin_command(
        &self,
        actor: &Actor,
        correlation_id: &str,
        command: AdminCommand,
        signed: SignedCommandRef,
    ) -> Result<Receipt, KeyError> {
        match command {
            AdminCommand::AddAdmin { name, public_key } => {
                let key = crate::governance::decode_public_key(&public_key)
                    .map_err(crate::governance::Denial::from)?;
                let event = AdminAdded {
                    admin_id: admin_id(&key),
                    name,
                    public_key: base64::engine::general_purpose::STANDARD.encode(key.as_bytes()),
                    command: Some(signed),
                };
                self.record(actor, correlation_id, &event)
            }
            AdminCommand::RemoveAdmin { admin_id } => self.record(
                actor,
                correlation_id,
                &AdminRemoved {
                    admin_id,
                    command: signed,
                },
            ),
            AdminCommand::SetThresholds {
                signature_threshold,
                revocation_threshold,
            } => self.record(
                actor,
                correlation_id,
                &AdminThresholdsSet {
                    signature_threshold,
                    revocation_threshold,
                    command: signed,
                },
            ),
            AdminCommand::RegisterKeyOwner {
                owner_id,
                name,
                public_key,
            } => {
                let key = crate::governance::decode_public_key(&public_key)
                    .map_err(crate::governance::Denial::from)?;
                let event = KeyOwnerRegistered {
                    owner_id,
                    name,
                    public_key: base64::engine::general_purpose::STANDARD.encode(key.as_bytes()),
                    command: Some(signed),
                };
                self.record(actor, correlation_id, &event)
            }
            AdminCommand::RemoveKeyOwner { owner_id } => self.record(
                actor,
                correlation_id,
                &KeyOwnerRemoved {
                    owner_id,
                    command: signed,
                },
            ),
            AdminCommand::ApproveMasterKeyLoad { generation } => self.record(
                actor,
                correlation_id,
                &MasterKeyLoadApproved {
                    generation,
                    command: signed,
                },
            ),
            AdminCommand::CommitMasterKey { .. } => {
                self.commit_new_master_key(actor, correlation_id, signed)
            }
            AdminCommand::ActivateMasterKey { .. } => {
                self.activate_new_master_key(actor, correlation_id, signed)
            }
            AdminCommand::IssueCredential {
                credential_id,
                role,
                token_digest,
            } => self.record(
                actor,
                correlation_id,
                &CredentialIssued {
                    credential_id,
                    role,
                    token_digest,
                    command: Some(signed),
                },
            ),
            AdminCommand::RevokeCredential { credential_id } => self.record(
                actor,
                correlation_id,
                &CredentialRevoked {
                    credential_id,
                    command: Some(signed),
                },
            ),
            AdminCommand::SetInstancePolicy {
                policy_type,
                enabled,
                attributes,
            } => self.record(
                actor,
                correlation_id,
                &InstancePolicyUpdated {
                    policy_type,
                    enabled,
                    attributes,
                    command: Some(signed),
                },
            ),
            AdminCommand::Zeroize {} => {
                self.hsm.zeroize(&self.instance)?;
                let shredded = self.material.purge_instance(&self.instance)?;
                self.cache_write().clear();
                self.record(
                    actor,
                    correlation_id,
                    &InstanceZeroized {
                        command: signed,
                        keys_shredded: shredded,
                    },
                )
            }
        }
    }
}
