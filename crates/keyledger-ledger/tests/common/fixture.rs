//! Reading an exported bundle back.

use std::path::Path;

use keyledger_core::record::{FrameReader, Record};

/// All records of a bundle, in file order.
pub fn read_records(bundle: &Path) -> Vec<Record> {
    let bytes = std::fs::read(bundle.join("records.bin")).expect("records");
    let mut reader = FrameReader::new(&bytes[..]);
    let mut out = Vec::new();
    while let Some(r) = reader.next_record().expect("frame") {
        out.push(r);
    }
    out
}
