//! Pre-activation (state 0) through the key service: a key created with an
//! activation date still ahead refuses every cryptographic action with Key
//! Protect's `KEY_ACTION_INVALID_STATE_ERR` until that date, then becomes
//! Active by a `key.activated` event: appended by the `activate_due` job, or
//! by the first command on the key once the date has come. State comes from
//! events only, so it survives restarts and a rebuild equals the live state.

mod common;

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use common::key_env::{self, KeyEnv, admin, assert_log_consistent, event_types, user};
use common::kp_client;
use keyledger_core::keys::state::KeyState;
use keyledger_kms::hsm::HsmBackend;
use keyledger_kms::hsm::software::SoftwareHsm;
use keyledger_kms::import_token::ImportTokenRequest;
use keyledger_kms::secret::SecretBytes;
use keyledger_kms::service::{CreateKey, KeyError, KeyMaterialSource};
// The reason a refusal names; its HTTP status is the server's mapping
// (tested with the server), so these tests pin the reason itself.
use keyledger_core::reason::Reason;

fn software() -> Arc<dyn HsmBackend> {
    Arc::new(SoftwareHsm::new())
}

fn now(env: &KeyEnv) -> DateTime<Utc> {
    *env.clock.0.lock().expect("clock")
}

fn request(
    name: &str,
    activation: Option<DateTime<Utc>>,
    expiration: Option<DateTime<Utc>>,
) -> CreateKey {
    CreateKey {
        name: name.into(),
        description: None,
        extractable: false,
        key_ring_id: None,
        aliases: vec![],
        expiration_date: expiration,
        activation_date: activation,
        material: KeyMaterialSource::Generate,
    }
}

fn create(env: &KeyEnv, req: CreateKey) -> String {
    env.service
        .create_key(&user("alice"), "create", req)
        .expect("create")
        .0
        .id
}

fn state(env: &KeyEnv, id: &str) -> KeyState {
    env.service.key(id).expect("key").state
}

#[test]
fn given_a_future_activation_date_the_key_is_pre_active_until_that_date() {
    let dir = tempfile::tempdir().expect("tmp");
    let env = key_env::ready(dir.path(), "acme", software());
    let activation = now(&env) + Duration::days(1);
    // Given a root key created to become usable tomorrow...
    let id = create(
        &env,
        request(
            "tomorrow",
            Some(activation),
            Some(activation + Duration::days(30)),
        ),
    );
    let key = env.service.key(&id).expect("key");
    assert_eq!(key.state, KeyState::PreActivation);
    assert_eq!(key.state.as_u8(), 0);
    // Recorded as given, to the millisecond (as the expiration date).
    assert_eq!(
        key.activation_date.map(|a| a.timestamp_millis()),
        Some(activation.timestamp_millis())
    );

    // ...when it is used before then, it refuses with Key Protect's code...
    let before = env.service.projections().keys;
    let refusals: Vec<KeyError> = vec![
        env.service
            .wrap(&user("bob"), "w", &id, None, &[])
            .expect_err("wrap"),
        env.service
            .unwrap(&user("bob"), "u", &id, "AAAA", &[])
            .expect_err("unwrap"),
        env.service
            .rotate_key(&user("bob"), "r", &id, None)
            .expect_err("rotate"),
        env.service
            .disable_key(&user("bob"), "d", &id)
            .expect_err("disable"),
        env.service
            .enable_key(&user("bob"), "e", &id)
            .expect_err("enable"),
    ];
    for err in &refusals {
        assert_eq!(
            (err.reason().code(), err.reason()),
            ("KEY_ACTION_INVALID_STATE_ERR", Reason::InvalidState),
            "{err}"
        );
    }
    assert_eq!(
        env.service.projections().keys.keys,
        before.keys,
        "refusals change no key"
    );
    // ...and the activation job leaves it alone until the date.
    env.clock.advance(Duration::days(1) - Duration::seconds(1));
    assert_eq!(env.service.activate_due().expect("job"), 0);
    assert_eq!(state(&env, &id), KeyState::PreActivation);
    assert!(env.service.wrap(&user("bob"), "w", &id, None, &[]).is_err());

    // Then, on the date, the job activates it with a system event.
    env.clock.advance(Duration::seconds(1));
    assert_eq!(env.service.activate_due().expect("job"), 1);
    assert_eq!(env.service.activate_due().expect("job again"), 0);
    assert_eq!(state(&env, &id), KeyState::Active);
    assert_eq!(
        event_types(&env.service).last().map(String::as_str),
        Some("key.activated")
    );
    let dek = SecretBytes::from_slice(b"usable from the activation date");
    let wrapped = env
        .service
        .wrap(&user("bob"), "w", &id, Some(dek.clone()), &[])
        .expect("wrap when active");
    assert_eq!(
        env.service
            .unwrap(&user("bob"), "u", &id, &wrapped.ciphertext, &[])
            .expect("unwrap")
            .plaintext,
        dek
    );
    // Metadata operations were allowed all along; delete too.
    assert_log_consistent(&env.service);
}

