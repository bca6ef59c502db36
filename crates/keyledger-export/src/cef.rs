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

/// Appends `value` to `out` escaped as [`backslash_escape`] escapes it,
/// copying the runs between special characters whole. `specials` are
/// ASCII, so a byte match never falls inside a multi-byte character.
pub(crate) fn push_escaped(out: &mut String, value: &str, specials: &[u8]) {
    let mut start = 0;
    for (i, &b) in value.as_bytes().iter().enumerate() {
        let escaped = match b {
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\\' => "\\\\",
            _ if specials.contains(&b) => "\\",
            _ => continue,
        };
        out.push_str(&value[start..i]);
        out.push_str(escaped);
        // A special character other than a line break stays, behind its `\`.
        start = if b == b'\n' || b == b'\r' || b == b'\\' {
            i + 1
        } else {
            i
        };
    }
    out.push_str(&value[start..]);
}

/// Calls `field` with each of the extension's key/value pairs of a mapped
/// record, in order (CEF keys; custom fields with their labels): the one
/// list [`fields`] and [`render`] share.
fn for_each_field(m: &Mapped, field: &mut dyn FnMut(&'static str, &str)) {
    let mut number = itoa::Buffer::new();
    field("rt", number.format(m.time_ms));
    field("act", &m.action);
    field("outcome", m.outcome.name());
    field("cat", &m.family);
    field("suser", &m.actor.principal);
    field("spriv", &role_name(m.actor.role));
    field("externalId", &m.correlation_id);
    field("cs1Label", "instance");
    field("cs1", &m.instance);
    field("cn1Label", "seq");
    field("cn1", number.format(m.seq));
    field("cs2Label", "leafHash");
    field("cs2", &m.leaf_hash);
    field("cs3Label", "target");
    field("cs3", &m.target.id);
    field("cs6Label", "authMethod");
    field("cs6", &auth_name(m.actor.auth));
    if let Some(name) = &m.target.name {
        field("cs4Label", "targetName");
        field("cs4", name);
    }
    if let Some(v) = &m.key_version_id {
        field("cs5Label", "keyVersionId");
        field("cs5", v);
    }
    if let Some(state) = m.key_state {
        field("cn2Label", "keyState");
        field("cn2", number.format(state));
    }
    if let Some(code) = &m.reason_code {
        field("reason", code);
    }
    if let Some(words) = &m.reason_text {
        field("msg", words);
    }
    if let Some(uri) = &m.request_uri {
        field("request", uri);
    }
}

/// The extension's key/value pairs of a mapped record (CEF keys; custom
/// fields with their labels).
pub fn fields(m: &Mapped) -> Vec<(&'static str, String)> {
    let mut f = Vec::with_capacity(28);
    for_each_field(m, &mut |k, v| f.push((k, v.to_string())));
    f
}

/// One CEF line, written into one buffer (no per-field strings).
pub fn render(m: &Mapped) -> String {
    let mut out = String::with_capacity(512);
    out.push_str("CEF:0|keyledger|keyledger|");
    push_escaped(&mut out, crate::PRODUCT_VERSION, b"|");
    out.push('|');
    push_escaped(&mut out, &m.event_type, b"|");
    out.push('|');
    push_escaped(&mut out, &m.action, b"|");
    out.push('|');
    out.push_str(itoa::Buffer::new().format(m.severity.min(10)));
    out.push('|');
    let mut first = true;
    for_each_field(m, &mut |k, v| {
        if !first {
            out.push(' ');
        }
        first = false;
        out.push_str(k);
        out.push('=');
        push_escaped(&mut out, v, b"=");
    });
    out
}

#[cfg(test)]
pub(crate) mod tests {
    //! Pins the single-buffer CEF and LEEF renderers byte for byte to the
    //! per-field renderers they replaced (kept here as the reference).
    use super::*;
    use crate::mapping::tests::{NASTY, samples};

    pub(crate) fn old_cef(m: &Mapped) -> String {
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

    pub(crate) fn old_leef(m: &Mapped) -> String {
        use crate::leef::{DELIMITER, DEV_TIME_FORMAT, escape_value};
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
            escape_header(crate::PRODUCT_VERSION),
            escape_header(&m.event_type),
            attributes.join(&DELIMITER.to_string())
        )
    }

    #[test]
    fn single_buffer_renderers_match_the_per_field_ones_byte_for_byte() {
        for m in samples() {
            assert_eq!(render(&m), old_cef(&m));
            assert_eq!(crate::leef::render(&m), old_leef(&m));
        }
    }

    #[test]
    fn push_escaped_matches_backslash_escape() {
        for value in [NASTY, "", "\\", "\n\r", "é=|^", "plain text"] {
            for (bytes, chars) in [
                (&b"|"[..], &['|'][..]),
                (b"=", &['=']),
                (b"=^", &['=', '^']),
            ] {
                let mut out = String::from("x");
                push_escaped(&mut out, value, bytes);
                assert_eq!(out, format!("x{}", backslash_escape(value, chars)));
            }
        }
    }
}
