//! `keyledger export --url`: the records of an instance read from a
//! server's auditor endpoint (`GET /api/v2/ledger/records`, pages of at most
//! 1000), each checked against the leaf hash the server sent with it before
//! it is rendered, so an export from a server carries the same dedupe keys
//! as one from the stores. A record that is not the one asked for, or a
//! server that announces records it does not send, stops the export.

use std::io::Write;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use keyledger_export::Format;
use serde_json::Value;
use zeroize::Zeroizing;

use super::export_cmd::Failure;
use crate::client::Client;
use crate::record::{Record, SIGNATURE_LEN};

/// How often `--follow` asks the server for records past the last one.
const FOLLOW_POLL: Duration = Duration::from_millis(500);

/// A server and the instance whose records are exported.
pub struct Remote {
    client: Client,
    instance: String,
}

/// Record `seq` of the server's answer refused, and why.
fn refused(seq: u64, reason: impl std::fmt::Display) -> Failure {
    Failure::Server(format!("record {seq} from the server: {reason}"))
}

/// The page from `start` could not be had.
fn unread(start: u64, reason: impl std::fmt::Display) -> Failure {
    Failure::Server(format!("reading records from {start}: {reason}"))
}

/// Whether `url` carries user info (`user[:password]@`) before its host.
/// Checked on the text as given, so that a URL that would not even parse
/// is caught too: the client's errors name the URL, password and all.
fn has_user_info(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.split(['/', '?', '#'])
        .next()
        .is_some_and(|authority| authority.contains('@'))
}

impl Remote {
    /// The server at `url` (which must not carry a user or password: the
    /// credential is `token`, and every error names the URL).
    pub fn new(url: &str, instance: &str, token: Zeroizing<String>) -> Result<Self, String> {
        if has_user_info(url) {
            return Err(
                "--url must not carry a user or password: the auditor token goes in --token-file"
                    .into(),
            );
        }
        Ok(Remote {
            client: Client::new(url, instance, Some(token)),
            instance: instance.to_string(),
        })
    }

    /// One page from `start`: its records as sent (not yet checked) and
    /// the log's size.
    fn page(&self, start: u64) -> Result<(Vec<Value>, u64), Failure> {
        let mut answer = self
            .client
            .get_json(&format!("ledger/records?start={start}"))
            .map_err(|e| unread(start, e))?;
        let size = answer["size"]
            .as_u64()
            .ok_or_else(|| unread(start, "the answer has no size"))?;
        let records = match answer["records"].take() {
            Value::Array(records) => records,
            _ => return Err(unread(start, "the answer has no records")),
        };
        Ok((records, size))
    }

    /// Writes the records from `since` to the server's head as it was at
    /// the first answer (with `follow`, then what is appended after, until
    /// the process is stopped).
    /// Each record is checked before it is written, so a bad one stops the
    /// export after the good ones before it, as from the stores. A page
    /// without records short of the size the server announces is refused:
    /// the export never ends quietly short of the head.
    pub fn export(
        &self,
        format: Format,
        since: u64,
        follow: bool,
        out: &mut dyn Write,
    ) -> Result<u64, Failure> {
        let mut next = since;
        let mut written = 0;
        // Without `follow`: the head the server announced first.
        let mut head = None;
        loop {
            let (records, size) = self.page(next)?;
            let end = if follow {
                size
            } else {
                *head.get_or_insert(size)
            };
            for item in records.iter().take(end.saturating_sub(next) as usize) {
                let record = checked(next, item)?;
                let line = keyledger_export::render(format, &self.instance, next, &record)?;
                out.write_all(line.as_bytes())?;
                out.write_all(b"\n")?;
                next += 1;
                written += 1;
            }
            if next < end {
                if records.is_empty() {
                    return Err(refused(
                        next,
                        format!("none came, though the server announced {end} records"),
                    ));
                }
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
fn checked(seq: u64, item: &Value) -> Result<Record, Failure> {
    match item["seq"].as_u64() {
        Some(found) if found == seq => {}
        Some(found) => {
            return Err(refused(
                seq,
                format!("the server sent record {found} in its place"),
            ));
        }
        None => return Err(refused(seq, "it comes without its seq")),
    }
    let event = item["event"]
        .as_str()
        .ok_or_else(|| refused(seq, "it comes without its event"))?;
    let signature: [u8; SIGNATURE_LEN] = item["signature"]
        .as_str()
        .and_then(|s| B64.decode(s).ok())
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| refused(seq, "its signature is not 64 bytes of base64"))?;
    let record = Record {
        event: event.as_bytes().to_vec(),
        signature,
    };
    let leaf = item["leaf_hash"]
        .as_str()
        .and_then(|s| B64.decode(s).ok())
        .ok_or_else(|| refused(seq, "it comes without its leaf hash"))?;
    if leaf != record.leaf_hash() {
        return Err(refused(
            seq,
            "the leaf hash sent with it is not the record's",
        ));
    }
    Ok(record)
}
