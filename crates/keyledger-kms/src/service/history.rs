//! State as of any point in the log: "what did key X look like on 1 March,
//! and who had approved what?". The projections are rebuilt from the log up
//! to a sequence number or an instant, so the answer is exactly what the
//! live service held right after that event.

use chrono::{DateTime, Utc};

use super::{KeyError, KeyService, Projections, REPLAY_CHUNK};
use keyledger_core::event::Envelope;

/// A point in an instance's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsOf {
    /// After the event with this sequence number.
    Seq(u64),
    /// After every event whose time is at or before this instant.
    Time(DateTime<Utc>),
}

impl KeyService {
    /// The projections as they were at `at` (replayed from the log).
    pub fn projections_as_of(&self, at: AsOf) -> Result<Projections, KeyError> {
        let log = self.writer.log();
        let size = log.head().size;
        let end = match at {
            AsOf::Seq(seq) => seq.saturating_add(1).min(size),
            AsOf::Time(_) => size,
        };
        let mut projections = Projections::default();
        let mut start = 0;
        while start < end {
            let stop = (start + REPLAY_CHUNK).min(end);
            let records = log.read(start, stop).map_err(|e| {
                KeyError::Write(keyledger_ledger::writer::WriteError::Storage(e.to_string()))
            })?;
            for (i, record) in records.iter().enumerate() {
                let Ok(envelope) = Envelope::parse(&record.event) else {
                    continue;
                };
                if let AsOf::Time(t) = at {
                    let time = DateTime::parse_from_rfc3339(&envelope.time)
                        .map(|x| x.with_timezone(&Utc))
                        .unwrap_or_default();
                    // Times never decrease along the log.
                    if time > t {
                        return Ok(projections);
                    }
                }
                projections.apply(start + i as u64, &envelope);
            }
            start = stop;
        }
        Ok(projections)
    }
}