#[test]
fn the_first_use_after_the_date_activates_the_key() {
    let dir = tempfile::tempdir().expect("tmp");
    let env = key_env::ready(dir.path(), "acme", software());
    let soon = now(&env) + Duration::hours(1);
    let wrap_me = create(&env, request("wrap-me", Some(soon), None));
    let rotate_me = create(&env, request("rotate-me", Some(soon), None));
    env.clock.advance(Duration::hours(2));
    // No job ran: the keys are still in state 0 in the projection...
    assert_eq!(state(&env, &wrap_me), KeyState::PreActivation);
    // ...but a wrap (hot path) and a rotation (command) find them due.
    env.service
        .wrap(&user("bob"), "w", &wrap_me, None, &[])
        .expect("wrap activates first");
    env.service
        .rotate_key(&user("bob"), "r", &rotate_me, None)
        .expect("rotate activates first");
    let types = event_types(&env.service);
    let tail: Vec<&str> = types
        .iter()
        .rev()
        .take(4)
        .rev()
        .map(String::as_str)
        .collect();
    assert_eq!(
        tail,
        [
            "key.activated",
            "key.wrapped",
            "key.activated",
            "key.rotated"
        ]
    );
    assert_eq!(state(&env, &wrap_me), KeyState::Active);
    assert_eq!(state(&env, &rotate_me), KeyState::Active);
    assert_eq!(env.service.activate_due().expect("job"), 0);
    assert_log_consistent(&env.service);
}

#[test]
fn activation_dates_are_validated_and_past_dates_mean_active() {
    let dir = tempfile::tempdir().expect("tmp");
    let env = key_env::ready(dir.path(), "acme", software());
    let t = now(&env);
    let size = env.service.writer().log().head().size;
    for (activation, expiration) in [
        (t + Duration::days(2), t + Duration::days(1)),
        (t + Duration::days(2), t + Duration::days(2)),
    ] {
        let err = env
            .service
            .create_key(
                &user("alice"),
                "c",
                request("bad-dates", Some(activation), Some(expiration)),
            )
            .expect_err("expiration not after activation");
        assert_eq!(
            (err.reason().code(), err.reason()),
            ("BAD_BODY_ERR", Reason::InvalidRequest),
            "{err}"
        );
        assert_eq!(
            err.to_string(),
            "invalid request: expirationDate must be after activationDate"
        );
    }
    assert_eq!(
        env.service.writer().log().head().size,
        size,
        "nothing recorded"
    );
    assert!(env.service.projections().keys.keys.is_empty());
    // An activation date already past (or now) is simply active.
    let past = create(&env, request("past", Some(t - Duration::days(1)), None));
    let at_once = create(&env, request("now", Some(t), None));
    assert_eq!(state(&env, &past), KeyState::Active);
    assert_eq!(state(&env, &at_once), KeyState::Active);
    assert_log_consistent(&env.service);
}

#[test]
fn a_key_imported_with_a_token_can_wait_for_its_activation_date() {
    let dir = tempfile::tempdir().expect("tmp");
    let env = key_env::ready(dir.path(), "acme", software());
    env.service
        .create_import_token(&user("alice"), "t", &ImportTokenRequest::default())
        .expect("token");
    let (contents, _) = env
        .service
        .get_import_token(&user("alice"), "g")
        .expect("get");
    let activation = now(&env) + Duration::hours(6);
    let (key, _) = env
        .service
        .create_key(
            &user("alice"),
            "import",
            CreateKey {
                material: KeyMaterialSource::ImportToken(kp_client::import_request(
                    &contents,
                    &[0x2e; 32],
                )),
                ..request("byok-later", Some(activation), None)
            },
        )
        .expect("import");
    assert!(key.imported);
    assert_eq!(key.state, KeyState::PreActivation);
    let err = env
        .service
        .wrap(&user("bob"), "w", &key.id, None, &[])
        .expect_err("not yet");
    assert_eq!(err.reason().code(), "KEY_ACTION_INVALID_STATE_ERR");
    env.clock.advance(Duration::hours(6));
    env.service
        .wrap(&user("bob"), "w", &key.id, None, &[])
        .expect("active on the date");
    assert_log_consistent(&env.service);
}

#[test]
fn pre_activation_survives_a_restart_and_expiry_still_applies() {
    let dir = tempfile::tempdir().expect("tmp");
    let env = key_env::ready(dir.path(), "acme", software());
    let t = now(&env);
    let waiting = create(&env, request("waiting", Some(t + Duration::days(3)), None));
    let brief = create(
        &env,
        request(
            "brief",
            Some(t + Duration::hours(1)),
            Some(t + Duration::hours(2)),
        ),
    );
    let KeyEnv {
        service,
        owners,
        clock,
        data,
        ..
    } = env;
    service.shutdown();
    let service = key_env::open_service(&data, "acme", software(), &clock);
    for o in &owners {
        o.submit(&service, &o.part).expect("part");
    }
    service.commit_master_key(&admin(), "c").expect("commit");
    service.activate_master_key(&admin(), "a").expect("unseal");
    // The state is the log's: still pre-active after the restart.
    assert_eq!(
        service.key(&waiting).expect("k").state,
        KeyState::PreActivation
    );
    // A key whose activation and expiration dates both passed while no job
    // ran is expired by the expiry job (state 0 -> 3 is allowed).
    clock.advance(Duration::hours(3));
    assert_eq!(service.expire_due().expect("expire"), 1);
    assert_eq!(service.key(&brief).expect("k").state, KeyState::Deactivated);
    assert_eq!(
        service.key(&waiting).expect("k").state,
        KeyState::PreActivation
    );
    clock.advance(Duration::days(3));
    assert_eq!(service.activate_due().expect("activate"), 1);
    assert_eq!(service.key(&waiting).expect("k").state, KeyState::Active);
    assert_log_consistent(&service);
}
