//! The auditor and admin REST endpoints, in process (`actix_web::test`)
//! and, for the command line's `--url` modes, over a real socket on
//! 127.0.0.1: checkpoints verify with the instance's note key, receipts of
//! key operations are proven with inclusion proofs, consistency proofs
//! verify, the bundle download verifies offline, roles and instances are
//! isolated, and the governance flows (commands, ceremony) work over HTTP.

mod common;

use std::process::Command;

use actix_web::http::StatusCode;
use actix_web::test as at;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::Signer;
use serde_json::{Value, json};

use common::key_env::{self, Owner, admin_key};
use common::rest_env::RestLedgerEnv;
use keyledger::governance::AdminCommand;
use keyledger::merkle::{Hash, verify_consistency, verify_inclusion};

const LIMIT: usize = 1 << 20;

fn get(path: &str, instance: &str, token: &str) -> at::TestRequest {
    at::TestRequest::get()
        .uri(path)
        .insert_header(("bluemix-instance", instance))
        .insert_header(("authorization", format!("Bearer {token}")))
}

fn hash(v: &Value) -> Hash {
    B64.decode(v.as_str().expect("b64 string"))
        .expect("base64")
        .try_into()
        .expect("32 bytes")
}

fn hashes(v: &Value) -> Vec<Hash> {
    v.as_array().expect("array").iter().map(hash).collect()
}

fn verifier(env: &RestLedgerEnv, instance: &str) -> keyledger::checkpoint::NoteVerifierKey {
    env.service(instance).writer().current_key().note_verifier()
}

fn event_types(env: &RestLedgerEnv, instance: &str) -> Vec<String> {
    key_env::event_types(&env.service(instance))
}

fn error_code(body: &Value) -> &str {
    body["resources"][0]["reasons"][0]["code"]
        .as_str()
        .expect("Key Protect error body")
}

/// Creates a root key and wraps a generated data key; returns the wrap
/// response's receipt (seq, hex leaf hash).
async fn wrap_receipt<S, B>(app: &S, env: &RestLedgerEnv) -> (u64, String)
where
    S: actix_web::dev::Service<
            actix_http::Request,
            Response = actix_web::dev::ServiceResponse<B>,
            Error = actix_web::Error,
        >,
    B: actix_web::body::MessageBody,
{
    let writer = env.token("acme", "writer");
    let create = at::TestRequest::post()
        .uri("/api/v2/keys")
        .insert_header(("bluemix-instance", "acme"))
        .insert_header(("authorization", format!("Bearer {writer}")))
        .insert_header(("content-type", "application/vnd.ibm.kms.key+json"))
        .set_payload(
            json!({"metadata": {"collectionType": "application/vnd.ibm.kms.key+json",
                "collectionTotal": 1},
                "resources": [{"type": "application/vnd.ibm.kms.key+json", "name": "root-1",
                "extractable": false}]})
            .to_string(),
        )
        .to_request();
    let resp = at::call_service(app, create).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let body: Value = at::read_body_json(resp).await;
    let id = body["resources"][0]["id"].as_str().expect("id").to_string();
    let wrap = at::TestRequest::post()
        .uri(&format!("/api/v2/keys/{id}/actions/wrap"))
        .insert_header(("bluemix-instance", "acme"))
        .insert_header(("authorization", format!("Bearer {writer}")))
        .insert_header((
            "content-type",
            "application/vnd.ibm.kms.key_action_wrap+json",
        ))
        .set_payload("{}")
        .to_request();
    let resp = at::call_service(app, wrap).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .expect("receipt header")
            .to_str()
            .expect("ascii")
            .to_string()
    };
    let seq = header("keyledger-receipt-seq").parse().expect("seq");
    (seq, header("keyledger-receipt-leaf"))
}

/// The checkpoint note an auditor gets (checked to be `text/plain`).
macro_rules! fetch_checkpoint {
    ($app:expr, $token:expr) => {{
        let resp = at::call_service(
            $app,
            get("/api/v2/ledger/checkpoint", "acme", $token).to_request(),
        )
        .await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert!(
            resp.headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("text/plain"))
        );
        String::from_utf8(at::read_body(resp).await.to_vec()).expect("utf8")
    }};
}

