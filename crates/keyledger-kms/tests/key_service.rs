//! The key service over the software HSM: the master-key ceremony and its
//! refusals, root/standard keys, envelope encryption and tampering, the Key
//! Protect state machine, dual-auth delete, purge (crypto-shredding),
//! master-key rotation, sealed restart and unseal, and deterministic
//! projections. Every step is an event; every event matches its schema.

mod common;

use std::sync::Arc;

use chrono::Duration;

use common::key_env::{self, KeyEnv, Owner, admin, user};
use keyledger_core::event::Envelope;
use keyledger_core::governance::AdminCommand;
use keyledger_core::keys::state::{KeyState, StateError};
use keyledger_kms::hsm::software::SoftwareHsm;
use keyledger_kms::hsm::{HsmBackend, ceremony};
use keyledger_kms::secret::SecretBytes;
use keyledger_kms::service::{CreateKey, KeyError, KeyMaterialSource, Projections};
// The reason a refusal names; its HTTP status is the server's mapping
// (tested with the server), so these tests pin the reason itself.
use keyledger_core::reason::Reason;

fn software() -> Arc<dyn HsmBackend> {
    Arc::new(SoftwareHsm::new())
}

fn root_key(env: &KeyEnv, name: &str) -> String {
    let (key, _) = env
        .service
        .create_key(
            &user("alice"),
            "create",
            CreateKey {
                name: name.into(),
                description: None,
                extractable: false,
                key_ring_id: None,
                aliases: vec![],
                expiration_date: None,
                activation_date: None,
                material: KeyMaterialSource::Generate,
            },
        )
        .expect("create root key");
    key.id
}

fn events(env: &KeyEnv) -> Vec<keyledger_core::record::Record> {
    let log = env.service.writer().log();
    log.read(0, log.head().size).expect("read log")
}

fn event_types(env: &KeyEnv) -> Vec<String> {
    events(env)
        .iter()
        .map(|r| Envelope::parse(&r.event).expect("event").event_type)
        .collect()
}

/// Projections rebuilt from the log equal the live ones; all events match their schemas.
fn assert_log_consistent(env: &KeyEnv) {
    let records = events(env);
    let rebuilt = Projections::rebuild(records.iter().map(|r| r.event.as_slice()));
    assert_eq!(
        rebuilt,
        env.service.projections(),
        "rebuilt projections differ from the live state"
    );
    common::events::Schemas::load().check_all(&records);
}

#[test]
fn ceremony_steps_are_events_with_verification_patterns() {
    let dir = tempfile::tempdir().expect("tmp");
    let env = key_env::ready(dir.path(), "acme", software());
    let types = event_types(&env);
    for t in [
        "key_owner.registered",
        "master_key.part_loaded",
        "master_key.committed",
        "master_key.activated",
    ] {
        assert!(types.iter().any(|x| x == t), "{t} missing from {types:?}");
    }
    let state = env.service.projections().master;
    let expected_parts: Vec<String> = env
        .owners
        .iter()
        .map(|o| ceremony::part_verification_pattern(&o.part))
        .collect();
    let combined =
        ceremony::combine_parts(&[env.owners[0].part.clone(), env.owners[1].part.clone()])
            .expect("combine");
    assert_eq!(
        state.current,
        Some((1, ceremony::master_key_verification_pattern(&combined)))
    );
    let loaded: Vec<String> = events(&env)
        .iter()
        .filter_map(|r| {
            let e = Envelope::parse(&r.event).ok()?;
            e.payload_as::<keyledger_core::event::MasterKeyPartLoaded>()?
                .ok()
                .map(|p| p.verification_pattern)
        })
        .collect();
    assert_eq!(loaded, expected_parts);
    assert!(!env.service.sealed());
    assert_log_consistent(&env);
}

