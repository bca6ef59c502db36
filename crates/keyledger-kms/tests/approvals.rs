//! Approvals, the crypto worker and policy-driven operations, given / when /
//! then: given the events earlier commands wrote, when one command runs,
//! then exactly these new events (or this error, one denial event and no
//! other change). Dual-authorisation delete and purge as approvals, the
//! requester approving themself, expiry, cancellation, the instance policy,
//! the rotation policy on an advancing clock, and the worker's recovery
//! after a child process is really killed between an operation's effect and
//! its outcome (failpoints, see `keyledger_kms::service::failpoint`).

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use ed25519_dalek::SigningKey;
use serde_json::{Value, json};

use common::key_env::{self, KeyEnv, Owner, TestClock, admin, user};
use keyledger_core::event::Envelope;
use keyledger_core::governance::{AdminCommand, ApprovalDenial, ApprovalStatus};
use keyledger_core::keys::state::{KeyState, StateError};
use keyledger_kms::hsm::ceremony;
use keyledger_kms::hsm::software::SoftwareHsm;
use keyledger_kms::hsm::{HsmBackend, KeyBinding};
use keyledger_kms::material::KeyMaterialStore;
use keyledger_kms::material::embedded::EmbeddedMaterialStore;
use keyledger_kms::secret::SecretBytes;
use keyledger_kms::service::{
    CreateKey, Gated, KeyError, KeyMaterialSource, KeyService, Projections, failpoint,
};
// The reason a refusal names; its HTTP status is the server's mapping
// (tested with the server), so these tests pin the reason itself.
use keyledger_core::reason::Reason;

fn software() -> Arc<dyn HsmBackend> {
    Arc::new(SoftwareHsm::new())
}

fn now(clock: &TestClock) -> DateTime<Utc> {
    *clock.0.lock().expect("clock")
}

fn set_time(clock: &TestClock, t: DateTime<Utc>) {
    *clock.0.lock().expect("clock") = t;
}

fn create(s: &KeyService, name: &str, material: KeyMaterialSource, extractable: bool) -> String {
    let request = CreateKey {
        name: name.into(),
        description: None,
        extractable,
        key_ring_id: None,
        aliases: vec![],
        expiration_date: None,
        activation_date: None,
        material,
    };
    s.create_key(&user("creator"), "create", request)
        .expect("create key")
        .0
        .id
}

fn root_key(s: &KeyService, name: &str) -> String {
    create(s, name, KeyMaterialSource::Generate, false)
}

/// A root key with the key-level dualAuthDelete policy.
fn dual_auth_key(s: &KeyService, name: &str) -> String {
    let id = root_key(s, name);
    s.set_key_policy(&admin(), "policy", &id, "dualAuthDelete", true, None)
        .expect("dualAuthDelete policy");
    id
}

fn log_size(s: &KeyService) -> u64 {
    s.writer().log().head().size
}

/// One stored event, as the tests look at it.
#[derive(Debug)]
struct Ev {
    kind: String,
    actor: String,
    payload: Value,
}

fn events_in(s: &KeyService, from: u64) -> Vec<Ev> {
    let log = s.writer().log();
    log.read(from, log.head().size)
        .expect("read log")
        .iter()
        .map(|r| {
            let e = Envelope::parse(&r.event).expect("envelope");
            Ev {
                kind: e.event_type.clone(),
                actor: e.actor.principal.clone(),
                payload: serde_json::from_str(e.payload.get()).expect("payload"),
            }
        })
        .collect()
}

fn kinds(events: &[Ev]) -> Vec<&str> {
    events.iter().map(|e| e.kind.as_str()).collect()
}

/// Then: `result` is refused, the log grew by exactly one
/// `key.operation_failed` by `who` for `key_id`/`action` with `reason`, and
/// no projection changed (nothing executed, no approval counted).
fn then_refused<T: std::fmt::Debug>(
    s: &KeyService,
    result: Result<T, KeyError>,
    (who, key_id, action, reason): (&str, &str, &str, &str),
    before: (u64, &Projections),
) -> KeyError {
    let err = result.expect_err("refused");
    assert_eq!(err.reason().code(), reason, "{err}");
    let events = events_in(s, before.0);
    assert_eq!(kinds(&events), ["key.operation_failed"], "{err}");
    assert_eq!(events[0].actor, who);
    assert_eq!(
        events[0].payload,
        json!({"key_id": key_id, "action": action, "reason": reason})
    );
    assert_eq!(&s.projections(), before.1, "a refusal changed state");
    err
}

/// Projections rebuilt from the log equal the live ones; every event
/// matches its schema.
fn assert_consistent(s: &KeyService) {
    let log = s.writer().log();
    let records = log.read(0, log.head().size).expect("read");
    let rebuilt = Projections::rebuild(records.iter().map(|r| r.event.as_slice()));
    assert_eq!(rebuilt, s.projections(), "rebuild differs from live state");
    assert_eq!(rebuilt.keys.ignored_events, 0);
    common::events::Schemas::load().check_all(&records);
}

