//! Byte layout of the record log: a 16-byte file header followed by store
//! frames. See `docs/STORE-EMBEDDED.md` for the normative description.
//!
//! Store frame (all integers big-endian):
//!
//! ```text
//! offset   size  field
//! 0        8     seq            u64, the record's sequence number
//! 8        4     batch_index    u32, position of the record in its append batch
//! 12       4     batch_len      u32, number of records in that batch (> batch_index)
//! 16       4+L+64 record frame  `u32 L || event (L bytes) || signature (64)` (record.rs)
//! 84+L     4     crc32          CRC-32 (IEEE) of bytes 0 .. 84+L
//! ```

use keyledger_core::record::{MAX_EVENT_BYTES, Record, SIGNATURE_LEN};

/// First 8 bytes of every record log.
pub(crate) const LOG_MAGIC: [u8; 8] = *b"KLRECLOG";
/// Format version stored after the magic.
pub(crate) const LOG_VERSION: u32 = 1;
/// Length of the record log header: magic, version, 4 reserved zero bytes.
pub(crate) const HEADER_LEN: u64 = 16;

/// Bytes before the event: seq, batch_index, batch_len, event length.
pub(crate) const FRAME_PREFIX: usize = 8 + 4 + 4 + 4;
/// Bytes after the event: signature and CRC.
pub(crate) const FRAME_SUFFIX: usize = SIGNATURE_LEN + 4;
/// Smallest possible store frame (one-byte event).
pub(crate) const MIN_FRAME: usize = FRAME_PREFIX + 1 + FRAME_SUFFIX;
/// Largest possible store frame.
pub(crate) const MAX_FRAME: usize = FRAME_PREFIX + MAX_EVENT_BYTES + FRAME_SUFFIX;

/// The record log header.
pub(crate) fn header() -> [u8; HEADER_LEN as usize] {
    let mut h = [0u8; HEADER_LEN as usize];
    h[..8].copy_from_slice(&LOG_MAGIC);
    h[8..12].copy_from_slice(&LOG_VERSION.to_be_bytes());
    h
}

/// The fixed-size fields in front of a frame's event bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FrameHead {
    pub seq: u64,
    pub batch_index: u32,
    pub batch_len: u32,
    pub event_len: usize,
}

impl FrameHead {
    /// Parses and sanity-checks the 20-byte prefix of a frame.
    pub fn parse(prefix: &[u8]) -> Result<FrameHead, &'static str> {
        let Some(p) = prefix.get(..FRAME_PREFIX) else {
            return Err("frame header truncated");
        };
        let seq = u64::from_be_bytes([p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7]]);
        let batch_index = u32::from_be_bytes([p[8], p[9], p[10], p[11]]);
        let batch_len = u32::from_be_bytes([p[12], p[13], p[14], p[15]]);
        let event_len = u32::from_be_bytes([p[16], p[17], p[18], p[19]]) as usize;
        if event_len == 0 {
            return Err("frame announces an empty event");
        }
        if event_len > MAX_EVENT_BYTES {
            return Err("frame announces an oversized event");
        }
        if batch_index >= batch_len {
            return Err("frame batch position is outside its batch");
        }
        if u64::from(batch_index) > seq {
            return Err("frame batch starts before seq 0");
        }
        Ok(FrameHead {
            seq,
            batch_index,
            batch_len,
            event_len,
        })
    }

    /// Total length of the frame this head starts.
    pub fn frame_len(&self) -> usize {
        FRAME_PREFIX + self.event_len + FRAME_SUFFIX
    }

    /// Seq of the first record of this frame's batch.
    pub fn batch_start(&self) -> u64 {
        self.seq - u64::from(self.batch_index)
    }

    /// Whether this frame is the last of its batch.
    pub fn ends_batch(&self) -> bool {
        self.batch_index + 1 == self.batch_len
    }
}

/// Outcome of decoding a frame from the front of a byte slice.
#[derive(Debug)]
pub(crate) enum Decoded {
    /// A complete frame with a valid CRC, and its length in bytes.
    Frame(FrameHead, Record, usize),
    /// The slice ends before the frame does.
    Truncated,
    /// The bytes are not a valid frame.
    Bad(&'static str),
}

/// Decodes the store frame at the front of `bytes`.
pub(crate) fn decode(bytes: &[u8]) -> Decoded {
    if bytes.len() < FRAME_PREFIX {
        return Decoded::Truncated;
    }
    let head = match FrameHead::parse(bytes) {
        Ok(head) => head,
        Err(reason) => return Decoded::Bad(reason),
    };
    let total = head.frame_len();
    let Some(frame) = bytes.get(..total) else {
        return Decoded::Truncated;
    };
    let (body, crc) = frame.split_at(total - 4);
    if crc32fast::hash(body).to_be_bytes() != crc {
        return Decoded::Bad("frame checksum mismatch");
    }
    match Record::decode_frame(&body[16..]) {
        Ok((record, used)) if used == body.len() - 16 => Decoded::Frame(head, record, total),
        Ok(_) | Err(_) => Decoded::Bad("record frame inside the store frame is malformed"),
    }
}

/// Appends the store frame of `record` to `out`. The caller has checked that
/// the event is 1..=MAX_EVENT_BYTES long and that `batch_index < batch_len`.
pub(crate) fn encode(
    seq: u64,
    batch_index: u32,
    batch_len: u32,
    record: &Record,
    out: &mut Vec<u8>,
) {
    let start = out.len();
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&batch_index.to_be_bytes());
    out.extend_from_slice(&batch_len.to_be_bytes());
    record.encode_frame(out);
    let crc = crc32fast::hash(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(n: usize) -> Record {
        Record {
            event: vec![b'x'; n],
            signature: [7; SIGNATURE_LEN],
        }
    }

    #[test]
    fn round_trip_and_every_cut_is_truncated() {
        let mut buf = Vec::new();
        encode(5, 1, 3, &record(10), &mut buf);
        assert_eq!(buf.len(), FRAME_PREFIX + 10 + FRAME_SUFFIX);
        match decode(&buf) {
            Decoded::Frame(head, rec, used) => {
                assert_eq!(used, buf.len());
                assert_eq!(rec, record(10));
                assert_eq!(head.seq, 5);
                assert_eq!(head.batch_start(), 4);
                assert!(!head.ends_batch());
            }
            other => panic!("unexpected {other:?}"),
        }
        for cut in 0..buf.len() {
            assert!(
                matches!(decode(&buf[..cut]), Decoded::Truncated),
                "cut {cut}"
            );
        }
    }

    #[test]
    fn flipped_bits_and_zeros_are_bad() {
        let mut buf = Vec::new();
        encode(0, 0, 1, &record(3), &mut buf);
        for i in 0..buf.len() {
            let mut b = buf.clone();
            b[i] ^= 0x10;
            assert!(!matches!(decode(&b), Decoded::Frame(..)), "flip at {i}");
        }
        assert!(matches!(decode(&[0u8; 200]), Decoded::Bad(_)));
    }
}
