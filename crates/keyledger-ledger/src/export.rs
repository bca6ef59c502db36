//! Writing an instance's log as an export bundle directory, read through
//! the audit view ([`crate::audit`]); the format, and reading it, live in
//! `keyledger_core::bundle`. A bundle holds no `keys` file: the log itself
//! declares every ledger key (docs/LEDGER-FORMAT.md §4, §8).
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::Path;

use keyledger_core::bundle::{BundleError, CHECKPOINT_FILE, MANIFEST_FILE, Manifest, RECORDS_FILE};

use crate::audit::{AuditLog, FRAME_CHUNK, SignedCheckpoint, manifest, write_frames};
use crate::store::StoreError;

/// Errors exporting a bundle.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The target directory exists and holds something.
    #[error("bundle directory {0} already exists and is not empty")]
    NotEmpty(String),
    /// The checkpoint is of a larger log than the one exported.
    #[error("checkpoint covers {checkpoint} records but the log has only {log}")]
    CheckpointAhead {
        /// The checkpoint's size.
        checkpoint: u64,
        /// The log's size.
        log: u64,
    },
    /// Reading the log failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Writing the bundle's files failed.
    #[error(transparent)]
    Bundle(#[from] BundleError),
}

/// Writes a bundle of the records `checkpoint` covers (a signed note of
/// exactly that size, e.g. [`AuditLog::checkpoint`]): `manifest.json`,
/// `records.bin` and `checkpoint`.
pub fn export_bundle(
    log: &dyn AuditLog,
    checkpoint: &SignedCheckpoint,
    out: &Path,
) -> Result<Manifest, ExportError> {
    let size = checkpoint.size;
    let head = log.size();
    if size > head {
        return Err(ExportError::CheckpointAhead {
            checkpoint: size,
            log: head,
        });
    }
    if out.exists()
        && fs::read_dir(out)
            .map_err(|source| io_err(out, source))?
            .next()
            .is_some()
    {
        return Err(ExportError::NotEmpty(out.display().to_string()));
    }
    fs::create_dir_all(out).map_err(|source| io_err(out, source))?;
    let records_path = out.join(RECORDS_FILE);
    let file = File::create(&records_path).map_err(|source| io_err(&records_path, source))?;
    let mut writer = BufWriter::with_capacity(1 << 20, file);
    let mut frames = Vec::new();
    let mut start = 0;
    while start < size {
        let end = (start + FRAME_CHUNK).min(size);
        frames.clear();
        write_frames(log, start, end, &mut frames)?;
        writer
            .write_all(&frames)
            .map_err(|source| io_err(&records_path, source))?;
        start = end;
    }
    writer
        .into_inner()
        .map_err(|e| io_err(&records_path, e.into_error()))?
        .sync_all()
        .map_err(|source| io_err(&records_path, source))?;
    write_file(&out.join(CHECKPOINT_FILE), checkpoint.note.as_bytes())?;
    let manifest = manifest(log, size);
    let json = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| ExportError::Bundle(BundleError::Manifest(e.to_string())))?;
    write_file(&out.join(MANIFEST_FILE), &json)?;
    Ok(manifest)
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), BundleError> {
    fs::write(path, bytes).map_err(|source| io_err(path, source))
}

fn io_err(path: &Path, source: std::io::Error) -> BundleError {
    BundleError::Io {
        file: path.display().to_string(),
        source,
    }
}
