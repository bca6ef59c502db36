//! Opening a log: trust the derived files up to the last trusted point if
//! they check out, rescan the record log after it, rebuild what is derived,
//! and cut away a torn tail (never anything acknowledged).

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::files::{self, TORN_DIR, TRUSTED_FILE, TrustedPoint};
use super::frame::{self, Decoded, HEADER_LEN, MAX_FRAME};
use super::log::LogFiles;
use super::nodes;
use super::scan::{self, Position, ScanEnd, Scanned, Window};
use crate::store::StoreError;
use keyledger_core::chain::GENESIS_PREV;
use keyledger_core::merkle::Frontier;

/// Flush rebuilt derived data to disk in pieces of about this size.
const FLUSH_BYTES: usize = 1 << 20;
/// At most this much of a discarded tail is kept as a copy in `log/torn/`.
const MAX_TORN_COPY: u64 = 16 << 20;

/// A torn tail that was cut away when the log was opened. Those bytes were
/// never acknowledged: no `append` covering them returned `Ok`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TailRecovery {
    /// Bytes removed from the end of the record log.
    pub discarded_bytes: u64,
    /// Seq the next append gets (the first seq of the discarded batch).
    pub first_discarded_seq: u64,
    /// Complete, valid frames discarded because their batch was unfinished.
    pub discarded_complete_records: u64,
    /// Why the tail was judged torn.
    pub reason: String,
    /// Copy of (the first 16 MiB of) the discarded bytes, for forensics.
    pub saved_copy: Option<PathBuf>,
}

/// What opening a log did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenReport {
    /// Size up to which the derived files were trusted without rescanning.
    pub trusted_size: u64,
    /// Records read back from the record log and re-derived.
    pub rescanned_records: u64,
    /// The torn tail cut away, if any.
    pub tail: Option<TailRecovery>,
}

/// A recovered log, ready to append at `end`.
pub(crate) struct Recovered {
    pub frontier: Frontier,
    pub end: Position,
    pub report: OpenReport,
}

fn empty_position() -> Position {
    Position {
        size: 0,
        log_len: HEADER_LEN,
        link: GENESIS_PREV,
    }
}

/// Recovers the log in `files` (which the caller has locked).
pub(crate) fn recover(files: &LogFiles) -> Result<Recovered, StoreError> {
    let file_len = files.records.metadata()?.len();
    check_header(&files.records, file_len)?;
    let trusted = files::read_optional(&files.dir.join(TRUSTED_FILE))?
        .and_then(|bytes| TrustedPoint::decode(&bytes));
    let fast = match &trusted {
        Some(t) => trusted_start(files, t, file_len)?,
        None => None,
    };
    // Without usable derived data, rescan everything; a trusted point that
    // still parses then bounds what the log must at least contain.
    let (start, frontier, bound) = match fast {
        Some((pos, frontier)) => (pos, frontier, None),
        None => (
            empty_position(),
            Frontier::new(),
            trusted.filter(|t| t.size > 0),
        ),
    };
    let mut rebuild = Rebuild::new(files, frontier, start.size, bound)?;
    let mut window = Window::new(&files.records, file_len);
    let end = scan::scan(&mut window, start, |records, pos| {
        rebuild.batch(records, pos)
    })?;
    rebuild.flush()?;

    if let Some(bad) = &end.bad
        && let Some(later) = scan::later_batch_after(&mut window, bad, end.committed.size)?
    {
        return Err(StoreError::Corrupt {
            seq: bad.seq,
            reason: format!(
                "{} at byte {}, yet record {later} of a later batch follows",
                bad.reason, bad.offset
            ),
        });
    }
    if let Some(t) = bound
        && !rebuild.bound_ok
    {
        return Err(StoreError::Corrupt {
            seq: end.committed.size,
            reason: format!(
                "the record log holds {} complete records but {} were acknowledged",
                end.committed.size, t.size
            ),
        });
    }
    let tail = if end.bad.is_some() || end.open_records > 0 {
        Some(cut_tail(files, &end, file_len)?)
    } else {
        None
    };
    let Rebuild { frontier, .. } = rebuild;
    let committed = end.committed;
    files.index.set_len(committed.size * 8)?;
    files.nodes.set_len(nodes::byte_offset(committed.size)?)?;
    let rescanned = committed.size - start.size;
    if rescanned > 0 || tail.is_some() || trusted.is_some_and(|t| t.size != start.size) {
        files.index.sync_all()?;
        files.nodes.sync_all()?;
        let point = TrustedPoint {
            size: committed.size,
            log_len: committed.log_len,
            root: frontier.root(),
            link: committed.link,
        };
        files::write_atomic(&files.dir, TRUSTED_FILE, &point.encode())?;
    }
    Ok(Recovered {
        frontier,
        end: committed,
        report: OpenReport {
            trusted_size: start.size,
            rescanned_records: rescanned,
            tail,
        },
    })
}

fn check_header(records: &File, file_len: u64) -> Result<(), StoreError> {
    let mut head = [0u8; HEADER_LEN as usize];
    if file_len < HEADER_LEN {
        return Err(header_error());
    }
    records.read_exact_at(&mut head, 0)?;
    if head != frame::header() {
        return Err(header_error());
    }
    Ok(())
}

fn header_error() -> StoreError {
    StoreError::Corrupt {
        seq: 0,
        reason: "record log header is missing or of an unknown format".into(),
    }
}

