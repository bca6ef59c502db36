//! `keyledger serve` through a PostgreSQL outage, as users run it: two
//! servers (`serve --dev`, one data directory) on a database that goes
//! away under wrap load and comes back, with no restart of the servers:
//!
//! - a pg_auto_failover formation (monitor, primary, synchronous
//!   secondary) reached through its multi-host URL
//!   (`target_session_attrs=read-write`, `connect_timeout=2`), whose
//!   primary is stopped;
//! - one plain cluster stopped with `pg_ctl stop -m immediate` and
//!   started again.
//!
//! Each client thread records every answer. While no database takes
//! writes the servers fail closed: every wrap answers 200 with its event
//! stored or 503 with a Key Protect error body whose code is
//! `LEDGER_UNAVAILABLE_ERR`, nothing else. Once the database is back
//! (promoted or restarted) both servers answer 200 again by themselves.
//! Afterwards the log exported from the database verifies (chain and
//! policy), every acknowledged wrap's receipt seq holds a `key.wrapped`
//! record, and every acknowledged ciphertext unwraps to what was sent.
//! The measured times (database down -> first 503, -> first 200 again)
//! are printed (docs/STORE-POSTGRES-HA.md quotes them), never asserted.
//!
//! Needs PostgreSQL 15 and pg_auto_failover (scripts/postgres-setup,
//! scripts/pg-auto-failover-setup); never touches the server on 5432.

mod common;
// The store's throwaway clusters and pg_auto_failover formation.
#[path = "../crates/keyledger-store-postgres/tests/cluster/mod.rs"]
mod cluster;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine;
use cluster::autofailover::Formation;
use cluster::{Cluster, wait_for};
use common::http::Conn;
use common::serve::{DevServer, INSTANCE, call, create_root_key};
use keyledger::event::Envelope;
use serde_json::json;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Client threads per server.
const CLIENTS: usize = 2;

/// A bound on every wait here (a loaded 2-core machine), not a timing
/// assertion.
const LIMIT: Duration = Duration::from_secs(90);

/// One answer a client got.
#[derive(Debug, Clone)]
struct Answer {
    /// Which server (0 or 1).
    server: usize,
    sent: Instant,
    at: Instant,
    /// The HTTP status, or `None` if the request got no answer at all.
    status: Option<u16>,
    /// The Key Protect reason code of an error body (empty on success).
    code: String,
    /// What was wrong with the answer, if anything.
    defect: Option<String>,
    plaintext: Vec<u8>,
    /// Of a 200: the ciphertext and the receipt seq.
    acked: Option<(String, u64)>,
}

