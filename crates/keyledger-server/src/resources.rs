//! Key Protect JSON shapes: the key resource, collections, media types.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use keyledger_core::keys::projection::KeyRecord;

pub const KEY_MEDIA_TYPE: &str = "application/vnd.ibm.kms.key+json";

fn date(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn opt_date(t: &Option<DateTime<Utc>>) -> Value {
    t.as_ref()
        .map(date)
        .map(Value::String)
        .unwrap_or(Value::Null)
}

/// The CRN of a key (`crn:v1:keyledger:local:kms::a/<instance>:<instance>:key:<id>`).
pub fn crn(instance: &str, key_id: &str) -> String {
    format!("crn:v1:keyledger:local:kms::a/{instance}:{instance}:key:{key_id}")
}

/// The Key Protect key resource (without payload).
pub fn key_resource(instance: &str, key: &KeyRecord, now: DateTime<Utc>) -> Value {
    let mut v = json!({
        "type": KEY_MEDIA_TYPE,
        "id": key.id,
        "name": key.name,
        "aliases": key.aliases,
        "description": key.description,
        "state": key.state.as_u8(),
        "crn": crn(instance, &key.id),
        "keyRingID": key.key_ring_id,
        "extractable": key.extractable,
        "imported": key.imported,
        "creationDate": date(&key.creation_date),
        "createdBy": key.created_by,
        "lastUpdateDate": date(&key.last_update_date),
        "algorithmType": key.algorithm,
        "algorithmMetadata": {"bitLength": key.bit_length.to_string(), "mode": "GCM"},
        "dualAuthDelete": {
            "enabled": key.dual_auth_delete.enabled,
            "keySetForDeletion": key.dual_auth_delete.key_set_for_deletion,
            "authExpiration": opt_date(&key.dual_auth_delete.auth_expiration),
        },
        "deleted": key.deleted,
    });
    let obj = v.as_object_mut();
    if let Some(obj) = obj {
        if key.description.is_none() {
            obj.remove("description");
        }
        if let Some(version) = key.current_version() {
            obj.insert(
                "keyVersion".into(),
                json!({"id": version.id, "creationDate": date(&version.creation_date)}),
            );
        }
        if let Some(t) = &key.last_rotate_date {
            obj.insert("lastRotateDate".into(), json!(date(t)));
        }
        if let Some(t) = &key.expiration_date {
            obj.insert("expirationDate".into(), json!(date(t)));
        }
        if key.rotation.enabled || key.rotation.interval_month.is_some() {
            obj.insert(
                "rotation".into(),
                json!({"enabled": key.rotation.enabled, "interval_month": key.rotation.interval_month}),
            );
        }
        if key.deleted {
            obj.insert("deletionDate".into(), opt_date(&key.deletion_date));
            obj.insert("deletedBy".into(), json!(key.deleted_by));
            obj.insert(
                "restoreExpirationDate".into(),
                opt_date(&key.restore_expiration_date),
            );
            obj.insert("restoreAllowed".into(), json!(key.restore_allowed(now)));
            obj.insert("purgeAllowed".into(), json!(key.purge_allowed(now)));
            obj.insert("purgeAllowedFrom".into(), opt_date(&key.purge_allowed_from));
            obj.insert("purgeScheduledOn".into(), opt_date(&key.purge_scheduled_on));
        }
    }
    v
}

/// A Key Protect collection.
pub fn collection(collection_type: &str, resources: Vec<Value>) -> Value {
    json!({
        "metadata": {"collectionType": collection_type, "collectionTotal": resources.len()},
        "resources": resources,
    })
}
