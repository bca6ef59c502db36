//! Load generator for the ledger write and verify paths, reporting ratios
//! against raw ed25519 baselines measured in the same run on all cores.
//!
//! `cargo bench --bench ledger_throughput -- [append|verify|all] [--events N]`
//!
//! - append: durable appends/s with 64 concurrent appenders through the real
//!   writer into the embedded store, vs raw ed25519 signing/s on all cores
//!   with the implementation the ledger key signs records with (AWS-LC in
//!   the default build; ed25519-dalek's figure is printed beside it).
//! - verify: `verify_bundle` records/s on an N-event bundle (default 1M; a
//!   rule-abiding life from `keyledger::life`, as `ledger generate` writes), vs
//!   raw ed25519 batch verification/s on all cores; peak RSS before and after;
//!   then `verify --policy` (the same pass plus the policy replay, which must
//!   find nothing) vs plain `verify`.
//! - postgres: durable appends/s with 64 appenders through the real writer
//!   into the PostgreSQL store (the shared writer: one transaction per
//!   batch under the head-row lock), then the same with two stores (two
//!   servers' pools) of 32 appenders each on one instance; vs the raw
//!   durable single-row `INSERT` commit rate of 16 clients on the same
//!   database, measured before and after. A throwaway database on
//!   `KEYLEDGER_BENCH_PG_URL` (default `host=127.0.0.1 port=5432
//!   user=postgres dbname=postgres`).
//! - export: SIEM export (`keyledger_export::export_log`) of an N-event
//!   rule-abiding life (default 1M) to a file in each format, vs reading
//!   the same records from the store without formatting, in the same run.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ed25519_dalek::{Signer, SigningKey};
use rayon::prelude::*;

use keyledger::ledger::{InitialAdmin, Ledger};
use keyledger::ledger_key::LedgerKey;
use keyledger::sample_events::realistic_event;
use keyledger::store::embedded::EmbeddedStore;
use keyledger::writer::WriterConfig;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let what = args
        .first()
        .map(String::as_str)
        .unwrap_or("all")
        .to_string();
    let events: u64 = args
        .iter()
        .position(|a| a == "--events")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    println!("cores: {}", rayon::current_num_threads());
    if what == "append" || what == "all" {
        append_bench();
    }
    if what == "verify" || what == "all" {
        verify_bench(events);
    }
    if what == "postgres" {
        postgres_bench();
    }
    if what == "export" {
        export_bench(events);
    }
    if what == "verify-only" {
        let bundle = args
            .iter()
            .position(|a| a == "--bundle")
            .and_then(|i| args.get(i + 1))
            .expect("--bundle DIR");
        verify_only(std::path::Path::new(bundle));
    }
}

/// Record signatures/s on all cores through the ledger key (the writer's
/// own signing path, without the writer).
fn raw_sign_rate(duration: Duration) -> f64 {
    let key = LedgerKey::from_seed("bench", &[7u8; 32]);
    let link = [1u8; 32];
    signatures_per_second(duration, || {
        std::hint::black_box(key.sign_record(std::hint::black_box(&link)));
    })
}

/// The same signatures/s through ed25519-dalek's `SigningKey::sign`.
fn raw_dalek_sign_rate(duration: Duration) -> f64 {
    let key = SigningKey::from_bytes(&[7u8; 32]);
    let message = keyledger::chain::signing_message(&[1u8; 32]);
    signatures_per_second(duration, || {
        std::hint::black_box(key.sign(std::hint::black_box(&message)));
    })
}

