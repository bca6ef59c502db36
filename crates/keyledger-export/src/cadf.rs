//! DMTF CADF events as IBM Cloud Activity Tracker carries Key Protect's:
//! the CADF required fields plus Activity Tracker's `requestData`,
//! `responseData`, `correlationId` and `severity`, and a `keyledger` object
//! with the instance, seq and leaf hash.

use serde::Serialize;

use crate::mapping::{Mapped, Outcome, auth_name, initiator_type, role_name};

/// The CADF event `typeURI`.
pub const TYPE_URI: &str = "http://schemas.dmtf.org/cloud/audit/1.0/event";

// The event as typed structs borrowing from the mapping, serialised
// straight to text. serde_json's `Value` objects are sorted maps, so the
// fields are declared in the byte order of their names: the output is the
// one the `json!` tree gave (pinned by the tests below).

#[derive(Serialize)]
struct Event<'a> {
    action: &'a str,
    #[serde(rename = "correlationId")]
    correlation_id: &'a str,
    #[serde(rename = "eventTime")]
    event_time: &'a str,
    #[serde(rename = "eventType")]
    event_type: &'static str,
    id: String,
    initiator: Initiator<'a>,
    keyledger: Keyledger<'a>,
    observer: Observer,
    outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<Reason<'a>>,
    #[serde(rename = "requestData")]
    request_data: RequestData<'a>,
    #[serde(rename = "responseData")]
    response_data: ResponseData<'a>,
    severity: &'static str,
    target: EventTarget<'a>,
    #[serde(rename = "typeURI")]
    type_uri: &'static str,
}

#[derive(Serialize)]
struct Initiator<'a> {
    credential: Credential,
    id: &'a str,
    name: &'a str,
    role: String,
    #[serde(rename = "typeURI")]
    type_uri: &'static str,
}

#[derive(Serialize)]
struct Credential {
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Serialize)]
struct Keyledger<'a> {
    #[serde(rename = "eventType")]
    event_type: &'a str,
    instance: &'a str,
    #[serde(rename = "leafHash")]
    leaf_hash: &'a str,
    seq: u64,
}

#[derive(Serialize)]
struct Observer {
    id: &'static str,
    name: &'static str,
    #[serde(rename = "typeURI")]
    type_uri: &'static str,
}

#[derive(Serialize)]
struct Reason<'a> {
    #[serde(rename = "reasonCode")]
    reason_code: &'a str,
    #[serde(rename = "reasonType", skip_serializing_if = "Option::is_none")]
    reason_type: Option<&'a str>,
}

#[derive(Serialize)]
struct RequestData<'a> {
    #[serde(rename = "instanceID")]
    instance_id: &'a str,
    #[serde(rename = "requestURI", skip_serializing_if = "Option::is_none")]
    request_uri: Option<&'a str>,
}

#[derive(Serialize)]
struct ResponseData<'a> {
    #[serde(rename = "keyState", skip_serializing_if = "Option::is_none")]
    key_state: Option<u8>,
    #[serde(rename = "keyVersionId", skip_serializing_if = "Option::is_none")]
    key_version_id: Option<&'a str>,
    #[serde(
        rename = "rewrappedKeyVersionId",
        skip_serializing_if = "Option::is_none"
    )]
    rewrapped_key_version_id: Option<&'a str>,
}

#[derive(Serialize)]
struct EventTarget<'a> {
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(rename = "typeURI")]
    type_uri: &'static str,
}

/// One compact CADF JSON object.
pub fn render(m: &Mapped) -> String {
    let event = Event {
        action: &m.action,
        correlation_id: &m.correlation_id,
        event_time: &m.time,
        event_type: "activity",
        id: format!("{}-{}-{}", m.instance, m.seq, m.leaf_hash),
        initiator: Initiator {
            credential: Credential {
                kind: auth_name(m.actor.auth),
            },
            id: &m.actor.principal,
            name: &m.actor.principal,
            role: role_name(m.actor.role),
            type_uri: initiator_type(&m.actor),
        },
        keyledger: Keyledger {
            event_type: &m.event_type,
            instance: &m.instance,
            leaf_hash: &m.leaf_hash,
            seq: m.seq,
        },
        observer: Observer {
            id: "target",
            name: "keyledger",
            type_uri: "service/security/keymanager",
        },
        outcome: m.outcome.name(),
        reason: (m.outcome == Outcome::Failure).then(|| Reason {
            reason_code: m.reason_code.as_deref().unwrap_or("FAILURE"),
            reason_type: m.reason_text.as_deref(),
        }),
        request_data: RequestData {
            instance_id: &m.instance,
            request_uri: m.request_uri.as_deref(),
        },
        response_data: ResponseData {
            key_state: m.key_state,
            key_version_id: m.key_version_id.as_deref(),
            rewrapped_key_version_id: m.rewrapped_key_version_id.as_deref(),
        },
        severity: match m.severity {
            0..=3 => "normal",
            4..=6 => "warning",
            _ => "critical",
        },
        target: EventTarget {
            id: &m.target.id,
            name: m.target.name.as_deref(),
            type_uri: m.target.type_uri,
        },
        type_uri: TYPE_URI,
    };
    // Structs of strings and integers always serialise.
    serde_json::to_string(&event).unwrap_or_default()
}

#[cfg(test)]
pub(crate) mod tests {
    //! Pins the typed renderer byte for byte to the `json!` tree it
    //! replaced (kept here as the reference).
    use serde_json::{Map, Value, json};

    use super::*;
    use crate::mapping::tests::samples;

    pub(crate) fn old_render(m: &Mapped) -> String {
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

    #[test]
    fn typed_renderer_matches_the_json_tree_byte_for_byte() {
        for m in samples() {
            assert_eq!(render(&m), old_render(&m));
        }
    }
}
