//! The Key Protect key state machine as a pure table: which action each key
//! state allows, the time windows around deletion and rotation, and the
//! dual-authorisation delete rule. No I/O, no clock: callers pass `now`.
//!
//! Source: IBM Key Protect docs, "Monitoring the lifecycle of encryption
//! keys" (tables 1 and 2), "About deleting and purging keys" and "Error
//! messages"; see `docs/KEYS.md` for the table and where we deviate.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::reason::Reason;

/// Key states, with Key Protect's integer mapping (serialised as the integer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyState {
    /// Created with an activation date still ahead: nothing cryptographic
    /// until the service activates it on that date.
    PreActivation = 0,
    /// In use: every action its key type allows.
    Active = 1,
    /// Disabled: no wrap/unwrap/rewrap/rotate; can be enabled or deleted.
    Suspended = 2,
    /// Past its expiration date: only unwrap, rewrap, rotate and delete.
    Deactivated = 3,
    /// Deleted: restorable for 30 days, purgeable after 4 hours.
    Destroyed = 5,
}

impl KeyState {
    /// Every state, in Key Protect's integer order.
    pub const ALL: [KeyState; 5] = [
        KeyState::PreActivation,
        KeyState::Active,
        KeyState::Suspended,
        KeyState::Deactivated,
        KeyState::Destroyed,
    ];

    /// The Key Protect integer of this state.
    pub fn as_u8(self) -> u8 {
        self as u8
    }

    /// The state with this Key Protect integer.
    pub fn from_u8(value: u8) -> Option<KeyState> {
        KeyState::ALL.into_iter().find(|s| s.as_u8() == value)
    }
}

impl Serialize for KeyState {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u8(self.as_u8())
    }
}

impl<'de> Deserialize<'de> for KeyState {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = u8::deserialize(deserializer)?;
        KeyState::from_u8(value)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown key state {value}")))
    }
}

/// What a caller (or the service itself) wants to do with a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyAction {
    /// Read metadata, versions, policies, aliases (`GET /keys/{id}` without payload).
    ReadMetadata,
    /// Return a standard key's payload.
    GetPayload,
    /// Wrap a data key.
    Wrap,
    /// Unwrap a data key.
    Unwrap,
    /// Unwrap and wrap again under the latest version.
    Rewrap,
    /// Add a key version.
    Rotate,
    /// Move a suspended key back to Active.
    Enable,
    /// Suspend the key.
    Disable,
    /// First authorisation of a dual-authorisation delete.
    SetKeyForDeletion,
    /// Withdraw that authorisation.
    UnsetKeyForDeletion,
    /// Destroy the key (restorable until purged).
    Delete,
    /// Bring a destroyed key back.
    Restore,
    /// Remove a destroyed key for good.
    Purge,
    /// `PATCH /keys/{id}`: move to another key ring.
    Patch,
    /// Add an alias.
    CreateAlias,
    /// Remove an alias.
    DeleteAlias,
    /// Set a key policy (rotation, dual-auth delete).
    SetPolicy,
    /// Re-notify registered resources of the key's state.
    Sync,
    /// Register a cloud resource with the key (needs an active key).
    Register,
    /// The service moves a key past its expiration date to Deactivated.
    Expire,
    /// The service moves a pre-activation key whose activation date has
    /// come to Active.
    Activate,
}

impl KeyAction {
    /// Every action.
    pub const ALL: [KeyAction; 21] = [
        KeyAction::ReadMetadata,
        KeyAction::GetPayload,
        KeyAction::Wrap,
        KeyAction::Unwrap,
        KeyAction::Rewrap,
        KeyAction::Rotate,
        KeyAction::Enable,
        KeyAction::Disable,
        KeyAction::SetKeyForDeletion,
        KeyAction::UnsetKeyForDeletion,
        KeyAction::Delete,
        KeyAction::Restore,
        KeyAction::Purge,
        KeyAction::Patch,
        KeyAction::CreateAlias,
        KeyAction::DeleteAlias,
        KeyAction::SetPolicy,
        KeyAction::Sync,
        KeyAction::Register,
        KeyAction::Expire,
        KeyAction::Activate,
    ];
}