fn signatures_per_second(duration: Duration, sign: impl Fn() + Sync) -> f64 {
    let count = AtomicU64::new(0);
    let start = Instant::now();
    rayon::broadcast(|_| {
        let mut n = 0u64;
        while start.elapsed() < duration {
            for _ in 0..256 {
                sign();
            }
            n += 256;
        }
        count.fetch_add(n, Ordering::Relaxed);
    });
    count.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

fn raw_batch_verify_rate(duration: Duration) -> f64 {
    let key = SigningKey::from_bytes(&[7u8; 32]);
    let messages: Vec<_> = (0..4096u32)
        .map(|i| keyledger::chain::signing_message(&blake3::hash(&i.to_le_bytes()).into()))
        .collect();
    let signatures: Vec<_> = messages.iter().map(|m| key.sign(m)).collect();
    let keys = vec![key.verifying_key(); 64];
    let start = Instant::now();
    let mut total = 0u64;
    while start.elapsed() < duration {
        let ok = messages
            .par_chunks(64)
            .zip(signatures.par_chunks(64))
            .all(|(m, s)| {
                let refs: Vec<&[u8]> = m.iter().map(|x| x.as_slice()).collect();
                ed25519_dalek::verify_batch(&refs, s, &keys[..m.len()]).is_ok()
            });
        assert!(ok);
        total += messages.len() as u64;
    }
    total as f64 / start.elapsed().as_secs_f64()
}

fn new_ledger(dir: &std::path::Path) -> Ledger {
    let store = EmbeddedStore::open(dir).expect("store");
    let admin = InitialAdmin {
        admin_id: "bench-admin".into(),
        public_key: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".into(),
    };
    Ledger::create(
        &store,
        dir,
        "bench",
        &admin,
        "bench",
        WriterConfig::default(),
    )
    .expect("ledger")
}

fn append_bench() {
    const APPENDERS: usize = 64;
    const EVENTS: u64 = 200_000;
    let dir = tempfile::tempdir_in(".").expect("tempdir");
    let ledger = new_ledger(dir.path());
    let raw_before = raw_sign_rate(Duration::from_secs(2));
    let next = AtomicU64::new(0);
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..APPENDERS {
            let (ledger, next) = (&ledger, &next);
            s.spawn(move || {
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= EVENTS {
                        break;
                    }
                    ledger
                        .append(realistic_event(n, t).expect("draft"))
                        .expect("append");
                }
            });
        }
    });
    let elapsed = start.elapsed().as_secs_f64();
    let stats = ledger.writer().stats();
    let batches = stats.batches.load(Ordering::Relaxed);
    let records = stats.records.load(Ordering::Relaxed);
    ledger.shutdown();
    let raw_after = raw_sign_rate(Duration::from_secs(2));
    let raw = (raw_before + raw_after) / 2.0;
    let dalek = raw_dalek_sign_rate(Duration::from_secs(2));
    let rate = EVENTS as f64 / elapsed;
    let implementation = LedgerKey::from_seed("bench", &[7u8; 32]).signing_implementation();
    println!(
        "raw ed25519 sign ({implementation}), all cores: {raw:.0}/s (before {raw_before:.0}, after {raw_after:.0}); ed25519-dalek: {dalek:.0}/s"
    );
    println!(
        "durable appends, {APPENDERS} appenders: {rate:.0}/s over {EVENTS} events; {batches} batches (mean {:.1} records/fsync)",
        records as f64 / batches.max(1) as f64
    );
    println!("RATIO append/raw-sign = {:.3} (target >= 0.5)", rate / raw);
    println!("ratio append/raw ed25519-dalek sign = {:.3}", rate / dalek);
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn verify_bench(events: u64) {
    let dir = tempfile::tempdir_in(".").expect("tempdir");
    let store = EmbeddedStore::open(dir.path()).expect("store");
    let generate_start = Instant::now();
    // A rule-abiding life (`ledger generate`), so `verify --policy` can be
    // measured on the same bundle: the genesis record and events - 1 more.
    keyledger::life::generate(
        &store,
        dir.path(),
        "bench",
        None,
        events.saturating_sub(1),
        &mut |_| {},
    )
    .expect("generate");
    let ledger =
        Ledger::open(&store, dir.path(), "bench", WriterConfig::default()).expect("open ledger");
    let audit: &dyn keyledger::audit::AuditLog = ledger.writer();
    let checkpoint = audit.checkpoint().expect("checkpoint");
    let size = checkpoint.size;
    let bundle = dir.path().join("bundle");
    keyledger::bundle::export_bundle(audit, &checkpoint, &bundle).expect("export");
    ledger.shutdown();
    let bytes = std::fs::metadata(bundle.join("records.bin"))
        .map(|m| m.len())
        .unwrap_or(0);
    println!(
        "generated {size} events ({:.1} MiB) in {:.1}s",
        bytes as f64 / 1048576.0,
        generate_start.elapsed().as_secs_f64()
    );
    // Verify in a fresh process so its peak memory is its own.
    let status = std::process::Command::new(std::env::current_exe().expect("exe"))
        .args(["verify-only", "--bundle"])
        .arg(&bundle)
        .status()
        .expect("spawn verify");
    assert!(status.success());
}

