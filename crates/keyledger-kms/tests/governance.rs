//! Administrator commands, given/when/then: given the events a fresh
//! instance and earlier commands produced, when a signed command is
//! submitted, then exactly these events are appended, or this error is
//! returned, one `admin.command_denied` event is appended and nothing else
//! changes.

mod common;

use base64::Engine;
use chrono::Duration;
use ed25519_dalek::SigningKey;

use common::key_env::{self, TestClock, admin_command, admin_command_by, admin_key, document};
use keyledger_core::event::{Actor, Envelope};
use keyledger_core::governance::{AdminCommand, Denial, admin_id};
use keyledger_kms::hsm::software::SoftwareHsm;
use keyledger_kms::service::{KeyError, KeyService, Projections};
// The reason a refusal names; its HTTP status is the server's mapping
// (tested with the server), so these tests pin the reason itself.
use keyledger_core::reason::Reason;

fn key(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n; 32])
}

fn b64(k: &SigningKey) -> String {
    base64::engine::general_purpose::STANDARD.encode(k.verifying_key().as_bytes())
}

fn add(k: &SigningKey, name: &str) -> AdminCommand {
    AdminCommand::AddAdmin {
        name: name.into(),
        public_key: b64(k),
    }
}

fn thresholds(signature: u8, revocation: u8) -> AdminCommand {
    AdminCommand::SetThresholds {
        signature_threshold: signature,
        revocation_threshold: revocation,
    }
}

struct Given {
    _dir: tempfile::TempDir,
    clock: TestClock,
    service: KeyService,
}

/// A fresh instance in imprint mode whose only admin is `admin_key()`.
fn fresh() -> Given {
    let dir = tempfile::tempdir().expect("tmp");
    let clock = TestClock::new();
    let service = key_env::open_service(
        dir.path(),
        "acme",
        std::sync::Arc::new(SoftwareHsm::new()),
        &clock,
    );
    Given {
        _dir: dir,
        clock,
        service,
    }
}

/// Admins admin_key(), key(2), key(3); thresholds 2 (signature), 2 (revocation).
fn three_admins() -> Given {
    three_admins_with(2, 2)
}

/// Admins admin_key(), key(2), key(3) and the given thresholds.
fn three_admins_with(signature: u8, revocation: u8) -> Given {
    let g = fresh();
    admin_command(&g.service, &g.clock, add(&key(2), "bob")).expect("add bob");
    admin_command(&g.service, &g.clock, add(&key(3), "carol")).expect("add carol");
    admin_command_by(
        &g.service,
        &g.clock,
        &[&admin_key(), &key(2)],
        thresholds(signature, revocation),
    )
    .expect("thresholds");
    g
}

fn types(service: &KeyService, from: u64) -> Vec<String> {
    let log = service.writer().log();
    log.read(from, log.head().size)
        .expect("read")
        .iter()
        .map(|r| Envelope::parse(&r.event).expect("event").event_type)
        .collect()
}

/// Then: `err` is `expected`, and the only new event is one
/// `admin.command_denied` naming the reason; the projections are unchanged.
fn then_denied(g: &Given, when: impl FnOnce(&Given) -> Result<u64, KeyError>, expected: Denial) {
    let size = g.service.writer().log().head().size;
    let before = g.service.projections();
    let err = when(g).expect_err("refused");
    match &err {
        KeyError::Denied(d) => assert_eq!(d, &expected, "{err}"),
        other => panic!("expected a denial, got {other}"),
    }
    assert_eq!(types(&g.service, size), vec!["admin.command_denied"]);
    let log = g.service.writer().log();
    let denied = log.read(size, size + 1).expect("read");
    let envelope = Envelope::parse(&denied[0].event).expect("event");
    let payload: keyledger_core::event::AdminCommandDenied =
        envelope.payload_as().expect("type").expect("payload");
    assert_eq!(payload.reason, expected.to_string());
    let after = g.service.projections();
    assert_eq!(after.governance, before.governance, "no governance change");
    assert_eq!(after.master, before.master, "no ceremony change");
    assert_eq!(after.keys, before.keys, "no key change");
}