/// Days a destroyed key can be restored.
pub const RESTORE_WINDOW: Duration = Duration::days(30);
/// Earliest purge after deletion.
pub const PURGE_DELAY: Duration = Duration::hours(4);
/// Destroyed keys are purged automatically this long after deletion.
pub const AUTO_PURGE_AFTER: Duration = Duration::days(90);
/// How long a `setKeyForDeletion` authorisation stays valid.
pub const DUAL_AUTH_WINDOW: Duration = Duration::days(7);
/// Minimum interval between two rotations of a key.
pub const ROTATION_MIN_INTERVAL: Duration = Duration::hours(1);

/// Why an action was refused. Each variant names one [`Reason`];
/// messages never carry key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// The state does not allow the action.
    #[error("key is not in a valid state: {action:?} is not allowed in state {state:?}")]
    InvalidState {
        /// The key's state.
        state: KeyState,
        /// The refused action.
        action: KeyAction,
    },
    /// The key is past its expiration date.
    #[error("the action could not be performed on the key because the key is expired")]
    Expired {
        /// The refused action.
        action: KeyAction,
    },
    /// The key is destroyed.
    #[error("key has already been deleted")]
    Deleted {
        /// The refused action.
        action: KeyAction,
    },
    /// Registering a resource needs an active key.
    #[error("key is not in a valid state: registrations need an active key (state {state:?})")]
    NotActive {
        /// The key's state.
        state: KeyState,
    },
    /// The restore window has passed.
    #[error("key restoration has expired")]
    RestoreExpired,
    /// The purge delay has not passed.
    #[error("the key cannot be purged before {allowed_from}")]
    PurgeTooEarly {
        /// When purging becomes possible.
        allowed_from: DateTime<Utc>,
    },
    /// The key was rotated less than [`ROTATION_MIN_INTERVAL`] ago.
    #[error("this key has been rotated within the last hour")]
    RotatedTooRecently,
    /// Setting for deletion a key without dual-authorisation delete.
    #[error("the key is not dual auth enabled and cannot be set for deletion")]
    NotDualAuth,
    /// Deleting a dual-authorisation key without a valid second authorisation.
    #[error("number of authorizations required to delete is not met")]
    AuthorizationsNotMet,
    /// A key's dual-authorisation delete policy, once enabled (on the key,
    /// or inherited at creation from the instance policy), is never
    /// switched off: see [`check_dual_auth_policy`].
    #[error(
        "the key's dual authorization policy cannot be reverted once enabled: deleting the key needs two principals"
    )]
    DualAuthIrreversible,
    /// A root-key action on a standard (extractable) key.
    #[error("requested action can only be completed with a root key")]
    RootKeyRequired {
        /// The refused action.
        action: KeyAction,
    },
}

impl StateError {
    /// The reason code of this refusal.
    pub fn reason(&self) -> Reason {
        match self {
            // Key Protect documents the irreversibility rule ("cannot be
            // reverted once enabled") but no reason code of its own for the
            // refusal: the request conflicts with the key's state.
            StateError::InvalidState { .. } | StateError::DualAuthIrreversible => {
                Reason::InvalidState
            }
            StateError::Expired { .. } => Reason::KeyExpired,
            StateError::Deleted { .. } => Reason::KeyDeleted,
            StateError::NotActive { .. } => Reason::KeyNotActive,
            StateError::RestoreExpired => Reason::RestoreExpired,
            StateError::PurgeTooEarly { .. } => Reason::TooEarly,
            StateError::RotatedTooRecently => Reason::RotationTooSoon,
            StateError::NotDualAuth => Reason::NotDualAuth,
            StateError::AuthorizationsNotMet => Reason::AuthorizationsNotMet,
            StateError::RootKeyRequired { .. } => Reason::RootKeyRequired,
        }
    }
}