fn verify_only(bundle: &std::path::Path) {
    let bytes = std::fs::metadata(bundle.join("records.bin"))
        .map(|m| m.len())
        .unwrap_or(0);
    let raw_before = raw_batch_verify_rate(Duration::from_secs(2));
    let rss_before = peak_rss_kib();
    let start = Instant::now();
    let report =
        keyledger::verify::verify_bundle(bundle, &Default::default(), &|_| {}).expect("verify");
    let elapsed = start.elapsed().as_secs_f64();
    assert!(report.ok(), "{:?}", report.failure);
    let size = report.records;
    let rss_after = peak_rss_kib();
    let raw_after = raw_batch_verify_rate(Duration::from_secs(2));
    let raw = (raw_before + raw_after) / 2.0;
    let rate = size as f64 / elapsed;
    println!(
        "raw ed25519 batch verify, all cores: {raw:.0}/s (before {raw_before:.0}, after {raw_after:.0})"
    );
    println!("verify: {size} records in {elapsed:.2}s = {rate:.0}/s");
    println!(
        "peak RSS before verify {rss_before} KiB, after {rss_after} KiB (bundle {:.1} MiB)",
        bytes as f64 / 1048576.0
    );
    println!(
        "RATIO verify/raw-batch-verify = {:.3} (target >= 0.8)",
        rate / raw
    );
    // `verify --policy` = the integrity pass above, then the policy replay.
    let start = Instant::now();
    let policy = keyledger::verify::verify_policy(bundle, &|_| {}).expect("policy replay");
    let replay = start.elapsed().as_secs_f64();
    assert_eq!(
        (policy.events, policy.violations),
        (size, 0),
        "the generated life breaks a rule: {:?}",
        policy.findings.first()
    );
    let with_policy = size as f64 / (elapsed + replay);
    println!(
        "verify --policy: {size} records in {:.2}s (replay {replay:.2}s) = {with_policy:.0}/s",
        elapsed + replay
    );
    println!(
        "RATIO verify-policy/verify = {:.3} (target >= 0.5)",
        with_policy / rate
    );
}

/// A throwaway database for the PostgreSQL figures, dropped at the end.
struct BenchDb {
    admin: String,
    name: String,
}

impl BenchDb {
    fn create() -> BenchDb {
        let admin = std::env::var("KEYLEDGER_BENCH_PG_URL")
            .unwrap_or_else(|_| "host=127.0.0.1 port=5432 user=postgres dbname=postgres".into());
        let name = format!("kl_bench_{}", std::process::id());
        let mut client = postgres::Client::connect(&admin, postgres::NoTls).expect("PostgreSQL");
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create database");
        BenchDb { admin, name }
    }

    fn url(&self) -> String {
        format!("{} dbname={}", self.admin, self.name)
    }
}

