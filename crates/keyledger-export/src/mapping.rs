//! The one canonical mapping of every catalogued event type to what the SIEM
//! formats share: an action name, an outcome, an activity, a target, the
//! initiator, a severity and the few payload fields worth a column. Each
//! format module only lays these out.

use keyledger_core::event::{Actor, AuthMethod, Envelope, Role};
use keyledger_core::record::Record;
use serde_json::{Map, Value};

use crate::ExportError;

/// Whether the event records something done or something refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The action took place.
    Success,
    /// The action was refused or failed.
    Failure,
}

impl Outcome {
    /// `success` or `failure` (CADF, CEF, LEEF).
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
        }
    }
}

/// What kind of change the event is, as OCSF's API Activity counts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activity {
    /// Something was made.
    Create,
    /// Something was read or used without changing it.
    Read,
    /// Something changed.
    Update,
    /// Something was removed.
    Delete,
    /// Anything else (key use, refusals).
    Other,
}

impl Activity {
    /// OCSF `activity_id`.
    pub fn id(self) -> u32 {
        match self {
            Activity::Create => 1,
            Activity::Read => 2,
            Activity::Update => 3,
            Activity::Delete => 4,
            Activity::Other => 99,
        }
    }

    /// OCSF `activity_name`.
    pub fn name(self) -> &'static str {
        match self {
            Activity::Create => "Create",
            Activity::Read => "Read",
            Activity::Update => "Update",
            Activity::Delete => "Delete",
            Activity::Other => "Other",
        }
    }
}

/// What an event acted on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// A CRN-like name, `crn:v1:keyledger:kms:<instance>:<kind>:<id>`
    /// (the instance itself: `crn:v1:keyledger:kms:<instance>`).
    pub id: String,
    /// The resource type (`kms/secrets`, `kms/key-rings`, ...).
    pub type_uri: &'static str,
    /// A user-supplied name, when the event gives one (key name, alias).
    pub name: Option<String>,
}

/// A record mapped once, for every format.
#[derive(Debug)]
pub struct Mapped {
    /// The instance.
    pub instance: String,
    /// The record's sequence number.
    pub seq: u64,
    /// The record's leaf hash, lower-case hex: the dedupe key.
    pub leaf_hash: String,
    /// The stored RFC 3339 time.
    pub time: String,
    /// Milliseconds since the Unix epoch of `time`.
    pub time_ms: i64,
    /// The catalogue's event type (`key.created`, ...).
    pub event_type: String,
    /// The event family (the type's first part: `key`, `admin`, ...).
    pub family: String,
    /// Who acted.
    pub actor: Actor,
    /// The request the event belongs to.
    pub correlation_id: String,
    /// Activity Tracker's action name, or `keyledger.<type>`.
    pub action: String,
    /// Success or failure.
    pub outcome: Outcome,
    /// OCSF's activity.
    pub activity: Activity,
    /// What was acted on.
    pub target: Target,
    /// A machine-readable reason code, for refusals and failures.
    pub reason_code: Option<String>,
    /// The reason in words, for refusals and failures.
    pub reason_text: Option<String>,
    /// The key version the event produced or used.
    pub key_version_id: Option<String>,
    /// The version a data key was re-wrapped under (unwrap).
    pub rewrapped_key_version_id: Option<String>,
    /// Key Protect's key state after the event (0, 1, 2, 3 or 5).
    pub key_state: Option<u8>,
    /// The request path, when the event records one (access denials).
    pub request_uri: Option<String>,
    /// Severity 0-10 (CEF's scale).
    pub severity: u8,
}

