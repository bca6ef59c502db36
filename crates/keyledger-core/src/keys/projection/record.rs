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
    pub id: String,
    pub creation_date: DateTime<Utc>,
    /// Key check value (hex).
    pub kcv: String,
    pub imported: bool,
}

/// Dual-authorisation delete state of a key.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DualAuthDelete {
    pub enabled: bool,
    pub key_set_for_deletion: bool,
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
    pub enabled: bool,
    pub interval_month: Option<u8>,
}

/// Everything known about one key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyRecord {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    /// In the order they were added.
    pub aliases: Vec<String>,
    pub key_ring_id: String,
    /// false = root key.
    pub extractable: bool,
    pub imported: bool,
    pub state: KeyState,
    pub algorithm: String,
    pub bit_length: u16,
    pub creation_date: DateTime<Utc>,
    pub created_by: String,
    pub last_update_date: DateTime<Utc>,
    pub last_rotate_date: Option<DateTime<Utc>>,
    /// As given at creation; `None` if absent or not RFC 3339.
    pub expiration_date: Option<DateTime<Utc>>,
    /// As given at creation; `None` if absent or not RFC 3339. A key whose
    /// activation date was after its creation starts in state 0.
    pub activation_date: Option<DateTime<Utc>>,
    /// Oldest first; never empty.
    pub versions: Vec<KeyVersion>,
    pub dual_auth_delete: DualAuthDelete,
    pub rotation: RotationPolicy,
    pub deleted: bool,
    pub deletion_date: Option<DateTime<Utc>>,
    pub deleted_by: Option<String>,
    pub restore_expiration_date: Option<DateTime<Utc>>,
    pub purge_allowed_from: Option<DateTime<Utc>>,
    pub purge_scheduled_on: Option<DateTime<Utc>>,
    /// Sequence number of the last event that changed this key.
    pub last_seq: u64,
}

impl KeyRecord {
    /// The version new wraps use.
    pub fn current_version(&self) -> Option<&KeyVersion> {
        self.versions.last()
    }

    pub fn version(&self, number: u32) -> Option<&KeyVersion> {
        let index = usize::try_from(number.checked_sub(1)?).ok()?;
        self.versions.get(index)
    }

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
