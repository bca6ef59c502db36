//! `KeyProjection`: the current state of every key of an instance, computed
//! only from ledger events (cqrs-es style: `apply` mutates, never validates,
//! never fails; unknown event types are ignored). Rebuilding from the same
//! events gives an equal value, and [`KeyProjection::digest`] compares two
//! projections cheaply. The command handlers validate against this state
//! before they append events; see `projections/keys/README.md` for what each
//! event does, and `projections/keys/fixtures/` for golden fixtures.

mod query;
mod record;

pub use query::{
    DEFAULT_LIMIT, KeyPage, KeyQuery, MAX_LIMIT, QueryError, Search, SearchScope, SortField,
    SortKey,
};
pub use record::{DualAuthDelete, KeyRecord, KeyVersion, RotationPolicy};

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::state::{self, AUTO_PURGE_AFTER, KeyState, PURGE_DELAY, RESTORE_WINDOW};
use crate::event::{self, Envelope, EventPayload};
use crate::governance::OP_KEY_DELETE;

/// The default key ring, which always exists.
pub const DEFAULT_KEY_RING: &str = "default";

/// The key state of one instance.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyProjection {
    /// Sequence number of the last key event applied.
    pub last_seq: Option<u64>,
    /// Every key ever created and not purged, by id.
    pub keys: BTreeMap<String, KeyRecord>,
    /// alias -> key id.
    pub aliases: BTreeMap<String, String>,
    /// Key rings created besides `default`.
    pub key_rings: BTreeSet<String>,
    /// Ids of purged keys (gone for good; never reused).
    pub purged: BTreeSet<String>,
    /// Instance dual-auth-delete policy; new keys inherit it.
    pub instance_dual_auth_delete: bool,
    /// Catalogued key events that could not be applied (bad payload or time,
    /// unknown key, duplicate id or alias). Zero for a log written by the
    /// command handlers.
    pub ignored_events: u64,
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

impl KeyProjection {
    /// An empty projection (no event applied).
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds from stored event bytes in log order; unparsable records
    /// count as ignored.
    pub fn rebuild<'a, I: IntoIterator<Item = &'a [u8]>>(events: I) -> Self {
        let mut projection = Self::new();
        for bytes in events {
            match Envelope::parse(bytes) {
                Ok(envelope) => projection.apply_envelope(&envelope),
                Err(_) => projection.ignored_events += 1,
            }
        }
        projection
    }

    /// Applies an event using its own `seq` and `time`.
    pub fn apply_envelope(&mut self, envelope: &Envelope<'_>) {
        match parse_time(&envelope.time) {
            Some(time) => self.apply(envelope.seq, time, envelope),
            None => {
                self.last_seq = Some(envelope.seq);
                self.ignored_events += 1;
            }
        }
    }

    /// The key with this id.
    pub fn get(&self, id: &str) -> Option<&KeyRecord> {
        self.keys.get(id)
    }

    /// The key this alias names.
    pub fn get_by_alias(&self, alias: &str) -> Option<&KeyRecord> {
        self.aliases.get(alias).and_then(|id| self.keys.get(id))
    }

    /// Looks a key up by id, then by alias (as `GET /keys/{id|alias}`).
    pub fn resolve(&self, id_or_alias: &str) -> Option<&KeyRecord> {
        self.get(id_or_alias)
            .or_else(|| self.get_by_alias(id_or_alias))
    }

    /// Whether the key ring exists (`default` always does).
    pub fn key_ring_exists(&self, id: &str) -> bool {
        id == DEFAULT_KEY_RING || self.key_rings.contains(id)
    }

