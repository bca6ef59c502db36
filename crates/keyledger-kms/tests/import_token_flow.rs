//! Key Protect's secure import through the key service, end to end: import
//! tokens persisted per instance (secrets wrapped under the master key),
//! retrievals counted in the log, a client that encrypts as IBM's SDKs do
//! (tests/common/kp_client.rs), then wrap/unwrap with the imported key.
//! Every refusal carries Key Protect's reason code and changes nothing: no
//! event, no projection change, no stored material.

mod common;

use std::sync::Arc;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use chrono::Duration;

use common::key_env::{self, KeyEnv, admin, assert_log_consistent, event_types, records, user};
use common::kp_client;
use keyledger_core::event::Envelope;
use keyledger_core::keys::state::KeyState;
use keyledger_kms::ciphertext;
use keyledger_kms::hsm::software::SoftwareHsm;
use keyledger_kms::hsm::{HsmBackend, ceremony};
use keyledger_kms::import_token::ImportTokenRequest;
use keyledger_kms::material::embedded::EmbeddedMaterialStore;
use keyledger_kms::material::{KeyMaterialStore, StoredImportToken};
use keyledger_kms::secret::SecretBytes;
use keyledger_kms::service::{
    CreateKey, KeyError, KeyMaterialSource, KeyService, Projections, TokenImport,
};
// The reason a refusal names; its HTTP status is the server's mapping
// (tested with the server), so these tests pin the reason itself.
use keyledger_core::reason::Reason;

fn software() -> Arc<dyn HsmBackend> {
    Arc::new(SoftwareHsm::new())
}

fn import_root(name: &str, import: TokenImport) -> CreateKey {
    CreateKey {
        name: name.into(),
        description: None,
        extractable: false,
        key_ring_id: None,
        aliases: vec![],
        expiration_date: None,
        activation_date: None,
        material: KeyMaterialSource::ImportToken(import),
    }
}

fn store(env: &KeyEnv) -> EmbeddedMaterialStore {
    EmbeddedMaterialStore::open(&env.data).expect("material store")
}

fn token(env: &KeyEnv, expiration_secs: Option<u32>, max_retrievals: Option<u32>) -> String {
    let request = ImportTokenRequest {
        expiration_secs,
        max_retrievals,
    };
    let (metadata, _) = env
        .service
        .create_import_token(&user("alice"), "token", &request)
        .expect("create import token");
    metadata.id
}

/// What must not change when a request is refused.
struct Snapshot {
    log_size: u64,
    projections: Projections,
    material_keys: Vec<String>,
    tokens: Vec<String>,
}

fn snapshot(env: &KeyEnv) -> Snapshot {
    Snapshot {
        log_size: env.service.writer().log().head().size,
        projections: env.service.projections(),
        material_keys: store(env).keys("acme").expect("keys"),
        tokens: store(env).import_tokens("acme").expect("tokens"),
    }
}

fn assert_unchanged(env: &KeyEnv, before: &Snapshot, what: &str) {
    assert_eq!(
        env.service.writer().log().head().size,
        before.log_size,
        "{what}: no event"
    );
    assert_eq!(
        env.service.projections(),
        before.projections,
        "{what}: no state change"
    );
    assert_eq!(
        store(env).keys("acme").expect("keys"),
        before.material_keys,
        "{what}: no key material stored"
    );
    assert_eq!(
        store(env).import_tokens("acme").expect("tokens"),
        before.tokens,
        "{what}: tokens unchanged"
    );
}

/// Refused with `code` for `reason`, changing nothing.
fn assert_refused(
    env: &KeyEnv,
    what: &str,
    result: Result<impl std::fmt::Debug, KeyError>,
    code: &str,
    reason: Reason,
) {
    let before = snapshot(env);
    let err = result.expect_err(what);
    assert_eq!(
        (err.reason().code(), err.reason()),
        (code, reason),
        "{what}: {err}"
    );
    assert!(!err.to_string().is_empty());
    assert_unchanged(env, &before, what);
}

