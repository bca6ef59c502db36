//! `keyledger ledger generate` writes a rule-abiding life of an instance:
//! `keyledger verify --policy` finds nothing in it, a later run continues
//! it without breaking a rule, its times are canonical and non-decreasing,
//! every key use is by a live writer or manager credential, every
//! administrator event is by its command's signers, and its mix of events
//! is a busy instance's (mostly wraps and unwraps, some lifecycle, a few
//! dual-authorisation deletes with approvals). Both verifiers
//! (`keyledger verify`, `keyledger-verify`) replay it and agree.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Output;

use keyledger::event::Envelope;
use keyledger::store::EventStore;
use keyledger::store::embedded::EmbeddedStore;

fn keyledger(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_keyledger"))
        .args(args)
        .output()
        .expect("run keyledger")
}

fn generate(data: &Path, events: u64) {
    let out = keyledger(&[
        "ledger",
        "generate",
        "--data-dir",
        data.to_str().expect("utf8"),
        "--instance",
        "life",
        "--events",
        &events.to_string(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Exports the instance and runs `verify --policy --json` on it.
fn verify_policy(dir: &Path, data: &Path, name: &str) -> serde_json::Value {
    let bundle = dir.join(name);
    let export = keyledger(&[
        "ledger",
        "export",
        "--data-dir",
        data.to_str().expect("utf8"),
        "--instance",
        "life",
        "--out",
        bundle.to_str().expect("utf8"),
    ]);
    assert!(
        export.status.success(),
        "{}",
        String::from_utf8_lossy(&export.stderr)
    );
    let out = common::verifiers::both(&[bundle.to_str().expect("utf8"), "--policy", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let findings = &report["policy"]["findings"];
    assert_eq!(
        out.status.code(),
        Some(0),
        "first findings: {}",
        serde_json::to_string_pretty(&findings.as_array().map(|f| &f[..f.len().min(5)]))
            .unwrap_or_default()
    );
    report
}

/// Every stored event of the instance, parsed.
fn events(data: &Path) -> Vec<Vec<u8>> {
    let store = EmbeddedStore::open(data).expect("store");
    let log = store.open_instance("life").expect("instance");
    let size = log.head().size;
    log.read(0, size)
        .expect("read")
        .into_iter()
        .map(|r| r.event)
        .collect()
}

#[test]
fn generated_life_abides_by_every_rule_and_looks_like_a_busy_instance() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    generate(&data, 20_000);
    let report = verify_policy(dir.path(), &data, "bundle-1");
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["records"], 20_001);
    assert_eq!(report["policy"]["ok"], true);
    assert_eq!(report["policy"]["events"], 20_001);
    assert_eq!(report["policy"]["violations"], 0);

    // Later runs continue the same life: a short one (mid-tick) and a longer one.
    generate(&data, 7);
    generate(&data, 3_000);
    let report = verify_policy(dir.path(), &data, "bundle-2");
    assert_eq!(report["records"], 23_008, "{report}");
    assert_eq!(report["policy"]["violations"], 0);

    let stored = events(&data);
    assert_eq!(stored.len(), 23_008);
    let mut count: BTreeMap<String, u64> = BTreeMap::new();
    let mut live: BTreeMap<String, String> = BTreeMap::new();
    let mut last_time = String::new();
    for (seq, bytes) in stored.iter().enumerate() {
        let e = Envelope::parse(bytes).expect("event parses");
        *count.entry(e.event_type.clone()).or_default() += 1;
        // Canonical, non-decreasing times: YYYY-MM-DDTHH:MM:SS.ffffffZ.
        let t = e.time.as_bytes();
        assert!(
            t.len() == 27 && t[10] == b'T' && t[19] == b'.' && t[26] == b'Z',
            "seq {seq}: {}",
            e.time
        );
        assert!(e.time >= last_time, "seq {seq}: time went back");
        last_time = e.time.clone();
        let payload: serde_json::Value = serde_json::from_str(e.payload.get()).expect("payload");
        match e.event_type.as_str() {
            "credential.issued" => {
                let id = payload["credential_id"].as_str().expect("id").to_string();
                live.insert(id, payload["role"].as_str().expect("role").to_string());
            }
            "credential.revoked" => {
                live.remove(payload["credential_id"].as_str().expect("id"));
            }
            "key.wrapped" | "key.unwrapped" | "key.rewrapped" | "key.created" | "key.rotated" => {
                let role = live.get(&e.actor.principal);
                assert!(
                    matches!(role.map(String::as_str), Some("writer" | "manager")),
                    "seq {seq}: {} by {:?} holding {role:?}",
                    e.event_type,
                    e.actor.principal
                );
            }
            "key.destroyed" | "key.disabled" | "key.restored" | "key.purged" => {
                assert_eq!(
                    live.get(&e.actor.principal).map(String::as_str),
                    Some("manager"),
                    "seq {seq}: {}",
                    e.event_type
                );
            }
            _ => {}
        }
        // Administrator events are by the administrators who signed them.
        if let Some(command) = payload.get("command").filter(|c| !c.is_null()) {
            let signers: BTreeSet<&str> = command["signatures"]
                .as_array()
                .expect("signatures")
                .iter()
                .map(|s| s["admin_id"].as_str().expect("admin id"))
                .collect();
            let actors: BTreeSet<&str> = e.actor.principal.split('+').collect();
            assert!(
                !actors.is_empty() && actors.is_subset(&signers),
                "seq {seq}: {} by {} signed by {signers:?}",
                e.event_type,
                e.actor.principal
            );
        }
    }
    let n = |t: &str| count.get(t).copied().unwrap_or(0);
    let total = stored.len() as f64;
    eprintln!("{count:#?}");

    // The setup, once: three administrators by signed command, thresholds,
    // two key owners, the ceremony, credentials for every role.
    assert_eq!(n("instance.created"), 1);
    assert_eq!(n("admin.added"), 2);
    assert_eq!(n("admin.thresholds_set"), 1);
    assert_eq!(n("key_owner.registered"), 2);
    assert!(n("master_key.load_approved") >= 1);
    assert!(n("master_key.part_loaded") >= 2);
    assert!(n("master_key.committed") >= 1);
    assert_eq!(n("master_key.activated"), 1);
    assert!(n("credential.issued") >= 8, "{count:?}");

    // Mostly key use: wraps first, then unwraps, a few rewraps.
    let wrapped = n("key.wrapped") as f64 / total;
    let unwrapped = n("key.unwrapped") as f64 / total;
    let uses = (n("key.wrapped") + n("key.unwrapped") + n("key.rewrapped")) as f64 / total;
    assert!((0.40..0.65).contains(&wrapped), "wraps {wrapped}");
    assert!((0.28..0.45).contains(&unwrapped), "unwraps {unwrapped}");
    assert!((0.85..0.98).contains(&uses), "key use {uses}");
    assert!(n("key.rewrapped") > 0);
    // Some lifecycle: creations, rotations, disables and enables, deletes.
    let created = n("key.created") as f64 / total;
    assert!((0.002..0.03).contains(&created), "creations {created}");
    assert!(n("key.rotated") >= 5, "{count:?}");
    assert!(n("key.disabled") >= 3 && n("key.enabled") >= 1, "{count:?}");
    assert!(n("key.destroyed") >= 5, "{count:?}");
    assert!(n("key.policy_updated") >= 3, "{count:?}");
    // A few dual-authorisation deletes: requested, approved by a second
    // manager, executed with the request's id.
    assert!(n("approval.requested") >= 2, "{count:?}");
    assert!(n("approval.granted") >= 1, "{count:?}");
    let lifecycle = total * (1.0 - uses);
    assert!(
        ((n("approval.requested") + n("approval.granted")) as f64) < lifecycle / 2.0,
        "{count:?}"
    );
}

#[test]
fn generate_continues_only_instances_it_created() {
    use base64::Engine;
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let admin = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
    let public = base64::engine::general_purpose::STANDARD.encode(admin.verifying_key().as_bytes());
    let created = keyledger(&[
        "instance",
        "create",
        "--data-dir",
        data.to_str().expect("utf8"),
        "--instance",
        "life",
        "--admin-public-key",
        &public,
    ]);
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    // Without the administrators' keys it cannot sign their commands: it
    // refuses and appends nothing.
    let out = keyledger(&[
        "ledger",
        "generate",
        "--data-dir",
        data.to_str().expect("utf8"),
        "--instance",
        "life",
        "--events",
        "10",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("generate/life.json")
            && stderr.contains("continues only instances it created"),
        "{stderr}"
    );
    assert_eq!(events(&data).len(), 1);
}