#[test]
fn bad_ceremony_input_is_refused_audited_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("tmp");
    let clock = key_env::TestClock::new();
    let hsm = software();
    let service = key_env::open_service(dir.path(), "acme", hsm.clone(), &clock);
    let a = Owner::new("owner-a", 1);
    let b = Owner::new("owner-b", 2);
    key_env::register_owners(&service, &clock, &[&a, &b]);
    // A part before the administrators approved loading generation 1.
    let err = a.submit(&service, &a.part).expect_err("load not approved");
    assert_eq!(
        err.to_string(),
        "master-key ceremony: loading generation 1 has not been approved by the administrators (master_key.approve_load)"
    );
    // Activation before commit.
    let err = key_env::admin_command(
        &service,
        &clock,
        AdminCommand::ActivateMasterKey { generation: 1 },
    )
    .expect_err("activate before commit");
    assert_eq!(
        err.to_string(),
        "refused: master-key step refused: generation 1 is not committed"
    );
    // Neither commit nor activate of a new key without a command.
    let err = service
        .activate_master_key(&admin(), "act")
        .expect_err("activate without command");
    assert_eq!(
        err.to_string(),
        "master-key ceremony: a new master key is activated only by administrator command (master_key.activate)"
    );
    key_env::admin_command(
        &service,
        &clock,
        AdminCommand::ApproveMasterKeyLoad { generation: 1 },
    )
    .expect("approve load");
    // A part from someone who is not a key owner.
    let stranger = Owner::new("mallory", 3);
    let err = stranger
        .submit(&service, &stranger.part)
        .expect_err("not an owner");
    assert!(matches!(err, KeyError::UnknownKeyOwner(_)), "{err}");
    // A part signed by the wrong key.
    let impostor = Owner {
        id: "owner-a".into(),
        key: stranger.key.clone(),
        part: a.part.clone(),
    };
    let err = impostor
        .submit(&service, &impostor.part)
        .expect_err("bad signature");
    assert!(matches!(err, KeyError::BadOwnerSignature(_)), "{err}");
    // A duplicate part from the same owner.
    a.submit(&service, &a.part).expect("first part");
    let before = service.projections();
    let err = a.submit(&service, &a.part).expect_err("duplicate part");
    assert_eq!(err.reason().code(), "DUPLICATE_KEY_PART_ERR");
    // Commit with a part missing.
    let err = key_env::admin_command(
        &service,
        &clock,
        AdminCommand::CommitMasterKey { generation: 1 },
    )
    .expect_err("missing part");
    assert_eq!(
        err.to_string(),
        "refused: master-key step refused: parts missing from key owners [\"owner-b\"]; every registered owner (at least 2) must load one"
    );
    let err = service
        .commit_master_key(&admin(), "commit")
        .expect_err("commit without command");
    assert_eq!(
        err.to_string(),
        "master-key ceremony: a new master key is committed only by administrator command (master_key.commit)"
    );
    assert_eq!(
        service.projections().master,
        before.master,
        "refusals changed no master-key state"
    );
    assert_eq!(hsm.master_key_status("acme").expect("status").current, None);
    assert!(matches!(
        service.create_key(
            &user("u"),
            "c",
            CreateKey {
                name: "k1".into(),
                description: None,
                extractable: false,
                key_ring_id: None,
                aliases: vec![],
                expiration_date: None,
                activation_date: None,
                material: KeyMaterialSource::Generate
            }
        ),
        Err(KeyError::NoMasterKey)
    ));
    let records = service
        .writer()
        .log()
        .read(0, service.writer().log().head().size)
        .expect("read");
    let count = |kind: &str| {
        records
            .iter()
            .filter(|r| Envelope::parse(&r.event).expect("e").event_type == kind)
            .count()
    };
    assert_eq!(
        count("access.denied"),
        4,
        "every refused ceremony step of a proven principal is an access.denied event; \
         the parts of a stranger and of an impostor prove nobody and are not"
    );
    assert_eq!(
        count("admin.command_denied"),
        2,
        "every refused administrator command is an admin.command_denied event"
    );
}