fn request_id_of(e: &Ev) -> String {
    e.payload["request_id"]
        .as_str()
        .expect("request_id")
        .to_string()
}

/// Given a dual-auth key that alice set for deletion: (key id, request id).
fn given_set_for_deletion(env: &KeyEnv) -> (String, String) {
    let s = &env.service;
    let id = dual_auth_key(s, "guarded");
    let mark = log_size(s);
    s.set_key_for_deletion(&user("alice"), "set", &id)
        .expect("setKeyForDeletion");
    let events = events_in(s, mark);
    assert_eq!(kinds(&events), ["approval.requested"]);
    (id, request_id_of(&events[0]))
}

#[test]
fn dual_auth_delete_is_a_request_then_another_principals_approval() {
    let dir = tempfile::tempdir().expect("tmp");
    let env = key_env::ready(dir.path(), "acme", software());
    let s = &env.service;
    // Given a key with the dualAuthDelete policy.
    let id = dual_auth_key(s, "guarded");
    // When alice sets it for deletion,
    let t0 = now(&env.clock);
    let mark = log_size(s);
    s.set_key_for_deletion(&user("alice"), "set", &id)
        .expect("setKeyForDeletion");
    // then one approval.requested by alice: key.delete of this key, one
    // approval by someone else, within seven days.
    let events = events_in(s, mark);
    assert_eq!(kinds(&events), ["approval.requested"]);
    assert_eq!(events[0].actor, "alice");
    let request_id = request_id_of(&events[0]);
    let expires = (t0 + Duration::days(7)).to_rfc3339_opts(SecondsFormat::Millis, true);
    assert_eq!(
        events[0].payload,
        json!({"request_id": request_id, "operation": "key.delete", "target": id,
               "required_approvals": 1, "expires_at": expires})
    );
    // The key's metadata shows the authorisation (Key Protect's
    // dualAuthDelete.keySetForDeletion / authExpiration), the key stays usable.
    let key = s.key(&id).expect("key");
    assert!(key.dual_auth_delete.key_set_for_deletion);
    assert_eq!(
        key.dual_auth_delete
            .auth_expiration
            .map(|t| t.timestamp_millis()),
        Some((t0 + Duration::days(7)).timestamp_millis())
    );
    assert_eq!(key.dual_auth_delete.set_by.as_deref(), Some("alice"));
    assert_eq!(
        key.dual_auth_delete.request_id.as_deref(),
        Some(request_id.as_str())
    );
    assert_eq!(key.state, KeyState::Active);
    s.wrap(&user("alice"), "w", &id, None, &[])
        .expect("an authorised key still wraps");

    // When bob deletes it a minute before the window closes,
    env.clock.advance(Duration::days(7) - Duration::minutes(1));
    let mark = log_size(s);
    let receipt = s
        .delete_key(&user("bob"), "del", &id, false)
        .expect("bob deletes");
    // then bob's approval, and the worker's outcome referencing the request.
    let events = events_in(s, mark);
    assert_eq!(kinds(&events), ["approval.granted", "key.destroyed"]);
    assert_eq!(
        events[0].payload,
        json!({"request_id": request_id, "approver": "bob"})
    );
    assert_eq!(
        events[1].payload,
        json!({"key_id": id, "force": false, "approval_request_id": request_id})
    );
    assert_eq!(
        (events[0].actor.as_str(), events[1].actor.as_str()),
        ("bob", "bob")
    );
    assert_eq!(receipt.seq, mark + 1, "the caller gets the outcome");
    let key = s.key(&id).expect("key");
    assert_eq!(key.state, KeyState::Destroyed);
    assert_eq!(key.deleted_by.as_deref(), Some("bob"));
    assert!(!key.dual_auth_delete.key_set_for_deletion);
    let approval = s.projections().governance.approvals[&request_id].clone();
    assert_eq!(approval.status, ApprovalStatus::Executed(mark + 1));
    assert_eq!(approval.quorum_seq(), Some(mark));
    // The worker finds nothing left to do.
    assert_eq!(s.run_worker().expect("worker"), 0);
    assert_eq!(log_size(s), mark + 2);
    assert_consistent(s);
}

