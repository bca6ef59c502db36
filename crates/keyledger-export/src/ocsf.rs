//! OCSF API Activity (class 6003) events. The log records no client
//! address, so `src_endpoint` is present but empty.

use serde_json::json;

use crate::mapping::{Mapped, Outcome, auth_name, role_name};

/// OCSF API Activity's class.
pub const CLASS_UID: u32 = 6003;

/// The OCSF schema version the events follow.
pub const OCSF_VERSION: &str = "1.1.0";

/// OCSF `severity_id` for a 0-10 severity.
fn severity_id(severity: u8) -> u8 {
    match severity {
        0..=3 => 1,
        4..=5 => 2,
        6 => 3,
        7..=8 => 4,
        _ => 5,
    }
}

/// One compact OCSF JSON object.
pub fn render(m: &Mapped) -> String {
    let (status_id, status) = match m.outcome {
        Outcome::Success => (1, "Success"),
        Outcome::Failure => (2, "Failure"),
    };
    let mut resource = json!({"uid": m.target.id, "type": m.target.type_uri});
    if let Some(name) = &m.target.name {
        resource["name"] = json!(name);
    }
    let mut event = json!({
        "class_uid": CLASS_UID,
        "class_name": "API Activity",
        "category_uid": 6,
        "category_name": "Application Activity",
        "activity_id": m.activity.id(),
        "activity_name": m.activity.name(),
        "type_uid": CLASS_UID * 100 + m.activity.id(),
        "time": m.time_ms,
        "severity_id": severity_id(m.severity),
        "status_id": status_id,
        "status": status,
        "metadata": {
            "version": OCSF_VERSION,
            "product": {"name": "keyledger", "vendor_name": "keyledger", "version": crate::PRODUCT_VERSION},
            "uid": m.leaf_hash,
            "sequence": m.seq,
            "tenant_uid": m.instance,
            "correlation_uid": m.correlation_id,
            "event_code": m.event_type,
        },
        "actor": {"user": {
            "uid": m.actor.principal,
            "name": m.actor.principal,
            "type": role_name(m.actor.role),
        }},
        "api": {"operation": m.action, "service": {"name": "keyledger"}},
        "src_endpoint": {},
        "resources": [resource],
    });
    if let Some(code) = &m.reason_code {
        event["status_code"] = json!(code);
    }
    if let Some(words) = &m.reason_text {
        event["status_detail"] = json!(words);
    }
    // Fields OCSF has no attribute for.
    let mut unmapped = json!({"authMethod": auth_name(m.actor.auth)});
    if let Some(v) = &m.key_version_id {
        unmapped["keyVersionId"] = json!(v);
    }
    if let Some(state) = m.key_state {
        unmapped["keyState"] = json!(state);
    }
    event["unmapped"] = unmapped;
    event.to_string()
}
