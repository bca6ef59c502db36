//! The role table: what each credential role of an instance may do. The
//! server authorises every bearer request with it; it lives here, beside
//! the rules the verifier replays, so both read the same table.

use crate::event::Role;

/// What an action needs, from least to most: each role includes the ones
/// before it, except `Auditor`, which only reads the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Need {
    /// List keys, read metadata, versions, policies, key rings.
    Reader,
    /// Create keys, wrap/unwrap/rewrap, rotate, read standard-key payloads,
    /// import tokens, aliases.
    Writer,
    /// Delete, purge, restore, enable/disable, dual-auth delete, policies,
    /// key rings, moving keys.
    Manager,
    /// Ledger endpoints (checkpoints, records, proofs, export).
    Auditor,
}

/// The credential role named `name` in a `credential.issued` event
/// (`manager`, `writer`, `reader`, `auditor`); none for anything else.
pub fn role_of(name: &str) -> Option<Role> {
    match name {
        "manager" => Some(Role::Manager),
        "writer" => Some(Role::Writer),
        "reader" => Some(Role::Reader),
        "auditor" => Some(Role::Auditor),
        _ => None,
    }
}

/// What a Key Protect key action (`POST /keys/{id}/actions/{action}`)
/// needs; none for an action that does not exist.
pub fn need_for_key_action(action: &str) -> Option<Need> {
    match action {
        "wrap" | "unwrap" | "rewrap" | "rotate" => Some(Need::Writer),
        "enable" | "disable" | "setKeyForDeletion" | "unsetKeyForDeletion" | "restore" => {
            Some(Need::Manager)
        }
        "sync" => Some(Need::Reader),
        _ => None,
    }
}

/// Whether `role` may do what `need` names.
pub fn allows(role: Role, need: Need) -> bool {
    match (role, need) {
        (Role::Auditor, Need::Auditor) => true,
        (Role::Auditor, _) | (_, Need::Auditor) => false,
        (Role::Manager, _) => true,
        (Role::Writer, Need::Writer | Need::Reader) => true,
        (Role::Reader, Need::Reader) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_table() {
        use Need::*;
        let table = [
            (Role::Reader, [true, false, false, false]),
            (Role::Writer, [true, true, false, false]),
            (Role::Manager, [true, true, true, false]),
            (Role::Auditor, [false, false, false, true]),
            (Role::Admin, [false, false, false, false]),
            (Role::KeyOwner, [false, false, false, false]),
            (Role::Operator, [false, false, false, false]),
            (Role::System, [false, false, false, false]),
        ];
        for (role, expect) in table {
            for (need, want) in [Reader, Writer, Manager, Auditor].into_iter().zip(expect) {
                assert_eq!(allows(role, need), want, "{role:?} {need:?}");
            }
        }
        for (name, role) in [
            ("manager", Role::Manager),
            ("writer", Role::Writer),
            ("reader", Role::Reader),
            ("auditor", Role::Auditor),
        ] {
            assert_eq!(role_of(name), Some(role));
        }
        for name in ["admin", "key_owner", "system", "Manager", ""] {
            assert_eq!(role_of(name), None, "{name}");
        }
        assert_eq!(need_for_key_action("wrap"), Some(Need::Writer));
        assert_eq!(need_for_key_action("disable"), Some(Need::Manager));
        assert_eq!(need_for_key_action("sync"), Some(Need::Reader));
        assert_eq!(need_for_key_action("Wrap"), None);
    }
}