fn seq(r: Result<keyledger_ledger::writer::Receipt, KeyError>) -> Result<u64, KeyError> {
    r.map(|r| r.seq)
}

#[test]
fn imprint_mode_admits_admins_then_thresholds_leave_it() {
    let g = fresh();
    assert!(g.service.projections().governance.imprint_mode());
    let size = g.service.writer().log().head().size;
    admin_command(&g.service, &g.clock, add(&key(2), "bob")).expect("add bob");
    assert_eq!(types(&g.service, size), vec!["admin.added"]);
    // Thresholds need as many signatures as the new signature threshold.
    then_denied(
        &g,
        |g| seq(admin_command(&g.service, &g.clock, thresholds(2, 1))),
        Denial::NotEnoughSignatures {
            kind: "admin.set_thresholds".into(),
            have: 1,
            need: 2,
        },
    );
    admin_command_by(
        &g.service,
        &g.clock,
        &[&admin_key(), &key(2)],
        thresholds(2, 1),
    )
    .expect("thresholds with two signatures");
    let gov = g.service.projections().governance;
    assert!(!gov.imprint_mode());
    assert_eq!(gov.admins.len(), 2);
    assert_eq!(
        gov.thresholds,
        Some(keyledger_core::governance::Thresholds {
            signature: 2,
            revocation: 1
        })
    );
}

#[test]
fn imprint_mode_refuses_everything_but_admins_and_thresholds() {
    let g = fresh();
    then_denied(
        &g,
        |g| {
            seq(admin_command(
                &g.service,
                &g.clock,
                AdminCommand::ApproveMasterKeyLoad { generation: 1 },
            ))
        },
        Denial::ImprintMode {
            kind: "master_key.approve_load".into(),
        },
    );
}

#[test]
fn threshold_above_the_number_of_admins_is_refused() {
    let g = fresh();
    admin_command(&g.service, &g.clock, add(&key(2), "bob")).expect("add bob");
    then_denied(
        &g,
        |g| {
            seq(admin_command_by(
                &g.service,
                &g.clock,
                &[&admin_key(), &key(2)],
                thresholds(3, 1),
            ))
        },
        Denial::ThresholdAboveAdmins {
            threshold: 3,
            admins: 2,
        },
    );
    then_denied(
        &g,
        |g| {
            seq(admin_command_by(
                &g.service,
                &g.clock,
                &[&admin_key(), &key(2)],
                thresholds(0, 1),
            ))
        },
        Denial::ThresholdOutOfRange(0),
    );
}

#[test]
fn forged_signature_is_refused() {
    let g = three_admins();
    then_denied(
        &g,
        |g| {
            let mut signed = document(&g.service, &g.clock, add(&key(4), "dave"));
            signed.sign(&admin_key());
            signed.sign(&key(2));
            // Bob's signature replaced by one over another document.
            let other = document(&g.service, &g.clock, add(&key(5), "eve"));
            let mut other = other;
            other.sign(&key(2));
            signed.signatures[1].signature = other.signatures[0].signature.clone();
            seq(g
                .service
                .submit_admin_command(&Actor::operator("op"), "c", &signed))
        },
        Denial::ForgedSignature {
            admin_id: admin_id(&key(2).verifying_key()),
        },
    );
}

#[test]
fn duplicate_signer_is_refused() {
    let g = three_admins();
    then_denied(
        &g,
        |g| {
            let mut signed = document(&g.service, &g.clock, add(&key(4), "dave"));
            signed.sign(&admin_key());
            let dup = signed.signatures[0].clone();
            signed.signatures.push(dup);
            seq(g
                .service
                .submit_admin_command(&Actor::operator("op"), "c", &signed))
        },
        Denial::DuplicateSigner {
            admin_id: admin_id(&admin_key().verifying_key()),
        },
    );
}

#[test]
fn too_few_signatures_are_refused() {
    let g = three_admins();
    then_denied(
        &g,
        |g| seq(admin_command(&g.service, &g.clock, add(&key(4), "dave"))),
        Denial::NotEnoughSignatures {
            kind: "admin.add".into(),
            have: 1,
            need: 2,
        },
    );
}

