//! One open instance log: append, reads, nodes and checkpoints.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock};

use super::files::{self, CHECKPOINT_FILE, TRUSTED_FILE, TrustedPoint};
use super::frame::{self, Decoded, HEADER_LEN};
use super::recovery::OpenReport;
use super::scan::Position;
use super::{check, nodes};
use crate::store::{ChainHead, InstanceLog, SealedRecord, StoreError};
use keyledger_core::merkle::{Frontier, Hash};
use keyledger_core::record::Record;

/// The files of one open log. The lock file is held (flocked) for as long
/// as this value lives.
pub(crate) struct LogFiles {
    pub dir: PathBuf,
    pub _lock: File,
    pub records: File,
    pub index: File,
    pub nodes: File,
}

/// Writer-side state, guarded by the append mutex.
struct WriterState {
    frontier: Frontier,
    end: Position,
    /// Set when a failed append could not be rolled back; appends then
    /// refuse until the log is reopened (which re-runs recovery).
    poisoned: Option<String>,
}

/// An open instance log of the embedded backend.
pub struct EmbeddedLog {
    instance: String,
    files: LogFiles,
    writer: Mutex<WriterState>,
    /// What readers may see: only complete, fsynced batches.
    published: RwLock<Position>,
    /// Serialises checkpoint saves (they do not block appends).
    checkpoint_lock: Mutex<()>,
    report: OpenReport,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl EmbeddedLog {
    pub(crate) fn new(
        instance: String,
        files: LogFiles,
        frontier: Frontier,
        end: Position,
        report: OpenReport,
    ) -> Self {
        EmbeddedLog {
            instance,
            files,
            writer: Mutex::new(WriterState {
                frontier,
                end,
                poisoned: None,
            }),
            published: RwLock::new(end),
            checkpoint_lock: Mutex::new(()),
            report,
        }
    }

    /// What happened when this log was opened (records rescanned, derived
    /// files rebuilt, torn tail discarded).
    pub fn open_report(&self) -> &OpenReport {
        &self.report
    }

    fn published(&self) -> Position {
        *self
            .published
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn index_entry(&self, seq: u64) -> Result<u64, StoreError> {
        let mut b = [0u8; 8];
        self.files.index.read_exact_at(&mut b, seq * 8)?;
        Ok(u64::from_be_bytes(b))
    }

    /// Writes the batch's derived data, then its frames with one write and
    /// one fsync. Nothing is published here.
    fn write_batch(
        &self,
        w: &WriterState,
        frames: &[u8],
        index: &[u8],
        nodes: &[u8],
    ) -> Result<(), StoreError> {
        // Derived data first: it lies beyond the published size, so readers
        // ignore it, and if the log write fails it is simply overwritten.
        self.files.index.write_all_at(index, w.end.size * 8)?;
        let nodes_at = nodes::byte_offset(w.end.size)?;
        self.files.nodes.write_all_at(nodes, nodes_at)?;
        self.files.records.write_all_at(frames, w.end.log_len)?;
        self.files.records.sync_data()?;
        Ok(())
    }
}

impl InstanceLog for EmbeddedLog {
    fn torn_tail(&self) -> Option<crate::store::TornTail> {
        self.report.tail.as_ref().map(|t| crate::store::TornTail {
            discarded_bytes: t.discarded_bytes,
            size: t.first_discarded_seq,
        })
    }

    fn instance(&self) -> &str {
        &self.instance
    }

    fn head(&self) -> ChainHead {
        let p = self.published();
        ChainHead {
            size: p.size,
            link: p.link,
        }
    }

    fn append(&self, batch: &[SealedRecord]) -> Result<(), StoreError> {
        let mut w = lock(&self.writer);
        if let Some(why) = &w.poisoned {
            return Err(StoreError::Backend(format!(
                "log of {:?} refuses appends after a failed rollback ({why}); reopen it",
                self.instance
            )));
        }
        let Some(first) = batch.first() else {
            return Ok(());
        };
        if first.seq() != w.end.size {
            return Err(StoreError::Conflict {
                batch_start: first.seq(),
                size: w.end.size,
            });
        }
        let batch_len = u32::try_from(batch.len()).map_err(|_| StoreError::InvalidRecord {
            seq: first.seq(),
            reason: "batch holds more than u32::MAX records".into(),
        })?;
        let mut frames =
            Vec::with_capacity(batch.iter().map(|s| s.record().frame_len() + 24).sum());
        let mut index = Vec::with_capacity(batch.len() * 8);
        let mut nodes = Vec::with_capacity(batch.len() * 64 + 32 * 64);
        let mut frontier = w.frontier.clone();
        let mut end = w.end;
        for (i, sealed) in (0..batch_len).zip(batch) {
            let seq = end.size;
            if sealed.seq() != seq {
                return Err(StoreError::NonContiguous { seq });
            }
            check::sealed(sealed, seq, &end.link)?;
            index.extend_from_slice(&end.log_len.to_be_bytes());
            let before = frames.len();
            frame::encode(seq, i, batch_len, sealed.record(), &mut frames);
            for node in frontier.push(*sealed.leaf()) {
                nodes.extend_from_slice(&node.hash);
            }
            end = Position {
                size: seq + 1,
                log_len: end.log_len + (frames.len() - before) as u64,
                link: *sealed.link(),
            };
        }
        if let Err(e) = self.write_batch(&w, &frames, &index, &nodes) {
            // Take back whatever reached the log so the batch can never
            // reappear; if even that fails, stop accepting appends.
            let old = w.end.log_len;
            let rolled_back = self
                .files
                .records
                .set_len(old)
                .and_then(|()| self.files.records.sync_all());
            if let Err(rollback) = rolled_back {
                w.poisoned = Some(format!("append failed: {e}; rollback failed: {rollback}"));
            }
            return Err(e);
        }
        w.frontier = frontier;
        w.end = end;
        *self
            .published
            .write()
            .unwrap_or_else(PoisonError::into_inner) = end;
        Ok(())
    }

    fn read(&self, start: u64, end: u64) -> Result<Vec<Record>, StoreError> {
        let p = self.published();
        if start > end || end > p.size {
            return Err(StoreError::OutOfRange {
                start,
                end,
                size: p.size,
            });
        }
        if start == end {
            return Ok(Vec::new());
        }
        let from = self.index_entry(start)?;
        let to = if end == p.size {
            p.log_len
        } else {
            self.index_entry(end)?
        };
        if from < HEADER_LEN || from >= to || to > p.log_len {
            return Err(StoreError::Corrupt {
                seq: start,
                reason: "offset index is inconsistent with the record log".into(),
            });
        }
        let len = usize::try_from(to - from)
            .map_err(|_| StoreError::Backend("read range does not fit in memory".into()))?;
        let mut buf = vec![0u8; len];
        self.files.records.read_exact_at(&mut buf, from)?;
        let mut out = Vec::with_capacity(usize::try_from(end - start).unwrap_or(0));
        let mut pos = 0usize;
        for seq in start..end {
            match frame::decode(&buf[pos..]) {
                Decoded::Frame(head, record, used) if head.seq == seq => {
                    out.push(record);
                    pos += used;
                }
                Decoded::Frame(head, _, _) => {
                    return Err(StoreError::Corrupt {
                        seq,
                        reason: format!("frame carries seq {}", head.seq),
                    });
                }
                Decoded::Truncated => {
                    return Err(StoreError::Corrupt {
                        seq,
                        reason: "frame runs past the indexed range".into(),
                    });
                }
                Decoded::Bad(reason) => {
                    return Err(StoreError::Corrupt {
                        seq,
                        reason: reason.into(),
                    });
                }
            }
        }
        if pos != buf.len() {
            return Err(StoreError::Corrupt {
                seq: end - 1,
                reason: "offset index is inconsistent with the record log".into(),
            });
        }
        Ok(out)
    }

    fn node(&self, level: u8, index: u64) -> Result<Hash, StoreError> {
        let size = self.published().size;
        let span_end = (u128::from(index) + 1).checked_shl(u32::from(level));
        let fits = level < 64 && span_end.is_some_and(|e| e <= u128::from(size));
        if !fits {
            let clamp = |v: u128| u64::try_from(v).unwrap_or(u64::MAX);
            let start = u128::from(index)
                .checked_shl(u32::from(level))
                .unwrap_or(u128::MAX);
            return Err(StoreError::OutOfRange {
                start: clamp(start),
                end: clamp(span_end.unwrap_or(u128::MAX)),
                size,
            });
        }
        let at = nodes::node_offset(level, index)?;
        let mut hash = [0u8; 32];
        self.files.nodes.read_exact_at(&mut hash, at)?;
        Ok(hash)
    }

    fn save_checkpoint(&self, note: &str) -> Result<(), StoreError> {
        let _saving = lock(&self.checkpoint_lock);
        // Snapshot a batch boundary; its derived data is already written
        // (to the page cache), so the fsyncs below cover it.
        let (end, root) = {
            let w = lock(&self.writer);
            (w.end, w.frontier.root())
        };
        self.files.index.sync_data()?;
        self.files.nodes.sync_data()?;
        let trusted = TrustedPoint {
            size: end.size,
            log_len: end.log_len,
            root,
            link: end.link,
        };
        files::write_atomic(&self.files.dir, TRUSTED_FILE, &trusted.encode())?;
        files::write_atomic(&self.files.dir, CHECKPOINT_FILE, note.as_bytes())?;
        Ok(())
    }

    fn latest_checkpoint(&self) -> Result<Option<String>, StoreError> {
        match files::read_optional(&self.files.dir.join(CHECKPOINT_FILE))? {
            None => Ok(None),
            Some(bytes) => String::from_utf8(bytes).map(Some).map_err(|_| {
                StoreError::Backend(format!(
                    "checkpoint note of {:?} is not UTF-8",
                    self.instance
                ))
            }),
        }
    }
}
