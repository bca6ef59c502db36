//! The records of the key projection: one per key, with its versions,
//! dual-authorisation and rotation policy.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::keys::state::{DualAuth, KeyState, Timeline};

/// One version of a key's material (the material itself is in the
/// key-material store; only its check value is here).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyVersion {
    /// 1 for the first version, +1 per rotation.
    pub version: u32,
    /// The version's id (a key id of its own, as Key Protect has it).
    pub id: String,
    /// When the version was created.
    pub creation_date: DateTime<Utc>,
    /// Key check value (hex).
    pub kcv: String,
    /// Whether the caller supplied the material.
    pub imported: bool,
}

/// Dual-authorisation delete state of a key.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DualAuthDelete {
    /// Whether deleting the key needs a second user's authorisation.
    pub enabled: bool,
    /// Whether a first user has authorised the deletion.
    pub key_set_for_deletion: bool,
    /// When that authorisation lapses.
    pub auth_expiration: Option<DateTime<Utc>>,
    /// Principal who called `setKeyForDeletion`.
    pub set_by: Option<String>,
    /// The `approval.requested` (operation `key.delete`) this authorisation
    /// is; absent for the legacy `key.deletion_authorized` event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// Rotation policy of a key.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RotationPolicy {
    /// Whether automatic rotation is on.
    pub enabled: bool,
    /// Months between rotations, when set.
    pub interval_month: Option<u8>,
}

/// Everything known about one key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyRecord {
    /// The key id.
    pub id: String,
    /// The key's name.
    pub name: String,
    /// The key's description, if given.
    pub description: Option<String>,
    /// In the order they were added.
    pub aliases: Vec<String>,
    /// The key ring the key belongs to.
    pub key_ring_id: String,
    /// false = root key.
    pub extractable: bool,
    /// Whether the caller supplied the first version's material.
    pub imported: bool,
    /// The Key Protect lifecycle state.
    pub state: KeyState,
    /// The key algorithm, as Key Protect names it.
    pub algorithm: String,
    /// Key length in bits.
    pub bit_length: u16,
    /// When the key was created.
    pub creation_date: DateTime<Utc>,
    /// Principal who created it.
    pub created_by: String,
    /// Time of the last event that changed the key.
    pub last_update_date: DateTime<Utc>,
    /// Time of the last rotation, if any.
    pub last_rotate_date: Option<DateTime<Utc>>,
    /// As given at creation; `None` if absent or not RFC 3339.
    pub expiration_date: Option<DateTime<Utc>>,
    /// As given at creation; `None` if absent or not RFC 3339. A key whose
    /// activation date was after its creation starts in state 0.
    pub activation_date: Option<DateTime<Utc>>,
    /// Oldest first; never empty.
    pub versions: Vec<KeyVersion>,
    /// The key's dual-authorisation delete policy and state.
    pub dual_auth_delete: DualAuthDelete,
    /// The key's rotation policy.
    pub rotation: RotationPolicy,
    /// Whether the key is deleted (state 5, restorable until purged).
    pub deleted: bool,
    /// When it was deleted.
    pub deletion_date: Option<DateTime<Utc>>,
    /// Principal who deleted it.
    pub deleted_by: Option<String>,
    /// Until when a deleted key may be restored.
    pub restore_expiration_date: Option<DateTime<Utc>>,
    /// From when a deleted key may be purged.
    pub purge_allowed_from: Option<DateTime<Utc>>,
    /// When the service will purge a deleted key by itself.
    pub purge_scheduled_on: Option<DateTime<Utc>>,
    /// Sequence number of the last event that changed this key.
    pub last_seq: u64,
}

impl KeyRecord {
    /// The version new wraps use.
    pub fn current_version(&self) -> Option<&KeyVersion> {
        self.versions.last()
    }

    /// Version `number` (1-based).
    pub fn version(&self, number: u32) -> Option<&KeyVersion> {
        let index = usize::try_from(number.checked_sub(1)?).ok()?;
        self.versions.get(index)
    }

    /// The version with this version id.
    pub fn version_by_id(&self, id: &str) -> Option<&KeyVersion> {
        self.versions.iter().find(|v| v.id == id)
    }

    /// Key Protect's `restoreAllowed` at `now`.
    pub fn restore_allowed(&self, now: DateTime<Utc>) -> bool {
        self.state == KeyState::Destroyed && self.restore_expiration_date.is_some_and(|t| now < t)
    }

    /// Key Protect's `purgeAllowed` at `now`.
    pub fn purge_allowed(&self, now: DateTime<Utc>) -> bool {
        self.state == KeyState::Destroyed && self.purge_allowed_from.is_some_and(|t| now >= t)
    }

    /// The dates [`crate::keys::state::check_at`] needs.
    pub fn timeline(&self) -> Timeline {
        Timeline {
            deletion_date: self.deletion_date,
            last_rotate_date: self.last_rotate_date,
            activation_date: self.activation_date,
            expiration_date: self.expiration_date,
        }
    }

    /// The view [`crate::keys::state::check_dual_auth_delete`] needs.
    pub fn dual_auth(&self) -> DualAuth<'_> {
        DualAuth {
            enabled: self.dual_auth_delete.enabled,
            set_for_deletion: self.dual_auth_delete.key_set_for_deletion,
            set_by: self.dual_auth_delete.set_by.as_deref(),
            auth_expiration: self.dual_auth_delete.auth_expiration,
        }
    }

    /// When the rotation policy next rotates this key: `intervalMonth`
    /// calendar months after the last rotation (or the creation). `None`
    /// without an enabled policy with an interval.
    pub fn next_rotation(&self) -> Option<DateTime<Utc>> {
        let months = self
            .rotation
            .interval_month
            .filter(|_| self.rotation.enabled)?;
        self.last_rotate_date
            .unwrap_or(self.creation_date)
            .checked_add_months(chrono::Months::new(u32::from(months)))
    }

    pub(super) fn touch(&mut self, seq: u64, time: DateTime<Utc>) {
        self.last_seq = seq;
        self.last_update_date = time;
    }
}
