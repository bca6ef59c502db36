//! Load generator for the REST API: throughput and latency of wrap against
//! `/health` on the same server, measured in the same run.
//!
//! `cargo bench --bench rest_load -- [--secs N] [--conns 64] [--threads 2]
//! [--workers W]`
//!
//! Starts `keyledger serve --dev` (this profile's binary) on a fresh data
//! directory and a free port, creates a root key, then drives `--conns`
//! keep-alive HTTP/1.1 connections from `--threads` client threads (like
//! `wrk -t2 -c64`) for `--secs` each: `/health`, then wrap of a random
//! 32-byte plaintext (every wrap is an individually signed, durable
//! `key.wrapped` event), then `/health` again. Reports req/s, p50/p90/p99
//! and the wrap / health ratio (health averaged over both phases), and
//! checks the log grew by exactly the number of wraps answered 200.
//!
//! `--kmip-peer ADDR --kmip-key UID` measures a peer instead, with the same
//! connections, threads and phase length: KMIP 2.1 Encrypt (TTLV as JSON,
//! `POST /kmip/2_1`, as Cosmian KMS serves it) of a fresh random 32-byte
//! plaintext under the peer's key `UID`; no keyledger server is started.
//! `scripts/bench-cosmian` drives both in one run.
//!
//! `--postgres` adds, in the same run: wrap on a server on PostgreSQL
//! (`serve --dev --database-url`, a throwaway database on
//! `KEYLEDGER_BENCH_PG_URL`, default `host=127.0.0.1 port=5432 user=postgres
//! dbname=postgres`), then on two such servers sharing that database and
//! data directory (the connections split between them), then wrap on the
//! embedded server again; it reports PostgreSQL / embedded (mean of both
//! embedded phases) and two servers / one, and checks the database's log
//! grew by exactly the wraps answered 200 in each PostgreSQL phase.
//!
//! `--sinks` adds, in the same run: two SIEM sinks set on the server by a
//! signed `export.set_sinks` (a CEF file sink and a syslog sink to a
//! throwaway rsyslogd on loopback, `tests/common/receivers.rs`), wrap with
//! them forwarding, then the sinks removed and wrap again; it reports
//! wrap with sinks / without (mean of the phase before and the one after),
//! the sinks' lag when the phase ended and how long they took to drain.

#[allow(dead_code)]
#[path = "../tests/common/http.rs"]
mod http;
#[path = "../tests/common/receivers.rs"]
mod receivers;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const INSTANCE: &str = "dev-instance";
/// What a successful KMIP Encrypt answer (TTLV as JSON) carries.
const ENCRYPT_RESPONSE: &[u8] = b"\"EncryptResponse\"";

struct Args {
    secs: u64,
    conns: usize,
    threads: usize,
    workers: Option<String>,
    /// `--kmip-peer ADDR --kmip-key UID`: measure that peer's Encrypt instead.
    kmip_peer: Option<(String, String)>,
    /// `--postgres`: also measure servers on PostgreSQL (see the crate docs).
    postgres: bool,
    /// `--sinks`: also measure wrap with two SIEM sinks attached.
    sinks: bool,
}

fn args() -> Args {
    let raw: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let value = |name: &str| {
        raw.iter()
            .position(|a| a == name)
            .and_then(|i| raw.get(i + 1))
            .cloned()
    };
    let num = |name: &str, default: u64| {
        value(name)
            .map(|v| {
                v.parse()
                    .unwrap_or_else(|_| panic!("{name} takes a number"))
            })
            .unwrap_or(default)
    };
    // `cargo test --all-targets` runs this without `--bench`: a short smoke
    // run (it still checks the log grew by exactly the wraps answered).
    let benching = std::env::args().any(|a| a == "--bench");
    Args {
        secs: num("--secs", if benching { 10 } else { 1 }),
        conns: usize::try_from(num("--conns", 64)).expect("conns"),
        threads: usize::try_from(num("--threads", 2)).expect("threads"),
        workers: value("--workers"),
        kmip_peer: value("--kmip-peer").map(|addr| {
            let key = value("--kmip-key").expect("--kmip-peer needs --kmip-key UID");
            (addr, key)
        }),
        postgres: raw.iter().any(|a| a == "--postgres"),
        sinks: raw.iter().any(|a| a == "--sinks"),
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Health,
    Wrap,
    /// KMIP Encrypt on a peer KMS (`--kmip-peer`).
    KmipEncrypt,
}

struct Target {
    addr: String,
    token: String,
    key: String,
}

#[derive(Default)]
struct Stats {
    ok: u64,
    other: u64,
    latencies_us: Vec<u32>,
    elapsed: Duration,
}

impl Stats {
    fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }

    fn pct(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        let i = ((self.latencies_us.len() - 1) as f64 * p).round() as usize;
        f64::from(self.latencies_us[i]) / 1000.0
    }
}