#[test]
fn the_requester_approving_themself_is_refused_and_nothing_runs() {
    let dir = tempfile::tempdir().expect("tmp");
    let env = key_env::ready(dir.path(), "acme", software());
    let s = &env.service;
    // Given alice set a dual-auth key for deletion,
    let (id, request_id) = given_set_for_deletion(&env);
    // when alice deletes it herself,
    let before = (log_size(s), &s.projections());
    let result = s.delete_key(&user("alice"), "del", &id, false);
    // then a clear refusal, one denial event, and nothing executed.
    let err = then_refused(
        s,
        result,
        ("alice", &id, "delete", "AUTHORIZATIONS_NOT_MET"),
        before,
    );
    assert!(
        matches!(&err, KeyError::Approval(ApprovalDenial::SelfApproval { principal, .. }) if principal == "alice"),
        "{err:?}"
    );
    assert_eq!(err.reason(), Reason::AuthorizationsNotMet);
    assert_eq!(
        err.to_string(),
        "refused: alice requested this key.delete and cannot approve it: a different principal must"
    );
    // The same through the generic approval entry point.
    let before = (log_size(s), &s.projections());
    let result = s.approve_request(&user("alice"), "approve", &request_id);
    then_refused(
        s,
        result,
        ("alice", &id, "delete", "AUTHORIZATIONS_NOT_MET"),
        before,
    );
    let key = s.key(&id).expect("key");
    assert_eq!(key.state, KeyState::Active);
    s.wrap(&user("alice"), "w", &id, None, &[])
        .expect("still usable");
    // The request is still open: another principal completes it.
    let mark = log_size(s);
    s.approve_request(&user("bob"), "approve", &request_id)
        .expect("bob approves");
    assert_eq!(
        kinds(&events_in(s, mark)),
        ["approval.granted", "key.destroyed"]
    );
    assert_consistent(s);
}

#[test]
fn approvals_after_expiry_are_refused_and_a_sweep_records_the_expiry() {
    let dir = tempfile::tempdir().expect("tmp");
    let env = key_env::ready(dir.path(), "acme", software());
    let s = &env.service;
    // Given alice set a key for deletion seven days ago,
    let (id, request_id) = given_set_for_deletion(&env);
    env.clock.advance(Duration::days(7));
    // when bob deletes it (before any sweep),
    let before = (log_size(s), &s.projections());
    let result = s.delete_key(&user("bob"), "del", &id, false);
    // then refused as expired, and nothing executed.
    let err = then_refused(
        s,
        result,
        ("bob", &id, "delete", "AUTHORIZATIONS_NOT_MET"),
        before,
    );
    assert!(
        matches!(err, KeyError::Approval(ApprovalDenial::Expired { .. })),
        "{err:?}"
    );
    // When the sweep runs, then approval.expired by the service,
    let mark = log_size(s);
    assert_eq!(s.expire_approvals().expect("sweep"), 1);
    let events = events_in(s, mark);
    assert_eq!(kinds(&events), ["approval.expired"]);
    assert_eq!(events[0].actor, "system");
    assert_eq!(events[0].payload, json!({"request_id": request_id}));
    // the key is no longer set for deletion, and a second sweep does nothing.
    let key = s.key(&id).expect("key");
    assert!(!key.dual_auth_delete.key_set_for_deletion);
    assert_eq!(key.dual_auth_delete.request_id, None);
    assert_eq!(
        s.projections().governance.approvals[&request_id].status,
        ApprovalStatus::Expired
    );
    assert_eq!(s.expire_approvals().expect("sweep"), 0);
    assert_eq!(log_size(s), mark + 1);
    // When bob deletes after the sweep, then still refused.
    let before = (log_size(s), &s.projections());
    let result = s.delete_key(&user("bob"), "del", &id, false);
    let err = then_refused(
        s,
        result,
        ("bob", &id, "delete", "AUTHORIZATIONS_NOT_MET"),
        before,
    );
    assert!(matches!(
        err,
        KeyError::Approval(ApprovalDenial::Expired { .. })
    ));
    // A new authorisation starts a new request, which bob completes.
    s.set_key_for_deletion(&user("alice"), "set", &id)
        .expect("set again");
    let mark = log_size(s);
    s.delete_key(&user("bob"), "del", &id, false)
        .expect("bob deletes");
    let events = events_in(s, mark);
    assert_eq!(kinds(&events), ["approval.granted", "key.destroyed"]);
    assert_ne!(request_id_of(&events[0]), request_id);
    assert_consistent(s);
}

