//! The exact bytes of the server's JSON answers: one walk, in process,
//! through every endpoint that answers JSON and every shape each answer
//! takes (optional members present and absent, `null`s, the error body of
//! each kind of refusal), compared with `tests/golden/rest_answers.txt`.
//! Key Protect clients depend on these bytes (member order, absent versus
//! `null`), so a change in how an answer is built must not change them.
//!
//! The clock is fixed, so times are exact; what is random in each run (ids,
//! ciphertexts, keys, hashes, signatures) is replaced by a placeholder
//! numbered by its first appearance, so the same value keeps its number.
//! Member names are never replaced. Rewrite the file after a deliberate
//! change with `KEYLEDGER_UPDATE_ANSWERS=1 cargo test --test rest_answers`.
#![cfg(feature = "server")]

mod common;

use std::collections::HashMap;

use actix_web::http::Method;
use actix_web::test::{TestRequest, call_service, init_service, read_body};
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use ed25519_dalek::Signer;
use serde_json::{Value, json};

use common::key_env::{Owner, admin_key, document, issue_credential};
use common::rest_env::RestLedgerEnv;
use keyledger::governance::AdminCommand;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
const LIMIT: usize = 1 << 16;
const KEY_MEDIA: &str = "application/vnd.ibm.kms.key+json";
const ACTION_MEDIA: &str = "application/vnd.ibm.kms.key_action+json";

fn golden_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/rest_answers.txt")
}

/// Replaces what differs between runs, keeping everything else byte for
/// byte: UUIDs, the values of the [`VARYING`] members, and runs of 16 or
/// more base64/hex characters that are not a member name (a member name is
/// followed by `":` or, inside an event string, `\":`).
#[derive(Default)]
struct Normaliser {
    seen: HashMap<String, String>,
}

impl Normaliser {
    fn placeholder(&mut self, kind: &str, value: &str) -> String {
        let n = self.seen.len();
        self.seen
            .entry(value.to_string())
            .or_insert_with(|| format!("<{kind}{n}>"))
            .clone()
    }

    fn normalise(&mut self, text: &str) -> String {
        let bytes = text.as_bytes();
        let mut out = String::with_capacity(text.len());
        let mut i = 0;
        'next: while i < bytes.len() {
            // Short random values, known by their member name (also inside
            // an event string, where quotes are escaped).
            for name in VARYING {
                for quote in ["\"", "\\\""] {
                    let opening = format!("{quote}{name}{quote}:{quote}");
                    if text[i..].starts_with(&opening) {
                        let start = i + opening.len();
                        let Some(len) = text[start..].find(quote) else {
                            continue;
                        };
                        out.push_str(&opening);
                        let p = self.placeholder("v", &text[start..start + len]);
                        out.push_str(&p);
                        i = start + len;
                        continue 'next;
                    }
                }
            }
            if is_uuid(&bytes[i..]) && (i == 0 || !bytes[i - 1].is_ascii_alphanumeric()) {
                let p = self.placeholder("uuid", &text[i..i + 36]);
                out.push_str(&p);
                i += 36;
                continue;
            }
            let run = bytes[i..]
                .iter()
                .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
                .count();
            if run == 0 {
                let c = text[i..].chars().next().expect("char");
                out.push(c);
                i += c.len_utf8();
                continue;
            }
            let rest = &text[i + run..];
            let member = rest.starts_with("\":") || rest.starts_with("\\\":");
            if run >= 16 && !member {
                let p = self.placeholder("v", &text[i..i + run]);
                out.push_str(&p);
            } else {
                out.push_str(&text[i..i + run]);
            }
            i += run;
        }
        out
    }
}

/// Members whose (short) values differ between runs.
const VARYING: [&str; 3] = ["key_check_value", "ledger_key", "verification_pattern"];

fn is_uuid(b: &[u8]) -> bool {
    b.len() >= 36
        && b[..36].iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit() && !c.is_ascii_uppercase(),
        })
        && b.get(36).is_none_or(|c| !c.is_ascii_alphanumeric())
}

struct Walk {
    env: RestLedgerEnv,
    transcript: String,
    norm: Normaliser,
    step: usize,
}