fn text(payload: &Map<String, Value>, field: &str) -> Option<String> {
    payload
        .get(field)
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// `kms.secrets.<action>` for a Key Protect action name as
/// `key.operation_failed` records it (`setKeyForDeletion` ->
/// `kms.secrets.setkeyfordeletion`).
fn failed_action(action: Option<&str>) -> String {
    let clean: String = action
        .unwrap_or_default()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .take(40)
        .collect();
    if clean.is_empty() {
        "kms.secrets.unknown".into()
    } else {
        format!("kms.secrets.{clean}")
    }
}

/// Action, activity and Key Protect key state of an event type; `None`
/// for action means `keyledger.<type>`.
fn classify(event_type: &str) -> (Option<&'static str>, Activity, Option<u8>) {
    use Activity::*;
    match event_type {
        "key.created" => (Some("kms.secrets.create"), Create, None),
        "key.activated" => (None, Update, Some(1)),
        "key.rotated" => (Some("kms.secrets.rotate"), Update, None),
        "key.enabled" => (Some("kms.secrets.enable"), Update, Some(1)),
        "key.disabled" => (Some("kms.secrets.disable"), Update, Some(2)),
        "key.expired" => (Some("kms.secrets.expire"), Update, Some(3)),
        "key.deletion_authorized" => (Some("kms.secrets.setkeyfordeletion"), Update, None),
        "key.deletion_unauthorized" => (Some("kms.secrets.unsetkeyfordeletion"), Update, None),
        "key.destroyed" => (Some("kms.secrets.delete"), Delete, Some(5)),
        "key.restored" => (Some("kms.secrets.restore"), Update, Some(1)),
        "key.purged" => (Some("kms.secrets.purge"), Delete, Some(5)),
        "key.moved" => (Some("kms.secrets.patch"), Update, None),
        "key.alias_created" => (Some("kms.secrets-alias.create"), Create, None),
        "key.alias_deleted" => (Some("kms.secrets-alias.delete"), Delete, None),
        "key.policy_updated" => (Some("kms.policies.write"), Update, None),
        "key.payload_read" => (Some("kms.secrets.read"), Read, None),
        "key.wrapped" => (Some("kms.secrets.wrap"), Other, None),
        "key.unwrapped" => (Some("kms.secrets.unwrap"), Other, None),
        "key.rewrapped" => (Some("kms.secrets.rewrap"), Other, None),
        "key.operation_failed" => (None, Other, None),
        "key_ring.created" => (Some("kms.key-rings.create"), Create, None),
        "key_ring.deleted" => (Some("kms.key-rings.delete"), Delete, None),
        "import_token.created" => (Some("kms.import-token.create"), Create, None),
        "import_token.retrieved" => (Some("kms.import-token.read"), Read, None),
        "instance.policy_updated" => (Some("kms.instance-policies.write"), Update, None),
        "export.sinks_set" => (None, Update, None),
        "instance.created"
        | "admin.added"
        | "key_owner.registered"
        | "credential.issued"
        | "approval.requested" => (None, Create, None),
        "admin.removed" | "key_owner.removed" | "credential.revoked" | "instance.zeroized" => {
            (None, Delete, None)
        }
        "access.denied" | "admin.command_denied" | "operation.failed" => (None, Other, None),
        _ => (None, Update, None),
    }
}

/// The target of an event: the key where there is one, otherwise the
/// approval request, key ring, credential, administrator or key owner it
/// names, otherwise the instance.
fn target(instance: &str, event_type: &str, p: &Map<String, Value>) -> Target {
    let crn = |kind: &str, id: &str| format!("crn:v1:keyledger:kms:{instance}:{kind}:{id}");
    let family = event_type.split('.').next().unwrap_or_default();
    let named = |kind: &str, field: &str, type_uri: &'static str| {
        text(p, field).map(|id| Target {
            id: crn(kind, &id),
            type_uri,
            name: None,
        })
    };
    let found = match family {
        "approval" | "operation" => named("approval", "request_id", "kms/approvals"),
        "key_ring" => named("key-ring", "key_ring_id", "kms/key-rings"),
        "import_token" => named("import-token", "token_id", "kms/import-tokens"),
        "credential" => named("credential", "credential_id", "kms/credentials"),
        "admin" => named("admin", "admin_id", "kms/admins"),
        "key_owner" => named("key-owner", "owner_id", "kms/key-owners"),
        _ => named("key", "key_id", "kms/secrets").map(|mut t| {
            t.name = text(p, "name").or_else(|| text(p, "alias"));
            t
        }),
    };
    found.unwrap_or_else(|| Target {
        id: format!("crn:v1:keyledger:kms:{instance}"),
        type_uri: "kms/instance",
        name: None,
    })
}

