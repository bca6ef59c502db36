//! The verifier's strict, one-pass reading of stored event bytes
//! (docs/LEDGER-FORMAT.md §1).
//!
//! [`StrictEnvelope::parse`] walks the bytes once and refuses everything
//! the format says a verifier must reject: anything but exactly one JSON
//! object (a leading or trailing byte, insignificant whitespace anywhere),
//! a duplicate member in any object at any depth, an unknown or missing
//! envelope member, a lone UTF-16 surrogate escape, a `seq` or
//! `type_version` that is not a canonical JSON integer (and a
//! `type_version` of 0), a `time` not in the one canonical form, an empty
//! or non-printable `correlation_id` or principal, and a `payload` that is
//! not an object. It borrows from the bytes and allocates only for strings
//! that carry escapes. Checking the payload against its type is
//! [`check_payload`](super::check_payload)'s job, on the borrowed
//! [`payload`](StrictEnvelope::payload) text.

use std::borrow::Cow;
use std::collections::HashSet;

use serde::Deserialize;
use serde::de::value::{Error as ValueError, StrDeserializer};

use super::{AuthMethod, MAX_CORRELATION_ID, Role, check_token};

/// Objects and arrays nested deeper than this are refused.
pub const MAX_DEPTH: usize = 64;

/// Longest accepted actor principal (as [`super::EventDraft`] enforces).
pub const MAX_PRINCIPAL: usize = 256;

/// Length of the canonical `time`: `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
pub const TIME_LEN: usize = 27;

/// Why stored event bytes were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason} at byte {offset}")]
pub struct StrictError {
    /// Byte offset in the event where the problem was found.
    pub offset: usize,
    /// What is wrong.
    pub reason: String,
}

/// The envelope of one stored event, read strictly; strings borrow from the
/// event bytes unless they carry escapes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StrictEnvelope<'a> {
    /// The instance.
    pub instance: Cow<'a, str>,
    /// The per-instance sequence number.
    pub seq: u64,
    /// The canonical time (exactly [`TIME_LEN`] ASCII bytes).
    pub time: [u8; TIME_LEN],
    /// The event type.
    pub event_type: Cow<'a, str>,
    /// The payload's schema version (at least 1).
    pub type_version: u32,
    /// The actor's principal.
    pub principal: Cow<'a, str>,
    /// The actor's role.
    pub role: Role,
    /// How the actor was authenticated.
    pub auth: AuthMethod,
    /// The correlation id.
    pub correlation_id: Cow<'a, str>,
    /// The payload object's JSON text, exactly as stored.
    pub payload: &'a str,
    /// Key id of the signing ledger key.
    pub ledger_key: Cow<'a, str>,
    /// The previous record's chain link, as stored (hex).
    pub prev: Cow<'a, str>,
}

impl<'a> StrictEnvelope<'a> {
    /// Reads `bytes` as one stored event, strictly (see the module docs).
    pub fn parse(bytes: &'a [u8]) -> Result<Self, StrictError> {
        let text = std::str::from_utf8(bytes).map_err(|e| StrictError {
            offset: e.valid_up_to(),
            reason: "not UTF-8".into(),
        })?;
        let mut p = Parser {
            text,
            bytes,
            at: 0,
            seen: Vec::new(),
        };
        let envelope = p.envelope()?;
        if p.at != bytes.len() {
            return Err(p.error("bytes after the event object"));
        }
        Ok(envelope)
    }

    /// The time as text.
    pub fn time_str(&self) -> &str {
        // Checked to be ASCII by `parse`.
        std::str::from_utf8(&self.time).unwrap_or_default()
    }
}