/// Wraps `plaintext` through `conn` and classifies the answer.
fn wrap_once(conn: &mut Conn, server: usize, token: &str, key: &str, plaintext: Vec<u8>) -> Answer {
    let sent = Instant::now();
    let auth = format!("Bearer {token}");
    let body = serde_json::to_vec(&json!({"plaintext": B64.encode(&plaintext)})).expect("json");
    let res = conn.request(
        "POST",
        &format!("/api/v2/keys/{key}/actions/wrap"),
        &[("authorization", &auth), ("bluemix-instance", INSTANCE)],
        Some(&body),
    );
    let mut answer = Answer {
        server,
        sent,
        at: Instant::now(),
        status: None,
        code: String::new(),
        defect: None,
        plaintext,
        acked: None,
    };
    let res = match res {
        Ok(res) => res,
        Err(e) => {
            answer.defect = Some(format!("no answer: {e}"));
            return answer;
        }
    };
    answer.status = Some(res.status());
    let json: Option<serde_json::Value> = serde_json::from_slice(&res.body).ok();
    let text = String::from_utf8_lossy(&res.body).to_string();
    match (res.status(), json) {
        (200, Some(j)) => {
            let ct = j["ciphertext"].as_str().map(str::to_string);
            let seq = res
                .header("keyledger-receipt-seq")
                .and_then(|s| s.parse().ok());
            match (ct, seq) {
                (Some(ct), Some(seq)) => answer.acked = Some((ct, seq)),
                _ => answer.defect = Some(format!("200 without ciphertext or receipt: {text}")),
            }
        }
        (503, Some(j)) => {
            let kp = j["metadata"]["collectionType"] == "application/vnd.ibm.kms.error+json"
                && j["resources"][0]["errorMsg"].is_string();
            answer.code = j["resources"][0]["reasons"][0]["code"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if !kp || answer.code != "LEDGER_UNAVAILABLE_ERR" {
                answer.defect = Some(format!("503 without the expected error body: {text}"));
            }
        }
        (status, _) => answer.defect = Some(format!("status {status}: {text}")),
    }
    answer
}

/// Wrap load: [`CLIENTS`] threads per server until `stop`, each wrapping a
/// plaintext of its own per request and recording every answer into
/// `answers`. A connection that failed is replaced.
fn load(
    servers: &[&DevServer],
    token: &str,
    key: &str,
    stop: &AtomicBool,
    answers: &Mutex<Vec<Answer>>,
) {
    thread::scope(|s| {
        for (i, server) in servers.iter().enumerate() {
            for c in 0..CLIENTS {
                s.spawn(move || {
                    let mut conn = server.conn();
                    let mut n = 0u32;
                    while !stop.load(Ordering::Relaxed) {
                        n += 1;
                        let dek = format!("dek-{i}-{c}-{n:06}-0123456789ab").into_bytes();
                        let answer = wrap_once(&mut conn, i, token, key, dek);
                        let failed = answer.status.is_none();
                        let refused = answer.status != Some(200);
                        answers.lock().expect("answers").push(answer);
                        if failed {
                            thread::sleep(Duration::from_millis(100));
                            match Conn::connect(&server.addr) {
                                Ok(c) => conn = c,
                                Err(_) => continue,
                            }
                        } else if refused {
                            thread::sleep(Duration::from_millis(20));
                        }
                    }
                });
            }
        }
    });
}

/// Sets its flag when dropped: the load stops also when a wait in the
/// test panics (else the scope would wait for it forever).
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Acknowledged wraps through `server` answered after `t`.
fn acks_after(answers: &Mutex<Vec<Answer>>, server: usize, t: Instant) -> usize {
    answers
        .lock()
        .expect("answers")
        .iter()
        .filter(|a| a.server == server && a.at > t && a.acked.is_some())
        .count()
}

/// Whether `server` answered a 503 after `t`.
fn refused_after(answers: &Mutex<Vec<Answer>>, server: usize, t: Instant) -> bool {
    answers
        .lock()
        .expect("answers")
        .iter()
        .any(|a| a.server == server && a.at > t && a.status == Some(503))
}

/// The measured outage as the clients saw it.
struct Outage {
    /// Database down -> first 503 (either server).
    first_503: Duration,
    /// Database down -> first 200 answered after that 503, per server.
    first_200_again: [Duration; 2],
    refused: usize,
    /// The longest a refused wrap waited for its 503.
    slowest_503: Duration,
    acked: usize,
}

/// The answers' verdict: no defect, 503s after `down`, 200s again through
/// both servers after them.
fn outage(answers: &[Answer], down: Instant) -> Outage {
    let defects: Vec<String> = answers
        .iter()
        .filter_map(|a| {
            a.defect.as_ref().map(|d| {
                format!(
                    "server {} at {:.1?} after the outage began: {d}",
                    a.server,
                    a.at.saturating_duration_since(down)
                )
            })
        })
        .collect();
    assert!(
        defects.is_empty(),
        "{} answers were neither 200 with a receipt nor 503 LEDGER_UNAVAILABLE_ERR: {:#?}",
        defects.len(),
        &defects[..defects.len().min(20)]
    );
    let first_503 = answers
        .iter()
        .filter(|a| a.at > down && a.status == Some(503))
        .map(|a| a.at)
        .min()
        .expect("the servers refused wraps (503) while the database was down");
    let again = |server: usize| {
        answers
            .iter()
            .filter(|a| a.server == server && a.sent > first_503 && a.acked.is_some())
            .map(|a| a.at.duration_since(down))
            .min()
            .unwrap_or_else(|| panic!("server {server} never answered 200 again"))
    };
    Outage {
        first_503: first_503.duration_since(down),
        first_200_again: [again(0), again(1)],
        refused: answers.iter().filter(|a| a.status == Some(503)).count(),
        slowest_503: answers
            .iter()
            .filter(|a| a.status == Some(503))
            .map(|a| a.at.duration_since(a.sent))
            .max()
            .unwrap_or_default(),
        acked: answers.iter().filter(|a| a.acked.is_some()).count(),
    }
}

/// Calls made while the database is down besides the wraps: a key
/// creation (key material and an event to store) and an unwrap (an event):
/// each must be refused with 503 `LEDGER_UNAVAILABLE_ERR` in a Key Protect
/// error body, like the wraps. Returns (what, status, body, how long it
/// took) of each.
fn probe_while_down(
    server: &DevServer,
    manager: &str,
    writer: &str,
    key: &str,
    ciphertext: &str,
) -> Vec<(String, u16, String, Duration)> {
    let mut conn = server.conn();
    let create = json!({
        "metadata": {"collectionType": "application/vnd.ibm.kms.key+json", "collectionTotal": 1},
        "resources": [{"type": "application/vnd.ibm.kms.key+json", "name": "while-down", "extractable": false}],
    });
    let mut out = Vec::new();
    let t = Instant::now();
    let res = call(&mut conn, manager, "POST", "/api/v2/keys", Some(&create));
    out.push((
        "create key".to_string(),
        res.status(),
        String::from_utf8_lossy(&res.body).to_string(),
        t.elapsed(),
    ));
    let t = Instant::now();
    let res = call(
        &mut conn,
        writer,
        "POST",
        &format!("/api/v2/keys/{key}/actions/unwrap"),
        Some(&json!({"ciphertext": ciphertext})),
    );
    out.push((
        "unwrap".to_string(),
        res.status(),
        String::from_utf8_lossy(&res.body).to_string(),
        t.elapsed(),
    ));
    out
}

/// Exports the log from `url` and checks it: `verify` and `verify
/// --policy` pass; every acknowledged wrap's seq holds a `key.wrapped`
/// record of `key`, no two share one; every acknowledged ciphertext
/// unwraps, through `server`, to its plaintext.
fn check_after(
    dir: &Path,
    data: &Path,
    url: &str,
    server: &DevServer,
    token: &str,
    key: &str,
    answers: &[Answer],
) {
    let bundle = dir.join("bundle");
    common::pg::export_and_verify(data, INSTANCE, url, &bundle);
    // seq -> (type, payload)
    let events: BTreeMap<u64, (String, String)> = common::fixture::read_records(&bundle)
        .iter()
        .map(|r| {
            let e = Envelope::parse(&r.event).expect("event");
            (e.seq, (e.event_type, e.payload.get().to_string()))
        })
        .collect();
    let mut seqs = Vec::new();
    let mut conn = server.conn();
    for a in answers {
        let Some((ct, seq)) = &a.acked else { continue };
        let (event_type, payload) = events
            .get(seq)
            .unwrap_or_else(|| panic!("acknowledged wrap at seq {seq} is not in the log"));
        assert_eq!(event_type, "key.wrapped", "seq {seq}");
        assert!(
            payload.contains(key),
            "seq {seq} is a wrap with another key: {payload}"
        );
        seqs.push(*seq);
        let res = call(
            &mut conn,
            token,
            "POST",
            &format!("/api/v2/keys/{key}/actions/unwrap"),
            Some(&json!({"ciphertext": ct})),
        );
        assert_eq!(
            res.status(),
            200,
            "unwrap of seq {seq}: {}",
            String::from_utf8_lossy(&res.body)
        );
        let plaintext = B64
            .decode(res.json()["plaintext"].as_str().expect("plaintext"))
            .expect("base64");
        assert_eq!(plaintext, a.plaintext, "seq {seq} unwraps to what was sent");
    }
    let acked = seqs.len();
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), acked, "no two acknowledged wraps share a seq");
}