#[test]
fn expired_command_is_refused() {
    let g = three_admins();
    let mut signed = document(&g.service, &g.clock, add(&key(4), "dave"));
    signed.sign(&admin_key());
    signed.sign(&key(2));
    g.clock.advance(Duration::hours(2));
    let expires_at = keyledger_core::governance::CommandDocument::parse(&signed.document)
        .expect("doc")
        .expires_at;
    then_denied(
        &g,
        |g| {
            seq(g
                .service
                .submit_admin_command(&Actor::operator("op"), "c", &signed))
        },
        Denial::Expired { expires_at },
    );
}

#[test]
fn replayed_command_is_refused() {
    let g = three_admins();
    let mut signed = document(&g.service, &g.clock, add(&key(4), "dave"));
    signed.sign(&admin_key());
    signed.sign(&key(2));
    g.service
        .submit_admin_command(&Actor::operator("op"), "c", &signed)
        .expect("first submission");
    // Remove dave again, then replay the add: the nonce is spent.
    admin_command_by(
        &g.service,
        &g.clock,
        &[&admin_key(), &key(2)],
        AdminCommand::RemoveAdmin {
            admin_id: admin_id(&key(4).verifying_key()),
        },
    )
    .expect("remove dave");
    let nonce = keyledger_core::governance::CommandDocument::parse(&signed.document)
        .expect("doc")
        .nonce;
    then_denied(
        &g,
        |g| {
            seq(g
                .service
                .submit_admin_command(&Actor::operator("op"), "c", &signed))
        },
        Denial::Replayed { nonce },
    );
}

#[test]
fn command_for_another_instance_is_refused() {
    let g = three_admins();
    then_denied(
        &g,
        |g| {
            let mut signed = document(&g.service, &g.clock, add(&key(4), "dave"));
            let doc = signed
                .document
                .replace("\"instance\":\"acme\"", "\"instance\":\"other\"");
            signed.document = doc;
            signed.sign(&admin_key());
            signed.sign(&key(2));
            seq(g
                .service
                .submit_admin_command(&Actor::operator("op"), "c", &signed))
        },
        Denial::WrongInstance {
            expected: "acme".into(),
            got: "other".into(),
        },
    );
}

#[test]
fn signer_who_is_not_or_no_longer_an_admin_is_refused() {
    let g = three_admins();
    then_denied(
        &g,
        |g| {
            seq(admin_command_by(
                &g.service,
                &g.clock,
                &[&admin_key(), &key(9)],
                add(&key(4), "dave"),
            ))
        },
        Denial::NotAnAdmin {
            admin_id: admin_id(&key(9).verifying_key()),
        },
    );
    // Carol is removed (revocation threshold 2), then signs.
    admin_command_by(
        &g.service,
        &g.clock,
        &[&admin_key(), &key(2)],
        AdminCommand::RemoveAdmin {
            admin_id: admin_id(&key(3).verifying_key()),
        },
    )
    .expect("remove carol");
    then_denied(
        &g,
        |g| {
            seq(admin_command_by(
                &g.service,
                &g.clock,
                &[&admin_key(), &key(3)],
                add(&key(4), "dave"),
            ))
        },
        Denial::NotAnAdmin {
            admin_id: admin_id(&key(3).verifying_key()),
        },
    );
}

#[test]
fn removing_an_admin_below_the_thresholds_is_refused() {
    let g = three_admins();
    admin_command_by(
        &g.service,
        &g.clock,
        &[&admin_key(), &key(2)],
        AdminCommand::RemoveAdmin {
            admin_id: admin_id(&key(3).verifying_key()),
        },
    )
    .expect("3 -> 2 admins is fine with thresholds 2/2");
    then_denied(
        &g,
        |g| {
            seq(admin_command_by(
                &g.service,
                &g.clock,
                &[&admin_key(), &key(2)],
                AdminCommand::RemoveAdmin {
                    admin_id: admin_id(&key(2).verifying_key()),
                },
            ))
        },
        Denial::ThresholdAboveAdmins {
            threshold: 2,
            admins: 1,
        },
    );
}