#[test]
fn a_cancelled_request_cannot_be_approved() {
    let dir = tempfile::tempdir().expect("tmp");
    let env = key_env::ready(dir.path(), "acme", software());
    let s = &env.service;
    // Given alice set a key for deletion,
    let (id, request_id) = given_set_for_deletion(&env);
    // a second setKeyForDeletion is refused while it is pending;
    let before = (log_size(s), &s.projections());
    let result = s.set_key_for_deletion(&user("carol"), "set", &id);
    let err = then_refused(
        s,
        result,
        (
            "carol",
            &id,
            "setKeyForDeletion",
            "KEY_ACTION_INVALID_STATE_ERR",
        ),
        before,
    );
    assert!(
        matches!(err, KeyError::Approval(ApprovalDenial::AlreadyPending { ref requester, .. }) if requester == "alice")
    );
    // when carol unsets it, then approval.cancelled by carol.
    let mark = log_size(s);
    s.unset_key_for_deletion(&user("carol"), "unset", &id)
        .expect("unset");
    let events = events_in(s, mark);
    assert_eq!(kinds(&events), ["approval.cancelled"]);
    assert_eq!(events[0].actor, "carol");
    assert_eq!(
        events[0].payload,
        json!({"request_id": request_id, "reason": "unsetKeyForDeletion"})
    );
    assert!(
        !s.key(&id)
            .expect("key")
            .dual_auth_delete
            .key_set_for_deletion
    );
    // When bob deletes, then refused: the request was cancelled.
    let before = (log_size(s), &s.projections());
    let result = s.delete_key(&user("bob"), "del", &id, false);
    let err = then_refused(
        s,
        result,
        ("bob", &id, "delete", "AUTHORIZATIONS_NOT_MET"),
        before,
    );
    assert!(
        matches!(err, KeyError::Approval(ApprovalDenial::Cancelled)),
        "{err:?}"
    );
    let before = (log_size(s), &s.projections());
    let result = s.approve_request(&user("bob"), "approve", &request_id);
    then_refused(
        s,
        result,
        ("bob", &id, "delete", "AUTHORIZATIONS_NOT_MET"),
        before,
    );
    // Nothing is pending now: unset is refused too.
    let before = (log_size(s), &s.projections());
    let result = s.unset_key_for_deletion(&user("carol"), "unset", &id);
    then_refused(
        s,
        result,
        (
            "carol",
            &id,
            "unsetKeyForDeletion",
            "KEY_ACTION_INVALID_STATE_ERR",
        ),
        before,
    );
    // A cancelled request never expires.
    env.clock.advance(Duration::days(8));
    assert_eq!(s.expire_approvals().expect("sweep"), 0);
    assert_eq!(s.key(&id).expect("key").state, KeyState::Active);
    assert_consistent(s);
}

#[test]
fn the_instance_policy_applies_to_keys_created_under_it() {
    let dir = tempfile::tempdir().expect("tmp");
    let env = key_env::ready(dir.path(), "acme", software());
    let s = &env.service;
    // Given a key created before the instance policy,
    let old = root_key(s, "old-key");
    let policy = |enabled| AdminCommand::SetInstancePolicy {
        policy_type: "dualAuthDelete".into(),
        enabled,
        attributes: Default::default(),
    };
    key_env::admin_command(s, &env.clock, policy(true)).expect("instance policy");
    // and two created after it (they inherit the policy, as in Key Protect),
    let new = root_key(s, "new-key");
    let other_new = root_key(s, "other-new-key");
    assert!(s.key(&new).expect("new").dual_auth_delete.enabled);
    assert!(!s.key(&old).expect("old").dual_auth_delete.enabled);
    // when alice deletes a new key alone, then refused.
    let before = (log_size(s), &s.projections());
    let result = s.delete_key(&user("alice"), "del", &new, false);
    let err = then_refused(
        s,
        result,
        ("alice", &new, "delete", "AUTHORIZATIONS_NOT_MET"),
        before,
    );
    assert!(matches!(
        err,
        KeyError::State(StateError::AuthorizationsNotMet)
    ));
    // With the request and another principal, it is deleted.
    s.set_key_for_deletion(&user("alice"), "set", &new)
        .expect("set");
    let mark = log_size(s);
    s.delete_key(&user("bob"), "del", &new, false)
        .expect("bob deletes");
    assert_eq!(
        kinds(&events_in(s, mark)),
        ["approval.granted", "key.destroyed"]
    );
    // The older key keeps its own setting: one principal deletes it.
    let mark = log_size(s);
    s.delete_key(&user("carol"), "del", &old, false)
        .expect("single delete");
    let events = events_in(s, mark);
    assert_eq!(kinds(&events), ["key.destroyed"]);
    assert_eq!(events[0].payload["approval_request_id"], Value::Null);
    // Disabling the instance policy does not take it from keys that have it.
    key_env::admin_command(s, &env.clock, policy(false)).expect("policy off");
    let before = (log_size(s), &s.projections());
    let result = s.delete_key(&user("carol"), "del", &other_new, false);
    then_refused(
        s,
        result,
        ("carol", &other_new, "delete", "AUTHORIZATIONS_NOT_MET"),
        before,
    );
    assert_consistent(s);
}