/// Checks `time` is a real UTC instant in the one canonical form
/// `YYYY-MM-DDTHH:MM:SS.ffffffZ` (exactly six fractional digits, no leap
/// second). Canonical times compare as byte strings in time order.
pub fn check_time(time: &str) -> Result<(), &'static str> {
    let b = time.as_bytes();
    if b.len() != TIME_LEN {
        return Err("time is not YYYY-MM-DDTHH:MM:SS.ffffffZ");
    }
    let digits = |range: std::ops::Range<usize>| -> Option<u32> {
        b[range].iter().try_fold(0u32, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    let shape = b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'.'
        && b[26] == b'Z';
    let (Some(year), Some(month), Some(day), Some(hour), Some(minute), Some(second), Some(_)) = (
        digits(0..4),
        digits(5..7),
        digits(8..10),
        digits(11..13),
        digits(14..16),
        digits(17..19),
        digits(20..26),
    ) else {
        return Err("time is not YYYY-MM-DDTHH:MM:SS.ffffffZ");
    };
    if !shape {
        return Err("time is not YYYY-MM-DDTHH:MM:SS.ffffffZ");
    }
    let leap = year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400));
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return Err("time names no real month"),
    };
    if day == 0 || day > days {
        return Err("time names no real day");
    }
    if hour > 23 || minute > 59 || second > 59 {
        return Err("time names no real time of day");
    }
    Ok(())
}

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
    /// Scratch for duplicate detection in small objects.
    seen: Vec<Cow<'a, str>>,
}

/// Objects with more members than this check duplicates with a hash set.
const LINEAR_DUPLICATE_CHECK: usize = 16;

impl<'a> Parser<'a> {
    fn error(&self, reason: impl Into<String>) -> StrictError {
        StrictError {
            offset: self.at,
            reason: reason.into(),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn expect(&mut self, byte: u8) -> Result<(), StrictError> {
        match self.peek() {
            Some(b) if b == byte => {
                self.at += 1;
                Ok(())
            }
            Some(b' ' | b'\t' | b'\n' | b'\r') => Err(self.error("insignificant whitespace")),
            Some(_) => Err(self.error(format!("expected {:?}", byte as char))),
            None => Err(self.error(format!("expected {:?}, found the end", byte as char))),
        }
    }

    fn envelope(&mut self) -> Result<StrictEnvelope<'a>, StrictError> {
        self.expect(b'{')?;
        let mut instance = None;
        let mut seq = None;
        let mut time = None;
        let mut event_type = None;
        let mut type_version = None;
        let mut actor = None;
        let mut correlation_id = None;
        let mut payload = None;
        let mut ledger_key = None;
        let mut prev = None;
        let mut first = true;
        while self.peek() != Some(b'}') {
            if !first {
                self.expect(b',')?;
            }
            first = false;
            let key_at = self.at;
            let key = self.string()?;
            self.expect(b':')?;
            let duplicate = || StrictError {
                offset: key_at,
                reason: format!("duplicate member {key:?}"),
            };
            macro_rules! once {
                ($slot:ident, $value:expr) => {{
                    if $slot.is_some() {
                        return Err(duplicate());
                    }
                    $slot = Some($value);
                }};
            }
            match key.as_ref() {
                "instance" => once!(instance, self.string()?),
                "seq" => once!(seq, self.integer()?),
                "time" => once!(time, self.time()?),
                "type" => once!(event_type, self.string()?),
                "type_version" => once!(type_version, self.type_version()?),
                "actor" => once!(actor, self.actor()?),
                "correlation_id" => once!(correlation_id, self.correlation_id()?),
                "payload" => once!(payload, self.payload()?),
                "ledger_key" => once!(ledger_key, self.string()?),
                "prev" => once!(prev, self.string()?),
                _ => {
                    return Err(StrictError {
                        offset: key_at,
                        reason: format!("unknown member {key:?}"),
                    });
                }
            }
        }
        self.at += 1;
        let missing = |name: &str| self.error(format!("missing member {name:?}"));
        let (principal, role, auth) = actor.ok_or_else(|| missing("actor"))?;
        Ok(StrictEnvelope {
            instance: instance.ok_or_else(|| missing("instance"))?,
            seq: seq.ok_or_else(|| missing("seq"))?,
            time: time.ok_or_else(|| missing("time"))?,
            event_type: event_type.ok_or_else(|| missing("type"))?,
            type_version: type_version.ok_or_else(|| missing("type_version"))?,
            principal,
            role,
            auth,
            correlation_id: correlation_id.ok_or_else(|| missing("correlation_id"))?,
            payload: payload.ok_or_else(|| missing("payload"))?,
            ledger_key: ledger_key.ok_or_else(|| missing("ledger_key"))?,
            prev: prev.ok_or_else(|| missing("prev"))?,
        })
    }

    fn time(&mut self) -> Result<[u8; TIME_LEN], StrictError> {
        let at = self.at;
        let text = self.string()?;
        check_time(&text).map_err(|reason| StrictError {
            offset: at,
            reason: reason.into(),
        })?;
        let mut time = [0u8; TIME_LEN];
        time.copy_from_slice(text.as_bytes());
        Ok(time)
    }

    fn type_version(&mut self) -> Result<u32, StrictError> {
        let at = self.at;
        let version = self.integer()?;
        match u32::try_from(version) {
            Ok(0) => Err(StrictError {
                offset: at,
                reason: "type_version 0".into(),
            }),
            Ok(v) => Ok(v),
            Err(_) => Err(StrictError {
                offset: at,
                reason: "type_version out of range".into(),
            }),
        }
    }

    fn correlation_id(&mut self) -> Result<Cow<'a, str>, StrictError> {
        let at = self.at;
        let id = self.string()?;
        check_token("correlation_id", &id, MAX_CORRELATION_ID).map_err(|e| StrictError {
            offset: at,
            reason: e.to_string(),
        })?;
        Ok(id)
    }

