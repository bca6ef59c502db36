//! Every projection of an instance, applied together.

use chrono::{DateTime, Utc};

use crate::event::Envelope;
use crate::governance::GovernanceState;
use crate::keys::import_token::projection::ImportTokenProjection;
use crate::keys::projection::KeyProjection;
use crate::master_key::MasterKeyState;

/// State derived from the log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Projections {
    /// Keys, key rings and aliases.
    pub keys: KeyProjection,
    /// Key owners and the master-key ceremony.
    pub master: MasterKeyState,
    /// Administrators, credentials, policies and approvals.
    pub governance: GovernanceState,
    /// The current import token.
    pub import_token: ImportTokenProjection,
}

impl Projections {
    /// Applies one stored event to every projection.
    pub fn apply(&mut self, seq: u64, envelope: &Envelope<'_>) {
        let time = DateTime::parse_from_rfc3339(&envelope.time)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        self.keys.apply(seq, time, envelope);
        self.master.apply(envelope);
        self.governance.apply(seq, envelope);
        self.import_token.apply(time, envelope);
    }

    /// Rebuilds from stored event bytes in log order.
    pub fn rebuild<'a>(events: impl IntoIterator<Item = &'a [u8]>) -> Self {
        let mut p = Projections::default();
        for (seq, bytes) in events.into_iter().enumerate() {
            if let Ok(envelope) = Envelope::parse(bytes) {
                p.apply(seq as u64, &envelope);
            }
        }
        p
    }
}