/// Neither server panicked (a panic in a handler or a background thread
/// shows in its output even when the process lives on).
fn no_panic(servers: &[DevServer]) {
    for (i, s) in servers.iter().enumerate() {
        let text = String::from_utf8_lossy(&s.output()).to_string();
        assert!(!text.contains("panicked"), "server {i} panicked:\n{text}");
    }
}

/// Starts two servers on `url` with one data directory (the second finds
/// the instance in the database and unseals itself from the same dev
/// parts).
fn two_servers(data: &Path, logs: &Path, url: &str) -> [DevServer; 2] {
    let env = [("KEYLEDGER_DATABASE_URL", url)];
    let a = DevServer::start(data, &logs.join("a.err"), &env);
    let b = DevServer::start(data, &logs.join("b.err"), &env);
    [a, b]
}

/// The last lines each server printed (for a failing test).
fn server_logs(servers: &[DevServer]) -> String {
    servers
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let text = String::from_utf8_lossy(&s.output()).to_string();
            let lines: Vec<&str> = text.lines().collect();
            format!(
                "--- server {i} ---\n{}\n",
                lines[lines.len().saturating_sub(15)..].join("\n")
            )
        })
        .collect()
}

#[test]
fn two_servers_through_a_pg_auto_failover_fail_closed_and_recover_by_themselves() {
    let started = Instant::now();
    let mut formation = Formation::start();
    let setup = started.elapsed();
    let url = formation.url();
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let servers = two_servers(&data, dir.path(), &url);
    let (writer, manager) = (servers[0].token("writer"), servers[0].token("manager"));
    let key = create_root_key(&mut servers[0].conn(), &manager, "failover-key");

    let stop = AtomicBool::new(false);
    let answers = Mutex::new(Vec::new());
    let refs = [&servers[0], &servers[1]];
    let (down, promoted) = thread::scope(|s| {
        let _stop = StopOnDrop(&stop);
        s.spawn(|| load(&refs, &writer, &key, &stop, &answers));
        let t0 = Instant::now();
        wait_for("wraps through both before the failover", LIMIT, || {
            (0..2).all(|i| acks_after(&answers, i, t0) >= 10)
        });
        let (old, down) = formation.stop_primary();
        wait_for("both servers to refuse while no primary", LIMIT, || {
            (0..2).all(|i| refused_after(&answers, i, down))
        });
        formation.wait_promoted(1 - old);
        let promoted = Instant::now();
        wait_for(
            "wraps through both servers after the promotion",
            LIMIT,
            || (0..2).all(|i| acks_after(&answers, i, promoted) >= 10),
        );
        (down, promoted)
    });
    let answers = answers.into_inner().expect("answers");
    let o = std::panic::catch_unwind(|| outage(&answers, down)).unwrap_or_else(|e| {
        eprintln!("{}{}", server_logs(&servers), formation.logs());
        std::panic::resume_unwind(e)
    });
    check_after(
        dir.path(),
        &data,
        &url,
        &servers[1],
        &writer,
        &key,
        &answers,
    );
    no_panic(&servers);
    eprintln!(
        "serve through pg_auto_failover: formation up in {setup:.1?}; primary down -> \
         first 503 {:.1?}, -> promoted {:.1?}, -> first 200 again {:.1?} (server 0), \
         {:.1?} (server 1); {} wraps acknowledged, {} refused (503, each within {:.1?}); whole test {:.1?}",
        o.first_503,
        promoted.duration_since(down),
        o.first_200_again[0],
        o.first_200_again[1],
        o.acked,
        o.refused,
        o.slowest_503,
        started.elapsed()
    );
}

