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
    line_of(format, &m, record)
}

/// The line of `format` for `record`, already mapped as `m`.
pub(crate) fn line_of(
    format: Format,
    m: &mapping::Mapped,
    record: &Record,
) -> Result<String, ExportError> {
    let line = match format {
        Format::Cadf => cadf::render(m),
        Format::Ocsf => ocsf::render(m),
        Format::Cef => cef::render(m),
        Format::Leef => leef::render(m),
        Format::Jsonl => jsonl::render(&m.instance, m.seq, record)?,
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

#[cfg(test)]
mod tests {
    //! A log the real writer made, exported both ways: the new renderers
    //! against the ones they replaced (kept in each module's tests), and
    //! the parallel [`export_log`] against rendering one record at a time.
    use keyledger_core::event::{self, Actor, AuthMethod, EventDraft, Role};
    use keyledger_ledger::ledger::{InitialAdmin, Ledger};
    use keyledger_ledger::store::embedded::EmbeddedStore;
    use keyledger_ledger::writer::WriterConfig;

    use super::*;
    use crate::mapping::tests::NASTY;

    fn sample_log() -> (tempfile::TempDir, Ledger) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = EmbeddedStore::open(dir.path()).expect("store");
        let admin = InitialAdmin {
            admin_id: "admin-1".into(),
            public_key: "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=".into(),
        };
        let ledger = Ledger::create(
            &store,
            dir.path(),
            "acme",
            &admin,
            "op",
            WriterConfig::default(),
        )
        .expect("create");
        let user = Actor {
            principal: "cred|a=b^c".into(),
            role: Role::Writer,
            auth: AuthMethod::Bearer,
        };
        for i in 0..3 {
            let created = event::KeyCreated {
                key_id: format!("0f8e4d1c-0000-4000-8000-00000000000{i}"),
                name: format!("{i}{NASTY}"),
                description: None,
                key_ring_id: "default".into(),
                extractable: false,
                imported: false,
                algorithm: "AES".into(),
                bit_length: 256,
                version_id: format!("v{NASTY}"),
                key_check_value: "abcdef".into(),
                expiration_date: None,
                aliases: vec![],
                activation_date: (i == 1).then(|| "2999-01-01T00:00:00Z".into()),
                import_token_id: None,
            };
            let failed = event::KeyOperationFailed {
                key_id: format!("k{NASTY}"),
                action: format!("setKeyForDeletion{NASTY}"),
                reason: format!("KEY_ACTION_INVALID_STATE_ERR{NASTY}"),
            };
            let denied = event::AccessDenied {
                action: format!("wrap{NASTY}"),
                target: format!("/api/v2/keys/{NASTY}"),
                reason: format!("no{NASTY}"),
            };
            let corr = "corr-1";
            for draft in [
                EventDraft::new(user.clone(), corr, &created),
                EventDraft::new(user.clone(), corr, &failed),
                EventDraft::new(user.clone(), corr, &denied),
            ] {
                ledger.append(draft.expect("draft")).expect("append");
            }
        }
        (dir, ledger)
    }

    #[test]
    fn a_real_log_renders_as_the_replaced_renderers_and_in_order() {
        let (_dir, ledger) = sample_log();
        let audit: &dyn AuditLog = ledger.writer();
        let size = audit.size();
        let records = audit.records(0, size).expect("records");
        assert!(size >= 9, "{size}");
        for (seq, record) in (0..).zip(&records) {
            let m = mapping::Mapped::new("acme", seq, record).expect("mapped");
            assert_eq!(cadf::render(&m), cadf::tests::old_render(&m));
            assert_eq!(ocsf::render(&m), ocsf::tests::old_render(&m));
            assert_eq!(cef::render(&m), cef::tests::old_cef(&m));
            assert_eq!(leef::render(&m), cef::tests::old_leef(&m));
        }
        for format in Format::ALL {
            let mut one_by_one = Vec::new();
            for (seq, record) in (0..).zip(&records) {
                one_by_one.extend(render(format, "acme", seq, record).expect("render").bytes());
                one_by_one.push(b'\n');
            }
            let mut out = Vec::new();
            assert_eq!(
                export_log(audit, format, 0, &mut out).expect("export"),
                size
            );
            assert_eq!(out, one_by_one, "{format}");
        }
        // A record asked for under another instance fails in every format
        // as the mapping does.
        for format in Format::ALL {
            assert!(matches!(
                render(format, "other", 0, &records[0]),
                Err(ExportError::Mismatch { .. })
            ));
        }
        ledger.shutdown();
    }
}
