//! Opening a bundle directory: reads its manifest and checkpoint, opens its
//! records file and hands them to `keyledger-core`'s verifier, which reads
//! nothing itself. A `keys` file, which older bundles carry, is ignored
//! (LEDGER-FORMAT §8). Errors name the file on disk.

use std::fs::File;
use std::path::Path;

use keyledger_core::bundle::{BundleError, CHECKPOINT_FILE, MANIFEST_FILE, Manifest, RECORDS_FILE};
use keyledger_core::verify::{self, PolicyReport, Report, Trust, VerifyError};

/// Verifies the bundle directory `dir` (integrity: chain, signatures, key
/// authority, Merkle root, checkpoints). `progress` is called with the
/// number of bytes of its records file consumed so far. A manifest that
/// cannot be read is an error; a malformed one is a finding.
pub fn verify_bundle(
    dir: &Path,
    trust: &Trust,
    progress: &dyn Fn(u64),
) -> Result<Report, VerifyError> {
    let manifest = read_manifest_bytes(dir)?;
    let checkpoint_note = read(dir, CHECKPOINT_FILE)?;
    let records = open(dir, RECORDS_FILE)?;
    verify::verify_records(&manifest, trust, &checkpoint_note, records, progress)
        .map_err(|e| located(dir, e))
}

/// Replays the governance rules over the records of the bundle directory
/// `dir` (see `keyledger_core::verify::replay_policy`); run it on a bundle
/// that [`verify_bundle`] found intact.
pub fn verify_policy(dir: &Path, progress: &dyn Fn(u64)) -> Result<PolicyReport, VerifyError> {
    let records = open(dir, RECORDS_FILE)?;
    verify::replay_policy(records, progress).map_err(|e| located(dir, e))
}

/// Reads and checks the manifest of the bundle directory `dir`.
pub fn read_manifest(dir: &Path) -> Result<Manifest, BundleError> {
    Manifest::parse(&read_manifest_bytes(dir)?)
}

fn read_manifest_bytes(dir: &Path) -> Result<Vec<u8>, BundleError> {
    let path = dir.join(MANIFEST_FILE);
    std::fs::read(&path).map_err(|source| BundleError::Io {
        file: path.display().to_string(),
        source,
    })
}

/// The manifest of the bundle directory `dir`, as a verification error
/// when it cannot be read (for tests and tools).
pub fn manifest_of(dir: &Path) -> Result<Manifest, VerifyError> {
    Ok(read_manifest(dir)?)
}

fn read(dir: &Path, name: &str) -> Result<Vec<u8>, VerifyError> {
    let path = dir.join(name);
    std::fs::read(&path).map_err(|source| VerifyError::Io {
        file: path.display().to_string(),
        source,
    })
}

fn open(dir: &Path, name: &str) -> Result<File, VerifyError> {
    let path = dir.join(name);
    File::open(&path).map_err(|source| VerifyError::Io {
        file: path.display().to_string(),
        source,
    })
}

/// Core names a bundle file by its name in the bundle; say where it is.
fn located(dir: &Path, error: VerifyError) -> VerifyError {
    match error {
        VerifyError::Io { file, source } => VerifyError::Io {
            file: dir.join(file).display().to_string(),
            source,
        },
        other => other,
    }
}
