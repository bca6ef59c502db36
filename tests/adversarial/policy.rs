//! See `main.rs`. Issue 14, items 1 and 10: a key's dual-authorisation
//! delete policy cannot be switched off once on (whether set on the key or
//! inherited from the instance policy), and key creation applies the alias
//! endpoint's rules and refuses unknown fields, on both creation paths.
//! Every refusal here is exact (status and Key Protect code) and writes
//! nothing to the log.

use chrono::{Duration, Utc};
use serde_json::{Value, json};

use crate::common::http::{Conn, Response};
use crate::common::serve::{DevServer, INSTANCE, call};
use keyledger::governance::{AdminCommand, CommandDocument, SignedCommand};

const KEY_MEDIA: &str = "application/vnd.ibm.kms.key+json";
const POLICY_MEDIA: &str = "application/vnd.ibm.kms.policy+json";

fn start(dir: &tempfile::TempDir) -> DevServer {
    DevServer::start(
        &dir.path().join("data"),
        &dir.path().join("stderr.log"),
        &[],
    )
}

fn keys_body(resource: Value) -> Value {
    json!({
        "metadata": {"collectionType": KEY_MEDIA, "collectionTotal": 1},
        "resources": [resource],
    })
}

fn policy_body(resources: Vec<Value>) -> Value {
    json!({
        "metadata": {"collectionType": POLICY_MEDIA, "collectionTotal": resources.len()},
        "resources": resources,
    })
}

/// The Key Protect reason code of an error answer.
fn code(res: &Response) -> String {
    res.json()["resources"][0]["reasons"][0]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no reason code: {}", String::from_utf8_lossy(&res.body)))
        .to_string()
}

fn refused(res: &Response) -> (u16, String) {
    (res.status(), code(res))
}

/// Creates a key on `path` (`/api/v2/keys` or
/// `/api/v2/keys_with_policy_overrides`) as the manager; returns its resource.
fn create(server: &DevServer, conn: &mut Conn, path: &str, resource: Value) -> Value {
    let res = call(
        conn,
        &server.token("manager"),
        "POST",
        path,
        Some(&keys_body(resource)),
    );
    assert_eq!(
        res.status(),
        201,
        "create: {}",
        String::from_utf8_lossy(&res.body)
    );
    res.json()["resources"][0].clone()
}

/// The key as a reader sees it: it still exists, in `state`.
fn key(server: &DevServer, conn: &mut Conn, id: &str) -> Value {
    let res = call(
        conn,
        &server.token("reader"),
        "GET",
        &format!("/api/v2/keys/{id}/metadata"),
        None,
    );
    assert_eq!(res.status(), 200, "{}", String::from_utf8_lossy(&res.body));
    res.json()["resources"][0].clone()
}

/// How many keys the instance holds.
fn key_count(server: &DevServer, conn: &mut Conn) -> u64 {
    let res = call(conn, &server.token("reader"), "GET", "/api/v2/keys", None);
    assert_eq!(res.status(), 200);
    res.json()["metadata"]["collectionTotal"]
        .as_u64()
        .expect("collectionTotal")
}

fn set_dual_auth(conn: &mut Conn, token: &str, id: &str, query: bool, enabled: bool) -> Response {
    let path = if query {
        format!("/api/v2/keys/{id}/policies?policy=dualAuthDelete")
    } else {
        format!("/api/v2/keys/{id}/policies")
    };
    let body = policy_body(vec![
        json!({"type": POLICY_MEDIA, "dualAuthDelete": {"enabled": enabled}}),
    ]);
    call(conn, token, "PUT", &path, Some(&body))
}

/// Sets the instance policy `dualAuthDelete` the only way there is: a
/// command signed by the dev instance's administrator (threshold 1).
fn instance_dual_auth(server: &DevServer, conn: &mut Conn, enabled: bool) {
    let admin = keyledger::admin_key::read(&server.data_dir.join("dev").join("admin.key"))
        .expect("dev admin key");
    let document = CommandDocument::new(
        INSTANCE,
        AdminCommand::SetInstancePolicy {
            policy_type: "dualAuthDelete".into(),
            enabled,
            attributes: Default::default(),
        },
        Utc::now() + Duration::minutes(10),
    )
    .expect("command");
    let mut signed = SignedCommand::unsigned(&document).expect("unsigned");
    signed.sign(&admin);
    let body = serde_json::to_vec(&signed).expect("json");
    let res = conn
        .request(
            "POST",
            "/api/v2/admin/commands",
            &[("bluemix-instance", INSTANCE)],
            Some(&body),
        )
        .expect("submit");
    assert_eq!(res.status(), 200, "{}", String::from_utf8_lossy(&res.body));
    assert_eq!(res.json()["type"], "instance.policy_updated");
}