#[test]
fn a_dual_auth_purge_needs_a_second_principal_too() {
    let dir = tempfile::tempdir().expect("tmp");
    let env = key_env::ready(dir.path(), "acme", software());
    let s = &env.service;
    let material_dir = env.data.join("instances/acme/material");
    // Given a dual-auth key with a ciphertext, deleted by alice and bob,
    let (id, _) = given_set_for_deletion(&env);
    let ct = s
        .wrap(&user("alice"), "w", &id, None, &[])
        .expect("wrap")
        .ciphertext;
    s.delete_key(&user("bob"), "del", &id, false)
        .expect("delete");
    // a purge within four hours is refused and requests nothing;
    env.clock.advance(Duration::hours(1));
    let before = (log_size(s), &s.projections());
    let result = s.purge_key(&user("alice"), "purge", &id);
    then_refused(
        s,
        result,
        ("alice", &id, "purge", "REQ_TOO_EARLY_ERR"),
        before,
    );
    // when alice purges after four hours, then a key.purge request.
    env.clock.advance(Duration::hours(4));
    let mark = log_size(s);
    let Gated::Pending { request_id: r1, .. } =
        s.purge_key(&user("alice"), "purge", &id).expect("request")
    else {
        panic!("the first purge only requests");
    };
    let events = events_in(s, mark);
    assert_eq!(kinds(&events), ["approval.requested"]);
    assert_eq!(events[0].payload["operation"], "key.purge");
    assert!(material_dir.join(&id).exists(), "nothing shredded yet");
    // When alice purges again, then refused: she requested it.
    let before = (log_size(s), &s.projections());
    let result = s.purge_key(&user("alice"), "purge", &id);
    let err = then_refused(
        s,
        result,
        ("alice", &id, "purge", "AUTHORIZATIONS_NOT_MET"),
        before,
    );
    assert!(matches!(
        err,
        KeyError::Approval(ApprovalDenial::SelfApproval { .. })
    ));
    // When carol cancels it, bob's purge is a new request,
    s.cancel_approval(&user("carol"), "cancel", &r1, "not yet")
        .expect("cancel");
    let Gated::Pending { request_id: r2, .. } =
        s.purge_key(&user("bob"), "purge", &id).expect("request")
    else {
        panic!("after a cancellation the purge requests again");
    };
    assert_ne!(r1, r2);
    // which alice approves: then the worker shreds and records the outcome.
    let mark = log_size(s);
    let Gated::Executed(receipt) = s.purge_key(&user("alice"), "purge", &id).expect("purge") else {
        panic!("the second principal's purge executes");
    };
    let events = events_in(s, mark);
    assert_eq!(kinds(&events), ["approval.granted", "key.purged"]);
    assert_eq!(receipt.seq, mark + 1);
    assert_eq!(
        events[1].payload,
        json!({"key_id": id, "versions_shredded": 1, "approval_request_id": r2})
    );
    assert_eq!(events[1].actor, "alice");
    assert!(!material_dir.join(&id).exists(), "material shredded");
    assert!(s.projections().keys.purged.contains(&id));
    assert!(s.unwrap(&user("a"), "u", &id, &ct, &[]).is_err());
    assert_consistent(s);
}

#[test]
fn the_rotation_policy_rotates_on_schedule() {
    let dir = tempfile::tempdir().expect("tmp");
    let env = key_env::ready(dir.path(), "acme", software());
    let s = &env.service;
    // Given a key with a monthly rotation policy, one without a policy, an
    // imported key and a disabled key with the policy,
    let monthly = root_key(s, "monthly");
    let plain = root_key(s, "plain");
    let imported = create(
        s,
        "imported",
        KeyMaterialSource::Payload(SecretBytes::from_slice(&[7u8; 32])),
        false,
    );
    let disabled = root_key(s, "disabled");
    for id in [&monthly, &imported, &disabled] {
        s.set_key_policy(&admin(), "policy", id, "rotation", true, Some(1))
            .expect("rotation policy");
    }
    s.disable_key(&user("alice"), "off", &disabled)
        .expect("disable");
    let ct = s
        .wrap(&user("alice"), "w", &monthly, None, &[])
        .expect("wrap v1")
        .ciphertext;
    let due = s
        .key(&monthly)
        .expect("key")
        .next_rotation()
        .expect("due date");
    assert_eq!(
        due,
        s.key(&monthly)
            .expect("key")
            .creation_date
            .checked_add_months(chrono::Months::new(1))
            .expect("date")
    );
    // when the worker runs before the month is over, then nothing;
    set_time(&env.clock, due - Duration::seconds(1));
    let mark = log_size(s);
    assert_eq!(s.rotate_due().expect("rotate_due"), 0);
    assert_eq!(log_size(s), mark);
    // when it is due, then exactly one key.rotated, by the service.
    set_time(&env.clock, due);
    assert_eq!(s.rotate_due().expect("rotate_due"), 1);
    let events = events_in(s, mark);
    assert_eq!(kinds(&events), ["key.rotated"]);
    assert_eq!(events[0].actor, "system");
    assert_eq!(events[0].payload["key_id"], monthly);
    // Running again does not rotate twice.
    assert_eq!(s.rotate_due().expect("rotate_due"), 0);
    assert_eq!(log_size(s), mark + 1);
    let key = s.key(&monthly).expect("key");
    assert_eq!(key.versions.len(), 2);
    // A month after that rotation, the next one.
    let next = key.next_rotation().expect("next");
    assert!(next > due);
    set_time(&env.clock, next);
    assert_eq!(s.rotate_due().expect("rotate_due"), 1);
    assert_eq!(s.key(&monthly).expect("key").versions.len(), 3);
    for id in [&plain, &imported, &disabled] {
        assert_eq!(s.key(id).expect("key").versions.len(), 1, "{id}");
    }
    // Old ciphertexts still unwrap; new wraps use the newest version.
    s.unwrap(&user("a"), "u", &monthly, &ct, &[])
        .expect("v1 ciphertext");
    let wrapped = s
        .wrap(&user("a"), "w", &monthly, None, &[])
        .expect("wrap v3");
    assert_eq!(
        wrapped.key_version_id,
        s.key(&monthly).expect("key").versions[2].id
    );
    assert_consistent(s);
}

