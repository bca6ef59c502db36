//! JSON lines: the raw record (instance, seq, chain link, leaf hash,
//! signature, and the stored event bytes unchanged), so a receiver can
//! recompute the link and leaf hash and check the signature.

use keyledger_core::record::Record;
use serde_json::value::RawValue;

use crate::ExportError;

/// One compact JSON object; `event` is the stored JSON byte for byte.
pub fn render(instance: &str, seq: u64, record: &Record) -> Result<String, ExportError> {
    let malformed = |reason: String| ExportError::Malformed { seq, reason };
    let event = std::str::from_utf8(&record.event).map_err(|e| malformed(e.to_string()))?;
    // The writer stores compact JSON: a raw newline would be outside any
    // string, which RawValue accepts but one line must not hold.
    if event.contains(['\n', '\r']) {
        return Err(malformed("the stored event spans lines".into()));
    }
    let event: &RawValue = serde_json::from_str(event).map_err(|e| malformed(e.to_string()))?;
    let instance = serde_json::to_string(instance).map_err(|e| malformed(e.to_string()))?;
    Ok(format!(
        "{{\"instance\":{instance},\"seq\":{seq},\"link\":\"{}\",\"leaf\":\"{}\",\"signature\":\"{}\",\"event\":{}}}",
        hex::encode(record.link()),
        hex::encode(record.leaf_hash()),
        hex::encode(record.signature),
        event.get()
    ))
}