#[test]
fn wrap_unwrap_rotate_rewrap_and_tampering() {
    let dir = tempfile::tempdir().expect("tmp");
    let env = key_env::ready(dir.path(), "acme", software());
    let id = root_key(&env, "payments-root");
    let dek = SecretBytes::from_slice(b"a known data encryption key 32b!");
    let aad = vec!["tenant-7".to_string(), "table:orders".to_string()];
    let wrapped = env
        .service
        .wrap(&user("alice"), "w1", &id, Some(dek.clone()), &aad)
        .expect("wrap");
    assert!(wrapped.generated.is_none());
    let opened = env
        .service
        .unwrap(&user("bob"), "u1", &id, &wrapped.ciphertext, &aad)
        .expect("unwrap");
    assert_eq!(opened.plaintext, dek);
    assert!(opened.rewrapped.is_none());
    // Generated DEKs.
    let generated = env
        .service
        .wrap(&user("alice"), "w2", &id, None, &[])
        .expect("wrap generated");
    let g = generated.generated.clone().expect("dek returned");
    assert_eq!(g.len(), 32);
    assert_eq!(
        env.service
            .unwrap(&user("bob"), "u2", &id, &generated.ciphertext, &[])
            .expect("unwrap")
            .plaintext,
        g
    );

    // Tampering: every single-byte change, truncation, other AAD, other key: one opaque error.
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let raw = b64.decode(&wrapped.ciphertext).expect("b64");
    for i in 0..raw.len() {
        let mut bad = raw.clone();
        bad[i] ^= 0x01;
        let err = env
            .service
            .unwrap(&user("bob"), "t", &id, &b64.encode(&bad), &aad)
            .expect_err("tampered");
        assert!(matches!(err, KeyError::Unprocessable), "byte {i}: {err}");
    }
    for cut in [1, 10, raw.len() - 1] {
        let err = env
            .service
            .unwrap(&user("bob"), "t", &id, &b64.encode(&raw[..cut]), &aad)
            .expect_err("truncated");
        assert!(matches!(err, KeyError::Unprocessable));
    }
    for other_aad in [
        vec![],
        vec!["tenant-7".to_string()],
        vec!["tenant-8".into(), "table:orders".into()],
    ] {
        assert!(matches!(
            env.service
                .unwrap(&user("bob"), "t", &id, &wrapped.ciphertext, &other_aad),
            Err(KeyError::Unprocessable)
        ));
    }
    let other = root_key(&env, "other-root");
    assert!(matches!(
        env.service
            .unwrap(&user("bob"), "t", &other, &wrapped.ciphertext, &aad),
        Err(KeyError::Unprocessable)
    ));
    assert!(matches!(
        env.service
            .unwrap(&user("bob"), "t", &id, "not base64!!", &aad),
        Err(KeyError::Unprocessable)
    ));
    assert_eq!(
        KeyError::Unprocessable.reason().code(),
        "UNPROCESSABLE_CIPHERTEXT_ERR"
    );

    // Rotation: old ciphertexts still unwrap and come back re-wrapped.
    env.clock.advance(Duration::hours(2));
    env.service
        .rotate_key(&user("alice"), "rot", &id, None)
        .expect("rotate");
    let key = env.service.key(&id).expect("key");
    assert_eq!(key.versions.len(), 2);
    let after = env
        .service
        .unwrap(&user("bob"), "u3", &id, &wrapped.ciphertext, &aad)
        .expect("old ciphertext");
    assert_eq!(after.plaintext, dek);
    let (new_ct, new_version) = after.rewrapped.expect("rewrapped to the latest version");
    assert_eq!(new_version, key.versions[1].id);
    assert_eq!(
        env.service
            .unwrap(&user("bob"), "u4", &id, &new_ct, &aad)
            .expect("new")
            .plaintext,
        dek
    );
    let (rewrapped, from, to, _) = env
        .service
        .rewrap(&user("bob"), "rw", &id, &wrapped.ciphertext, &aad)
        .expect("rewrap");
    assert_eq!(
        (from, to),
        (key.versions[0].id.clone(), key.versions[1].id.clone())
    );
    assert_eq!(
        env.service
            .unwrap(&user("bob"), "u5", &id, &rewrapped, &aad)
            .expect("rewrapped")
            .plaintext,
        dek
    );
    // Rotating again within the hour is refused.
    let err = env
        .service
        .rotate_key(&user("alice"), "rot2", &id, None)
        .expect_err("too soon");
    assert!(
        matches!(err, KeyError::State(StateError::RotatedTooRecently)),
        "{err}"
    );
    assert_log_consistent(&env);
}

