//! `keyledger export --url`: the records of an instance read from a
//! server's auditor endpoint (`GET /api/v2/ledger/records`, pages of at most
//! 1000), each checked against the leaf hash the server sent with it before
//! it is rendered, so an export from a server carries the same dedupe keys
//! as one from the stores.

use std::io::Write;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use keyledger_export::{ExportError, Format};
use serde_json::Value;
use zeroize::Zeroizing;

use crate::client::Client;
use crate::record::{Record, SIGNATURE_LEN};

/// How often `--follow` asks the server for records past the last one.
const FOLLOW_POLL: Duration = Duration::from_millis(500);

/// A server and the instance whose records are exported.
pub struct Remote {
    client: Client,
    instance: String,
}

fn malformed(seq: u64, reason: impl Into<String>) -> ExportError {
    ExportError::Malformed {
        seq,
        reason: reason.into(),
    }
}

impl Remote {
    pub fn new(url: &str, instance: &str, token: Zeroizing<String>) -> Self {
        Remote {
            client: Client::new(url, instance, Some(token)),
            instance: instance.to_string(),
        }
    }

    /// One page from `start`: its records (checked) and the log's size.
    fn page(&self, start: u64) -> Result<(Vec<(u64, Record)>, u64), ExportError> {
        let answer = self
            .client
            .get_json(&format!("ledger/records?start={start}"))
            .map_err(|e| malformed(start, e))?;
        let size = answer["size"]
            .as_u64()
            .ok_or_else(|| malformed(start, "the answer has no size"))?;
        let mut out = Vec::new();
        for (want, item) in (start..).zip(answer["records"].as_array().into_iter().flatten()) {
            out.push((want, checked(want, item)?));
        }
        Ok((out, size))
    }

    /// Writes the records from `since` to the server's head (and, with
    /// `follow`, what is appended after, until the process is stopped).
    pub fn export(
        &self,
        format: Format,
        since: u64,
        follow: bool,
        out: &mut dyn Write,
    ) -> Result<u64, ExportError> {
        let mut next = since;
        let mut written = 0;
        loop {
            let (records, size) = self.page(next)?;
            for (seq, record) in &records {
                let line = keyledger_export::render(format, &self.instance, *seq, record)?;
                out.write_all(line.as_bytes())?;
                out.write_all(b"\n")?;
            }
            next += records.len() as u64;
            written += records.len() as u64;
            if next < size && !records.is_empty() {
                continue;
            }
            if !follow {
                return Ok(written);
            }
            out.flush()?;
            std::thread::sleep(FOLLOW_POLL);
        }
    }
}

/// A record of the answer at `seq`, if its seq, signature and leaf hash
/// are what they must be.
fn checked(seq: u64, item: &Value) -> Result<Record, ExportError> {
    if item["seq"].as_u64() != Some(seq) {
        return Err(malformed(
            seq,
            "the server sent another record than asked for",
        ));
    }
    let event = item["event"]
        .as_str()
        .ok_or_else(|| malformed(seq, "a record without its event"))?;
    let signature: [u8; SIGNATURE_LEN] = item["signature"]
        .as_str()
        .and_then(|s| B64.decode(s).ok())
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| malformed(seq, "a record whose signature is not 64 bytes of base64"))?;
    let record = Record {
        event: event.as_bytes().to_vec(),
        signature,
    };
    let leaf = item["leaf_hash"]
        .as_str()
        .and_then(|s| B64.decode(s).ok())
        .ok_or_else(|| malformed(seq, "a record without its leaf hash"))?;
    if leaf != record.leaf_hash() {
        return Err(malformed(
            seq,
            "the leaf hash the server sent is not the record's",
        ));
    }
    Ok(record)
}
