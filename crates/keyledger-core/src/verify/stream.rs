//! Feeds a record stream through a [`SequenceVerifier`] chunk by chunk.
//!
//! One loop, [`drive`], serves both builds. Each step checks chunk k+1
//! (parse, hashes, signatures: [`checks::check_chunk`]) while the ordered
//! checks of chunk k run, with the candidate keys as they were before chunk
//! k was applied. With the `parallel` feature the two halves of a step run
//! on rayon's pool and a reader thread frames the next chunks ahead of
//! them; without it they run one after the other in the caller's thread.
//! The chunks, the key snapshots and the order of the ordered checks are
//! the same either way, so the report is too.

use std::io::{BufReader, Read};

use super::checks::{self, Checked};
use super::{CHUNK, SequenceVerifier};
use crate::record::{FrameReader, ReadError, Record};

/// How the stream ended: `Ok(None)` at a clean end, `Ok(Some(reason))` at a
/// framing error, `Err` when reading failed.
pub(super) type End = Result<Option<String>, std::io::Error>;

/// One step's input.
pub(super) enum Chunk {
    /// Up to [`CHUNK`] records and the byte offset after them.
    Records(Vec<Record>, u64),
    /// End of input.
    End(End),
}

/// Frames records from a reader into chunks of [`CHUNK`].
struct Chunker<R: Read> {
    reader: FrameReader<BufReader<R>>,
    /// Set once input ended, returned after the last partial chunk.
    end: Option<End>,
}

impl<R: Read> Chunker<R> {
    fn new(records: R) -> Self {
        Chunker {
            reader: FrameReader::new(BufReader::with_capacity(1 << 20, records)),
            end: None,
        }
    }

    /// The next chunk: full ones, then the partial last one, then `End`.
    fn next_chunk(&mut self) -> Chunk {
        if let Some(end) = self.end.take() {
            return Chunk::End(end);
        }
        let mut chunk = Vec::with_capacity(CHUNK);
        let end = loop {
            match self.reader.next_record() {
                Ok(Some(record)) => {
                    chunk.push(record);
                    if chunk.len() == CHUNK {
                        return Chunk::Records(chunk, self.reader.offset());
                    }
                }
                Ok(None) => break Ok(None),
                Err(ReadError::Frame { source, .. }) => break Ok(Some(source.to_string())),
                Err(ReadError::Io(e)) => break Err(e),
            }
        };
        if chunk.is_empty() {
            Chunk::End(end)
        } else {
            self.end = Some(end);
            Chunk::Records(chunk, self.reader.offset())
        }
    }
}

/// Runs `verifier` over the record frames of `records`; the caller turns
/// the end into a failure or an error.
#[cfg(feature = "parallel")]
pub(super) fn run<R: Read + Send>(
    verifier: &mut SequenceVerifier,
    records: R,
    progress: &dyn Fn(u64),
) -> End {
    // Two chunks in flight between the reader and the checks.
    let (chunks, incoming) = crossbeam_channel::bounded::<Chunk>(2);
    std::thread::scope(|scope| {
        let reader = std::thread::Builder::new()
            .name("verify-reader".into())
            .spawn_scoped(scope, move || {
                let mut chunker = Chunker::new(records);
                loop {
                    let chunk = chunker.next_chunk();
                    let last = matches!(chunk, Chunk::End(_));
                    if chunks.send(chunk).is_err() || last {
                        return;
                    }
                }
            })?;
        let end = drive(
            verifier,
            || incoming.recv().unwrap_or(Chunk::End(Ok(None))),
            progress,
        );
        // Unblocks a reader still sending after an early failure.
        drop(incoming);
        let _ = reader.join();
        end
    })
}

/// Runs `verifier` over the record frames of `records`; the caller turns
/// the end into a failure or an error.
#[cfg(not(feature = "parallel"))]
pub(super) fn run<R: Read + Send>(
    verifier: &mut SequenceVerifier,
    records: R,
    progress: &dyn Fn(u64),
) -> End {
    let mut chunker = Chunker::new(records);
    drive(verifier, || chunker.next_chunk(), progress)
}

#[cfg(feature = "parallel")]
use rayon::join;

/// Runs both halves of a step, one after the other.
#[cfg(not(feature = "parallel"))]
fn join<A, B>(a: impl FnOnce() -> A, b: impl FnOnce() -> B) -> (A, B) {
    let a = a();
    (a, b())
}

/// The pipeline: checks the chunk `next` returns while applying the one
/// before it, until the input ends or the verifier finds a failure.
fn drive(
    verifier: &mut SequenceVerifier,
    mut next: impl FnMut() -> Chunk,
    progress: &dyn Fn(u64),
) -> End {
    let mut pending: Option<Vec<Checked>> = None;
    let mut end: Option<End> = None;
    while end.is_none() && !verifier.failed() {
        let (records, offset) = match next() {
            Chunk::Records(records, offset) => (records, Some(offset)),
            Chunk::End(result) => {
                end = Some(result);
                (Vec::new(), None)
            }
        };
        let candidates = verifier.candidates();
        let previous = pending.take();
        let (checked, ()) = join(
            || checks::check_chunk(records, &candidates),
            || {
                if let Some(previous) = previous {
                    verifier.apply_checked(previous);
                }
            },
        );
        pending = Some(checked);
        if let Some(offset) = offset {
            progress(offset);
        }
    }
    if let Some(last) = pending.take() {
        verifier.apply_checked(last);
    }
    end.unwrap_or(Ok(None))
}
