//! Golden fixtures of the key projection (`projections/keys/fixtures/*.json`:
//! events in, expected state out, plus state-machine checks), and the
//! determinism of rebuilding.
//!
//! To (re)write an `expected` value after a reviewed change, run with
//! `KEYLEDGER_BLESS=1` and review the diff.

use std::fs;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use keyledger_core::event::Envelope;
use keyledger_core::keys::projection::{KeyProjection, KeyQuery, Search};
use keyledger_core::keys::state::{self, KeyAction, KeyState};
use serde_json::{Value, json};

fn fixtures_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../projections/keys/fixtures"
    ))
}

fn fixture_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(fixtures_dir())
        .expect("projections/keys/fixtures exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

/// The stored bytes of each fixture event (an envelope as the writer makes it).
fn event_bytes(events: &[Value]) -> Vec<Vec<u8>> {
    events
        .iter()
        .enumerate()
        .map(|(seq, e)| {
            if let Some(raw) = e.get("raw") {
                return raw.as_str().expect("raw is a string").as_bytes().to_vec();
            }
            let principal = e["actor"].as_str().expect("actor");
            let (role, auth) = if principal == "system" {
                ("system", "internal")
            } else {
                ("writer", "bearer")
            };
            let envelope = json!({
                "instance": "acme",
                "seq": seq,
                "time": e["time"],
                "type": e["type"],
                "type_version": e.get("type_version").cloned().unwrap_or(json!(1)),
                "actor": {"principal": principal, "role": role, "auth": auth},
                "correlation_id": format!("corr-{seq}"),
                "payload": e["payload"],
                "ledger_key": "00000000",
                "prev": "0".repeat(64),
            });
            serde_json::to_vec(&envelope).expect("serialise")
        })
        .collect()
}

fn time(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().expect("time string"))
        .expect("rfc3339")
        .with_timezone(&Utc)
}

fn action(name: &str) -> KeyAction {
    serde_json::from_value(json!(name)).expect("known action")
}

/// `checks`: `{key, action, at, expect: "ok" | KP code}` against the final state.
fn run_checks(name: &str, projection: &KeyProjection, checks: &[Value]) {
    for check in checks {
        let key_id = check["key"].as_str().expect("key");
        let action = action(check["action"].as_str().expect("action"));
        let at = time(&check["at"]);
        let expect = check["expect"].as_str().expect("expect");
        let got = match projection.resolve(key_id) {
            None => "NOT_FOUND".to_string(),
            Some(key) => match state::check_at(key.state, action, &key.timeline(), at) {
                Ok(()) => "ok".to_string(),
                Err(e) => e.reason().code().to_string(),
            },
        };
        assert_eq!(got, expect, "{name}: {key_id} {action:?} at {at}");
    }
}

#[test]
fn every_golden_fixture_matches() {
    let files = fixture_files();
    assert!(
        !files.is_empty(),
        "projections/keys/fixtures holds no fixture"
    );
    let bless = std::env::var_os("KEYLEDGER_BLESS").is_some();
    for path in files {
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .to_string();
        let text = fs::read_to_string(&path).expect("read fixture");
        let mut fixture: Value = serde_json::from_str(&text).expect("fixture JSON");
        let events = fixture["events"].as_array().expect("events").clone();
        let bytes = event_bytes(&events);
        let projection = KeyProjection::rebuild(bytes.iter().map(Vec::as_slice));
        let got = serde_json::to_value(&projection).expect("to json");

        if bless || fixture["expected"].is_null() {
            assert!(
                bless,
                "{name}: no expected state (run with KEYLEDGER_BLESS=1 and review)"
            );
            fixture["expected"] = got.clone();
            let pretty = serde_json::to_string_pretty(&fixture).expect("pretty");
            fs::write(&path, pretty + "\n").expect("write fixture");
        }
        assert_eq!(
            got, fixture["expected"],
            "{name}: projection differs from expected"
        );

        // The expected JSON is a complete projection value.
        let parsed: KeyProjection =
            serde_json::from_value(fixture["expected"].clone()).expect("expected parses");
        assert_eq!(parsed, projection, "{name}");
        assert_eq!(parsed.digest(), projection.digest(), "{name}");

        // Deterministic: rebuilding, or applying one envelope at a time, is equal.
        let again = KeyProjection::rebuild(bytes.iter().map(Vec::as_slice));
        assert_eq!(again, projection, "{name}");
        let mut stepwise = KeyProjection::new();
        for b in &bytes {
            match Envelope::parse(b) {
                Ok(env) => stepwise.apply_envelope(&env),
                Err(_) => stepwise.ignored_events += 1,
            }
        }
        assert_eq!(stepwise.digest(), projection.digest(), "{name}");

        if let Some(checks) = fixture.get("checks").and_then(Value::as_array) {
            run_checks(&name, &projection, checks);
        }
    }
}

#[test]
fn digest_tracks_every_change() {
    let files = fixture_files();
    let text = fs::read_to_string(&files[0]).expect("read");
    let fixture: Value = serde_json::from_str(&text).expect("json");
    let bytes = event_bytes(fixture["events"].as_array().expect("events"));
    let mut digests = std::collections::HashSet::new();
    let mut previous = None;
    for n in 0..=bytes.len() {
        let p = KeyProjection::rebuild(bytes[..n].iter().map(Vec::as_slice));
        let key_event = n > 0 && p.last_seq == Some(n as u64 - 1);
        if n == 0 || key_event {
            assert!(
                digests.insert(p.digest()),
                "prefix {n} has a repeated digest"
            );
        } else {
            // Events other projections own leave this one untouched.
            assert_eq!(Some(p.digest()), previous, "prefix {n}");
        }
        previous = Some(p.digest());
    }
}

#[test]
fn listing_filters_search_and_pages() {
    let path = fixtures_dir().join("01_create_rotate.json");
    let fixture: Value =
        serde_json::from_str(&fs::read_to_string(path).expect("read")).expect("json");
    let bytes = event_bytes(fixture["events"].as_array().expect("events"));
    let p = KeyProjection::rebuild(bytes.iter().map(Vec::as_slice));

    let all = p.list(&KeyQuery::default());
    assert_eq!(all.total, 2);
    let roots = p.list(&KeyQuery {
        extractable: Some(false),
        ..KeyQuery::default()
    });
    assert_eq!(
        roots
            .keys
            .iter()
            .map(|k| k.name.as_str())
            .collect::<Vec<_>>(),
        ["root-a"]
    );
    let by_alias = p.list(&KeyQuery {
        search: Some(Search::parse("alias:ORDERS").expect("search")),
        ..KeyQuery::default()
    });
    assert_eq!(by_alias.total, 1);
    let not_root = p.list(&KeyQuery {
        search: Some(Search::parse("not:root").expect("search")),
        ..KeyQuery::default()
    });
    assert_eq!(not_root.keys[0].name, "std-b");
    let page = p.list(&KeyQuery {
        offset: 1,
        limit: 1,
        ..KeyQuery::default()
    });
    assert_eq!(
        (page.total, page.keys.len(), page.keys[0].name.as_str()),
        (2, 1, "std-b")
    );
    let destroyed_only = p.list(&KeyQuery {
        states: vec![KeyState::Destroyed],
        ..KeyQuery::default()
    });
    assert_eq!(destroyed_only.total, 0);
    assert_eq!(
        p.resolve("orders-root").map(|k| k.versions.len()),
        Some(3),
        "lookup by alias"
    );
}
