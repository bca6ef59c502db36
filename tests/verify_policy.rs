//! `keyledger verify --policy`: a compromised server holds the ledger key, so
//! every record it appends verifies; the policy replay must still flag each
//! event the governance rules forbid, at its seq and with its reason code.
//!
//! Each crafted log is a real instance run through `KeyService` (a governed
//! master-key ceremony by administrator commands) to which a "compromised
//! server" appends one forbidden event through the real writer and ledger
//! key. Each must yield exactly one finding, and `keyledger verify --policy`
//! must exit 1 printing it. Honest logs written through `KeyService` (also
//! random command sequences) must yield none.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use base64::Engine;
use chrono::{Duration, Utc};
use ed25519_dalek::SigningKey;

use common::key_env::{self, KeyEnv, Owner, TestClock, admin_command, admin_command_by, user};
use keyledger::audit::SignedCheckpoint;
use keyledger::event::{self, Actor, AuthMethod, Envelope, EventDraft, EventPayload, Role};
use keyledger::governance::{AdminCommand, CommandDocument, SignedCommand, admin_id};
use keyledger::hsm::HsmBackend;
use keyledger::hsm::software::SoftwareHsm;
use keyledger::keys::service::{CreateKey, KeyMaterialSource, KeyService};
use keyledger::secret::SecretBytes;
use keyledger::verify::{self, Finding, PolicyReport};
use keyledger::writer::origin_for;

const INSTANCE: &str = "acme";

fn software() -> Arc<dyn HsmBackend> {
    Arc::new(SoftwareHsm::new())
}

// ---------------------------------------------------------------- helpers

/// An administrator key other than the initial one.
fn admin_n(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n; 32])
}

fn b64_key(key: &SigningKey) -> String {
    base64::engine::general_purpose::STANDARD.encode(key.verifying_key().as_bytes())
}

fn id_of(key: &SigningKey) -> String {
    admin_id(&key.verifying_key())
}

/// The actor of a command's event, as the server writes it.
fn admins_actor() -> Actor {
    Actor {
        principal: id_of(&key_env::admin_key()),
        role: Role::Admin,
        auth: AuthMethod::AdminSignatures,
    }
}

fn owner_actor(id: &str) -> Actor {
    Actor {
        principal: id.into(),
        role: Role::KeyOwner,
        auth: AuthMethod::KeyOwnerCredential,
    }
}

/// A command document for the instance, expiring an hour from the test
/// clock's now, signed by `signers`.
fn signed(env: &KeyEnv, signers: &[&SigningKey], command: AdminCommand) -> SignedCommand {
    let mut s = key_env::document(&env.service, &env.clock, command);
    for k in signers {
        s.sign(k);
    }
    s
}

fn signed_ref(
    env: &KeyEnv,
    signers: &[&SigningKey],
    command: AdminCommand,
) -> event::SignedCommandRef {
    signed(env, signers, command).to_ref()
}

/// The compromised server: appends any event, signed by the real ledger
/// key through the real writer, without asking the rules. Returns its seq.
fn forge<P: EventPayload>(env: &KeyEnv, actor: Actor, payload: &P) -> u64 {
    let draft = EventDraft::new(actor, "forged", payload).expect("draft");
    env.service.writer().append(draft).expect("append").seq
}

fn add_admin(key: &SigningKey) -> AdminCommand {
    AdminCommand::AddAdmin {
        name: format!("admin-{}", id_of(key)),
        public_key: b64_key(key),
    }
}

/// Three administrators (initial, 2, 3); both thresholds 2.
fn two_of_three(env: &KeyEnv) {
    for n in [2, 3] {
        admin_command(&env.service, &env.clock, add_admin(&admin_n(n))).expect("add admin");
    }
    admin_command_by(
        &env.service,
        &env.clock,
        &[&key_env::admin_key(), &admin_n(2)],
        AdminCommand::SetThresholds {
            signature_threshold: 2,
            revocation_threshold: 2,
        },
    )
    .expect("thresholds");
}

fn create_key(service: &KeyService, name: &str, extractable: bool) -> String {
    let (key, _) = service
        .create_key(
            &user("alice"),
            "create",
            CreateKey {
                name: name.into(),
                description: None,
                extractable,
                key_ring_id: None,
                aliases: vec![],
                expiration_date: None,
                activation_date: None,
                material: KeyMaterialSource::Generate,
            },
        )
        .expect("create key");
    key.id
}

fn root_key(env: &KeyEnv) -> String {
    create_key(&env.service, "policy-key", false)
}

/// A root key with the dualAuthDelete key policy.
fn dual_auth_key(env: &KeyEnv) -> String {
    let id = root_key(env);
    env.service
        .set_key_policy(&user("alice"), "p", &id, "dualAuthDelete", true, None)
        .expect("dual auth policy");
    id
}

fn destroyed_by(key_id: &str) -> event::KeyDestroyed {
    event::KeyDestroyed {
        key_id: key_id.into(),
        force: false,
        approval_request_id: None,
    }
}

/// Exports the service's log as a bundle at its latest checkpoint.
fn export(service: &KeyService, _data: &Path, out: &Path) -> PathBuf {
    let writer = service.writer();
    let note = writer.checkpoint().expect("checkpoint");
    let size = keyledger::checkpoint::parse_unverified(note.as_bytes())
        .expect("checkpoint")
        .size;
    let checkpoint = SignedCheckpoint { note, size };
    keyledger::bundle::export_bundle(writer, &checkpoint, out).expect("export");
    out.to_path_buf()
}

/// Integrity must pass (every record is correctly signed); returns the policy report.
fn replay(bundle: &Path) -> PolicyReport {
    let integrity =
        verify::verify_bundle(bundle, &Default::default(), &|_| {}).expect("verify bundle");
    assert!(integrity.ok(), "integrity: {:?}", integrity.failure);
    verify::verify_policy(bundle, &|_| {}).expect("policy replay")
}

/// `keyledger ARGS`; for `verify`, `keyledger-verify` must agree with it
/// (exit code and output) on every bundle here.
fn cli(args: &[&str]) -> Output {
    match args.split_first() {
        Some((&"verify", rest)) => common::verifiers::both(rest),
        _ => Command::new(env!("CARGO_BIN_EXE_keyledger"))
            .args(args)
            .output()
            .expect("run keyledger"),
    }
}

fn summary(findings: &[Finding]) -> Vec<(u64, String, &'static str)> {
    findings
        .iter()
        .map(|f| (f.seq, f.event_type.clone(), f.code))
        .collect()
}

/// Exactly one finding, at `seq`, for `event_type`, with `code`; the CLI
/// exits 1 and prints it; the JSON report carries it under `policy`.
fn expect_only(env: &KeyEnv, dir: &Path, seq: u64, event_type: &str, code: &str) {
    let bundle = export(&env.service, &env.data, &dir.join("bundle"));
    let report = replay(&bundle);
    assert_eq!(
        summary(&report.findings),
        vec![(seq, event_type.to_string(), code)],
        "{:#?}",
        report.findings
    );
    assert!(!report.ok);
    assert_eq!(report.violations, 1);
    let b = bundle.to_str().expect("utf8");
    let out = cli(&["verify", b, "--policy"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.starts_with("OK: "), "integrity passes: {stdout}");
    let line = format!("policy violation at seq {seq} ({event_type}): {code}: ");
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with(&line)).count(),
        1,
        "{stdout}"
    );
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.starts_with("policy violation"))
            .count(),
        1,
        "{stdout}"
    );
    // Without --policy the same log verifies: only the replay catches it.
    assert_eq!(cli(&["verify", b]).status.code(), Some(0));
    let json = cli(&["verify", b, "--policy", "--json"]);
    assert_eq!(json.status.code(), Some(1));
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
    assert_eq!(value["ok"], true, "integrity field unchanged: {value}");
    assert_eq!(value["policy"]["ok"], false);
    assert_eq!(value["policy"]["findings"][0]["seq"], seq);
    assert_eq!(value["policy"]["findings"][0]["code"], code);
    assert_eq!(value["policy"]["findings"][0]["event_type"], event_type);
}

/// One test per crafted log: a ready instance (governed ceremony done,
/// threshold 1, one administrator), `$body` forges one event and returns
/// its seq.
macro_rules! violation {
    ($name:ident, $event:literal, $code:literal, |$env:ident| $body:block) => {
        #[test]
        fn $name() {
            let dir = tempfile::tempdir().expect("tmp");
            let $env = key_env::ready(&dir.path().join("data"), INSTANCE, software());
            let seq: u64 = $body;
            expect_only(&$env, dir.path(), seq, $event, $code);
        }
    };
}

// ------------------------------------------------------------ SIEM sinks

fn sinks_command(names: &[&str]) -> AdminCommand {
    AdminCommand::SetSinks {
        sinks: names
            .iter()
            .map(|n| sink(n, "siem.example.com:6514"))
            .collect(),
    }
}

fn sink(name: &str, address: &str) -> keyledger::governance::sinks::SinkSpec {
    serde_json::from_value(serde_json::json!({
        "name": name, "format": "cef",
        "target": {"kind": "syslog", "address": address}
    }))
    .expect("sink")
}

// Forwarding switched off by the server alone (no quorum).
violation!(
    sinks_set_with_fewer_signatures_than_the_threshold,
    "export.sinks_set",
    "not_enough_signatures",
    |env| {
        two_of_three(&env);
        admin_command_by(
            &env.service,
            &env.clock,
            &[&key_env::admin_key(), &admin_n(2)],
            sinks_command(&["siem"]),
        )
        .expect("sinks by two");
        let command = signed_ref(&env, &[&key_env::admin_key()], sinks_command(&[]));
        forge(
            &env,
            admins_actor(),
            &event::ExportSinksSet {
                sinks: vec![],
                command,
            },
        )
    }
);

// The quorum signed one receiver; the log records another.
violation!(
    sinks_set_to_another_receiver_than_signed,
    "export.sinks_set",
    "command_mismatch",
    |env| {
        let command = signed_ref(&env, &[&key_env::admin_key()], sinks_command(&["siem"]));
        forge(
            &env,
            admins_actor(),
            &event::ExportSinksSet {
                sinks: vec![sink("siem", "attacker.example.net:514")],
                command,
            },
        )
    }
);

// ------------------------------------------------------ administrator rules

violation!(
    admin_added_without_command,
    "admin.added",
    "command_missing",
    |env| {
        let key = admin_n(2);
        forge(
            &env,
            admins_actor(),
            &event::AdminAdded {
                admin_id: id_of(&key),
                name: "intruder".into(),
                public_key: b64_key(&key),
                command: None,
            },
        )
    }
);

