//! Data-key wrap/unwrap through `&dyn HsmBackend` against raw `aes-gcm` on
//! the same sizes (a 32-byte DEK, 32 bytes of AAD), single-threaded and with
//! 2 threads. Target: backend ops/s ≥ 0.5 × raw.
//!
//! - raw: `Aes256Gcm::encrypt`/`decrypt` (allocating, as a caller would) with
//!   a fixed, already expanded key and a counter nonce;
//! - backend: `encrypt`/`decrypt` of the same sizes under a key version whose
//!   material is that same key (imported), so only the backend's own work
//!   differs (binding checks, cipher cache, random nonce, envelope).
//!
//! Each figure is the best of `ROUNDS` runs of `--secs` seconds (default 1),
//! raw and backend runs interleaved, so load from elsewhere hurts both alike.
//!
//! Run: `cargo bench --bench hsm_wrap [-- --secs 2]`.
//!
//! Adding a backend (PKCS#11): construct it in [`backends`] and it is
//! measured and reported next to the software HSM; [`bench_backend`] takes
//! any `&dyn HsmBackend`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use keyledger::hsm::software::SoftwareHsm;
use keyledger::hsm::{HsmBackend, KeyBinding, WrappedMaterial, ceremony};
use keyledger::secret::SecretBytes;

const ROUNDS: usize = 3;
const DEK_LEN: usize = 32;
const AAD: &[u8; 32] = b"tenant=0042;key=7f3a;version=001";
/// The key every measurement uses (raw and imported into each backend).
const KEY: [u8; 32] = [0x42; 32];

#[cfg(feature = "pkcs11")]
#[path = "support/pkcs11_token.rs"]
mod pkcs11_token;

/// The backends to measure. Add others here (e.g. a PKCS#11 token).
fn backends() -> Vec<(String, Box<dyn HsmBackend>)> {
    #[allow(unused_mut)]
    let mut all: Vec<(String, Box<dyn HsmBackend>)> =
        vec![("software".to_string(), Box::new(SoftwareHsm::new()))];
    // SoftHSM2 through cryptoki, a session pool of 2 (one per core here).
    #[cfg(feature = "pkcs11")]
    match pkcs11_token::backend(2) {
        Ok(hsm) => all.push(("pkcs11-softhsm2".to_string(), Box::new(hsm))),
        Err(why) => println!("hsm_wrap: PKCS#11 backend skipped: {why}"),
    }
    all
}

/// Operations per second of `op`, run by `threads` threads for `dur`.
fn throughput(threads: usize, dur: Duration, op: &(dyn Fn(u64) + Sync)) -> f64 {
    let total: u64 = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    let start = Instant::now();
                    let mut n = 0u64;
                    let base = (t as u64) << 48;
                    while start.elapsed() < dur {
                        for _ in 0..256 {
                            op(base + n);
                            n += 1;
                        }
                    }
                    n
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("bench thread"))
            .sum()
    });
    total as f64 / dur.as_secs_f64()
}

/// Operations per second with 1 and 2 threads.
#[derive(Default, Clone, Copy)]
pub struct Figures {
    pub encrypt: [f64; 2],
    pub decrypt: [f64; 2],
}

impl Figures {
    fn best(&mut self, other: Figures) {
        for i in 0..2 {
            self.encrypt[i] = self.encrypt[i].max(other.encrypt[i]);
            self.decrypt[i] = self.decrypt[i].max(other.decrypt[i]);
        }
    }
}

fn bench_raw(dur: Duration) -> Figures {
    let cipher = Aes256Gcm::new_from_slice(&KEY).expect("key");
    let dek = [7u8; DEK_LEN];
    let nonce_of = |n: u64| {
        let mut b = [0u8; 12];
        b[4..].copy_from_slice(&n.to_be_bytes());
        Nonce::from(b)
    };
    let sealed = cipher
        .encrypt(
            &nonce_of(0),
            Payload {
                msg: &dek,
                aad: AAD,
            },
        )
        .expect("encrypt");
    let enc = |n: u64| {
        let ct = cipher
            .encrypt(
                &nonce_of(n),
                Payload {
                    msg: &dek,
                    aad: AAD,
                },
            )
            .expect("encrypt");
        black_box(ct);
    };
    let dec = |_: u64| {
        let pt = cipher
            .decrypt(
                &nonce_of(0),
                Payload {
                    msg: &sealed,
                    aad: AAD,
                },
            )
            .expect("decrypt");
        black_box(pt);
    };
    let mut f = Figures::default();
    for (i, threads) in [1, 2].into_iter().enumerate() {
        f.encrypt[i] = throughput(threads, dur, &enc);
        f.decrypt[i] = throughput(threads, dur, &dec);
    }
    f
}