// ---- the worker under kill: a child process aborts at a failpoint ----

const CHILD_DIR: &str = "KEYLEDGER_APPROVALS_CHILD_DIR";
const CHILD_SCENARIO: &str = "KEYLEDGER_APPROVALS_CHILD_SCENARIO";
const CHILD_START: &str = "KEYLEDGER_APPROVALS_CHILD_START";

/// Key owners with fixed keys and parts, so the parent process can unseal
/// what the child created.
fn fixed_owners() -> Vec<Owner> {
    [("owner-a", 0x0au8, 0x11u8), ("owner-b", 0x0b, 0x5c)]
        .into_iter()
        .map(|(id, key, part)| Owner {
            id: id.into(),
            key: SigningKey::from_bytes(&[key; 32]),
            part: SecretBytes::from_slice(&[part; 32]),
        })
        .collect()
}

fn unseal(s: &KeyService, owners: &[Owner]) {
    assert!(s.sealed());
    for o in owners {
        o.submit(s, &o.part).expect("resubmit part");
    }
    s.commit_master_key(&admin(), "unseal").expect("commit");
    s.activate_master_key(&admin(), "unseal").expect("unseal");
}

/// Runs up to the step that hits the failpoint set for this child. Prints
/// `key <id>`, `ciphertext <b64>` and `ready` lines for the parent.
#[test]
#[ignore = "run as a child process by the kill tests below"]
fn kill_child() {
    let (Ok(dir), Ok(scenario), Ok(start)) = (
        std::env::var(CHILD_DIR),
        std::env::var(CHILD_SCENARIO),
        std::env::var(CHILD_START),
    ) else {
        return;
    };
    // The harness prints "test kill_child ... " without a newline first.
    println!();
    let start = DateTime::parse_from_rfc3339(&start)
        .expect("start")
        .with_timezone(&Utc);
    let clock = TestClock(Arc::new(Mutex::new(start)));
    let s = key_env::open_service(Path::new(&dir), "acme", software(), &clock);
    let owners = fixed_owners();
    key_env::register_owners(&s, &clock, &owners.iter().collect::<Vec<_>>());
    key_env::load_master_key(
        &s,
        &clock,
        &owners,
        &owners.iter().map(|o| &o.part).collect::<Vec<_>>(),
    );
    let bystander = root_key(&s, "bystander");
    s.wrap(&user("alice"), "w", &bystander, None, &[])
        .expect("wrap");
    match scenario.as_str() {
        "delete" => {
            let id = dual_auth_key(&s, "doomed");
            s.set_key_for_deletion(&user("alice"), "set", &id)
                .expect("set");
            println!("key {id}");
            println!("ready");
            let _ = s.delete_key(&user("bob"), "del", &id, false);
        }
        "purge" => {
            let id = dual_auth_key(&s, "doomed");
            s.rotate_key(&user("alice"), "rot", &id, None)
                .expect("rotate");
            let ct = s.wrap(&user("alice"), "w", &id, None, &[]).expect("wrap");
            println!("ciphertext {}", ct.ciphertext);
            s.set_key_for_deletion(&user("alice"), "set", &id)
                .expect("set");
            s.delete_key(&user("bob"), "del", &id, false)
                .expect("delete");
            clock.advance(Duration::hours(5));
            s.purge_key(&user("alice"), "purge", &id)
                .expect("purge request");
            println!("key {id}");
            println!("ready");
            let _ = s.purge_key(&user("bob"), "purge", &id);
        }
        "rotate" => {
            let id = root_key(&s, "rotating");
            s.set_key_policy(&admin(), "policy", &id, "rotation", true, Some(1))
                .expect("policy");
            let ct = s.wrap(&user("alice"), "w", &id, None, &[]).expect("wrap");
            println!("ciphertext {}", ct.ciphertext);
            clock.advance(Duration::days(32));
            println!("key {id}");
            println!("ready");
            let _ = s.rotate_due();
        }
        other => panic!("unknown scenario {other}"),
    }
    println!("survived the failpoint");
}