violation!(
    admin_added_without_threshold_signatures,
    "admin.added",
    "not_enough_signatures",
    |env| {
        two_of_three(&env);
        let key = admin_n(4);
        let command = signed_ref(&env, &[&key_env::admin_key()], add_admin(&key));
        forge(
            &env,
            admins_actor(),
            &event::AdminAdded {
                admin_id: id_of(&key),
                name: format!("admin-{}", id_of(&key)),
                public_key: b64_key(&key),
                command: Some(command),
            },
        )
    }
);

violation!(
    admin_added_signed_by_a_non_admin,
    "admin.added",
    "not_an_admin",
    |env| {
        let key = admin_n(4);
        let command = signed_ref(&env, &[&key], add_admin(&key));
        forge(
            &env,
            admins_actor(),
            &event::AdminAdded {
                admin_id: id_of(&key),
                name: format!("admin-{}", id_of(&key)),
                public_key: b64_key(&key),
                command: Some(command),
            },
        )
    }
);

violation!(
    admin_added_with_a_signature_over_another_command,
    "admin.added",
    "forged_signature",
    |env| {
        let key = admin_n(4);
        let other = signed(&env, &[&key_env::admin_key()], add_admin(&admin_n(5)));
        let mut command = signed(&env, &[], add_admin(&key));
        command.signatures = other.signatures;
        forge(
            &env,
            admins_actor(),
            &event::AdminAdded {
                admin_id: id_of(&key),
                name: format!("admin-{}", id_of(&key)),
                public_key: b64_key(&key),
                command: Some(command.to_ref()),
            },
        )
    }
);

violation!(
    admin_added_with_one_signer_counted_twice,
    "admin.added",
    "duplicate_signer",
    |env| {
        two_of_three(&env);
        let key = admin_n(4);
        let mut command = signed(&env, &[&key_env::admin_key()], add_admin(&key));
        let twice = command.signatures[0].clone();
        command.signatures.push(twice);
        forge(
            &env,
            admins_actor(),
            &event::AdminAdded {
                admin_id: id_of(&key),
                name: format!("admin-{}", id_of(&key)),
                public_key: b64_key(&key),
                command: Some(command.to_ref()),
            },
        )
    }
);

violation!(
    admin_added_by_an_expired_command,
    "admin.added",
    "expired",
    |env| {
        let key = admin_n(4);
        let now = *env.clock.0.lock().expect("clock");
        let doc = CommandDocument::new(INSTANCE, add_admin(&key), now - Duration::minutes(1))
            .expect("document");
        let mut command = SignedCommand::unsigned(&doc).expect("unsigned");
        command.sign(&key_env::admin_key());
        forge(
            &env,
            admins_actor(),
            &event::AdminAdded {
                admin_id: id_of(&key),
                name: format!("admin-{}", id_of(&key)),
                public_key: b64_key(&key),
                command: Some(command.to_ref()),
            },
        )
    }
);

violation!(
    admin_added_by_a_replayed_command,
    "admin.added",
    "replayed",
    |env| {
        let key = admin_n(2);
        let receipt =
            admin_command(&env.service, &env.clock, add_admin(&key)).expect("honest admin add");
        let honest: event::AdminAdded = Envelope::parse(&receipt.event)
            .expect("event")
            .payload_as()
            .expect("admin.added")
            .expect("payload");
        forge(&env, admins_actor(), &honest)
    }
);

violation!(
    admin_added_by_another_instances_command,
    "admin.added",
    "wrong_instance",
    |env| {
        let key = admin_n(4);
        let now = *env.clock.0.lock().expect("clock");
        let doc = CommandDocument::new("other", add_admin(&key), now + Duration::hours(1))
            .expect("document");
        let mut command = SignedCommand::unsigned(&doc).expect("unsigned");
        command.sign(&key_env::admin_key());
        forge(
            &env,
            admins_actor(),
            &event::AdminAdded {
                admin_id: id_of(&key),
                name: format!("admin-{}", id_of(&key)),
                public_key: b64_key(&key),
                command: Some(command.to_ref()),
            },
        )
    }
);

violation!(
    admin_added_for_another_key_than_signed,
    "admin.added",
    "command_mismatch",
    |env| {
        let signed_for = admin_n(4);
        let added = admin_n(5);
        let command = signed_ref(&env, &[&key_env::admin_key()], add_admin(&signed_for));
        forge(
            &env,
            admins_actor(),
            &event::AdminAdded {
                admin_id: id_of(&added),
                name: format!("admin-{}", id_of(&signed_for)),
                public_key: b64_key(&added),
                command: Some(command),
            },
        )
    }
);

violation!(
    admin_added_with_a_recorded_digest_that_is_not_the_documents,
    "admin.added",
    "command_digest_mismatch",
    |env| {
        let key = admin_n(4);
        let mut command = signed_ref(&env, &[&key_env::admin_key()], add_admin(&key));
        command.digest = "00".repeat(32);
        forge(
            &env,
            admins_actor(),
            &event::AdminAdded {
                admin_id: id_of(&key),
                name: format!("admin-{}", id_of(&key)),
                public_key: b64_key(&key),
                command: Some(command),
            },
        )
    }
);

violation!(
    admin_removed_without_the_revocation_threshold,
    "admin.removed",
    "not_enough_signatures",
    |env| {
        two_of_three(&env);
        let victim = id_of(&admin_n(3));
        let command = signed_ref(
            &env,
            &[&key_env::admin_key()],
            AdminCommand::RemoveAdmin {
                admin_id: victim.clone(),
            },
        );
        forge(
            &env,
            admins_actor(),
            &event::AdminRemoved {
                admin_id: victim,
                command,
            },
        )
    }
);

violation!(
    thresholds_lowered_by_one_administrator,
    "admin.thresholds_set",
    "not_enough_signatures",
    |env| {
        two_of_three(&env);
        let command = signed_ref(
            &env,
            &[&key_env::admin_key()],
            AdminCommand::SetThresholds {
                signature_threshold: 1,
                revocation_threshold: 1,
            },
        );
        forge(
            &env,
            admins_actor(),
            &event::AdminThresholdsSet {
                signature_threshold: 1,
                revocation_threshold: 1,
                command,
            },
        )
    }
);

// --------------------------------------------------------- ceremony rules

violation!(
    key_owner_registered_without_command,
    "key_owner.registered",
    "command_missing",
    |env| {
        forge(
            &env,
            admins_actor(),
            &event::KeyOwnerRegistered {
                owner_id: "owner-x".into(),
                name: "owner-x".into(),
                public_key: b64_key(&admin_n(9)),
                command: None,
            },
        )
    }
);

violation!(
    key_owner_removed_by_a_non_admin,
    "key_owner.removed",
    "not_an_admin",
    |env| {
        let command = signed_ref(
            &env,
            &[&admin_n(9)],
            AdminCommand::RemoveKeyOwner {
                owner_id: "owner-b".into(),
            },
        );
        forge(
            &env,
            admins_actor(),
            &event::KeyOwnerRemoved {
                owner_id: "owner-b".into(),
                command,
            },
        )
    }
);

violation!(
    load_approved_for_a_generation_out_of_turn,
    "master_key.load_approved",
    "ceremony",
    |env| {
        let command = signed_ref(
            &env,
            &[&key_env::admin_key()],
            AdminCommand::ApproveMasterKeyLoad { generation: 5 },
        );
        forge(
            &env,
            admins_actor(),
            &event::MasterKeyLoadApproved {
                generation: 5,
                command,
            },
        )
    }
);

violation!(
    part_loaded_by_an_unregistered_owner,
    "master_key.part_loaded",
    "unknown_key_owner",
    |env| {
        admin_command(
            &env.service,
            &env.clock,
            AdminCommand::ApproveMasterKeyLoad { generation: 2 },
        )
        .expect("approve");
        forge(
            &env,
            owner_actor("mallory"),
            &event::MasterKeyPartLoaded {
                generation: 2,
                owner_id: "mallory".into(),
                part_index: 1,
                verification_pattern: "00".repeat(16),
            },
        )
    }
);

violation!(
    part_loaded_without_load_approval,
    "master_key.part_loaded",
    "load_not_approved",
    |env| {
        forge(
            &env,
            owner_actor("owner-a"),
            &event::MasterKeyPartLoaded {
                generation: 2,
                owner_id: "owner-a".into(),
                part_index: 1,
                verification_pattern: "00".repeat(16),
            },
        )
    }
);

violation!(
    part_loaded_for_a_generation_out_of_turn,
    "master_key.part_loaded",
    "ceremony",
    |env| {
        forge(
            &env,
            owner_actor("owner-a"),
            &event::MasterKeyPartLoaded {
                generation: 3,
                owner_id: "owner-a".into(),
                part_index: 1,
                verification_pattern: "00".repeat(16),
            },
        )
    }
);

violation!(
    master_key_activated_while_another_is_current,
    "master_key.activated",
    "ceremony",
    |env| {
        start_generation_2(&env, &[&env.owners[0], &env.owners[1]]);
        admin_command(
            &env.service,
            &env.clock,
            AdminCommand::CommitMasterKey { generation: 2 },
        )
        .expect("commit");
        let vp = env
            .service
            .projections()
            .master
            .pending
            .and_then(|p| p.committed)
            .expect("committed");
        let command = signed_ref(
            &env,
            &[&key_env::admin_key()],
            AdminCommand::ActivateMasterKey { generation: 2 },
        );
        // Activation instead of rotation: the keys are never re-wrapped.
        forge(
            &env,
            admins_actor(),
            &event::MasterKeyActivated {
                generation: 2,
                verification_pattern: vp,
                command: Some(command),
            },
        )
    }
);

violation!(
    unsealed_without_reloading_the_parts,
    "instance.unsealed",
    "ceremony",
    |env| {
        let (generation, vp) = env
            .service
            .projections()
            .master
            .current
            .expect("current master key");
        forge(
            &env,
            Actor::system(),
            &event::InstanceUnsealed {
                master_key_generation: generation,
                verification_pattern: vp,
            },
        )
    }
);

violation!(
    unseal_committed_with_another_verification_pattern,
    "master_key.committed",
    "ceremony",
    |env| {
        let (generation, _) = env
            .service
            .projections()
            .master
            .current
            .expect("current master key");
        for owner in ["owner-a", "owner-b"] {
            forge(
                &env,
                owner_actor(owner),
                &event::MasterKeyPartLoaded {
                    generation,
                    owner_id: owner.into(),
                    part_index: 1,
                    verification_pattern: "00".repeat(16),
                },
            );
        }
        forge(
            &env,
            admins_actor(),
            &event::MasterKeyCommitted {
                generation,
                parts: 2,
                verification_pattern: "ff".repeat(16),
                command: None,
            },
        )
    }
);

