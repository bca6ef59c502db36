//! ArcSight CEF lines:
//! `CEF:0|keyledger|keyledger|<version>|<event type>|<action>|<severity>|<extension>`,
//! escaped as the specification says: `\` and `|` in header fields; `\`,
//! `=` and line breaks (as `\n`, `\r`) in extension values.

use crate::mapping::{Mapped, auth_name, role_name};

/// Escapes `value` with backslashes: `\` and each of `specials` as
/// themselves behind a `\`, line feed as `\n`, carriage return as `\r`
/// (the rule CEF and LEEF share; only the special characters differ).
pub(crate) fn backslash_escape(value: &str, specials: &[char]) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c == '\\' || specials.contains(&c) => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// Escapes a header field: `\` -> `\\`, `|` -> `\|`; line breaks, which
/// the specification does not allow there, as `\n` / `\r`.
pub fn escape_header(value: &str) -> String {
    backslash_escape(value, &['|'])
}

/// Escapes an extension value: `\` -> `\\`, `=` -> `\=`, line feed ->
/// `\n`, carriage return -> `\r`; pipes stay as they are.
pub fn escape_value(value: &str) -> String {
    backslash_escape(value, &['='])
}

/// The extension's key/value pairs of a mapped record (CEF keys; custom
/// fields with their labels).
pub fn fields(m: &Mapped) -> Vec<(&'static str, String)> {
    let mut f = vec![
        ("rt", m.time_ms.to_string()),
        ("act", m.action.clone()),
        ("outcome", m.outcome.name().to_string()),
        ("cat", m.family.clone()),
        ("suser", m.actor.principal.clone()),
        ("spriv", role_name(m.actor.role)),
        ("externalId", m.correlation_id.clone()),
        ("cs1Label", "instance".into()),
        ("cs1", m.instance.clone()),
        ("cn1Label", "seq".into()),
        ("cn1", m.seq.to_string()),
        ("cs2Label", "leafHash".into()),
        ("cs2", m.leaf_hash.clone()),
        ("cs3Label", "target".into()),
        ("cs3", m.target.id.clone()),
        ("cs6Label", "authMethod".into()),
        ("cs6", auth_name(m.actor.auth)),
    ];
    if let Some(name) = &m.target.name {
        f.extend([("cs4Label", "targetName".into()), ("cs4", name.clone())]);
    }
    if let Some(v) = &m.key_version_id {
        f.extend([("cs5Label", "keyVersionId".into()), ("cs5", v.clone())]);
    }
    if let Some(state) = m.key_state {
        f.extend([("cn2Label", "keyState".into()), ("cn2", state.to_string())]);
    }
    if let Some(code) = &m.reason_code {
        f.push(("reason", code.clone()));
    }
    if let Some(words) = &m.reason_text {
        f.push(("msg", words.clone()));
    }
    if let Some(uri) = &m.request_uri {
        f.push(("request", uri.clone()));
    }
    f
}

/// One CEF line.
pub fn render(m: &Mapped) -> String {
    let extension: Vec<String> = fields(m)
        .into_iter()
        .map(|(k, v)| format!("{k}={}", escape_value(&v)))
        .collect();
    format!(
        "CEF:0|keyledger|keyledger|{}|{}|{}|{}|{}",
        escape_header(crate::PRODUCT_VERSION),
        escape_header(&m.event_type),
        escape_header(&m.action),
        m.severity.min(10),
        extension.join(" ")
    )
}
