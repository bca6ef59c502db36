//! Sequential scan of the record log at open: validates every frame after the
//! trusted point, hands complete batches to the caller, and classifies what
//! stops it (clean end, torn tail, or corruption).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use super::check;
use super::frame::{self, Decoded, FrameHead, MAX_FRAME, MIN_FRAME};
use crate::store::StoreError;
use keyledger_core::chain::Link;
use keyledger_core::merkle::Hash;

/// Bytes read from the log per refill.
const CHUNK: usize = 1 << 20;

/// A point in the log: `size` records ending at byte `log_len`, the last
/// having link `link`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Position {
    pub size: u64,
    pub log_len: u64,
    pub link: Link,
}

/// A buffered, positioned view of a file read with `pread`.
pub(crate) struct Window<'a> {
    file: &'a File,
    file_len: u64,
    buf: Vec<u8>,
    start: u64,
}

impl<'a> Window<'a> {
    pub fn new(file: &'a File, file_len: u64) -> Self {
        Window {
            file,
            file_len,
            buf: Vec::new(),
            start: 0,
        }
    }

    pub fn file_len(&self) -> u64 {
        self.file_len
    }

    /// Bytes `off .. off + want`, cut short at the end of the file.
    pub fn get(&mut self, off: u64, want: usize) -> io::Result<&[u8]> {
        if off >= self.file_len {
            return Ok(&[]);
        }
        let end = off.saturating_add(want as u64).min(self.file_len);
        let have_end = self.start + self.buf.len() as u64;
        if off < self.start || end > have_end {
            let fill_end = off
                .saturating_add(want.max(CHUNK) as u64)
                .min(self.file_len);
            self.buf.resize(to_usize(fill_end - off)?, 0);
            self.file.read_exact_at(&mut self.buf, off)?;
            self.start = off;
        }
        let from = to_usize(off - self.start)?;
        let to = to_usize(end - self.start)?;
        Ok(&self.buf[from..to])
    }
}

fn to_usize(n: u64) -> io::Result<usize> {
    usize::try_from(n).map_err(|_| io::Error::other("length does not fit in memory"))
}

/// The first frame the scan could not read.
#[derive(Debug, Clone)]
pub(crate) struct BadFrame {
    pub offset: u64,
    /// The seq the frame should have carried.
    pub seq: u64,
    pub reason: &'static str,
}

/// Where and why the scan stopped.
#[derive(Debug)]
pub(crate) struct ScanEnd {
    /// End of the last complete batch.
    pub committed: Position,
    /// Complete frames read after `committed` (an unfinished batch).
    pub open_records: u64,
    /// The unreadable frame that stopped the scan, `None` at end of file.
    pub bad: Option<BadFrame>,
}

/// One record of a complete batch: its frame offset and leaf hash.
pub(crate) type Scanned = (u64, Hash);

/// Scans from `from` to the end of the file, calling `batch` for every
/// complete batch in order. A readable frame that breaks the log's rules
/// (wrong seq, broken batch, broken chain) is corruption, not a torn write.
pub(crate) fn scan<F>(
    window: &mut Window<'_>,
    from: Position,
    mut batch: F,
) -> Result<ScanEnd, StoreError>
where
    F: FnMut(&[Scanned], &Position) -> Result<(), StoreError>,
{
    let mut committed = from;
    let mut cur = from;
    let mut pending: Vec<Scanned> = Vec::new();
    // (batch_len, next batch_index) of an unfinished batch.
    let mut open: Option<(u32, u32)> = None;
    let bad = loop {
        if cur.log_len >= window.file_len() {
            break None;
        }
        let seq = cur.size;
        let bytes = window.get(cur.log_len, MAX_FRAME)?;
        let (head, record, used) = match frame::decode(bytes) {
            Decoded::Frame(head, record, used) => (head, record, used),
            Decoded::Truncated => {
                break Some(bad_frame(&cur, "frame is cut short by the end of the file"));
            }
            Decoded::Bad(reason) => break Some(bad_frame(&cur, reason)),
        };
        let corrupt = |reason: String| StoreError::Corrupt { seq, reason };
        if head.seq != seq {
            return Err(corrupt(format!("frame carries seq {}", head.seq)));
        }
        let continues = match open {
            Some((len, next)) => head.batch_len == len && head.batch_index == next,
            None => head.batch_index == 0,
        };
        if !continues {
            return Err(corrupt("frame does not continue its append batch".into()));
        }
        check::chain_fields(&record.event, seq, &cur.link).map_err(corrupt)?;
        pending.push((cur.log_len, record.leaf_hash()));
        cur = Position {
            size: seq + 1,
            log_len: cur.log_len + used as u64,
            link: record.link(),
        };
        if head.ends_batch() {
            batch(&pending, &cur)?;
            pending.clear();
            committed = cur;
            open = None;
        } else {
            open = Some((head.batch_len, head.batch_index + 1));
        }
    };
    Ok(ScanEnd {
        committed,
        open_records: pending.len() as u64,
        bad,
    })
}

fn bad_frame(at: &Position, reason: &'static str) -> BadFrame {
    BadFrame {
        offset: at.log_len,
        seq: at.size,
        reason,
    }
}

/// After an unreadable frame, looks for proof that the damage is not a torn
/// final write: a valid frame (seq at or after the bad one) belonging to a
/// batch other than the unfinished one starting at `torn_batch_start`.
/// Returns that frame's seq.
pub(crate) fn later_batch_after(
    window: &mut Window<'_>,
    bad: &BadFrame,
    torn_batch_start: u64,
) -> io::Result<Option<u64>> {
    let file_len = window.file_len();
    let remaining = file_len.saturating_sub(bad.offset);
    let max_seq = bad
        .seq
        .saturating_add(remaining / MIN_FRAME as u64)
        .saturating_add(1);
    let mut off = bad.offset + 1;
    while off.saturating_add(MIN_FRAME as u64) <= file_len {
        let bytes = window.get(off, MAX_FRAME)?;
        let plausible = FrameHead::parse(bytes).is_ok_and(|h| h.seq >= bad.seq && h.seq <= max_seq);
        if plausible
            && let Decoded::Frame(head, _, _) = frame::decode(bytes)
            && head.batch_start() != torn_batch_start
        {
            return Ok(Some(head.seq));
        }
        off += 1;
    }
    Ok(None)
}
