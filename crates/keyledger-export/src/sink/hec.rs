//! The Splunk HTTP Event Collector transport: one POST per batch of
//! concatenated event objects, taken only on `200` with `"code":0`.

use std::fmt::Write as _;
use std::sync::Arc;

use serde_json::Value;
use serde_json::value::RawValue;
use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig};
use zeroize::Zeroizing;

use super::{CONNECT_TIMEOUT, Entry, IO_TIMEOUT, SendError, TlsClient, Transport, tls};

/// The largest answer read (HEC answers are a few dozen bytes).
const MAX_ANSWER: u64 = 64 * 1024;
/// The most characters of the receiver's text an error carries.
const MAX_TEXT: usize = 200;

/// What [`HecSink::new`] needs (the fields of `Target::Hec`).
pub(crate) struct HecConfig {
    pub(crate) url: String,
    pub(crate) token: Zeroizing<String>,
    pub(crate) tls: Option<TlsClient>,
    pub(crate) index: Option<String>,
    pub(crate) source: String,
    pub(crate) sourcetype: String,
    pub(crate) host: String,
    pub(crate) json_event: bool,
}

/// POSTs batches to a HEC endpoint.
pub(crate) struct HecSink {
    agent: ureq::Agent,
    url: String,
    /// `Splunk <token>`.
    authorization: Zeroizing<String>,
    token: Zeroizing<String>,
    /// `"host":..,"source":..,"sourcetype":..[,"index":..]` (JSON-escaped).
    fields: String,
    json_event: bool,
}

/// The host part of `url` (`scheme://[user@]host[:port]/...`), lowercased.
fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next()?
    } else {
        host_port.split(':').next()?
    };
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// A JSON string literal of `s`.
fn json_string(s: &str) -> String {
    Value::String(s.to_string()).to_string()
}

/// Epoch seconds with a millisecond fraction, as a JSON number.
fn epoch_seconds(entry: &Entry) -> String {
    let ms = entry.time.timestamp_millis();
    let sign = if ms < 0 { "-" } else { "" };
    let abs = ms.unsigned_abs();
    format!("{sign}{}.{:03}", abs / 1000, abs % 1000)
}

/// ureq's TLS configuration of `tls` (roots, client certificate).
fn tls_config(tls: Option<&TlsClient>) -> Result<TlsConfig, SendError> {
    let roots = tls::roots(tls.and_then(|t| t.ca_file.as_deref()))?;
    let roots: Vec<Certificate<'static>> = roots
        .iter()
        .map(|c| Certificate::from_der(c.as_ref()).to_owned())
        .collect();
    let mut builder = TlsConfig::builder().root_certs(RootCerts::Specific(Arc::new(roots)));
    if let Some(t) = tls
        && let Some((chain, _checked)) = tls::client_identity(t)?
    {
        let chain: Vec<Certificate<'static>> = chain
            .iter()
            .map(|c| Certificate::from_der(c.as_ref()).to_owned())
            .collect();
        let key_path = t.client_key.as_deref().unwrap_or(std::path::Path::new(""));
        let pem =
            Zeroizing::new(std::fs::read(key_path).map_err(|e| {
                SendError::Config(format!("client key {}: {e}", key_path.display()))
            })?);
        // client_identity checked the key; ureq wants it as its own type.
        let key = PrivateKey::from_pem(&pem).map_err(|_| {
            SendError::Config(format!(
                "client key {}: no usable private key",
                key_path.display()
            ))
        })?;
        builder = builder.client_cert(Some(ClientCert::new_with_certs(&chain, key)));
    }
    Ok(builder.build())
}

