//! The SIEM sinks of an instance, as the quorum-signed `export.set_sinks`
//! command configures them and the `export.sinks_set` event records them,
//! and the rules a configuration must pass (shared by the server and
//! `keyledger verify --policy`).
//!
//! A configuration names where the server forwards its instance's log and
//! in which format; it never holds a secret. A HEC token or a TLS client
//! key is named by a *reference* (`token_ref`, `client_key_ref`) that each
//! server resolves from its own configuration, so the log shows which
//! secret a sink uses without showing the secret. A file sink names only a
//! file name: the server writes it under its own export directory.

use serde::{Deserialize, Serialize};

/// Most sinks one instance may have.
pub const MAX_SINKS: usize = 8;
/// The formats a sink may forward in (the `keyledger export` formats).
pub const SINK_FORMATS: [&str; 5] = ["cadf", "ocsf", "cef", "leef", "jsonl"];
/// Smallest and largest size a file sink's file may reach before rotation.
pub const FILE_MAX_BYTES: std::ops::RangeInclusive<u64> = (1 << 20)..=(1 << 40);
/// How many files a file sink may keep (the current one included).
pub const FILE_KEEP: std::ops::RangeInclusive<u32> = 1..=1000;

/// One sink: its name (the key of its delivery cursor and its metrics),
/// the format it forwards and where to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SinkSpec {
    /// 1-64 letters, digits, `-`, `_` or `.`; unique in the instance.
    pub name: String,
    /// `cadf`, `ocsf`, `cef`, `leef` or `jsonl`.
    pub format: String,
    /// Where the sink delivers.
    pub target: SinkTarget,
}

/// Where a sink delivers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", deny_unknown_fields)]
pub enum SinkTarget {
    /// A file under the server's export directory, rotated by size.
    #[serde(rename = "file")]
    File {
        /// The file's name (1-128 letters, digits, `-`, `_` or `.`, not
        /// starting with `.`); no directory.
        file: String,
        /// Size at which the file is rotated (1 MiB to 1 TiB).
        max_bytes: u64,
        /// Files kept, the current one included (1-1000).
        keep: u32,
    },
    /// Syslog (RFC 5424) over TCP with octet counting, or over TLS
    /// (RFC 5425).
    #[serde(rename = "syslog")]
    Syslog {
        /// `host:port` of the receiver.
        address: String,
        /// TLS settings; absent: plain TCP.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tls: Option<SinkTls>,
    },
    /// Splunk HTTP Event Collector (or anything that answers like it).
    #[serde(rename = "hec")]
    Hec {
        /// The collector's URL (`https://`, or `http://` to a loopback
        /// host only), e.g. `https://splunk:8088/services/collector/event`.
        url: String,
        /// Reference to the HEC token in each server's configuration.
        token_ref: String,
        /// Splunk index; absent: the token's default index.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        index: Option<String>,
        /// TLS settings for an `https://` URL; absent: the system's roots
        /// and the URL's host name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tls: Option<SinkTls>,
    },
}

/// TLS settings of a sink. Files are named by references each server
/// resolves (the CA bundle is no secret, but it lives on the server).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SinkTls {
    /// The name the receiver's certificate must carry; absent: the host
    /// of the address or URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    /// Reference to a PEM CA bundle; absent: the system's roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_ref: Option<String>,
    /// Reference to a PEM client certificate chain (with `client_key_ref`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert_ref: Option<String>,
    /// Reference to the PEM client private key (with `client_cert_ref`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key_ref: Option<String>,
}

impl SinkSpec {
    /// Every secret or file reference the sink names.
    pub fn references(&self) -> Vec<&str> {
        fn tls(t: &Option<SinkTls>) -> Vec<&str> {
            t.iter()
                .flat_map(|t| [&t.ca_ref, &t.client_cert_ref, &t.client_key_ref])
                .filter_map(|r| r.as_deref())
                .collect()
        }
        match &self.target {
            SinkTarget::File { .. } => Vec::new(),
            SinkTarget::Syslog { tls: t, .. } => tls(t),
            SinkTarget::Hec {
                token_ref, tls: t, ..
            } => {
                let mut refs = vec![token_ref.as_str()];
                refs.extend(tls(t));
                refs
            }
        }
    }
}

/// Checks a whole configuration (the list replaces the instance's sinks).
pub fn check_sinks(sinks: &[SinkSpec]) -> Result<(), String> {
    if sinks.len() > MAX_SINKS {
        return Err(format!("at most {MAX_SINKS} sinks, not {}", sinks.len()));
    }
    let mut names = std::collections::BTreeSet::new();
    for sink in sinks {
        check_sink(sink).map_err(|e| format!("sink {:?}: {e}", printable(&sink.name)))?;
        if !names.insert(sink.name.as_str()) {
            return Err(format!("sink name {:?} appears twice", sink.name));
        }
    }
    Ok(())
}

