//! Access refusals the server decides (role table, allowed addresses,
//! routes an API caller may never use) and the one read handlers make of
//! the log (who recorded an event, and when). Handlers never touch the
//! writer or the log themselves: what reaches the ledger goes through the
//! service.

use super::{KeyError, KeyService};
use keyledger_core::event::{AccessDenied, Actor, Envelope};
use keyledger_ledger::writer::PendingReceipt;

impl KeyService {
    /// Hands an `access.denied` event to the writer without waiting; the
    /// caller answers once the returned receipt says it is durable (an
    /// async handler awaits it without holding a worker thread).
    pub fn submit_access_denied(
        &self,
        actor: &Actor,
        correlation_id: &str,
        denial: &AccessDenied,
    ) -> Result<PendingReceipt, KeyError> {
        self.submit_use(actor, correlation_id, denial)
    }

    /// Records an `access.denied` event and waits until it is durable.
    pub fn record_access_denied(
        &self,
        actor: &Actor,
        correlation_id: &str,
        denial: &AccessDenied,
    ) -> Result<(), KeyError> {
        self.record_use(actor, correlation_id, denial).map(|_| ())
    }

    /// When (RFC 3339) and by which principal the event at `seq` was
    /// recorded, read from the log; `None` past the head or for a record
    /// that does not parse.
    pub fn recorded_by(&self, seq: u64) -> Option<(String, String)> {
        let records = self.writer.log().read(seq, seq + 1).ok()?;
        let envelope = Envelope::parse(&records.first()?.event).ok()?;
        Some((envelope.time.clone(), envelope.actor.principal.clone()))
    }
}