#[test]
fn two_servers_through_a_database_restart_fail_closed_and_recover_by_themselves() {
    let started = Instant::now();
    let cluster = Cluster::started();
    let url = cluster.url("postgres", "");
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let servers = two_servers(&data, dir.path(), &url);
    let (writer, manager) = (servers[0].token("writer"), servers[0].token("manager"));
    let key = create_root_key(&mut servers[0].conn(), &manager, "restart-key");

    let stop = AtomicBool::new(false);
    let answers = Mutex::new(Vec::new());
    let refs = [&servers[0], &servers[1]];
    let (down, up, probed) = thread::scope(|s| {
        let _stop = StopOnDrop(&stop);
        s.spawn(|| load(&refs, &writer, &key, &stop, &answers));
        let t0 = Instant::now();
        wait_for("wraps through both before the stop", LIMIT, || {
            (0..2).all(|i| acks_after(&answers, i, t0) >= 10)
        });
        cluster.stop_immediate();
        let down = Instant::now();
        wait_for(
            "both servers to refuse while the database is down",
            LIMIT,
            || (0..2).all(|i| refused_after(&answers, i, down)),
        );
        let ciphertext = answers
            .lock()
            .expect("answers")
            .iter()
            .find_map(|a| a.acked.clone())
            .expect("a wrap")
            .0;
        let probed = probe_while_down(&servers[0], &manager, &writer, &key, &ciphertext);
        cluster.start();
        let up = Instant::now();
        wait_for(
            "wraps through both servers after the restart",
            LIMIT,
            || (0..2).all(|i| acks_after(&answers, i, up) >= 10),
        );
        (down, up, probed)
    });
    let answers = answers.into_inner().expect("answers");
    let o = std::panic::catch_unwind(|| outage(&answers, down)).unwrap_or_else(|e| {
        eprintln!("{}", server_logs(&servers));
        std::panic::resume_unwind(e)
    });
    for (what, status, body, _) in &probed {
        let code = serde_json::from_str::<serde_json::Value>(body)
            .ok()
            .and_then(|j| {
                j["resources"][0]["reasons"][0]["code"]
                    .as_str()
                    .map(str::to_string)
            });
        assert_eq!(
            (*status, code.as_deref()),
            (503, Some("LEDGER_UNAVAILABLE_ERR")),
            "{what} while the database was down: {body}"
        );
    }
    check_after(
        dir.path(),
        &data,
        &url,
        &servers[0],
        &writer,
        &key,
        &answers,
    );
    no_panic(&servers);
    eprintln!(
        "serve through pg_ctl stop -m immediate + start: stop -> first 503 {:.1?}, \
         -> started {:.1?}, -> first 200 again {:.1?} (server 0), {:.1?} (server 1); \
         {} wraps acknowledged, {} refused (503, each within {:.1?}); {}; whole test {:.1?}",
        o.first_503,
        up.duration_since(down),
        o.first_200_again[0],
        o.first_200_again[1],
        o.acked,
        o.refused,
        o.slowest_503,
        probed
            .iter()
            .map(|(what, status, _, took)| format!("{what} while down: {status} in {took:.1?}"))
            .collect::<Vec<_>>()
            .join(", "),
        started.elapsed()
    );
}
