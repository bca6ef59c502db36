//! Maps stored ledger records to SIEM formats: DMTF CADF (as IBM Cloud
//! Activity Tracker carries Key Protect events), OCSF API Activity, ArcSight
//! CEF, QRadar LEEF 2.0 and raw JSON lines.
//!
//! Every rendered line carries the instance, the record's sequence number
//! and its leaf hash (hex): the dedupe key and a pointer back into the
//! verifiable log. No format adds anything a payload does not hold, and
//! payloads hold no secrets (no key material, token, plaintext or
//! ciphertext); the mapped formats carry only the fields [`mapping`] picks.
//!
//! [`sink`] delivers batches of rendered lines to receivers: a rotated
//! file, syslog over TCP or TLS, Splunk's HTTP Event Collector;
//! [`delivery`] runs one sink: durable cursor, bounded batches, backoff.

use std::io::Write;
use std::str::FromStr;

use keyledger_core::record::Record;
use keyledger_ledger::audit::{AuditLog, FRAME_CHUNK};
use rayon::prelude::*;

pub mod cadf;
pub mod cef;
#[cfg(feature = "sinks")]
pub mod delivery;
mod jsonl;
pub mod leef;
pub mod mapping;
pub mod ocsf;
#[cfg(feature = "sinks")]
pub mod sink;

/// The product version written into CEF, LEEF and OCSF headers.
pub const PRODUCT_VERSION: &str = env!("CARGO_PKG_VERSION");

/// An export format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// DMTF CADF, Activity Tracker flavour (JSON).
    Cadf,
    /// OCSF API Activity, class 6003 (JSON).
    Ocsf,
    /// ArcSight Common Event Format.
    Cef,
    /// QRadar Log Event Extended Format 2.0.
    Leef,
    /// The raw records, verifiable.
    Jsonl,
}

impl Format {
    /// Every format, in the order the command line lists them.
    pub const ALL: [Format; 5] = [
        Format::Cadf,
        Format::Ocsf,
        Format::Cef,
        Format::Leef,
        Format::Jsonl,
    ];

    /// The format's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Format::Cadf => "cadf",
            Format::Ocsf => "ocsf",
            Format::Cef => "cef",
            Format::Leef => "leef",
            Format::Jsonl => "jsonl",
        }
    }
}

impl FromStr for Format {
    type Err = ExportError;
    fn from_str(s: &str) -> Result<Self, ExportError> {
        Format::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| ExportError::UnknownFormat(s.chars().take(32).collect()))
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a record could not be exported.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The format name is not one of cadf, ocsf, cef, leef, jsonl.
    #[error("unknown format {0:?} (cadf, ocsf, cef, leef or jsonl)")]
    UnknownFormat(String),
    /// The stored event does not parse.
    #[error("record {seq}: the stored event does not parse: {reason}")]
    Malformed {
        /// The record's position.
        seq: u64,
        /// What is wrong.
        reason: String,
    },
    /// The record is not the one asked for (another instance or position).
    #[error("record {seq}: it names instance {found_instance:?} seq {found_seq}")]
    Mismatch {
        /// The position asked for.
        seq: u64,
        /// The instance the event names.
        found_instance: String,
        /// The sequence number the event names.
        found_seq: u64,
    },
    /// Reading the log failed.
    #[error("reading the log: {0}")]
    Store(#[from] keyledger_ledger::store::StoreError),
    /// Writing the output failed.
    #[error("writing the export: {0}")]
    Io(#[from] std::io::Error),
}

/// Renders one record as one line of `format` (no newline in it).
pub fn render(
    format: Format,
    instance: &str,
    seq: u64,
    record: &Record,
) -> Result<String, ExportError> {
    if format == Format::Jsonl {
        // Still checks that the record is the one asked for, and fails
        // where the mapped formats would, without building the mapping.
        mapping::check(instance, seq, record)?;
        return jsonl::render(instance, seq, record);
    }
    let m = mapping::Mapped::new(instance, seq, record)?;
    let line = match format {
        Format::Cadf => cadf::render(&m),
        Format::Ocsf => ocsf::render(&m),
        Format::Cef => cef::render(&m),
        Format::Leef => leef::render(&m),
        Format::Jsonl => unreachable!("handled above"),
    };
    debug_assert!(!line.contains('\n') && !line.contains('\r'));
    Ok(line)
}

/// Writes records `since..` the log's current size, one line each, to
/// `out`; returns the number of lines written.
pub fn export_log(
    log: &dyn AuditLog,
    format: Format,
    since: u64,
    out: &mut dyn Write,
) -> Result<u64, ExportError> {
    let end = log.size();
    let instance = log.instance().to_string();
    let mut seq = since.min(end);
    let mut written = 0;
    while seq < end {
        let stop = end.min(seq.saturating_add(FRAME_CHUNK));
        let records = log.records(seq, stop)?;
        if records.len() as u64 != stop - seq {
            return Err(ExportError::Malformed {
                seq,
                reason: format!(
                    "the store returned {} records, not {}",
                    records.len(),
                    stop - seq
                ),
            });
        }
        // Records are independent: render the chunk on every core, then
        // write the lines in log order, stopping at the first record that
        // fails (as rendering one by one would).
        let first = seq;
        let lines: Vec<Result<String, ExportError>> = records
            .par_iter()
            .enumerate()
            .map(|(i, record)| render(format, &instance, first + i as u64, record))
            .collect();
        for line in lines {
            let line = line?;
            out.write_all(line.as_bytes())?;
            out.write_all(b"\n")?;
            seq += 1;
            written += 1;
        }
    }
    out.flush()?;
    Ok(written)
}
