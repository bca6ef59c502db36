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

/// Calls `attribute` with each key/value pair of a mapped record, in
/// order.
fn for_each_attribute(m: &Mapped, attribute: &mut dyn FnMut(&'static str, &str)) {
    let dev_time = chrono::DateTime::from_timestamp_millis(m.time_ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3f+00:00").to_string())
        .unwrap_or_else(|| m.time.clone());
    let mut number = itoa::Buffer::new();
    attribute("devTime", &dev_time);
    attribute("devTimeFormat", DEV_TIME_FORMAT);
    attribute("cat", &m.family);
    attribute("sev", number.format(m.severity.min(10)));
    attribute("usrName", &m.actor.principal);
    attribute("role", &role_name(m.actor.role));
    attribute("authMethod", &auth_name(m.actor.auth));
    attribute("action", &m.action);
    attribute("outcome", m.outcome.name());
    attribute("instance", &m.instance);
    attribute("seq", number.format(m.seq));
    attribute("leafHash", &m.leaf_hash);
    attribute("resource", &m.target.id);
    attribute("correlationId", &m.correlation_id);
    if let Some(name) = &m.target.name {
        attribute("resourceName", name);
    }
    if let Some(v) = &m.key_version_id {
        attribute("keyVersionId", v);
    }
    if let Some(state) = m.key_state {
        attribute("keyState", number.format(state));
    }
    if let Some(code) = &m.reason_code {
        attribute("reasonCode", code);
    }
    if let Some(words) = &m.reason_text {
        attribute("reason", words);
    }
    if let Some(uri) = &m.request_uri {
        attribute("requestURI", uri);
    }
}

/// One LEEF 2.0 line, written into one buffer (no per-attribute strings).
pub fn render(m: &Mapped) -> String {
    let mut out = String::with_capacity(512);
    out.push_str("LEEF:2.0|keyledger|keyledger|");
    crate::cef::push_escaped(&mut out, crate::PRODUCT_VERSION, b"|");
    out.push('|');
    crate::cef::push_escaped(&mut out, &m.event_type, b"|");
    out.push('|');
    out.push(DELIMITER);
    out.push('|');
    let mut first = true;
    for_each_attribute(m, &mut |k, v| {
        if !first {
            out.push(DELIMITER);
        }
        first = false;
        out.push_str(k);
        out.push('=');
        crate::cef::push_escaped(&mut out, v, b"=^");
    });
    out
}
