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
//!
//! - `setup`: administrators, thresholds, key owners, the master-key
//!   ceremony and its rotations, credentials, the instance policy;
//! - `keys`: key use and the key lifecycle;
//! - `approvals`: dual-authorisation requests, approvals, the worker's
//!   executions, cancellations and expiries.

mod approvals;
mod keys;
mod setup;

use std::collections::{BTreeMap, HashMap};

use base64::Engine;
use chrono::{DateTime, SecondsFormat, Utc};
use ed25519_dalek::SigningKey;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use crate::secret::SecretBytes;
use keyledger_core::Projections;
use keyledger_core::decide::key::{self, KeyChange, KeyCommand};
use keyledger_core::event::{Actor, AuthMethod, Envelope, EnvelopeOut, EventDraft, Role};
use keyledger_core::governance::ApprovalStatus;
use keyledger_core::keys::state::KeyState;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_sets_keep_their_index_through_removals() {
        let mut set = KeySet::default();
        for id in ["a", "b", "c", "d"] {
            set.insert(id);
        }
        set.insert("b");
        assert_eq!(set.len(), 4, "an id is in a set once");
        set.remove("a");
        set.remove("x");
        set.remove("c");
        let mut left = set.ids.clone();
        left.sort();
        assert_eq!(left, ["b", "d"]);
        for (i, id) in set.ids.iter().enumerate() {
            assert_eq!(set.at[id], i);
        }
        let mut rng = Rng::new(1);
        for _ in 0..20 {
            let picked = set.pick(&mut rng).expect("a key");
            assert!(picked == "b" || picked == "d");
        }
        set.remove("b");
        set.remove("d");
        assert_eq!(set.pick(&mut rng), None);
    }
}
