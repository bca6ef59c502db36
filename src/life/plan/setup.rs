//! The administrators' side of a generated life: the instance's setup
//! (administrators added and thresholds set by quorum-signed commands, key
//! owners, the master-key ceremony, credentials for every role), and later
//! credential changes, the instance's dual-authorisation policy and
//! master-key rotations; each command signed by as many administrators as
//! the thresholds ask and decided as `KeyService::submit_admin_command`
//! decides it.

use std::collections::BTreeMap;

use ed25519_dalek::SigningKey;
use sha2::{Digest, Sha256};

use super::{ADMINS, CREDENTIALS, KEY_OWNERS, Life, LifeError, THRESHOLD, b64, random32};
use crate::hsm::ceremony;
use crate::secret::SecretBytes;
use keyledger_core::decide::governance::{self, GovernanceCommand, signers_actor};
use keyledger_core::decide::master_key::{self, MasterKeyChange, MasterKeyCommand};
use keyledger_core::event::{
    Actor, AuthMethod, EventDraft, MasterKeyActivated, MasterKeyCommitted, MasterKeyPartLoaded,
    MasterKeyRotated, Role,
};
use keyledger_core::governance::{
    AdminCommand, CommandDocument, SignedCommand, View, admin_id, authorize,
};

/// How long a signed administrator command stays valid.
const COMMAND_LIFETIME: chrono::Duration = chrono::Duration::hours(1);

impl Life {
    /// The next step of the instance's setup (or of a master-key ceremony
    /// under way), if any is left.
    pub(super) fn setup(&mut self) -> Result<Option<Vec<EventDraft>>, LifeError> {
        if !self.owed.is_empty()
            && let Some(step) = self.owed_execution()?
        {
            return Ok(Some(step));
        }
        let gov = &self.state.governance;
        if gov.thresholds.is_none() && gov.admins.len() < ADMINS {
            let key = self.new_admin_key()?;
            let n = self.state.governance.admins.len() + 1;
            let command = AdminCommand::AddAdmin {
                name: format!("admin-{n}"),
                public_key: b64(key.verifying_key().as_bytes()),
            };
            self.admins.push(key);
            return self.admin(command).map(Some);
        }
        if gov.thresholds.is_none() {
            return self
                .admin(AdminCommand::SetThresholds {
                    signature_threshold: THRESHOLD,
                    revocation_threshold: THRESHOLD,
                })
                .map(Some);
        }
        if let Some(owner) = KEY_OWNERS
            .iter()
            .find(|o| !self.state.master.owners.contains_key(**o))
        {
            let key = SigningKey::from_bytes(&random32()?);
            let command = AdminCommand::RegisterKeyOwner {
                owner_id: owner.to_string(),
                name: format!("Key owner {}", &owner[6..]),
                public_key: b64(key.verifying_key().as_bytes()),
            };
            return self.admin(command).map(Some);
        }
        if let Some(step) = self.ceremony()? {
            return Ok(Some(step));
        }
        if self.set_up {
            return Ok(None);
        }
        for (role, wanted) in CREDENTIALS {
            let have = self
                .state
                .governance
                .credentials
                .values()
                .filter(|c| c.role == role && !c.revoked)
                .count();
            if have < wanted {
                return self.issue_credential(role).map(Some);
            }
        }
        self.set_up = true;
        Ok(None)
    }

