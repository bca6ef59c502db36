//! The governance projection: golden fixtures (`projections/governance/`:
//! events in, expected state out), rebuild-equals-live over random command
//! sequences through the real service, and state as of any seq or time.
//!
//! To (re)write an `expected` value after a reviewed change, run with
//! `KEYLEDGER_BLESS=1` and review the diff.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use chrono::Duration;
use ed25519_dalek::SigningKey;
use proptest::prelude::*;
use serde_json::{Value, json};

use common::key_env::{self, TestClock, admin_command_by, admin_key};
use keyledger_core::event::Envelope;
use keyledger_core::governance::{AdminCommand, GovernanceState, admin_id};
use keyledger_kms::hsm::software::SoftwareHsm;
use keyledger_kms::service::{AsOf, Projections};

fn fixtures_dir() -> PathBuf {
    // The fixtures stay in the workspace root's `projections/`.
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../projections/governance/fixtures")
}

fn envelope_bytes(seq: usize, e: &Value) -> Vec<u8> {
    let principal = e["actor"].as_str().expect("actor");
    let (role, auth) = match principal {
        "system" => ("system", "internal"),
        "operator" => ("operator", "local_cli"),
        p if p.starts_with('a') && p.len() <= 5 => ("admin", "admin_signatures"),
        _ => ("manager", "bearer"),
    };
    serde_json::to_vec(&json!({
        "instance": "acme",
        "seq": seq,
        "time": e["time"],
        "type": e["type"],
        "type_version": 1,
        "actor": {"principal": principal, "role": role, "auth": auth},
        "correlation_id": format!("corr-{seq}"),
        "payload": e["payload"],
        "ledger_key": "00000000",
        "prev": "0".repeat(64),
    }))
    .expect("serialise")
}

#[test]
fn golden_fixtures() {
    let bless = std::env::var_os("KEYLEDGER_BLESS").is_some();
    let mut files: Vec<PathBuf> = fs::read_dir(fixtures_dir())
        .expect("fixtures")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 2);
    for file in files {
        let mut fixture: Value =
            serde_json::from_str(&fs::read_to_string(&file).expect("read")).expect("json");
        let events = fixture["events"].as_array().expect("events").clone();
        let mut state = GovernanceState::default();
        for (seq, e) in events.iter().enumerate() {
            let bytes = envelope_bytes(seq, e);
            let envelope = Envelope::parse(&bytes).expect("fixture event parses");
            keyledger_core::event::check_payload(
                &envelope.event_type,
                envelope.type_version,
                envelope.payload.get(),
            )
            .unwrap_or_else(|err| panic!("{}: event {seq}: {err}", file.display()));
            state.apply(seq as u64, &envelope);
        }
        let got = state.to_json();
        if bless {
            fixture["expected"] = got;
            fs::write(
                &file,
                serde_json::to_string_pretty(&fixture).expect("json") + "\n",
            )
            .expect("write");
        } else {
            assert_eq!(
                got,
                fixture["expected"],
                "{}: projection differs from the golden state (KEYLEDGER_BLESS=1 to rewrite after review)",
                file.display()
            );
        }
    }
}

fn key(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n; 32])
}

/// One step of a random governance history.
#[derive(Debug, Clone)]
enum Step {
    AddAdmin(u8),
    RemoveAdmin(u8),
    Thresholds(u8, u8),
    Issue(u8),
    Revoke(u8),
    Policy(bool),
    Owner(u8),
    Advance,
}

fn step() -> impl Strategy<Value = (Step, Vec<u8>)> {
    let step = prop_oneof![
        (2u8..6).prop_map(Step::AddAdmin),
        (2u8..6).prop_map(Step::RemoveAdmin),
        (0u8..5, 0u8..5).prop_map(|(a, b)| Step::Thresholds(a, b)),
        (0u8..4).prop_map(Step::Issue),
        (0u8..4).prop_map(Step::Revoke),
        any::<bool>().prop_map(Step::Policy),
        (0u8..3).prop_map(Step::Owner),
        Just(Step::Advance),
    ];
    // Signers: indexes into admin keys 1 (= admin_key()) and 2..6.
    (step, prop::collection::vec(1u8..6, 0..4))
}

