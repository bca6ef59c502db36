//! DMTF CADF events as IBM Cloud Activity Tracker carries Key Protect's:
//! the CADF required fields plus Activity Tracker's `requestData`,
//! `responseData`, `correlationId` and `severity`, and a `keyledger` object
//! with the instance, seq and leaf hash.

use serde_json::{Map, Value, json};

use crate::mapping::{Mapped, Outcome, auth_name, initiator_type, role_name};

/// The CADF event `typeURI`.
pub const TYPE_URI: &str = "http://schemas.dmtf.org/cloud/audit/1.0/event";

/// One compact CADF JSON object.
pub fn render(m: &Mapped) -> String {
    let mut target = json!({"id": m.target.id, "typeURI": m.target.type_uri});
    if let Some(name) = &m.target.name {
        target["name"] = json!(name);
    }
    let mut request = json!({"instanceID": m.instance});
    if let Some(uri) = &m.request_uri {
        request["requestURI"] = json!(uri);
    }
    let mut response = Map::new();
    if let Some(v) = &m.key_version_id {
        response.insert("keyVersionId".into(), json!(v));
    }
    if let Some(v) = &m.rewrapped_key_version_id {
        response.insert("rewrappedKeyVersionId".into(), json!(v));
    }
    if let Some(state) = m.key_state {
        response.insert("keyState".into(), json!(state));
    }
    let mut event = json!({
        "typeURI": TYPE_URI,
        "id": format!("{}-{}-{}", m.instance, m.seq, m.leaf_hash),
        "eventType": "activity",
        "eventTime": m.time,
        "action": m.action,
        "outcome": m.outcome.name(),
        "severity": match m.severity { 0..=3 => "normal", 4..=6 => "warning", _ => "critical" },
        "initiator": {
            "id": m.actor.principal,
            "name": m.actor.principal,
            "typeURI": initiator_type(&m.actor),
            "credential": {"type": auth_name(m.actor.auth)},
            "role": role_name(m.actor.role),
        },
        "target": target,
        "observer": {"id": "target", "name": "keyledger", "typeURI": "service/security/keymanager"},
        "requestData": request,
        "responseData": Value::Object(response),
        "correlationId": m.correlation_id,
        "keyledger": {
            "instance": m.instance,
            "seq": m.seq,
            "leafHash": m.leaf_hash,
            "eventType": m.event_type,
        },
    });
    if m.outcome == Outcome::Failure {
        let mut reason = json!({"reasonCode": m.reason_code.as_deref().unwrap_or("FAILURE")});
        if let Some(words) = &m.reason_text {
            reason["reasonType"] = json!(words);
        }
        event["reason"] = reason;
    }
    event.to_string()
}
