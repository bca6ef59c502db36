//! The follower: what a writer on a shared log (several servers on one
//! database) tells the service above it of the log's records, so that its
//! state is a replay of the whole log, whoever appended each record.

use keyledger_core::record::Record;

/// Applies a shared log's records, in order, exactly once each, and keeps
/// a view number that moves whenever what it applied could change a
/// decision.
///
/// The writer calls [`Follower::follow`] from its own thread: with the
/// records other writers appended, under the store's append lock, before
/// it sequences anything after them; with its own records after they are
/// durable and before their callers hear of it. Events decided on a view
/// ([`crate::writer::LedgerWriter::submit_on`]) that has moved by the time
/// they would be sequenced are refused with
/// [`crate::writer::WriteError::Stale`], so nothing is appended on a
/// decision another server's record has made wrong.
pub trait Follower: Send + Sync {
    /// Applies `records`, which sit at `first..` in the log; `others`:
    /// appended by another writer (or by this one without it knowing: an
    /// append whose commit answer was lost), rather than just appended by
    /// this writer on decisions of this follower's view.
    fn follow(&self, first: u64, records: &[Record], others: bool);

    /// The current view; read by deciders together with the state it
    /// describes (under the same lock), and compared by the writer with the
    /// view an event was decided on.
    fn view(&self) -> u64;
}