#[test]
fn suspended_and_destroyed_keys_refuse_wraps_and_nothing_changes() {
    let dir = tempfile::tempdir().expect("tmp");
    let env = key_env::ready(dir.path(), "acme", software());
    let id = root_key(&env, "k-suspend");
    let ct = env
        .service
        .wrap(&user("a"), "w", &id, None, &[])
        .expect("wrap")
        .ciphertext;
    env.service
        .disable_key(&user("a"), "d", &id)
        .expect("disable");
    let before = env.service.projections();
    let err = env
        .service
        .wrap(&user("a"), "w", &id, None, &[])
        .expect_err("suspended");
    assert_eq!(
        (err.reason().code(), err.reason()),
        ("KEY_ACTION_INVALID_STATE_ERR", Reason::InvalidState),
        "{err}"
    );
    assert!(env.service.unwrap(&user("a"), "u", &id, &ct, &[]).is_err());
    assert_eq!(
        env.service.projections().keys.keys,
        before.keys.keys,
        "refusals change no key state"
    );
    assert_eq!(
        event_types(&env).last().map(String::as_str),
        Some("key.operation_failed")
    );
    env.service
        .enable_key(&user("a"), "e", &id)
        .expect("enable");
    env.service
        .unwrap(&user("a"), "u", &id, &ct, &[])
        .expect("unwrap after enable");

    // Dual-auth delete: one user sets, another deletes.
    let (dual, _) = env
        .service
        .create_key(
            &user("a"),
            "c",
            CreateKey {
                name: "dual".into(),
                description: None,
                extractable: false,
                key_ring_id: None,
                aliases: vec!["dual-alias".into()],
                expiration_date: None,
                activation_date: None,
                material: KeyMaterialSource::Generate,
            },
        )
        .expect("create");
    env.service
        .set_key_policy(&admin(), "policy", &dual.id, "dualAuthDelete", true, None)
        .expect("policy");
    assert!(
        env.service
            .delete_key(&user("a"), "del", &dual.id, false)
            .is_err(),
        "no authorisation yet"
    );
    env.service
        .set_key_for_deletion(&user("a"), "set", &dual.id)
        .expect("set");
    let err = env
        .service
        .delete_key(&user("a"), "del", &dual.id, false)
        .expect_err("same user");
    assert_eq!(err.reason().code(), "AUTHORIZATIONS_NOT_MET");
    env.service
        .delete_key(&user("b"), "del", "dual-alias", false)
        .expect("second user deletes");
    let err = env
        .service
        .wrap(&user("a"), "w", &dual.id, None, &[])
        .expect_err("destroyed");
    assert_eq!(err.reason(), Reason::KeyDeleted, "{err}");

    // Delete, restore, delete, purge after 4 h: the material is shredded.
    let ct2 = env
        .service
        .wrap(&user("a"), "w", &id, None, &[])
        .expect("wrap")
        .ciphertext;
    env.service
        .delete_key(&user("a"), "del", &id, false)
        .expect("delete");
    env.service
        .restore_key(&user("a"), "res", &id)
        .expect("restore");
    assert_eq!(env.service.key(&id).expect("k").state, KeyState::Active);
    env.service
        .delete_key(&user("a"), "del", &id, false)
        .expect("delete again");
    let err = env
        .service
        .purge_key(&user("a"), "purge", &id)
        .expect_err("too early");
    assert_eq!(err.reason().code(), "REQ_TOO_EARLY_ERR");
    env.clock.advance(Duration::hours(5));
    env.service
        .purge_key(&user("a"), "purge", &id)
        .expect("purge");
    let material_dir = env.data.join("instances/acme/material").join(&id);
    assert!(
        !material_dir.exists()
            || std::fs::read_dir(&material_dir)
                .expect("dir")
                .next()
                .is_none(),
        "material shredded"
    );
    assert!(
        env.service.unwrap(&user("a"), "u", &id, &ct2, &[]).is_err(),
        "nothing unwraps after purge"
    );
    assert_log_consistent(&env);
}

#[test]
fn standard_keys_import_export_and_root_keys_never_leave() {
    let dir = tempfile::tempdir().expect("tmp");
    let env = key_env::ready(dir.path(), "acme", software());
    let payload = SecretBytes::from_slice(b"imported standard key material!!");
    let (key, _) = env
        .service
        .create_key(
            &user("a"),
            "imp",
            CreateKey {
                name: "std".into(),
                description: Some("imported".into()),
                extractable: true,
                key_ring_id: None,
                aliases: vec![],
                expiration_date: None,
                activation_date: None,
                material: KeyMaterialSource::Payload(payload.clone()),
            },
        )
        .expect("import");
    assert!(key.imported);
    assert_eq!(key.versions[0].kcv, ceremony::kcv(payload.expose()));
    let (got, _) = env
        .service
        .key_payload(&user("a"), "get", &key.id)
        .expect("payload");
    assert_eq!(got, payload);
    let root = root_key(&env, "root");
    assert!(matches!(
        env.service.key_payload(&user("a"), "get", &root),
        Err(KeyError::NotExtractable)
    ));
    let err = env
        .service
        .create_key(
            &user("a"),
            "imp",
            CreateKey {
                name: "bad".into(),
                description: None,
                extractable: true,
                key_ring_id: None,
                aliases: vec![],
                expiration_date: None,
                activation_date: None,
                material: KeyMaterialSource::Payload(SecretBytes::from_slice(b"short")),
            },
        )
        .expect_err("bad size");
    assert!(matches!(err, KeyError::Payload(_)), "{err}");
    assert_eq!(
        (err.reason().code(), err.reason()),
        ("INVALID_FIELD_ERR", Reason::InvalidField)
    );
    assert_log_consistent(&env);
}