#[test]
fn credentials_and_policies_are_recorded_with_their_commands() {
    let g = three_admins();
    let digest = "ab".repeat(32);
    let by_two = [&admin_key(), &key(2)];
    let size = g.service.writer().log().head().size;
    admin_command_by(
        &g.service,
        &g.clock,
        &by_two,
        AdminCommand::IssueCredential {
            credential_id: "cred-1".into(),
            role: "writer".into(),
            token_digest: digest.clone(),
        },
    )
    .expect("issue");
    admin_command_by(
        &g.service,
        &g.clock,
        &by_two,
        AdminCommand::SetInstancePolicy {
            policy_type: "allowedIP".into(),
            enabled: true,
            attributes: serde_json::from_value(serde_json::json!({"allowed_ip": ["10.0.0.0/8"]}))
                .expect("attrs"),
        },
    )
    .expect("policy");
    admin_command_by(
        &g.service,
        &g.clock,
        &by_two,
        AdminCommand::RevokeCredential {
            credential_id: "cred-1".into(),
        },
    )
    .expect("revoke");
    assert_eq!(
        types(&g.service, size),
        vec![
            "credential.issued",
            "instance.policy_updated",
            "credential.revoked"
        ]
    );
    let gov = g.service.projections().governance;
    assert!(gov.credentials["cred-1"].revoked);
    assert!(gov.credential_by_digest(&digest).is_none());
    assert!(gov.allows_ip("10.1.2.3".parse().expect("ip")));
    assert!(!gov.allows_ip("192.168.0.1".parse().expect("ip")));
    then_denied(
        &g,
        |g| {
            seq(admin_command_by(
                &g.service,
                &g.clock,
                &by_two,
                AdminCommand::IssueCredential {
                    credential_id: "cred-2".into(),
                    role: "root".into(),
                    token_digest: "cd".repeat(32),
                },
            ))
        },
        Denial::Invalid(
            "role must be one of [\"manager\", \"writer\", \"reader\", \"auditor\"]".into(),
        ),
    );
}

#[test]
fn every_admin_and_ceremony_step_is_in_the_log_with_its_signatures() {
    let dir = tempfile::tempdir().expect("tmp");
    let env = key_env::ready(dir.path(), "acme", std::sync::Arc::new(SoftwareHsm::new()));
    let log = env.service.writer().log();
    let records = log.read(0, log.head().size).expect("read");
    let mut governed = 0;
    for r in &records {
        let e = Envelope::parse(&r.event).expect("event");
        let payload: serde_json::Value = serde_json::from_str(e.payload.get()).expect("json");
        match e.event_type.as_str() {
            "admin.thresholds_set"
            | "key_owner.registered"
            | "master_key.load_approved"
            | "master_key.committed"
            | "master_key.activated" => {
                governed += 1;
                let command = &payload["command"];
                assert!(command["document"].is_string(), "{}", e.event_type);
                assert_eq!(command["signatures"].as_array().map(Vec::len), Some(1));
                let signed = keyledger_core::governance::SignedCommand {
                    document: command["document"].as_str().expect("doc").into(),
                    signatures: serde_json::from_value(command["signatures"].clone())
                        .expect("sigs"),
                };
                assert_eq!(command["digest"], hex::encode(signed.digest()));
            }
            "master_key.part_loaded" => governed += 1,
            _ => {}
        }
    }
    // thresholds + 2 owners + approve load + 2 parts + commit + activate.
    assert_eq!(governed, 8);
    assert_eq!(
        Projections::rebuild(records.iter().map(|r| r.event.as_slice())),
        env.service.projections()
    );
}