fn check_sink(sink: &SinkSpec) -> Result<(), String> {
    check_name("name", &sink.name, 64)?;
    if !SINK_FORMATS.contains(&sink.format.as_str()) {
        return Err(format!("format must be one of {SINK_FORMATS:?}"));
    }
    for r in sink.references() {
        check_name("a reference", r, 64)?;
    }
    match &sink.target {
        SinkTarget::File {
            file,
            max_bytes,
            keep,
        } => {
            check_name("file", file, 128)?;
            if file.starts_with('.') {
                return Err("file must not start with '.'".into());
            }
            if !FILE_MAX_BYTES.contains(max_bytes) {
                return Err(format!(
                    "max_bytes must be {} to {}",
                    FILE_MAX_BYTES.start(),
                    FILE_MAX_BYTES.end()
                ));
            }
            if !FILE_KEEP.contains(keep) {
                return Err(format!(
                    "keep must be {} to {}",
                    FILE_KEEP.start(),
                    FILE_KEEP.end()
                ));
            }
            Ok(())
        }
        SinkTarget::Syslog { address, tls } => {
            host_port(address)?;
            check_tls(tls)
        }
        SinkTarget::Hec {
            url, index, tls, ..
        } => {
            let (https, host) = http_url(url)?;
            if !https && !is_loopback(host) {
                return Err(
                    "url must be https:// (http:// only to a loopback host: the token would travel in clear)"
                        .into(),
                );
            }
            if !https && tls.is_some() {
                return Err("tls settings need an https:// url".into());
            }
            if let Some(index) = index {
                check_name("index", index, 80)?;
            }
            check_tls(tls)
        }
    }
}

fn check_tls(tls: &Option<SinkTls>) -> Result<(), String> {
    let Some(tls) = tls else { return Ok(()) };
    if let Some(name) = &tls.server_name {
        check_host(name)?;
    }
    if tls.client_cert_ref.is_some() != tls.client_key_ref.is_some() {
        return Err("client_cert_ref and client_key_ref go together".into());
    }
    Ok(())
}

/// The host of a `host:port` address (`[v6]:port` too).
pub fn host_port(address: &str) -> Result<(&str, u16), String> {
    let bad = || format!("address {:?} is not host:port", printable(address));
    let (host, port) = address.rsplit_once(':').ok_or_else(bad)?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let port: u16 = port.parse().map_err(|_| bad())?;
    if port == 0 {
        return Err(bad());
    }
    check_host(host).map_err(|_| bad())?;
    Ok((host, port))
}

/// Whether the URL is https, and its host. No user information (it would
/// put a secret in the log), no fragment.
pub fn http_url(url: &str) -> Result<(bool, &str), String> {
    let bad = |why: &str| format!("url {:?}: {why}", printable(url));
    if url.len() > 512 || url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(bad(
            "at most 512 characters, no spaces or control characters",
        ));
    }
    let (https, rest) = if let Some(rest) = url.strip_prefix("https://") {
        (true, rest)
    } else if let Some(rest) = url.strip_prefix("http://") {
        (false, rest)
    } else {
        return Err(bad("must start with https:// or http://"));
    };
    if url.contains('#') {
        return Err(bad("no fragment"));
    }
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err(bad("no user information (name a token_ref instead)"));
    }
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => v6
            .split_once(']')
            .map(|(h, rest)| (h, rest.strip_prefix(':')))
            .ok_or_else(|| bad("bad host"))?,
        None => match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        },
    };
    if port.is_some_and(|p| !p.parse::<u16>().is_ok_and(|p| p > 0)) {
        return Err(bad("bad port"));
    }
    check_host(host).map_err(|_| bad("bad host"))?;
    Ok((https, host))
}

/// Whether a host name or address is a loopback one.
pub fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn check_host(host: &str) -> Result<(), String> {
    let ok = (1..=253).contains(&host.len())
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._:".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "host {:?} is not a host name or address",
            printable(host)
        ))
    }
}

/// `value` is 1 to `max` ASCII letters, digits, `-`, `_` or `.` (ids,
/// names, references).
pub(crate) fn check_name(field: &str, value: &str, max: usize) -> Result<(), String> {
    let ok = (1..=max).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{field} must be 1-{max} letters, digits, '-', '_' or '.'"
        ))
    }
}