/// Decrypts a wrap result with the imported key itself: proof that the key
/// wrapping data keys is the client's material, not some other key.
fn open_with_imported_key(ct_b64: &str, key: &[u8], aad: &[String]) -> Vec<u8> {
    let ct = ciphertext::decode_base64(ct_b64).expect("ciphertext");
    let (nonce, body) = ct.sealed.split_at(12);
    let cipher = aes_gcm::Aes256Gcm::new_from_slice(key).expect("AES-256 key");
    cipher
        .decrypt(
            &aes_gcm::Nonce::<aes_gcm::aead::consts::U12>::try_from(nonce).expect("nonce"),
            Payload {
                msg: body,
                aad: &ciphertext::aad(&ct.header_bytes, aad),
            },
        )
        .expect("the imported key opens the wrapped data key")
}

#[test]
fn given_a_token_when_a_client_imports_a_root_key_then_it_wraps_with_exactly_that_key() {
    let dir = tempfile::tempdir().expect("tmp");
    let env = key_env::ready(dir.path(), "acme", software());

    // Given an import token with Key Protect's defaults (600 s, 1 retrieval)...
    let (metadata, _) = env
        .service
        .create_import_token(&user("alice"), "token", &ImportTokenRequest::default())
        .expect("create");
    assert_eq!(
        (
            metadata.max_allowed_retrievals,
            metadata.remaining_retrievals
        ),
        (1, 1)
    );
    let created = chrono::DateTime::parse_from_rfc3339(&metadata.creation_date).expect("date");
    let expires = chrono::DateTime::parse_from_rfc3339(&metadata.expiration_date).expect("date");
    assert_eq!(expires - created, Duration::seconds(600));
    assert_eq!(env.service.import_token_metadata(), Some(metadata.clone()));
    // ...retrieved once by the client.
    let (contents, _) = env
        .service
        .get_import_token(&user("alice"), "get")
        .expect("retrieve");
    assert_eq!(contents.metadata.remaining_retrievals, 0);
    assert_eq!(kp_client::nonce(&contents).len(), 12);
    assert_eq!(
        event_types(&env.service)
            .iter()
            .rev()
            .take(2)
            .map(String::as_str)
            .collect::<Vec<_>>(),
        ["import_token.retrieved", "import_token.created"]
    );

    // When the client imports its own 256-bit key with the token...
    let material = [0x5au8; 32];
    let request = kp_client::import_request(&contents, &material);
    let (key, _) = env
        .service
        .create_key(&user("alice"), "import", import_root("byok-root", request))
        .expect("import with token");

    // Then the key is an imported root key whose check value is the client's...
    assert!(key.imported && !key.extractable);
    assert_eq!(key.state, KeyState::Active);
    assert_eq!(key.bit_length, 256);
    assert_eq!(key.versions[0].kcv, ceremony::kcv(&material));
    let created_event = records(&env.service)
        .iter()
        .rev()
        .find_map(|r| {
            Envelope::parse(&r.event)
                .ok()?
                .payload_as::<keyledger_core::event::KeyCreated>()?
                .ok()
        })
        .expect("key.created");
    assert_eq!(created_event.import_token_id, Some(metadata.id.clone()));
    // ...and data keys wrapped with it open with the client's key material.
    let dek = SecretBytes::from_slice(b"a data key for the imported key");
    let aad = vec!["tenant-1".to_string()];
    let wrapped = env
        .service
        .wrap(&user("bob"), "wrap", &key.id, Some(dek.clone()), &aad)
        .expect("wrap");
    assert_eq!(
        open_with_imported_key(&wrapped.ciphertext, &material, &aad),
        dek.expose()
    );
    let opened = env
        .service
        .unwrap(&user("bob"), "unwrap", &key.id, &wrapped.ciphertext, &aad)
        .expect("unwrap");
    assert_eq!(opened.plaintext, dek);

    // The token imports more keys until it expires, retrievals spent or not.
    // 128/192-bit keys open (their nonce proof is valid) but are refused as
    // root keys: the HSM backends wrap with AES-256 only, so such a key
    // could never wrap (`keys::payload`).
    for (i, len) in [16usize, 24, 32].into_iter().enumerate() {
        let material: Vec<u8> = (0..len as u8).map(|b| b ^ 0xa5).collect();
        let created = env.service.create_key(
            &user("alice"),
            "import",
            import_root(
                &format!("byok-{i}"),
                kp_client::import_request(&contents, &material),
            ),
        );
        if len != 32 {
            let e = created.expect_err("not a 256-bit root key");
            assert_eq!(
                (e.reason().code(), e.reason()),
                ("INVALID_FIELD_ERR", Reason::InvalidField)
            );
            continue;
        }
        let (k, _) = created.expect("same token again");
        assert_eq!(k.versions[0].kcv, ceremony::kcv(&material));
        assert_eq!(usize::from(k.bit_length), len * 8);
    }
    assert_log_consistent(&env.service);
}