/// Whether `state` allows `action` (the table of `docs/KEYS.md`).
pub fn allowed(state: KeyState, action: KeyAction) -> bool {
    use KeyAction as A;
    use KeyState as S;
    match (state, action) {
        // Every existing key can be read and re-synced.
        (_, A::ReadMetadata | A::Sync) => true,
        (S::PreActivation, A::Activate) => true,
        (_, A::Activate) => false,
        (S::Active, A::Enable | A::Restore | A::Purge) => false,
        (S::Active, _) => true,
        (S::Suspended, a) => matches!(
            a,
            A::Enable
                | A::Delete
                | A::SetKeyForDeletion
                | A::UnsetKeyForDeletion
                | A::Patch
                | A::CreateAlias
                | A::DeleteAlias
                | A::SetPolicy
                | A::Expire
        ),
        (S::Deactivated, a) => matches!(
            a,
            A::Unwrap
                | A::Rewrap
                | A::Rotate
                | A::Delete
                | A::SetKeyForDeletion
                | A::UnsetKeyForDeletion
                | A::Patch
                | A::CreateAlias
                | A::DeleteAlias
                | A::SetPolicy
        ),
        (S::PreActivation, a) => matches!(
            a,
            A::Delete
                | A::SetKeyForDeletion
                | A::UnsetKeyForDeletion
                | A::Patch
                | A::CreateAlias
                | A::DeleteAlias
                | A::SetPolicy
                | A::Expire
        ),
        (S::Destroyed, a) => matches!(a, A::Restore | A::Purge),
    }
}

/// Checks the state table; the error says which Key Protect code applies.
pub fn check(state: KeyState, action: KeyAction) -> Result<(), StateError> {
    if allowed(state, action) {
        return Ok(());
    }
    Err(match (state, action) {
        (_, KeyAction::Register) => StateError::NotActive { state },
        (KeyState::Destroyed, _) => StateError::Deleted { action },
        (KeyState::Deactivated, KeyAction::Wrap | KeyAction::GetPayload) => {
            StateError::Expired { action }
        }
        _ => StateError::InvalidState { state, action },
    })
}

/// Whether `action` needs a root key: wrap, unwrap, rewrap, rotate and
/// disable (Key Protect, *Error messages*, `KEY_ROOT_REQ_ERR`). A standard
/// key's payload can be read by any writer, so envelope encryption under it
/// would protect nothing the log could account for; its versions never
/// change, and it is never disabled (see `docs/KEYS.md` §1.2).
pub fn requires_root_key(action: KeyAction) -> bool {
    matches!(
        action,
        KeyAction::Wrap
            | KeyAction::Unwrap
            | KeyAction::Rewrap
            | KeyAction::Rotate
            | KeyAction::Disable
    )
}

/// Checks the key type: a standard (`extractable`) key refuses the
/// root-key actions of [`requires_root_key`], in every state.
pub fn check_key_type(extractable: bool, action: KeyAction) -> Result<(), StateError> {
    if extractable && requires_root_key(action) {
        Err(StateError::RootKeyRequired { action })
    } else {
        Ok(())
    }
}

/// The dates the time-gated actions depend on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timeline {
    /// When the key was deleted (Destroyed state).
    pub deletion_date: Option<DateTime<Utc>>,
    /// When the key was last rotated (`None`: never rotated).
    pub last_rotate_date: Option<DateTime<Utc>>,
    /// When a pre-activation key becomes usable (`None`: no activation date).
    pub activation_date: Option<DateTime<Utc>>,
    /// When the key expires (`None`: never).
    pub expiration_date: Option<DateTime<Utc>>,
}

/// The transition the service owes a key at `now` because one of its dates
/// has come and the log does not record it yet: [`KeyAction::Expire`] once
/// the expiration date is reached (from states 0, 1 and 2; before anything
/// else, so a pre-activation key past both dates expires without being
/// activated), else [`KeyAction::Activate`] for a pre-activation key on its
/// activation date. The service appends that transition's event before it
/// checks any action, on every use and not only in the scheduler, so no
/// action ever sees a state the dates have already changed.
pub fn due_transition(
    state: KeyState,
    timeline: &Timeline,
    now: DateTime<Utc>,
) -> Option<KeyAction> {
    if timeline.expiration_date.is_some_and(|e| now >= e) && allowed(state, KeyAction::Expire) {
        return Some(KeyAction::Expire);
    }
    if check_at(state, KeyAction::Activate, timeline, now).is_ok() {
        return Some(KeyAction::Activate);
    }
    None
}

