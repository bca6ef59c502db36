//! Export bundles: a self-contained directory an auditor verifies offline.
//!
//! ```text
//! BUNDLE/manifest.json   {"format":"keyledger-bundle/1","instance":..,"origin":..,"size":N}
//! BUNDLE/records.bin     N record frames (see record.rs), seq 0..N
//! BUNDLE/checkpoint      C2SP signed note of size N
//! ```
//!
//! There is no `keys` file: the log declares every ledger key (genesis and
//! rotations), and the verifier ignores one that an older bundle carries.
//!
//! This module holds the format only: file names and the manifest, parsed
//! from bytes. Opening a bundle directory is `keyledger-verify`'s job;
//! writing one is the ledger's export.

use serde::{Deserialize, Serialize};

/// Bundle format name written in the manifest.
pub const BUNDLE_FORMAT: &str = "keyledger-bundle/1";
/// The manifest: JSON naming the format, instance, origin and record count.
pub const MANIFEST_FILE: &str = "manifest.json";
/// The records, as consecutive record frames from seq 0.
pub const RECORDS_FILE: &str = "records.bin";
/// A C2SP signed note covering exactly the bundle's records.
pub const CHECKPOINT_FILE: &str = "checkpoint";

/// The bundle manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always [`BUNDLE_FORMAT`].
    pub format: String,
    /// The instance whose log this is.
    pub instance: String,
    /// The checkpoint origin (and note signer name) of the instance.
    pub origin: String,
    /// Number of records in [`RECORDS_FILE`].
    pub size: u64,
}

impl Manifest {
    /// Parses and checks a manifest's bytes (the contents of
    /// [`MANIFEST_FILE`]).
    pub fn parse(bytes: &[u8]) -> Result<Manifest, BundleError> {
        let manifest: Manifest =
            serde_json::from_slice(bytes).map_err(|e| BundleError::Manifest(e.to_string()))?;
        if manifest.format != BUNDLE_FORMAT {
            return Err(BundleError::Manifest(format!(
                "unsupported format {:?}",
                manifest.format
            )));
        }
        Ok(manifest)
    }
}

/// Errors writing or reading a bundle's files. Core reads no file itself:
/// `Io` is raised by the code that opens the bundle directory (the verifier
/// binary's library) or writes it (export), naming the file.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// A bundle file could not be read or written.
    #[error("bundle file {file}: {source}")]
    Io {
        /// The file, as its path on disk.
        file: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The manifest is not valid JSON of this format.
    #[error("bundle manifest is malformed: {0}")]
    Manifest(String),
}
