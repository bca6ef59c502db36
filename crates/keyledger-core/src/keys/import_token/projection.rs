//! The instance's current import token, computed from the log only:
//! `import_token.created` replaces the token (Key Protect keeps one per
//! instance), `import_token.retrieved` uses one retrieval,
//! `instance.zeroized` drops it (its secrets went with the master key). The
//! dates and retrieval count therefore survive restarts with the log; the
//! token's secrets are in the key-material store.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{ImportTokenMetadata, kp_time};
use crate::event::{self, Envelope, EventPayload};

/// The current token's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImportTokenRecord {
    /// The token's id.
    pub id: String,
    /// The time of its `import_token.created` event.
    pub creation_date: DateTime<Utc>,
    /// When it stops being usable.
    pub expiration_date: DateTime<Utc>,
    /// How many times it may be retrieved in all.
    pub max_retrievals: u32,
    /// How many retrievals are left.
    pub remaining_retrievals: u32,
    /// SHA-256 hex of the DER public key, as the log recorded it.
    pub public_key_digest: String,
}

impl ImportTokenRecord {
    /// Whether the token has expired at `now`.
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        now >= self.expiration_date
    }

    /// The metadata Key Protect answers with.
    pub fn metadata(&self) -> ImportTokenMetadata {
        ImportTokenMetadata {
            id: self.id.clone(),
            creation_date: kp_time(self.creation_date),
            expiration_date: kp_time(self.expiration_date),
            max_allowed_retrievals: self.max_retrievals,
            remaining_retrievals: self.remaining_retrievals,
        }
    }
}

/// The import token of one instance.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImportTokenProjection {
    /// The instance's token, if one was created and not dropped.
    pub current: Option<ImportTokenRecord>,
    /// Import-token events that could not be applied (bad payload or date,
    /// a retrieval of a token that is not current or has none left). Zero
    /// for a log the server wrote.
    pub ignored_events: u64,
}

impl ImportTokenProjection {
    /// Applies one event with its envelope time. Never fails.
    pub fn apply(&mut self, time: DateTime<Utc>, envelope: &Envelope<'_>) {
        let applied = if let Some(p) = envelope.payload_as::<event::ImportTokenCreated>() {
            p.ok().is_some_and(|p| self.created(time, p))
        } else if let Some(p) = envelope.payload_as::<event::ImportTokenRetrieved>() {
            p.ok().is_some_and(|p| self.retrieved(&p.token_id))
        } else if envelope.event_type == event::InstanceZeroized::TYPE {
            self.current = None;
            true
        } else {
            true
        };
        if !applied {
            self.ignored_events += 1;
        }
    }

    fn created(&mut self, time: DateTime<Utc>, p: event::ImportTokenCreated) -> bool {
        let Some(expiration_date) = DateTime::parse_from_rfc3339(&p.expiration_date)
            .ok()
            .map(|t| t.with_timezone(&Utc))
        else {
            return false;
        };
        self.current = Some(ImportTokenRecord {
            id: p.token_id,
            creation_date: time,
            expiration_date,
            max_retrievals: p.max_retrievals,
            remaining_retrievals: p.max_retrievals,
            public_key_digest: p.public_key_digest,
        });
        true
    }

    fn retrieved(&mut self, token_id: &str) -> bool {
        match &mut self.current {
            Some(t) if t.id == token_id && t.remaining_retrievals > 0 => {
                t.remaining_retrievals -= 1;
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn env(seq: u64, event_type: &str, payload: serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "instance": "acme", "seq": seq, "time": "2026-01-01T00:00:00Z",
            "type": event_type, "type_version": 1,
            "actor": {"principal": "u", "role": "manager", "auth": "bearer"},
            "correlation_id": "c", "payload": payload,
            "ledger_key": "00000000", "prev": "0".repeat(64),
        }))
        .expect("json")
    }

    fn apply_all(events: &[Vec<u8>]) -> ImportTokenProjection {
        let mut p = ImportTokenProjection::default();
        let t = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .expect("t")
            .with_timezone(&Utc);
        for e in events {
            p.apply(t, &Envelope::parse(e).expect("envelope"));
        }
        p
    }

    fn created(id: &str, retrievals: u32) -> serde_json::Value {
        json!({"token_id": id, "expiration_date": "2026-01-01T00:10:00Z",
               "max_retrievals": retrievals, "public_key_digest": "ab"})
    }

    #[test]
    fn a_new_token_replaces_the_old_and_retrievals_count_down() {
        let p = apply_all(&[
            env(0, "import_token.created", created("t1", 2)),
            env(
                1,
                "import_token.retrieved",
                json!({"token_id": "t1", "remaining_retrievals": 1}),
            ),
            env(2, "import_token.created", created("t2", 1)),
            // A retrieval of the replaced token changes nothing.
            env(
                3,
                "import_token.retrieved",
                json!({"token_id": "t1", "remaining_retrievals": 0}),
            ),
            env(
                4,
                "import_token.retrieved",
                json!({"token_id": "t2", "remaining_retrievals": 0}),
            ),
            // None left.
            env(
                5,
                "import_token.retrieved",
                json!({"token_id": "t2", "remaining_retrievals": 0}),
            ),
            env(6, "key.enabled", json!({"key_id": "k"})),
        ]);
        let current = p.current.as_ref().expect("token");
        assert_eq!(current.id, "t2");
        assert_eq!(current.remaining_retrievals, 0);
        assert_eq!(current.metadata().expiration_date, "2026-01-01T00:10:00Z");
        assert_eq!(p.ignored_events, 2);
    }

    #[test]
    fn zeroize_drops_the_token_and_bad_dates_are_ignored() {
        let mut bad = created("t3", 1);
        bad["expiration_date"] = json!("tomorrow");
        let p = apply_all(&[
            env(0, "import_token.created", created("t1", 1)),
            env(1, "instance.zeroized", json!({})),
            env(2, "import_token.created", bad),
        ]);
        assert_eq!(p.current, None);
        assert_eq!(p.ignored_events, 1);
    }
}
