//! Instance policies with Key Protect's names and attributes, their
//! validation, and the decisions they drive.
//!
//! - `dualAuthDelete` {enabled}: every key of the instance needs two
//!   principals to delete (setKeyForDeletion, then delete by another).
//! - `allowedNetwork` {enabled, attributes.allowed_network:
//!   `public-and-private` | `private-only`}.
//! - `allowedIP` {enabled, attributes.allowed_ip: [CIDR, ...]}: requests
//!   from other addresses are refused (enforced by the REST layer).
//! - `keyCreateImportAccess` {enabled, attributes: create_root_key,
//!   create_standard_key, import_root_key, import_standard_key,
//!   enforce_token (booleans)}: which key types may be created or imported.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_json::Value;

use super::state::GovernanceState;

/// Checks a policy's type and attributes; the error says what is wrong.
pub fn check_instance_policy(
    policy_type: &str,
    enabled: bool,
    attributes: &BTreeMap<String, Value>,
) -> Result<(), String> {
    let allowed_keys: &[&str] = match policy_type {
        "dualAuthDelete" => &[],
        "allowedNetwork" => &["allowed_network"],
        "allowedIP" => &["allowed_ip"],
        "keyCreateImportAccess" => &[
            "create_root_key",
            "create_standard_key",
            "import_root_key",
            "import_standard_key",
            "enforce_token",
        ],
        other => {
            return Err(format!(
                "unknown instance policy {:?}; known: {:?}",
                other.chars().take(64).collect::<String>(),
                super::rules::INSTANCE_POLICIES
            ));
        }
    };
    if let Some(k) = attributes
        .keys()
        .find(|k| !allowed_keys.contains(&k.as_str()))
    {
        return Err(format!(
            "{policy_type} has no attribute {:?}",
            k.chars().take(64).collect::<String>()
        ));
    }
    match policy_type {
        "allowedNetwork" if enabled => match attributes.get("allowed_network") {
            Some(Value::String(s)) if s == "public-and-private" || s == "private-only" => Ok(()),
            _ => Err("allowed_network must be \"public-and-private\" or \"private-only\"".into()),
        },
        "allowedIP" if enabled => {
            let list = match attributes.get("allowed_ip") {
                Some(Value::Array(list)) if !list.is_empty() && list.len() <= 1000 => list,
                _ => return Err("allowed_ip must be a list of 1-1000 CIDR blocks".into()),
            };
            for entry in list {
                let cidr = entry.as_str().unwrap_or_default();
                parse_cidr(cidr).ok_or_else(|| {
                    format!(
                        "allowed_ip entry {:?} is not an IPv4 or IPv6 CIDR block",
                        cidr.chars().take(64).collect::<String>()
                    )
                })?;
            }
            Ok(())
        }
        "keyCreateImportAccess" => {
            if attributes.values().all(Value::is_boolean) {
                Ok(())
            } else {
                Err("keyCreateImportAccess attributes must be booleans".into())
            }
        }
        _ => Ok(()),
    }
}

/// Parses `addr/len` (or a bare address as a full-length block).
pub fn parse_cidr(text: &str) -> Option<(IpAddr, u8)> {
    let (addr, len) = match text.split_once('/') {
        Some((a, l)) => (a.parse::<IpAddr>().ok()?, l.parse::<u8>().ok()?),
        None => {
            let a = text.parse::<IpAddr>().ok()?;
            (a, if a.is_ipv4() { 32 } else { 128 })
        }
    };
    let max = if addr.is_ipv4() { 32 } else { 128 };
    (len <= max).then_some((addr, len))
}

fn in_block(ip: IpAddr, (net, len): (IpAddr, u8)) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = if len == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(len))
            };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(len))
            };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

impl GovernanceState {
    /// Whether a request from `ip` passes the `allowedIP` policy.
    pub fn allows_ip(&self, ip: IpAddr) -> bool {
        let Some(policy) = self.policy("allowedIP") else {
            return true;
        };
        let Some(Value::Array(list)) = policy.attributes.get("allowed_ip") else {
            return false;
        };
        list.iter()
            .filter_map(|v| v.as_str().and_then(parse_cidr))
            .any(|block| in_block(ip, block))
    }