/// Approves generation 2 and lets the owners in `loading` load their parts.
fn start_generation_2(env: &KeyEnv, loading: &[&Owner]) {
    admin_command(
        &env.service,
        &env.clock,
        AdminCommand::ApproveMasterKeyLoad { generation: 2 },
    )
    .expect("approve");
    for (i, o) in loading.iter().enumerate() {
        o.submit(
            &env.service,
            &SecretBytes::from_slice(&[0x30 + i as u8; 32]),
        )
        .expect("part");
    }
}

violation!(
    new_master_key_committed_without_command,
    "master_key.committed",
    "command_missing",
    |env| {
        start_generation_2(&env, &[&env.owners[0], &env.owners[1]]);
        forge(
            &env,
            admins_actor(),
            &event::MasterKeyCommitted {
                generation: 2,
                parts: 2,
                verification_pattern: "00".repeat(16),
                command: None,
            },
        )
    }
);

violation!(
    master_key_committed_without_every_owners_part,
    "master_key.committed",
    "ceremony",
    |env| {
        start_generation_2(&env, &[&env.owners[0]]);
        let command = signed_ref(
            &env,
            &[&key_env::admin_key()],
            AdminCommand::CommitMasterKey { generation: 2 },
        );
        forge(
            &env,
            admins_actor(),
            &event::MasterKeyCommitted {
                generation: 2,
                parts: 1,
                verification_pattern: "00".repeat(16),
                command: Some(command),
            },
        )
    }
);

violation!(
    unseal_committed_from_one_owners_part,
    "master_key.committed",
    "ceremony",
    |env| {
        let (generation, vp) = env
            .service
            .projections()
            .master
            .current
            .expect("current master key");
        // Re-loading the current generation (unseal) needs no approval...
        forge(
            &env,
            owner_actor("owner-a"),
            &event::MasterKeyPartLoaded {
                generation,
                owner_id: "owner-a".into(),
                part_index: 1,
                verification_pattern: "00".repeat(16),
            },
        );
        // ...but committing it still needs every owner's part.
        forge(
            &env,
            admins_actor(),
            &event::MasterKeyCommitted {
                generation,
                parts: 1,
                verification_pattern: vp,
                command: None,
            },
        )
    }
);

violation!(
    rotation_to_an_uncommitted_generation,
    "master_key.rotated",
    "ceremony",
    |env| {
        start_generation_2(&env, &[&env.owners[0], &env.owners[1]]);
        let command = signed_ref(
            &env,
            &[&key_env::admin_key()],
            AdminCommand::ActivateMasterKey { generation: 2 },
        );
        forge(
            &env,
            admins_actor(),
            &event::MasterKeyRotated {
                from_generation: 1,
                to_generation: 2,
                keys_rewrapped: 0,
                command: Some(command),
            },
        )
    }
);

/// An instance whose first master key has its parts loaded but is not
/// committed (threshold 1, two key owners).
fn parts_loaded_not_committed(data: &Path) -> KeyEnv {
    let clock = TestClock::new();
    let hsm = software();
    let service = key_env::open_service(data, INSTANCE, hsm.clone(), &clock);
    let owners = vec![Owner::new("owner-a", 0x11), Owner::new("owner-b", 0x5c)];
    key_env::register_owners(&service, &clock, &owners.iter().collect::<Vec<_>>());
    admin_command(
        &service,
        &clock,
        AdminCommand::ApproveMasterKeyLoad { generation: 1 },
    )
    .expect("approve");
    for o in &owners {
        o.submit(&service, &o.part).expect("part");
    }
    KeyEnv {
        data: data.to_path_buf(),
        clock,
        service,
        owners,
        hsm,
    }
}

#[test]
fn master_key_activated_without_commit() {
    let dir = tempfile::tempdir().expect("tmp");
    let env = parts_loaded_not_committed(&dir.path().join("data"));
    let command = signed_ref(
        &env,
        &[&key_env::admin_key()],
        AdminCommand::ActivateMasterKey { generation: 1 },
    );
    let seq = forge(
        &env,
        admins_actor(),
        &event::MasterKeyActivated {
            generation: 1,
            verification_pattern: "00".repeat(16),
            command: Some(command),
        },
    );
    expect_only(&env, dir.path(), seq, "master_key.activated", "ceremony");
}

#[test]
fn master_key_activated_without_command() {
    let dir = tempfile::tempdir().expect("tmp");
    let env = parts_loaded_not_committed(&dir.path().join("data"));
    admin_command(
        &env.service,
        &env.clock,
        AdminCommand::CommitMasterKey { generation: 1 },
    )
    .expect("commit");
    let vp = env
        .service
        .projections()
        .master
        .pending
        .and_then(|p| p.committed)
        .expect("committed");
    let seq = forge(
        &env,
        admins_actor(),
        &event::MasterKeyActivated {
            generation: 1,
            verification_pattern: vp,
            command: None,
        },
    );
    expect_only(
        &env,
        dir.path(),
        seq,
        "master_key.activated",
        "command_missing",
    );
}

#[test]
fn unsealed_before_any_activation() {
    let dir = tempfile::tempdir().expect("tmp");
    let env = parts_loaded_not_committed(&dir.path().join("data"));
    admin_command(
        &env.service,
        &env.clock,
        AdminCommand::CommitMasterKey { generation: 1 },
    )
    .expect("commit");
    let vp = env
        .service
        .projections()
        .master
        .pending
        .and_then(|p| p.committed)
        .expect("committed");
    let seq = forge(
        &env,
        Actor::system(),
        &event::InstanceUnsealed {
            master_key_generation: 1,
            verification_pattern: vp,
        },
    );
    expect_only(&env, dir.path(), seq, "instance.unsealed", "ceremony");
}

// ----------------------------------------- credentials and instance policy

violation!(
    credential_issued_without_command,
    "credential.issued",
    "command_missing",
    |env| {
        forge(
            &env,
            admins_actor(),
            &event::CredentialIssued {
                credential_id: "backdoor".into(),
                role: "manager".into(),
                token_digest: "ab".repeat(32),
                command: None,
            },
        )
    }
);

violation!(
    credential_issued_with_another_role_than_signed,
    "credential.issued",
    "command_mismatch",
    |env| {
        let command = signed_ref(
            &env,
            &[&key_env::admin_key()],
            AdminCommand::IssueCredential {
                credential_id: "reader-1".into(),
                role: "reader".into(),
                token_digest: "ab".repeat(32),
            },
        );
        forge(
            &env,
            admins_actor(),
            &event::CredentialIssued {
                credential_id: "reader-1".into(),
                role: "manager".into(),
                token_digest: "ab".repeat(32),
                command: Some(command),
            },
        )
    }
);

violation!(
    credential_revoked_without_command,
    "credential.revoked",
    "command_missing",
    |env| {
        admin_command(
            &env.service,
            &env.clock,
            AdminCommand::IssueCredential {
                credential_id: "writer-1".into(),
                role: "writer".into(),
                token_digest: "cd".repeat(32),
            },
        )
        .expect("issue");
        forge(
            &env,
            admins_actor(),
            &event::CredentialRevoked {
                credential_id: "writer-1".into(),
                command: None,
            },
        )
    }
);

violation!(
    instance_policy_updated_without_command,
    "instance.policy_updated",
    "command_missing",
    |env| {
        forge(
            &env,
            admins_actor(),
            &event::InstancePolicyUpdated {
                policy_type: "dualAuthDelete".into(),
                enabled: false,
                attributes: Default::default(),
                command: None,
            },
        )
    }
);

violation!(
    instance_zeroized_by_one_of_two_required_admins,
    "instance.zeroized",
    "not_enough_signatures",
    |env| {
        two_of_three(&env);
        let command = signed_ref(&env, &[&key_env::admin_key()], AdminCommand::Zeroize {});
        forge(
            &env,
            admins_actor(),
            &event::InstanceZeroized {
                command,
                keys_shredded: 0,
            },
        )
    }
);

violation!(
    instance_created_again_mid_log,
    "instance.created",
    "genesis_not_first",
    |env| {
        let key = admin_n(7);
        forge(
            &env,
            Actor::operator("op"),
            &event::InstanceCreated {
                origin: origin_for(INSTANCE),
                ledger_key_id: "00000000".into(),
                ledger_public_key: b64_key(&admin_n(8)),
                initial_admin_id: id_of(&key),
                initial_admin_public_key: b64_key(&key),
            },
        )
    }
);

// ------------------------------------------------------------- key rules

violation!(
    dual_auth_key_destroyed_without_authorization,
    "key.destroyed",
    "dual_auth_not_met",
    |env| {
        let id = dual_auth_key(&env);
        forge(&env, user("bob"), &destroyed_by(&id))
    }
);

violation!(
    dual_auth_key_destroyed_by_the_principal_who_authorized_it,
    "key.destroyed",
    "dual_auth_not_met",
    |env| {
        let id = dual_auth_key(&env);
        env.service
            .set_key_for_deletion(&user("alice"), "s", &id)
            .expect("set for deletion");
        forge(&env, user("alice"), &destroyed_by(&id))
    }
);

violation!(
    dual_auth_key_destroyed_after_its_authorization_expired,
    "key.destroyed",
    "dual_auth_not_met",
    |env| {
        let id = dual_auth_key(&env);
        env.service
            .set_key_for_deletion(&user("alice"), "s", &id)
            .expect("set for deletion");
        env.clock.advance(Duration::days(8));
        forge(&env, user("bob"), &destroyed_by(&id))
    }
);

violation!(
    key_under_the_instance_dual_auth_policy_destroyed_alone,
    "key.destroyed",
    "dual_auth_not_met",
    |env| {
        admin_command(
            &env.service,
            &env.clock,
            AdminCommand::SetInstancePolicy {
                policy_type: "dualAuthDelete".into(),
                enabled: true,
                attributes: Default::default(),
            },
        )
        .expect("instance policy");
        let id = root_key(&env);
        assert!(env.service.key(&id).expect("key").dual_auth_delete.enabled);
        forge(&env, user("bob"), &destroyed_by(&id))
    }
);

fn dual_auth_off(key_id: &str) -> event::KeyPolicyUpdated {
    event::KeyPolicyUpdated {
        key_id: key_id.into(),
        policy_type: "dualAuthDelete".into(),
        enabled: false,
        interval_month: None,
    }
}