/// What the killed child left behind.
struct Killed {
    data: tempfile::TempDir,
    key: String,
    ciphertext: Option<String>,
    clock: TestClock,
}

/// Runs `scenario` in a child that aborts at `point`, then checks that it
/// died there (SIGABRT, the failpoint's message, never past it).
fn kill_at(scenario: &str, point: &str, advance: Duration) -> Killed {
    let data = tempfile::tempdir().expect("tmp");
    let start = Utc::now();
    let out = Command::new(std::env::current_exe().expect("exe"))
        .args([
            "--exact",
            "kill_child",
            "--ignored",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD_DIR, data.path())
        .env(CHILD_SCENARIO, scenario)
        .env(CHILD_START, start.to_rfc3339())
        .env(failpoint::ENV, point)
        .output()
        .expect("run child");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGABRT),
        "the child aborted: {:?}\n{stdout}\n{stderr}",
        out.status
    );
    assert!(
        stderr.contains(&format!("failpoint {point}: aborting")),
        "{stderr}"
    );
    assert!(stdout.contains("\nready\n"), "{stdout}");
    assert!(!stdout.contains("survived"), "{stdout}");
    let field = |name: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .map(str::to_string)
    };
    Killed {
        key: field("key").expect("key id printed"),
        ciphertext: field("ciphertext"),
        clock: TestClock(Arc::new(Mutex::new(start + advance + Duration::minutes(1)))),
        data,
    }
}

/// The log as the killed child left it: its size and its projections.
fn left_behind(data: &Path) -> (u64, Projections, Vec<Ev>) {
    use keyledger_ledger::store::EventStore;
    let store = keyledger_ledger::store::embedded::EmbeddedStore::open(data).expect("store");
    let log = store.open_instance("acme").expect("instance");
    let records = log.read(0, log.head().size).expect("read");
    let projections = Projections::rebuild(records.iter().map(|r| r.event.as_slice()));
    let events = records
        .iter()
        .map(|r| {
            let e = Envelope::parse(&r.event).expect("envelope");
            Ev {
                kind: e.event_type.clone(),
                actor: e.actor.principal.clone(),
                payload: serde_json::from_str(e.payload.get()).expect("payload"),
            }
        })
        .collect();
    (records.len() as u64, projections, events)
}

fn material_versions(data: &Path, key: &str) -> Vec<u32> {
    EmbeddedMaterialStore::open(data)
        .expect("material store")
        .versions("acme", key)
        .expect("versions")
}

#[test]
fn a_delete_approved_before_a_kill_is_executed_once_at_restart() {
    // Given bob's approval is durable and the process dies before the worker
    // executes it,
    let k = kill_at("delete", failpoint::WORKER_AFTER_QUORUM, Duration::zero());
    let (size, before, events) = left_behind(k.data.path());
    let last = events.last().expect("events");
    assert_eq!(
        (last.kind.as_str(), last.actor.as_str()),
        ("approval.granted", "bob")
    );
    let request_id = request_id_of(last);
    assert!(!events.iter().any(|e| e.kind == "key.destroyed"));
    assert_eq!(
        before.keys.get(&k.key).expect("key").state,
        KeyState::Active
    );
    // when the service opens the data directory again (sealed: a new
    // process), then the worker records exactly the outcome, as bob.
    let s = key_env::open_service(k.data.path(), "acme", software(), &k.clock);
    let new = events_in(&s, size);
    assert_eq!(kinds(&new), ["key.destroyed"]);
    assert_eq!(new[0].actor, "bob");
    assert_eq!(
        new[0].payload,
        json!({"key_id": k.key, "force": false, "approval_request_id": request_id})
    );
    let after = s.projections();
    assert_eq!(
        after.keys.get(&k.key).expect("key").state,
        KeyState::Destroyed
    );
    assert_eq!(
        after.governance.approvals[&request_id].status,
        ApprovalStatus::Executed(size)
    );
    // Nothing else changed: every other key is as it was.
    for (id, key) in &before.keys.keys {
        if id != &k.key {
            assert_eq!(after.keys.get(id), Some(key), "{id}");
        }
    }
    assert_consistent(&s);
    // A second restart executes nothing again.
    s.shutdown();
    let s = key_env::open_service(k.data.path(), "acme", software(), &k.clock);
    assert_eq!(log_size(&s), size + 1);
}