fn severity(event_type: &str, outcome: Outcome) -> u8 {
    match event_type {
        "instance.zeroized" => 9,
        "ledger.tail_recovered" | "instance.sealed" => 7,
        _ if outcome == Outcome::Failure => 6,
        "key.destroyed" | "key.purged" | "admin.removed" | "key_owner.removed"
        | "credential.revoked" | "ledger_key.rotated" | "master_key.rotated"
        // Forwarding changed (or stopped): what the SIEM sees from now on.
        | "export.sinks_set" => 5,
        _ => 3,
    }
}

/// The CADF `typeURI` of an initiator.
pub fn initiator_type(actor: &Actor) -> &'static str {
    match actor.role {
        Role::System => "service/keyledger",
        Role::Anonymous => "unknown",
        _ => match actor.auth {
            AuthMethod::Bearer => "service/security/account/serviceid",
            _ => "service/security/account/user",
        },
    }
}

/// `snake_case` name of a role.
pub fn role_name(role: Role) -> String {
    unquote(serde_json::to_value(role))
}

/// `snake_case` name of an authentication method.
pub fn auth_name(auth: AuthMethod) -> String {
    unquote(serde_json::to_value(auth))
}

fn unquote(value: Result<Value, serde_json::Error>) -> String {
    match value {
        Ok(Value::String(s)) => s,
        _ => "unknown".into(),
    }
}

/// A stored event parsed and checked: every way [`Mapped::new`] can fail.
struct Checked<'a> {
    env: Envelope<'a>,
    time_ms: i64,
    payload: Map<String, Value>,
}

/// Parses record `seq`'s event and refuses it where it names another
/// instance or position, or its time or payload does not parse.
fn parse_checked<'a>(
    instance: &str,
    seq: u64,
    record: &'a Record,
) -> Result<Checked<'a>, ExportError> {
    let malformed = |reason: String| ExportError::Malformed { seq, reason };
    let env = Envelope::parse(&record.event).map_err(|e| malformed(e.to_string()))?;
    if env.instance != instance || env.seq != seq {
        return Err(ExportError::Mismatch {
            seq,
            found_instance: env.instance.chars().take(64).collect(),
            found_seq: env.seq,
        });
    }
    let time_ms = chrono::DateTime::parse_from_rfc3339(&env.time)
        .map_err(|e| malformed(format!("time {:?}: {e}", env.time)))?
        .timestamp_millis();
    let payload: Map<String, Value> =
        serde_json::from_str(env.payload.get()).map_err(|e| malformed(e.to_string()))?;
    Ok(Checked {
        env,
        time_ms,
        payload,
    })
}

/// Fails exactly where [`Mapped::new`] would, without building the
/// mapping (no leaf hash, target or field copies): the check JSON lines
/// export makes before writing the record as stored.
pub fn check(instance: &str, seq: u64, record: &Record) -> Result<(), ExportError> {
    parse_checked(instance, seq, record).map(|_| ())
}

