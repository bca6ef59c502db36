//! The planner of a generated instance life: from the instance's
//! projections, picks what the instance's people do next (administrators,
//! key owners, managers, writers, the service's own worker and scheduler)
//! and has the server's own decisions (`keyledger_core::decide`: the
//! governance, master-key, key and approval aggregates) make each event, as
//! the key service does before it appends. A decision that refuses a step
//! appends nothing; the planner picks something else.
//!
//! Every event is applied to the projections as soon as it is decided (the
//! driver, `super`, checks that the writer stamped it with the time and
//! sequence number it was decided at), so each step is decided against the
//! state the log will show before it.

use std::collections::{BTreeMap, HashMap};

use base64::Engine;
use chrono::{DateTime, SecondsFormat, Utc};
use ed25519_dalek::SigningKey;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use crate::hsm::ceremony;
use crate::secret::SecretBytes;
use keyledger_core::Projections;
use keyledger_core::decide::approval::{self, ApprovalChange, ApprovalCommand};
use keyledger_core::decide::governance::{self, GovernanceCommand, signers_actor};
use keyledger_core::decide::key::{self, KeyChange, KeyCommand};
use keyledger_core::decide::master_key::{self, MasterKeyChange, MasterKeyCommand};
use keyledger_core::event::{
    Actor, ApprovalCancelled, ApprovalExpired, ApprovalGranted, ApprovalRequested, AuthMethod,
    Envelope, EnvelopeOut, EventDraft, KeyAliasCreated, KeyAliasDeleted, KeyCreated, KeyDestroyed,
    KeyDisabled, KeyEnabled, KeyPayloadRead, KeyPolicyUpdated, KeyPurged, KeyRestored,
    KeyRewrapped, KeyRotated, KeyUnwrapped, KeyWrapped, MasterKeyActivated, MasterKeyCommitted,
    MasterKeyPartLoaded, MasterKeyRotated, Role,
};
use keyledger_core::governance::{
    AdminCommand, Approval, ApprovalStatus, CommandDocument, OP_KEY_DELETE, OP_KEY_PURGE,
    SignedCommand, View, admin_id, authorize,
};
use keyledger_core::keys::state::{
    self as state, DUAL_AUTH_WINDOW, KeyAction, KeyState, PURGE_DELAY, RESTORE_WINDOW,
};

/// Administrators the generated instance has (the first is the initial one).
pub const ADMINS: usize = 3;
/// Signature and revocation thresholds it sets.
pub const THRESHOLD: u8 = 2;
/// Its key owners.
pub const KEY_OWNERS: [&str; 2] = ["owner-a", "owner-b"];
/// The credentials it issues first: (role, how many).
pub const CREDENTIALS: [(&str, usize); 4] =
    [("manager", 2), ("writer", 4), ("reader", 1), ("auditor", 1)];
/// Root keys the writers create before they start using keys.
pub const MIN_ROOT_KEYS: usize = 8;
/// How long a signed administrator command stays valid.
const COMMAND_LIFETIME: chrono::Duration = chrono::Duration::hours(1);

const NAMES: [&str; 10] = [
    "payments",
    "orders",
    "billing",
    "customer-db",
    "analytics",
    "backups",
    "sessions",
    "audit-archive",
    "search-index",
    "mail",
];

/// A small, fast pseudo-random generator (SplitMix64): the mix of steps,
/// not their secrets, comes from it.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    fn chance(&mut self, per_million: u64) -> bool {
        self.below(1_000_000) < per_million
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        if items.is_empty() {
            None
        } else {
            items.get(self.below(items.len() as u64) as usize)
        }
    }
}

/// Key ids in one state, with O(1) insert, remove and random pick.
#[derive(Debug, Default)]
struct KeySet {
    ids: Vec<String>,
    at: HashMap<String, usize>,
}

impl KeySet {
    fn insert(&mut self, id: &str) {
        if !self.at.contains_key(id) {
            self.at.insert(id.to_string(), self.ids.len());
            self.ids.push(id.to_string());
        }
    }

    fn remove(&mut self, id: &str) {
        if let Some(i) = self.at.remove(id) {
            self.ids.swap_remove(i);
            if let Some(moved) = self.ids.get(i) {
                self.at.insert(moved.clone(), i);
            }
        }
    }

    fn pick(&self, rng: &mut Rng) -> Option<String> {
        rng.pick(&self.ids).cloned()
    }

    fn len(&self) -> usize {
        self.ids.len()
    }
}

