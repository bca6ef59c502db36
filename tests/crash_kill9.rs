//! Kill -9 trials: a child `keyledger ledger generate` appends from several
//! threads and is killed with SIGKILL at random moments, at least 20 times.
//! After every restart each acknowledged record is present with the link it
//! was acknowledged with, the whole log verifies, and appends continue at the
//! next seq.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keyledger::store::EventStore;
use keyledger::store::embedded::EmbeddedStore;

const TRIALS: usize = 24;

/// A tiny deterministic PRNG (xorshift) so a failing run can be replayed
/// with KEYLEDGER_CRASH_SEED.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Acknowledged (seq, link hex) pairs as the child printed them.
type Acks = Arc<Mutex<Vec<(u64, String)>>>;

fn spawn_generate(data: &Path) -> (std::process::Child, Acks, std::thread::JoinHandle<()>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_keyledger"))
        .args([
            "ledger",
            "generate",
            "--instance",
            "crash",
            "--events",
            "100000000",
            "--threads",
            "8",
            "--print-acks",
        ])
        .arg("--data-dir")
        .arg(data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn keyledger");
    let stdout = child.stdout.take().expect("stdout");
    let acks = Arc::new(Mutex::new(Vec::new()));
    let sink = acks.clone();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let mut parts = line.split(' ');
            if parts.next() != Some("ack") {
                continue;
            }
            // A line cut by the kill is incomplete: only whole lines count.
            if let (Some(seq), Some(link)) = (parts.next(), parts.next())
                && link.len() == 64
                && let Ok(seq) = seq.parse()
            {
                sink.lock().expect("lock").push((seq, link.to_string()));
            }
        }
    });
    (child, acks, reader)
}

#[test]
fn acknowledged_records_survive_kill_9_and_the_chain_stays_intact() {
    let seed = std::env::var("KEYLEDGER_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x9e37_79b9_7f4a_7c15u64);
    eprintln!("crash trials seed {seed}");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let mut all_acks: Vec<(u64, String)> = Vec::new();
    let mut recovered_size = 0u64;
    for trial in 0..TRIALS {
        let (mut child, acks, reader) = spawn_generate(&data);
        // The first run must get past instance creation before a kill.
        if trial == 0 {
            while acks.lock().expect("lock").is_empty() {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        std::thread::sleep(Duration::from_millis(rng.next() % 400));
        child.kill().expect("SIGKILL");
        let status = child.wait().expect("wait");
        assert!(!status.success());
        reader.join().expect("reader");
        let acks = std::mem::take(&mut *acks.lock().expect("lock"));
        if let Some(first) = acks.iter().map(|(s, _)| *s).min() {
            assert!(
                first >= recovered_size,
                "trial {trial}: new appends started at {first}, below the recovered size {recovered_size}"
            );
        }
        all_acks.extend(acks);
        recovered_size = check_after_crash(&data, &all_acks, trial);
    }
    assert!(
        all_acks.len() > 1000,
        "too few acknowledged appends: {}",
        all_acks.len()
    );
    eprintln!(
        "{} acknowledged appends over {TRIALS} kills; final size {recovered_size}",
        all_acks.len()
    );
}

/// Reopens the store, checks every acknowledged record, verifies the whole
/// log, and returns its size.
fn check_after_crash(data: &Path, acks: &[(u64, String)], trial: usize) -> u64 {
    let store = EmbeddedStore::open(data).expect("open store");
    let log = store.open_instance("crash").expect("open instance");
    let size = log.head().size;
    let records = log.read(0, size).expect("read");
    for (seq, link) in acks {
        assert!(
            *seq < size,
            "trial {trial}: acknowledged seq {seq} lost (size {size})"
        );
        let record = &records[*seq as usize];
        assert_eq!(
            &hex::encode(record.link()),
            link,
            "trial {trial}: acknowledged record {seq} changed"
        );
    }
    drop(log);
    drop(store);
    let bundle = tempfile::tempdir().expect("bundle dir");
    let out = bundle.path().join("b");
    let status = Command::new(env!("CARGO_BIN_EXE_keyledger"))
        .args(["ledger", "export", "--instance", "crash", "--data-dir"])
        .arg(data)
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::null())
        .status()
        .expect("export");
    assert!(status.success(), "trial {trial}: export failed");
    let report =
        keyledger::verify::verify_bundle(&out, &Default::default(), &|_| {}).expect("verify");
    assert!(report.ok(), "trial {trial}: {:?}", report.failure);
    report.records
}