/// Issue 14 item 1: the same Manager created a dual-auth key, switched the
/// policy off (200) and deleted the key alone (200). Now the switch is
/// refused in every form, nothing is written, and the key stays dual-auth.
#[test]
fn one_manager_cannot_switch_off_a_keys_dual_auth_delete() {
    let dir = tempfile::tempdir().expect("tmp");
    let server = start(&dir);
    let mut conn = server.conn();
    let manager = server.token("manager");
    let created = create(
        &server,
        &mut conn,
        "/api/v2/keys_with_policy_overrides",
        json!({"type": KEY_MEDIA, "name": "dual-key", "extractable": false,
               "dualAuthDelete": {"enabled": true}}),
    );
    let id = created["id"].as_str().expect("id").to_string();
    assert_eq!(created["dualAuthDelete"]["enabled"], true);
    let records = server.log_records();

    // `?policy=dualAuthDelete` and the bare form alike.
    for query in [true, false] {
        let res = set_dual_auth(&mut conn, &manager, &id, query, false);
        assert_eq!(
            refused(&res),
            (409, "KEY_ACTION_INVALID_STATE_ERR".to_string()),
            "{}",
            String::from_utf8_lossy(&res.body)
        );
        assert_eq!(server.log_records(), records, "the refusal wrote nothing");
    }
    // A body that also sets rotation changes nothing at all.
    let both = policy_body(vec![
        json!({"type": POLICY_MEDIA, "rotation": {"enabled": true, "interval_month": 3}}),
        json!({"type": POLICY_MEDIA, "dualAuthDelete": {"enabled": false}}),
    ]);
    let res = call(
        &mut conn,
        &manager,
        "PUT",
        &format!("/api/v2/keys/{id}/policies"),
        Some(&both),
    );
    assert_eq!(
        refused(&res),
        (409, "KEY_ACTION_INVALID_STATE_ERR".to_string())
    );
    assert_eq!(server.log_records(), records);

    let now = key(&server, &mut conn, &id);
    assert_eq!(now["state"], 1, "the key still exists: {now}");
    assert_eq!(now["dualAuthDelete"]["enabled"], true);
    assert!(now.get("rotation").is_none(), "rotation was not set: {now}");
    let res = call(
        &mut conn,
        &server.token("reader"),
        "GET",
        &format!("/api/v2/keys/{id}/policies"),
        None,
    );
    assert_eq!(res.status(), 200);
    let policies = res.json();
    assert_eq!(
        policies["resources"][0]["rotation"],
        json!({"enabled": false})
    );
    assert_eq!(
        policies["resources"][1]["dualAuthDelete"],
        json!({"enabled": true})
    );

    // So the Manager cannot delete it alone either.
    let res = call(
        &mut conn,
        &manager,
        "DELETE",
        &format!("/api/v2/keys/{id}"),
        None,
    );
    assert_eq!(refused(&res), (409, "AUTHORIZATIONS_NOT_MET".to_string()));
    assert_eq!(key(&server, &mut conn, &id)["state"], 1);

    // Enabling it again stays allowed.
    let res = set_dual_auth(&mut conn, &manager, &id, true, true);
    assert_eq!(res.status(), 200, "{}", String::from_utf8_lossy(&res.body));
}

/// The other path: a key created while the instance policy `dualAuthDelete`
/// is on inherits it and cannot drop it, neither afterwards nor at creation
/// with overrides, even after the administrators switch the instance policy
/// off again (that changes new keys only).
#[test]
fn a_key_under_the_instance_dual_auth_policy_cannot_opt_out() {
    let dir = tempfile::tempdir().expect("tmp");
    let server = start(&dir);
    let mut conn = server.conn();
    let manager = server.token("manager");
    instance_dual_auth(&server, &mut conn, true);
    let created = create(
        &server,
        &mut conn,
        "/api/v2/keys",
        json!({"type": KEY_MEDIA, "name": "inherits", "extractable": false}),
    );
    let id = created["id"].as_str().expect("id").to_string();
    assert_eq!(created["dualAuthDelete"]["enabled"], true, "{created}");
    let records = server.log_records();
    let keys = key_count(&server, &mut conn);

    let res = set_dual_auth(&mut conn, &manager, &id, true, false);
    assert_eq!(
        refused(&res),
        (409, "KEY_ACTION_INVALID_STATE_ERR".to_string()),
        "{}",
        String::from_utf8_lossy(&res.body)
    );
    assert_eq!(server.log_records(), records);

    let res = call(
        &mut conn,
        &manager,
        "POST",
        "/api/v2/keys_with_policy_overrides",
        Some(&keys_body(json!({
            "type": KEY_MEDIA, "name": "opts-out", "extractable": false,
            "dualAuthDelete": {"enabled": false},
        }))),
    );
    assert_eq!(
        refused(&res),
        (409, "KEY_ACTION_INVALID_STATE_ERR".to_string()),
        "{}",
        String::from_utf8_lossy(&res.body)
    );
    assert_eq!(server.log_records(), records, "no key, no event");
    assert_eq!(key_count(&server, &mut conn), keys);

    // The instance policy changes by its own rule (a signed command); the
    // key created under it keeps dual authorisation.
    instance_dual_auth(&server, &mut conn, false);
    let records = server.log_records();
    let res = set_dual_auth(&mut conn, &manager, &id, false, false);
    assert_eq!(
        refused(&res),
        (409, "KEY_ACTION_INVALID_STATE_ERR".to_string())
    );
    assert_eq!(server.log_records(), records);
    let now = key(&server, &mut conn, &id);
    assert_eq!(
        (
            now["state"].clone(),
            now["dualAuthDelete"]["enabled"].clone()
        ),
        (json!(1), json!(true))
    );
}

