//! The PostgreSQL store when its database goes away and comes back, and
//! TLS to the database, against throwaway clusters (tests/cluster):
//!
//! - a pg_auto_failover formation (monitor, primary, synchronous
//!   secondary) whose primary is stopped while appenders run: appends fail
//!   while there is no primary, the same store reconnects to the promoted
//!   node through its multi-host URL, and every acknowledged append is in
//!   the log, on one gap-free, fork-free chain whose tree root matches;
//! - one cluster stopped with `pg_ctl stop -m immediate` and started again:
//!   the same properties; and a pooled connection that died while idle is
//!   replaced at checkout, not handed out; and the key-material store says
//!   `Unavailable` (a retryable 503 in the server), not `Backend`, while
//!   the database is down;
//! - `sslmode=require|verify-ca|verify-full` with a CA made here, a wrong
//!   CA and a wrong host name refused, no TLS without `sslmode`.
//!
//! Needs PostgreSQL 15 and pg_auto_failover (scripts/postgres-setup,
//! scripts/pg-auto-failover-setup); never touches the server on 5432.

mod cluster;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use cluster::autofailover::Formation;
use cluster::{Cluster, wait_for};
use keyledger_core::chain::GENESIS_PREV;
use keyledger_core::merkle::{self, Hash, MemoryNodes};
use keyledger_kms::conformance::material_store::{INST, KEY, material};
use keyledger_kms::material::{KeyMaterialStore, MaterialError};
use keyledger_ledger::conformance::batch;
use keyledger_ledger::store::{
    ChainHead, EventStore, InstanceLog, LogNodes, SealedRecord, StoreError, check_sealed,
};
use keyledger_store_postgres::{OpenError, PostgresLog, PostgresStore};

/// Connections per store in these tests.
const POOL: u32 = 4;

/// An append that returned `Ok`: the head it was built on and its records.
type Acked = (ChainHead, Vec<SealedRecord>);

/// What one appender saw.
#[derive(Default)]
struct Seen {
    acked: Vec<(Instant, Acked)>,
    errors: Vec<(Instant, String)>,
}