fn command(step: &Step) -> Option<AdminCommand> {
    let b64 = |k: &SigningKey| {
        base64::engine::general_purpose::STANDARD.encode(k.verifying_key().as_bytes())
    };
    Some(match step {
        Step::AddAdmin(n) => AdminCommand::AddAdmin {
            name: format!("admin-{n}"),
            public_key: b64(&key(*n)),
        },
        Step::RemoveAdmin(n) => AdminCommand::RemoveAdmin {
            admin_id: admin_id(&key(*n).verifying_key()),
        },
        Step::Thresholds(s, r) => AdminCommand::SetThresholds {
            signature_threshold: *s,
            revocation_threshold: *r,
        },
        Step::Issue(n) => AdminCommand::IssueCredential {
            credential_id: format!("cred-{n}"),
            role: ["manager", "writer", "reader", "auditor"][usize::from(*n)].into(),
            token_digest: format!("{n:02x}").repeat(32),
        },
        Step::Revoke(n) => AdminCommand::RevokeCredential {
            credential_id: format!("cred-{n}"),
        },
        Step::Policy(on) => AdminCommand::SetInstancePolicy {
            policy_type: "dualAuthDelete".into(),
            enabled: *on,
            attributes: Default::default(),
        },
        Step::Owner(n) => AdminCommand::RegisterKeyOwner {
            owner_id: format!("owner-{n}"),
            name: format!("owner {n}"),
            public_key: b64(&key(100 + n)),
        },
        Step::Advance => return None,
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// Random command sequences (most refused, some accepted) through the
    /// real service: rebuilding from the log equals the live state, and the
    /// state as of every seq and time equals what the service held then.
    #[test]
    fn rebuild_and_as_of_equal_the_live_state(steps in prop::collection::vec(step(), 1..24)) {
        let dir = tempfile::tempdir().expect("tmp");
        let clock = TestClock::new();
        let service = key_env::open_service(dir.path(), "acme", Arc::new(SoftwareHsm::new()), &clock);
        let mut snapshots: Vec<(u64, chrono::DateTime<chrono::Utc>, Projections)> = Vec::new();
        for (step, signer_ids) in &steps {
            let Some(cmd) = command(step) else {
                clock.advance(Duration::minutes(7));
                continue;
            };
            let signers: Vec<SigningKey> = signer_ids
                .iter()
                .map(|n| if *n == 1 { admin_key() } else { key(*n) })
                .collect();
            let refs: Vec<&SigningKey> = signers.iter().collect();
            let _ = admin_command_by(&service, &clock, &refs, cmd);
            let seq = service.writer().log().head().size - 1;
            let now = *clock.0.lock().expect("clock");
            snapshots.push((seq, now, service.projections()));
            clock.advance(Duration::seconds(1));
        }
        let log = service.writer().log();
        let records = log.read(0, log.head().size).expect("read");
        let rebuilt = Projections::rebuild(records.iter().map(|r| r.event.as_slice()));
        prop_assert_eq!(&rebuilt, &service.projections());
        for (seq, time, live) in &snapshots {
            prop_assert_eq!(&service.projections_as_of(AsOf::Seq(*seq)).expect("as of seq"), live);
            prop_assert_eq!(&service.projections_as_of(AsOf::Time(*time)).expect("as of time"), live);
        }
    }
}

#[test]
fn as_of_answers_who_had_approved_what_on_a_date() {
    let dir = tempfile::tempdir().expect("tmp");
    let clock = TestClock::new();
    let service = key_env::open_service(dir.path(), "acme", Arc::new(SoftwareHsm::new()), &clock);
    let before_thresholds = *clock.0.lock().expect("clock");
    clock.advance(Duration::days(1));
    admin_command_by(
        &service,
        &clock,
        &[&admin_key()],
        AdminCommand::SetThresholds {
            signature_threshold: 1,
            revocation_threshold: 1,
        },
    )
    .expect("thresholds");
    let then = service
        .projections_as_of(AsOf::Time(before_thresholds))
        .expect("as of");
    assert!(
        then.governance.imprint_mode(),
        "on the first day: imprint mode"
    );
    assert!(!service.projections().governance.imprint_mode());
    assert_eq!(
        service
            .projections_as_of(AsOf::Seq(0))
            .expect("genesis")
            .governance
            .admins
            .len(),
        1
    );
    assert_eq!(
        service
            .projections_as_of(AsOf::Seq(u64::MAX))
            .expect("head"),
        service.projections()
    );
}