impl HecSink {
    pub(crate) fn new(config: HecConfig) -> Result<Self, SendError> {
        let host = url_host(&config.url)
            .ok_or_else(|| SendError::Config(format!("HEC url {:?} has no host", config.url)))?;
        let https = config.url.to_ascii_lowercase().starts_with("https://");
        if !https && !config.url.to_ascii_lowercase().starts_with("http://") {
            return Err(SendError::Config(format!(
                "HEC url {:?} is not http:// or https://",
                config.url
            )));
        }
        if !https && config.tls.is_some() {
            return Err(SendError::Config(
                "HEC: TLS settings given for an http:// url".into(),
            ));
        }
        if let Some(t) = &config.tls
            && !t.server_name.eq_ignore_ascii_case(&host)
        {
            return Err(SendError::Config(format!(
                "HEC: server_name {:?} is not the url's host {host:?} (the certificate is checked against the url's host)",
                t.server_name
            )));
        }
        if config.token.is_empty() {
            return Err(SendError::Config("HEC: empty token".into()));
        }
        let mut builder = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_send_request(Some(IO_TIMEOUT))
            .timeout_send_body(Some(IO_TIMEOUT))
            .timeout_recv_response(Some(IO_TIMEOUT))
            .timeout_recv_body(Some(IO_TIMEOUT));
        if https {
            builder = builder.tls_config(tls_config(config.tls.as_ref())?);
        }
        let agent: ureq::Agent = builder.build().into();

        let mut fields = format!(
            "\"host\":{},\"source\":{},\"sourcetype\":{}",
            json_string(&config.host),
            json_string(&config.source),
            json_string(&config.sourcetype)
        );
        if let Some(index) = &config.index {
            let _ = write!(fields, ",\"index\":{}", json_string(index));
        }
        Ok(HecSink {
            agent,
            url: config.url,
            authorization: Zeroizing::new(format!("Splunk {}", config.token.as_str())),
            token: config.token,
            fields,
            json_event: config.json_event,
        })
    }

    /// The request body: one event object per entry, concatenated.
    fn body(&self, batch: &[Entry]) -> String {
        let mut body = String::with_capacity(batch.iter().map(|e| e.line.len() + 160).sum());
        for entry in batch {
            let event = match self.json_event {
                true => match serde_json::from_str::<&RawValue>(&entry.line) {
                    Ok(raw) => raw.get().to_string(),
                    Err(_) => json_string(&entry.line),
                },
                false => json_string(&entry.line),
            };
            let _ = write!(
                body,
                "{{\"time\":{},{},\"event\":{event}}}",
                epoch_seconds(entry),
                self.fields
            );
        }
        body
    }

    /// A failed request: not reached / TLS refused (Connect) or broken
    /// off (Io).
    fn request_error(&self, e: ureq::Error) -> SendError {
        match e {
            ureq::Error::Io(io) => {
                let tls = io
                    .get_ref()
                    .is_some_and(|inner| inner.is::<rustls::Error>());
                if tls || io.kind() == std::io::ErrorKind::ConnectionRefused {
                    SendError::Connect(format!("{}: {io}", self.url))
                } else {
                    SendError::Io(format!("{}: {io}", self.url))
                }
            }
            ureq::Error::Timeout(t) => SendError::Io(format!("{}: timeout ({t})", self.url)),
            other => SendError::Connect(format!("{}: {other}", self.url)),
        }
    }

    /// The receiver's text, cut to [`MAX_TEXT`] characters, token blanked.
    fn text_of(&self, answer: &str) -> String {
        let parsed: Option<Value> = serde_json::from_str(answer).ok();
        let text = match parsed.as_ref().and_then(|v| v.get("text")) {
            Some(Value::String(t)) => t.clone(),
            _ => answer.to_string(),
        };
        let text = text.replace(self.token.as_str(), "<token>");
        text.chars().take(MAX_TEXT).collect()
    }
}

impl Transport for HecSink {
    fn send(&mut self, batch: &[Entry]) -> Result<(), SendError> {
        if batch.is_empty() {
            return Ok(());
        }
        let body = self.body(batch);
        let mut response = self
            .agent
            .post(&self.url)
            .header("authorization", self.authorization.as_str())
            .header("content-type", "application/json")
            .send(body.as_bytes())
            .map_err(|e| self.request_error(e))?;
        let status = response.status().as_u16();
        let answer = response
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER)
            .read_to_string()
            .map_err(|e| SendError::Io(format!("{}: reading the answer: {e}", self.url)))?;
        let code = serde_json::from_str::<Value>(&answer)
            .ok()
            .and_then(|v| v.get("code").and_then(Value::as_i64));
        if status == 200 && code == Some(0) {
            Ok(())
        } else {
            Err(SendError::Refused {
                status,
                text: self.text_of(&answer),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_hosts() {
        assert_eq!(
            url_host("https://Splunk.example:8088/x").as_deref(),
            Some("splunk.example")
        );
        assert_eq!(url_host("http://u@[::1]:8088/x").as_deref(), Some("::1"));
        assert_eq!(url_host("http://127.0.0.1").as_deref(), Some("127.0.0.1"));
        assert_eq!(url_host("http:///x"), None);
    }
}