/// Runs one appender per log until `stop`: each appends batches of 1-3
/// chained records on the head it last saw, retrying after a lost race
/// (`Conflict`) and after errors.
fn appenders(logs: &[Arc<PostgresLog>], stop: &AtomicBool) -> Vec<Seen> {
    thread::scope(|s| {
        let handles: Vec<_> = logs
            .iter()
            .enumerate()
            .map(|(i, log)| {
                s.spawn(move || {
                    let mut seen = Seen::default();
                    let mut n = i as u64;
                    while !stop.load(Ordering::Relaxed) {
                        n += 1;
                        let head = log.head();
                        let b = batch(log.instance(), head, 1 + n % 3);
                        match log.append(&b) {
                            Ok(()) => seen.acked.push((Instant::now(), (head, b))),
                            Err(StoreError::Conflict { .. }) => {}
                            Err(e) => {
                                seen.errors.push((Instant::now(), e.to_string()));
                                thread::sleep(Duration::from_millis(50));
                            }
                        }
                        thread::sleep(Duration::from_millis(5));
                    }
                    seen
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("appender"))
            .collect()
    })
}

/// Acknowledged appends so far, over all appenders (for waiting).
struct Progress(Vec<Arc<PostgresLog>>);

impl Progress {
    fn size(&self) -> u64 {
        self.0.iter().map(|l| l.head().size).max().unwrap_or(0)
    }
}

/// Checks what the store holds after an outage: every acknowledged batch
/// at its place, the whole log one chain from genesis (seq and links, no
/// gap, no fork), the tree root equal to one recomputed from the records;
/// then that `2 * POOL` appends in a row through the same store succeed
/// (no dead pooled connection is handed out). Returns the log's size and
/// how many records were acknowledged.
fn check_log(store: &PostgresStore, instance: &str, seen: &[Seen]) -> (u64, u64) {
    let log = store
        .open_log(instance)
        .expect("open the log after the outage");
    let head = log.head();
    let records = log.read(0, head.size).expect("read the whole log");
    let mut prev = GENESIS_PREV;
    let mut sealed = Vec::new();
    for (seq, r) in (0..).zip(records) {
        let s = SealedRecord::new(seq, r);
        check_sealed(&s, seq, &prev).unwrap_or_else(|e| panic!("chain broken at {seq}: {e}"));
        prev = *s.link();
        sealed.push(s);
    }
    assert_eq!(head.link, prev, "the head is the link of the last record");
    let mut acked_records = 0u64;
    for (_, (before, b)) in seen.iter().flat_map(|s| &s.acked) {
        let start = before.size as usize;
        assert!(
            start + b.len() <= sealed.len(),
            "acknowledged batch at {start} is missing (log size {})",
            sealed.len()
        );
        for (i, r) in b.iter().enumerate() {
            assert_eq!(
                sealed[start + i].record(),
                r.record(),
                "acknowledged record {} differs from the stored one",
                start + i
            );
        }
        acked_records += b.len() as u64;
    }
    let leaves: Vec<Hash> = sealed.iter().map(|s| *s.leaf()).collect();
    let (_, frontier) = MemoryNodes::from_leaves(leaves.iter().copied()).expect("reference tree");
    assert_eq!(
        merkle::root_at(&LogNodes(log.as_ref()), head.size).expect("stored root"),
        frontier.root(),
        "tree root"
    );
    for _ in 0..2 * POOL {
        let b = batch(instance, log.head(), 1);
        log.append(&b)
            .expect("appends after recovery succeed on every connection");
    }
    (head.size, acked_records)
}

/// The first acknowledged append after `t`, over all appenders.
fn first_ack_after(seen: &[Seen], t: Instant) -> Option<Instant> {
    seen.iter()
        .flat_map(|s| s.acked.iter().map(|(at, _)| *at))
        .filter(|at| *at > t)
        .min()
}

/// Errors other appenders saw after their first acknowledged append that
/// followed `recovered` (there must be none: the pool recovered).
fn errors_after_recovery(seen: &[Seen], recovered: Instant) -> Vec<String> {
    seen.iter()
        .flat_map(|s| {
            let first_ok = s.acked.iter().map(|(at, _)| *at).find(|at| *at > recovered);
            s.errors
                .iter()
                .filter(move |(at, _)| first_ok.is_some_and(|ok| *at > ok))
                .map(|(_, e)| e.clone())
        })
        .collect()
}

#[test]
fn pg_auto_failover_primary_stopped_loses_no_acknowledged_append() {
    let started = Instant::now();
    let mut formation = Formation::start();
    let setup = started.elapsed();
    let url = formation.url();
    let store = PostgresStore::open_url(&url, POOL).expect("open through the multi-host URL");
    store.create_log("ha").expect("create instance");
    let logs: Vec<_> = (0..2)
        .map(|_| store.open_log("ha").expect("open"))
        .collect();
    let probe = store.open_log("ha").expect("open");
    let progress = Progress(logs.clone());
    let stop = AtomicBool::new(false);

    let (seen, down, probe_result, promoted_at) = thread::scope(|s| {
        let runner = s.spawn(|| appenders(&logs, &stop));
        wait_for(
            "appends before the failover",
            Duration::from_secs(60),
            || progress.size() >= 20,
        );
        let (old, down) = formation.stop_primary();
        // No primary now: the monitor waits at least DEMOTE_TIMEOUT before
        // promoting, and a checkout waits 2 x connect_timeout=2s at most.
        let probe_result = probe.append(&batch("ha", probe.head(), 1));
        formation.wait_promoted(1 - old);
        let promoted_at = Instant::now();
        let size_at_promotion = progress.size();
        wait_for(
            "appends after the failover",
            Duration::from_secs(60),
            || progress.size() >= size_at_promotion + 20,
        );
        stop.store(true, Ordering::Relaxed);
        let seen = runner.join().expect("appenders");
        (seen, down, probe_result, promoted_at)
    });

    assert!(
        probe_result.is_err(),
        "an append with no primary must fail, not be acknowledged"
    );
    let errors: usize = seen.iter().map(|s| s.errors.len()).sum();
    assert!(
        errors > 0,
        "appenders saw no error while there was no primary"
    );
    let recovered = first_ack_after(&seen, down).expect("appends resumed after the failover");
    let stray = errors_after_recovery(&seen, recovered);
    assert!(
        stray.is_empty(),
        "errors after the store recovered: {stray:?}\n{}",
        formation.logs()
    );
    let (size, acked) = check_log(&store, "ha", &seen);
    eprintln!(
        "pg_auto_failover: formation up in {setup:.1?}; primary down -> promoted {:.1?}, \
         -> first acknowledged append {:.1?}; {errors} failed appends while down; \
         {acked} acknowledged records, {size} stored; whole test {:.1?}",
        promoted_at.duration_since(down),
        recovered.duration_since(down),
        started.elapsed()
    );
    assert!(
        probe_result
            .err()
            .is_some_and(|e| matches!(e, StoreError::Backend(_))),
        "a database outage is a backend error"
    );
}

#[test]
fn cluster_stopped_immediately_and_restarted_loses_no_acknowledged_append() {
    let started = Instant::now();
    let cluster = Cluster::started();
    let store =
        PostgresStore::open_url(&cluster.url("postgres", ""), POOL).expect("open the store");
    store.create_log("restart").expect("create instance");
    let logs: Vec<_> = (0..2)
        .map(|_| store.open_log("restart").expect("open"))
        .collect();
    let probe = store.open_log("restart").expect("open");
    let progress = Progress(logs.clone());
    let stop = AtomicBool::new(false);

    let (seen, down, up, probe_error, head_while_down) = thread::scope(|s| {
        let runner = s.spawn(|| appenders(&logs, &stop));
        wait_for("appends before the stop", Duration::from_secs(60), || {
            progress.size() >= 20
        });
        cluster.stop_immediate();
        let down = Instant::now();
        let head_before = probe.head();
        let probe_error = probe
            .append(&batch("restart", head_before, 1))
            .expect_err("an append while the database is down must fail");
        // Leave the appenders facing the outage for a moment.
        thread::sleep(Duration::from_secs(2));
        let head_while_down = (head_before, probe.head());
        cluster.start();
        let up = Instant::now();
        let size_at_restart = progress.size();
        wait_for("appends after the restart", Duration::from_secs(60), || {
            progress.size() >= size_at_restart + 20
        });
        stop.store(true, Ordering::Relaxed);
        let seen = runner.join().expect("appenders");
        (seen, down, up, probe_error, head_while_down)
    });

    assert!(
        matches!(probe_error, StoreError::Backend(_)),
        "{probe_error:?}"
    );
    assert_eq!(
        head_while_down.0, head_while_down.1,
        "a failed append does not move the head"
    );
    let errors: usize = seen.iter().map(|s| s.errors.len()).sum();
    assert!(
        errors > 0,
        "appenders saw no error while the database was down"
    );
    let recovered = first_ack_after(&seen, up).expect("appends resumed after the restart");
    let stray = errors_after_recovery(&seen, recovered);
    assert!(
        stray.is_empty(),
        "errors after the store recovered: {stray:?}"
    );
    let (size, acked) = check_log(&store, "restart", &seen);
    eprintln!(
        "pg_ctl stop -m immediate: down {:.1?}; restart -> first acknowledged append {:.1?}; \
         {errors} failed appends while down; {acked} acknowledged records, {size} stored; \
         whole test {:.1?}",
        up.duration_since(down),
        recovered.duration_since(up),
        started.elapsed()
    );
}

/// The key-material store (on the same pool) while its database is down:
/// reads and writes fail with `MaterialError::Unavailable`, which the
/// server answers as 503 `LEDGER_UNAVAILABLE_ERR` like a failed append,
/// not `Backend` (a 500); once the database is back it works on. (A key
/// created through `keyledger serve` while PostgreSQL failed over was
/// answered 500 before.)
#[test]
fn the_material_store_is_unavailable_not_broken_while_its_database_is_down() {
    let cluster = Cluster::started();
    let store = PostgresStore::open_url(&cluster.url("postgres", ""), 1).expect("open the store");
    let materials = store.material_store();
    materials
        .put(INST, KEY, 1, &material(KEY, 1, 1))
        .expect("put while up");
    cluster.stop_immediate();
    let put = materials.put(INST, KEY, 2, &material(KEY, 2, 1));
    assert!(
        matches!(put, Err(MaterialError::Unavailable(_))),
        "put while down: {put:?}"
    );
    let get = materials.get(INST, KEY, 1);
    assert!(
        matches!(get, Err(MaterialError::Unavailable(_))),
        "get while down: {get:?}"
    );
    cluster.start();
    materials
        .put(INST, KEY, 2, &material(KEY, 2, 1))
        .expect("put after the restart");
    assert_eq!(materials.versions(INST, KEY).expect("versions"), vec![1, 2]);
}

#[test]
fn a_pooled_connection_that_died_idle_is_not_handed_out() {
    // One connection in the pool, idle while its server restarts: the
    // next operation must get a new connection, not fail on the dead one.
    let cluster = Cluster::started();
    let store = PostgresStore::open_url(&cluster.url("postgres", ""), 1).expect("open the store");
    let log = store.create_log("idle").expect("create instance");
    let first = batch("idle", log.head(), 2);
    log.append(&first).expect("append before the restart");
    cluster.stop_immediate();
    cluster.start();
    let second = batch("idle", log.head(), 2);
    log.append(&second)
        .expect("the first append after the restart succeeds");
    let all: Vec<SealedRecord> = first.into_iter().chain(second).collect();
    keyledger_ledger::conformance::assert_log_holds(log.as_ref(), &all);
}

/// A CA named `ca_name` and a server certificate for 127.0.0.1 (IP
/// address only) signed by it, as PEM: (CA certificate, server
/// certificate, server key).
fn ca_and_server(ca_name: &str) -> (String, String, String) {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair,
        KeyUsagePurpose, SanType,
    };
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, ca_name);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().expect("CA key"))
        .expect("CA certificate");
    let mut server = CertificateParams::new(Vec::<String>::new()).expect("server params");
    server.subject_alt_names = vec![SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST))];
    server
        .distinguished_name
        .push(DnType::CommonName, "keyledger test database");
    let key = KeyPair::generate().expect("server key");
    let cert = server.signed_by(&key, &ca).expect("server certificate");
    (ca.pem(), cert.pem(), key.serialize_pem())
}

