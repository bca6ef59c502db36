//! Export bundles: a self-contained directory an auditor verifies offline.
//!
//! ```text
//! BUNDLE/manifest.json   {"format":"keyledger-bundle/1","instance":..,"origin":..,"size":N}
//! BUNDLE/records.bin     N record frames (see record.rs), seq 0..N
//! BUNDLE/checkpoint      C2SP signed note of size N
//! BUNDLE/keys            the instance's ledger public keys, one note verifier key per line
//! ```

use std::fs;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// Bundle format name written in the manifest.
pub const BUNDLE_FORMAT: &str = "keyledger-bundle/1";
pub const MANIFEST_FILE: &str = "manifest.json";
pub const RECORDS_FILE: &str = "records.bin";
pub const CHECKPOINT_FILE: &str = "checkpoint";
pub const KEYS_FILE: &str = "keys";

/// The bundle manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: String,
    pub instance: String,
    pub origin: String,
    pub size: u64,
}

/// Errors writing or reading a bundle's files.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("bundle file {file}: {source}")]
    Io {
        file: String,
        source: std::io::Error,
    },
    #[error("bundle manifest is malformed: {0}")]
    Manifest(String),
}

/// Reads and checks a bundle's manifest.
pub fn read_manifest(bundle: &Path) -> Result<Manifest, BundleError> {
    let path = bundle.join(MANIFEST_FILE);
    let bytes = fs::read(&path).map_err(|source| io_err(&path, source))?;
    let manifest: Manifest =
        serde_json::from_slice(&bytes).map_err(|e| BundleError::Manifest(e.to_string()))?;
    if manifest.format != BUNDLE_FORMAT {
        return Err(BundleError::Manifest(format!(
            "unsupported format {:?}",
            manifest.format
        )));
    }
    Ok(manifest)
}

pub fn write_file(path: &Path, bytes: &[u8]) -> Result<(), BundleError> {
    fs::write(path, bytes).map_err(|source| io_err(path, source))
}

pub fn io_err(path: &Path, source: std::io::Error) -> BundleError {
    BundleError::Io {
        file: path.display().to_string(),
        source,
    }
}
