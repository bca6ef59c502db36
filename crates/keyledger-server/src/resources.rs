//! The Key Protect key resource ([`KeyResource`]) of a key record: its
//! dates in Key Protect's form, its CRN, and the members a key shows only
//! in some states (a description, a current version, a rotation policy,
//! the deletion details of a deleted key).

use chrono::{DateTime, SecondsFormat, Utc};

use super::model::{
    AlgorithmMetadata, KeyDualAuthDelete, KeyMediaType, KeyResource, KeyRotation, KeyVersionInfo,
};
use keyledger_core::keys::projection::{KeyRecord, KeyVersion};

/// A time as Key Protect writes it (RFC 3339, milliseconds, `Z`).
pub fn date(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The CRN of a key (`crn:v1:keyledger:local:kms::a/<instance>:<instance>:key:<id>`).
pub fn crn(instance: &str, key_id: &str) -> String {
    format!("crn:v1:keyledger:local:kms::a/{instance}:{instance}:key:{key_id}")
}

/// A key version as a key resource and `GET /keys/{id}/versions` show it.
pub fn version_info(version: &KeyVersion) -> KeyVersionInfo {
    KeyVersionInfo {
        id: version.id.clone(),
        creation_date: date(&version.creation_date),
    }
}

/// The Key Protect key resource (without payload) as of `now`.
pub fn key_resource(instance: &str, key: &KeyRecord, now: DateTime<Utc>) -> KeyResource {
    // A deleted key's own members: absent unless the key is deleted.
    let if_deleted = |value| key.deleted.then_some(value);
    let opt_date = |t: &Option<DateTime<Utc>>| t.as_ref().map(date);
    let rotation = &key.rotation;
    KeyResource {
        kind: KeyMediaType,
        id: key.id.clone(),
        name: key.name.clone(),
        aliases: key.aliases.clone(),
        description: key.description.clone(),
        state: key.state.as_u8(),
        crn: crn(instance, &key.id),
        key_ring_id: key.key_ring_id.clone(),
        extractable: key.extractable,
        imported: key.imported,
        creation_date: date(&key.creation_date),
        created_by: key.created_by.clone(),
        last_update_date: date(&key.last_update_date),
        algorithm_type: key.algorithm.clone(),
        algorithm_metadata: AlgorithmMetadata {
            bit_length: key.bit_length.to_string(),
            mode: "GCM".into(),
        },
        dual_auth_delete: KeyDualAuthDelete {
            enabled: key.dual_auth_delete.enabled,
            key_set_for_deletion: key.dual_auth_delete.key_set_for_deletion,
            auth_expiration: opt_date(&key.dual_auth_delete.auth_expiration),
        },
        deleted: key.deleted,
        key_version: key.current_version().map(version_info),
        last_rotate_date: opt_date(&key.last_rotate_date),
        expiration_date: opt_date(&key.expiration_date),
        rotation: (rotation.enabled || rotation.interval_month.is_some()).then_some(KeyRotation {
            enabled: rotation.enabled,
            interval_month: rotation.interval_month,
        }),
        deletion_date: if_deleted(opt_date(&key.deletion_date)),
        deleted_by: if_deleted(key.deleted_by.clone()),
        restore_expiration_date: if_deleted(opt_date(&key.restore_expiration_date)),
        restore_allowed: key.deleted.then(|| key.restore_allowed(now)),
        purge_allowed: key.deleted.then(|| key.purge_allowed(now)),
        purge_allowed_from: if_deleted(opt_date(&key.purge_allowed_from)),
        purge_scheduled_on: if_deleted(opt_date(&key.purge_scheduled_on)),
        payload: None,
    }
}
