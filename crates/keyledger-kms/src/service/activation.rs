//! A key's dates, applied through the log: a pre-activation key becomes
//! active (state 0 -> 1, `key.activated`) on its activation date and a key
//! expires (-> 3, `key.expired`) on its expiration date, both with actor
//! `system`. The scheduler does it for every key ([`KeyService::activate_due`],
//! [`KeyService::expire_due`]), and every command and every key use does it
//! first for the key it acts on ([`state::due_transition`], against the
//! service clock), so nothing ever acts on a state the dates have already
//! changed: a key wraps until its expiration date and not one request
//! after. See `docs/KEYS.md` §1.1.

use super::{KeyError, KeyService};
use keyledger_core::decide::key::KeyChange;
use keyledger_core::event::{Actor, KeyActivated, KeyExpired};
use keyledger_core::keys::projection::KeyRecord;
use keyledger_core::keys::state::{self, KeyAction, KeyState};

impl KeyService {
    /// Appends the transition `key`'s dates owe it now, if any
    /// (`key.expired`, or else `key.activated`); returns the key as it now
    /// is. The caller holds the command lock.
    pub(super) fn apply_due_dates(&self, key: KeyRecord) -> Result<KeyRecord, KeyError> {
        match state::due_transition(key.state, &key.timeline(), self.now()) {
            Some(KeyAction::Expire) => {
                let event = KeyExpired {
                    key_id: key.id.clone(),
                };
                self.decide_key(&Actor::system(), "key-expiry", KeyChange::Expire(event))?;
            }
            Some(KeyAction::Activate) => {
                let event = KeyActivated {
                    key_id: key.id.clone(),
                };
                let change = KeyChange::Activate(event);
                self.decide_key(&Actor::system(), "key-activation", change)?;
            }
            _ => return Ok(key),
        }
        self.key(&key.id)
    }

    /// Moves every pre-activation key whose activation date has come to
    /// Active (state 1); returns how many were activated. Run by the
    /// scheduler (commands on such a key also activate it first); time is
    /// the service clock. A key past its expiration date too is expired
    /// instead.
    pub fn activate_due(&self) -> Result<usize, KeyError> {
        let _guard = self.lock_commands();
        let due: Vec<KeyRecord> = self
            .read()
            .keys
            .keys
            .values()
            .filter(|k| k.state == KeyState::PreActivation)
            .cloned()
            .collect();
        let mut activated = 0;
        for key in due {
            if self.apply_due_dates(key)?.state == KeyState::Active {
                activated += 1;
            }
        }
        Ok(activated)
    }

    /// The key as its dates make it now, for the hot path (wrap, unwrap,
    /// rewrap, payload), which takes the command lock only for a key whose
    /// date has come and is not recorded yet.
    pub(super) fn dated(&self, key: KeyRecord) -> Result<KeyRecord, KeyError> {
        if state::due_transition(key.state, &key.timeline(), self.now()).is_none() {
            return Ok(key);
        }
        let _guard = self.lock_commands();
        let current = self.key(&key.id)?;
        self.apply_due_dates(current)
    }
}