/// The fixed time the walk runs at (after the instances were set up).
fn start_time() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2100-01-01T00:00:00Z")
        .expect("time")
        .with_timezone(&Utc)
}

impl Walk {
    fn req(&self, method: Method, path: &str, instance: &str, role: &str) -> TestRequest {
        TestRequest::default()
            .method(method)
            .uri(&format!("/api/v2{path}"))
            .insert_header(("bluemix-instance", instance))
            .insert_header((
                "authorization",
                format!("Bearer {}", self.env.token(instance, role)),
            ))
    }

    fn acme(&self, method: Method, path: &str, role: &str) -> TestRequest {
        self.req(method, path, "acme", role)
    }

    /// Sends `req` to the API app (or the operations app), records the
    /// answer and returns its status and JSON body (`Null` if none).
    async fn call_on(&mut self, ops: bool, label: &str, req: TestRequest) -> (u16, Value) {
        self.step += 1;
        // Every request a second later: keys listed by time keep their order.
        self.advance(Duration::seconds(1));
        let req = req
            .insert_header(("correlation-id", format!("golden-{}", self.step)))
            .peer_addr("10.1.2.3:40000".parse().expect("addr"));
        let (status, media, body) = if ops {
            let app = init_service(keyledger::server::ops_app(self.env.state.clone())).await;
            let resp = call_service(&app, req.to_request()).await;
            let media = resp
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            (
                resp.status().as_u16(),
                media,
                read_body(resp).await.to_vec(),
            )
        } else {
            let app = init_service(keyledger::server::app(self.env.state.clone(), LIMIT)).await;
            let resp = call_service(&app, req.to_request()).await;
            let media = resp
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            (
                resp.status().as_u16(),
                media,
                read_body(resp).await.to_vec(),
            )
        };
        // The bundle: its JSON header line only (the records are binary).
        let shown = match body.iter().position(|b| *b == b'\n') {
            Some(end) if media.contains("bundle") => &body[..end],
            _ => &body[..],
        };
        let text = String::from_utf8(shown.to_vec()).expect("UTF-8 answer");
        let text = self.norm.normalise(&text);
        self.transcript
            .push_str(&format!("### {label}\n{status} {media}\n{text}\n"));
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    async fn call(&mut self, label: &str, req: TestRequest) -> (u16, Value) {
        self.call_on(false, label, req).await
    }

    fn advance(&self, by: Duration) {
        self.env.clock.advance(by);
    }
}

fn kp_body(req: TestRequest, media: &str, body: Value) -> TestRequest {
    req.insert_header(("content-type", media))
        .set_payload(body.to_string())
}

fn one_key(resource: Value) -> Value {
    json!({"metadata": {"collectionType": KEY_MEDIA, "collectionTotal": 1}, "resources": [resource]})
}

fn id_of(body: &Value) -> String {
    body["resources"][0]["id"].as_str().expect("id").to_string()
}

fn signed(env: &RestLedgerEnv, instance: &str, command: AdminCommand) -> String {
    let mut signed = document(&env.service(instance), &env.clock, command);
    signed.sign(&admin_key());
    serde_json::to_string(&signed).expect("json")
}

fn admin_post(instance: &str, path: &str, body: String) -> TestRequest {
    TestRequest::post()
        .uri(path)
        .insert_header(("bluemix-instance", instance))
        .insert_header(("content-type", "application/json"))
        .set_payload(body)
}

#[actix_web::test]
async fn every_json_answer_keeps_its_bytes() {
    let env = RestLedgerEnv::build(&["acme", "cancels", "expires"], &["bare"]);
    let acme = env.service("acme");
    let manager2 = issue_credential(&acme, &env.clock, "acme-manager2", "manager");
    *env.clock.0.lock().expect("clock") = start_time();
    let mut w = Walk {
        env,
        transcript: String::new(),
        norm: Normaliser::default(),
        step: 0,
    };
    w.env
        .tokens
        .insert(("acme".into(), "manager2".into()), manager2);

    // Operations: `bare` has no master key yet, so it is sealed.
    w.call("health", TestRequest::get().uri("/health")).await;
    w.call(
        "ready, sealed (API listener)",
        TestRequest::get().uri("/ready"),
    )
    .await;
    w.call_on(
        true,
        "ready, sealed (operations listener)",
        TestRequest::get().uri("/ready"),
    )
    .await;
    w.call_on(
        true,
        "health (operations listener)",
        TestRequest::get().uri("/health"),
    )
    .await;

    // Keys.
    let (_, b) = w
        .call(
            "create a root key with a description and an alias",
            kp_body(
                w.acme(Method::POST, "/keys", "writer"),
                KEY_MEDIA,
                one_key(json!({"name": "root", "description": "a root key", "aliases": ["golden-root"]})),
            ),
        )
        .await;
    let root = id_of(&b);
    let (_, b) = w
        .call(
            "create a standard key from a payload, minimal",
            kp_body(
                w.acme(Method::POST, "/keys", "writer"),
                KEY_MEDIA,
                one_key(
                    json!({"name": "std", "extractable": true, "payload": B64.encode([7u8; 32])}),
                ),
            )
            .insert_header(("prefer", "return=minimal")),
        )
        .await;
    let standard = id_of(&b);
    w.call(
        "create a key not active yet, with an expiration date",
        kp_body(
            w.acme(Method::POST, "/keys", "writer"),
            KEY_MEDIA,
            one_key(
                json!({"name": "later", "activationDate": "2100-02-01T00:00:00Z",
                "expirationDate": "2101-01-01T00:00:00Z"}),
            ),
        ),
    )
    .await;
    let (_, b) = w
        .call(
            "create a key with rotation and dual-authorisation delete",
            kp_body(
                w.acme(Method::POST, "/keys_with_policy_overrides", "writer"),
                KEY_MEDIA,
                one_key(
                    json!({"name": "dual", "rotation": {"enabled": true, "interval_month": 3},
                    "dualAuthDelete": {"enabled": true}}),
                ),
            ),
        )
        .await;
    let dual = id_of(&b);
    w.call(
        "create a key with rotation off (no interval)",
        kp_body(
            w.acme(Method::POST, "/keys_with_policy_overrides", "writer"),
            KEY_MEDIA,
            one_key(json!({"name": "norot", "rotation": {"enabled": false}})),
        ),
    )
    .await;
    w.call(
        "create a key with rotation off (an interval)",
        kp_body(
            w.acme(Method::POST, "/keys_with_policy_overrides", "writer"),
            KEY_MEDIA,
            one_key(json!({"name": "offrot", "rotation": {"enabled": false, "interval_month": 4}})),
        ),
    )
    .await;
    w.call(
        "list with totalCount",
        w.acme(Method::GET, "/keys?totalCount=true", "reader"),
    )
    .await;
    w.call(
        "list a page",
        w.acme(Method::GET, "/keys?limit=2&offset=1", "reader"),
    )
    .await;
    w.call(
        "get a standard key (payload)",
        w.acme(Method::GET, &format!("/keys/{standard}"), "writer"),
    )
    .await;
    w.call(
        "get a root key",
        w.acme(Method::GET, &format!("/keys/{root}"), "writer"),
    )
    .await;
    w.call(
        "metadata",
        w.acme(Method::GET, &format!("/keys/{dual}/metadata"), "reader"),
    )
    .await;

    // Actions.
    let action = |w: &Walk, name: &str, key: &str, role: &str, body: Option<Value>| {
        let req = w.acme(Method::POST, &format!("/keys/{key}/actions/{name}"), role);
        match body {
            Some(b) => kp_body(req, ACTION_MEDIA, b),
            None => req,
        }
    };
    let (_, generated) = w
        .call("wrap, generated", action(&w, "wrap", &root, "writer", None))
        .await;
    let (_, b) = w
        .call(
            "wrap a plaintext with aad",
            action(
                &w,
                "wrap",
                &root,
                "writer",
                Some(json!({"plaintext": B64.encode([1u8; 32]), "aad": ["a"]})),
            ),
        )
        .await;
    let wrapped = b["ciphertext"].as_str().expect("ciphertext").to_string();
    w.call(
        "unwrap",
        action(
            &w,
            "unwrap",
            &root,
            "writer",
            Some(json!({"ciphertext": wrapped, "aad": ["a"]})),
        ),
    )
    .await;
    w.call(
        "rotate, representation",
        action(&w, "rotate", &root, "writer", None)
            .insert_header(("prefer", "return=representation")),
    )
    .await;
    w.call(
        "unwrap a ciphertext of the older version",
        action(
            &w,
            "unwrap",
            &root,
            "writer",
            Some(json!({"ciphertext": generated["ciphertext"]})),
        ),
    )
    .await;
    w.call(
        "rewrap",
        action(
            &w,
            "rewrap",
            &root,
            "writer",
            Some(json!({"ciphertext": wrapped, "aad": ["a"]})),
        ),
    )
    .await;
    w.call(
        "the deprecated ?action= form",
        w.acme(Method::POST, &format!("/keys/{root}?action=wrap"), "writer"),
    )
    .await;
    w.call(
        "versions with totalCount",
        w.acme(
            Method::GET,
            &format!("/keys/{root}/versions?totalCount=true"),
            "reader",
        ),
    )
    .await;
    w.call(
        "versions, a page",
        w.acme(
            Method::GET,
            &format!("/keys/{root}/versions?limit=1"),
            "reader",
        ),
    )
    .await;
    w.call(
        "disable, representation",
        action(&w, "disable", &root, "manager", None)
            .insert_header(("prefer", "return=representation")),
    )
    .await;
    w.call(
        "wrap with a disabled key",
        action(&w, "wrap", &root, "writer", None),
    )
    .await;
    w.call("enable", action(&w, "enable", &root, "manager", None))
        .await;

    // Policies.
    w.call(
        "key policies, none set",
        w.acme(Method::GET, &format!("/keys/{root}/policies"), "reader"),
    )
    .await;
    w.call(
        "key policies, both set",
        w.acme(Method::GET, &format!("/keys/{dual}/policies"), "reader"),
    )
    .await;
    w.call(
        "key policies, rotation only",
        w.acme(
            Method::GET,
            &format!("/keys/{dual}/policies?policy=rotation"),
            "reader",
        ),
    )
    .await;
    w.call(
        "set a key's rotation policy",
        kp_body(
            w.acme(Method::PUT, &format!("/keys/{root}/policies"), "manager"),
            "application/vnd.ibm.kms.policy+json",
            json!({"resources": [{"type": "application/vnd.ibm.kms.policy+json",
                "rotation": {"enabled": true, "interval_month": 2}}]}),
        ),
    )
    .await;
    w.call(
        "instance policies, none",
        w.acme(Method::GET, "/instance/policies", "reader"),
    )
    .await;
    w.call(
        "allowed IP port, no policy",
        w.acme(Method::GET, "/instance/allowed_ip_port", "reader"),
    )
    .await;
    for (policy, enabled, attributes) in [
        ("allowedIP", true, json!({"allowed_ip": ["10.1.0.0/16"]})),
        ("keyCreateImportAccess", false, json!({})),
    ] {
        let command = AdminCommand::SetInstancePolicy {
            policy_type: policy.into(),
            enabled,
            attributes: serde_json::from_value(attributes).expect("attributes"),
        };
        let body = signed(&w.env, "acme", command);
        w.call(
            "administrator command",
            admin_post("acme", "/api/v2/admin/commands", body),
        )
        .await;
    }
    w.call(
        "instance policies",
        w.acme(Method::GET, "/instance/policies", "reader"),
    )
    .await;
    w.call(
        "instance policies, one",
        w.acme(Method::GET, "/instance/policies?policy=allowedIP", "reader"),
    )
    .await;
    w.call(
        "allowed IP port",
        w.acme(Method::GET, "/instance/allowed_ip_port", "reader"),
    )
    .await;
    w.call(
        "set an instance policy through the API",
        w.acme(Method::PUT, "/instance/policies", "manager"),
    )
    .await;

    // Import tokens.
    w.call(
        "import token, none yet",
        w.acme(Method::GET, "/import_token", "writer"),
    )
    .await;
    w.call(
        "create an import token",
        kp_body(
            w.acme(Method::POST, "/import_token", "writer"),
            "application/vnd.ibm.kms.import_token+json",
            json!({"expiration": 1200, "maxAllowedRetrievals": 2}),
        ),
    )
    .await;
    w.call(
        "retrieve the import token",
        w.acme(Method::GET, "/import_token", "writer"),
    )
    .await;

    // Aliases, key rings, moving keys, registrations.
    w.call(
        "create an alias",
        w.acme(
            Method::POST,
            &format!("/keys/{root}/aliases/golden-2"),
            "writer",
        ),
    )
    .await;
    w.call(
        "create a key ring",
        w.acme(Method::POST, "/key_rings/ring-1", "manager"),
    )
    .await;
    w.call(
        "key rings with totalCount",
        w.acme(Method::GET, "/key_rings?totalCount=true", "reader"),
    )
    .await;
    w.call(
        "key rings, a page",
        w.acme(Method::GET, "/key_rings?limit=1&offset=1", "reader"),
    )
    .await;
    w.call(
        "move a key",
        kp_body(
            w.acme(Method::PATCH, &format!("/keys/{standard}"), "manager"),
            KEY_MEDIA,
            json!({"keyRingID": "ring-1"}),
        ),
    )
    .await;
    w.call(
        "registrations with totalCount",
        w.acme(Method::GET, "/keys/registrations?totalCount=true", "reader"),
    )
    .await;
    w.call(
        "registrations of a key",
        w.acme(
            Method::GET,
            &format!("/keys/{root}/registrations"),
            "reader",
        ),
    )
    .await;

    // Deleting, restoring, purging; approvals. (The governance state is
    // shown while an instance holds one approval: they are listed by their
    // random ids.)
    w.call(
        "set a dual-authorisation key for deletion, representation",
        action(&w, "setKeyForDeletion", &dual, "manager", None)
            .insert_header(("prefer", "return=representation")),
    )
    .await;
    w.call(
        "governance state, an approval pending",
        w.acme(Method::GET, "/admin/state", "auditor"),
    )
    .await;
    w.call(
        "delete it as the second manager",
        w.acme(Method::DELETE, &format!("/keys/{dual}"), "manager2"),
    )
    .await;
    w.call(
        "governance state, the approval executed",
        w.acme(Method::GET, "/admin/state", "auditor"),
    )
    .await;
    w.call(
        "a deleted key",
        w.acme(Method::GET, &format!("/keys/{dual}/metadata"), "reader"),
    )
    .await;
    w.call(
        "purge too early",
        w.acme(Method::DELETE, &format!("/keys/{dual}/purge"), "manager"),
    )
    .await;
    w.call(
        "delete a standard key",
        w.acme(Method::DELETE, &format!("/keys/{standard}"), "manager"),
    )
    .await;
    w.call(
        "restore it",
        w.acme(
            Method::POST,
            &format!("/keys/{standard}/restore"),
            "manager",
        ),
    )
    .await;
    w.advance(Duration::hours(5));
    w.call(
        "a deleted key that may be purged",
        w.acme(Method::GET, &format!("/keys/{dual}/metadata"), "reader"),
    )
    .await;
    w.call(
        "purge a dual-authorisation key: requested",
        w.acme(Method::DELETE, &format!("/keys/{dual}/purge"), "manager"),
    )
    .await;
    w.call(
        "purge it as the second manager",
        w.acme(Method::DELETE, &format!("/keys/{dual}/purge"), "manager2"),
    )
    .await;
    w.call(
        "a purged key",
        w.acme(Method::GET, &format!("/keys/{dual}/metadata"), "reader"),
    )
    .await;
    for (instance, cancel) in [("cancels", true), ("expires", false)] {
        let (_, b) = w
            .call(
                "create a dual-authorisation key",
                kp_body(
                    w.req(
                        Method::POST,
                        "/keys_with_policy_overrides",
                        instance,
                        "writer",
                    ),
                    KEY_MEDIA,
                    one_key(json!({"name": "guarded", "dualAuthDelete": {"enabled": true}})),
                ),
            )
            .await;
        let id = id_of(&b);
        let set = w.req(
            Method::POST,
            &format!("/keys/{id}/actions/setKeyForDeletion"),
            instance,
            "manager",
        );
        w.call("set it for deletion", set).await;
        if cancel {
            let unset = w
                .req(
                    Method::POST,
                    &format!("/keys/{id}/actions/unsetKeyForDeletion"),
                    instance,
                    "manager",
                )
                .insert_header(("prefer", "return=representation"));
            w.call("unset it, representation", unset).await;
        } else {
            w.advance(Duration::days(7));
            assert_eq!(
                w.env.service(instance).expire_approvals().expect("sweep"),
                1
            );
        }
        w.call(
            "governance state, the approval cancelled or expired",
            w.req(Method::GET, "/admin/state", instance, "auditor"),
        )
        .await;
    }

    // The ledger.
    let size = w.env.service("acme").writer().log().head().size;
    let from = size - 4;
    w.call(
        "records",
        w.acme(
            Method::GET,
            &format!("/ledger/records?start={from}&end={}", from + 2),
            "auditor",
        ),
    )
    .await;
    w.call(
        "inclusion proof",
        w.acme(
            Method::GET,
            &format!("/ledger/proofs/inclusion?seq={from}&size={}", size - 1),
            "auditor",
        ),
    )
    .await;
    w.call(
        "consistency proof",
        w.acme(
            Method::GET,
            &format!("/ledger/proofs/consistency?from={from}&to={size}"),
            "auditor",
        ),
    )
    .await;
    w.call(
        "checkpoint",
        w.acme(Method::GET, "/ledger/checkpoint", "auditor"),
    )
    .await;
    w.call(
        "bundle (header line)",
        w.acme(Method::GET, "/ledger/bundle", "auditor"),
    )
    .await;

    // Governance: a ceremony on `bare` over HTTP.
    let bare = w.env.service("bare");
    let token = "kl_test_golden_bare_auditor";
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(token.as_bytes()));
    let owners = [Owner::new("owner-a", 0x31), Owner::new("owner-b", 0x7e)];
    let mut commands = vec![
        AdminCommand::IssueCredential {
            credential_id: "bare-auditor".into(),
            role: "auditor".into(),
            token_digest: digest.clone(),
        },
        AdminCommand::SetThresholds {
            signature_threshold: 1,
            revocation_threshold: 1,
        },
        AdminCommand::IssueCredential {
            credential_id: "bare-auditor".into(),
            role: "auditor".into(),
            token_digest: digest,
        },
    ];
    for o in &owners {
        commands.push(AdminCommand::RegisterKeyOwner {
            owner_id: o.id.clone(),
            name: o.id.clone(),
            public_key: B64.encode(o.key.verifying_key().as_bytes()),
        });
    }
    commands.push(AdminCommand::ApproveMasterKeyLoad { generation: 1 });
    for command in commands {
        let body = signed(&w.env, "bare", command);
        w.call(
            "administrator command",
            admin_post("bare", "/api/v2/admin/commands", body),
        )
        .await;
    }
    w.env
        .tokens
        .insert(("bare".into(), "auditor".into()), token.into());
    w.call(
        "governance state, master key not loaded",
        w.req(Method::GET, "/admin/state", "bare", "auditor"),
    )
    .await;
    let status_req = |o: &Owner, w: &Walk| {
        let time = w.env.clock.as_clock()().timestamp();
        let message = keyledger::keys::service::ceremony_status_message("bare", &o.id, time);
        TestRequest::get()
            .uri("/api/v2/admin/ceremony")
            .insert_header(("bluemix-instance", "bare"))
            .insert_header(("keyledger-key-owner", o.id.clone()))
            .insert_header(("keyledger-key-owner-time", time.to_string()))
            .insert_header((
                "keyledger-key-owner-signature",
                B64.encode(o.key.sign(&message).to_bytes()),
            ))
    };
    let (_, status) = w.call("ceremony status", status_req(&owners[0], &w)).await;
    let ceremony_key: [u8; 32] = B64
        .decode(status["public_key"].as_str().expect("key"))
        .expect("b64")
        .try_into()
        .expect("32");
    for o in &owners {
        let sealed = keyledger::hsm::ceremony::seal_part(&ceremony_key, "bare", 1, &o.id, &o.part)
            .expect("seal");
        let message = keyledger::keys::service::part_submission_message("bare", 1, &o.id, &sealed);
        let body = json!({
            "owner_id": o.id,
            "enc": B64.encode(&sealed.enc),
            "ciphertext": B64.encode(&sealed.ciphertext),
            "signature": B64.encode(o.key.sign(&message).to_bytes()),
        });
        w.call(
            "a key owner's part",
            admin_post("bare", "/api/v2/admin/ceremony/parts", body.to_string()),
        )
        .await;
    }
    w.call("ceremony status, parts loaded", status_req(&owners[1], &w))
        .await;
    for command in [
        AdminCommand::CommitMasterKey { generation: 1 },
        AdminCommand::ActivateMasterKey { generation: 1 },
    ] {
        let body = signed(&w.env, "bare", command);
        w.call(
            "administrator command",
            admin_post("bare", "/api/v2/admin/commands", body),
        )
        .await;
    }
    assert!(!bare.sealed());
    w.call("ready", TestRequest::get().uri("/ready")).await;
    w.call_on(
        true,
        "ready (operations listener)",
        TestRequest::get().uri("/ready"),
    )
    .await;
    w.call(
        "governance state",
        w.req(Method::GET, "/admin/state", "bare", "auditor"),
    )
    .await;