/// Loads a master key into `instance` of `hsm` and imports [`KEY`] as a key version.
pub fn prepare(hsm: &dyn HsmBackend, instance: &str) -> (KeyBinding, WrappedMaterial) {
    let public = hsm.ceremony_public_key(instance, 1).expect("ceremony key");
    for owner in ["owner-a", "owner-b"] {
        let part = SecretBytes::random(32).expect("rng");
        let sealed = ceremony::seal_part(&public, instance, 1, owner, &part).expect("seal");
        hsm.load_part(instance, 1, owner, &sealed)
            .expect("load part");
    }
    hsm.commit(instance, 1, 2).expect("commit");
    hsm.activate(instance, 1).expect("activate");
    let binding = KeyBinding {
        instance: instance.into(),
        key_id: "bench-root".into(),
        version: 1,
        mk_generation: 1,
    };
    let wrapped = hsm
        .import_key(&binding, &SecretBytes::from_slice(&KEY))
        .expect("import")
        .wrapped;
    (binding, wrapped)
}

/// Measures `encrypt`/`decrypt` of a 32-byte DEK with 32 bytes of AAD through the trait.
pub fn bench_backend(
    hsm: &dyn HsmBackend,
    binding: &KeyBinding,
    wrapped: &WrappedMaterial,
    dur: Duration,
) -> Figures {
    let dek = SecretBytes::from_slice(&[7u8; DEK_LEN]);
    let sealed = hsm.encrypt(binding, wrapped, &dek, AAD).expect("encrypt");
    let enc = |_: u64| {
        black_box(hsm.encrypt(binding, wrapped, &dek, AAD).expect("encrypt"));
    };
    let dec = |_: u64| {
        black_box(
            hsm.decrypt(binding, wrapped, &sealed, AAD)
                .expect("decrypt"),
        );
    };
    let mut f = Figures::default();
    for (i, threads) in [1, 2].into_iter().enumerate() {
        f.encrypt[i] = throughput(threads, dur, &enc);
        f.decrypt[i] = throughput(threads, dur, &dec);
    }
    f
}

fn secs_arg() -> f64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == "--secs")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0)
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing: run briefly then.
    let benching = std::env::args().any(|a| a == "--bench");
    let dur = Duration::from_secs_f64(if benching { secs_arg() } else { 0.05 });
    let rounds = if benching { ROUNDS } else { 1 };
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    println!("hsm_wrap: 32-byte DEK, 32-byte AAD, best of {rounds} x {dur:?}, {cpus} CPUs");

    let backends = backends();
    let prepared: Vec<_> = backends
        .iter()
        .map(|(name, hsm)| {
            (
                name,
                hsm.as_ref(),
                prepare(hsm.as_ref(), &format!("bench-{name}")),
            )
        })
        .collect();
    let mut raw = Figures::default();
    let mut figures = vec![Figures::default(); prepared.len()];
    for _ in 0..rounds {
        raw.best(bench_raw(dur));
        for (f, (_, hsm, (b, w))) in figures.iter_mut().zip(&prepared) {
            f.best(bench_backend(*hsm, b, w, dur));
        }
    }

    println!(
        "{:<24} {:>14} {:>14} {:>8}",
        "", "ops/s", "raw ops/s", "ratio"
    );
    for (f, (name, _, _)) in figures.iter().zip(&prepared) {
        for (i, threads) in [1, 2].into_iter().enumerate() {
            for (op, got, base) in [
                ("encrypt", f.encrypt[i], raw.encrypt[i]),
                ("decrypt", f.decrypt[i], raw.decrypt[i]),
            ] {
                let label = format!("{name} {op} {threads}T");
                println!("{label:<24} {got:>14.0} {base:>14.0} {:>8.2}", got / base);
            }
        }
    }
}