fn printable(text: &str) -> String {
    text.chars()
        .take(64)
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sink(json: serde_json::Value) -> SinkSpec {
        serde_json::from_value(json).expect("sink spec")
    }

    fn file(name: &str) -> serde_json::Value {
        serde_json::json!({"name": name, "format": "cef",
            "target": {"kind": "file", "file": "audit.cef", "max_bytes": 1048576, "keep": 5}})
    }

    #[test]
    fn good_configurations_pass() {
        let sinks = vec![
            sink(file("local")),
            sink(serde_json::json!({"name": "siem", "format": "cadf",
                "target": {"kind": "syslog", "address": "syslog.example.com:6514",
                           "tls": {"ca_ref": "siem-ca"}}})),
            sink(serde_json::json!({"name": "splunk", "format": "jsonl",
                "target": {"kind": "hec", "url": "https://splunk:8088/services/collector/event",
                           "token_ref": "splunk-token", "index": "kms"}})),
            sink(serde_json::json!({"name": "lab", "format": "ocsf",
                "target": {"kind": "hec", "url": "http://127.0.0.1:8088/services/collector/event",
                           "token_ref": "t"}})),
            sink(serde_json::json!({"name": "v6", "format": "leef",
                "target": {"kind": "syslog", "address": "[::1]:514"}})),
        ];
        check_sinks(&sinks).unwrap();
        check_sinks(&[]).unwrap();
        assert_eq!(sinks[2].references(), vec!["splunk-token"]);
        assert_eq!(sinks[1].references(), vec!["siem-ca"]);
    }

    #[test]
    fn bad_configurations_say_why() {
        let cases = [
            (
                serde_json::json!({"name": "a b", "format": "cef",
                "target": {"kind": "syslog", "address": "h:514"}}),
                "name must be",
            ),
            (
                serde_json::json!({"name": "a", "format": "xml",
                "target": {"kind": "syslog", "address": "h:514"}}),
                "format must be",
            ),
            (
                serde_json::json!({"name": "a", "format": "cef",
                "target": {"kind": "file", "file": "../etc/passwd", "max_bytes": 1048576, "keep": 1}}),
                "file must be",
            ),
            (
                serde_json::json!({"name": "a", "format": "cef",
                "target": {"kind": "file", "file": ".hidden", "max_bytes": 1048576, "keep": 1}}),
                "must not start",
            ),
            (
                serde_json::json!({"name": "a", "format": "cef",
                "target": {"kind": "file", "file": "f", "max_bytes": 10, "keep": 1}}),
                "max_bytes",
            ),
            (
                serde_json::json!({"name": "a", "format": "cef",
                "target": {"kind": "file", "file": "f", "max_bytes": 1048576, "keep": 0}}),
                "keep",
            ),
            (
                serde_json::json!({"name": "a", "format": "cef",
                "target": {"kind": "syslog", "address": "h"}}),
                "host:port",
            ),
            (
                serde_json::json!({"name": "a", "format": "cef",
                "target": {"kind": "syslog", "address": "h:0"}}),
                "host:port",
            ),
            (
                serde_json::json!({"name": "a", "format": "cef",
                "target": {"kind": "hec", "url": "http://splunk.example.com/x", "token_ref": "t"}}),
                "loopback",
            ),
            (
                serde_json::json!({"name": "a", "format": "cef",
                "target": {"kind": "hec", "url": "https://user:pw@splunk/x", "token_ref": "t"}}),
                "user information",
            ),
            (
                serde_json::json!({"name": "a", "format": "cef",
                "target": {"kind": "hec", "url": "ftp://splunk/x", "token_ref": "t"}}),
                "https://",
            ),
            (
                serde_json::json!({"name": "a", "format": "cef",
                "target": {"kind": "hec", "url": "https://splunk/x", "token_ref": "no/slash"}}),
                "reference must be",
            ),
            (
                serde_json::json!({"name": "a", "format": "cef",
                "target": {"kind": "syslog", "address": "h:6514",
                           "tls": {"client_cert_ref": "c"}}}),
                "go together",
            ),
        ];
        for (json, want) in cases {
            let err = check_sinks(&[sink(json.clone())]).unwrap_err();
            assert!(err.contains(want), "{json}: {err}");
        }
        let twice = [sink(file("x")), sink(file("x"))];
        assert!(check_sinks(&twice).unwrap_err().contains("twice"));
        let many: Vec<SinkSpec> = (0..9).map(|i| sink(file(&format!("s{i}")))).collect();
        assert!(check_sinks(&many).unwrap_err().contains("at most 8"));
    }

    #[test]
    fn unknown_fields_and_kinds_do_not_parse() {
        let extra = serde_json::json!({"name": "a", "format": "cef", "token": "secret",
            "target": {"kind": "syslog", "address": "h:514"}});
        assert!(serde_json::from_value::<SinkSpec>(extra).is_err());
        let kind = serde_json::json!({"name": "a", "format": "cef",
            "target": {"kind": "kafka", "address": "h:514"}});
        assert!(serde_json::from_value::<SinkSpec>(kind).is_err());
        let inline_token = serde_json::json!({"name": "a", "format": "cef",
            "target": {"kind": "hec", "url": "https://s/x", "token_ref": "t", "token": "x"}});
        assert!(serde_json::from_value::<SinkSpec>(inline_token).is_err());
    }
}