/// Where a key is in the life's indexes.
#[derive(Debug, Default)]
struct Keys {
    /// Active root keys (wrap, unwrap, rewrap, rotate).
    root: KeySet,
    /// Active standard keys (payload reads).
    standard: KeySet,
    /// Suspended keys (enable).
    suspended: KeySet,
    /// Destroyed keys (restore, purge).
    destroyed: KeySet,
}

impl Keys {
    fn remove(&mut self, id: &str) {
        self.root.remove(id);
        self.standard.remove(id);
        self.suspended.remove(id);
        self.destroyed.remove(id);
    }
}

/// Why the life cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum LifeError {
    /// The instance has no administrator whose key the generator holds.
    #[error("{0}")]
    Stuck(String),
    /// Building an event failed.
    #[error("{0}")]
    Event(String),
}

/// The state of a generated instance life and what it does next.
pub struct Life {
    instance: String,
    state: Projections,
    seq: u64,
    now: DateTime<Utc>,
    time: String,
    rng: Rng,
    admins: Vec<SigningKey>,
    parts: BTreeMap<String, SecretBytes>,
    keys: Keys,
    writers: Vec<String>,
    managers: Vec<String>,
    requests: Vec<String>,
    /// The earliest expiry of a pending request.
    earliest_expiry: Option<DateTime<Utc>>,
    /// The setup is done (credentials are checked no more).
    set_up: bool,
    /// Approved requests without an outcome when the run began.
    owed: Vec<String>,
    correlation: u64,
}

impl std::fmt::Debug for Life {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Life")
            .field("instance", &self.instance)
            .field("seq", &self.seq)
            .field("time", &self.time)
            .finish_non_exhaustive()
    }
}

impl Life {
    /// The life of `instance`, whose log so far rebuilt `state` and holds
    /// `seq` records, at `now` (not before its last event). `admins` are the
    /// administrator signing keys the generator holds.
    pub fn new(
        instance: &str,
        state: Projections,
        seq: u64,
        now: DateTime<Utc>,
        admins: Vec<SigningKey>,
        seed: u64,
    ) -> Self {
        let mut life = Life {
            instance: instance.to_string(),
            state,
            seq,
            now,
            time: String::new(),
            rng: Rng::new(seed),
            admins,
            parts: BTreeMap::new(),
            keys: Keys::default(),
            writers: Vec::new(),
            managers: Vec::new(),
            requests: Vec::new(),
            earliest_expiry: None,
            set_up: false,
            owed: Vec::new(),
            correlation: 0,
        };
        life.set_time(now);
        let ids: Vec<String> = life.state.keys.keys.keys().cloned().collect();
        for id in ids {
            life.refresh_key(&id);
        }
        life.refresh_credentials();
        life.requests = life.state.governance.approvals.keys().cloned().collect();
        life.refresh_requests();
        life.owed = life.state.governance.awaiting_execution();
        life.owed.reverse();
        life
    }

    /// The time the next events are decided at (and stamped with).
    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    /// That time as the writer writes it.
    pub fn time(&self) -> &str {
        &self.time
    }

    /// The sequence number the next event gets.
    pub fn next_seq(&self) -> u64 {
        self.seq
    }

    /// The administrator signing keys the generator holds.
    pub fn admin_keys(&self) -> &[SigningKey] {
        &self.admins
    }

    /// Moves the clock to `to` (never backwards).
    pub fn set_time(&mut self, to: DateTime<Utc>) {
        let micros = to.timestamp_micros().max(self.now.timestamp_micros());
        self.now = DateTime::from_timestamp_micros(micros).unwrap_or(self.now);
        self.time = self.now.to_rfc3339_opts(SecondsFormat::Micros, true);
    }

