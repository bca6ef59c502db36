//! File helpers: names inside `log/`, atomic replacement, directory fsync,
//! the instance lock and the trusted-point sidecar.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::Path;

use crate::store::StoreError;
use keyledger_core::chain::Link;
use keyledger_core::merkle::Hash;

/// Exclusive `flock` held for as long as the log is open.
pub(crate) const LOCK_FILE: &str = "LOCK";
/// The record log (source of truth).
pub(crate) const RECORDS_FILE: &str = "records.log";
/// Derived: frame offset of every record, `u64` big-endian each.
pub(crate) const INDEX_FILE: &str = "records.idx";
/// Derived: Merkle perfect-subtree hashes in post-order, 32 bytes each.
pub(crate) const NODES_FILE: &str = "tree.nodes";
/// Derived: the last point up to which the derived files were fsynced.
pub(crate) const TRUSTED_FILE: &str = "trusted";
/// The latest signed checkpoint note, verbatim.
pub(crate) const CHECKPOINT_FILE: &str = "checkpoint.note";
/// Directory receiving copies of discarded torn tails.
pub(crate) const TORN_DIR: &str = "torn";

/// Fsyncs a directory so that entries created or renamed in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

pub(crate) use crate::data_dir::write_atomic;

/// Reads `dir/name`, `None` if it does not exist.
pub(crate) fn read_optional(path: &Path) -> io::Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// How long [`lock`] waits for a lock held by someone else before it
/// reports [`StoreError::Locked`].
///
/// A lock belongs to the open file, and a process that forks (to run any
/// child program) hands the child a copy of every descriptor until the
/// child's `exec` closes it. A log closed in this process while another
/// thread was spawning a child therefore stays locked for that instant;
/// the wait covers it, while a second process holding the log still fails.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);
const LOCK_POLL: std::time::Duration = std::time::Duration::from_millis(10);

/// Opens (creating if needed) and exclusively locks `log/LOCK`.
pub(crate) fn lock(log_dir: &Path, instance: &str) -> Result<File, StoreError> {
    let file = private()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(log_dir.join(LOCK_FILE))?;
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                std::thread::sleep(LOCK_POLL);
            }
            Err(fs::TryLockError::WouldBlock) => {
                return Err(StoreError::Locked {
                    instance: instance.to_string(),
                });
            }
            Err(fs::TryLockError::Error(e)) => return Err(StoreError::Io(e)),
        }
    }
}

/// Opens a read-write file, creating it if missing, never truncating.
pub(crate) fn open_rw(path: &Path) -> io::Result<File> {
    private()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
}

/// Options creating files 0600: the data directory is private
/// (`crate::data_dir`).
pub(crate) fn private() -> OpenOptions {
    crate::data_dir::file_options()
}

/// The state of the log at the moment its derived files were last fsynced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TrustedPoint {
    /// Number of records.
    pub size: u64,
    /// Byte length of the record log holding exactly those records.
    pub log_len: u64,
    /// RFC 9162 root of the first `size` leaves.
    pub root: Hash,
    /// Link of record `size - 1` (`GENESIS_PREV` when empty).
    pub link: Link,
}

const TRUSTED_MAGIC: [u8; 8] = *b"KLTRUST1";
const TRUSTED_LEN: usize = 8 + 8 + 8 + 32 + 32 + 4;

impl TrustedPoint {
    /// `magic(8) || size u64 BE || log_len u64 BE || root(32) || link(32) || crc32 BE`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(TRUSTED_LEN);
        out.extend_from_slice(&TRUSTED_MAGIC);
        out.extend_from_slice(&self.size.to_be_bytes());
        out.extend_from_slice(&self.log_len.to_be_bytes());
        out.extend_from_slice(&self.root);
        out.extend_from_slice(&self.link);
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_be_bytes());
        out
    }

    /// Parses a sidecar; `None` if it is not exactly a valid one.
    pub fn decode(bytes: &[u8]) -> Option<TrustedPoint> {
        if bytes.len() != TRUSTED_LEN || bytes[..8] != TRUSTED_MAGIC {
            return None;
        }
        let (body, crc) = bytes.split_at(TRUSTED_LEN - 4);
        if crc32fast::hash(body).to_be_bytes() != crc {
            return None;
        }
        let u64_at = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&body[at..at + 8]);
            u64::from_be_bytes(b)
        };
        let mut root = [0u8; 32];
        root.copy_from_slice(&body[24..56]);
        let mut link = [0u8; 32];
        link.copy_from_slice(&body[56..88]);
        Some(TrustedPoint {
            size: u64_at(8),
            log_len: u64_at(16),
            root,
            link,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trusted_point_round_trip_and_rejects_damage() {
        let t = TrustedPoint {
            size: 7,
            log_len: 1234,
            root: [1; 32],
            link: [2; 32],
        };
        let bytes = t.encode();
        assert_eq!(TrustedPoint::decode(&bytes), Some(t));
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 1;
            assert_eq!(TrustedPoint::decode(&b), None);
        }
        assert_eq!(TrustedPoint::decode(&bytes[..bytes.len() - 1]), None);
    }
}
