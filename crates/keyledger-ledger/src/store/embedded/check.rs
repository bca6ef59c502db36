//! Record checks shared by `append` and recovery, so that the store never
//! accepts a record that it would refuse when it rescans the log at open.

use serde::Deserialize;

use crate::store::{SealedRecord, StoreError};
use keyledger_core::chain::{self, Link};
use keyledger_core::record::{MAX_EVENT_BYTES, Record};

/// The two envelope fields the store relies on. Other fields are ignored:
/// the store does not interpret events beyond their place in the chain.
#[derive(Deserialize)]
struct ChainFields {
    seq: u64,
    prev: String,
}

/// Checks that `event` is a JSON object whose `seq` is `seq` and whose
/// `prev` is the hex of `prev`.
pub(crate) fn chain_fields(event: &[u8], seq: u64, prev: &Link) -> Result<(), String> {
    let fields: ChainFields = serde_json::from_slice(event)
        .map_err(|e| format!("event is not a chained JSON object: {e}"))?;
    if fields.seq != seq {
        return Err(format!("event carries seq {} instead of {seq}", fields.seq));
    }
    match chain::from_hex(&fields.prev) {
        Some(p) if p == *prev => Ok(()),
        Some(_) => Err("event prev does not match the link of the previous record".into()),
        None => Err("event prev is not a 64-character lower-case hex link".into()),
    }
}

/// Checks the event length bounds of a record.
pub(crate) fn event_len(record: &Record) -> Result<(), String> {
    let len = record.event.len();
    if len == 0 || len > MAX_EVENT_BYTES {
        return Err(format!(
            "event of {len} bytes is outside 1..={MAX_EVENT_BYTES}"
        ));
    }
    Ok(())
}

/// Check of one record of a batch before it is written: size and chain
/// fields. Its link and leaf need no check: a [`SealedRecord`] can only
/// hold the ones computed from its record.
pub(crate) fn sealed(sealed: &SealedRecord, seq: u64, prev: &Link) -> Result<(), StoreError> {
    let invalid = |reason: String| StoreError::InvalidRecord { seq, reason };
    event_len(sealed.record()).map_err(invalid)?;
    chain_fields(&sealed.record().event, seq, prev).map_err(invalid)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_fields_are_checked() {
        let prev = [0xab; 32];
        let good = format!(r#"{{"x":[1,2],"seq":3,"prev":"{}"}}"#, chain::to_hex(&prev));
        assert!(chain_fields(good.as_bytes(), 3, &prev).is_ok());
        assert!(chain_fields(good.as_bytes(), 4, &prev).is_err());
        assert!(chain_fields(good.as_bytes(), 3, &[0; 32]).is_err());
        assert!(chain_fields(b"not json", 3, &prev).is_err());
        let dup = format!(r#"{{"seq":3,"seq":3,"prev":"{}"}}"#, chain::to_hex(&prev));
        assert!(chain_fields(dup.as_bytes(), 3, &prev).is_err());
    }
}