    /// The next step of the life: one to `budget` events (at least one),
    /// each decided by the server's own rules and applied to the state.
    pub fn next(&mut self, budget: u64) -> Result<Vec<EventDraft>, LifeError> {
        if let Some(step) = self.setup()? {
            return Ok(step);
        }
        if let Some(step) = self.expire_lapsed()? {
            return Ok(step);
        }
        if self.keys.root.len() < MIN_ROOT_KEYS {
            return self.create_key(false);
        }
        let roll = self.rng.below(10_000);
        let step = match roll {
            0..5_000 => None,
            5_000..8_800 => self.unwrap()?,
            8_800..9_000 => self.rewrap()?,
            9_000..9_100 => self.read_payload()?,
            9_100..9_180 => Some(self.create_key(false)?),
            9_180..9_200 => Some(self.create_key(true)?),
            9_200..9_300 => self.rotate()?,
            9_300..9_340 => self.create_alias()?,
            9_340..9_360 => self.delete_alias()?,
            9_360..9_420 => self.set_dual_auth()?,
            9_420..9_440 => self.set_rotation_policy()?,
            9_440..9_480 => self.disable()?,
            9_480..9_530 => self.enable()?,
            9_530..9_580 => self.delete()?,
            9_580..9_660 if budget >= 2 => self.approve()?,
            9_660..9_675 => self.cancel()?,
            9_675..9_680 => self.restore()?,
            9_680..9_750 => self.purge()?,
            9_750..9_756 => self.credential_change()?,
            9_756..9_758 if self.state.governance.policy("dualAuthDelete").is_none() => {
                Some(self.instance_dual_auth()?)
            }
            9_758..9_759 if self.rng.chance(20_000) => self.start_master_key_rotation()?,
            _ => None,
        };
        match step {
            Some(step) => Ok(step),
            None => self.wrap(),
        }
    }

    // ---- setup: administrators, thresholds, key owners, ceremony, credentials ----