/// The honest server refuses the switch (the rule the replay applies) and
/// writes nothing for it.
fn server_refuses_dual_auth_off(env: &KeyEnv, id: &str) {
    let size = env.service.writer().log().head().size;
    let e = env
        .service
        .set_key_policy(&user("alice"), "p", id, "dualAuthDelete", false, None)
        .expect_err("a dual-auth key keeps its policy");
    assert_eq!(
        (
            e.reason().code(),
            keyledger::server::errors::http_status(e.reason())
        ),
        ("KEY_ACTION_INVALID_STATE_ERR", 409)
    );
    assert_eq!(env.service.writer().log().head().size, size);
}

violation!(
    dual_auth_key_policy_switched_off,
    "key.policy_updated",
    "dual_auth_reverted",
    |env| {
        let id = dual_auth_key(&env);
        server_refuses_dual_auth_off(&env, &id);
        forge(&env, user("alice"), &dual_auth_off(&id))
    }
);

violation!(
    key_under_the_instance_dual_auth_policy_switched_off,
    "key.policy_updated",
    "dual_auth_reverted",
    |env| {
        admin_command(
            &env.service,
            &env.clock,
            AdminCommand::SetInstancePolicy {
                policy_type: "dualAuthDelete".into(),
                enabled: true,
                attributes: Default::default(),
            },
        )
        .expect("instance policy");
        let id = root_key(&env);
        server_refuses_dual_auth_off(&env, &id);
        forge(&env, user("alice"), &dual_auth_off(&id))
    }
);

