//! A ledger record (the event bytes plus the ledger key's signature) and its
//! byte framing in stores and bundles.
//!
//! Frame: `u32 big-endian length L || event bytes (L) || signature (64)`.
//! The RFC 9162 Merkle leaf entry of a record is `event bytes || signature`.

use std::io::{self, Read};

use crate::chain::{self, Link};
use crate::merkle::{self, Hash};

/// Largest accepted event, in bytes. Larger events are refused before they
/// reach the writer, and a frame announcing more is malformed.
pub const MAX_EVENT_BYTES: usize = 64 * 1024;

/// Length of an ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;

/// Bytes of framing around the event bytes.
pub const FRAME_OVERHEAD: usize = 4 + SIGNATURE_LEN;

/// One signed record.
#[derive(Clone, PartialEq, Eq)]
pub struct Record {
    /// The JSON event bytes exactly as the writer serialised them.
    pub event: Vec<u8>,
    /// Ed25519 signature over [`chain::signing_message`] of this record's link.
    pub signature: [u8; SIGNATURE_LEN],
}

impl std::fmt::Debug for Record {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Events never hold secrets, but keep Debug short and lossless enough.
        f.debug_struct("Record")
            .field("event", &String::from_utf8_lossy(&self.event))
            .field("signature", &hex::encode(self.signature))
            .finish()
    }
}

/// Why a frame could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    /// The input ends inside the frame.
    #[error("frame truncated: needed {needed} more bytes")]
    Truncated {
        /// Bytes missing to complete the frame.
        needed: usize,
    },
    /// The length prefix exceeds [`MAX_EVENT_BYTES`].
    #[error("frame announces {len} event bytes, more than the {max} allowed")]
    Oversized {
        /// The announced event length.
        len: usize,
        /// [`MAX_EVENT_BYTES`].
        max: usize,
    },
    /// The length prefix is zero.
    #[error("frame announces an empty event")]
    Empty,
}

impl Record {
    /// The chain link of this record.
    pub fn link(&self) -> Link {
        chain::link(&self.event)
    }

    /// The RFC 9162 leaf hash of this record (`SHA-256(0x00 || event || signature)`).
    pub fn leaf_hash(&self) -> Hash {
        merkle::leaf_hash_of_parts(&[&self.event, &self.signature])
    }

    /// The Merkle leaf entry: event bytes followed by the signature.
    pub fn entry(&self) -> Vec<u8> {
        let mut entry = Vec::with_capacity(self.event.len() + SIGNATURE_LEN);
        entry.extend_from_slice(&self.event);
        entry.extend_from_slice(&self.signature);
        entry
    }

    /// Length of this record's frame.
    pub fn frame_len(&self) -> usize {
        FRAME_OVERHEAD + self.event.len()
    }

    /// Appends this record's frame to `out`.
    pub fn encode_frame(&self, out: &mut Vec<u8>) {
        // Event length is bounded by MAX_EVENT_BYTES at construction sites.
        let len = u32::try_from(self.event.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&self.event);
        out.extend_from_slice(&self.signature);
    }

    /// Decodes one frame from the front of `bytes`, returning the record and
    /// the number of bytes consumed.
    pub fn decode_frame(bytes: &[u8]) -> Result<(Record, usize), FrameError> {
        let len = match bytes.get(..4) {
            Some(head) => u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize,
            None => {
                return Err(FrameError::Truncated {
                    needed: 4 - bytes.len(),
                });
            }
        };
        check_len(len)?;
        let total = FRAME_OVERHEAD + len;
        if bytes.len() < total {
            return Err(FrameError::Truncated {
                needed: total - bytes.len(),
            });
        }
        let event = bytes[4..4 + len].to_vec();
        let mut signature = [0u8; SIGNATURE_LEN];
        signature.copy_from_slice(&bytes[4 + len..total]);
        Ok((Record { event, signature }, total))
    }
}

fn check_len(len: usize) -> Result<(), FrameError> {
    if len == 0 {
        return Err(FrameError::Empty);
    }
    if len > MAX_EVENT_BYTES {
        return Err(FrameError::Oversized {
            len,
            max: MAX_EVENT_BYTES,
        });
    }
    Ok(())
}

/// Reads frames one at a time from a byte stream (flat memory).
pub struct FrameReader<R> {
    inner: R,
    offset: u64,
}

/// An error while streaming frames.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// A frame is malformed.
    #[error("bad frame at byte offset {offset}: {source}")]
    Frame {
        /// Byte offset of the malformed frame in the stream.
        offset: u64,
        /// What is wrong with it.
        source: FrameError,
    },
    /// The underlying reader failed.
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
}

impl<R: Read> FrameReader<R> {
    /// Reads frames from `inner`, starting at offset 0.
    pub fn new(inner: R) -> Self {
        FrameReader { inner, offset: 0 }
    }

    /// Byte offset of the next frame.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The next record, `Ok(None)` at a clean end of stream.
    pub fn next_record(&mut self) -> Result<Option<Record>, ReadError> {
        let mut head = [0u8; 4];
        let got = read_up_to(&mut self.inner, &mut head)?;
        if got == 0 {
            return Ok(None);
        }
        let frame_err = |source| ReadError::Frame {
            offset: self.offset,
            source,
        };
        if got < 4 {
            return Err(frame_err(FrameError::Truncated { needed: 4 - got }));
        }
        let len = u32::from_be_bytes(head) as usize;
        check_len(len).map_err(frame_err)?;
        let mut event = vec![0u8; len];
        let got = read_up_to(&mut self.inner, &mut event)?;
        if got < len {
            return Err(frame_err(FrameError::Truncated {
                needed: len - got + SIGNATURE_LEN,
            }));
        }
        let mut signature = [0u8; SIGNATURE_LEN];
        let got = read_up_to(&mut self.inner, &mut signature)?;
        if got < SIGNATURE_LEN {
            return Err(frame_err(FrameError::Truncated {
                needed: SIGNATURE_LEN - got,
            }));
        }
        self.offset += (FRAME_OVERHEAD + len) as u64;
        Ok(Some(Record { event, signature }))
    }
}

fn read_up_to<R: Read>(reader: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Record {
        Record {
            event: br#"{"a":1}"#.to_vec(),
            signature: [9u8; 64],
        }
    }

    #[test]
    fn frame_round_trip() {
        let mut buf = Vec::new();
        sample().encode_frame(&mut buf);
        sample().encode_frame(&mut buf);
        let (r, used) = Record::decode_frame(&buf).expect("decode");
        assert_eq!(r, sample());
        assert_eq!(used, sample().frame_len());
        let mut reader = FrameReader::new(&buf[..]);
        assert_eq!(reader.next_record().expect("1"), Some(sample()));
        assert_eq!(reader.next_record().expect("2"), Some(sample()));
        assert_eq!(reader.next_record().expect("end"), None);
    }

    #[test]
    fn truncated_and_oversized_frames_are_refused() {
        let mut buf = Vec::new();
        sample().encode_frame(&mut buf);
        for cut in 1..buf.len() {
            assert!(matches!(
                Record::decode_frame(&buf[..cut]),
                Err(FrameError::Truncated { .. })
            ));
            let mut reader = FrameReader::new(&buf[..cut]);
            assert!(reader.next_record().is_err());
        }
        let huge = ((MAX_EVENT_BYTES + 1) as u32).to_be_bytes();
        assert!(matches!(
            Record::decode_frame(&huge),
            Err(FrameError::Oversized { .. })
        ));
        assert_eq!(Record::decode_frame(&[0, 0, 0, 0]), Err(FrameError::Empty));
    }
}