#[test]
fn master_key_rotation_rewraps_everything_and_old_ciphertexts_still_unwrap() {
    let dir = tempfile::tempdir().expect("tmp");
    let env = key_env::ready(dir.path(), "acme", software());
    let ids: Vec<String> = (0..3).map(|i| root_key(&env, &format!("k{i}"))).collect();
    let cts: Vec<String> = ids
        .iter()
        .map(|id| {
            env.service
                .wrap(&user("a"), "w", id, None, &[])
                .expect("wrap")
                .ciphertext
        })
        .collect();
    let plain: Vec<SecretBytes> = ids
        .iter()
        .zip(&cts)
        .map(|(id, ct)| {
            env.service
                .unwrap(&user("a"), "u", id, ct, &[])
                .expect("u")
                .plaintext
        })
        .collect();
    let new_parts = [
        SecretBytes::from_slice(&[0x21; 32]),
        SecretBytes::from_slice(&[0x42; 32]),
    ];
    key_env::load_master_key(
        &env.service,
        &env.clock,
        &env.owners,
        &new_parts.iter().collect::<Vec<_>>(),
    );
    assert_eq!(
        env.service.projections().master.current.map(|c| c.0),
        Some(2)
    );
    let rotated = events(&env)
        .iter()
        .rev()
        .find_map(|r| {
            Envelope::parse(&r.event)
                .ok()?
                .payload_as::<keyledger_core::event::MasterKeyRotated>()?
                .ok()
        })
        .expect("rotated event");
    assert_eq!(
        (
            rotated.from_generation,
            rotated.to_generation,
            rotated.keys_rewrapped
        ),
        (1, 2, 3)
    );
    assert_eq!(
        env.hsm
            .master_key_status("acme")
            .expect("status")
            .current
            .map(|c| c.0),
        Some(2)
    );
    for ((id, ct), p) in ids.iter().zip(&cts).zip(&plain) {
        assert_eq!(
            &env.service
                .unwrap(&user("a"), "u", id, ct, &[])
                .expect("after rotation")
                .plaintext,
            p
        );
    }
    assert_log_consistent(&env);
}

#[test]
fn restart_seals_the_instance_until_key_owners_resubmit() {
    let dir = tempfile::tempdir().expect("tmp");
    let env = key_env::ready(dir.path(), "acme", software());
    let id = root_key(&env, "survivor");
    let dek = SecretBytes::from_slice(b"data key that must survive 32 b!");
    let ct = env
        .service
        .wrap(&user("a"), "w", &id, Some(dek.clone()), &[])
        .expect("wrap")
        .ciphertext;
    let KeyEnv {
        service,
        owners,
        clock,
        ..
    } = env;
    service.shutdown();

    // A new process: a fresh software HSM knows no master key.
    let hsm = software();
    let service = key_env::open_service(dir.path(), "acme", hsm.clone(), &clock);
    assert!(service.sealed());
    let err = service
        .wrap(&user("a"), "w", &id, None, &[])
        .expect_err("sealed");
    assert!(matches!(err, KeyError::Sealed), "{err}");
    assert_eq!(
        err.to_string(),
        "the instance is sealed: its master key is not loaded"
    );
    assert_eq!(
        service.key(&id).expect("metadata still readable").name,
        "survivor"
    );
    let status = service.ceremony_status().expect("status");
    assert!(status.unseal);
    assert_eq!(status.generation, 1);
    // Wrong parts do not unseal.
    owners[0].submit(&service, &owners[0].part).expect("part a");
    owners[1]
        .submit(&service, &SecretBytes::from_slice(&[9u8; 32]))
        .expect("wrong part b");
    let err = service
        .commit_master_key(&admin(), "c")
        .expect_err("wrong parts");
    assert!(matches!(err, KeyError::WrongParts), "{err}");
    assert!(service.sealed());
    // The right parts do.
    for o in &owners {
        o.submit(&service, &o.part).expect("resubmit");
    }
    service.commit_master_key(&admin(), "c").expect("commit");
    service.activate_master_key(&admin(), "a").expect("unseal");
    assert!(!service.sealed());
    assert_eq!(
        service
            .unwrap(&user("a"), "u", &id, &ct, &[])
            .expect("unwrap after unseal")
            .plaintext,
        dek
    );
    let types: Vec<String> = service
        .writer()
        .log()
        .read(0, service.writer().log().head().size)
        .expect("r")
        .iter()
        .map(|r| Envelope::parse(&r.event).expect("e").event_type)
        .collect();
    assert!(types.iter().any(|t| t == "instance.unsealed"));
}