    // Refusals, each kind once.
    w.call("no instance header", TestRequest::get().uri("/api/v2/keys"))
        .await;
    w.call(
        "a wrong token",
        TestRequest::get()
            .uri("/api/v2/keys")
            .insert_header(("bluemix-instance", "acme"))
            .insert_header(("authorization", "Bearer wrong")),
    )
    .await;
    w.call(
        "a role that may not",
        w.acme(Method::GET, "/ledger/checkpoint", "manager"),
    )
    .await;
    w.call(
        "no such key",
        w.acme(Method::GET, "/keys/no-such-key/metadata", "reader"),
    )
    .await;
    w.call(
        "no such route",
        w.acme(Method::GET, "/nothing/here", "reader"),
    )
    .await;
    w.call(
        "a method the route does not take",
        w.acme(Method::PUT, "/key_rings", "manager"),
    )
    .await;
    w.call(
        "a key ring that exists",
        w.acme(Method::POST, "/key_rings/ring-1", "manager"),
    )
    .await;
    w.call(
        "a bad query",
        w.acme(Method::GET, "/keys?limit=0", "reader"),
    )
    .await;
    w.call(
        "a bad body",
        kp_body(
            w.acme(Method::POST, "/keys", "writer"),
            KEY_MEDIA,
            json!({"resources": [{"name": "x", "nope": 1}]}),
        ),
    )
    .await;
    w.call(
        "a body of another media type",
        w.acme(Method::POST, "/keys", "writer")
            .insert_header(("content-type", "text/plain"))
            .set_payload("x"),
    )
    .await;
    w.call(
        "a body too large",
        w.acme(Method::POST, "/keys", "writer")
            .insert_header(("content-type", "application/json"))
            .set_payload(vec![b' '; LIMIT + 1]),
    )
    .await;
    w.call(
        "unwrap with the wrong aad",
        action(
            &w,
            "unwrap",
            &root,
            "writer",
            Some(json!({"ciphertext": wrapped, "aad": ["b"]})),
        ),
    )
    .await;
    w.call(
        "wrap with a standard key",
        action(&w, "wrap", &standard, "writer", None),
    )
    .await;
    w.call(
        "wrap with a purged key",
        action(&w, "wrap", &dual, "writer", None),
    )
    .await;
    w.call(
        "a position beyond the log",
        w.acme(
            Method::GET,
            "/ledger/proofs/consistency?from=1&to=100000000",
            "auditor",
        ),
    )
    .await;

    let transcript = w.transcript;
    if std::env::var_os("KEYLEDGER_UPDATE_ANSWERS").is_some() {
        std::fs::create_dir_all(golden_path().parent().expect("dir")).expect("mkdir");
        std::fs::write(golden_path(), &transcript).expect("write golden");
    }
    let golden = std::fs::read_to_string(golden_path()).unwrap_or_default();
    if golden != transcript {
        let first = golden
            .lines()
            .zip(transcript.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(golden.lines().count().min(transcript.lines().count()));
        panic!(
            "the answers differ from tests/golden/rest_answers.txt from line {}:\n  golden: {:?}\n  now:    {:?}\n(rewrite after a deliberate change with KEYLEDGER_UPDATE_ANSWERS=1)",
            first + 1,
            golden.lines().nth(first),
            transcript.lines().nth(first)
        );
    }
}