/// Issue 14 item 1 as a log: one Manager switches a dual-auth key's policy
/// off and deletes the key alone. Both events are flagged: the switch, and
/// the delete (the replay, like the server's projection, keeps the key's
/// dual authorisation on).
#[test]
fn dual_auth_key_destroyed_alone_after_its_policy_was_switched_off() {
    let dir = tempfile::tempdir().expect("tmp");
    let env = key_env::ready(&dir.path().join("data"), INSTANCE, software());
    let id = dual_auth_key(&env);
    let switched = forge(&env, user("alice"), &dual_auth_off(&id));
    let destroyed = forge(&env, user("alice"), &destroyed_by(&id));
    let bundle = export(&env.service, &env.data, &dir.path().join("bundle"));
    let report = replay(&bundle);
    assert_eq!(
        summary(&report.findings),
        vec![
            (
                switched,
                "key.policy_updated".to_string(),
                "dual_auth_reverted"
            ),
            (destroyed, "key.destroyed".to_string(), "dual_auth_not_met"),
        ],
        "{:#?}",
        report.findings
    );
    assert!(!report.ok);
    let out = cli(&["verify", bundle.to_str().expect("utf8"), "--policy"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    for line in [
        format!("policy violation at seq {switched} (key.policy_updated): dual_auth_reverted: "),
        format!("policy violation at seq {destroyed} (key.destroyed): dual_auth_not_met: "),
    ] {
        assert_eq!(
            stdout.lines().filter(|l| l.starts_with(&line)).count(),
            1,
            "{line}: {stdout}"
        );
    }
    assert!(stdout.contains("policy FAILED: 2 violation(s)"), "{stdout}");
}

/// A standard key that the honest server refuses to use as a root key
/// (400 `KEY_ROOT_REQ_ERR`, nothing written), for the forgeries below.
fn standard_key_refusing(env: &KeyEnv, action: &str) -> String {
    let id = create_key(&env.service, "standard", true);
    let size = env.service.writer().log().head().size;
    let e = match action {
        "wrap" => env
            .service
            .wrap(&user("alice"), "w", &id, None, &[])
            .map(|_| ())
            .expect_err("a standard key does not wrap"),
        _ => env
            .service
            .disable_key(&user("alice"), "d", &id)
            .map(|_| ())
            .expect_err("a standard key is not disabled"),
    };
    assert_eq!(
        (
            e.reason().code(),
            keyledger::server::errors::http_status(e.reason())
        ),
        ("KEY_ROOT_REQ_ERR", 400)
    );
    assert_eq!(env.service.writer().log().head().size, size);
    id
}

violation!(
    standard_key_used_to_wrap,
    "key.wrapped",
    "key_root_required",
    |env| {
        let id = standard_key_refusing(&env, "wrap");
        forge(
            &env,
            user("alice"),
            &event::KeyWrapped {
                key_id: id,
                version_id: "v1".into(),
                generated_dek: true,
                aad_entries: 0,
                ciphertext_digest: "00".repeat(32),
            },
        )
    }
);

violation!(
    standard_key_disabled,
    "key.disabled",
    "key_root_required",
    |env| {
        let id = standard_key_refusing(&env, "disable");
        forge(&env, user("alice"), &event::KeyDisabled { key_id: id })
    }
);

violation!(
    key_destroyed_on_an_approval_without_quorum,
    "key.destroyed",
    "quorum_not_reached",
    |env| {
        let id = dual_auth_key(&env);
        request(&env, "req-1", &id, Duration::days(1));
        // No one approved.
        forge(
            &env,
            Actor::system(),
            &event::KeyDestroyed {
                key_id: id,
                force: false,
                approval_request_id: Some("req-1".into()),
            },
        )
    }
);

violation!(
    key_purged_before_four_hours,
    "key.purged",
    "key_purge_too_early",
    |env| {
        let id = root_key(&env);
        env.service
            .delete_key(&user("alice"), "d", &id, false)
            .expect("delete");
        env.clock.advance(Duration::hours(3));
        forge(
            &env,
            user("alice"),
            &event::KeyPurged {
                key_id: id,
                versions_shredded: 1,
                approval_request_id: None,
            },
        )
    }
);

violation!(
    key_restored_after_thirty_days,
    "key.restored",
    "key_restore_expired",
    |env| {
        let id = root_key(&env);
        env.service
            .delete_key(&user("alice"), "d", &id, false)
            .expect("delete");
        let version = env.service.key(&id).expect("key").versions[0].clone();
        env.clock.advance(Duration::days(31));
        forge(
            &env,
            user("alice"),
            &event::KeyRestored {
                key_id: id,
                version_id: version.id,
                key_check_value: version.kcv,
            },
        )
    }
);

violation!(
    active_key_enabled,
    "key.enabled",
    "key_invalid_state",
    |env| {
        let id = root_key(&env);
        forge(&env, user("alice"), &event::KeyEnabled { key_id: id })
    }
);

violation!(
    key_rotated_twice_within_an_hour,
    "key.rotated",
    "key_rotated_too_recently",
    |env| {
        let id = root_key(&env);
        env.service
            .rotate_key(&user("alice"), "r", &id, None)
            .expect("rotate");
        env.clock.advance(Duration::minutes(30));
        forge(
            &env,
            user("alice"),
            &event::KeyRotated {
                key_id: id,
                version_id: uuid_like(3),
                key_check_value: "abcdef".into(),
                imported: false,
            },
        )
    }
);

violation!(
    key_without_dual_auth_set_for_deletion,
    "key.deletion_authorized",
    "key_not_dual_auth",
    |env| {
        let id = root_key(&env);
        forge(
            &env,
            user("alice"),
            &event::KeyDeletionAuthorized {
                key_id: id,
                auth_expiration: (Utc::now() + Duration::days(7)).to_rfc3339(),
            },
        )
    }
);

violation!(unknown_key_disabled, "key.disabled", "unknown_key", |env| {
    forge(
        &env,
        user("alice"),
        &event::KeyDisabled {
            key_id: uuid_like(9),
        },
    )
});

violation!(
    root_key_payload_read,
    "key.payload_read",
    "key_not_extractable",
    |env| {
        let id = root_key(&env);
        let version = env.service.key(&id).expect("key").versions[0].id.clone();
        forge(
            &env,
            user("alice"),
            &event::KeyPayloadRead {
                key_id: id,
                version_id: version,
            },
        )
    }
);

violation!(
    key_created_after_zeroize,
    "key.created",
    "no_master_key",
    |env| {
        admin_command(&env.service, &env.clock, AdminCommand::Zeroize {}).expect("zeroize");
        forge(&env, user("alice"), &key_created(uuid_like(5)))
    }
);

violation!(key_created_twice, "key.created", "key_conflict", |env| {
    let id = root_key(&env);
    forge(&env, user("alice"), &key_created(id))
});

violation!(key_expired_early, "key.expired", "key_not_due", |env| {
    let id = root_key(&env);
    forge(&env, Actor::system(), &event::KeyExpired { key_id: id })
});

fn uuid_like(n: u8) -> String {
    format!("{n:08x}-0000-4000-8000-000000000000")
}

fn key_created(key_id: String) -> event::KeyCreated {
    event::KeyCreated {
        key_id,
        name: "forged".into(),
        description: None,
        key_ring_id: "default".into(),
        extractable: false,
        imported: false,
        algorithm: "AES".into(),
        bit_length: 256,
        version_id: uuid_like(6),
        key_check_value: "abcdef".into(),
        expiration_date: None,
        aliases: vec![],
        activation_date: None,
        import_token_id: None,
    }
}

// Rules the replay gained from the key aggregate's shared decision
// (`keyledger_core::decide::key`): the role table, key-material size, alias
// rules. Each was appended by the compromised server and passed before.

fn bearer(principal: &str, role: Role) -> Actor {
    Actor {
        principal: principal.into(),
        role,
        auth: AuthMethod::Bearer,
    }
}

violation!(
    key_destroyed_by_a_writer,
    "key.destroyed",
    "role_not_allowed",
    |env| {
        let id = root_key(&env);
        let wendy = credential(&env, "wendy", "writer");
        forge(&env, wendy, &destroyed_by(&id))
    }
);

violation!(
    key_created_by_a_reader,
    "key.created",
    "role_not_allowed",
    |env| {
        let rita = credential(&env, "rita", "reader");
        forge(&env, rita, &key_created(uuid_like(7)))
    }
);

violation!(
    imported_root_key_of_128_bits,
    "key.created",
    "key_material_invalid",
    |env| {
        let created = event::KeyCreated {
            imported: true,
            bit_length: 128,
            ..key_created(uuid_like(8))
        };
        forge(&env, user("alice"), &created)
    }
);

violation!(
    alias_deleted_that_the_key_never_had,
    "key.alias_deleted",
    "alias_unknown",
    |env| {
        let id = root_key(&env);
        forge(
            &env,
            user("alice"),
            &event::KeyAliasDeleted {
                key_id: id,
                alias: "never-given".into(),
            },
        )
    }
);

violation!(
    import_token_retrieved_that_was_never_created,
    "import_token.retrieved",
    "import_token_unknown",
    |env| {
        forge(
            &env,
            user("alice"),
            &event::ImportTokenRetrieved {
                token_id: "never-made".into(),
                remaining_retrievals: 0,
            },
        )
    }
);

// -------------------------------------------------------- approval rules

/// `approval.requested` by alice, as the key service makes it (a
/// `key.delete` of a dual-authorisation key, one approval).
fn request(env: &KeyEnv, id: &str, target: &str, ttl: Duration) -> u64 {
    let now = *env.clock.0.lock().expect("clock");
    forge(
        env,
        user("alice"),
        &event::ApprovalRequested {
            request_id: id.into(),
            operation: "key.delete".into(),
            target: target.into(),
            required_approvals: 1,
            expires_at: (now + ttl).to_rfc3339(),
        },
    )
}

fn grant(env: &KeyEnv, id: &str, approver: &str) -> u64 {
    forge(
        env,
        user(approver),
        &event::ApprovalGranted {
            request_id: id.into(),
            approver: approver.into(),
        },
    )
}

fn executed(env: &KeyEnv, id: &str, target: &str, quorum_seq: u64) -> u64 {
    forge(
        env,
        Actor::system(),
        &event::OperationExecuted {
            request_id: id.into(),
            operation: "key.delete".into(),
            target: target.into(),
            quorum_seq,
        },
    )
}

violation!(
    operation_executed_without_quorum,
    "operation.executed",
    "quorum_not_reached",
    |env| {
        let k = dual_auth_key(&env);
        let requested = request(&env, "req-1", &k, Duration::days(1));
        executed(&env, "req-1", &k, requested)
    }
);

violation!(
    operation_executed_after_its_request_expired,
    "operation.executed",
    "quorum_not_reached",
    |env| {
        let k = dual_auth_key(&env);
        request(&env, "req-1", &k, Duration::days(1));
        let quorum = grant(&env, "req-1", "carol");
        env.clock.advance(Duration::days(2));
        executed(&env, "req-1", &k, quorum)
    }
);

/// The cancellation itself is forged too: the approval rules refuse to
/// cancel a request that has its quorum (the worker owns it), so the
/// replay finds both it and the execution that follows.
#[test]
fn operation_executed_after_its_request_was_cancelled() {
    let dir = tempfile::tempdir().expect("tmp");
    let env = key_env::ready(&dir.path().join("data"), INSTANCE, software());
    let k = dual_auth_key(&env);
    request(&env, "req-1", &k, Duration::days(1));
    let quorum = grant(&env, "req-1", "carol");
    let cancelled = forge(
        &env,
        user("alice"),
        &event::ApprovalCancelled {
            request_id: "req-1".into(),
            reason: "changed my mind".into(),
        },
    );
    let executed = executed(&env, "req-1", &k, quorum);
    let bundle = export(&env.service, &env.data, &dir.path().join("bundle"));
    let report = replay(&bundle);
    assert_eq!(
        summary(&report.findings),
        vec![
            (
                cancelled,
                "approval.cancelled".to_string(),
                "approval_quorum_reached"
            ),
            (
                executed,
                "operation.executed".to_string(),
                "quorum_not_reached"
            ),
        ],
        "{:#?}",
        report.findings
    );
    let out = cli(&["verify", bundle.to_str().expect("utf8"), "--policy"]);
    assert_eq!(out.status.code(), Some(1));
}

violation!(
    operation_executed_naming_the_wrong_quorum,
    "operation.executed",
    "approval_mismatch",
    |env| {
        let k = dual_auth_key(&env);
        request(&env, "req-1", &k, Duration::days(1));
        grant(&env, "req-1", "carol");
        executed(&env, "req-1", &k, 1)
    }
);

violation!(
    operation_executed_on_another_target,
    "operation.executed",
    "approval_mismatch",
    |env| {
        let k = dual_auth_key(&env);
        request(&env, "req-1", &k, Duration::days(1));
        let quorum = grant(&env, "req-1", "carol");
        executed(&env, "req-1", "another-key", quorum)
    }
);

violation!(
    key_destroyed_on_an_approval_for_another_key,
    "key.destroyed",
    "approval_mismatch",
    |env| {
        let id = root_key(&env);
        let another = dual_auth_key(&env);
        request(&env, "req-1", &another, Duration::days(1));
        grant(&env, "req-1", "carol");
        forge(
            &env,
            Actor::system(),
            &event::KeyDestroyed {
                key_id: id,
                force: false,
                approval_request_id: Some("req-1".into()),
            },
        )
    }
);

violation!(
    key_purged_on_an_executed_approval,
    "key.purged",
    "quorum_not_reached",
    |env| {
        let id = dual_auth_key(&env);
        request(&env, "req-1", &id, Duration::days(1));
        grant(&env, "req-1", "carol");
        forge(
            &env,
            Actor::system(),
            &event::KeyDestroyed {
                key_id: id.clone(),
                force: false,
                approval_request_id: Some("req-1".into()),
            },
        );
        env.clock.advance(Duration::hours(5));
        // The same approval cannot be spent twice.
        forge(
            &env,
            Actor::system(),
            &event::KeyPurged {
                key_id: id,
                versions_shredded: 1,
                approval_request_id: Some("req-1".into()),
            },
        )
    }
);

violation!(
    approval_granted_by_the_requester,
    "approval.granted",
    "approval_by_requester",
    |env| {
        let k = dual_auth_key(&env);
        request(&env, "req-1", &k, Duration::days(1));
        grant(&env, "req-1", "alice")
    }
);

violation!(
    approval_granted_for_an_unknown_request,
    "approval.granted",
    "approval_unknown",
    |env| { grant(&env, "req-404", "carol") }
);

violation!(
    approval_granted_after_the_request_expired,
    "approval.granted",
    "approval_closed",
    |env| {
        let k = dual_auth_key(&env);
        request(&env, "req-1", &k, Duration::hours(1));
        env.clock.advance(Duration::hours(2));
        grant(&env, "req-1", "carol")
    }
);

violation!(
    approval_requested_twice,
    "approval.requested",
    "approval_duplicate",
    |env| {
        let k = dual_auth_key(&env);
        request(&env, "req-1", &k, Duration::days(1));
        request(&env, "req-1", &k, Duration::days(1))
    }
);

#[test]
fn approvals_that_reach_their_quorum_in_time_pass() {
    let dir = tempfile::tempdir().expect("tmp");
    let env = key_env::ready(&dir.path().join("data"), INSTANCE, software());
    let id = dual_auth_key(&env);
    request(&env, "req-del", &id, Duration::days(1));
    grant(&env, "req-del", "carol");
    // The approval stands in for the dual authorisation.
    forge(
        &env,
        Actor::system(),
        &event::KeyDestroyed {
            key_id: id.clone(),
            force: false,
            approval_request_id: Some("req-del".into()),
        },
    );
    let other = dual_auth_key(&env);
    request(&env, "req-op", &other, Duration::days(1));
    let quorum = grant(&env, "req-op", "carol");
    executed(&env, "req-op", &other, quorum);
    let bundle = export(&env.service, &env.data, &dir.path().join("bundle"));
    let report = replay(&bundle);
    assert!(report.ok, "{:#?}", report.findings);
}

// ---------------------------------------------------------- honest logs

/// An honest instance's life through `KeyService`: the governed ceremony,
/// a master-key rotation, more administrators and a 2-of-3 threshold,
/// credentials issued and revoked, the instance dual-auth policy, dual-auth
/// deletes, restore, purge, key rotation, disable/enable, an administrator
/// removed, and a restart that the key owners unseal.
fn honest_life(data: &Path) -> KeyEnv {
    let env = key_env::ready(data, INSTANCE, software());
    let (service, clock) = (&env.service, &env.clock);
    let a = key_env::admin_key();
    let (b, c) = (admin_n(2), admin_n(3));
    let plain_key = create_key(service, "before-policy", false);
    let ct = service
        .wrap(&user("alice"), "w", &plain_key, None, &[])
        .expect("wrap")
        .ciphertext;
    key_env::load_master_key(
        service,
        clock,
        &env.owners,
        &[
            &SecretBytes::from_slice(&[0x21; 32]),
            &SecretBytes::from_slice(&[0x42; 32]),
        ],
    );
    for k in [&b, &c] {
        admin_command(service, clock, add_admin(k)).expect("add admin");
    }
    admin_command_by(
        service,
        clock,
        &[&a, &b],
        AdminCommand::SetThresholds {
            signature_threshold: 2,
            revocation_threshold: 2,
        },
    )
    .expect("thresholds");
    for (id, role, digest) in [("ops", "manager", "01"), ("app", "writer", "02")] {
        admin_command_by(
            service,
            clock,
            &[&b, &c],
            AdminCommand::IssueCredential {
                credential_id: id.into(),
                role: role.into(),
                token_digest: digest.repeat(32),
            },
        )
        .expect("issue credential");
    }
    admin_command_by(
        service,
        clock,
        &[&a, &c],
        AdminCommand::RevokeCredential {
            credential_id: "app".into(),
        },
    )
    .expect("revoke credential");
    admin_command_by(
        service,
        clock,
        &[&a, &b],
        AdminCommand::SetInstancePolicy {
            policy_type: "dualAuthDelete".into(),
            enabled: true,
            attributes: Default::default(),
        },
    )
    .expect("instance policy");
    admin_command_by(service, clock, &[&a, &b], sinks_command(&["siem"])).expect("sinks");
    // A key created under the instance policy: two principals delete it.
    let dual = create_key(service, "under-policy", false);
    service
        .set_key_for_deletion(&user("alice"), "s", &dual)
        .expect("set for deletion");
    service
        .delete_key(&user("bob"), "d", &dual, false)
        .expect("dual-auth delete");
    service
        .restore_key(&user("bob"), "r", &dual)
        .expect("restore");
    service
        .unwrap(&user("alice"), "u", &plain_key, &ct, &[])
        .expect("unwrap");
    clock.advance(Duration::hours(2));
    service
        .rotate_key(&user("alice"), "r", &dual, None)
        .expect("rotate");
    clock.advance(Duration::hours(2));
    service
        .rotate_key(&user("alice"), "r", &dual, None)
        .expect("rotate again");
    service
        .disable_key(&user("alice"), "x", &dual)
        .expect("disable");
    service
        .enable_key(&user("alice"), "x", &dual)
        .expect("enable");
    // The key from before the policy: one principal deletes, purge later.
    service
        .delete_key(&user("alice"), "d", &plain_key, false)
        .expect("delete");
    clock.advance(Duration::hours(5));
    service
        .purge_key(&user("alice"), "p", &plain_key)
        .expect("purge");
    admin_command_by(
        service,
        clock,
        &[&a, &b],
        AdminCommand::RemoveAdmin {
            admin_id: id_of(&c),
        },
    )
    .expect("remove admin");
    // Refused attempts are audited and break no rule.
    assert!(
        service
            .delete_key(&user("alice"), "d", &dual, false)
            .is_err()
    );
    assert!(admin_command(service, clock, AdminCommand::Zeroize {}).is_err());

    // Restart: a fresh software HSM; the key owners unseal generation 2.
    let KeyEnv {
        data,
        clock,
        service,
        owners,
        ..
    } = env;
    service.shutdown();
    let hsm = software();
    let service = key_env::open_service(&data, INSTANCE, hsm.clone(), &clock);
    assert!(service.sealed());
    let gen2 = [
        SecretBytes::from_slice(&[0x21; 32]),
        SecretBytes::from_slice(&[0x42; 32]),
    ];
    for (o, p) in owners.iter().zip(&gen2) {
        o.submit(&service, p).expect("unseal part");
    }
    service
        .commit_master_key(&key_env::admin(), "c")
        .expect("unseal commit");
    service
        .activate_master_key(&key_env::admin(), "a")
        .expect("unseal");
    assert!(!service.sealed());
    create_key(&service, "after-unseal", false);
    KeyEnv {
        data,
        clock,
        service,
        owners,
        hsm,
    }
}

#[test]
fn an_honest_log_breaks_no_rule() {
    let dir = tempfile::tempdir().expect("tmp");
    let env = honest_life(&dir.path().join("data"));
    let bundle = export(&env.service, &env.data, &dir.path().join("bundle"));
    let types: Vec<String> = common::fixture::read_records(&bundle)
        .iter()
        .map(|r| Envelope::parse(&r.event).expect("event").event_type)
        .collect();
    for t in [
        "admin.added",
        "admin.removed",
        "admin.thresholds_set",
        "credential.issued",
        "credential.revoked",
        "instance.policy_updated",
        "export.sinks_set",
        "master_key.rotated",
        "instance.unsealed",
        "approval.requested",
        "approval.granted",
        "key.destroyed",
        "key.restored",
        "key.purged",
        "key.rotated",
        "admin.command_denied",
        "key.operation_failed",
    ] {
        assert!(types.iter().any(|x| x == t), "{t} missing from {types:?}");
    }
    let report = replay(&bundle);
    assert!(report.ok, "{:#?}", report.findings);
    assert_eq!(report.events, types.len() as u64);
    // The replayed projections are the server's.
    let mut replayed = verify::PolicyReplay::new();
    for (seq, r) in common::fixture::read_records(&bundle).iter().enumerate() {
        replayed.push(seq as u64, &r.event);
    }
    assert_eq!(replayed.projections(), &env.service.projections());

    let b = bundle.to_str().expect("utf8");
    let out = cli(&["verify", b, "--policy"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("policy OK: "), "{stdout}");
    let json = cli(&["verify", b, "--policy", "--json"]);
    assert_eq!(json.status.code(), Some(0));
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
    assert_eq!(value["ok"], true);
    assert_eq!(value["policy"]["ok"], true);
    assert_eq!(value["policy"]["violations"], 0);
    assert_eq!(value["policy"]["events"], types.len() as u64);
    // Without --policy the JSON report has no policy field.
    let plain = cli(&["verify", b, "--json"]);
    let value: serde_json::Value = serde_json::from_slice(&plain.stdout).expect("json");
    assert!(value.get("policy").is_none(), "{value}");
}

#[test]
fn a_tampered_log_is_not_replayed() {
    let dir = tempfile::tempdir().expect("tmp");
    let env = key_env::ready(&dir.path().join("data"), INSTANCE, software());
    let bundle = export(&env.service, &env.data, &dir.path().join("bundle"));
    let mut records = common::fixture::read_records(&bundle);
    records[3].signature[0] ^= 1;
    common::fixture::write_records(&bundle, &records);
    let b = bundle.to_str().expect("utf8");
    let out = cli(&["verify", b, "--policy"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("first bad position: 3"), "{stdout}");
    assert!(stdout.contains("policy: not replayed"), "{stdout}");
    let json = cli(&["verify", b, "--policy", "--json"]);
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
    assert_eq!(value["ok"], false);
    assert!(value["policy"].is_null(), "{value}");
    let missing = cli(&["verify", "/nonexistent/bundle", "--policy"]);
    assert_eq!(missing.status.code(), Some(2));
}

// ------------------------------------------------ random honest sequences

/// xorshift64*: a small deterministic generator for the random walk.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        (!items.is_empty()).then(|| &items[self.below(items.len())])
    }
}

/// One random step by honest clients against the real service. Refusals
/// are fine (they are audited); whatever the service accepts is allowed.
fn random_step(env: &KeyEnv, rng: &mut Rng, admins: &mut Vec<SigningKey>, step: usize) {
    let service = &env.service;
    let users = ["alice", "bob", "carol"];
    // Principals without a credential act as managers; the writer
    // credentials `cred-N` are issued and revoked along the way (a request
    // by one that is not in force is refused by the service).
    let who = if rng.below(4) == 0 {
        bearer(&format!("cred-{}", rng.below(6)), Role::Writer)
    } else {
        user(users[rng.below(users.len())])
    };
    let keys: Vec<String> = service.projections().keys.keys.keys().cloned().collect();
    let key = rng.pick(&keys).cloned().unwrap_or_default();
    let chosen: Vec<SigningKey> = admins
        .iter()
        .filter(|_| rng.below(3) != 0)
        .cloned()
        .collect();
    let signers: Vec<&SigningKey> = chosen.iter().collect();
    let command = |command: AdminCommand| {
        let _ = admin_command_by(service, &env.clock, &signers, command);
    };
    match rng.below(18) {
        0 | 1 => {
            let _ = service.create_key(
                &who,
                "c",
                CreateKey {
                    name: format!("key-{step}"),
                    description: None,
                    extractable: rng.below(2) == 0,
                    key_ring_id: None,
                    aliases: vec![],
                    expiration_date: (rng.below(4) == 0).then(|| {
                        *env.clock.0.lock().expect("clock") + Duration::hours(1 + step as i64 % 5)
                    }),
                    activation_date: None,
                    material: KeyMaterialSource::Generate,
                },
            );
        }
        2 => drop(service.rotate_key(&who, "r", &key, None)),
        3 => drop(service.disable_key(&who, "x", &key)),
        4 => drop(service.enable_key(&who, "x", &key)),
        5 => {
            drop(service.set_key_policy(&who, "p", &key, "dualAuthDelete", rng.below(3) != 0, None))
        }
        6 => {
            // A dual-auth delete, often: policy, authorisation, then a
            // delete by someone (maybe the same principal).
            if rng.below(2) == 0 {
                let _ = service.set_key_policy(&who, "p", &key, "dualAuthDelete", true, None);
            }
            let _ = service.set_key_for_deletion(&who, "s", &key);
            if rng.below(2) == 0 {
                let deleter = user(users[rng.below(users.len())]);
                let _ = service.delete_key(&deleter, "d", &key, false);
            }
        }
        7 => drop(service.unset_key_for_deletion(&who, "s", &key)),
        8 | 9 => drop(service.delete_key(&who, "d", &key, false)),
        10 => drop(service.restore_key(&who, "r", &key)),
        11 => drop(service.purge_key(&who, "p", &key)),
        12 => {
            let by = [
                Duration::minutes(5),
                Duration::minutes(61),
                Duration::hours(5),
                Duration::days(8),
                Duration::days(31),
            ];
            env.clock.advance(*rng.pick(&by).expect("durations"));
            let _ = service.expire_due();
        }
        13 => {
            if let Ok(w) = service.wrap(&who, "w", &key, None, &[]) {
                let user2 = user(users[rng.below(users.len())]);
                let _ = service.unwrap(&user2, "u", &key, &w.ciphertext, &[]);
                if rng.below(2) == 0 {
                    let _ = service.rewrap(&user2, "r", &key, &w.ciphertext, &[]);
                }
            }
        }
        14 => match rng.below(4) {
            0 => {
                let new = admin_n(10 + step as u8);
                command(add_admin(&new));
                admins.push(new);
            }
            1 => {
                let t = 1 + rng.below(3) as u8;
                command(AdminCommand::SetThresholds {
                    signature_threshold: t,
                    revocation_threshold: 1 + rng.below(3) as u8,
                });
            }
            2 => {
                let victim = rng.pick(admins).map(id_of).unwrap_or_default();
                command(AdminCommand::RemoveAdmin { admin_id: victim });
            }
            _ => command(AdminCommand::SetInstancePolicy {
                policy_type: "dualAuthDelete".into(),
                enabled: rng.below(2) == 0,
                attributes: Default::default(),
            }),
        },
        15 => {
            if rng.below(2) == 0 {
                command(AdminCommand::IssueCredential {
                    credential_id: format!("cred-{}", rng.below(6)),
                    role: "writer".into(),
                    token_digest: format!("{:064x}", rng.next()),
                });
            } else {
                // Mostly a credential in force, sometimes any.
                let issued: Vec<String> = service
                    .projections()
                    .governance
                    .credentials
                    .iter()
                    .filter(|(_, c)| !c.revoked)
                    .map(|(id, _)| id.clone())
                    .collect();
                let credential_id = match rng.pick(&issued) {
                    Some(id) if rng.below(4) != 0 => id.clone(),
                    _ => format!("cred-{}", rng.below(6)),
                };
                command(AdminCommand::RevokeCredential { credential_id });
            }
        }
        16 => {
            // A master-key rotation, step by step, any step may be refused.
            let generation = service.projections().master.next_generation();
            command(AdminCommand::ApproveMasterKeyLoad { generation });
            for (i, o) in env.owners.iter().enumerate() {
                let part = [step as u8 ^ (0x55 * i as u8); 32];
                let _ = o.submit(service, &SecretBytes::from_slice(&part));
            }
            let _ = admin_command_by(
                service,
                &env.clock,
                &signers,
                AdminCommand::CommitMasterKey { generation },
            );
            let _ = admin_command_by(
                service,
                &env.clock,
                &signers,
                AdminCommand::ActivateMasterKey { generation },
            );
        }
        _ => {
            let _ = service.key_payload(&who, "g", &key);
        }
    }
}

#[test]
fn random_honest_command_sequences_break_no_rule() {
    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    for seed in [0x5eed_0001_u64, 0x5eed_0002, 0x5eed_0003] {
        let dir = tempfile::tempdir().expect("tmp");
        let env = key_env::ready(&dir.path().join("data"), INSTANCE, software());
        let mut rng = Rng(seed);
        let mut admins = vec![key_env::admin_key()];
        for step in 0..200 {
            random_step(&env, &mut rng, &mut admins, step);
        }
        let bundle = export(&env.service, &env.data, &dir.path().join("bundle"));
        let report = replay(&bundle);
        assert!(report.ok, "seed {seed:#x}: {:#?}", report.findings);
        for r in common::fixture::read_records(&bundle) {
            let t = Envelope::parse(&r.event).expect("event").event_type;
            *seen.entry(t).or_default() += 1;
        }
    }
    // The walk reaches the governed and time-gated events.
    for t in [
        "admin.added",
        "admin.thresholds_set",
        "credential.issued",
        "key.destroyed",
        "approval.requested",
        "approval.granted",
        "key.purged",
        "key.restored",
        "key.expired",
        "key.rotated",
        "credential.revoked",
        "instance.policy_updated",
        "master_key.rotated",
        "admin.command_denied",
        "key.wrapped",
        "key.unwrapped",
    ] {
        assert!(seen.contains_key(t), "{t} never happened: {seen:?}");
    }
}

// ------------------------------------------- issue 16: rules the replay gained

/// The compromised server stamps the event at `seq` with `time` (earlier
/// than it was appended): that record and every later one are re-linked
/// and re-signed with the instance's own ledger key, and the checkpoint is
/// re-signed, so every signature verifies.
fn restamp(env: &KeyEnv, bundle: &Path, seq: u64, time: chrono::DateTime<Utc>) {
    use keyledger::chain;
    use keyledger::ledger_key::LedgerKey;
    let mut records = common::fixture::read_records(bundle);
    let (old_time, key_id) = {
        let e = Envelope::parse(&records[seq as usize].event).expect("event");
        (e.time.clone(), e.ledger_key.clone())
    };
    let key = LedgerKey::read_file(
        &keyledger::ledger::keys_dir(&env.data, INSTANCE).join(format!("{key_id}.key")),
    )
    .expect("the instance's ledger key");
    let new_time = time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let replace_once = |bytes: &[u8], from: &str, to: &str| {
        let text = String::from_utf8(bytes.to_vec()).expect("utf8");
        assert_eq!(text.matches(from).count(), 1, "{from} in {text}");
        text.replacen(from, to, 1).into_bytes()
    };
    let mut prev = None;
    for record in records.iter_mut().skip(seq as usize) {
        if let Some(prev) = prev {
            let old_prev = Envelope::parse(&record.event).expect("event").prev;
            record.event = replace_once(
                &record.event,
                &format!("\"prev\":\"{old_prev}\""),
                &format!("\"prev\":\"{}\"", chain::to_hex(&prev)),
            );
        } else {
            record.event = replace_once(
                &record.event,
                &format!("\"time\":\"{old_time}\""),
                &format!("\"time\":\"{new_time}\""),
            );
        }
        let link = record.link();
        record.signature = key.sign_record(&link);
        prev = Some(link);
    }
    common::fixture::write_records(bundle, &records);
    let mut frontier = keyledger::merkle::Frontier::new();
    for r in &records {
        frontier.push(r.leaf_hash());
    }
    let checkpoint = keyledger::checkpoint::Checkpoint {
        origin: origin_for(INSTANCE),
        size: records.len() as u64,
        root: frontier.root(),
        extensions: vec![format!(
            "keyledger-chain {}",
            chain::to_hex(&records.last().expect("records").link())
        )],
    };
    std::fs::write(bundle.join("checkpoint"), key.sign_checkpoint(&checkpoint))
        .expect("checkpoint");
}

/// A log in which the event at `seq` was stamped back in time: the replay
/// (run over the records whatever the integrity verdict) decides it at the
/// time the log had reached and flags it, alone, with `code`; `keyledger
/// verify --policy` exits 1 naming that seq, by the replay's finding or by
/// the format's own rule that time never goes backwards.
fn expect_backdated(bundle: &Path, seq: u64, event_type: &str, code: &str) {
    let mut replay = verify::PolicyReplay::new();
    for (i, r) in common::fixture::read_records(bundle).iter().enumerate() {
        replay.push(i as u64, &r.event);
    }
    let report = replay.finish();
    assert_eq!(
        summary(&report.findings),
        vec![(seq, event_type.to_string(), code)],
        "{:#?}",
        report.findings
    );
    let b = bundle.to_str().expect("utf8");
    let out = cli(&["verify", b, "--policy", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    if value["ok"] == true {
        assert_eq!(value["policy"]["violations"], 1, "{value}");
        assert_eq!(value["policy"]["findings"][0]["seq"], seq, "{value}");
        assert_eq!(value["policy"]["findings"][0]["code"], code, "{value}");
    } else {
        assert_eq!(value["failure"]["seq"], seq, "{value}");
    }
}

fn now(env: &KeyEnv) -> chrono::DateTime<Utc> {
    *env.clock.0.lock().expect("clock")
}

/// An administrator command that had expired when its event was appended,
/// stamped back to a time before its expiry (and before the event before
/// it): decided at the time the log had reached, it is `expired`.
#[test]
fn admin_command_backdated_to_look_unexpired() {
    let dir = tempfile::tempdir().expect("tmp");
    let env = key_env::ready(&dir.path().join("data"), INSTANCE, software());
    let key = admin_n(4);
    let t0 = now(&env);
    let doc = CommandDocument::new(INSTANCE, add_admin(&key), t0 + Duration::minutes(1))
        .expect("document");
    let mut command = SignedCommand::unsigned(&doc).expect("unsigned");
    command.sign(&key_env::admin_key());
    env.clock.advance(Duration::minutes(5));
    root_key(&env); // an honest event, after the command expired
    let seq = forge(
        &env,
        admins_actor(),
        &event::AdminAdded {
            admin_id: id_of(&key),
            name: format!("admin-{}", id_of(&key)),
            public_key: b64_key(&key),
            command: Some(command.to_ref()),
        },
    );
    let bundle = export(&env.service, &env.data, &dir.path().join("bundle"));
    restamp(&env, &bundle, seq, t0 + Duration::seconds(30));
    expect_backdated(&bundle, seq, "admin.added", "expired");
}

/// A restore appended 31 days after the deletion, stamped back into the
/// 30-day window.
#[test]
fn restore_backdated_into_the_thirty_day_window() {
    let dir = tempfile::tempdir().expect("tmp");
    let env = key_env::ready(&dir.path().join("data"), INSTANCE, software());
    let id = root_key(&env);
    env.service
        .delete_key(&user("alice"), "d", &id, false)
        .expect("delete");
    let deleted = now(&env);
    let version = env.service.key(&id).expect("key").versions[0].clone();
    env.clock.advance(Duration::days(31));
    root_key(&env); // an honest event, after the window closed
    let seq = forge(
        &env,
        user("alice"),
        &event::KeyRestored {
            key_id: id,
            version_id: version.id,
            key_check_value: version.kcv,
        },
    );
    let bundle = export(&env.service, &env.data, &dir.path().join("bundle"));
    restamp(&env, &bundle, seq, deleted + Duration::days(29));
    expect_backdated(&bundle, seq, "key.restored", "key_restore_expired");
}

/// A dual-authorisation key, destroyed by two principals as the rules want.
fn destroyed_dual_auth_key(env: &KeyEnv) -> String {
    let id = dual_auth_key(env);
    env.service
        .set_key_for_deletion(&user("alice"), "s", &id)
        .expect("set for deletion");
    env.service
        .delete_key(&user("bob"), "d", &id, false)
        .expect("second principal deletes");
    id
}

violation!(
    dual_auth_key_purged_by_one_principal_without_approval,
    "key.purged",
    "dual_auth_not_met",
    |env| {
        let id = destroyed_dual_auth_key(&env);
        env.clock.advance(Duration::hours(5));
        forge(
            &env,
            user("alice"),
            &event::KeyPurged {
                key_id: id,
                versions_shredded: 1,
                approval_request_id: None,
            },
        )
    }
);

/// A `key.wrapped` on `key_id` by alice, naming version `version`.
fn wrapped(env: &KeyEnv, key_id: &str, version: &str) -> u64 {
    forge(
        env,
        user("alice"),
        &event::KeyWrapped {
            key_id: key_id.into(),
            version_id: version.into(),
            generated_dek: true,
            aad_entries: 0,
            ciphertext_digest: "00".repeat(32),
        },
    )
}

fn first_version(env: &KeyEnv, id: &str) -> String {
    env.service.key(id).expect("key").versions[0].id.clone()
}

violation!(
    key_wrapped_with_a_key_that_never_existed,
    "key.wrapped",
    "unknown_key",
    |env| { wrapped(&env, &uuid_like(7), &uuid_like(8)) }
);

violation!(
    key_wrapped_with_a_disabled_key,
    "key.wrapped",
    "key_invalid_state",
    |env| {
        let id = root_key(&env);
        let version = first_version(&env, &id);
        env.service
            .disable_key(&user("alice"), "x", &id)
            .expect("disable");
        wrapped(&env, &id, &version)
    }
);

violation!(
    key_wrapped_with_a_destroyed_key,
    "key.wrapped",
    "key_deleted",
    |env| {
        let id = root_key(&env);
        let version = first_version(&env, &id);
        env.service
            .delete_key(&user("alice"), "d", &id, false)
            .expect("delete");
        wrapped(&env, &id, &version)
    }
);

violation!(
    key_unwrapped_with_a_purged_key,
    "key.unwrapped",
    "unknown_key",
    |env| {
        let id = root_key(&env);
        let version = first_version(&env, &id);
        env.service
            .delete_key(&user("alice"), "d", &id, false)
            .expect("delete");
        env.clock.advance(Duration::hours(5));
        env.service
            .purge_key(&user("alice"), "p", &id)
            .expect("purge");
        forge(
            &env,
            user("alice"),
            &event::KeyUnwrapped {
                key_id: id,
                version_id: version,
                rewrapped_version_id: None,
                ciphertext_digest: "00".repeat(32),
            },
        )
    }
);

/// An API credential issued by administrator command, as its requests act.
fn credential(env: &KeyEnv, id: &str, role: &str) -> Actor {
    key_env::issue_credential(&env.service, &env.clock, id, role);
    bearer(id, keyledger_core::roles::role_of(role).expect("role"))
}

violation!(
    key_wrapped_by_a_revoked_credential,
    "key.wrapped",
    "credential_revoked",
    |env| {
        let id = root_key(&env);
        let app = credential(&env, "app-1", "writer");
        env.service
            .wrap(&app, "w", &id, None, &[])
            .expect("wrap while in force");
        admin_command(
            &env.service,
            &env.clock,
            AdminCommand::RevokeCredential {
                credential_id: "app-1".into(),
            },
        )
        .expect("revoke");
        let version = first_version(&env, &id);
        forge(
            &env,
            app,
            &event::KeyWrapped {
                key_id: id,
                version_id: version,
                generated_dek: true,
                aad_entries: 0,
                ciphertext_digest: "00".repeat(32),
            },
        )
    }
);

violation!(
    key_created_by_a_bearer_principal_that_is_no_credential,
    "key.created",
    "credential_unknown",
    |env| {
        forge(
            &env,
            bearer("ghost", Role::Writer),
            &key_created(uuid_like(5)),
        )
    }
);

violation!(
    key_created_by_a_revoked_credential,
    "key.created",
    "credential_revoked",
    |env| {
        let app = credential(&env, "app-1", "writer");
        admin_command(
            &env.service,
            &env.clock,
            AdminCommand::RevokeCredential {
                credential_id: "app-1".into(),
            },
        )
        .expect("revoke");
        forge(&env, app, &key_created(uuid_like(5)))
    }
);

violation!(
    key_destroyed_by_a_reader_credential_claiming_to_be_a_manager,
    "key.destroyed",
    "credential_role_mismatch",
    |env| {
        let id = root_key(&env);
        credential(&env, "ro-1", "reader");
        forge(&env, bearer("ro-1", Role::Manager), &destroyed_by(&id))
    }
);

violation!(
    key_destroyed_by_a_reader_credential,
    "key.destroyed",
    "role_not_allowed",
    |env| {
        let id = root_key(&env);
        let reader = credential(&env, "ro-1", "reader");
        forge(&env, reader, &destroyed_by(&id))
    }
);

violation!(
    admin_added_under_another_actor_than_its_signers,
    "admin.added",
    "actor_not_signer",
    |env| {
        let key = admin_n(4);
        let command = signed_ref(&env, &[&key_env::admin_key()], add_admin(&key));
        forge(
            &env,
            Actor {
                principal: id_of(&admin_n(5)),
                role: Role::Admin,
                auth: AuthMethod::AdminSignatures,
            },
            &event::AdminAdded {
                admin_id: id_of(&key),
                name: format!("admin-{}", id_of(&key)),
                public_key: b64_key(&key),
                command: Some(command),
            },
        )
    }
);

violation!(
    credential_issued_by_a_manager_under_the_admins_command,
    "credential.issued",
    "actor_not_signer",
    |env| {
        let command = signed_ref(
            &env,
            &[&key_env::admin_key()],
            AdminCommand::IssueCredential {
                credential_id: "app-9".into(),
                role: "manager".into(),
                token_digest: "ef".repeat(32),
            },
        );
        forge(
            &env,
            bearer("cred-manager", Role::Manager),
            &event::CredentialIssued {
                credential_id: "app-9".into(),
                role: "manager".into(),
                token_digest: "ef".repeat(32),
                command: Some(command),
            },
        )
    }
);

violation!(
    approval_cancelled_after_it_was_executed,
    "approval.cancelled",
    "approval_closed",
    |env| {
        let id = destroyed_dual_auth_key(&env);
        let request = env
            .service
            .projections()
            .governance
            .approvals
            .iter()
            .find(|(_, a)| a.target == id)
            .map(|(r, _)| r.clone())
            .expect("the delete request");
        forge(
            &env,
            user("alice"),
            &event::ApprovalCancelled {
                request_id: request,
                reason: "too late".into(),
            },
        )
    }
);

violation!(
    key_created_in_a_key_ring_that_does_not_exist,
    "key.created",
    "key_ring_unknown",
    |env| {
        let mut created = key_created(uuid_like(5));
        created.key_ring_id = "nowhere".into();
        forge(&env, user("alice"), &created)
    }
);

violation!(
    key_moved_to_a_key_ring_that_does_not_exist,
    "key.moved",
    "key_ring_unknown",
    |env| {
        let id = root_key(&env);
        forge(
            &env,
            user("alice"),
            &event::KeyMoved {
                key_id: id,
                from_key_ring_id: "default".into(),
                to_key_ring_id: "nowhere".into(),
            },
        )
    }
);

violation!(
    root_key_created_against_the_instance_policy,
    "key.created",
    "instance_policy_denied",
    |env| {
        admin_command(
            &env.service,
            &env.clock,
            AdminCommand::SetInstancePolicy {
                policy_type: "keyCreateImportAccess".into(),
                enabled: true,
                attributes: [("create_root_key".to_string(), serde_json::json!(false))]
                    .into_iter()
                    .collect(),
            },
        )
        .expect("policy");
        forge(&env, user("alice"), &key_created(uuid_like(5)))
    }
);

/// Key use runs concurrently with state changes: wraps and unwraps on many
/// threads while another disables, enables and finally deletes the key.
/// The service decides each use under the shared side of its command lock,
/// so no disable or delete is sequenced between a use's decision and its
/// event, and the replay (which checks every use against the key's state)
/// finds nothing. Refused uses are answered and leave no `key.wrapped`.
#[test]
fn key_use_racing_state_changes_breaks_no_rule() {
    let dir = tempfile::tempdir().expect("tmp");
    let env = key_env::ready(&dir.path().join("data"), INSTANCE, software());
    let id = root_key(&env);
    let ciphertext = env
        .service
        .wrap(&user("alice"), "w", &id, None, &[])
        .expect("wrap")
        .ciphertext;
    env.service
        .unwrap(&user("bob"), "u", &id, &ciphertext, &[])
        .expect("unwrap");
    let service = &env.service;
    let start = std::sync::Barrier::new(5);
    std::thread::scope(|s| {
        for t in 0..4 {
            let (id, ciphertext, start) = (id.clone(), ciphertext.clone(), &start);
            s.spawn(move || {
                let who = user(["alice", "bob"][t % 2]);
                start.wait();
                for _ in 0..40 {
                    let _ = service.wrap(&who, "w", &id, None, &[]);
                    let _ = service.unwrap(&who, "u", &id, &ciphertext, &[]);
                }
            });
        }
        s.spawn(|| {
            start.wait();
            for _ in 0..10 {
                let _ = service.disable_key(&user("carol"), "x", &id);
                let _ = service.enable_key(&user("carol"), "x", &id);
            }
            service
                .delete_key(&user("carol"), "d", &id, false)
                .expect("delete");
        });
    });
    let bundle = export(&env.service, &env.data, &dir.path().join("bundle"));
    let report = replay(&bundle);
    assert!(report.ok, "{:#?}", report.findings);
    let types: Vec<String> = common::fixture::read_records(&bundle)
        .iter()
        .map(|r| Envelope::parse(&r.event).expect("event").event_type)
        .collect();
    for t in [
        "key.wrapped",
        "key.unwrapped",
        "key.disabled",
        "key.destroyed",
    ] {
        assert!(types.iter().any(|x| x == t), "{t} never happened");
    }
    // Nothing used the key once it was destroyed.
    let destroyed = types
        .iter()
        .position(|t| t == "key.destroyed")
        .expect("destroyed");
    assert!(
        !types[destroyed..]
            .iter()
            .any(|t| t == "key.wrapped" || t == "key.unwrapped"),
        "{types:?}"
    );
}

violation!(
    key_ring_created_twice,
    "key_ring.created",
    "key_ring_conflict",
    |env| {
        env.service
            .create_key_ring(&user("alice"), "r", "ring-1")
            .expect("ring");
        forge(
            &env,
            user("alice"),
            &event::KeyRingCreated {
                key_ring_id: "ring-1".into(),
            },
        )
    }
);

violation!(
    key_ring_deleted_while_it_holds_a_key,
    "key_ring.deleted",
    "key_ring_not_empty",
    |env| {
        env.service
            .create_key_ring(&user("alice"), "r", "ring-1")
            .expect("ring");
        let id = root_key(&env);
        env.service
            .move_key(&user("alice"), "m", &id, "ring-1")
            .expect("move");
        forge(
            &env,
            user("alice"),
            &event::KeyRingDeleted {
                key_ring_id: "ring-1".into(),
            },
        )
    }
);

violation!(
    destroyed_key_moved_to_another_ring_than_default,
    "key.moved",
    "key_deleted",
    |env| {
        env.service
            .create_key_ring(&user("alice"), "r", "ring-1")
            .expect("ring");
        let id = root_key(&env);
        env.service
            .delete_key(&user("alice"), "d", &id, false)
            .expect("delete");
        forge(
            &env,
            user("alice"),
            &event::KeyMoved {
                key_id: id,
                from_key_ring_id: "default".into(),
                to_key_ring_id: "ring-1".into(),
            },
        )
    }
);

/// Key rings through the service: created, a key moved in, destroyed, the
/// ring deleted with force (its destroyed key moved back to `default`
/// first): the replay finds nothing.
#[test]
fn an_honest_key_ring_life_breaks_no_rule() {
    let dir = tempfile::tempdir().expect("tmp");
    let env = key_env::ready(&dir.path().join("data"), INSTANCE, software());
    let alice = user("alice");
    env.service
        .create_key_ring(&alice, "r", "ring-1")
        .expect("ring");
    let id = root_key(&env);
    env.service
        .move_key(&alice, "m", &id, "ring-1")
        .expect("move");
    env.service
        .delete_key(&alice, "d", &id, false)
        .expect("delete");
    env.service
        .delete_key_ring(&alice, "r", "ring-1", true)
        .expect("forced ring deletion");
    env.service
        .create_key_ring(&alice, "r", "ring-2")
        .expect("ring");
    env.service
        .delete_key_ring(&alice, "r", "ring-2", false)
        .expect("empty ring deletion");
    let bundle = export(&env.service, &env.data, &dir.path().join("bundle"));
    let report = replay(&bundle);
    assert!(report.ok, "{:#?}", report.findings);
    let types: Vec<String> = common::fixture::read_records(&bundle)
        .iter()
        .map(|r| Envelope::parse(&r.event).expect("event").event_type)
        .collect();
    assert_eq!(
        types.iter().filter(|t| *t == "key.moved").count(),
        2,
        "moved in, then forced back: {types:?}"
    );
    assert_eq!(types.iter().filter(|t| *t == "key_ring.deleted").count(), 2);
}
