//! Writing export bundles (the format lives in `keyledger_core::bundle`).
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::Path;

pub use keyledger_core::bundle::*;

use crate::store::{InstanceLog, StoreError};

/// Records read from the store per step while exporting.
const EXPORT_CHUNK: u64 = 4096;

/// Errors exporting a bundle.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("bundle directory {0} already exists and is not empty")]
    NotEmpty(String),
    #[error("checkpoint covers {checkpoint} records but the log has only {log}")]
    CheckpointAhead { checkpoint: u64, log: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Bundle(#[from] BundleError),
}

/// Writes a bundle of the first `size` records of `log`, with `checkpoint`
/// (a signed note of exactly that size) and the published `keys`.
pub fn export(
    log: &dyn InstanceLog,
    origin: &str,
    size: u64,
    checkpoint: &str,
    keys: &[String],
    out: &Path,
) -> Result<Manifest, ExportError> {
    let head = log.head().size;
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
    let mut frame = Vec::new();
    let mut start = 0;
    while start < size {
        let end = (start + EXPORT_CHUNK).min(size);
        for record in log.read(start, end)? {
            frame.clear();
            record.encode_frame(&mut frame);
            writer
                .write_all(&frame)
                .map_err(|source| io_err(&records_path, source))?;
        }
        start = end;
    }
    writer
        .into_inner()
        .map_err(|e| io_err(&records_path, e.into_error()))?
        .sync_all()
        .map_err(|source| io_err(&records_path, source))?;
    write_file(&out.join(CHECKPOINT_FILE), checkpoint.as_bytes())?;
    let mut key_lines = String::new();
    for key in keys {
        key_lines.push_str(key.trim());
        key_lines.push('\n');
    }
    write_file(&out.join(KEYS_FILE), key_lines.as_bytes())?;
    let manifest = Manifest {
        format: BUNDLE_FORMAT.into(),
        instance: log.instance().into(),
        origin: origin.into(),
        size,
    };
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