    /// Whether a request from `ip` passes the `allowedNetwork` policy:
    /// `private-only` admits loopback and private addresses (IPv4 10/8,
    /// 172.16/12, 192.168/16, 127/8, 169.254/16; IPv6 ::1, fc00::/7,
    /// fe80::/10); `public-and-private` (or no policy) admits all.
    pub fn allows_network(&self, ip: IpAddr) -> bool {
        let private_only = self
            .policy("allowedNetwork")
            .and_then(|p| p.attributes.get("allowed_network"))
            .and_then(Value::as_str)
            == Some("private-only");
        if !private_only {
            return true;
        }
        match ip {
            IpAddr::V4(v4) => v4.is_private() || v4.is_loopback() || v4.is_link_local(),
            IpAddr::V6(v6) => {
                let first = v6.segments()[0];
                v6.is_loopback() || (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80
            }
        }
    }

    /// Whether the instance's network policies (`allowedIP`,
    /// `allowedNetwork`) admit a request from `ip`.
    pub fn admits(&self, ip: IpAddr) -> bool {
        self.allows_ip(ip) && self.allows_network(ip)
    }

    /// Whether every key needs dual authorisation to delete.
    pub fn dual_auth_all_keys(&self) -> bool {
        self.policy("dualAuthDelete").is_some()
    }

    /// Whether the `keyCreateImportAccess` policy requires imported keys to
    /// come with an import token (`enforce_token`, default false).
    pub fn import_token_enforced(&self) -> bool {
        self.policy("keyCreateImportAccess")
            .and_then(|p| p.attributes.get("enforce_token"))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    /// Whether the `keyCreateImportAccess` policy lets a key of this kind
    /// be created (`imported = false`) or imported.
    pub fn may_create_key(&self, extractable: bool, imported: bool) -> bool {
        let Some(policy) = self.policy("keyCreateImportAccess") else {
            return true;
        };
        let attribute = match (imported, extractable) {
            (false, false) => "create_root_key",
            (false, true) => "create_standard_key",
            (true, false) => "import_root_key",
            (true, true) => "import_standard_key",
        };
        // Key Protect: an attribute left out of the policy defaults to true.
        policy
            .attributes
            .get(attribute)
            .and_then(Value::as_bool)
            .unwrap_or(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::governance::state::InstancePolicy;

    fn with_policy(kind: &str, attributes: Value) -> GovernanceState {
        let mut g = GovernanceState::default();
        let attributes: BTreeMap<String, Value> =
            serde_json::from_value(attributes).unwrap_or_default();
        check_instance_policy(kind, true, &attributes).unwrap();
        g.policies.insert(
            kind.into(),
            InstancePolicy {
                enabled: true,
                attributes,
                updated_seq: 1,
            },
        );
        g
    }

    #[test]
    fn allowed_ip_matches_v4_and_v6_blocks() {
        let g = with_policy(
            "allowedIP",
            serde_json::json!({"allowed_ip": ["10.1.0.0/16", "2001:db8::/32", "192.0.2.7"]}),
        );
        for (ip, ok) in [
            ("10.1.200.3", true),
            ("10.2.0.1", false),
            ("192.0.2.7", true),
            ("192.0.2.8", false),
            ("2001:db8:1::5", true),
            ("2001:db9::1", false),
        ] {
            assert_eq!(g.allows_ip(ip.parse().unwrap()), ok, "{ip}");
        }
        assert!(GovernanceState::default().allows_ip("8.8.8.8".parse().unwrap()));
    }

    #[test]
    fn private_only_network_admits_private_and_loopback_addresses() {
        let g = with_policy(
            "allowedNetwork",
            serde_json::json!({"allowed_network": "private-only"}),
        );
        for (ip, ok) in [
            ("10.0.0.1", true),
            ("172.20.1.1", true),
            ("192.168.1.1", true),
            ("127.0.0.1", true),
            ("8.8.8.8", false),
            ("::1", true),
            ("fd00::1", true),
            ("2001:db8::1", false),
        ] {
            assert_eq!(g.admits(ip.parse().unwrap()), ok, "{ip}");
        }
        let open = with_policy(
            "allowedNetwork",
            serde_json::json!({"allowed_network": "public-and-private"}),
        );
        assert!(open.admits("8.8.8.8".parse().unwrap()));
    }

    #[test]
    fn bad_policies_are_refused_with_the_reason() {
        let attrs = |v: Value| -> BTreeMap<String, Value> { serde_json::from_value(v).unwrap() };
        for (kind, a, msg) in [
            (
                "noSuchPolicy",
                serde_json::json!({}),
                "unknown instance policy",
            ),
            (
                "allowedIP",
                serde_json::json!({"allowed_ip": ["10.0.0.0/33"]}),
                "CIDR",
            ),
            ("allowedIP", serde_json::json!({"allowed_ip": []}), "1-1000"),
            (
                "allowedNetwork",
                serde_json::json!({"allowed_network": "anywhere"}),
                "private-only",
            ),
            (
                "keyCreateImportAccess",
                serde_json::json!({"create_root_key": "no"}),
                "booleans",
            ),
            (
                "dualAuthDelete",
                serde_json::json!({"x": true}),
                "no attribute",
            ),
        ] {
            let err = check_instance_policy(kind, true, &attrs(a)).unwrap_err();
            assert!(err.contains(msg), "{kind}: {err}");
        }
    }

    #[test]
    fn key_create_import_access_defaults_to_allowed() {
        let g = with_policy(
            "keyCreateImportAccess",
            serde_json::json!({"import_root_key": false, "create_standard_key": false}),
        );
        assert!(g.may_create_key(false, false));
        assert!(!g.may_create_key(true, false));
        assert!(!g.may_create_key(false, true));
        assert!(g.may_create_key(true, true));
    }
}