#[test]
fn a_kill_between_purge_and_its_outcome_neither_repeats_nor_loses_it() {
    // Given the worker shredded the material and died before `key.purged`,
    let k = kill_at("purge", failpoint::WORKER_AFTER_EFFECT, Duration::hours(5));
    let (size, before, events) = left_behind(k.data.path());
    let last = events.last().expect("events");
    assert_eq!(
        (last.kind.as_str(), last.actor.as_str()),
        ("approval.granted", "bob")
    );
    let request_id = request_id_of(last);
    assert!(!events.iter().any(|e| e.kind == "key.purged"));
    assert_eq!(
        material_versions(k.data.path(), &k.key),
        Vec::<u32>::new(),
        "the effect happened before the kill"
    );
    assert_eq!(before.keys.get(&k.key).expect("key").versions.len(), 2);
    // when the service restarts, then exactly one key.purged, for both versions.
    let s = key_env::open_service(k.data.path(), "acme", software(), &k.clock);
    let new = events_in(&s, size);
    assert_eq!(kinds(&new), ["key.purged"]);
    assert_eq!(new[0].actor, "bob");
    assert_eq!(
        new[0].payload,
        json!({"key_id": k.key, "versions_shredded": 2, "approval_request_id": request_id})
    );
    let after = s.projections();
    assert!(after.keys.purged.contains(&k.key));
    assert_eq!(
        after.governance.approvals[&request_id].status,
        ApprovalStatus::Executed(size)
    );
    for (id, key) in &before.keys.keys {
        if id != &k.key {
            assert_eq!(after.keys.get(id), Some(key), "{id}");
        }
    }
    assert_consistent(&s);
    // After unsealing nothing unwraps the purged key's ciphertext.
    unseal(&s, &fixed_owners());
    let ct = k.ciphertext.expect("ciphertext");
    assert!(s.unwrap(&user("a"), "u", &k.key, &ct, &[]).is_err());
    let end = log_size(&s);
    s.shutdown();
    let s = key_env::open_service(k.data.path(), "acme", software(), &k.clock);
    assert_eq!(log_size(&s), end, "a second restart purges nothing again");
    let purged = events_in(&s, 0)
        .iter()
        .filter(|e| e.kind == "key.purged")
        .count();
    assert_eq!(purged, 1);
}

#[test]
fn a_kill_between_rotation_material_and_its_event_leaves_one_new_version() {
    // Given the worker wrote version 2's material and died before
    // `key.rotated`,
    let k = kill_at("rotate", failpoint::WORKER_AFTER_EFFECT, Duration::days(32));
    let (size, before, events) = left_behind(k.data.path());
    assert!(!events.iter().any(|e| e.kind == "key.rotated"));
    assert_eq!(before.keys.get(&k.key).expect("key").versions.len(), 1);
    assert_eq!(
        material_versions(k.data.path(), &k.key),
        [1, 2],
        "the effect happened before the kill"
    );
    // when the service restarts (sealed: rotation needs the master key),
    let hsm = software();
    let s = key_env::open_service(k.data.path(), "acme", hsm.clone(), &k.clock);
    assert_eq!(log_size(&s), size, "nothing to complete without a request");
    assert!(matches!(s.rotate_due(), Err(KeyError::Sealed)));
    assert_eq!(log_size(&s), size);
    unseal(&s, &fixed_owners());
    let mark = log_size(&s);
    // and the worker runs, then exactly one key.rotated and two versions.
    assert_eq!(s.rotate_due().expect("rotate_due"), 1);
    let new = events_in(&s, mark);
    assert_eq!(kinds(&new), ["key.rotated"]);
    assert_eq!(new[0].payload["key_id"], k.key);
    assert_eq!(s.rotate_due().expect("again"), 0);
    assert_eq!(log_size(&s), mark + 1);
    let key = s.key(&k.key).expect("key");
    assert_eq!(key.versions.len(), 2);
    assert_eq!(material_versions(k.data.path(), &k.key), [1, 2]);
    // The recorded check value is that of the stored version 2 (a root
    // key: the test reads its material from the HSM backend directly).
    let stored = EmbeddedMaterialStore::open(k.data.path())
        .expect("material store")
        .get("acme", &k.key, 2)
        .expect("read")
        .expect("version 2");
    let binding = KeyBinding {
        instance: "acme".into(),
        key_id: k.key.clone(),
        version: 2,
        mk_generation: stored.mk_generation,
    };
    let payload = hsm.export_key(&binding, &stored).expect("export");
    assert_eq!(
        new[0].payload["key_check_value"],
        ceremony::kcv(payload.expose())
    );
    assert_eq!(key.versions[1].kcv, ceremony::kcv(payload.expose()));
    // Version 1's ciphertext still unwraps; nothing else changed.
    let ct = k.ciphertext.expect("ciphertext");
    s.unwrap(&user("a"), "u", &k.key, &ct, &[])
        .expect("v1 ciphertext");
    let after = s.projections();
    for (id, key) in &before.keys.keys {
        if id != &k.key {
            assert_eq!(after.keys.get(id), Some(key), "{id}");
        }
    }
    assert_consistent(&s);
}