impl Drop for BenchDb {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(&self.admin, postgres::NoTls) {
            let _ = c.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// Durable single-row INSERT commits/s of `clients` connections (each
/// INSERT its own transaction: one WAL flush per commit, as PostgreSQL's
/// group commit allows).
fn raw_insert_rate(url: &str, clients: usize, duration: Duration) -> f64 {
    let mut setup = postgres::Client::connect(url, postgres::NoTls).expect("connect");
    setup
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS bench_rows (id bigserial PRIMARY KEY, body bytea NOT NULL)",
        )
        .expect("table");
    let count = AtomicU64::new(0);
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..clients {
            let count = &count;
            s.spawn(move || {
                let mut c = postgres::Client::connect(url, postgres::NoTls).expect("connect");
                let body = vec![7u8; 600];
                let insert = c
                    .prepare("INSERT INTO bench_rows (body) VALUES ($1)")
                    .expect("prepare");
                while start.elapsed() < duration {
                    c.execute(&insert, &[&body]).expect("insert");
                    count.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    count.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

/// `appenders` threads per writer append `events` in all through one
/// ledger per store (one store = one server's pool) on instance `bench`.
fn pg_appends(
    stores: &[keyledger_store_postgres::PostgresStore],
    dir: &std::path::Path,
    appenders: usize,
    events: u64,
) -> (f64, f64) {
    let ledgers: Vec<Ledger> = stores
        .iter()
        .map(|store| Ledger::open(store, dir, "bench", WriterConfig::default()).expect("open"))
        .collect();
    let next = AtomicU64::new(0);
    let start = Instant::now();
    std::thread::scope(|s| {
        for ledger in &ledgers {
            for t in 0..appenders {
                let next = &next;
                s.spawn(move || {
                    loop {
                        let n = next.fetch_add(1, Ordering::Relaxed);
                        if n >= events {
                            break;
                        }
                        ledger
                            .append(realistic_event(n, t).expect("draft"))
                            .expect("append");
                    }
                });
            }
        }
    });
    let elapsed = start.elapsed().as_secs_f64();
    let (mut batches, mut records, mut in_transactions) = (0, 0, 0.0);
    for ledger in ledgers {
        let stats = ledger.writer().stats();
        batches += stats.batches.load(Ordering::Relaxed);
        records += stats.records.load(Ordering::Relaxed);
        in_transactions += stats.append_seconds.snapshot().sum;
        ledger.shutdown();
    }
    println!(
        "  {} writer(s): {batches} transactions, mean {:.2} ms each (lock, others' records, signing, inserts, commit); {:.0}% of each writer's wall time in them",
        stores.len(),
        in_transactions * 1000.0 / batches.max(1) as f64,
        100.0 * in_transactions / (elapsed * stores.len() as f64),
    );
    (
        events as f64 / elapsed,
        records as f64 / batches.max(1) as f64,
    )
}

fn postgres_bench() {
    use keyledger_store_postgres::{DEFAULT_POOL_SIZE, PostgresStore};
    const EVENTS: u64 = 100_000;
    let db = BenchDb::create();
    let url = db.url();
    let dir = tempfile::tempdir_in(".").expect("tempdir");
    let first = PostgresStore::open_url(&url, DEFAULT_POOL_SIZE).expect("store");
    let admin = InitialAdmin {
        admin_id: "bench-admin".into(),
        public_key: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".into(),
    };
    Ledger::create(
        &first,
        dir.path(),
        "bench",
        &admin,
        "bench",
        WriterConfig::default(),
    )
    .expect("ledger")
    .shutdown();
    let raw_before = raw_insert_rate(&url, 16, Duration::from_secs(4));
    let (one, one_batch) = pg_appends(std::slice::from_ref(&first), dir.path(), 64, EVENTS);
    let second = PostgresStore::open_url(&url, DEFAULT_POOL_SIZE).expect("store");
    let (two, two_batch) = pg_appends(&[first, second], dir.path(), 32, EVENTS);
    let raw_after = raw_insert_rate(&url, 16, Duration::from_secs(4));
    let raw = (raw_before + raw_after) / 2.0;
    println!(
        "raw durable single-row INSERT, 16 clients: {raw:.0} commits/s (before {raw_before:.0}, after {raw_after:.0})"
    );
    println!(
        "durable appends to PostgreSQL, 64 appenders, one server: {one:.0}/s over {EVENTS} events (mean {one_batch:.1} records/transaction)"
    );
    println!(
        "durable appends to PostgreSQL, two servers x 32 appenders, one instance: {two:.0}/s (mean {two_batch:.1} records/transaction)"
    );
    println!(
        "RATIO pg-append/raw-insert = {:.2} (target >= 5)",
        one / raw
    );
    println!("ratio two-servers/one-server = {:.2}", two / one);
}

/// Records/s of `pass` over the whole log of `audit`.
fn records_per_second(size: u64, pass: impl FnOnce() -> u64) -> f64 {
    let start = Instant::now();
    let n = pass();
    assert_eq!(n, size, "every record once");
    n as f64 / start.elapsed().as_secs_f64()
}

fn export_bench(events: u64) {
    use keyledger::audit::{AuditLog, FRAME_CHUNK};
    use keyledger_export::Format;
    let dir = tempfile::tempdir_in(".").expect("tempdir");
    let store = EmbeddedStore::open(dir.path()).expect("store");
    keyledger::life::generate(
        &store,
        dir.path(),
        "bench",
        None,
        events.saturating_sub(1),
        &mut |_| {},
    )
    .expect("generate");
    let ledger =
        Ledger::open(&store, dir.path(), "bench", WriterConfig::default()).expect("open ledger");
    let audit: &dyn AuditLog = ledger.writer();
    let size = audit.size();
    let read = || {
        records_per_second(size, || {
            let mut n = 0;
            let mut seq = 0;
            while seq < size {
                let end = size.min(seq + FRAME_CHUNK);
                let records = audit.records(seq, end).expect("read");
                n += std::hint::black_box(records).len() as u64;
                seq = end;
            }
            n
        })
    };
    let read_before = read();
    println!("read {size} records without formatting: {read_before:.0}/s");
    let mut worst: f64 = f64::MAX;
    for format in [
        Format::Cadf,
        Format::Ocsf,
        Format::Cef,
        Format::Leef,
        Format::Jsonl,
    ] {
        let path = dir.path().join(format!("export.{format}"));
        let rate = records_per_second(size, || {
            let file = std::fs::File::create(&path).expect("file");
            let mut out = std::io::BufWriter::new(file);
            let n = keyledger_export::export_log(audit, format, 0, &mut out).expect("export");
            let file = out.into_inner().expect("flush");
            file.sync_all().expect("fsync");
            n
        });
        let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let _ = std::fs::remove_file(&path);
        // The same without the file: what formatting alone costs.
        let formatted = records_per_second(size, || {
            keyledger_export::export_log(audit, format, 0, &mut std::io::sink()).expect("export")
        });
        println!(
            "export {format}: {rate:.0}/s to a file ({:.0} MiB, fsynced), {formatted:.0}/s formatted only; ratio to reading = {:.3}",
            bytes as f64 / 1048576.0,
            rate / read_before
        );
        worst = worst.min(rate);
    }
    let read_after = read();
    let read_mean = (read_before + read_after) / 2.0;
    println!("read again: {read_after:.0}/s");
    println!(
        "RATIO slowest export / read (mean of both reads) = {:.3} (target >= 0.5)",
        worst / read_mean
    );
    ledger.shutdown();
}
