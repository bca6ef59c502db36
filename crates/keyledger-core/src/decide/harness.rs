//! Given/when/then tests of aggregates, in the shape of cqrs-es's
//! `TestFramework`: given these stored events, when this command is
//! decided, then these events (or this refusal).
//!
//! ```text
//! given().event(t0, &manager, &created).event(t1, &manager, &disabled)
//!     .when(|state| key::decide(state, &command))
//!     .then_expect_events(&[draft]);
//! ```
//!
//! The given events go through the real [`super::apply`] (stored-event
//! bytes, parsed as the verifier parses them), so a test sees exactly the
//! state the service and the verifier see.

use serde_json::value::RawValue;

use super::{Refusal, apply};
use crate::event::{Actor, Envelope, EnvelopeOut, EventDraft, EventPayload};
use crate::projections::Projections;

/// The state built from the given events.
#[derive(Debug, Default)]
pub struct Given {
    state: Projections,
    seq: u64,
}

/// Starts a test with no events.
pub fn given() -> Given {
    Given::default()
}

impl Given {
    /// Applies one more event, stored at RFC 3339 `time` by `actor`.
    pub fn event<P: EventPayload>(mut self, time: &str, actor: &Actor, payload: &P) -> Self {
        let json = serde_json::to_string(payload).expect("payload serialises");
        let raw = RawValue::from_string(json).expect("raw payload");
        let out = EnvelopeOut {
            instance: "test",
            seq: self.seq,
            time,
            event_type: P::TYPE,
            type_version: P::VERSION,
            actor,
            correlation_id: "given",
            payload: &raw,
            ledger_key: "00000000",
            prev: "00",
        };
        let bytes = serde_json::to_vec(&out).expect("envelope serialises");
        let envelope = Envelope::parse(&bytes).expect("envelope parses");
        apply(&mut self.state, self.seq, &envelope);
        self.seq += 1;
        self
    }

    /// Decides a command against the state.
    pub fn when(
        self,
        decide: impl FnOnce(&Projections) -> Result<Vec<EventDraft>, Refusal>,
    ) -> Then {
        Then(decide(&self.state))
    }
}

/// The outcome of a decision, to assert on.
#[derive(Debug)]
pub struct Then(Result<Vec<EventDraft>, Refusal>);

impl Then {
    /// The decision produced exactly these events (type and payload).
    pub fn then_expect_events(self, expected: &[EventDraft]) {
        let got = self.0.unwrap_or_else(|r| panic!("refused: {r}"));
        let view = |d: &[EventDraft]| -> Vec<(&'static str, String)> {
            d.iter()
                .map(|d| (d.event_type, d.payload.get().to_string()))
                .collect()
        };
        assert_eq!(view(&got), view(expected));
    }

    /// The refusal, if the decision refused (for asserting on its kind).
    pub fn into_refusal(self) -> Option<Refusal> {
        self.0.err()
    }

    /// The decision refused with exactly this refusal.
    pub fn then_expect_refusal(self, expected: Refusal) {
        match self.0 {
            Ok(events) => panic!("accepted: {events:?}, expected refusal {expected}"),
            Err(r) => assert_eq!(r, expected),
        }
    }
}