#[test]
fn an_expired_token_is_neither_retrieved_nor_used_and_nothing_changes() {
    let dir = tempfile::tempdir().expect("tmp");
    let env = key_env::ready(dir.path(), "acme", software());
    // Given a 300-second token, retrieved and used by a client...
    token(&env, Some(300), Some(5));
    let (contents, _) = env
        .service
        .get_import_token(&user("alice"), "get")
        .expect("retrieve");
    let request = kp_client::import_request(&contents, &[1u8; 32]);
    // ...when its 300 seconds are over...
    env.clock.advance(Duration::seconds(300));
    // ...then neither a retrieval nor an import succeeds.
    assert_refused(
        &env,
        "retrieve expired",
        env.service.get_import_token(&user("alice"), "get"),
        "IMPORT_TOKEN_EXPIRED_ERR",
        Reason::ImportTokenExpired,
    );
    assert_refused(
        &env,
        "import with expired token",
        env.service
            .create_key(&user("alice"), "import", import_root("late", request)),
        "IMPORT_TOKEN_EXPIRED_ERR",
        Reason::ImportTokenExpired,
    );
    // One second earlier both worked (the same request, another token).
    env.clock.advance(Duration::seconds(-1));
    let request = kp_client::import_request(&contents, &[1u8; 32]);
    env.service
        .create_key(&user("alice"), "import", import_root("in-time", request))
        .expect("still valid at 299 s");
    assert_log_consistent(&env.service);
}

#[test]
fn retrievals_run_out_but_the_retrieved_token_still_imports() {
    let dir = tempfile::tempdir().expect("tmp");
    let env = key_env::ready(dir.path(), "acme", software());
    // Given a token that allows two retrievals...
    token(&env, None, Some(2));
    let (first, _) = env
        .service
        .get_import_token(&user("a"), "get")
        .expect("first");
    let (second, _) = env
        .service
        .get_import_token(&user("b"), "get")
        .expect("second");
    assert_eq!(
        (
            first.metadata.remaining_retrievals,
            second.metadata.remaining_retrievals
        ),
        (1, 0)
    );
    assert_eq!(first.payload, second.payload);
    assert_eq!(first.nonce, second.nonce);
    // ...when a third retrieval is attempted, then it is refused, unchanged...
    assert_refused(
        &env,
        "third retrieval",
        env.service.get_import_token(&user("c"), "get"),
        "IMPORT_TOKEN_EXPIRED_ERR",
        Reason::ImportTokenExpired,
    );
    assert_eq!(
        env.service
            .import_token_metadata()
            .expect("token")
            .remaining_retrievals,
        0
    );
    // ...but what was retrieved still imports until expiry.
    env.service
        .create_key(
            &user("a"),
            "import",
            import_root(
                "after-retrievals",
                kp_client::import_request(&first, &[2u8; 32]),
            ),
        )
        .expect("import");
    assert_log_consistent(&env.service);
}