/// A fresh pseudo-random 32-byte plaintext (xorshift).
fn plaintext(rng: &mut u64) -> [u8; 32] {
    let mut dek = [0u8; 32];
    for chunk in dek.chunks_mut(8) {
        *rng ^= *rng << 13;
        *rng ^= *rng >> 7;
        *rng ^= *rng << 17;
        chunk.copy_from_slice(&rng.to_le_bytes());
    }
    dek
}

fn request_bytes(kind: Kind, t: &Target, rng: &mut u64) -> Vec<u8> {
    match kind {
        Kind::Health => b"GET /health HTTP/1.1\r\nhost: bench\r\n\r\n".to_vec(),
        Kind::KmipEncrypt => {
            // TTLV as JSON; a ByteString is upper-case hex.
            let data: String = plaintext(rng).iter().map(|b| format!("{b:02X}")).collect();
            let body = format!(
                r#"{{"tag":"Encrypt","value":[{{"tag":"UniqueIdentifier","type":"TextString","value":"{}"}},{{"tag":"Data","type":"ByteString","value":"{data}"}}]}}"#,
                t.key
            );
            format!(
                "POST /kmip/2_1 HTTP/1.1\r\nhost: bench\r\n\
                 content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            )
            .into_bytes()
        }
        Kind::Wrap => {
            let dek = plaintext(rng);
            let body = format!("{{\"plaintext\":\"{}\"}}", STANDARD.encode(dek));
            format!(
                "POST /api/v2/keys/{}/actions/wrap HTTP/1.1\r\nhost: bench\r\n\
                 authorization: Bearer {}\r\nbluemix-instance: {INSTANCE}\r\n\
                 content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                t.key,
                t.token,
                body.len()
            )
            .into_bytes()
        }
    }
}

/// The status and total length (head + body) of the response at the start
/// of `buf`, once its head is complete; no allocation.
fn response_len(buf: &[u8]) -> Option<(u16, usize)> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let head_len = match response.parse(buf).expect("response head") {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial => return None,
    };
    let content_length = response
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .map(|h| {
            std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok())
                .expect("content-length")
        })
        .unwrap_or(0);
    Some((response.code.expect("status"), head_len + content_length))
}

/// One connection's loop until `end`.
async fn connection(
    kind: Kind,
    target: std::sync::Arc<Target>,
    start: tokio::time::Instant,
    end: tokio::time::Instant,
    seed: u64,
) -> Stats {
    let mut stream = TcpStream::connect(&target.addr).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let mut stats = Stats::default();
    let mut rng = seed | 1;
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = vec![0u8; 16 * 1024];
    tokio::time::sleep_until(start).await;
    while tokio::time::Instant::now() < end {
        let req = request_bytes(kind, &target, &mut rng);
        let sent = Instant::now();
        stream.write_all(&req).await.expect("write");
        let status = loop {
            if let Some((status, total)) = response_len(&buf)
                && buf.len() >= total
            {
                // A KMIP failure could come back as a 200 carrying an error
                // structure: only an EncryptResponse counts.
                let answered = !matches!(kind, Kind::KmipEncrypt)
                    || buf[..total]
                        .windows(ENCRYPT_RESPONSE.len())
                        .any(|w| w == ENCRYPT_RESPONSE);
                buf.drain(..total);
                break if answered { status } else { 0 };
            }
            let n = stream.read(&mut chunk).await.expect("read");
            assert!(n > 0, "server closed the connection");
            buf.extend_from_slice(&chunk[..n]);
        };
        let us = u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX);
        if status == 200 {
            stats.ok += 1;
            stats.latencies_us.push(us);
        } else {
            stats.other += 1;
        }
    }
    stats
}