/// Validates the trusted point against the files: the log reaches it, the
/// last indexed frame before it is the expected record ending exactly there,
/// and the stored frontier nodes give its root. `None` if anything is off.
fn trusted_start(
    files: &LogFiles,
    t: &TrustedPoint,
    file_len: u64,
) -> Result<Option<(Position, Frontier)>, StoreError> {
    if t.log_len < HEADER_LEN || t.log_len > file_len {
        return Ok(None);
    }
    let pos = Position {
        size: t.size,
        log_len: t.log_len,
        link: t.link,
    };
    if t.size == 0 {
        let ok =
            t.log_len == HEADER_LEN && t.link == GENESIS_PREV && t.root == Frontier::new().root();
        return Ok(ok.then(|| (pos, Frontier::new())));
    }
    let Some(index_need) = t.size.checked_mul(8) else {
        return Ok(None);
    };
    if files.index.metadata()?.len() < index_need {
        return Ok(None);
    }
    let mut b = [0u8; 8];
    files.index.read_exact_at(&mut b, index_need - 8)?;
    let off = u64::from_be_bytes(b);
    if off < HEADER_LEN || off >= t.log_len {
        return Ok(None);
    }
    let len = (t.log_len - off).min(MAX_FRAME as u64) as usize;
    let mut buf = vec![0u8; len];
    files.records.read_exact_at(&mut buf, off)?;
    let last_ok = match frame::decode(&buf) {
        Decoded::Frame(head, record, used) => {
            head.seq == t.size - 1
                && head.ends_batch()
                && off + used as u64 == t.log_len
                && record.link() == t.link
        }
        Decoded::Truncated | Decoded::Bad(_) => false,
    };
    if !last_ok {
        return Ok(None);
    }
    match nodes::load_frontier(&files.nodes, t.size)? {
        Some(frontier) if frontier.root() == t.root => Ok(Some((pos, frontier))),
        _ => Ok(None),
    }
}

/// Re-derives the index and nodes of rescanned batches.
struct Rebuild<'a> {
    files: &'a LogFiles,
    frontier: Frontier,
    index_buf: Vec<u8>,
    index_at: u64,
    nodes_buf: Vec<u8>,
    nodes_at: u64,
    /// A trusted point the rescan must pass through exactly.
    bound: Option<TrustedPoint>,
    bound_ok: bool,
}

impl<'a> Rebuild<'a> {
    fn new(
        files: &'a LogFiles,
        frontier: Frontier,
        size: u64,
        bound: Option<TrustedPoint>,
    ) -> Result<Self, StoreError> {
        Ok(Rebuild {
            files,
            frontier,
            index_buf: Vec::new(),
            index_at: size * 8,
            nodes_buf: Vec::new(),
            nodes_at: nodes::byte_offset(size)?,
            bound,
            bound_ok: false,
        })
    }

    fn batch(&mut self, records: &[Scanned], end: &Position) -> Result<(), StoreError> {
        for (offset, leaf) in records {
            self.index_buf.extend_from_slice(&offset.to_be_bytes());
            let nodes_buf = &mut self.nodes_buf;
            self.frontier
                .push_with(*leaf, |node| nodes_buf.extend_from_slice(&node.hash))
                .map_err(|e| StoreError::Corrupt {
                    seq: end.size,
                    reason: e.to_string(),
                })?;
        }
        if let Some(t) = self.bound
            && !self.bound_ok
            && end.size >= t.size
        {
            if end.size == t.size && end.link == t.link && self.frontier.root() == t.root {
                self.bound_ok = true;
            } else {
                return Err(StoreError::Corrupt {
                    seq: t.size - 1,
                    reason: "the record log disagrees with the last trusted point (link or root)"
                        .into(),
                });
            }
        }
        if self.index_buf.len() + self.nodes_buf.len() >= FLUSH_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        self.files
            .index
            .write_all_at(&self.index_buf, self.index_at)?;
        self.index_at += self.index_buf.len() as u64;
        self.index_buf.clear();
        self.files
            .nodes
            .write_all_at(&self.nodes_buf, self.nodes_at)?;
        self.nodes_at += self.nodes_buf.len() as u64;
        self.nodes_buf.clear();
        Ok(())
    }
}

/// Cuts the log back to the end of the last complete batch, keeping a copy
/// of what is removed.
fn cut_tail(files: &LogFiles, end: &ScanEnd, file_len: u64) -> Result<TailRecovery, StoreError> {
    let cut = end.committed.log_len;
    let reason = match &end.bad {
        Some(bad) => format!("{} at byte {} (seq {})", bad.reason, bad.offset, bad.seq),
        None => format!(
            "the last batch is unfinished: {} of its records were written",
            end.open_records
        ),
    };
    let saved_copy = save_torn(
        &files.dir,
        &files.records,
        cut,
        file_len,
        end.committed.size,
    )?;
    files.records.set_len(cut)?;
    files.records.sync_all()?;
    Ok(TailRecovery {
        discarded_bytes: file_len - cut,
        first_discarded_seq: end.committed.size,
        discarded_complete_records: end.open_records,
        reason,
        saved_copy,
    })
}

fn save_torn(
    dir: &Path,
    records: &File,
    from: u64,
    to: u64,
    seq: u64,
) -> Result<Option<PathBuf>, StoreError> {
    let len = (to - from).min(MAX_TORN_COPY) as usize;
    let mut bytes = vec![0u8; len];
    records.read_exact_at(&mut bytes, from)?;
    let torn_dir = dir.join(TORN_DIR);
    crate::data_dir::create_dir_all(&torn_dir)?;
    for n in 0..1000u32 {
        let path = torn_dir.join(format!("seq-{seq}-at-{from}-{n}.bin"));
        let mut file = match files::private().write(true).create_new(true).open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e.into()),
        };
        file.write_all(&bytes)?;
        file.sync_all()?;
        files::sync_dir(&torn_dir)?;
        files::sync_dir(dir)?;
        return Ok(Some(path));
    }
    Ok(None)
}
