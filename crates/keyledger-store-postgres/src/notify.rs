//! Hearing of other servers' appends: every append notifies channel
//! [`CHANNEL`] with the instance's name and the appending process's
//! [`origin`] (delivered at commit); a [`Listener`] holds one connection
//! that `LISTEN`s on it and reports the instances other processes appended
//! to, so a server can catch its projections up within milliseconds
//! instead of at its next append.

use std::collections::BTreeSet;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fallible_iterator::FallibleIterator;
use postgres::Client;

use crate::tls::Connector;

/// The notification channel appends announce themselves on.
pub const CHANNEL: &str = "keyledger_appended";

/// This process's name in notifications (its pid and start time), so a
/// listener can skip its own appends.
pub fn origin() -> &'static str {
    static ORIGIN: OnceLock<String> = OnceLock::new();
    ORIGIN.get_or_init(|| {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        format!("{:x}-{nanos:x}", std::process::id())
    })
}

/// The payload announcing an append to `instance` by this process.
pub(crate) fn payload(instance: &str) -> String {
    format!("{instance} {}", origin())
}

/// A connection listening for appends (see the module docs).
pub struct Listener {
    client: Client,
}

impl Listener {
    /// Connects with `config` (TLS as the store's pool) and starts listening.
    pub(crate) fn connect(
        config: &postgres::Config,
        connector: Connector,
    ) -> Result<Self, postgres::Error> {
        let mut client = config.connect(connector)?;
        client.batch_execute(&format!("LISTEN {CHANNEL}"))?;
        Ok(Listener { client })
    }

    /// Waits up to `timeout` for appends; answers the instances other
    /// processes appended to (each once), empty if none. An error means the
    /// connection is gone: connect again, and catch up, since appends may
    /// have been missed.
    pub fn wait(&mut self, timeout: Duration) -> Result<BTreeSet<String>, postgres::Error> {
        let mut instances = BTreeSet::new();
        let mut take = |payload: &str| {
            if let Some((instance, from)) = payload.split_once(' ')
                && from != origin()
            {
                instances.insert(instance.to_string());
            }
        };
        let mut notifications = self.client.notifications();
        if let Some(n) = notifications.timeout_iter(timeout).next()? {
            take(n.payload());
        }
        // Whatever else has arrived meanwhile, without waiting again.
        let mut pending = notifications.iter();
        while let Some(n) = pending.next()? {
            take(n.payload());
        }
        Ok(instances)
    }
}