/// Runs `conns` connections on `threads` client threads for `secs`.
fn run(kind: Kind, target: &std::sync::Arc<Target>, a: &Args) -> Stats {
    run_on(kind, std::slice::from_ref(target), a)
}

/// [`run`] with the connections spread over `targets` (several servers).
fn run_on(kind: Kind, targets: &[std::sync::Arc<Target>], a: &Args) -> Stats {
    let per_thread: Vec<usize> = (0..a.threads)
        .map(|i| a.conns / a.threads + usize::from(i < a.conns % a.threads))
        .collect();
    let wall = Instant::now() + Duration::from_millis(300);
    let threads: Vec<_> = per_thread
        .into_iter()
        .enumerate()
        .map(|(ti, n)| {
            let targets = targets.to_vec();
            let secs = a.secs;
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                rt.block_on(async move {
                    let start = tokio::time::Instant::from_std(wall);
                    let end = start + Duration::from_secs(secs);
                    let mut set = tokio::task::JoinSet::new();
                    for ci in 0..n {
                        let seed = 0x9e37_79b9_7f4a_7c15
                            ^ ((ti * 1000 + ci) as u64).wrapping_mul(0x1000_0001);
                        let target = targets[(ti + ci) % targets.len()].clone();
                        set.spawn(connection(kind, target, start, end, seed));
                    }
                    let mut all = Stats::default();
                    while let Some(s) = set.join_next().await {
                        let s = s.expect("connection task");
                        all.ok += s.ok;
                        all.other += s.other;
                        all.latencies_us.extend(s.latencies_us);
                    }
                    all
                })
            })
        })
        .collect();
    let mut all = Stats::default();
    for t in threads {
        let s = t.join().expect("client thread");
        all.ok += s.ok;
        all.other += s.other;
        all.latencies_us.extend(s.latencies_us);
    }
    all.elapsed = wall.elapsed();
    all.latencies_us.sort_unstable();
    all
}

// The child is returned to `main`, which terminates and waits for it.
#[allow(clippy::zombie_processes)]
/// Starts the server; returns it, its API address and the address its
/// `/metrics` is served on (the operations listener; an older build given
/// by KEYLEDGER_BENCH_BIN serves metrics on the API address).
fn start_server(data: &Path, log: &Path, workers: Option<&str>) -> (Child, String, String) {
    start_server_on(data, log, workers, None)
}