/// Checks the state table, then the time windows: restore within 30 days of
/// deletion, purge no earlier than 4 hours after it, rotate at most once an
/// hour, activate no earlier than the activation date.
pub fn check_at(
    state: KeyState,
    action: KeyAction,
    timeline: &Timeline,
    now: DateTime<Utc>,
) -> Result<(), StateError> {
    check(state, action)?;
    match action {
        KeyAction::Restore => match timeline.deletion_date {
            Some(deleted) if now < deleted + RESTORE_WINDOW => Ok(()),
            _ => Err(StateError::RestoreExpired),
        },
        KeyAction::Purge => match timeline.deletion_date {
            Some(deleted) if now >= deleted + PURGE_DELAY => Ok(()),
            Some(deleted) => Err(StateError::PurgeTooEarly {
                allowed_from: deleted + PURGE_DELAY,
            }),
            // A destroyed key without a deletion date cannot be dated: refuse.
            None => Err(StateError::InvalidState { state, action }),
        },
        KeyAction::Rotate => match timeline.last_rotate_date {
            Some(last) if now < last + ROTATION_MIN_INTERVAL => Err(StateError::RotatedTooRecently),
            _ => Ok(()),
        },
        KeyAction::Activate => match timeline.activation_date {
            Some(date) if now >= date => Ok(()),
            _ => Err(StateError::InvalidState { state, action }),
        },
        _ => Ok(()),
    }
}

/// The dual-authorisation delete state of a key.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DualAuth<'a> {
    /// Whether deleting needs a second principal.
    pub enabled: bool,
    /// Whether a first principal has authorised the deletion.
    pub set_for_deletion: bool,
    /// That principal.
    pub set_by: Option<&'a str>,
    /// When that authorisation lapses.
    pub auth_expiration: Option<DateTime<Utc>>,
}

/// `setKeyForDeletion` needs a dual-auth key.
pub fn check_set_for_deletion(dual: &DualAuth<'_>) -> Result<(), StateError> {
    if dual.enabled {
        Ok(())
    } else {
        Err(StateError::NotDualAuth)
    }
}

/// Whether a key whose dual-authorisation delete is `current` may have its
/// `dualAuthDelete` policy set to `enabled`. Enabling is always allowed;
/// switching it off once on is not (Key Protect: a key's dual-authorisation
/// policy cannot be reverted once enabled; the key keeps it until deleted),
/// whether it was set on the key or inherited at creation from the
/// instance policy. Otherwise one principal could switch it off and delete
/// the key alone. The same function decides for `PUT /keys/{id}/policies`,
/// for a key created with policy overrides under the instance policy, for
/// the key projection (which never applies such a switch) and for
/// `verify --policy`.
pub fn check_dual_auth_policy(current: bool, enabled: bool) -> Result<(), StateError> {
    if current && !enabled {
        Err(StateError::DualAuthIrreversible)
    } else {
        Ok(())
    }
}