#[test]
fn bad_imports_are_refused_with_key_protect_codes_and_change_nothing() {
    let dir = tempfile::tempdir().expect("tmp");
    let env = key_env::ready(dir.path(), "acme", software());
    // No token yet.
    let nothing = TokenImport {
        encrypted_payload: "AAAA".into(),
        encrypted_nonce: "AAAA".into(),
        iv: "AAAAAAAAAAAAAAAA".into(),
    };
    assert_refused(
        &env,
        "no token",
        env.service
            .create_key(&user("a"), "i", import_root("none", nothing)),
        "NOT_FOUND_ERR",
        Reason::NotFound,
    );
    assert_refused(
        &env,
        "retrieve without token",
        env.service.get_import_token(&user("a"), "get"),
        "NOT_FOUND_ERR",
        Reason::NotFound,
    );

    // Given a first token, retrieved, then replaced by a second one.
    token(&env, None, Some(10));
    let (old, _) = env.service.get_import_token(&user("a"), "g").expect("old");
    token(&env, None, Some(10));
    let (current, _) = env.service.get_import_token(&user("a"), "g").expect("new");
    let key = [0x42u8; 32];
    let good = kp_client::import_request(&current, &key);

    // The nonce of the replaced token, correctly encrypted: INCORRECT_NONCE_ERR.
    let (enc_old_nonce, iv) = kp_client::encrypt_nonce(&kp_client::nonce(&old), &key, [3; 12]);
    let wrong_nonce = TokenImport {
        encrypted_nonce: enc_old_nonce,
        iv,
        ..good.clone()
    };
    assert_refused(
        &env,
        "wrong nonce",
        env.service
            .create_key(&user("a"), "i", import_root("wrong-nonce", wrong_nonce)),
        "INCORRECT_NONCE_ERR",
        Reason::WrongNonce,
    );
    // The nonce encrypted under another key, or given with another IV.
    let (under_other_key, iv) =
        kp_client::encrypt_nonce(&kp_client::nonce(&current), &[9; 32], [3; 12]);
    for (what, bad) in [
        (
            "nonce under another key",
            TokenImport {
                encrypted_nonce: under_other_key,
                iv,
                ..good.clone()
            },
        ),
        (
            "another iv",
            TokenImport {
                iv: kp_client::encrypt_nonce(b"x", &key, [8; 12]).1,
                ..good.clone()
            },
        ),
    ] {
        assert_refused(
            &env,
            what,
            env.service
                .create_key(&user("a"), "i", import_root("bad-nonce", bad)),
            "INCORRECT_NONCE_IV_ERR",
            Reason::NonceIvMismatch,
        );
    }
    // A tampered payload, a payload for the replaced token's key, not
    // base64, a 20-byte key, a 16-byte IV: INVALID_FIELD_ERR.
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut raw = b64.decode(&good.encrypted_payload).expect("b64");
    raw[17] ^= 0x01;
    let tampered = TokenImport {
        encrypted_payload: b64.encode(&raw),
        ..good.clone()
    };
    let for_old_token = TokenImport {
        encrypted_payload: kp_client::encrypt_key(&old, &key),
        ..good.clone()
    };
    let not_base64 = TokenImport {
        encrypted_payload: "not base64 at all!".into(),
        ..good.clone()
    };
    // (A client cannot encrypt the nonce under 20 bytes; the payload fails first.)
    let short_key = TokenImport {
        encrypted_payload: kp_client::encrypt_key(&current, &[7u8; 20]),
        ..good.clone()
    };
    let long_iv = TokenImport {
        iv: b64.encode([0u8; 16]),
        ..good.clone()
    };
    for (what, bad) in [
        ("tampered payload", tampered),
        ("payload for the replaced token", for_old_token),
        ("payload not base64", not_base64),
        ("20-byte key", short_key),
        ("16-byte iv", long_iv),
    ] {
        assert_refused(
            &env,
            what,
            env.service
                .create_key(&user("a"), "i", import_root("bad-payload", bad)),
            "INVALID_FIELD_ERR",
            Reason::InvalidField,
        );
    }
    // Import tokens bring root keys only.
    let mut standard = import_root("standard", good.clone());
    standard.extractable = true;
    assert_refused(
        &env,
        "standard key with token",
        env.service.create_key(&user("a"), "i", standard),
        "KEY_ROOT_REQ_ERR",
        Reason::RootKeyRequired,
    );
    // Bad key metadata is refused before the token is looked at.
    assert_refused(
        &env,
        "bad name",
        env.service
            .create_key(&user("a"), "i", import_root("!", good.clone())),
        "BAD_BODY_ERR",
        Reason::InvalidRequest,
    );

    // And the good request still works afterwards.
    let (k, _) = env
        .service
        .create_key(&user("a"), "i", import_root("good", good))
        .expect("good import");
    assert_eq!(k.versions[0].kcv, ceremony::kcv(&key));
    assert_log_consistent(&env.service);
}