impl Mapped {
    /// Maps record `seq` of `instance`; refuses a record whose event names
    /// another instance or position, or does not parse.
    pub fn new(instance: &str, seq: u64, record: &Record) -> Result<Mapped, ExportError> {
        let Checked {
            env,
            time_ms,
            payload,
        } = parse_checked(instance, seq, record)?;
        let t = env.event_type.as_str();
        let (action, activity, mut key_state) = classify(t);
        let action = match (action, t) {
            (Some(a), _) => a.to_string(),
            (None, "key.operation_failed") => {
                failed_action(payload.get("action").and_then(Value::as_str))
            }
            (None, _) => format!("keyledger.{t}"),
        };
        let outcome = match t {
            "access.denied"
            | "key.operation_failed"
            | "operation.failed"
            | "admin.command_denied" => Outcome::Failure,
            _ => Outcome::Success,
        };
        if t == "key.created" {
            // Pre-activation until its activation date when that is later
            // than the event; active at once otherwise.
            let later = text(&payload, "activation_date").is_some_and(|d| {
                chrono::DateTime::parse_from_rfc3339(&d)
                    .is_ok_and(|d| d.timestamp_millis() > time_ms)
            });
            key_state = Some(if later { 0 } else { 1 });
        }
        let (reason_code, reason_text) = match t {
            "key.operation_failed" => (text(&payload, "reason"), None),
            "access.denied" => (Some("ACCESS_DENIED".into()), text(&payload, "reason")),
            "admin.command_denied" => (Some("COMMAND_DENIED".into()), text(&payload, "reason")),
            "operation.failed" => (Some("OPERATION_FAILED".into()), text(&payload, "reason")),
            _ => (None, None),
        };
        let key_version_id = match t {
            "key.rewrapped" => text(&payload, "to_version_id"),
            _ => text(&payload, "version_id"),
        };
        Ok(Mapped {
            instance: instance.to_string(),
            seq,
            leaf_hash: hex::encode(record.leaf_hash()),
            time_ms,
            family: t.split('.').next().unwrap_or_default().to_string(),
            target: target(instance, t, &payload),
            severity: severity(t, outcome),
            request_uri: if t == "access.denied" {
                text(&payload, "target")
            } else {
                None
            },
            rewrapped_key_version_id: text(&payload, "rewrapped_version_id"),
            key_version_id,
            reason_code,
            reason_text,
            key_state,
            action,
            outcome,
            activity,
            event_type: env.event_type,
            time: env.time,
            actor: env.actor,
            correlation_id: env.correlation_id,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    //! Hand-made mappings for the renderers' byte-for-byte tests.
    use super::*;

    /// Every special character of JSON, CEF and LEEF, multi-byte ones, at
    /// the ends and doubled.
    pub(crate) const NASTY: &str = "|a=b\\c\nd\re^f||==\\\\\"q\"\u{1}\té✓^";

    /// Mappings with every optional field absent and present, both
    /// outcomes, every severity band, several roles and methods, times in
    /// and out of chrono's range, plain and awkward strings.
    pub(crate) fn samples() -> Vec<Mapped> {
        let roles = [
            (Role::System, AuthMethod::Internal),
            (Role::Admin, AuthMethod::AdminSignatures),
            (Role::KeyOwner, AuthMethod::Bearer),
            (Role::Anonymous, AuthMethod::LocalCli),
            (Role::Manager, AuthMethod::KeyOwnerCredential),
        ];
        let mut out = Vec::new();
        let mut i = 0usize;
        for nasty in [NASTY, "", "plain"] {
            for full in [false, true] {
                for failure in [false, true] {
                    // The last time is out of chrono's range: LEEF falls
                    // back to the stored time.
                    for time_ms in [0, 1_765_166_400_123, -1, i64::MAX] {
                        i += 1;
                        let (role, auth) = roles[i % roles.len()];
                        let opt = |s: &str| full.then(|| format!("{s}{nasty}"));
                        out.push(Mapped {
                            instance: format!("inst{nasty}"),
                            seq: if full { u64::MAX } else { i as u64 },
                            leaf_hash: "ab".repeat(32),
                            time: format!("2026-12-08T04:00:00.123Z{nasty}"),
                            time_ms,
                            event_type: format!("key.created{nasty}"),
                            family: format!("key{nasty}"),
                            actor: Actor {
                                principal: format!("p{nasty}"),
                                role,
                                auth,
                            },
                            correlation_id: format!("c{nasty}"),
                            action: format!("kms.secrets.create{nasty}"),
                            outcome: if failure {
                                Outcome::Failure
                            } else {
                                Outcome::Success
                            },
                            activity: [
                                Activity::Create,
                                Activity::Read,
                                Activity::Update,
                                Activity::Delete,
                                Activity::Other,
                            ][i % 5],
                            target: Target {
                                id: format!("crn{nasty}"),
                                type_uri: "kms/secrets",
                                name: opt("name"),
                            },
                            reason_code: opt("code"),
                            reason_text: opt("words"),
                            key_version_id: opt("v"),
                            rewrapped_key_version_id: opt("r"),
                            key_state: full.then_some((i % 6) as u8),
                            request_uri: opt("/api"),
                            severity: (i % 12) as u8,
                        });
                    }
                }
            }
        }
        out
    }
}
