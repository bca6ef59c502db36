//! Activation of pre-activation keys (state 0 -> 1) on their activation
//! date, always through a `key.activated` event: by the scheduler's
//! [`KeyService::activate_due`], or by the first command on a due key (so no
//! command ever acts on a stale state 0). See `docs/KEYS.md` §1.1.

use super::{KeyError, KeyService};
use crate::event::{Actor, KeyActivated};
use crate::keys::projection::KeyRecord;
use crate::keys::state::{self, KeyAction, KeyState};

impl KeyService {
    /// Activates `key` if it is a pre-activation key whose activation date
    /// has come (appending `key.activated`); returns the key as it now is.
    /// The caller holds the command lock.
    pub(super) fn activate_if_due(&self, key: KeyRecord) -> Result<KeyRecord, KeyError> {
        if key.state != KeyState::PreActivation
            || state::check_at(key.state, KeyAction::Activate, &key.timeline(), self.now()).is_err()
        {
            return Ok(key);
        }
        self.record(
            &Actor::system(),
            "key-activation",
            &KeyActivated {
                key_id: key.id.clone(),
            },
        )?;
        self.key(&key.id)
    }

    /// Moves every pre-activation key whose activation date has come to
    /// Active (state 1); returns how many were activated. Run by the
    /// scheduler (commands on such a key also activate it first); time is
    /// the service clock.
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
            if self.activate_if_due(key)?.state == KeyState::Active {
                activated += 1;
            }
        }
        Ok(activated)
    }

    /// A pre-activation key is activated on use once its date has come; the
    /// hot path takes the command lock only for keys in state 0.
    pub(super) fn activated(&self, key: KeyRecord) -> Result<KeyRecord, KeyError> {
        if key.state != KeyState::PreActivation {
            return Ok(key);
        }
        let _guard = self.lock_commands();
        let current = self.key(&key.id)?;
        self.activate_if_due(current)
    }
}
