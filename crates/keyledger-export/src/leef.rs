//! QRadar LEEF 2.0 lines with a declared delimiter (`^`):
//! `LEEF:2.0|keyledger|keyledger|<version>|<event type>|^|k=v^k=v...`.
//! Header fields escape `\` and `|`; values escape `\`, the delimiter, `=`
//! and line breaks (as `\n`, `\r`) with a backslash.

use crate::mapping::{Mapped, auth_name, role_name};

/// The attribute delimiter the header declares.
pub const DELIMITER: char = '^';

/// `devTimeFormat` of `devTime` (Java SimpleDateFormat, as QRadar reads it).
pub const DEV_TIME_FORMAT: &str = "yyyy-MM-dd'T'HH:mm:ss.SSSXXX";

/// Escapes a value: `\`, the delimiter, `=` and line breaks.
pub fn escape_value(value: &str) -> String {
    crate::cef::backslash_escape(value, &['=', DELIMITER])
}

/// One LEEF 2.0 line.
pub fn render(m: &Mapped) -> String {
    let dev_time = chrono::DateTime::from_timestamp_millis(m.time_ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3f+00:00").to_string())
        .unwrap_or_else(|| m.time.clone());
    let mut f: Vec<(&str, String)> = vec![
        ("devTime", dev_time),
        ("devTimeFormat", DEV_TIME_FORMAT.into()),
        ("cat", m.family.clone()),
        ("sev", m.severity.min(10).to_string()),
        ("usrName", m.actor.principal.clone()),
        ("role", role_name(m.actor.role)),
        ("authMethod", auth_name(m.actor.auth)),
        ("action", m.action.clone()),
        ("outcome", m.outcome.name().into()),
        ("instance", m.instance.clone()),
        ("seq", m.seq.to_string()),
        ("leafHash", m.leaf_hash.clone()),
        ("resource", m.target.id.clone()),
        ("correlationId", m.correlation_id.clone()),
    ];
    if let Some(name) = &m.target.name {
        f.push(("resourceName", name.clone()));
    }
    if let Some(v) = &m.key_version_id {
        f.push(("keyVersionId", v.clone()));
    }
    if let Some(state) = m.key_state {
        f.push(("keyState", state.to_string()));
    }
    if let Some(code) = &m.reason_code {
        f.push(("reasonCode", code.clone()));
    }
    if let Some(words) = &m.reason_text {
        f.push(("reason", words.clone()));
    }
    if let Some(uri) = &m.request_uri {
        f.push(("requestURI", uri.clone()));
    }
    let attributes: Vec<String> = f
        .into_iter()
        .map(|(k, v)| format!("{k}={}", escape_value(&v)))
        .collect();
    format!(
        "LEEF:2.0|keyledger|keyledger|{}|{}|{DELIMITER}|{}",
        crate::cef::escape_header(crate::PRODUCT_VERSION),
        crate::cef::escape_header(&m.event_type),
        attributes.join(&DELIMITER.to_string())
    )
}