#[test]
fn another_instance_cannot_unwrap() {
    let dir = tempfile::tempdir().expect("tmp");
    let hsm = software();
    let a = key_env::ready(dir.path(), "alpha", hsm.clone());
    let b = key_env::ready(dir.path(), "beta", hsm);
    let ka = root_key(&a, "same-name");
    let kb = root_key(&b, "same-name");
    let ct = a
        .service
        .wrap(&user("x"), "w", &ka, None, &[])
        .expect("wrap")
        .ciphertext;
    assert!(matches!(
        b.service.unwrap(&user("x"), "u", &kb, &ct, &[]),
        Err(KeyError::Unprocessable)
    ));
    assert!(matches!(
        b.service.unwrap(&user("x"), "u", &ka, &ct, &[]),
        Err(KeyError::NotFound(_))
    ));
}

/// The service itself refuses a credential that was revoked after its
/// request was authenticated, or that acts with another role than it was
/// issued with: the key aggregate's decision (`decide::check_credential`,
/// which `verify --policy` replays) checks the credential before anything
/// is appended, for key use and state changes alike.
#[test]
fn revoked_credentials_are_refused_by_the_service_and_nothing_is_stored() {
    use keyledger_core::event::{Actor, AuthMethod, Role};
    let dir = tempfile::tempdir().expect("tmp");
    let env = key_env::ready(&dir.path().join("data"), "acme", software());
    let id = root_key(&env, "revocation");
    key_env::issue_credential(&env.service, &env.clock, "app-1", "writer");
    let app = Actor {
        principal: "app-1".into(),
        role: Role::Writer,
        auth: AuthMethod::Bearer,
    };
    let wrapped = env
        .service
        .wrap(&app, "w", &id, None, &[])
        .expect("a credential in force wraps");
    let head = |env: &KeyEnv| env.service.writer().log().head().size;

    // Acting out of its role: refused, nothing stored.
    let as_manager = Actor {
        role: Role::Manager,
        ..app.clone()
    };
    let before = head(&env);
    let e = env
        .service
        .disable_key(&as_manager, "x", &id)
        .expect_err("a writer credential acting as a manager");
    assert_eq!(e.reason(), Reason::Unauthenticated, "{e}");
    assert!(e.to_string().contains("issued as \"writer\""), "{e}");
    assert_eq!(head(&env), before);

    key_env::admin_command(
        &env.service,
        &env.clock,
        AdminCommand::RevokeCredential {
            credential_id: "app-1".into(),
        },
    )
    .expect("revoke");
    // Past the rotation window, so only the credential refuses a rotation.
    env.clock.advance(Duration::hours(2));
    let before = head(&env);
    let refusals = [
        env.service.wrap(&app, "w", &id, None, &[]).map(drop),
        env.service
            .unwrap(&app, "u", &id, &wrapped.ciphertext, &[])
            .map(drop),
        env.service
            .rewrap(&app, "r", &id, &wrapped.ciphertext, &[])
            .map(drop),
        env.service.rotate_key(&app, "r", &id, None).map(drop),
        env.service
            .create_key(
                &app,
                "c",
                CreateKey {
                    name: "after-revocation".into(),
                    description: None,
                    extractable: false,
                    key_ring_id: None,
                    aliases: vec![],
                    expiration_date: None,
                    activation_date: None,
                    material: KeyMaterialSource::Generate,
                },
            )
            .map(drop),
    ];
    for (i, refused) in refusals.into_iter().enumerate() {
        let e = refused.expect_err("a revoked credential is refused");
        assert_eq!(e.reason(), Reason::Unauthenticated, "{i}: {e}");
        assert_eq!(
            e.to_string(),
            "unauthenticated: credential \"app-1\" was revoked",
            "{i}"
        );
    }
    assert_eq!(
        head(&env),
        before,
        "nothing is stored for a revoked credential"
    );
    // Principals that are no credential (the service's own callers) are
    // not affected.
    env.service
        .wrap(&user("alice"), "w", &id, None, &[])
        .expect("a non-credential principal");
}