    fn actor(&mut self) -> Result<(Cow<'a, str>, Role, AuthMethod), StrictError> {
        let start = self.at;
        self.expect(b'{')?;
        let (mut principal, mut role, mut auth) = (None, None, None);
        let mut first = true;
        while self.peek() != Some(b'}') {
            if !first {
                self.expect(b',')?;
            }
            first = false;
            let key_at = self.at;
            let key = self.string()?;
            self.expect(b':')?;
            let value_at = self.at;
            let value = self.string()?;
            let bad = |reason: String| StrictError {
                offset: value_at,
                reason,
            };
            let slot_taken = match key.as_ref() {
                "principal" => {
                    check_token("actor.principal", &value, MAX_PRINCIPAL)
                        .map_err(|e| bad(e.to_string()))?;
                    principal.replace(value).is_some()
                }
                "role" => {
                    let r = Role::deserialize(StrDeserializer::<ValueError>::new(&value))
                        .map_err(|_| bad(format!("unknown actor role {value:?}")))?;
                    role.replace(r).is_some()
                }
                "auth" => {
                    let a = AuthMethod::deserialize(StrDeserializer::<ValueError>::new(&value))
                        .map_err(|_| bad(format!("unknown actor auth {value:?}")))?;
                    auth.replace(a).is_some()
                }
                _ => {
                    return Err(StrictError {
                        offset: key_at,
                        reason: format!("unknown actor member {key:?}"),
                    });
                }
            };
            if slot_taken {
                return Err(StrictError {
                    offset: key_at,
                    reason: format!("duplicate actor member {key:?}"),
                });
            }
        }
        self.at += 1;
        let missing = |name: &str| StrictError {
            offset: start,
            reason: format!("actor lacks {name:?}"),
        };
        Ok((
            principal.ok_or_else(|| missing("principal"))?,
            role.ok_or_else(|| missing("role"))?,
            auth.ok_or_else(|| missing("auth"))?,
        ))
    }