    /// The next step of a master-key ceremony: the first one (no master
    /// key yet) or a rotation the administrators approved.
    pub(super) fn ceremony(&mut self) -> Result<Option<Vec<EventDraft>>, LifeError> {
        let master = &self.state.master;
        let generation = master.next_generation();
        let approved = self.state.governance.load_approved.contains(&generation);
        if master.current.is_none() && !approved {
            let command = AdminCommand::ApproveMasterKeyLoad { generation };
            return self.admin(command).map(Some);
        }
        if !approved {
            return Ok(None);
        }
        let loaded = master
            .pending
            .as_ref()
            .filter(|p| p.generation == generation);
        let missing = master
            .owners
            .keys()
            .find(|o| !loaded.is_some_and(|p| p.parts.contains_key(*o)))
            .cloned();
        if let Some(owner) = missing {
            let part = SecretBytes::random(32).map_err(|e| LifeError::Event(e.to_string()))?;
            let event = MasterKeyPartLoaded {
                generation,
                owner_id: owner.clone(),
                part_index: u8::try_from(loaded.map_or(0, |p| p.parts.len()) + 1)
                    .unwrap_or(u8::MAX),
                verification_pattern: ceremony::part_verification_pattern(&part),
            };
            self.parts.insert(owner.clone(), part);
            let actor = Actor {
                principal: owner,
                role: Role::KeyOwner,
                auth: AuthMethod::KeyOwnerCredential,
            };
            return self
                .master_key(&actor, MasterKeyChange::LoadPart(event))
                .map(Some);
        }
        if loaded.is_none_or(|p| p.committed.is_none()) {
            return self
                .admin(AdminCommand::CommitMasterKey { generation })
                .map(Some);
        }
        self.admin(AdminCommand::ActivateMasterKey { generation })
            .map(Some)
    }

    pub(super) fn start_master_key_rotation(
        &mut self,
    ) -> Result<Option<Vec<EventDraft>>, LifeError> {
        let generation = self.state.master.next_generation();
        if self.state.master.pending.is_some()
            || self.state.governance.load_approved.contains(&generation)
        {
            return Ok(None);
        }
        self.admin(AdminCommand::ApproveMasterKeyLoad { generation })
            .map(Some)
    }

    pub(super) fn issue_credential(&mut self, role: &str) -> Result<Vec<EventDraft>, LifeError> {
        let token = format!("kl_{}", hex::encode(random32()?));
        let command = AdminCommand::IssueCredential {
            credential_id: format!("{role}-{}", hex::encode(&random32()?[..4])),
            role: role.to_string(),
            token_digest: hex::encode(Sha256::digest(token.as_bytes())),
        };
        self.admin(command)
    }

    /// Now and then the administrators issue a credential, or revoke one
    /// (its holder stops using it at once).
    pub(super) fn credential_change(&mut self) -> Result<Option<Vec<EventDraft>>, LifeError> {
        if self.rng.below(2) == 0 {
            let role = if self.rng.below(3) == 0 {
                "manager"
            } else {
                "writer"
            };
            return self.issue_credential(role).map(Some);
        }
        let (pool, floor) = if self.rng.below(3) == 0 {
            (&self.managers, 3)
        } else {
            (&self.writers, 3)
        };
        if pool.len() < floor {
            return Ok(None);
        }
        let Some(credential_id) = self.rng.pick(pool).cloned() else {
            return Ok(None);
        };
        self.admin(AdminCommand::RevokeCredential { credential_id })
            .map(Some)
    }

    pub(super) fn instance_dual_auth(&mut self) -> Result<Vec<EventDraft>, LifeError> {
        self.admin(AdminCommand::SetInstancePolicy {
            policy_type: "dualAuthDelete".into(),
            enabled: true,
            attributes: BTreeMap::new(),
        })
    }