#[test]
fn a_new_token_replaces_and_shreds_the_old_one() {
    let dir = tempfile::tempdir().expect("tmp");
    let env = key_env::ready(dir.path(), "acme", software());
    let first = token(&env, None, Some(3));
    let tokens_dir = env.data.join("instances/acme/import-tokens");
    assert!(tokens_dir.join(format!("{first}.bin")).exists());
    let second = token(&env, None, Some(3));
    assert_ne!(first, second);
    assert_eq!(
        store(&env).import_tokens("acme").expect("list"),
        vec![second.clone()]
    );
    assert!(
        !tokens_dir.join(format!("{first}.bin")).exists(),
        "old token shredded"
    );
    let current = env.service.import_token_metadata().expect("current");
    assert_eq!((&current.id, current.remaining_retrievals), (&second, 3));
    // The stored token holds its secrets only wrapped, under generation 1.
    let stored = store(&env)
        .get_import_token("acme", &current.id)
        .expect("get")
        .expect("stored");
    assert_eq!(stored.private_key.mk_generation, 1);
    assert_eq!(stored.nonce.mk_generation, 1);
    assert_log_consistent(&env.service);
}

#[test]
fn a_token_of_another_instance_is_useless_here() {
    let dir = tempfile::tempdir().expect("tmp");
    let hsm = software();
    let alpha = key_env::ready(dir.path(), "alpha", hsm.clone());
    let beta = key_env::ready(dir.path(), "beta", hsm);
    token(&alpha, None, Some(2));
    let (alpha_contents, _) = alpha
        .service
        .get_import_token(&user("a"), "g")
        .expect("alpha token");
    let request = kp_client::import_request(&alpha_contents, &[0x33; 32]);

    // Beta has no token: the request cannot be opened there.
    let before = beta.service.writer().log().head().size;
    let err = beta
        .service
        .create_key(&user("a"), "i", import_root("stolen", request.clone()))
        .expect_err("beta has no token");
    assert_eq!(err.reason().code(), "NOT_FOUND_ERR");
    // Beta's own token has another RSA key: OAEP fails.
    token(&beta, None, Some(2));
    let (beta_contents, _) = beta
        .service
        .get_import_token(&user("a"), "g")
        .expect("beta");
    let err = beta
        .service
        .create_key(&user("a"), "i", import_root("stolen", request.clone()))
        .expect_err("alpha's payload");
    assert_eq!(
        (err.reason().code(), err.reason()),
        ("INVALID_FIELD_ERR", Reason::InvalidField)
    );
    // Even with beta's nonce, the payload is alpha's.
    let (enc_nonce, iv) =
        kp_client::encrypt_nonce(&kp_client::nonce(&beta_contents), &[0x33; 32], [1; 12]);
    let mixed = TokenImport {
        encrypted_nonce: enc_nonce,
        iv,
        ..request.clone()
    };
    assert!(
        beta.service
            .create_key(&user("a"), "i", import_root("stolen", mixed))
            .is_err()
    );
    assert!(
        beta.service.projections().keys.keys.is_empty(),
        "no key was created in beta"
    );
    assert_eq!(
        beta.service.writer().log().head().size,
        before + 2,
        "only beta's token creation and retrieval were recorded"
    );

    // At rest: alpha's wrapped secrets copied into beta's token do not open
    // there (they are bound to alpha and alpha's master key).
    let alpha_store = store(&alpha);
    let beta_store = store(&beta);
    let alpha_id = alpha.service.import_token_metadata().expect("a").id;
    let beta_id = beta.service.import_token_metadata().expect("b").id;
    let alpha_stored = alpha_store
        .get_import_token("alpha", &alpha_id)
        .expect("get")
        .expect("alpha stored");
    let beta_stored = beta_store
        .get_import_token("beta", &beta_id)
        .expect("get")
        .expect("beta stored");
    let forged = StoredImportToken {
        private_key: alpha_stored.private_key.clone(),
        nonce: alpha_stored.nonce.clone(),
        ..beta_stored.clone()
    };
    beta_store
        .purge_import_token("beta", &beta_id)
        .expect("purge");
    beta_store.put_import_token("beta", &forged).expect("forge");
    let err = beta
        .service
        .get_import_token(&user("a"), "g")
        .expect_err("forged secrets");
    assert_eq!(err.reason(), Reason::Internal, "{err}");
    assert!(err.to_string().contains("corrupt"), "{err}");
    // And a swapped public key (someone else's key to encrypt to) is caught
    // against the digest the log recorded.
    let swapped = StoredImportToken {
        public_key_der: alpha_stored.public_key_der.clone(),
        ..beta_stored.clone()
    };
    beta_store
        .purge_import_token("beta", &beta_id)
        .expect("purge");
    beta_store.put_import_token("beta", &swapped).expect("swap");
    let err = beta
        .service
        .get_import_token(&user("a"), "g")
        .expect_err("swapped public key");
    assert!(err.to_string().contains("corrupt"), "{err}");
    // Restoring the genuine file makes the token work again.
    beta_store
        .purge_import_token("beta", &beta_id)
        .expect("purge");
    beta_store
        .put_import_token("beta", &beta_stored)
        .expect("restore");
    let request = kp_client::import_request(&beta_contents, &[0x44; 32]);
    beta.service
        .create_key(&user("a"), "i", import_root("genuine", request))
        .expect("genuine token works");
}