// The child is returned to the caller, which terminates and waits for it.
#[allow(clippy::zombie_processes)]
/// [`start_server`] with the instance logs and key material in the
/// PostgreSQL database at `database_url`.
fn start_server_on(
    data: &Path,
    log: &Path,
    workers: Option<&str>,
    database_url: Option<&str>,
) -> (Child, String, String) {
    // KEYLEDGER_BENCH_BIN: another build of the server (A/B comparisons in one run).
    let bin = std::env::var_os("KEYLEDGER_BENCH_BIN").map_or_else(
        || env!("CARGO_BIN_EXE_keyledger").into(),
        std::path::PathBuf::from,
    );
    let mut cmd = Command::new(bin);
    cmd.args(["serve", "--dev", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("log file"));
    if let Some(w) = workers {
        cmd.env("KEYLEDGER_WORKERS", w);
    }
    if let Some(url) = database_url {
        cmd.env("KEYLEDGER_DATABASE_URL", url);
    }
    let mut child = cmd.spawn().expect("spawn keyledger serve");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let listening = |what: &str| {
            text.lines().filter(|l| l.starts_with(what)).find_map(|l| {
                l.split_once(" on http://")
                    .map(|(_, a)| a.trim().to_string())
            })
        };
        if let Some(addr) = listening("keyledger: serving ") {
            // The operations line follows the serving line at once when
            // the build has one; an older build never prints it.
            let wait = Instant::now() + Duration::from_secs(2);
            let ops = loop {
                let text = std::fs::read_to_string(log).unwrap_or_default();
                let ops = text
                    .lines()
                    .filter(|l| l.starts_with("keyledger: operations "))
                    .find_map(|l| {
                        l.split_once(" on http://")
                            .map(|(_, a)| a.trim().to_string())
                    });
                match ops {
                    Some(ops) => break ops,
                    None if Instant::now() >= wait => break addr.clone(),
                    None => std::thread::sleep(Duration::from_millis(10)),
                }
            };
            return (child, addr, ops);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("server did not start: {text}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The writer's figures for the instance, from `/metrics`.
#[derive(Clone, Copy)]
struct WriterFigures {
    records: f64,
    batches: f64,
    append_seconds: f64,
}

fn writer_figures(addr: &str) -> WriterFigures {
    let mut conn = http::Conn::connect(addr).expect("connect");
    let res = conn.request("GET", "/metrics", &[], None).expect("metrics");
    let text = String::from_utf8(res.body).expect("text");
    let value = |series: &str| {
        let prefix = format!("{series}{{instance=\"{INSTANCE}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or_else(|| panic!("{series} in /metrics"))
    };
    WriterFigures {
        records: value("keyledger_log_records"),
        batches: value("keyledger_append_batch_records_count"),
        append_seconds: value("keyledger_append_duration_seconds_sum"),
    }
}

fn create_key(addr: &str, token: &str) -> String {
    let mut conn = http::Conn::connect(addr).expect("connect");
    let body = br#"{"metadata":{"collectionType":"application/vnd.ibm.kms.key+json","collectionTotal":1},"resources":[{"type":"application/vnd.ibm.kms.key+json","name":"bench-root","extractable":false}]}"#;
    let auth = format!("Bearer {token}");
    let res = conn
        .request(
            "POST",
            "/api/v2/keys",
            &[("authorization", &auth), ("bluemix-instance", INSTANCE)],
            Some(body),
        )
        .expect("create");
    assert_eq!(res.status(), 201, "{}", String::from_utf8_lossy(&res.body));
    res.json()["resources"][0]["id"]
        .as_str()
        .expect("id")
        .to_string()
}

fn line(name: &str, s: &Stats) {
    println!(
        "{name:<12} {:>10.0} req/s  ok {:>8}  other {:>3}  p50 {:>6.2} ms  p90 {:>6.2} ms  p99 {:>6.2} ms  max {:>7.2} ms",
        s.rate(),
        s.ok,
        s.other,
        s.pct(0.50),
        s.pct(0.90),
        s.pct(0.99),
        s.latencies_us
            .last()
            .map_or(f64::NAN, |m| f64::from(*m) / 1000.0),
    );
}

/// Measures the peer's KMIP Encrypt (`--kmip-peer`); starts no server.
fn measure_kmip_peer(a: &Args, addr: &str, key: &str) {
    let target = std::sync::Arc::new(Target {
        addr: addr.to_string(),
        token: String::new(),
        key: key.to_string(),
    });
    println!(
        "rest_load: peer KMIP Encrypt of 32 bytes at {addr}, {} connections on {} client threads, {} s",
        a.conns, a.threads, a.secs
    );
    let encrypt = run(Kind::KmipEncrypt, &target, a);
    line("peer-encrypt", &encrypt);
    assert_eq!(encrypt.other, 0, "the peer answered non-200");
}

fn main() {
    let a = args();
    if let Some((addr, key)) = &a.kmip_peer {
        measure_kmip_peer(&a, addr, key);
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let log = dir.path().join("server.log");
    let (mut child, addr, ops_addr) = start_server(&data, &log, a.workers.as_deref());
    let creds: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(data.join("dev-credentials.json")).expect("credentials"),
    )
    .expect("json");
    let token = creds["tokens"]["writer"]
        .as_str()
        .expect("writer")
        .to_string();
    let key = create_key(&addr, &token);
    let target = std::sync::Arc::new(Target { addr, token, key });
    println!(
        "rest_load: {} connections on {} client threads, {} s per phase, server workers {}",
        a.conns,
        a.threads,
        a.secs,
        a.workers.as_deref().unwrap_or("default (one per core)")
    );

    let health1 = run(Kind::Health, &target, &a);
    line("health", &health1);
    let before = writer_figures(&ops_addr);
    let wrap = run(Kind::Wrap, &target, &a);
    let after = writer_figures(&ops_addr);
    line("wrap", &wrap);
    let health2 = run(Kind::Health, &target, &a);
    line("health", &health2);

    let health = (health1.rate() + health2.rate()) / 2.0;
    println!(
        "ratio wrap / health (mean of both health phases): {:.3}  (target >= 0.35; wrap p99 {:.2} ms, target <= 10 ms)",
        wrap.rate() / health,
        wrap.pct(0.99)
    );
    let grew = (after.records - before.records) as u64;
    let batches = after.batches - before.batches;
    println!(
        "log grew by {grew} records for {} wraps answered 200, in {batches} durable batches \
         ({:.1} records and {:.3} ms of write + fsync per batch)",
        wrap.ok,
        grew as f64 / batches.max(1.0),
        (after.append_seconds - before.append_seconds) * 1000.0 / batches.max(1.0),
    );

    if a.sinks {
        sink_phases(&a, &target, &data, &ops_addr, wrap.rate());
    }

    if a.postgres {
        let (one, two) = postgres_phases(&a, dir.path());
        let again = run(Kind::Wrap, &target, &a);
        line("wrap", &again);
        let embedded = (wrap.rate() + again.rate()) / 2.0;
        println!(
            "RATIO wrap on PostgreSQL / embedded = {:.3} (target >= 0.5; embedded {embedded:.0} req/s, mean of {:.0} and {:.0})",
            one / embedded,
            wrap.rate(),
            again.rate()
        );
        println!(
            "RATIO two servers / one on PostgreSQL = {:.3} (target >= 1)",
            two / one
        );
    }

    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().expect("wait");
    println!("server exit: {status}");
    assert_eq!(grew, wrap.ok, "every wrap must make exactly one event");
    assert_eq!(
        wrap.other + health1.other + health2.other,
        0,
        "non-200 answers"
    );
}

/// The instance's log size in the database.
fn pg_log_size(url: &str) -> u64 {
    let mut c = postgres::Client::connect(url, postgres::NoTls).expect("connect");
    let row = c
        .query_one("SELECT size FROM instances WHERE name = $1", &[&INSTANCE])
        .expect("size");
    u64::try_from(row.get::<_, i64>(0)).expect("size")
}

/// Wrap on one server on PostgreSQL, then on two sharing its database and
/// data directory; answers both wrap rates.
fn postgres_phases(a: &Args, dir: &Path) -> (f64, f64) {
    let admin = std::env::var("KEYLEDGER_BENCH_PG_URL")
        .unwrap_or_else(|_| "host=127.0.0.1 port=5432 user=postgres dbname=postgres".into());
    let name = format!("kl_bench_rest_{}", std::process::id());
    let mut c = postgres::Client::connect(&admin, postgres::NoTls).expect("PostgreSQL");
    c.batch_execute(&format!("CREATE DATABASE {name}"))
        .expect("create database");
    let url = format!("{admin} dbname={name}");
    let data = dir.join("data-pg");
    let stop = |child: &mut Child| {
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        child.wait().expect("wait")
    };
    let (mut first, addr, _) = start_server_on(
        &data,
        &dir.join("pg-a.log"),
        a.workers.as_deref(),
        Some(&url),
    );
    let creds: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(data.join("dev-credentials.json")).expect("credentials"),
    )
    .expect("json");
    let token = creds["tokens"]["writer"]
        .as_str()
        .expect("writer")
        .to_string();
    let key = create_key(&addr, &token);
    let a_target = std::sync::Arc::new(Target {
        addr,
        token: token.clone(),
        key: key.clone(),
    });
    let before = pg_log_size(&url);
    let one = run(Kind::Wrap, &a_target, a);
    line("wrap-pg", &one);
    let after_one = pg_log_size(&url);
    let (mut second, addr_b, _) = start_server_on(
        &data,
        &dir.join("pg-b.log"),
        a.workers.as_deref(),
        Some(&url),
    );
    let b_target = std::sync::Arc::new(Target {
        addr: addr_b,
        token,
        key,
    });
    let start_two = pg_log_size(&url);
    let two = run_on(Kind::Wrap, &[a_target, b_target], a);
    line("wrap-pg-2", &two);
    let after_two = pg_log_size(&url);
    println!(
        "pg servers exit: {} / {}",
        stop(&mut first),
        stop(&mut second)
    );
    drop(c);
    if let Ok(mut c) = postgres::Client::connect(&admin, postgres::NoTls) {
        let _ = c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
    }
    assert_eq!(
        after_one - before,
        one.ok,
        "one event per wrap (one server)"
    );
    assert_eq!(
        after_two - start_two,
        two.ok,
        "one event per wrap (two servers)"
    );
    assert_eq!(one.other + two.other, 0, "non-200 answers on PostgreSQL");
    (one.rate(), two.rate())
}

/// Sets the dev instance's SIEM sinks by a command its administrator signs.
fn set_sinks(addr: &str, data: &Path, sinks: serde_json::Value) {
    use keyledger::governance::{AdminCommand, CommandDocument, SignedCommand};
    let admin = keyledger::admin_key::read(&data.join("dev").join("admin.key")).expect("admin key");
    let command = AdminCommand::SetSinks {
        sinks: serde_json::from_value(sinks).expect("sinks"),
    };
    let expires = chrono::Utc::now() + chrono::Duration::minutes(10);
    let document = CommandDocument::new(INSTANCE, command, expires).expect("document");
    let mut signed = SignedCommand::unsigned(&document).expect("unsigned");
    signed.sign(&admin);
    let body = serde_json::to_vec(&signed).expect("json");
    let res = http::Conn::connect(addr)
        .expect("connect")
        .request(
            "POST",
            "/api/v2/admin/commands",
            &[("bluemix-instance", INSTANCE)],
            Some(&body),
        )
        .expect("submit");
    assert_eq!(res.status(), 200, "{}", String::from_utf8_lossy(&res.body));
}

/// The sum of every sink's lag on the operations listener.
fn sinks_lag(ops_addr: &str) -> u64 {
    let mut conn = http::Conn::connect(ops_addr).expect("connect");
    let res = conn.request("GET", "/metrics", &[], None).expect("metrics");
    String::from_utf8(res.body)
        .expect("text")
        .lines()
        .filter(|l| l.starts_with("keyledger_sink_lag_records{"))
        .filter_map(|l| l.rsplit(' ').next().and_then(|v| v.parse::<u64>().ok()))
        .sum()
}

/// Wrap with two sinks forwarding, then without them again, twice: a CEF
/// file and syslog to rsyslogd (whose own CPU shares these cores), then
/// two CEF files (no receiver process); prints wrap with / without.
fn sink_phases(
    a: &Args,
    target: &std::sync::Arc<Target>,
    data: &Path,
    ops_addr: &str,
    before: f64,
) {
    let syslog = receivers::Rsyslog::start(None);
    let file = |name: &str| {
        serde_json::json!({"name": name, "format": "cef",
            "target": {"kind": "file", "file": format!("{name}.cef"), "max_bytes": 1073741824, "keep": 2}})
    };
    let variants = [
        (
            "file + syslog to rsyslogd",
            serde_json::json!([file("file"), {"name": "syslog", "format": "cef",
                "target": {"kind": "syslog", "address": syslog.addr()}}]),
        ),
        (
            "two files",
            serde_json::json!([file("file-a"), file("file-b")]),
        ),
    ];
    // Both sinks deliver the log's backlog before a phase starts.
    let drained = |what: &str| {
        let start = Instant::now();
        while sinks_lag(ops_addr) > 0 || start.elapsed() < Duration::from_millis(300) {
            assert!(
                start.elapsed() < Duration::from_secs(600),
                "sinks never drained {what}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        start.elapsed()
    };
    let mut before = before;
    for (name, sinks) in variants {
        set_sinks(&target.addr, data, sinks);
        drained("the backlog");
        let with = run(Kind::Wrap, target, a);
        line("wrap-sinks", &with);
        let lag = sinks_lag(ops_addr);
        let drain = drained("after the phase");
        set_sinks(&target.addr, data, serde_json::json!([]));
        let after = run(Kind::Wrap, target, a);
        line("wrap", &after);
        let without = (before + after.rate()) / 2.0;
        println!(
            "RATIO wrap with two sinks ({name}) / without = {:.3} (target >= 0.9; without {without:.0} req/s, mean of {before:.0} and {:.0}); \
             lag at the end of the phase {lag} records, drained in {:.2} s",
            with.rate() / without,
            after.rate(),
            drain.as_secs_f64()
        );
        assert_eq!(with.other + after.other, 0, "non-200 answers with sinks");
        before = after.rate();
    }
    println!("rsyslogd received {} lines", syslog.lines().len());
}
