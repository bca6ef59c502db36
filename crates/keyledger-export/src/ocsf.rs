//! OCSF API Activity (class 6003) events. The log records no client
//! address, so `src_endpoint` is present but empty.

use serde::Serialize;

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

// The event as typed structs borrowing from the mapping, serialised
// straight to text. serde_json's `Value` objects are sorted maps, so the
// fields are declared in the byte order of their names: the output is the
// one the `json!` tree gave (pinned by the tests below).

#[derive(Serialize)]
struct Event<'a> {
    activity_id: u32,
    activity_name: &'static str,
    actor: Actor<'a>,
    api: Api<'a>,
    category_name: &'static str,
    category_uid: u32,
    class_name: &'static str,
    class_uid: u32,
    metadata: Metadata<'a>,
    resources: [Resource<'a>; 1],
    severity_id: u8,
    src_endpoint: Empty,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    status_code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status_detail: Option<&'a str>,
    status_id: u32,
    time: i64,
    type_uid: u32,
    unmapped: Unmapped<'a>,
}

#[derive(Serialize)]
struct Actor<'a> {
    user: User<'a>,
}

#[derive(Serialize)]
struct User<'a> {
    name: &'a str,
    #[serde(rename = "type")]
    kind: String,
    uid: &'a str,
}

#[derive(Serialize)]
struct Api<'a> {
    operation: &'a str,
    service: Service,
}

#[derive(Serialize)]
struct Service {
    name: &'static str,
}

#[derive(Serialize)]
struct Metadata<'a> {
    correlation_uid: &'a str,
    event_code: &'a str,
    product: Product,
    sequence: u64,
    tenant_uid: &'a str,
    uid: &'a str,
    version: &'static str,
}

#[derive(Serialize)]
struct Product {
    name: &'static str,
    vendor_name: &'static str,
    version: &'static str,
}

#[derive(Serialize)]
struct Resource<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(rename = "type")]
    kind: &'static str,
    uid: &'a str,
}

/// `{}`.
#[derive(Serialize)]
struct Empty {}

#[derive(Serialize)]
struct Unmapped<'a> {
    #[serde(rename = "authMethod")]
    auth_method: String,
    #[serde(rename = "keyState", skip_serializing_if = "Option::is_none")]
    key_state: Option<u8>,
    #[serde(rename = "keyVersionId", skip_serializing_if = "Option::is_none")]
    key_version_id: Option<&'a str>,
}

/// One compact OCSF JSON object.
pub fn render(m: &Mapped) -> String {
    let (status_id, status) = match m.outcome {
        Outcome::Success => (1, "Success"),
        Outcome::Failure => (2, "Failure"),
    };
    let event = Event {
        activity_id: m.activity.id(),
        activity_name: m.activity.name(),
        actor: Actor {
            user: User {
                name: &m.actor.principal,
                kind: role_name(m.actor.role),
                uid: &m.actor.principal,
            },
        },
        api: Api {
            operation: &m.action,
            service: Service { name: "keyledger" },
        },
        category_name: "Application Activity",
        category_uid: 6,
        class_name: "API Activity",
        class_uid: CLASS_UID,
        metadata: Metadata {
            correlation_uid: &m.correlation_id,
            event_code: &m.event_type,
            product: Product {
                name: "keyledger",
                vendor_name: "keyledger",
                version: crate::PRODUCT_VERSION,
            },
            sequence: m.seq,
            tenant_uid: &m.instance,
            uid: &m.leaf_hash,
            version: OCSF_VERSION,
        },
        resources: [Resource {
            name: m.target.name.as_deref(),
            kind: m.target.type_uri,
            uid: &m.target.id,
        }],
        severity_id: severity_id(m.severity),
        src_endpoint: Empty {},
        status,
        status_code: m.reason_code.as_deref(),
        status_detail: m.reason_text.as_deref(),
        status_id,
        time: m.time_ms,
        type_uid: CLASS_UID * 100 + m.activity.id(),
        unmapped: Unmapped {
            auth_method: auth_name(m.actor.auth),
            key_state: m.key_state,
            key_version_id: m.key_version_id.as_deref(),
        },
    };
    // Structs of strings and integers always serialise.
    serde_json::to_string(&event).unwrap_or_default()
}

#[cfg(test)]
pub(crate) mod tests {
    //! Pins the typed renderer byte for byte to the `json!` tree it
    //! replaced (kept here as the reference).
    use serde_json::json;

    use super::*;
    use crate::mapping::tests::samples;

    pub(crate) fn old_render(m: &Mapped) -> String {
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

    #[test]
    fn typed_renderer_matches_the_json_tree_byte_for_byte() {
        for m in samples() {
            assert_eq!(render(&m), old_render(&m));
        }
    }
}