    /// The next step of the instance's setup (or of a master-key ceremony
    /// under way), if any is left.
    fn setup(&mut self) -> Result<Option<Vec<EventDraft>>, LifeError> {
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
    fn ceremony(&mut self) -> Result<Option<Vec<EventDraft>>, LifeError> {
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

    fn start_master_key_rotation(&mut self) -> Result<Option<Vec<EventDraft>>, LifeError> {
        let generation = self.state.master.next_generation();
        if self.state.master.pending.is_some()
            || self.state.governance.load_approved.contains(&generation)
        {
            return Ok(None);
        }
        self.admin(AdminCommand::ApproveMasterKeyLoad { generation })
            .map(Some)
    }

    fn issue_credential(&mut self, role: &str) -> Result<Vec<EventDraft>, LifeError> {
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
    fn credential_change(&mut self) -> Result<Option<Vec<EventDraft>>, LifeError> {
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

    fn instance_dual_auth(&mut self) -> Result<Vec<EventDraft>, LifeError> {
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
    fn admin(&mut self, command: AdminCommand) -> Result<Vec<EventDraft>, LifeError> {
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
    fn master_key_pattern(&mut self, generation: u32) -> Result<String, LifeError> {
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

    fn decide_master_key(
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

    fn master_key(
        &mut self,
        actor: &Actor,
        change: MasterKeyChange,
    ) -> Result<Vec<EventDraft>, LifeError> {
        let correlation_id = self.correlation_id();
        let drafts = self.decide_master_key(actor, &correlation_id, change)?;
        self.applied(drafts)
    }

    // ---- key use ----

    fn wrap(&mut self) -> Result<Vec<EventDraft>, LifeError> {
        if let Some((key_id, version)) = self.root_key_version(true) {
            let change = KeyChange::Wrap(KeyWrapped {
                key_id,
                version_id: version,
                generated_dek: self.rng.below(3) == 0,
                aad_entries: u32::from(self.rng.below(4) == 0),
                ciphertext_digest: self.ciphertext_digest(),
            });
            let actor = self.writer();
            if let Some(step) = self.key(actor, change)? {
                return Ok(step);
            }
        }
        self.create_key(false)
    }

    fn unwrap(&mut self) -> Result<Option<Vec<EventDraft>>, LifeError> {
        let Some((key_id, version)) = self.root_key_version(false) else {
            return Ok(None);
        };
        let change = KeyChange::Unwrap(KeyUnwrapped {
            key_id,
            version_id: version,
            rewrapped_version_id: None,
            ciphertext_digest: self.ciphertext_digest(),
        });
        let actor = self.writer();
        self.key(actor, change)
    }

    fn rewrap(&mut self) -> Result<Option<Vec<EventDraft>>, LifeError> {
        let Some(key_id) = self.keys.root.pick(&mut self.rng) else {
            return Ok(None);
        };
        let Some(record) = self.state.keys.get(&key_id) else {
            return Ok(None);
        };
        if record.versions.len() < 2 {
            return Ok(None);
        }
        let older = self.rng.below(record.versions.len() as u64 - 1) as usize;
        let (from, to) = (
            record.versions[older].id.clone(),
            record.versions[record.versions.len() - 1].id.clone(),
        );
        let change = KeyChange::Rewrap(KeyRewrapped {
            key_id,
            from_version_id: from,
            to_version_id: to,
            ciphertext_digest: self.ciphertext_digest(),
        });
        let actor = self.writer();
        self.key(actor, change)
    }

    fn read_payload(&mut self) -> Result<Option<Vec<EventDraft>>, LifeError> {
        let Some(key_id) = self.keys.standard.pick(&mut self.rng) else {
            return Ok(None);
        };
        let Some(version) = self
            .state
            .keys
            .get(&key_id)
            .and_then(|k| k.current_version())
            .map(|v| v.id.clone())
        else {
            return Ok(None);
        };
        let change = KeyChange::ReadPayload(KeyPayloadRead {
            key_id,
            version_id: version,
        });
        let actor = self.writer();
        self.key(actor, change)
    }

    /// An active root key and one of its versions: the current one (to
    /// wrap), or for an unwrap now and then an older one (old ciphertexts).
    fn root_key_version(&mut self, current: bool) -> Option<(String, String)> {
        let key_id = self.keys.root.pick(&mut self.rng)?;
        let record = self.state.keys.get(&key_id)?;
        let n = record.versions.len();
        let i = if current || n < 2 || self.rng.below(5) != 0 {
            n.checked_sub(1)?
        } else {
            self.rng.below(n as u64) as usize
        };
        Some((key_id, record.versions.get(i)?.id.clone()))
    }

    // ---- key lifecycle ----

    fn create_key(&mut self, standard: bool) -> Result<Vec<EventDraft>, LifeError> {
        let bytes: usize = if standard {
            [16, 24, 32][self.rng.below(3) as usize]
        } else {
            32
        };
        let material = SecretBytes::random(bytes).map_err(|e| LifeError::Event(e.to_string()))?;
        let name = format!(
            "{}-{}",
            NAMES[self.rng.below(NAMES.len() as u64) as usize],
            if standard { "secret" } else { "kek" }
        );
        let aliases = if self.rng.below(4) == 0 {
            vec![format!("{name}-{}", hex::encode(&random32()?[..3]))]
        } else {
            Vec::new()
        };
        let event = KeyCreated {
            key_id: uuid::Uuid::new_v4().to_string(),
            name,
            description: Some("created by the application's deploy pipeline".into()),
            key_ring_id: keyledger_core::keys::projection::DEFAULT_KEY_RING.into(),
            extractable: standard,
            imported: false,
            algorithm: "AES".into(),
            bit_length: u16::try_from(bytes * 8).unwrap_or(256),
            version_id: uuid::Uuid::new_v4().to_string(),
            key_check_value: ceremony::kcv(material.expose()),
            expiration_date: None,
            aliases,
            activation_date: None,
            import_token_id: None,
        };
        let actor = self.writer();
        match self.key(actor, KeyChange::Create(event))? {
            Some(step) => Ok(step),
            None => Err(LifeError::Stuck(format!(
                "{} refuses to create keys (no active master key, or no writer)",
                self.instance
            ))),
        }
    }

    fn rotate(&mut self) -> Result<Option<Vec<EventDraft>>, LifeError> {
        let Some(key_id) = self.keys.root.pick(&mut self.rng) else {
            return Ok(None);
        };
        let material = SecretBytes::random(32).map_err(|e| LifeError::Event(e.to_string()))?;
        let imported = self.state.keys.get(&key_id).is_some_and(|k| k.imported);
        let change = KeyChange::Rotate(KeyRotated {
            key_id,
            version_id: uuid::Uuid::new_v4().to_string(),
            key_check_value: ceremony::kcv(material.expose()),
            imported,
        });
        let actor = self.writer();
        self.key(actor, change)
    }

    fn create_alias(&mut self) -> Result<Option<Vec<EventDraft>>, LifeError> {
        let Some(key_id) = self.keys.root.pick(&mut self.rng) else {
            return Ok(None);
        };
        let alias = format!("app-{}", hex::encode(&random32()?[..4]));
        let actor = self.writer();
        self.key(
            actor,
            KeyChange::CreateAlias(KeyAliasCreated { key_id, alias }),
        )
    }

    fn delete_alias(&mut self) -> Result<Option<Vec<EventDraft>>, LifeError> {
        let Some(key_id) = self.keys.root.pick(&mut self.rng) else {
            return Ok(None);
        };
        let Some(alias) = self
            .state
            .keys
            .get(&key_id)
            .and_then(|k| k.aliases.first().cloned())
        else {
            return Ok(None);
        };
        let actor = self.writer();
        self.key(
            actor,
            KeyChange::DeleteAlias(KeyAliasDeleted { key_id, alias }),
        )
    }

    fn set_dual_auth(&mut self) -> Result<Option<Vec<EventDraft>>, LifeError> {
        let Some(key_id) = self.keys.root.pick(&mut self.rng) else {
            return Ok(None);
        };
        if self
            .state
            .keys
            .get(&key_id)
            .is_some_and(|k| k.dual_auth_delete.enabled)
        {
            return Ok(None);
        }
        let actor = self.manager();
        self.key(
            actor,
            KeyChange::SetPolicy(KeyPolicyUpdated {
                key_id,
                policy_type: "dualAuthDelete".into(),
                enabled: true,
                interval_month: None,
            }),
        )
    }

    fn set_rotation_policy(&mut self) -> Result<Option<Vec<EventDraft>>, LifeError> {
        let Some(key_id) = self.keys.root.pick(&mut self.rng) else {
            return Ok(None);
        };
        let months = [1, 3, 6, 12][self.rng.below(4) as usize];
        let actor = self.manager();
        self.key(
            actor,
            KeyChange::SetPolicy(KeyPolicyUpdated {
                key_id,
                policy_type: "rotation".into(),
                enabled: true,
                interval_month: Some(months),
            }),
        )
    }

    fn disable(&mut self) -> Result<Option<Vec<EventDraft>>, LifeError> {
        if self.keys.root.len() <= MIN_ROOT_KEYS {
            return Ok(None);
        }
        let Some(key_id) = self.keys.root.pick(&mut self.rng) else {
            return Ok(None);
        };
        let actor = self.manager();
        self.key(actor, KeyChange::Disable(KeyDisabled { key_id }))
    }

    fn enable(&mut self) -> Result<Option<Vec<EventDraft>>, LifeError> {
        let Some(key_id) = self.keys.suspended.pick(&mut self.rng) else {
            return Ok(None);
        };
        let actor = self.manager();
        self.key(actor, KeyChange::Enable(KeyEnabled { key_id }))
    }

    /// A manager deletes a key: at once, or under dual authorisation by
    /// asking a second manager (`setKeyForDeletion`: an approval request),
    /// as `KeyService::delete_key` and `set_key_for_deletion` do.
    fn delete(&mut self) -> Result<Option<Vec<EventDraft>>, LifeError> {
        let pool = if self.rng.below(4) == 0 && self.keys.suspended.len() > 0 {
            &self.keys.suspended
        } else {
            &self.keys.root
        };
        if pool.len() <= MIN_ROOT_KEYS / 2 {
            return Ok(None);
        }
        let Some(key_id) = pool.pick(&mut self.rng) else {
            return Ok(None);
        };
        let dual = self
            .state
            .keys
            .get(&key_id)
            .is_some_and(|k| k.dual_auth_delete.enabled);
        let actor = self.manager();
        if !dual {
            return self.key(
                actor,
                KeyChange::Destroy(KeyDestroyed {
                    key_id,
                    force: false,
                    approval_request_id: None,
                }),
            );
        }
        self.request(actor, OP_KEY_DELETE, &key_id)
    }

    /// A manager purges a destroyed key 4 hours or more after its deletion:
    /// at once, or under dual authorisation by asking a second manager.
    fn purge(&mut self) -> Result<Option<Vec<EventDraft>>, LifeError> {
        let Some(key_id) = self.keys.destroyed.pick(&mut self.rng) else {
            return Ok(None);
        };
        let Some(record) = self.state.keys.get(&key_id) else {
            return Ok(None);
        };
        if record
            .deletion_date
            .is_none_or(|d| self.now < d + PURGE_DELAY)
        {
            return Ok(None);
        }
        let (dual, versions) = (
            record.dual_auth_delete.enabled,
            u32::try_from(record.versions.len()).unwrap_or(u32::MAX),
        );
        let actor = self.manager();
        if !dual {
            return self.key(
                actor,
                KeyChange::Purge(KeyPurged {
                    key_id,
                    versions_shredded: versions,
                    approval_request_id: None,
                }),
            );
        }
        self.request(actor, OP_KEY_PURGE, &key_id)
    }

    fn restore(&mut self) -> Result<Option<Vec<EventDraft>>, LifeError> {
        let Some(key_id) = self.keys.destroyed.pick(&mut self.rng) else {
            return Ok(None);
        };
        let Some(record) = self.state.keys.get(&key_id) else {
            return Ok(None);
        };
        if record
            .deletion_date
            .is_none_or(|d| self.now >= d + RESTORE_WINDOW)
        {
            return Ok(None);
        }
        let Some(current) = record.current_version() else {
            return Ok(None);
        };
        let change = KeyChange::Restore(KeyRestored {
            key_id,
            version_id: current.id.clone(),
            key_check_value: current.kcv.clone(),
        });
        let actor = self.manager();
        self.key(actor, change)
    }

    // ---- approvals of gated operations ----

    /// `approval.requested` for `operation` on `key_id` by `actor`, one
    /// approval by another principal within seven days, unless one is open.
    fn request(
        &mut self,
        actor: Option<Actor>,
        operation: &str,
        key_id: &str,
    ) -> Result<Option<Vec<EventDraft>>, LifeError> {
        let action = if operation == OP_KEY_PURGE {
            KeyAction::Purge
        } else {
            KeyAction::SetKeyForDeletion
        };
        let allowed = self
            .state
            .keys
            .get(key_id)
            .is_some_and(|k| state::check_at(k.state, action, &k.timeline(), self.now).is_ok());
        if !allowed
            || self
                .state
                .governance
                .open_approval(operation, key_id, self.now)
                .is_some()
        {
            return Ok(None);
        }
        let request_id = uuid::Uuid::new_v4().to_string();
        let change = ApprovalChange::Request(ApprovalRequested {
            request_id: request_id.clone(),
            operation: operation.to_string(),
            target: key_id.to_string(),
            required_approvals: 1,
            expires_at: (self.now + DUAL_AUTH_WINDOW).to_rfc3339_opts(SecondsFormat::Millis, true),
        });
        let step = self.approval(actor, change)?;
        if step.is_some() {
            self.requests.push(request_id);
            self.refresh_requests();
        }
        Ok(step)
    }

    /// A second manager approves an open request; the approval completes
    /// its quorum, so the crypto worker executes it at once and records the
    /// outcome under the approver (`KeyService::grant`, `execute_approved`).
    fn approve(&mut self) -> Result<Option<Vec<EventDraft>>, LifeError> {
        let Some(request_id) = self.rng.pick(&self.requests).cloned() else {
            return Ok(None);
        };
        let Some(request) = self.state.governance.approvals.get(&request_id).cloned() else {
            return Ok(None);
        };
        if !request.open(self.now) {
            return Ok(None);
        }
        let Some(approver) = self
            .managers
            .iter()
            .find(|m| **m != request.requester)
            .cloned()
        else {
            return Ok(None);
        };
        let actor = credential_actor(&approver, Role::Manager);
        let Some(outcome) = outcome(&self.state, &request_id, &request) else {
            return Ok(None);
        };
        // The key service checks the operation against the key before it
        // records the approval; a request it could not execute is left.
        let correlation_id = self.correlation_id();
        let probe = KeyCommand {
            actor: actor.clone(),
            correlation_id: correlation_id.clone(),
            at: self.now,
            change: outcome,
        };
        if key::check(&self.state, &probe).is_err() {
            return Ok(None);
        }
        let grant = ApprovalCommand {
            actor,
            correlation_id,
            at: self.now,
            change: ApprovalChange::Grant(ApprovalGranted {
                request_id: request_id.clone(),
                approver,
            }),
        };
        let Ok(drafts) = approval::decide(&self.state, &grant) else {
            return Ok(None);
        };
        let mut step = self.applied(drafts)?;
        step.extend(self.execute(probe)?);
        Ok(Some(step))
    }

    /// The crypto worker executes a request whose quorum is in the log,
    /// under the principal whose approval completed it
    /// (`KeyService::execute_approved`).
    fn execute(&mut self, command: KeyCommand) -> Result<Vec<EventDraft>, LifeError> {
        let key_id = command.change.key_id().to_string();
        let drafts = key::decide(&self.state, &command).map_err(|e| {
            LifeError::Stuck(format!(
                "the worker could not execute an approved request on {key_id}: {e}"
            ))
        })?;
        let step = self.applied(drafts)?;
        self.refresh_key(&key_id);
        self.refresh_requests();
        Ok(step)
    }

    /// A request approved before a run was killed, whose outcome the log
    /// does not hold: the worker executes it first thing, as
    /// `KeyService::open` does (`None` once there is none it can execute).
    fn owed_execution(&mut self) -> Result<Option<Vec<EventDraft>>, LifeError> {
        while let Some(request_id) = self.owed.pop() {
            let Some(request) = self.state.governance.approvals.get(&request_id).cloned() else {
                continue;
            };
            let quorum = request.quorum_seq();
            let approver = request
                .approvers
                .iter()
                .find(|(_, seq)| Some(**seq) == quorum)
                .map(|(p, _)| p.clone());
            let (Some(approver), Some(change)) =
                (approver, outcome(&self.state, &request_id, &request))
            else {
                continue;
            };
            let role = self
                .state
                .governance
                .credentials
                .get(&approver)
                .and_then(|c| keyledger_core::roles::role_of(&c.role))
                .unwrap_or(Role::Manager);
            let command = KeyCommand {
                actor: credential_actor(&approver, role),
                correlation_id: self.correlation_id(),
                at: self.now,
                change,
            };
            if request.awaiting_execution() && key::check(&self.state, &command).is_ok() {
                return self.execute(command).map(Some);
            }
        }
        Ok(None)
    }

    /// A manager withdraws a deletion request (`unsetKeyForDeletion`).
    fn cancel(&mut self) -> Result<Option<Vec<EventDraft>>, LifeError> {
        let Some(request_id) = self.rng.pick(&self.requests).cloned() else {
            return Ok(None);
        };
        let deletion = self
            .state
            .governance
            .approvals
            .get(&request_id)
            .is_some_and(|a| a.operation == OP_KEY_DELETE);
        if !deletion {
            return Ok(None);
        }
        let change = ApprovalChange::Cancel(ApprovalCancelled {
            request_id,
            reason: "unsetKeyForDeletion".into(),
        });
        let actor = self.manager();
        let step = self.approval(actor, change)?;
        self.refresh_requests();
        Ok(step)
    }

    /// The scheduler closes requests that lapsed without their quorum
    /// (`KeyService::expire_approvals`).
    fn expire_lapsed(&mut self) -> Result<Option<Vec<EventDraft>>, LifeError> {
        if self.earliest_expiry.is_none_or(|t| self.now < t) {
            return Ok(None);
        }
        let lapsed = self.requests.iter().find(|id| {
            self.state
                .governance
                .approvals
                .get(*id)
                .is_some_and(|a| a.lapsed(self.now))
        });
        let Some(request_id) = lapsed.cloned() else {
            return Ok(None);
        };
        let command = ApprovalCommand {
            actor: Actor::system(),
            correlation_id: "approval-expiry".into(),
            at: self.now,
            change: ApprovalChange::Expire(ApprovalExpired { request_id }),
        };
        let drafts =
            approval::decide(&self.state, &command).map_err(|e| LifeError::Stuck(e.to_string()))?;
        let step = self.applied(drafts)?;
        self.refresh_requests();
        Ok(Some(step))
    }

    fn approval(
        &mut self,
        actor: Option<Actor>,
        change: ApprovalChange,
    ) -> Result<Option<Vec<EventDraft>>, LifeError> {
        let Some(actor) = actor else {
            return Ok(None);
        };
        let command = ApprovalCommand {
            actor,
            correlation_id: self.correlation_id(),
            at: self.now,
            change,
        };
        match approval::decide(&self.state, &command) {
            Ok(drafts) => self.applied(drafts).map(Some),
            Err(_) => Ok(None),
        }
    }

    // ---- deciding and applying ----

    /// Has the key aggregate decide `change` by `actor`; `None` when it
    /// refuses (the key service would answer an error and append nothing
    /// but a refusal, which the life does not ask for).
    fn key(
        &mut self,
        actor: Option<Actor>,
        change: KeyChange,
    ) -> Result<Option<Vec<EventDraft>>, LifeError> {
        let Some(actor) = actor else {
            return Ok(None);
        };
        let key_id = change.key_id().to_string();
        let uses = matches!(
            change,
            KeyChange::Wrap(_)
                | KeyChange::Unwrap(_)
                | KeyChange::Rewrap(_)
                | KeyChange::ReadPayload(_)
        );
        let command = KeyCommand {
            actor,
            correlation_id: self.correlation_id(),
            at: self.now,
            change,
        };
        let Ok(drafts) = key::decide(&self.state, &command) else {
            return Ok(None);
        };
        if uses {
            // Key use changes no projection (`KeyService::submit_use`).
            self.seq += drafts.len() as u64;
            return Ok(Some(drafts));
        }
        let step = self.applied(drafts)?;
        self.refresh_key(&key_id);
        Ok(Some(step))
    }

    /// Applies decided events to the state, as the stored records will be
    /// applied (same instance, seq, time, actor, payload).
    fn applied(&mut self, drafts: Vec<EventDraft>) -> Result<Vec<EventDraft>, LifeError> {
        const PREV: &str = "0000000000000000000000000000000000000000000000000000000000000000";
        for draft in &drafts {
            let payload: &RawValue = &draft.payload;
            let out = EnvelopeOut {
                instance: &self.instance,
                seq: self.seq,
                time: &self.time,
                event_type: draft.event_type,
                type_version: draft.type_version,
                actor: &draft.actor,
                correlation_id: &draft.correlation_id,
                payload,
                ledger_key: "00000000",
                prev: PREV,
            };
            let bytes = serde_json::to_vec(&out).map_err(|e| LifeError::Event(e.to_string()))?;
            let envelope = Envelope::parse(&bytes).map_err(|e| LifeError::Event(e.to_string()))?;
            self.state.apply(self.seq, &envelope);
            self.seq += 1;
            if draft.event_type.starts_with("credential.") {
                self.refresh_credentials();
            }
        }
        Ok(drafts)
    }

    fn refresh_key(&mut self, key_id: &str) {
        self.keys.remove(key_id);
        let Some(record) = self.state.keys.get(key_id) else {
            return;
        };
        match record.state {
            KeyState::Active if record.extractable => self.keys.standard.insert(key_id),
            KeyState::Active => self.keys.root.insert(key_id),
            KeyState::Suspended => self.keys.suspended.insert(key_id),
            KeyState::Destroyed => self.keys.destroyed.insert(key_id),
            _ => {}
        }
    }

    fn refresh_credentials(&mut self) {
        let active = |role: &str| -> Vec<String> {
            self.state
                .governance
                .credentials
                .iter()
                .filter(|(_, c)| c.role == role && !c.revoked)
                .map(|(id, _)| id.clone())
                .collect()
        };
        self.writers = active("writer");
        self.managers = active("manager");
    }

    /// Keeps the requests that are still pending.
    fn refresh_requests(&mut self) {
        let approvals = &self.state.governance.approvals;
        self.requests.retain(|id| {
            approvals
                .get(id)
                .is_some_and(|a| a.status == ApprovalStatus::Pending)
        });
        self.earliest_expiry = self
            .requests
            .iter()
            .filter_map(|id| approvals.get(id).map(|a| a.expires_at))
            .min();
    }

    /// A writer, now and then a manager (managers may do what writers do).
    fn writer(&mut self) -> Option<Actor> {
        if self.rng.below(10) == 0
            && let Some(m) = self.rng.pick(&self.managers)
        {
            return Some(credential_actor(m, Role::Manager));
        }
        self.rng
            .pick(&self.writers)
            .map(|w| credential_actor(w, Role::Writer))
    }

    fn manager(&mut self) -> Option<Actor> {
        self.rng
            .pick(&self.managers)
            .map(|m| credential_actor(m, Role::Manager))
    }

    fn new_admin_key(&mut self) -> Result<SigningKey, LifeError> {
        Ok(SigningKey::from_bytes(&random32()?))
    }

    fn ciphertext_digest(&mut self) -> String {
        let mut bytes = [0u8; 32];
        for chunk in bytes.chunks_mut(8) {
            chunk.copy_from_slice(&self.rng.next_u64().to_le_bytes());
        }
        hex::encode(Sha256::digest(bytes))
    }

    fn correlation_id(&mut self) -> String {
        self.correlation += 1;
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&self.rng.next_u64().to_le_bytes());
        id[8..].copy_from_slice(&self.rng.next_u64().to_le_bytes());
        uuid::Builder::from_random_bytes(id).into_uuid().to_string()
    }
}

/// The key change that executes `request` (`key.destroyed` or `key.purged`
/// naming the request).
fn outcome(state: &Projections, request_id: &str, request: &Approval) -> Option<KeyChange> {
    let key_id = request.target.clone();
    let approval_request_id = Some(request_id.to_string());
    match request.operation.as_str() {
        OP_KEY_DELETE => Some(KeyChange::Destroy(KeyDestroyed {
            key_id,
            force: false,
            approval_request_id,
        })),
        OP_KEY_PURGE => Some(KeyChange::Purge(KeyPurged {
            versions_shredded: state
                .keys
                .get(&key_id)
                .map_or(0, |k| u32::try_from(k.versions.len()).unwrap_or(u32::MAX)),
            key_id,
            approval_request_id,
        })),
        _ => None,
    }
}

/// The actor of a bearer request with `credential_id` (the server's
/// `auth::identify`).
fn credential_actor(credential_id: &str, role: Role) -> Actor {
    Actor {
        principal: credential_id.to_string(),
        role,
        auth: AuthMethod::Bearer,
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn random32() -> Result<[u8; 32], LifeError> {
    let mut b = [0u8; 32];
    getrandom::getrandom(&mut b).map_err(|e| LifeError::Event(e.to_string()))?;
    Ok(b)
}
