//! Record framing and event parsing on arbitrary bytes.
//!
//! The input is a `records.bin`-like stream. It is decoded twice, with
//! `Record::decode_frame` in a loop and with `FrameReader` (over a slice and
//! over a reader that hands out a few bytes per call, with spurious
//! `Interrupted` errors); both must agree record for record and on where and
//! why the stream stops. Every decoded frame must re-encode to exactly the
//! bytes it was decoded from. Every event goes through `Envelope::parse`
//! and, when it parses, through the payload checks the verifier runs.
#![no_main]

use std::io::{self, Read};

use keyledger::event::{self, Envelope, InstanceCreated, LedgerKeyRotated};
use keyledger::record::{
    FRAME_OVERHEAD, FrameError, FrameReader, MAX_EVENT_BYTES, ReadError, Record, SIGNATURE_LEN,
};
use libfuzzer_sys::fuzz_target;

/// A reader that returns at most a few bytes per call (sizes taken from the
/// input itself) and sometimes fails with `Interrupted`, which
/// `FrameReader` must retry.
struct Trickle<'a> {
    data: &'a [u8],
    pos: usize,
    calls: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.calls += 1;
        let salt = self.data.get(self.calls % self.data.len().max(1)).copied();
        let salt = usize::from(salt.unwrap_or(0));
        if salt % 7 == 3 && self.calls.is_multiple_of(2) {
            return Err(io::Error::from(io::ErrorKind::Interrupted));
        }
        let want = 1 + salt % 97;
        let n = want.min(buf.len()).min(self.data.len() - self.pos);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// The outcome of reading a whole stream: the records, then the clean end
/// (`None`) or the frame error and the byte offset of the bad frame.
type Outcome = (Vec<Record>, Option<(u64, FrameError)>);

fn decode_all(data: &[u8]) -> Outcome {
    let mut records = Vec::new();
    let mut at = 0usize;
    while at < data.len() {
        match Record::decode_frame(&data[at..]) {
            Ok((record, used)) => {
                // The frame is exactly what re-encoding the record gives.
                assert_eq!(used, record.frame_len());
                assert!(used > FRAME_OVERHEAD && used <= FRAME_OVERHEAD + MAX_EVENT_BYTES);
                let mut again = Vec::new();
                record.encode_frame(&mut again);
                assert_eq!(again, &data[at..at + used], "re-encoded frame differs");
                assert_eq!(record.entry().len(), record.event.len() + SIGNATURE_LEN);
                records.push(record);
                at += used;
            }
            Err(e) => {
                if let FrameError::Truncated { needed } = e {
                    assert!(needed > 0, "truncated frame needs no bytes");
                }
                return (records, Some((at as u64, e)));
            }
        }
    }
    (records, None)
}

fn read_all<R: Read>(reader: R) -> Outcome {
    let mut reader = FrameReader::new(reader);
    let mut records = Vec::new();
    loop {
        let before = reader.offset();
        match reader.next_record() {
            Ok(Some(record)) => {
                assert_eq!(reader.offset(), before + record.frame_len() as u64);
                records.push(record);
            }
            Ok(None) => return (records, None),
            Err(ReadError::Frame { offset, source }) => {
                assert_eq!(offset, before);
                return (records, Some((offset, source)));
            }
            Err(ReadError::Io(e)) => panic!("in-memory read failed: {e}"),
        }
    }
}

fn parse_event(record: &Record) {
    // The verifier hashes every record, parsed or not.
    let _ = record.link();
    let _ = record.leaf_hash();
    let Ok(envelope) = Envelope::parse(&record.event) else {
        return;
    };
    // Whatever parses strictly is one JSON value with nothing after it.
    assert!(serde_json::from_slice::<serde_json::Value>(&record.event).is_ok());
    let _ = envelope.payload_as::<InstanceCreated>();
    let _ = envelope.payload_as::<LedgerKeyRotated>();
    let _ = event::check_payload(
        &envelope.event_type,
        envelope.type_version,
        envelope.payload.get(),
    );
    let _ = keyledger::chain::from_hex(&envelope.prev);
}

fuzz_target!(|data: &[u8]| {
    let decoded = decode_all(data);
    let from_slice = read_all(data);
    assert_eq!(decoded, from_slice, "decode_frame and FrameReader disagree");
    let trickled = read_all(Trickle {
        data,
        pos: 0,
        calls: 0,
    });
    assert_eq!(decoded, trickled, "FrameReader depends on read sizes");
    for record in &decoded.0 {
        parse_event(record);
    }
    // The raw input as one event, too (the envelope parser on arbitrary bytes).
    if let Ok(envelope) = Envelope::parse(data) {
        let _ = event::check_payload(
            &envelope.event_type,
            envelope.type_version,
            envelope.payload.get(),
        );
    }
});
