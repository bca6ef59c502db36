//! The command line's HTTP client for a keyledger server (feature
//! `client`): blocking `ureq` over rustls with the ring provider, so the
//! verifier-only build (`--no-default-features`) stays free of it.
//!
//! Used by `keyledger verify --url` (downloads the streamed bundle into a
//! directory and runs the offline verifier on it) and by `keyledger admin
//! submit | ceremony-status | submit-part --url`.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use zeroize::Zeroizing;

use crate::bundle::{self, Manifest};

/// Largest accepted bundle-stream header line (manifest, checkpoint, keys).
const MAX_HEADER: u64 = 1 << 20;
/// Largest JSON answer read into memory.
const MAX_JSON: u64 = 16 << 20;

/// A server and the instance the requests are for.
pub struct Client {
    agent: ureq::Agent,
    base: String,
    instance: String,
    token: Option<Zeroizing<String>>,
}

/// An answer that is not a success, with the Key Protect reason if any.
fn describe_failure(status: u16, body: &str) -> String {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let reason = parsed
        .as_ref()
        .and_then(|v| v["resources"][0]["reasons"][0].as_object().cloned());
    match reason {
        Some(r) => format!(
            "server refused ({status} {}): {}",
            r.get("code").and_then(Value::as_str).unwrap_or("?"),
            r.get("message").and_then(Value::as_str).unwrap_or("")
        ),
        None => format!("server answered {status}"),
    }
}

impl Client {
    /// `url` is the server's base URL (`https://host:port`); `token` the
    /// bearer token where the endpoint needs one.
    pub fn new(url: &str, instance: &str, token: Option<Zeroizing<String>>) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(30)))
            .build()
            .into();
        Client {
            agent,
            base: url.trim_end_matches('/').to_string(),
            instance: instance.to_string(),
            token,
        }
    }

    /// Reads a token file (its first line, trimmed).
    pub fn read_token(path: &Path) -> Result<Zeroizing<String>, String> {
        let text = Zeroizing::new(
            std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?,
        );
        let token = text.lines().next().unwrap_or("").trim();
        if token.is_empty() {
            return Err(format!("{}: no token in the file", path.display()));
        }
        Ok(Zeroizing::new(token.to_string()))
    }

    fn url(&self, path: &str) -> String {
        format!("{}/api/v2/{}", self.base, path.trim_start_matches('/'))
    }

    fn get(&self, path: &str) -> Result<ureq::http::Response<ureq::Body>, String> {
        self.get_with(path, &[])
    }

    fn get_with(
        &self,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<ureq::http::Response<ureq::Body>, String> {
        let mut request = self
            .agent
            .get(&self.url(path))
            .header("bluemix-instance", &self.instance)
            .header("accept", "application/json");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(token) = &self.token {
            request = request.header("authorization", &format!("Bearer {}", token.as_str()));
        }
        request.call().map_err(|e| format!("{}: {e}", self.base))
    }

    fn json_of(mut response: ureq::http::Response<ureq::Body>) -> Result<Value, String> {
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_JSON)
            .read_to_string()
            .map_err(|e| format!("reading the answer: {e}"))?;
        if !(200..300).contains(&status) {
            return Err(describe_failure(status, &body));
        }
        serde_json::from_str(&body).map_err(|e| format!("the answer is not JSON: {e}"))
    }

    /// `GET` a JSON endpoint.
    pub fn get_json(&self, path: &str) -> Result<Value, String> {
        Self::json_of(self.get(path)?)
    }

    /// `GET` a JSON endpoint with extra request headers.
    pub fn get_json_with(&self, path: &str, headers: &[(&str, &str)]) -> Result<Value, String> {
        Self::json_of(self.get_with(path, headers)?)
    }

    /// `POST` a JSON body; returns the JSON answer of a success.
    pub fn post_json(&self, path: &str, body: &str) -> Result<Value, String> {
        let response = self
            .agent
            .post(&self.url(path))
            .header("bluemix-instance", &self.instance)
            .header("content-type", "application/json")
            .header("accept", "application/json")
            .send(body)
            .map_err(|e| format!("{}: {e}", self.base))?;
        Self::json_of(response)
    }

    /// Downloads the instance's bundle (`GET /ledger/bundle`) into `dir`
    /// (which must exist and be empty) as the files `keyledger verify`
    /// reads. Streams `records.bin` to disk: memory stays bounded.
    pub fn download_bundle(&self, dir: &Path) -> Result<Manifest, String> {
        let mut response = self.get("ledger/bundle")?;
        let status = response.status().as_u16();
        if status != 200 {
            let body = response
                .body_mut()
                .with_config()
                .limit(MAX_JSON)
                .read_to_string()
                .unwrap_or_default();
            return Err(describe_failure(status, &body));
        }
        let mut reader = BufReader::with_capacity(1 << 20, response.body_mut().as_reader());
        let mut line = Vec::new();
        (&mut reader)
            .take(MAX_HEADER)
            .read_until(b'\n', &mut line)
            .map_err(|e| format!("reading the bundle: {e}"))?;
        if line.last() != Some(&b'\n') {
            return Err("the bundle stream has no header line".into());
        }
        let header: Value = serde_json::from_slice(&line)
            .map_err(|e| format!("the bundle header is not JSON: {e}"))?;
        if header["format"] != "keyledger-bundle-stream/1" {
            return Err(format!(
                "unsupported bundle stream format {}",
                header["format"]
            ));
        }
        let manifest: Manifest = serde_json::from_value(header["manifest"].clone())
            .map_err(|e| format!("the bundle manifest is malformed: {e}"))?;
        let text = |name: &str| {
            header[name]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| format!("the bundle header has no {name}"))
        };
        let write = |name: &str, bytes: &[u8]| {
            let path = dir.join(name);
            std::fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))
        };
        write(bundle::CHECKPOINT_FILE, text("checkpoint")?.as_bytes())?;
        let manifest_json = serde_json::to_vec_pretty(&manifest).map_err(|e| e.to_string())?;
        write(bundle::MANIFEST_FILE, &manifest_json)?;
        let path = dir.join(bundle::RECORDS_FILE);
        let file = std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
        std::io::copy(&mut reader, &mut out).map_err(|e| format!("reading the bundle: {e}"))?;
        out.flush()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(manifest)
    }
}