#[test]
fn the_token_and_its_retrievals_survive_a_restart_and_unseal() {
    let dir = tempfile::tempdir().expect("tmp");
    let env = key_env::ready(dir.path(), "acme", software());
    // Given a token with three retrievals, one used, and a prepared import...
    token(&env, Some(3600), Some(3));
    let (contents, _) = env
        .service
        .get_import_token(&user("a"), "g")
        .expect("first retrieval");
    let material = [0x6bu8; 32];
    let request = kp_client::import_request(&contents, &material);
    let KeyEnv {
        service,
        owners,
        clock,
        data,
        ..
    } = env;
    service.shutdown();

    // ...when the service restarts with a fresh software HSM...
    let service: KeyService = key_env::open_service(&data, "acme", software(), &clock);
    // ...then the token's metadata is back from the log, but nothing opens
    // until the key owners unseal the instance.
    let metadata = service
        .import_token_metadata()
        .expect("token after restart");
    assert_eq!(metadata.remaining_retrievals, 2);
    assert_eq!(metadata.id, contents.metadata.id);
    let size = service.writer().log().head().size;
    let err = service
        .get_import_token(&user("a"), "g")
        .expect_err("sealed");
    assert!(matches!(err, KeyError::Sealed), "{err}");
    let err = service
        .create_key(&user("a"), "i", import_root("sealed", request.clone()))
        .expect_err("sealed");
    assert!(matches!(err, KeyError::Sealed), "{err}");
    assert_eq!(
        service.writer().log().head().size,
        size,
        "refusals append nothing"
    );
    for o in &owners {
        o.submit(&service, &o.part).expect("resubmit part");
    }
    service.commit_master_key(&admin(), "c").expect("commit");
    service.activate_master_key(&admin(), "a").expect("unseal");

    // The prepared import works, and retrievals continue from the log.
    let (key, _) = service
        .create_key(&user("a"), "i", import_root("after-restart", request))
        .expect("import after restart");
    assert_eq!(key.versions[0].kcv, ceremony::kcv(&material));
    let (again, _) = service
        .get_import_token(&user("a"), "g")
        .expect("second retrieval");
    assert_eq!(again.metadata.remaining_retrievals, 1);
    assert_eq!(again.nonce, contents.nonce);
    assert_eq!(again.payload, contents.payload);
    let wrapped = service
        .wrap(&user("a"), "w", &key.id, None, &[])
        .expect("wrap");
    let dek = wrapped.generated.expect("generated");
    assert_eq!(
        open_with_imported_key(&wrapped.ciphertext, &material, &[]),
        dek.expose()
    );
    assert_log_consistent(&service);
}