#[actix_web::test]
async fn receipts_are_proven_against_verified_checkpoints() {
    let env = RestLedgerEnv::build(&["acme"], &[]);
    let app = at::init_service(keyledger::server::app(env.state.clone(), LIMIT)).await;
    let auditor = env.token("acme", "auditor");
    let vkey = verifier(&env, "acme");

    let note1 = fetch_checkpoint!(&app, auditor);
    let cp1 = keyledger::checkpoint::parse_and_verify(&note1, std::slice::from_ref(&vkey))
        .expect("checkpoint verifies with the instance's note key");
    assert_eq!(cp1.size, env.service("acme").writer().log().head().size);

    let (seq, leaf_hex) = wrap_receipt(&app, &env).await;
    let note2 = fetch_checkpoint!(&app, auditor);
    let cp2 = keyledger::checkpoint::parse_and_verify(&note2, std::slice::from_ref(&vkey))
        .expect("second checkpoint verifies");
    assert!(cp2.size > seq, "the checkpoint covers the receipt");

    // The receipt is in the log: inclusion proof against the signed root.
    let resp = at::call_service(
        &app,
        get(
            &format!(
                "/api/v2/ledger/proofs/inclusion?seq={seq}&size={}",
                cp2.size
            ),
            "acme",
            auditor,
        )
        .to_request(),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let proof: Value = at::read_body_json(resp).await;
    let leaf = hash(&proof["leaf_hash"]);
    assert_eq!(hex::encode(leaf), leaf_hex, "the receipt names this leaf");
    verify_inclusion(&leaf, seq, cp2.size, &hashes(&proof["proof"]), &cp2.root)
        .expect("inclusion proof verifies against the checkpoint root");
    // A different leaf does not verify with that proof.
    let mut forged = leaf;
    forged[0] ^= 1;
    assert!(verify_inclusion(&forged, seq, cp2.size, &hashes(&proof["proof"]), &cp2.root).is_err());

    // The two checkpoints are consistent.
    let resp = at::call_service(
        &app,
        get(
            &format!(
                "/api/v2/ledger/proofs/consistency?from={}&to={}",
                cp1.size, cp2.size
            ),
            "acme",
            auditor,
        )
        .to_request(),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let cons: Value = at::read_body_json(resp).await;
    verify_consistency(
        cp1.size,
        cp2.size,
        &hashes(&cons["proof"]),
        &cp1.root,
        &cp2.root,
    )
    .expect("consistency proof verifies between the checkpoints");
    assert_eq!(hash(&cons["from_root"]), cp1.root);
    assert_eq!(hash(&cons["to_root"]), cp2.root);

    // The records page is the log, byte for byte.
    let records = key_env::records(&env.service("acme"));
    let resp = at::call_service(
        &app,
        get(
            &format!("/api/v2/ledger/records?start=0&end={}", records.len()),
            "acme",
            auditor,
        )
        .to_request(),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let page: Value = at::read_body_json(resp).await;
    let items = page["records"].as_array().expect("records");
    assert_eq!(items.len(), records.len());
    for (i, (item, record)) in items.iter().zip(&records).enumerate() {
        assert_eq!(item["seq"], i as u64);
        assert_eq!(
            item["event"].as_str().expect("event").as_bytes(),
            record.event
        );
        assert_eq!(
            B64.decode(item["signature"].as_str().expect("sig"))
                .expect("b64"),
            record.signature
        );
        assert_eq!(hash(&item["leaf_hash"]), record.leaf_hash());
    }
}

#[actix_web::test]
async fn bad_ledger_queries_get_key_protect_errors_never_5xx() {
    let env = RestLedgerEnv::build(&["acme"], &[]);
    let app = at::init_service(keyledger::server::app(env.state.clone(), LIMIT)).await;
    let auditor = env.token("acme", "auditor");
    let size = env.service("acme").writer().log().head().size;
    let cases: Vec<(String, u16)> = vec![
        (format!("proofs/inclusion?seq={size}&size={size}"), 400),
        (format!("proofs/inclusion?seq=0&size={}", size + 5), 404),
        ("proofs/inclusion?seq=abc".into(), 400),
        ("proofs/inclusion?seq=-1".into(), 400),
        ("proofs/inclusion".into(), 400),
        ("proofs/inclusion?seq=99999999999999999999999".into(), 400),
        ("proofs/consistency?from=3&to=2".into(), 400),
        ("proofs/consistency?from=1".into(), 400),
        (format!("proofs/consistency?from=1&to={}", size + 1), 404),
        ("records".into(), 400),
        ("records?start=0&end=1001".into(), 400),
        ("records?start=5&end=4".into(), 400),
        (format!("records?start={}", size + 1), 404),
        ("records?start=%ZZ".into(), 400),
    ];
    for (query, status) in cases {
        let resp = at::call_service(
            &app,
            get(&format!("/api/v2/ledger/{query}"), "acme", auditor).to_request(),
        )
        .await;
        assert_eq!(resp.status().as_u16(), status, "{query}");
        let body: Value = at::read_body_json(resp).await;
        assert_eq!(
            body["resources"][0]["reasons"][0]["status"], status,
            "{query}"
        );
        error_code(&body);
    }
    // An in-range page past the end is empty, not an error.
    let resp = at::call_service(
        &app,
        get(
            &format!("/api/v2/ledger/records?start={size}"),
            "acme",
            auditor,
        )
        .to_request(),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let page: Value = at::read_body_json(resp).await;
    assert_eq!(page["records"].as_array().map(Vec::len), Some(0));
}

#[actix_web::test]
async fn only_auditors_read_the_ledger_and_instances_are_isolated() {
    let env = RestLedgerEnv::build(&["acme", "globex"], &[]);
    let app = at::init_service(keyledger::server::app(env.state.clone(), LIMIT)).await;
    let paths = [
        "/api/v2/ledger/checkpoint",
        "/api/v2/ledger/records?start=0",
        "/api/v2/ledger/proofs/inclusion?seq=0",
        "/api/v2/ledger/proofs/consistency?from=1&to=2",
        "/api/v2/ledger/bundle",
        "/api/v2/admin/state",
    ];
    for role in ["reader", "writer", "manager"] {
        for path in paths {
            let before = event_types(&env, "acme").len();
            let resp = at::call_service(
                &app,
                get(path, "acme", env.token("acme", role)).to_request(),
            )
            .await;
            assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{role} {path}");
            let body: Value = at::read_body_json(resp).await;
            assert_eq!(error_code(&body), "FORBIDDEN_ERR");
            let types = event_types(&env, "acme");
            assert_eq!(types.len(), before + 1, "{role} {path}");
            assert_eq!(types.last().map(String::as_str), Some("access.denied"));
        }
    }
    // acme's auditor token against globex: exactly the unknown-instance 401.
    let acme_auditor = env.token("acme", "auditor");
    let globex_before = event_types(&env, "globex").len();
    for path in paths {
        let other = at::call_service(&app, get(path, "globex", acme_auditor).to_request()).await;
        assert_eq!(other.status(), StatusCode::UNAUTHORIZED, "{path}");
        let other = at::read_body(other).await;
        let unknown = at::call_service(
            &app,
            get(path, "no-such-instance", acme_auditor).to_request(),
        )
        .await;
        assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(other, at::read_body(unknown).await, "{path}");
    }
    assert_eq!(event_types(&env, "globex").len(), globex_before);
    // Admin endpoints: an unknown instance gets the same 401 as auth.rs.
    let unknown_auth = at::call_service(
        &app,
        get(paths[0], "no-such-instance", acme_auditor).to_request(),
    )
    .await;
    let unknown_auth = at::read_body(unknown_auth).await;
    let resp = at::call_service(
        &app,
        at::TestRequest::get()
            .uri("/api/v2/admin/ceremony")
            .insert_header(("bluemix-instance", "no-such-instance"))
            .to_request(),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(at::read_body(resp).await, unknown_auth);
}

fn signed_command(
    env: &RestLedgerEnv,
    instance: &str,
    command: AdminCommand,
    sign: bool,
) -> String {
    let mut signed = key_env::document(&env.service(instance), &env.clock, command);
    if sign {
        signed.sign(&admin_key());
    }
    serde_json::to_string(&signed).expect("json")
}

fn post_json(path: &str, instance: &str, body: String) -> actix_http::Request {
    at::TestRequest::post()
        .uri(path)
        .insert_header(("bluemix-instance", instance))
        .insert_header(("content-type", "application/json"))
        .set_payload(body)
        .to_request()
}

#[actix_web::test]
async fn full_ceremony_and_admin_commands_over_http() {
    let env = RestLedgerEnv::build(&[], &["bare"]);
    let app = at::init_service(keyledger::server::app(env.state.clone(), LIMIT)).await;
    let command = |cmd: AdminCommand, sign: bool| {
        post_json(
            "/api/v2/admin/commands",
            "bare",
            signed_command(&env, "bare", cmd, sign),
        )
    };
    // Refused: unsigned, so it proves nobody: the unknown instance's 401,
    // and nothing is recorded.
    let before = event_types(&env, "bare").len();
    let resp = at::call_service(
        &app,
        command(
            AdminCommand::SetThresholds {
                signature_threshold: 1,
                revocation_threshold: 1,
            },
            false,
        ),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let body: Value = at::read_body_json(resp).await;
    assert_eq!(error_code(&body), "UNAUTHORIZED_ERR");
    // Refused by the rules, signed by the administrator: recorded.
    let resp = at::call_service(
        &app,
        command(
            AdminCommand::SetThresholds {
                signature_threshold: 2,
                revocation_threshold: 1,
            },
            true,
        ),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let body: Value = at::read_body_json(resp).await;
    assert_eq!(error_code(&body), "UNAUTHORIZED_ERR");
    assert!(
        body["resources"][0]["reasons"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("threshold 2 is above the number of administrators (1)")),
        "{body}"
    );
    let types = event_types(&env, "bare");
    assert_eq!(types.len(), before + 1);
    assert_eq!(
        types.last().map(String::as_str),
        Some("admin.command_denied")
    );
    // A malformed body is a 400 BAD_BODY_ERR, not a denial event.
    for body in ["{\"nope\":1}", "{\"document\":\"not a command\"}"] {
        let resp = at::call_service(
            &app,
            post_json("/api/v2/admin/commands", "bare", body.into()),
        )
        .await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        let body: Value = at::read_body_json(resp).await;
        assert_eq!(error_code(&body), "BAD_BODY_ERR");
    }
    assert_eq!(event_types(&env, "bare").len(), before + 1);

    let accept = |cmd: AdminCommand, expect_type: &'static str| {
        let req = command(cmd, true);
        let app = &app;
        async move {
            let resp = at::call_service(app, req).await;
            assert_eq!(resp.status(), StatusCode::OK, "{expect_type}");
            assert!(resp.headers().contains_key("keyledger-receipt-seq"));
            let body: Value = at::read_body_json(resp).await;
            assert_eq!(body["type"], expect_type, "{body}");
            body
        }
    };
    accept(
        AdminCommand::SetThresholds {
            signature_threshold: 1,
            revocation_threshold: 1,
        },
        "admin.thresholds_set",
    )
    .await;
    let owners = [Owner::new("owner-a", 0x31), Owner::new("owner-b", 0x7e)];
    for o in &owners {
        accept(
            AdminCommand::RegisterKeyOwner {
                owner_id: o.id.clone(),
                name: o.id.clone(),
                public_key: B64.encode(o.key.verifying_key().as_bytes()),
            },
            "key_owner.registered",
        )
        .await;
    }
    accept(
        AdminCommand::ApproveMasterKeyLoad { generation: 1 },
        "master_key.load_approved",
    )
    .await;

    // The status is for the registered key owners, who sign the request.
    let anonymous = at::TestRequest::get()
        .uri("/api/v2/admin/ceremony")
        .insert_header(("bluemix-instance", "bare"))
        .to_request();
    let resp = at::call_service(&app, anonymous).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let status_req = || {
        let o = &owners[1];
        let time = env.clock.as_clock()().timestamp();
        let message = keyledger::keys::service::ceremony_status_message("bare", &o.id, time);
        at::TestRequest::get()
            .uri("/api/v2/admin/ceremony")
            .insert_header(("bluemix-instance", "bare"))
            .insert_header(("keyledger-key-owner", o.id.clone()))
            .insert_header(("keyledger-key-owner-time", time.to_string()))
            .insert_header((
                "keyledger-key-owner-signature",
                B64.encode(o.key.sign(&message).to_bytes()),
            ))
            .to_request()
    };
    let resp = at::call_service(&app, status_req()).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let status: Value = at::read_body_json(resp).await;
    assert_eq!(status["generation"], 1);
    assert_eq!(status["registered_owners"], json!(["owner-a", "owner-b"]));
    assert_eq!(status["loaded_owners"], json!([]));
    let ceremony_key: [u8; 32] = B64
        .decode(status["public_key"].as_str().expect("key"))
        .expect("b64")
        .try_into()
        .expect("32");

    let part_body = |o: &Owner, signer: &ed25519_dalek::SigningKey| {
        let sealed = keyledger::hsm::ceremony::seal_part(&ceremony_key, "bare", 1, &o.id, &o.part)
            .expect("seal");
        let message = keyledger::keys::service::part_submission_message("bare", 1, &o.id, &sealed);
        json!({
            "owner_id": o.id,
            "enc": B64.encode(&sealed.enc),
            "ciphertext": B64.encode(&sealed.ciphertext),
            "signature": B64.encode(signer.sign(&message).to_bytes()),
        })
        .to_string()
    };
    // Signed by the other owner's key: refused.
    let resp = at::call_service(
        &app,
        post_json(
            "/api/v2/admin/ceremony/parts",
            "bare",
            part_body(&owners[0], &owners[1].key),
        ),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    // Not base64: a 400.
    let resp = at::call_service(
        &app,
        post_json(
            "/api/v2/admin/ceremony/parts",
            "bare",
            json!({"owner_id": "owner-a", "enc": "!!", "ciphertext": "", "signature": ""})
                .to_string(),
        ),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    for o in &owners {
        let resp = at::call_service(
            &app,
            post_json("/api/v2/admin/ceremony/parts", "bare", part_body(o, &o.key)),
        )
        .await;
        assert_eq!(resp.status(), StatusCode::OK, "{}", o.id);
        let body: Value = at::read_body_json(resp).await;
        assert!(body["verification_pattern"].is_string(), "{body}");
    }
    let resp = at::call_service(&app, status_req()).await;
    let status: Value = at::read_body_json(resp).await;
    assert_eq!(status["loaded_owners"], json!(["owner-a", "owner-b"]));
    accept(
        AdminCommand::CommitMasterKey { generation: 1 },
        "master_key.committed",
    )
    .await;
    accept(
        AdminCommand::ActivateMasterKey { generation: 1 },
        "master_key.activated",
    )
    .await;
    assert!(!env.service("bare").sealed());

    // An auditor credential by command, then the governance state.
    let token = "kl_test_bare_auditor_token";
    accept(
        AdminCommand::IssueCredential {
            credential_id: "aud-1".into(),
            role: "auditor".into(),
            token_digest: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(token.as_bytes())),
        },
        "credential.issued",
    )
    .await;
    let resp = at::call_service(&app, get("/api/v2/admin/state", "bare", token).to_request()).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let state: Value = at::read_body_json(resp).await;
    assert_eq!(state["imprint_mode"], false);
    assert_eq!(
        state["thresholds"],
        json!({"signature": 1, "revocation": 1})
    );
    assert_eq!(state["credentials"]["aud-1"]["role"], "auditor");
    assert!(state["credentials"]["aud-1"].get("token_digest").is_none());
    assert!(
        !state
            .to_string()
            .contains(&hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
                token.as_bytes()
            )))
    );
    assert_eq!(state["admins"].as_object().map(|m| m.len()), Some(1));
    key_env::assert_log_consistent(&env.service("bare"));
}

/// Runs the app on 127.0.0.1 (an OS-chosen port) on its own thread.
fn serve(env: &RestLedgerEnv) -> (String, actix_web::dev::ServerHandle) {
    let state = env.state.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let server =
                actix_web::HttpServer::new(move || keyledger::server::app(state.clone(), LIMIT))
                    .workers(1)
                    .bind(("127.0.0.1", 0))
                    .expect("bind");
            let addr = server.addrs()[0];
            let server = server.run();
            tx.send((addr, server.handle())).expect("send");
            server.await
        })
    });
    let (addr, handle) = rx.recv().expect("server started");
    (format!("http://{addr}"), handle)
}

fn keyledger(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_keyledger"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run keyledger")
}

