//! Which server forwards a SIEM sink, and where it stands, when several
//! servers share one database (migration `0003_sink_cursors.sql`).
//!
//! A [`SinkLease`] is a connection of its own holding the sink's
//! session-level advisory lock: while it lives, no other server's lease
//! for the same sink can be taken, and the sink's cursor is read and
//! written only through it. A server that dies (or loses its connection)
//! loses the lock with its session; another server's next attempt takes
//! the lease and resumes from the cursor the last holder wrote: at least
//! once, and duplicates only from the batch that was not acknowledged.

use postgres::Client;
use sha2::{Digest, Sha256};

use crate::error::describe;

/// The advisory lock key of `instance`'s sink `sink` (both in the key's
/// domain, so no other keyledger lock collides with it).
fn lock_key(instance: &str, sink: &str) -> i64 {
    let digest = Sha256::new()
        .chain_update(b"keyledger/v1/sink-lease\0")
        .chain_update(instance.as_bytes())
        .chain_update(b"\0")
        .chain_update(sink.as_bytes())
        .finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}

/// The lease of one sink (see the module docs).
pub struct SinkLease {
    client: Client,
    instance: String,
    sink: String,
}

impl std::fmt::Debug for SinkLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SinkLease")
            .field("instance", &self.instance)
            .field("sink", &self.sink)
            .finish_non_exhaustive()
    }
}

impl SinkLease {
    /// Takes the lease on `client` (a connection of its own), or gives
    /// `None` when another session holds it.
    pub(crate) fn take(
        mut client: Client,
        instance: &str,
        sink: &str,
    ) -> Result<Option<Self>, String> {
        let row = client
            .query_one(
                "SELECT pg_try_advisory_lock($1)",
                &[&lock_key(instance, sink)],
            )
            .map_err(|e| describe(&e))?;
        if !row.get::<_, bool>(0) {
            return Ok(None);
        }
        Ok(Some(SinkLease {
            client,
            instance: instance.to_string(),
            sink: sink.to_string(),
        }))
    }

    /// The sink's cursor: the next seq to deliver (0 when never stored).
    pub fn load(&mut self) -> Result<u64, String> {
        read(&mut self.client, &self.instance, &self.sink)
    }

    /// Stores the cursor. Fails when the session (and with it the lock) is
    /// gone, so a server that lost its lease writes nothing.
    pub fn store(&mut self, next: u64) -> Result<(), String> {
        let next = i64::try_from(next).map_err(|_| "cursor out of range".to_string())?;
        self.client
            .execute(
                "INSERT INTO sink_cursors (instance, sink, next_seq) VALUES ($1, $2, $3)
                 ON CONFLICT (instance, sink)
                 DO UPDATE SET next_seq = EXCLUDED.next_seq, updated_at = now()",
                &[&self.instance, &self.sink, &next],
            )
            .map(|_| ())
            .map_err(|e| describe(&e))
    }
}

/// The stored cursor of a sink, read on any connection (a server that does
/// not hold the lease reports the holder's progress).
pub(crate) fn read(client: &mut Client, instance: &str, sink: &str) -> Result<u64, String> {
    let row = client
        .query_opt(
            "SELECT next_seq FROM sink_cursors WHERE instance = $1 AND sink = $2",
            &[&instance, &sink],
        )
        .map_err(|e| describe(&e))?;
    Ok(row
        .map(|r| r.get::<_, i64>(0))
        .and_then(|n| u64::try_from(n).ok())
        .unwrap_or(0))
}

#[cfg(test)]
mod tests {
    #[test]
    fn lock_keys_differ_by_instance_and_sink() {
        let a = super::lock_key("acme", "siem.0011");
        assert_ne!(a, super::lock_key("acme", "siem.0012"));
        assert_ne!(a, super::lock_key("acme2", "siem.0011"));
        assert_ne!(super::lock_key("a", "bc"), super::lock_key("ab", "c"));
    }
}