#[test]
fn master_key_rotation_rewraps_the_token_which_keeps_working() {
    let dir = tempfile::tempdir().expect("tmp");
    let env = key_env::ready(dir.path(), "acme", software());
    let id = token(&env, None, Some(2));
    let (contents, _) = env.service.get_import_token(&user("a"), "g").expect("get");
    // When the master key is rotated (generation 1 -> 2, 1 retired)...
    let new_parts = [
        SecretBytes::from_slice(&[0x71; 32]),
        SecretBytes::from_slice(&[0x17; 32]),
    ];
    key_env::load_master_key(
        &env.service,
        &env.clock,
        &env.owners,
        &new_parts.iter().collect::<Vec<_>>(),
    );
    // ...then the token's secrets are under generation 2 and it still works.
    let stored = store(&env)
        .get_import_token("acme", &id)
        .expect("get")
        .expect("stored");
    assert_eq!(
        (stored.private_key.mk_generation, stored.nonce.mk_generation),
        (2, 2)
    );
    let (again, _) = env.service.get_import_token(&user("a"), "g").expect("get");
    assert_eq!(again.nonce, contents.nonce);
    env.service
        .create_key(
            &user("a"),
            "i",
            import_root(
                "post-rotation",
                kp_client::import_request(&contents, &[5; 32]),
            ),
        )
        .expect("import after rotation");
    assert_log_consistent(&env.service);
}

#[test]
fn no_token_without_a_master_key_and_bad_parameters_are_refused() {
    let sealed_dir = tempfile::tempdir().expect("tmp");
    let clock = key_env::TestClock::new();
    let service = key_env::open_service(sealed_dir.path(), "acme", software(), &clock);
    let err = service
        .create_import_token(&user("a"), "t", &ImportTokenRequest::default())
        .expect_err("no master key");
    assert!(matches!(err, KeyError::NoMasterKey), "{err}");
    drop(service);

    let dir = tempfile::tempdir().expect("tmp");
    let env = key_env::ready(dir.path(), "acme", software());
    for (expiration_secs, max_retrievals) in [
        (Some(299), None),
        (Some(86_401), None),
        (None, Some(0)),
        (None, Some(501)),
    ] {
        let request = ImportTokenRequest {
            expiration_secs,
            max_retrievals,
        };
        assert_refused(
            &env,
            "bad token parameters",
            env.service.create_import_token(&user("a"), "t", &request),
            "INVALID_FIELD_ERR",
            Reason::InvalidField,
        );
    }
    // The bounds themselves are fine.
    token(&env, Some(86_400), Some(500));
    token(&env, Some(300), Some(1));
    assert_eq!(
        event_types(&env.service)
            .iter()
            .filter(|t| *t == "import_token.created")
            .count(),
        2
    );
}

#[test]
fn production_tokens_are_rsa_4096() {
    use rsa::traits::PublicKeyParts;
    let dir = tempfile::tempdir().expect("tmp");
    let KeyEnv { service, .. } = key_env::ready(dir.path(), "acme", software());
    // Key Protect's tokens are RSA-4096 (the test environment uses 2048).
    let service = service.with_import_token_key_bits(keyledger_kms::import_token::DEFAULT_KEY_BITS);
    service
        .create_import_token(&user("a"), "t", &ImportTokenRequest::default())
        .expect("token");
    let (contents, _) = service.get_import_token(&user("a"), "g").expect("get");
    assert_eq!(
        kp_client::public_key(&contents).size(),
        512,
        "a 4096-bit modulus"
    );
    let material = [0x4du8; 32];
    let (key, _) = service
        .create_key(
            &user("a"),
            "i",
            import_root("byok-4096", kp_client::import_request(&contents, &material)),
        )
        .expect("import");
    assert_eq!(key.versions[0].kcv, ceremony::kcv(&material));
}