    /// The payload: an object, checked to any depth; returns its text.
    fn payload(&mut self) -> Result<&'a str, StrictError> {
        let start = self.at;
        if self.peek() != Some(b'{') {
            return Err(self.error("payload is not an object"));
        }
        self.value(0)?;
        Ok(&self.text[start..self.at])
    }

    /// Any JSON value, with duplicate members refused at every depth.
    fn value(&mut self, depth: usize) -> Result<(), StrictError> {
        match self.peek() {
            Some(b'{') => self.object(depth + 1),
            Some(b'[') => self.array(depth + 1),
            Some(b'"') => self.string().map(drop),
            Some(b't') => self.literal("true"),
            Some(b'f') => self.literal("false"),
            Some(b'n') => self.literal("null"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b' ' | b'\t' | b'\n' | b'\r') => Err(self.error("insignificant whitespace")),
            Some(_) => Err(self.error("expected a JSON value")),
            None => Err(self.error("expected a JSON value, found the end")),
        }
    }

    fn object(&mut self, depth: usize) -> Result<(), StrictError> {
        if depth > MAX_DEPTH {
            return Err(self.error("nested too deeply"));
        }
        self.expect(b'{')?;
        let mark = self.seen.len();
        let mut set: Option<HashSet<Cow<'a, str>>> = None;
        let mut first = true;
        while self.peek() != Some(b'}') {
            if !first {
                self.expect(b',')?;
            }
            first = false;
            let key_at = self.at;
            let key = self.string()?;
            let duplicate = match &mut set {
                Some(set) => !set.insert(key.clone()),
                None => {
                    let dup = self.seen[mark..].contains(&key);
                    self.seen.push(key.clone());
                    if self.seen.len() - mark > LINEAR_DUPLICATE_CHECK {
                        set = Some(self.seen.drain(mark..).collect());
                    }
                    dup
                }
            };
            if duplicate {
                return Err(StrictError {
                    offset: key_at,
                    reason: format!("duplicate member {key:?}"),
                });
            }
            self.expect(b':')?;
            self.value(depth)?;
        }
        self.seen.truncate(mark);
        self.at += 1;
        Ok(())
    }

    fn array(&mut self, depth: usize) -> Result<(), StrictError> {
        if depth > MAX_DEPTH {
            return Err(self.error("nested too deeply"));
        }
        self.expect(b'[')?;
        let mut first = true;
        while self.peek() != Some(b']') {
            if !first {
                self.expect(b',')?;
            }
            first = false;
            self.value(depth)?;
        }
        self.at += 1;
        Ok(())
    }

    fn literal(&mut self, word: &str) -> Result<(), StrictError> {
        if self.bytes[self.at..].starts_with(word.as_bytes()) {
            self.at += word.len();
            Ok(())
        } else {
            Err(self.error("expected a JSON value"))
        }
    }

    /// A JSON number (RFC 8259 §6 grammar).
    fn number(&mut self) -> Result<(), StrictError> {
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.peek() {
            Some(b'0') => self.at += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.error("malformed number")),
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            if !self.peek().is_some_and(|b| b.is_ascii_digit()) {
                return Err(self.error("malformed number"));
            }
            self.digits();
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            if !self.peek().is_some_and(|b| b.is_ascii_digit()) {
                return Err(self.error("malformed number"));
            }
            self.digits();
        }
        Ok(())
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
        }
    }

    /// A non-negative integer in canonical form: digits only, no leading zero.
    fn integer(&mut self) -> Result<u64, StrictError> {
        if matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            return Err(self.error("insignificant whitespace"));
        }
        let start = self.at;
        self.digits();
        let digits = &self.text[start..self.at];
        let canonical = !digits.is_empty() && (digits == "0" || !digits.starts_with('0'));
        let follows_number = matches!(self.peek(), Some(b'.' | b'e' | b'E'));
        if !canonical || follows_number {
            self.at = start;
            return Err(self.error("not a canonical non-negative integer"));
        }
        digits.parse().map_err(|_| StrictError {
            offset: start,
            reason: "integer out of range".into(),
        })
    }

    /// A JSON string: borrowed when it has no escapes. Refuses control
    /// characters and lone surrogate escapes.
    fn string(&mut self) -> Result<Cow<'a, str>, StrictError> {
        self.expect(b'"')?;
        let start = self.at;
        // Fast path: no escapes.
        loop {
            match self.peek() {
                Some(b'"') => {
                    let s = &self.text[start..self.at];
                    self.at += 1;
                    return Ok(Cow::Borrowed(s));
                }
                Some(b'\\') => break,
                Some(b) if b < 0x20 => return Err(self.error("control character in a string")),
                Some(_) => self.at += 1,
                None => return Err(self.error("unterminated string")),
            }
        }
        let mut out = String::from(&self.text[start..self.at]);
        loop {
            match self.peek() {
                Some(b'"') => {
                    self.at += 1;
                    return Ok(Cow::Owned(out));
                }
                Some(b'\\') => {
                    self.at += 1;
                    let escaped = match self.peek() {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{c}',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b'u') => {
                            self.at += 1;
                            out.push(self.unicode_escape()?);
                            continue;
                        }
                        _ => return Err(self.error("invalid escape")),
                    };
                    self.at += 1;
                    out.push(escaped);
                }
                Some(b) if b < 0x20 => return Err(self.error("control character in a string")),
                Some(_) => {
                    // Copy one UTF-8 character (the text is valid UTF-8).
                    let rest = &self.text[self.at..];
                    let c = rest.chars().next().unwrap_or_default();
                    out.push(c);
                    self.at += c.len_utf8();
                }
                None => return Err(self.error("unterminated string")),
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, StrictError> {
        let Some(hex) = self.text.get(self.at..self.at + 4) else {
            return Err(self.error("truncated \\u escape"));
        };
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(self.error("invalid \\u escape"));
        }
        self.at += 4;
        u32::from_str_radix(hex, 16).map_err(|_| self.error("invalid \\u escape"))
    }

    /// After `\u`: one code point, a surrogate pair counting as one.
    fn unicode_escape(&mut self) -> Result<char, StrictError> {
        let at = self.at;
        let lone = || StrictError {
            offset: at,
            reason: "lone surrogate escape".into(),
        };
        let first = self.hex4()?;
        let code = match first {
            0xD800..=0xDBFF => {
                if !self.bytes[self.at..].starts_with(b"\\u") {
                    return Err(lone());
                }
                self.at += 2;
                let second = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&second) {
                    return Err(lone());
                }
                0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
            }
            0xDC00..=0xDFFF => return Err(lone()),
            c => c,
        };
        char::from_u32(code).ok_or_else(lone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = r#"{"instance":"i","seq":3,"time":"2026-12-07T12:00:00.000000Z","type":"key.enabled","type_version":1,"actor":{"principal":"system","role":"system","auth":"internal"},"correlation_id":"c","payload":{"key_id":"k"},"ledger_key":"00000000","prev":"00"}"#;

    fn reject(text: &str, why: &str) {
        let err = StrictEnvelope::parse(text.as_bytes()).expect_err(text);
        assert!(err.reason.contains(why), "{text}: {err}");
    }

    #[test]
    fn reads_a_writer_event() {
        let env = StrictEnvelope::parse(OK.as_bytes()).expect("parse");
        assert_eq!(env.instance, "i");
        assert_eq!(env.seq, 3);
        assert_eq!(env.time_str(), "2026-12-07T12:00:00.000000Z");
        assert_eq!(env.event_type, "key.enabled");
        assert_eq!(env.type_version, 1);
        assert_eq!(env.role, Role::System);
        assert_eq!(env.auth, AuthMethod::Internal);
        assert_eq!(env.payload, r#"{"key_id":"k"}"#);
        assert!(matches!(env.instance, Cow::Borrowed(_)));
    }

    #[test]
    fn refuses_what_the_format_forbids() {
        reject(&format!(" {OK}"), "whitespace");
        reject(&format!("{OK} "), "after the event");
        reject(&format!("{OK}{{}}"), "after the event");
        reject(&OK.replace(r#""seq":3"#, r#""seq": 3"#), "whitespace");
        reject(&OK.replace(r#""seq":3"#, r#""seq":03"#), "canonical");
        reject(&OK.replace(r#""seq":3"#, r#""seq":3.0"#), "canonical");
        reject(
            &OK.replace(r#""type_version":1"#, r#""type_version":0"#),
            "0",
        );
        reject(&OK.replace(".000000Z", "Z"), "time");
        reject(&OK.replace(".000000Z", ".000000+00:00"), "time");
        reject(&OK.replace("12-07", "02-30"), "day");
        reject(&OK.replace("12:00:00", "24:00:00"), "time of day");
        reject(&OK.replace(r#""c""#, r#""""#), "empty");
        reject(&OK.replace(r#""c""#, r#""a b""#), "printable");
        reject(&OK.replace(r#""c""#, r#""a\u0001""#), "printable");
        reject(
            &OK.replace(r#"{"key_id":"k"}"#, r#"["k"]"#),
            "not an object",
        );
        reject(&OK.replace(r#""k""#, r#""\ud800""#), "surrogate");
        reject(&OK.replace(r#""k""#, r#""\udc00x""#), "surrogate");
        reject(
            &OK.replace(r#"{"key_id":"k"}"#, r#"{"key_id":"k","key_id":"k"}"#),
            "duplicate",
        );
        reject(
            &OK.replace(r#"{"key_id":"k"}"#, r#"{"a":[{"b":1,"b":2}]}"#),
            "duplicate",
        );
        reject(
            &OK.replace(r#""prev":"00""#, r#""prev":"00","prev":"00""#),
            "duplicate",
        );
        reject(
            &OK.replace(
                r#""auth":"internal""#,
                r#""auth":"internal","auth":"internal""#,
            ),
            "duplicate",
        );
        reject(
            &OK.replace(r#""prev":"00""#, r#""prev":"00","x":1"#),
            "unknown",
        );
        reject(&OK.replace(r#","prev":"00""#, ""), "missing");
        reject(
            &OK.replace(r#""role":"system""#, r#""role":"root""#),
            "role",
        );
        let deep = format!(
            "{}1{}",
            "[".repeat(MAX_DEPTH + 1),
            "]".repeat(MAX_DEPTH + 1)
        );
        reject(
            &OK.replace(r#"{"key_id":"k"}"#, &format!(r#"{{"a":{deep}}}"#)),
            "nested too deeply",
        );
    }

    #[test]
    fn accepts_valid_json_inside_the_payload() {
        let payload = r#"{"a":[1,-2.5e3,true,false,null,"\ud83d\ude00\n"],"b":{"c":{}}}"#;
        let text = OK.replace(r#"{"key_id":"k"}"#, payload);
        let env = StrictEnvelope::parse(text.as_bytes()).expect("parse");
        assert_eq!(env.payload, payload);
        // Many members: duplicate detection switches to a set.
        let many: Vec<String> = (0..40).map(|i| format!("\"m{i}\":{i}")).collect();
        let wide = format!("{{{}}}", many.join(","));
        let text = OK.replace(r#"{"key_id":"k"}"#, &wide);
        assert!(StrictEnvelope::parse(text.as_bytes()).is_ok());
        let wide_dup = format!("{{{},\"m7\":1}}", many.join(","));
        let text = OK.replace(r#"{"key_id":"k"}"#, &wide_dup);
        assert!(StrictEnvelope::parse(text.as_bytes()).is_err());
    }

    #[test]
    fn times_are_real_dates() {
        for ok in [
            "2024-02-29T23:59:59.999999Z",
            "2000-02-29T00:00:00.000000Z",
            "2026-12-31T00:00:00.123456Z",
        ] {
            assert_eq!(check_time(ok), Ok(()), "{ok}");
        }
        for bad in [
            "2023-02-29T00:00:00.000000Z",
            "1900-02-29T00:00:00.000000Z",
            "2026-13-01T00:00:00.000000Z",
            "2026-00-01T00:00:00.000000Z",
            "2026-04-31T00:00:00.000000Z",
            "2026-01-01T00:60:00.000000Z",
            "2026-01-01T00:00:60.000000Z",
            "2026-01-01T00:00:00.00000Z",
            "2026-01-01T00:00:00.0000000Z",
            "2026-01-01 00:00:00.000000Z",
            "2026-01-01T00:00:00.000000z",
            "+026-01-01T00:00:00.000000Z",
        ] {
            assert!(check_time(bad).is_err(), "{bad}");
        }
    }
}