/// A delete of a dual-auth key needs an unexpired authorisation set by a
/// different principal than the one deleting.
pub fn check_dual_auth_delete(
    dual: &DualAuth<'_>,
    deleter: &str,
    now: DateTime<Utc>,
) -> Result<(), StateError> {
    if !dual.enabled {
        return Ok(());
    }
    let unexpired = dual.auth_expiration.is_some_and(|exp| now < exp);
    let other_principal = dual.set_by.is_some_and(|setter| setter != deleter);
    if dual.set_for_deletion && unexpired && other_principal {
        Ok(())
    } else {
        Err(StateError::AuthorizationsNotMet)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("time")
            .with_timezone(&Utc)
    }

    #[test]
    fn states_serialise_as_key_protect_integers() {
        for s in KeyState::ALL {
            let json = serde_json::to_string(&s).expect("ser");
            assert_eq!(json, s.as_u8().to_string());
            assert_eq!(serde_json::from_str::<KeyState>(&json).expect("de"), s);
        }
        assert!(serde_json::from_str::<KeyState>("4").is_err());
    }

    #[test]
    fn key_protect_table_2_holds() {
        use KeyAction as A;
        use KeyState as S;
        // (action, active, suspended, deactivated, destroyed) from the KP docs.
        let table = [
            (A::ReadMetadata, true, true, true, true),
            (A::Rotate, true, false, true, false),
            (A::Wrap, true, false, false, false),
            (A::Unwrap, true, false, true, false),
            (A::Rewrap, true, false, true, false),
            (A::Disable, true, false, false, false),
            (A::Enable, false, true, false, false),
            (A::Delete, true, true, true, false),
            (A::Restore, false, false, false, true),
        ];
        for (action, a, s, d, x) in table {
            assert_eq!(allowed(S::Active, action), a, "{action:?} active");
            assert_eq!(allowed(S::Suspended, action), s, "{action:?} suspended");
            assert_eq!(allowed(S::Deactivated, action), d, "{action:?} deactivated");
            assert_eq!(allowed(S::Destroyed, action), x, "{action:?} destroyed");
        }
        for action in [
            A::Wrap,
            A::Unwrap,
            A::Rewrap,
            A::Rotate,
            A::GetPayload,
            A::Enable,
        ] {
            assert!(!allowed(S::PreActivation, action), "{action:?}");
        }
    }

    #[test]
    fn errors_map_to_key_protect_codes() {
        let e = check(KeyState::Suspended, KeyAction::Wrap).expect_err("refused");
        assert_eq!(e.reason(), Reason::InvalidState);
        let e = check(KeyState::Deactivated, KeyAction::Enable).expect_err("refused");
        assert_eq!(e.reason(), Reason::InvalidState);
        let e = check(KeyState::Deactivated, KeyAction::Wrap).expect_err("refused");
        assert_eq!(e.reason(), Reason::KeyExpired);
        let e = check(KeyState::Destroyed, KeyAction::Unwrap).expect_err("refused");
        assert_eq!(e.reason(), Reason::KeyDeleted);
        let e = check(KeyState::Suspended, KeyAction::Register).expect_err("refused");
        assert_eq!(e.reason(), Reason::KeyNotActive);
        let e = check(KeyState::Active, KeyAction::Restore).expect_err("refused");
        assert_eq!(e.reason(), Reason::InvalidState);
    }

    #[test]
    fn restore_and_purge_windows() {
        let deleted = t("2026-01-01T00:00:00Z");
        let tl = Timeline {
            deletion_date: Some(deleted),
            ..Timeline::default()
        };
        let at = |s| check_at(KeyState::Destroyed, KeyAction::Purge, &tl, t(s));
        assert_eq!(
            at("2026-01-01T03:59:59Z"),
            Err(StateError::PurgeTooEarly {
                allowed_from: t("2026-01-01T04:00:00Z")
            })
        );
        assert_eq!(at("2026-01-01T04:00:00Z"), Ok(()));
        let restore = |s| check_at(KeyState::Destroyed, KeyAction::Restore, &tl, t(s));
        assert_eq!(restore("2026-01-30T23:59:59Z"), Ok(()));
        let e = restore("2026-01-31T00:00:00Z").expect_err("expired");
        assert_eq!(e.reason(), Reason::RestoreExpired);
    }

    #[test]
    fn rotation_at_most_once_an_hour() {
        let tl = Timeline {
            last_rotate_date: Some(t("2026-01-01T00:00:00Z")),
            ..Timeline::default()
        };
        let rotate = |s| check_at(KeyState::Active, KeyAction::Rotate, &tl, t(s));
        assert_eq!(
            rotate("2026-01-01T00:59:59Z"),
            Err(StateError::RotatedTooRecently)
        );
        assert_eq!(rotate("2026-01-01T01:00:00Z"), Ok(()));
        let never = Timeline::default();
        assert_eq!(
            check_at(
                KeyState::Active,
                KeyAction::Rotate,
                &never,
                t("2026-01-01T00:00:00Z")
            ),
            Ok(())
        );
    }

    #[test]
    fn pre_activation_keys_allow_nothing_cryptographic_until_activated() {
        use KeyAction as A;
        let e = check(KeyState::PreActivation, A::Wrap).expect_err("refused");
        assert_eq!(e.reason(), Reason::InvalidState);
        for action in KeyAction::ALL {
            let expected = matches!(
                action,
                A::ReadMetadata
                    | A::Sync
                    | A::Delete
                    | A::SetKeyForDeletion
                    | A::UnsetKeyForDeletion
                    | A::Patch
                    | A::CreateAlias
                    | A::DeleteAlias
                    | A::SetPolicy
                    | A::Expire
                    | A::Activate
            );
            assert_eq!(
                allowed(KeyState::PreActivation, action),
                expected,
                "{action:?}"
            );
        }
        for state in [
            KeyState::Active,
            KeyState::Suspended,
            KeyState::Deactivated,
            KeyState::Destroyed,
        ] {
            assert!(!allowed(state, A::Activate), "{state:?}");
        }
        let tl = Timeline {
            activation_date: Some(t("2026-01-01T12:00:00Z")),
            ..Timeline::default()
        };
        let activate = |s| check_at(KeyState::PreActivation, A::Activate, &tl, t(s));
        assert!(
            activate("2026-01-01T11:59:59Z").is_err(),
            "not before the date"
        );
        assert_eq!(activate("2026-01-01T12:00:00Z"), Ok(()));
        assert!(
            check_at(
                KeyState::PreActivation,
                A::Activate,
                &Timeline::default(),
                t("2030-01-01T00:00:00Z")
            )
            .is_err(),
            "a key without an activation date is never activated by date"
        );
    }

    #[test]
    fn standard_keys_refuse_root_key_actions_in_every_state() {
        use KeyAction as A;
        for action in KeyAction::ALL {
            let root_only = matches!(
                action,
                A::Wrap | A::Unwrap | A::Rewrap | A::Rotate | A::Disable
            );
            assert_eq!(requires_root_key(action), root_only, "{action:?}");
            assert_eq!(check_key_type(false, action), Ok(()), "{action:?}");
            let standard = check_key_type(true, action);
            if root_only {
                let e = standard.expect_err("refused");
                assert_eq!(e.reason(), Reason::RootKeyRequired);
            } else {
                assert_eq!(standard, Ok(()), "{action:?}");
            }
        }
    }

    #[test]
    fn dates_owe_expiry_before_activation() {
        let tl = Timeline {
            activation_date: Some(t("2026-01-01T12:00:00Z")),
            expiration_date: Some(t("2026-01-02T00:00:00Z")),
            ..Timeline::default()
        };
        let due = |state, s| due_transition(state, &tl, t(s));
        assert_eq!(due(KeyState::PreActivation, "2026-01-01T11:59:59Z"), None);
        assert_eq!(
            due(KeyState::PreActivation, "2026-01-01T12:00:00Z"),
            Some(KeyAction::Activate)
        );
        assert_eq!(due(KeyState::Active, "2026-01-01T23:59:59Z"), None);
        for state in [
            KeyState::PreActivation,
            KeyState::Active,
            KeyState::Suspended,
        ] {
            assert_eq!(
                due(state, "2026-01-02T00:00:00Z"),
                Some(KeyAction::Expire),
                "{state:?}"
            );
        }
        for state in [KeyState::Deactivated, KeyState::Destroyed] {
            assert_eq!(due(state, "2026-01-03T00:00:00Z"), None, "{state:?}");
        }
        assert_eq!(
            due_transition(
                KeyState::Active,
                &Timeline::default(),
                t("2030-01-01T00:00:00Z")
            ),
            None
        );
    }

    #[test]
    fn dual_auth_delete_needs_another_principal_in_time() {
        let now = t("2026-01-02T00:00:00Z");
        let off = DualAuth::default();
        assert_eq!(check_dual_auth_delete(&off, "a", now), Ok(()));
        assert_eq!(check_set_for_deletion(&off), Err(StateError::NotDualAuth));
        let mut dual = DualAuth {
            enabled: true,
            set_for_deletion: true,
            set_by: Some("alice"),
            auth_expiration: Some(t("2026-01-08T00:00:00Z")),
        };
        assert_eq!(check_dual_auth_delete(&dual, "bob", now), Ok(()));
        assert_eq!(
            check_dual_auth_delete(&dual, "alice", now),
            Err(StateError::AuthorizationsNotMet)
        );
        assert!(check_dual_auth_delete(&dual, "bob", t("2026-01-08T00:00:00Z")).is_err());
        dual.set_for_deletion = false;
        assert!(check_dual_auth_delete(&dual, "bob", now).is_err());
    }

    #[test]
    fn dual_auth_policy_is_never_switched_off() {
        assert_eq!(check_dual_auth_policy(false, false), Ok(()));
        assert_eq!(check_dual_auth_policy(false, true), Ok(()));
        assert_eq!(check_dual_auth_policy(true, true), Ok(()));
        let e = check_dual_auth_policy(true, false).expect_err("refused");
        assert_eq!(e, StateError::DualAuthIrreversible);
        assert_eq!(e.reason(), Reason::InvalidState);
    }
}