#[test]
fn bundle_download_verifies_and_cli_speaks_to_the_server() {
    let env = RestLedgerEnv::build(&["acme"], &[]);
    let dir = env.tmp.path();
    // In process: the streamed bundle unpacks into a bundle the offline
    // verifier accepts.
    let bytes = actix_web::rt::System::new().block_on(async {
        let app = at::init_service(keyledger::server::app(env.state.clone(), LIMIT)).await;
        let resp = at::call_service(
            &app,
            get(
                "/api/v2/ledger/bundle",
                "acme",
                env.token("acme", "auditor"),
            )
            .to_request(),
        )
        .await;
        assert_eq!(resp.status(), StatusCode::OK);
        at::read_body(resp).await
    });
    let newline = bytes.iter().position(|b| *b == b'\n').expect("header line");
    let header: Value = serde_json::from_slice(&bytes[..newline]).expect("header");
    let bundle = dir.join("bundle");
    std::fs::create_dir(&bundle).expect("mkdir");
    std::fs::write(bundle.join("records.bin"), &bytes[newline + 1..]).expect("write");
    std::fs::write(
        bundle.join("checkpoint"),
        header["checkpoint"].as_str().expect("checkpoint"),
    )
    .expect("write");
    assert!(
        header.get("keys").is_none(),
        "the format has no keys file (LEDGER-FORMAT §8): {header}"
    );
    std::fs::write(
        bundle.join("manifest.json"),
        serde_json::to_vec(&header["manifest"]).expect("json"),
    )
    .expect("write");
    let trust = keyledger::verify::Trust {
        keys: vec![verifier(&env, "acme")],
        checkpoint: None,
    };
    let report = keyledger::verify::verify_bundle(&bundle, &trust, &|_| {}).expect("verify");
    assert!(report.ok(), "{report:?}");
    assert_eq!(
        report.records,
        env.service("acme").writer().log().head().size
    );

    // Over a socket: `keyledger verify --url` and the admin command line.
    let (url, handle) = serve(&env);
    let token_file = dir.join("auditor.token");
    std::fs::write(&token_file, format!("{}\n", env.token("acme", "auditor"))).expect("token");
    let key_file = dir.join("trusted.keys");
    std::fs::write(&key_file, format!("{}\n", verifier(&env, "acme"))).expect("key");
    let tok = token_file.to_str().expect("utf8");
    let out = keyledger(
        dir,
        &[
            "verify",
            "--url",
            &url,
            "--instance",
            "acme",
            "--token-file",
            tok,
            "--trusted-key",
            key_file.to_str().expect("utf8"),
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("OK: "));
    // A writer token cannot download: unreadable input, exit 2.
    std::fs::write(&token_file, env.token("acme", "writer")).expect("token");
    let out = keyledger(
        dir,
        &[
            "verify",
            "--url",
            &url,
            "--instance",
            "acme",
            "--token-file",
            tok,
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("FORBIDDEN_ERR"));

    // admin submit --url: draft, sign with the admin key file, submit.
    let seed = admin_key().to_bytes();
    let key_path = dir.join("alice.key");
    std::fs::write(
        &key_path,
        format!("keyledger-admin-key-v1\n{}\n", hex::encode(seed)),
    )
    .expect("key file");
    std::fs::set_permissions(
        &key_path,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .expect("chmod");
    let draft = keyledger(
        dir,
        &[
            "admin",
            "draft",
            "--instance",
            "acme",
            "--out",
            "cred.json",
            r#"{"kind":"credential.issue","credential_id":"cli-aud","role":"auditor","token_digest":"0000000000000000000000000000000000000000000000000000000000000001"}"#,
        ],
    );
    assert!(
        draft.status.success(),
        "{}",
        String::from_utf8_lossy(&draft.stderr)
    );
    let submit = [
        "admin",
        "submit",
        "--url",
        &url,
        "--instance",
        "acme",
        "cred.json",
    ];
    let out = keyledger(dir, &submit);
    assert_eq!(out.status.code(), Some(2), "unsigned is refused");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("server refused (401 UNAUTHORIZED_ERR)"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = keyledger(dir, &["admin", "sign", "--key", "alice.key", "cred.json"]);
    assert!(out.status.success());
    let out = keyledger(dir, &submit);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("accepted: credential.issued at seq"));
    let out = keyledger(
        dir,
        &[
            "admin",
            "submit",
            "--url",
            &url,
            "--data-dir",
            "data",
            "--instance",
            "acme",
            "cred.json",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "--url and --data-dir together");
    // A key owner reads the ceremony status, signing the request.
    let carol = Owner::new("owner-c", 0x0c);
    key_env::admin_command(
        &env.service("acme"),
        &env.clock,
        AdminCommand::RegisterKeyOwner {
            owner_id: carol.id.clone(),
            name: carol.id.clone(),
            public_key: B64.encode(carol.key.verifying_key().as_bytes()),
        },
    )
    .expect("register owner-c");
    let carol_key = dir.join("owner-c.key");
    write_private(
        &carol_key,
        &format!(
            "keyledger-admin-key-v1\n{}\n",
            hex::encode(carol.key.to_bytes())
        ),
    );
    let status_args = |owner: &str| {
        [
            "admin",
            "ceremony-status",
            "--url",
            &url,
            "--instance",
            "acme",
            "--owner-id",
            owner,
            "--owner-key",
            carol_key.to_str().expect("utf8"),
        ]
        .map(str::to_string)
    };
    let out = keyledger(dir, &status_args("owner-a").each_ref().map(String::as_str));
    assert_eq!(
        out.status.code(),
        Some(2),
        "owner-a's id with owner-c's key"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("401 UNAUTHORIZED_ERR"));
    let out = keyledger(dir, &status_args("owner-c").each_ref().map(String::as_str));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("registered owners: owner-a, owner-b, owner-c"),
        "{stdout}"
    );
    actix_web::rt::System::new().block_on(handle.stop(true));
    let types = event_types(&env, "acme");
    assert!(
        !types.iter().any(|t| t == "admin.command_denied"),
        "the unsigned command proved nobody: nothing recorded"
    );
    assert_eq!(
        types.last().map(String::as_str),
        Some("key_owner.registered")
    );
}

fn write_private(path: &std::path::Path, text: &str) {
    std::fs::write(path, text).expect("write");
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .expect("chmod");
}

#[test]
fn key_owners_submit_parts_with_the_command_line() {
    let env = RestLedgerEnv::build(&[], &["bare"]);
    let dir = env.tmp.path();
    let service = env.service("bare");
    let owners = [Owner::new("owner-a", 0x42), Owner::new("owner-b", 0x17)];
    key_env::register_owners(&service, &env.clock, &owners.iter().collect::<Vec<_>>());
    key_env::admin_command(
        &service,
        &env.clock,
        AdminCommand::ApproveMasterKeyLoad { generation: 1 },
    )
    .expect("approve load");
    let (url, handle) = serve(&env);
    let submit = |o: &Owner| {
        let key = dir.join(format!("{}.key", o.id));
        let part = dir.join(format!("{}.part", o.id));
        write_private(
            &key,
            &format!(
                "keyledger-admin-key-v1\n{}\n",
                hex::encode(o.key.to_bytes())
            ),
        );
        write_private(&part, &format!("{}\n", hex::encode(o.part.expose())));
        keyledger(
            dir,
            &[
                "admin",
                "submit-part",
                "--url",
                &url,
                "--instance",
                "bare",
                "--owner-id",
                &o.id,
                "--owner-key",
                key.to_str().expect("utf8"),
                "--part-file",
                part.to_str().expect("utf8"),
            ],
        )
    };
    let out = submit(&owners[0]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("part of owner-a loaded for generation 1"),
        "{stdout}"
    );
    // The same owner again: refused by the server, exit 2.
    let out = submit(&owners[0]);
    assert_eq!(out.status.code(), Some(2));
    // A part file others can read is refused before anything is sent.
    let loose = dir.join("loose.part");
    std::fs::write(&loose, hex::encode(owners[1].part.expose())).expect("write");
    std::fs::set_permissions(&loose, std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .expect("chmod");
    let out = keyledger(
        dir,
        &[
            "admin",
            "submit-part",
            "--url",
            &url,
            "--instance",
            "bare",
            "--owner-id",
            "owner-b",
            "--owner-key",
            dir.join("owner-a.key").to_str().expect("utf8"),
            "--part-file",
            loose.to_str().expect("utf8"),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("readable by group or others"));
    let out = submit(&owners[1]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = keyledger(
        dir,
        &[
            "admin",
            "ceremony-status",
            "--url",
            &url,
            "--instance",
            "bare",
            "--owner-id",
            "owner-b",
            "--owner-key",
            dir.join("owner-b.key").to_str().expect("utf8"),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("loaded owners: owner-a, owner-b"),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    actix_web::rt::System::new().block_on(handle.stop(true));
    // The parts sealed by the command line combine into the master key.
    for command in [
        AdminCommand::CommitMasterKey { generation: 1 },
        AdminCommand::ActivateMasterKey { generation: 1 },
    ] {
        key_env::admin_command(&service, &env.clock, command).expect("commit/activate");
    }
    assert!(!service.sealed());
    let loaded = event_types(&env, "bare")
        .iter()
        .filter(|t| *t == "master_key.part_loaded")
        .count();
    assert_eq!(loaded, 2);
}