    /// SHA-256 over a domain tag and the canonical JSON serialisation
    /// (struct field order, sorted maps).
    pub fn digest(&self) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(b"keyledger/v1/key-projection\0");
        // Serialising plain data with string map keys cannot fail.
        hasher.update(serde_json::to_vec(self).unwrap_or_default());
        hasher.finalize().into()
    }

    /// Applies one event. Never fails: events it cannot apply are counted
    /// in `ignored_events`, unknown event types are skipped.
    pub fn apply(&mut self, seq: u64, time: DateTime<Utc>, envelope: &Envelope<'_>) {
        let principal = envelope.actor.principal.as_str();
        let applied = self.dispatch(seq, time, principal, envelope);
        if applied.is_some() {
            // Only key events move it, so a service that applies just the
            // events it writes to this projection equals a full rebuild.
            self.last_seq = Some(seq);
        }
        if applied == Some(false) {
            self.ignored_events += 1;
        }
    }

    /// `None`: not a key event; `Some(applied)` otherwise.
    fn dispatch(
        &mut self,
        seq: u64,
        time: DateTime<Utc>,
        principal: &str,
        env: &Envelope<'_>,
    ) -> Option<bool> {
        fn with<P: EventPayload>(env: &Envelope<'_>, f: impl FnOnce(P) -> bool) -> Option<bool> {
            env.payload_as::<P>().map(|p| p.map(f).unwrap_or(false))
        }
        // Events of other domains (approvals) that are key events only when
        // `f` says so.
        fn when<P: EventPayload>(
            env: &Envelope<'_>,
            f: impl FnOnce(P) -> Option<bool>,
        ) -> Option<bool> {
            env.payload_as::<P>().and_then(Result::ok).and_then(f)
        }
        with(env, |p: event::KeyCreated| {
            self.created(seq, time, principal, p)
        })
        .or_else(|| with(env, |p: event::KeyRotated| self.rotated(seq, time, p)))
        .or_else(|| {
            with(env, |p: event::KeyEnabled| {
                self.set_state(&p.key_id, seq, time, KeyState::Active)
            })
        })
        .or_else(|| {
            with(env, |p: event::KeyDisabled| {
                self.set_state(&p.key_id, seq, time, KeyState::Suspended)
            })
        })
        .or_else(|| {
            with(env, |p: event::KeyExpired| {
                self.set_state(&p.key_id, seq, time, KeyState::Deactivated)
            })
        })
        .or_else(|| {
            with(env, |p: event::KeyActivated| {
                self.edit(&p.key_id, seq, time, |k| {
                    // Only a pre-activation key can be activated.
                    let due = k.state == KeyState::PreActivation;
                    if due {
                        k.state = KeyState::Active;
                    }
                    due
                })
            })
        })
        .or_else(|| {
            with(env, |p: event::KeyDeletionAuthorized| {
                self.deletion_authorized(seq, time, principal, p)
            })
        })
        .or_else(|| {
            with(env, |p: event::KeyDeletionUnauthorized| {
                self.edit(&p.key_id, seq, time, |k| {
                    k.dual_auth_delete = DualAuthDelete {
                        enabled: k.dual_auth_delete.enabled,
                        ..DualAuthDelete::default()
                    };
                    true
                })
            })
        })
        .or_else(|| {
            when(env, |p: event::ApprovalRequested| {
                (p.operation == OP_KEY_DELETE)
                    .then(|| self.deletion_requested(seq, time, principal, p))
            })
        })
        .or_else(|| {
            when(env, |p: event::ApprovalCancelled| {
                self.deletion_closed(&p.request_id, seq, time)
            })
        })
        .or_else(|| {
            when(env, |p: event::ApprovalExpired| {
                self.deletion_closed(&p.request_id, seq, time)
            })
        })
        .or_else(|| {
            with(env, |p: event::KeyDestroyed| {
                self.destroyed(seq, time, principal, p)
            })
        })
        .or_else(|| with(env, |p: event::KeyRestored| self.restored(seq, time, p)))
        .or_else(|| with(env, |p: event::KeyPurged| self.purge(&p.key_id)))
        .or_else(|| {
            with(env, |p: event::KeyMoved| {
                self.edit(&p.key_id, seq, time, |k| {
                    k.key_ring_id = p.to_key_ring_id;
                    true
                })
            })
        })
        .or_else(|| {
            with(env, |p: event::KeyAliasCreated| {
                self.add_alias(&p.key_id, p.alias, seq, time)
            })
        })
        .or_else(|| {
            with(env, |p: event::KeyAliasDeleted| {
                self.remove_alias(&p.key_id, &p.alias, seq, time)
            })
        })
        .or_else(|| with(env, |p: event::KeyPolicyUpdated| self.policy(seq, time, p)))
        .or_else(|| {
            with(env, |p: event::KeyRingCreated| {
                self.key_rings.insert(p.key_ring_id)
            })
        })
        .or_else(|| {
            with(env, |p: event::KeyRingDeleted| {
                self.key_rings.remove(&p.key_ring_id)
            })
        })
        .or_else(|| {
            with(env, |p: event::InstancePolicyUpdated| {
                if p.policy_type == "dualAuthDelete" {
                    self.instance_dual_auth_delete = p.enabled;
                }
                true
            })
        })
        .or_else(|| {
            with(env, |_: event::InstanceZeroized| {
                // Every key's material is destroyed with the master key.
                let ids: Vec<String> = self.keys.keys().cloned().collect();
                ids.iter().all(|id| self.purge(id))
            })
        })
    }

    fn edit(
        &mut self,
        key_id: &str,
        seq: u64,
        time: DateTime<Utc>,
        f: impl FnOnce(&mut KeyRecord) -> bool,
    ) -> bool {
        match self.keys.get_mut(key_id) {
            Some(key) => {
                let applied = f(key);
                if applied {
                    key.touch(seq, time);
                }
                applied
            }
            None => false,
        }
    }

    fn created(
        &mut self,
        seq: u64,
        time: DateTime<Utc>,
        principal: &str,
        p: event::KeyCreated,
    ) -> bool {
        if self.keys.contains_key(&p.key_id) || self.purged.contains(&p.key_id) {
            return false;
        }
        let activation_date = p.activation_date.as_deref().and_then(parse_time);
        if p.activation_date.is_some() && activation_date.is_none() {
            return false;
        }
        // Active at once unless the activation date is still ahead.
        let state = match activation_date {
            Some(date) if date > time => KeyState::PreActivation,
            _ => KeyState::Active,
        };
        let key = KeyRecord {
            id: p.key_id.clone(),
            name: p.name,
            description: p.description,
            aliases: Vec::new(),
            key_ring_id: p.key_ring_id,
            extractable: p.extractable,
            imported: p.imported,
            state,
            algorithm: p.algorithm,
            bit_length: p.bit_length,
            creation_date: time,
            created_by: principal.to_string(),
            last_update_date: time,
            last_rotate_date: None,
            expiration_date: p.expiration_date.as_deref().and_then(parse_time),
            activation_date,
            versions: vec![KeyVersion {
                version: 1,
                id: p.version_id,
                creation_date: time,
                kcv: p.key_check_value,
                imported: p.imported,
            }],
            dual_auth_delete: DualAuthDelete {
                enabled: self.instance_dual_auth_delete,
                ..DualAuthDelete::default()
            },
            rotation: RotationPolicy::default(),
            deleted: false,
            deletion_date: None,
            deleted_by: None,
            restore_expiration_date: None,
            purge_allowed_from: None,
            purge_scheduled_on: None,
            last_seq: seq,
        };
        self.keys.insert(p.key_id.clone(), key);
        let mut all = true;
        for alias in p.aliases {
            all &= self.add_alias(&p.key_id, alias, seq, time);
        }
        all
    }

    fn rotated(&mut self, seq: u64, time: DateTime<Utc>, p: event::KeyRotated) -> bool {
        self.edit(&p.key_id, seq, time, |k| {
            if k.version_by_id(&p.version_id).is_some() {
                return false;
            }
            let Some(version) = u32::try_from(k.versions.len() + 1).ok() else {
                return false;
            };
            k.versions.push(KeyVersion {
                version,
                id: p.version_id,
                creation_date: time,
                kcv: p.key_check_value,
                imported: p.imported,
            });
            k.last_rotate_date = Some(time);
            true
        })
    }

    fn set_state(&mut self, key_id: &str, seq: u64, time: DateTime<Utc>, state: KeyState) -> bool {
        self.edit(key_id, seq, time, |k| {
            k.state = state;
            true
        })
    }

    fn deletion_authorized(
        &mut self,
        seq: u64,
        time: DateTime<Utc>,
        principal: &str,
        p: event::KeyDeletionAuthorized,
    ) -> bool {
        let Some(expiration) = parse_time(&p.auth_expiration) else {
            return false;
        };
        self.edit(&p.key_id, seq, time, |k| {
            k.dual_auth_delete.key_set_for_deletion = true;
            k.dual_auth_delete.auth_expiration = Some(expiration);
            k.dual_auth_delete.set_by = Some(principal.to_string());
            k.dual_auth_delete.request_id = None;
            true
        })
    }

    /// `approval.requested` for `key.delete`: the `setKeyForDeletion` of a
    /// dual-authorisation delete.
    fn deletion_requested(
        &mut self,
        seq: u64,
        time: DateTime<Utc>,
        principal: &str,
        p: event::ApprovalRequested,
    ) -> bool {
        let Some(expiration) = parse_time(&p.expires_at) else {
            return false;
        };
        self.edit(&p.target, seq, time, |k| {
            k.dual_auth_delete = DualAuthDelete {
                enabled: k.dual_auth_delete.enabled,
                key_set_for_deletion: true,
                auth_expiration: Some(expiration),
                set_by: Some(principal.to_string()),
                request_id: Some(p.request_id),
            };
            true
        })
    }

    /// `approval.cancelled` / `approval.expired` of a key's pending
    /// deletion request clears its authorisation; `None` if no key has that
    /// request pending (another operation's request, or one already closed).
    fn deletion_closed(&mut self, request_id: &str, seq: u64, time: DateTime<Utc>) -> Option<bool> {
        let key_id = self
            .keys
            .values()
            .find(|k| k.dual_auth_delete.request_id.as_deref() == Some(request_id))?
            .id
            .clone();
        Some(self.edit(&key_id, seq, time, |k| {
            k.dual_auth_delete = DualAuthDelete {
                enabled: k.dual_auth_delete.enabled,
                ..DualAuthDelete::default()
            };
            true
        }))
    }

    fn destroyed(
        &mut self,
        seq: u64,
        time: DateTime<Utc>,
        principal: &str,
        p: event::KeyDestroyed,
    ) -> bool {
        self.edit(&p.key_id, seq, time, |k| {
            k.state = KeyState::Destroyed;
            k.deleted = true;
            k.deletion_date = Some(time);
            k.deleted_by = Some(principal.to_string());
            k.restore_expiration_date = Some(time + RESTORE_WINDOW);
            k.purge_allowed_from = Some(time + PURGE_DELAY);
            k.purge_scheduled_on = Some(time + AUTO_PURGE_AFTER);
            k.dual_auth_delete = DualAuthDelete {
                enabled: k.dual_auth_delete.enabled,
                ..DualAuthDelete::default()
            };
            true
        })
    }

    fn restored(&mut self, seq: u64, time: DateTime<Utc>, p: event::KeyRestored) -> bool {
        self.edit(&p.key_id, seq, time, |k| {
            if k.version_by_id(&p.version_id).is_none() {
                let Some(version) = u32::try_from(k.versions.len() + 1).ok() else {
                    return false;
                };
                k.versions.push(KeyVersion {
                    version,
                    id: p.version_id,
                    creation_date: time,
                    kcv: p.key_check_value,
                    imported: k.imported,
                });
            }
            k.state = KeyState::Active;
            k.deleted = false;
            k.deletion_date = None;
            k.deleted_by = None;
            k.restore_expiration_date = None;
            k.purge_allowed_from = None;
            k.purge_scheduled_on = None;
            true
        })
    }

    fn purge(&mut self, key_id: &str) -> bool {
        match self.keys.remove(key_id) {
            Some(key) => {
                for alias in &key.aliases {
                    self.aliases.remove(alias);
                }
                self.purged.insert(key.id);
                true
            }
            None => false,
        }
    }

    fn add_alias(&mut self, key_id: &str, alias: String, seq: u64, time: DateTime<Utc>) -> bool {
        match self.aliases.get(&alias) {
            Some(owner) if owner == key_id => return true,
            Some(_) => return false,
            None => {}
        }
        let added = self.edit(key_id, seq, time, |k| {
            k.aliases.push(alias.clone());
            true
        });
        if added {
            self.aliases.insert(alias, key_id.to_string());
        }
        added
    }

    fn remove_alias(&mut self, key_id: &str, alias: &str, seq: u64, time: DateTime<Utc>) -> bool {
        if self.aliases.get(alias).map(String::as_str) != Some(key_id) {
            return false;
        }
        self.aliases.remove(alias);
        self.edit(key_id, seq, time, |k| {
            k.aliases.retain(|a| a != alias);
            true
        })
    }

    fn policy(&mut self, seq: u64, time: DateTime<Utc>, p: event::KeyPolicyUpdated) -> bool {
        self.edit(&p.key_id, seq, time, |k| match p.policy_type.as_str() {
            "rotation" => {
                k.rotation = RotationPolicy {
                    enabled: p.enabled,
                    interval_month: p.interval_month,
                };
                true
            }
            // A dual-authorisation key never loses the policy: the server
            // refuses such an update and `verify --policy` flags one in a
            // log; applying it would let a later delete by one principal
            // look authorised.
            "dualAuthDelete" => {
                if state::check_dual_auth_policy(k.dual_auth_delete.enabled, p.enabled).is_err() {
                    return false;
                }
                k.dual_auth_delete = DualAuthDelete {
                    enabled: p.enabled,
                    ..DualAuthDelete::default()
                };
                true
            }
            _ => false,
        })
    }
}