#[test]
fn tls_to_the_database() {
    let (ca, server_cert, server_key) = ca_and_server("keyledger test CA");
    let (wrong_ca, _, _) = ca_and_server("another CA");
    let cluster = Cluster::init();
    let crt = cluster.dir().join("server.crt");
    let key = cluster.dir().join("server.key");
    cluster::write_server_file(&crt, server_cert.as_bytes(), 0o644);
    cluster::write_server_file(&key, server_key.as_bytes(), 0o600);
    cluster.configure(&[
        "ssl = on".to_string(),
        format!("ssl_cert_file = '{}'", crt.display()),
        format!("ssl_key_file = '{}'", key.display()),
    ]);
    // TLS or nothing: a plaintext connection is rejected by the server,
    // so a store that opens did use TLS.
    cluster.set_hba(&[
        "local all all trust",
        "hostssl all all 127.0.0.1/32 trust",
        "hostnossl all all 127.0.0.1/32 reject",
    ]);
    cluster.start();

    let files = tempfile::tempdir().expect("client files");
    let ca_file = files.path().join("ca.pem");
    let wrong_file = files.path().join("wrong-ca.pem");
    std::fs::write(&ca_file, &ca).expect("write CA");
    std::fs::write(&wrong_file, &wrong_ca).expect("write wrong CA");
    let root = |f: &std::path::Path| format!("sslrootcert='{}'", f.display());

    let usable = |url: &str| {
        let store = PostgresStore::open_url(url, 2).unwrap_or_else(|e| panic!("open {url:?}: {e}"));
        let name = format!("tls{}", store.list_instances().expect("list").len());
        let log = store.create_log(&name).expect("create over TLS");
        let b = batch(&name, log.head(), 3);
        log.append(&b).expect("append over TLS");
        assert_eq!(log.read(0, 3).expect("read over TLS").len(), 3);
    };
    usable(&cluster.url(
        "postgres",
        &format!("sslmode=verify-full {}", root(&ca_file)),
    ));
    usable(&cluster.url("postgres", &format!("sslmode=verify-ca {}", root(&ca_file))));
    usable(&cluster.url("postgres", "sslmode=require"));
    usable(&format!(
        "postgresql://postgres@127.0.0.1:{}/postgres?sslmode=verify-full&sslrootcert={}",
        cluster.port(),
        ca_file.display()
    ));

    // A certificate from another CA is refused, saying why.
    let err = PostgresStore::open_url(
        &cluster.url(
            "postgres",
            &format!("sslmode=verify-full {}", root(&wrong_file)),
        ),
        2,
    )
    .err()
    .expect("a server certificate from another CA is refused");
    let msg = err.to_string();
    eprintln!("wrong CA: {msg}");
    assert!(matches!(err, OpenError::Tls(_)), "{err:?}");
    assert!(
        msg.contains("certificate was refused") && msg.contains("UnknownIssuer"),
        "{msg}"
    );
    let err = PostgresStore::open_url(
        &cluster.url(
            "postgres",
            &format!("sslmode=require {}", root(&wrong_file)),
        ),
        2,
    )
    .err()
    .expect("require with a root file checks the chain, as libpq does");
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");

    // The certificate names 127.0.0.1, not localhost: verify-full checks
    // the name, verify-ca only the chain.
    let by_name = |mode: &str| {
        format!(
            "host=localhost port={} user=postgres dbname=postgres connect_timeout=2 sslmode={mode} {}",
            cluster.port(),
            root(&ca_file)
        )
    };
    let err = PostgresStore::open_url(&by_name("verify-full"), 2)
        .err()
        .expect("a certificate for another name is refused by verify-full");
    assert!(err.to_string().contains("NotValidForName"), "{err}");
    usable(&by_name("verify-ca"));

    // No sslmode, or disable: no TLS, which this server rejects.
    for extra in ["", "sslmode=disable"] {
        let err = PostgresStore::open_url(&cluster.url("postgres", extra), 2)
            .err()
            .expect("plaintext is rejected by this server");
        eprintln!("plaintext ({extra:?}): {err}");
        assert!(
            err.to_string().contains("no encryption") || err.to_string().contains("pg_hba"),
            "{extra:?}: {err}"
        );
    }
}
