//! The file transport: appends each batch's lines to a file, fsyncs, and
//! rotates by size (`path` -> `path.1` -> ... -> `path.(keep-1)`).

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::{Entry, SendError, Transport};

/// Appends to `path`, rotating before a batch would push it past `max_bytes`.
pub(crate) struct FileSink {
    path: PathBuf,
    max_bytes: u64,
    keep: u32,
}

impl FileSink {
    pub(crate) fn new(path: PathBuf, max_bytes: u64, keep: u32) -> Result<Self, SendError> {
        if keep == 0 {
            return Err(SendError::Config(
                "file sink: keep must be at least 1 (the live file)".into(),
            ));
        }
        if max_bytes == 0 {
            return Err(SendError::Config(
                "file sink: max_bytes must be positive".into(),
            ));
        }
        if path.file_name().is_none() {
            return Err(SendError::Config(format!(
                "file sink: {} names no file",
                path.display()
            )));
        }
        Ok(FileSink {
            path,
            max_bytes,
            keep,
        })
    }

    /// `path.n`.
    fn rotated(&self, n: u32) -> PathBuf {
        let mut name = OsString::from(self.path.as_os_str());
        name.push(format!(".{n}"));
        PathBuf::from(name)
    }

    /// The directory holding the files (synced after renames).
    fn dir(&self) -> &Path {
        match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        }
    }

    /// Shifts `path.N` -> `path.N+1` (dropping `path.(keep-1)`) and moves
    /// the live file to `path.1` (or removes it when `keep` is 1).
    fn rotate(&self) -> io::Result<()> {
        if self.keep == 1 {
            fs::remove_file(&self.path)?;
        } else {
            // rename over the oldest drops it.
            for n in (1..self.keep - 1).rev() {
                match fs::rename(self.rotated(n), self.rotated(n + 1)) {
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    other => other?,
                }
            }
            fs::rename(&self.path, self.rotated(1))?;
        }
        File::open(self.dir())?.sync_all()
    }

    fn append(&self, bytes: &[u8]) -> io::Result<()> {
        let size = match fs::metadata(&self.path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e),
        };
        let size = if size > 0 && size.saturating_add(bytes.len() as u64) > self.max_bytes {
            self.rotate()?;
            0
        } else {
            size
        };
        let mut file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&self.path)?;
        if size == 0 {
            // A new file: its directory entry must survive a crash too.
            File::open(self.dir())?.sync_all()?;
        }
        let start = file.metadata()?.len();
        let written = file.write_all(bytes).and_then(|()| file.sync_data());
        if written.is_err() {
            // No half batch (and no split line) stays behind: the retry
            // writes the whole batch again.
            let _ = file.set_len(start);
        }
        written
    }
}

impl Transport for FileSink {
    fn send(&mut self, batch: &[Entry]) -> Result<(), SendError> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut bytes = Vec::with_capacity(batch.iter().map(|e| e.line.len() + 1).sum());
        for entry in batch {
            bytes.extend_from_slice(entry.line.as_bytes());
            bytes.push(b'\n');
        }
        self.append(&bytes)
            .map_err(|e| SendError::Io(format!("{}: {e}", self.path.display())))
    }
}