#[test]
fn key_create_import_access_policy_limits_what_keys_may_be_made() {
    let dir = tempfile::tempdir().expect("tmp");
    let env = key_env::ready(dir.path(), "acme", std::sync::Arc::new(SoftwareHsm::new()));
    admin_command(
        &env.service,
        &env.clock,
        AdminCommand::SetInstancePolicy {
            policy_type: "keyCreateImportAccess".into(),
            enabled: true,
            attributes: serde_json::from_value(serde_json::json!({
                "create_root_key": false,
                "enforce_token": true
            }))
            .expect("attrs"),
        },
    )
    .expect("policy");
    let create = |extractable: bool, payload: Option<&[u8]>| {
        env.service.create_key(
            &key_env::user("alice"),
            "c",
            keyledger_kms::service::CreateKey {
                name: "k1".into(),
                description: None,
                extractable,
                key_ring_id: None,
                aliases: vec![],
                expiration_date: None,
                activation_date: None,
                material: match payload {
                    Some(p) => keyledger_kms::service::KeyMaterialSource::Payload(
                        keyledger_kms::secret::SecretBytes::from_slice(p),
                    ),
                    None => keyledger_kms::service::KeyMaterialSource::Generate,
                },
            },
        )
    };
    let size = env.service.writer().log().head().size;
    let err = create(false, None).expect_err("root keys may not be created");
    assert_eq!(
        err.to_string(),
        "the instance policy keyCreateImportAccess does not allow creating root keys"
    );
    assert_eq!(
        (err.reason(), err.reason().code()),
        (
            Reason::CreateImportForbidden,
            "KEY_CREATE_IMPORT_ACCESS_ERR"
        )
    );
    let err = create(true, Some(&[7u8; 32])).expect_err("imports need a token");
    assert!(
        err.to_string().contains("requires an import token"),
        "{err}"
    );
    assert_eq!(
        env.service.writer().log().head().size,
        size,
        "nothing recorded"
    );
    create(true, None).expect("standard keys may still be created");
}

fn sinks(names: &[&str]) -> AdminCommand {
    AdminCommand::SetSinks {
        sinks: names
            .iter()
            .map(|n| {
                serde_json::from_value(serde_json::json!({
                    "name": n, "format": "cef",
                    "target": {"kind": "syslog", "address": "siem.example.com:6514",
                               "tls": {"ca_ref": "siem-ca"}}
                }))
                .expect("sink")
            })
            .collect(),
    }
}

/// Issue 18: SIEM sinks are set only by a quorum-signed command recorded
/// as `export.sinks_set`; adding takes the signature threshold, removing
/// one (turning forwarding off) the revocation threshold; a bad
/// configuration or too few signatures change nothing.
#[test]
fn sinks_are_set_by_quorum_and_removing_one_takes_the_revocation_threshold() {
    let g = three_admins_with(2, 3);
    let two = [&admin_key(), &key(2)];
    let all = [&admin_key(), &key(2), &key(3)];
    then_denied(
        &g,
        |g| seq(admin_command(&g.service, &g.clock, sinks(&["siem"]))),
        Denial::NotEnoughSignatures {
            kind: "export.set_sinks".into(),
            have: 1,
            need: 2,
        },
    );
    let size = g.service.writer().log().head().size;
    admin_command_by(&g.service, &g.clock, &two, sinks(&["siem"])).expect("set");
    admin_command_by(&g.service, &g.clock, &two, sinks(&["siem", "backup"])).expect("add");
    assert_eq!(
        types(&g.service, size),
        vec!["export.sinks_set", "export.sinks_set"]
    );
    let gov = g.service.projections().governance;
    let names: Vec<&str> = gov.sinks.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["siem", "backup"]);
    assert_eq!(gov.sinks_set_seq, Some(size + 1));
    // Turning one off: two signatures are not enough, three are.
    then_denied(
        &g,
        |g| {
            seq(admin_command_by(
                &g.service,
                &g.clock,
                &two,
                sinks(&["backup"]),
            ))
        },
        Denial::NotEnoughSignatures {
            kind: "export.set_sinks".into(),
            have: 2,
            need: 3,
        },
    );
    let mut bad = sinks(&["siem"]);
    if let AdminCommand::SetSinks { sinks } = &mut bad {
        sinks[0].target = serde_json::from_value(serde_json::json!(
            {"kind": "hec", "url": "http://splunk.example.com/services/collector/event",
             "token_ref": "t"}))
        .expect("target");
    }
    then_denied(
        &g,
        |g| seq(admin_command_by(&g.service, &g.clock, &all, bad)),
        Denial::Invalid(
            "sink \"siem\": url must be https:// (http:// only to a loopback host: the token would travel in clear)"
                .into(),
        ),
    );
    admin_command_by(&g.service, &g.clock, &all, sinks(&[])).expect("all off, by all three");
    let gov = g.service.projections().governance;
    assert!(gov.sinks.is_empty());
}