/// Issue 14 item 10: both creation paths refuse unknown fields and every
/// alias list the alias endpoint would not build (a sixth alias, `.`, `:`,
/// a space, `registrations`, the same alias twice), writing nothing; the
/// alias endpoint refuses the same names with the same codes.
#[test]
fn key_creation_takes_the_alias_endpoints_rules_and_no_unknown_fields() {
    let dir = tempfile::tempdir().expect("tmp");
    let server = start(&dir);
    let mut conn = server.conn();
    let manager = server.token("manager");
    let records = server.log_records();
    let keys = key_count(&server, &mut conn);
    let six: Vec<String> = (1..=6).map(|n| format!("alias-{n}")).collect();
    let cases: Vec<(Value, u16, &str)> = vec![
        (json!({"colour": "red"}), 400, "BAD_BODY_ERR"),
        (json!({"aliases": six}), 400, "KEY_ALIAS_QUOTA_ERR"),
        (json!({"aliases": ["al.ias"]}), 400, "BAD_BODY_ERR"),
        (json!({"aliases": ["al:ias"]}), 400, "BAD_BODY_ERR"),
        (json!({"aliases": ["al ias"]}), 400, "BAD_BODY_ERR"),
        (json!({"aliases": ["registrations"]}), 400, "BAD_BODY_ERR"),
        (json!({"aliases": ["twice", "twice"]}), 400, "BAD_BODY_ERR"),
    ];
    for path in ["/api/v2/keys", "/api/v2/keys_with_policy_overrides"] {
        for (extra, status, reason) in &cases {
            let mut resource = json!({"type": KEY_MEDIA, "name": "strict", "extractable": false});
            for (k, v) in extra.as_object().expect("object") {
                resource[k] = v.clone();
            }
            let res = call(
                &mut conn,
                &manager,
                "POST",
                path,
                Some(&keys_body(resource.clone())),
            );
            assert_eq!(
                refused(&res),
                (*status, reason.to_string()),
                "{path} {resource}: {}",
                String::from_utf8_lossy(&res.body)
            );
            assert_eq!(server.log_records(), records, "{path} {resource} wrote");
        }
    }
    assert_eq!(key_count(&server, &mut conn), keys, "no key was created");

    // Five valid aliases are fine; the alias endpoint then refuses a sixth
    // and the same names as creation does.
    let five: Vec<String> = (1..=5).map(|n| format!("alias-{n}")).collect();
    let created = create(
        &server,
        &mut conn,
        "/api/v2/keys",
        json!({"type": KEY_MEDIA, "name": "five", "extractable": false, "aliases": five}),
    );
    let id = created["id"].as_str().expect("id").to_string();
    assert_eq!(created["aliases"].as_array().map(Vec::len), Some(5));
    let records = server.log_records();
    for (alias, reason) in [
        ("alias-6", "KEY_ALIAS_QUOTA_ERR"),
        ("al.ias", "BAD_BODY_ERR"),
        ("al:ias", "BAD_BODY_ERR"),
        ("al%20ias", "BAD_BODY_ERR"),
        ("registrations", "BAD_BODY_ERR"),
    ] {
        let res = call(
            &mut conn,
            &manager,
            "POST",
            &format!("/api/v2/keys/{id}/aliases/{alias}"),
            None,
        );
        assert_eq!(
            refused(&res),
            (400, reason.to_string()),
            "{alias}: {}",
            String::from_utf8_lossy(&res.body)
        );
    }
    assert_eq!(server.log_records(), records);
    assert_eq!(key(&server, &mut conn, &id)["state"], 1);
}
