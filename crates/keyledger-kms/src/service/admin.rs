//! Administrator commands: a signed command is checked by the governance
//! rules against the projections (signatures, threshold, instance, nonce,
//! expiry, the command's own preconditions); a refusal is recorded as
//! `admin.command_denied` under a proven principal (the local operator, or
//! the administrators whose signatures verify: a command that proves nobody
//! is refused unrecorded); an accepted command's effect is one event that
//! carries the whole signed command, so auditors can re-check it.

use super::{KeyError, KeyService};
use keyledger_core::decide::governance::{self, GovernanceCommand, signers_actor};
use keyledger_core::event::{Actor, AdminCommandDenied, InstanceZeroized, SignedCommandRef};
use keyledger_core::governance::{AdminCommand, SignedCommand, View, authorize, verified_signers};
use keyledger_ledger::writer::Receipt;

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
        let now = self.now();
        let checked = {
            let state = self.read();
            let view = View {
                instance: &self.instance,
                governance: &state.governance,
                master: &state.master,
            };
            authorize(view, signed, now)
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
                let kind = keyledger_core::governance::CommandDocument::parse(&signed.document)
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
        let command = GovernanceCommand {
            instance: &self.instance,
            signed,
            correlation_id,
            at: now,
        };
        self.execute_admin_command(&actor, &command, authorized.document.command)
    }

    /// Executes an authorised command: the governance aggregate's decision
    /// ([`governance::decide`], the one `verify --policy` replays) makes its
    /// event, except for the ceremony steps and zeroization, whose events
    /// carry what the HSM and the key-material store did.
    fn execute_admin_command(
        &self,
        actor: &Actor,
        command: &GovernanceCommand<'_>,
        kind: AdminCommand,
    ) -> Result<Receipt, KeyError> {
        let correlation_id = command.correlation_id;
        let signed: SignedCommandRef = command.signed.to_ref();
        match kind {
            AdminCommand::CommitMasterKey { .. } => {
                self.commit_new_master_key(actor, correlation_id, signed)
            }
            AdminCommand::ActivateMasterKey { .. } => {
                self.activate_new_master_key(actor, correlation_id, signed)
            }
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
            _ => self.decide_then_append(|state| Ok(governance::decide(state, command)?)),
        }
    }
}