    /// Drafts a command document, has as many administrators as it needs
    /// sign it, and has the governance (or, for the ceremony steps, the
    /// master-key) aggregate decide it, as `KeyService::submit_admin_command`
    /// does.
    pub(super) fn admin(&mut self, command: AdminCommand) -> Result<Vec<EventDraft>, LifeError> {
        // As many signatures as the thresholds ask (`authorize` checks it).
        let new_threshold = match &command {
            AdminCommand::SetThresholds {
                signature_threshold,
                ..
            } => usize::from(*signature_threshold),
            _ => 1,
        };
        let need = match self.state.governance.thresholds {
            Some(t) if command.is_removal() => usize::from(t.revocation),
            Some(t) => usize::from(t.signature),
            None => 1,
        }
        .max(new_threshold);
        let document = CommandDocument::new(&self.instance, command, self.now + COMMAND_LIFETIME)
            .map_err(|e| LifeError::Event(e.to_string()))?;
        let mut signed =
            SignedCommand::unsigned(&document).map_err(|e| LifeError::Event(e.to_string()))?;
        let mut signers = 0;
        for key in &self.admins {
            if signers == need {
                break;
            }
            if self
                .state
                .governance
                .admins
                .contains_key(&admin_id(&key.verifying_key()))
            {
                signed.sign(key);
                signers += 1;
            }
        }
        if signers < need {
            return Err(LifeError::Stuck(format!(
                "{} needs {need} administrator signatures; the generator holds the keys of {signers} administrators of {}",
                document.command.kind(),
                self.instance
            )));
        }
        let correlation_id = self.correlation_id();
        let view = View {
            instance: &self.instance,
            governance: &self.state.governance,
            master: &self.state.master,
        };
        let authorized = authorize(view, &signed, self.now)
            .map_err(|e| LifeError::Stuck(format!("{}: {e}", document.command.kind())))?;
        let actor = signers_actor(&authorized.signers);
        let reference = signed.to_ref();
        let drafts = match &document.command {
            AdminCommand::CommitMasterKey { generation } => {
                let pattern = self.master_key_pattern(*generation)?;
                let parts = u8::try_from(self.state.master.owners.len()).unwrap_or(u8::MAX);
                let change = MasterKeyChange::Commit(MasterKeyCommitted {
                    generation: *generation,
                    parts,
                    verification_pattern: pattern,
                    command: Some(reference),
                });
                self.decide_master_key(&actor, &correlation_id, change)?
            }
            AdminCommand::ActivateMasterKey { generation } => {
                let pattern = self
                    .state
                    .master
                    .pending
                    .as_ref()
                    .and_then(|p| p.committed.clone())
                    .unwrap_or_default();
                let change = match &self.state.master.current {
                    Some((from, _)) => MasterKeyChange::Rotate(MasterKeyRotated {
                        from_generation: *from,
                        to_generation: *generation,
                        keys_rewrapped: self
                            .state
                            .keys
                            .keys
                            .values()
                            .map(|k| k.versions.len() as u64)
                            .sum(),
                        command: Some(reference),
                    }),
                    None => MasterKeyChange::Activate(MasterKeyActivated {
                        generation: *generation,
                        verification_pattern: pattern,
                        command: Some(reference),
                    }),
                };
                self.parts.clear();
                self.decide_master_key(&actor, &correlation_id, change)?
            }
            _ => {
                let command = GovernanceCommand {
                    instance: &self.instance,
                    signed: &signed,
                    correlation_id: &correlation_id,
                    at: self.now,
                };
                governance::decide(&self.state, &command)
                    .map_err(|e| LifeError::Stuck(e.to_string()))?
            }
        };
        self.applied(drafts)
    }

    /// The verification pattern of the master key the loaded parts make
    /// (the parts of this run; a ceremony a killed run began gets fresh
    /// material, which no rule can tell from the parts).
    pub(super) fn master_key_pattern(&mut self, generation: u32) -> Result<String, LifeError> {
        let owners: Vec<String> = self.state.master.owners.keys().cloned().collect();
        let parts: Option<Vec<SecretBytes>> =
            owners.iter().map(|o| self.parts.get(o).cloned()).collect();
        let master = match parts {
            Some(parts) => ceremony::combine_parts(&parts)
                .map_err(|e| LifeError::Event(format!("generation {generation}: {e}")))?,
            None => SecretBytes::random(32).map_err(|e| LifeError::Event(e.to_string()))?,
        };
        Ok(ceremony::master_key_verification_pattern(&master))
    }

    pub(super) fn decide_master_key(
        &mut self,
        actor: &Actor,
        correlation_id: &str,
        change: MasterKeyChange,
    ) -> Result<Vec<EventDraft>, LifeError> {
        let command = MasterKeyCommand {
            actor: actor.clone(),
            correlation_id: correlation_id.to_string(),
            at: self.now,
            change,
        };
        master_key::decide(&self.state, &self.instance, &command)
            .map_err(|e| LifeError::Stuck(e.to_string()))
    }

    pub(super) fn master_key(
        &mut self,
        actor: &Actor,
        change: MasterKeyChange,
    ) -> Result<Vec<EventDraft>, LifeError> {
        let correlation_id = self.correlation_id();
        let drafts = self.decide_master_key(actor, &correlation_id, change)?;
        self.applied(drafts)
    }
}
