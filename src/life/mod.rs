//! A generated, rule-abiding life of an instance, appended through the real
//! writer: `keyledger ledger generate`, the benchmarks' inputs, demos and
//! crash tests.
//!
//! [`plan`] decides each step with the server's own decisions; this module
//! drives it: it creates the instance (or continues one it created), keeps
//! the administrators' signing keys, gives the writer a simulated clock, and
//! appends the steps in ticks. A tick is a burst of events decided at one
//! instant: the writer stamps each event with the clock when it sequences
//! it, so the clock moves only between ticks, once every event of the tick
//! is durable, and every receipt is checked to carry the time and sequence
//! number its event was decided at. Time runs at about one simulated second
//! per event and ends no later than the wall clock.
//!
//! The administrators' keys are kept in `DATA_DIR/generate/INSTANCE.json`
//! (mode 0600, like `serve --dev`'s files): a generated instance is test
//! data, never one to trust.

pub mod plan;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use chrono::{DateTime, Utc};
use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::hsm::HsmBackend;
use crate::ledger::{InitialAdmin, KeyHome, Ledger};
use crate::ledger_key::write_private_atomically;
use crate::store::EventStore;
use crate::writer::{Receipt, WriterConfig};
use keyledger_core::Projections;
use keyledger_core::event::Envelope;
use keyledger_core::governance::admin_id;
pub use plan::{Life, LifeError};

/// Simulated seconds per event, on average.
pub const SECONDS_PER_EVENT: f64 = 1.0;
/// Fewest and most events of one tick (decided at one instant).
pub const TICK_EVENTS: (u64, u64) = (16, 256);
/// Records read per step when rebuilding the state of an instance.
const REBUILD_CHUNK: u64 = 4096;

/// What a run appended.
#[derive(Debug, Clone)]
pub struct Generated {
    /// Events appended by this run.
    pub appended: u64,
    /// How long appending took.
    pub elapsed: Duration,
    /// The log's size afterwards.
    pub size: u64,
    /// Mean records per durable batch.
    pub mean_batch: f64,
}

/// `DATA_DIR/generate/INSTANCE.json`.
#[derive(Serialize, Deserialize)]
struct AdminKeys {
    warning: String,
    instance: String,
    /// Hex ed25519 seeds, the initial administrator first.
    admins: Vec<String>,
}

const WARNING: &str = "TEST DATA ONLY: the signing keys of this generated instance's administrators, stored unprotected";

/// Where the administrators' keys of a generated instance are kept.
pub fn admin_keys_path(data_dir: &Path, instance: &str) -> PathBuf {
    data_dir.join("generate").join(format!("{instance}.json"))
}

fn save_admins(path: &Path, instance: &str, keys: &[SigningKey]) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let file = AdminKeys {
        warning: WARNING.into(),
        instance: instance.into(),
        admins: keys.iter().map(|k| hex::encode(k.to_bytes())).collect(),
    };
    let json = Zeroizing::new(serde_json::to_string_pretty(&file).map_err(|e| e.to_string())?);
    write_private_atomically(path, json.as_bytes()).map_err(|e| e.to_string())
}

fn load_admins(path: &Path) -> Result<Vec<SigningKey>, String> {
    let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
        format!(
            "{}: {e} (`ledger generate` continues only instances it created, with their administrators' keys)",
            path.display()
        )
    })?);
    let file: AdminKeys =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    file.admins
        .iter()
        .map(|seed| {
            let mut bytes = Zeroizing::new([0u8; 32]);
            hex::decode_to_slice(seed, bytes.as_mut())
                .map_err(|e| format!("{}: {e}", path.display()))?;
            Ok(SigningKey::from_bytes(&bytes))
        })
        .collect()
}

/// The writer's clock: the simulated instant the current tick is decided at.
#[derive(Clone)]
struct SimClock(Arc<AtomicI64>);

impl SimClock {
    fn new(at: DateTime<Utc>) -> Self {
        SimClock(Arc::new(AtomicI64::new(at.timestamp_micros())))
    }

    fn set(&self, at: DateTime<Utc>) {
        self.0.store(at.timestamp_micros(), Ordering::Release);
    }

    fn config(&self) -> WriterConfig {
        let micros = self.0.clone();
        WriterConfig {
            clock: Arc::new(move || {
                DateTime::from_timestamp_micros(micros.load(Ordering::Acquire)).unwrap_or_default()
            }),
            ..WriterConfig::default()
        }
    }
}

fn random_seed() -> Result<u64, String> {
    let mut b = [0u8; 8];
    getrandom::getrandom(&mut b).map_err(|e| e.to_string())?;
    Ok(u64::from_le_bytes(b))
}

/// Where a run of `events` starts when the wall clock says `now`: far enough
/// back that it ends before `now` (never before `after`, the log's last
/// time).
fn start_time(now: DateTime<Utc>, events: u64, after: Option<DateTime<Utc>>) -> DateTime<Utc> {
    let span = (events as f64 * SECONDS_PER_EVENT * 1.25).min(3.0e9) as i64;
    let start = now - chrono::Duration::seconds(span);
    match after {
        Some(t) if t > start => t,
        _ => start,
    }
}

/// Appends `events` events of a rule-abiding life to `instance` in the
/// store at `data_dir`: creates the instance first if it does not exist
/// (its ledger key in `hsm` if given, else in a key file), or continues an
/// instance an earlier run created. `on_ack` sees every receipt once its
/// event is durable, in log order.
pub fn generate(
    store: &dyn EventStore,
    data_dir: &Path,
    instance: &str,
    hsm: Option<Arc<dyn HsmBackend>>,
    events: u64,
    on_ack: &mut dyn FnMut(&Receipt),
) -> Result<Generated, String> {
    let exists = store
        .list_instances()
        .map_err(|e| e.to_string())?
        .iter()
        .any(|i| i == instance);
    let keys_path = admin_keys_path(data_dir, instance);
    let wall = Utc::now();
    let (ledger, clock, admins, start) = if exists {
        let admins = load_admins(&keys_path)?;
        let clock = SimClock::new(wall);
        let ledger = match hsm {
            Some(hsm) => Ledger::open_with_hsm(store, data_dir, instance, clock.config(), hsm),
            None => Ledger::open(store, data_dir, instance, clock.config()),
        }
        .map_err(|e| e.to_string())?;
        let last = last_time(&ledger)?;
        let start = start_time(wall, events, last);
        (ledger, clock, admins, start)
    } else {
        let first = SigningKey::from_bytes(&{
            let mut seed = Zeroizing::new([0u8; 32]);
            getrandom::getrandom(seed.as_mut()).map_err(|e| e.to_string())?;
            *seed
        });
        // The key is kept before the instance names it as its administrator.
        save_admins(&keys_path, instance, std::slice::from_ref(&first))?;
        let start = start_time(wall, events, None);
        let clock = SimClock::new(start);
        let home = match hsm {
            Some(hsm) => KeyHome::Hsm(hsm),
            None => KeyHome::File,
        };
        let admin = InitialAdmin {
            admin_id: admin_id(&first.verifying_key()),
            public_key: base64::engine::general_purpose::STANDARD
                .encode(first.verifying_key().as_bytes()),
        };
        let ledger = Ledger::create_in(
            store,
            data_dir,
            instance,
            &admin,
            "generate",
            clock.config(),
            home,
        )
        .map_err(|e| e.to_string())?;
        (ledger, clock, vec![first], start)
    };
    let result = (|| {
        let (state, size) = rebuild(&ledger)?;
        let mut life = Life::new(instance, state, size, start, admins, random_seed()?);
        clock.set(life.now());
        run(&ledger, &clock, &mut life, events, &keys_path, on_ack)
    })();
    let stats = ledger.writer().stats();
    let batches = stats.batches.load(Ordering::Relaxed).max(1);
    let records = stats.records.load(Ordering::Relaxed);
    let size = ledger.log().head().size;
    ledger.shutdown();
    let (appended, elapsed) = result?;
    Ok(Generated {
        appended,
        elapsed,
        size,
        mean_batch: records as f64 / batches as f64,
    })
}

/// Appends the life's next `events` events, tick by tick.
fn run(
    ledger: &Ledger,
    clock: &SimClock,
    life: &mut Life,
    events: u64,
    keys_path: &Path,
    on_ack: &mut dyn FnMut(&Receipt),
) -> Result<(u64, Duration), String> {
    let started = Instant::now();
    let instance = ledger.writer().instance().to_string();
    let mut rng = plan::Rng::new(random_seed()?);
    let mut appended = 0u64;
    let mut saved_admins = life.admin_keys().len();
    while appended < events {
        let (low, high) = TICK_EVENTS;
        let tick = (low + rng.below(high - low + 1)).min(events - appended);
        let mut pending = Vec::with_capacity(tick as usize);
        let mut in_tick = 0u64;
        while in_tick < tick {
            let first_seq = life.next_seq();
            let step = life.next(tick - in_tick).map_err(|e| e.to_string())?;
            if life.admin_keys().len() != saved_admins {
                // A new administrator's key is kept before its event is appended.
                save_admins(keys_path, &instance, life.admin_keys())?;
                saved_admins = life.admin_keys().len();
            }
            for (i, draft) in step.into_iter().enumerate() {
                pending.push((first_seq + i as u64, ledger.writer().submit(draft)));
                in_tick += 1;
            }
        }
        for (seq, receipt) in pending {
            let receipt = receipt.wait().map_err(|e| e.to_string())?;
            if receipt.seq != seq || receipt.time != life.time() {
                return Err(format!(
                    "event {} was stamped at {}, but decided as event {seq} at {}: does another writer append to {instance}?",
                    receipt.seq,
                    receipt.time,
                    life.time()
                ));
            }
            on_ack(&receipt);
            appended += 1;
        }
        let jitter = 0.5 + rng.below(1000) as f64 / 1000.0;
        let step = (tick as f64 * SECONDS_PER_EVENT * jitter * 1e6) as i64;
        let next = (life.now() + chrono::Duration::microseconds(step)).min(Utc::now());
        life.set_time(next);
        clock.set(life.now());
    }
    Ok((appended, started.elapsed()))
}

/// The projections of the instance's log and its size.
fn rebuild(ledger: &Ledger) -> Result<(Projections, u64), String> {
    let log = ledger.log();
    let size = log.head().size;
    let mut state = Projections::default();
    let mut start = 0;
    while start < size {
        let end = (start + REBUILD_CHUNK).min(size);
        let records = log.read(start, end).map_err(|e| e.to_string())?;
        for (i, record) in records.iter().enumerate() {
            if let Ok(envelope) = Envelope::parse(&record.event) {
                state.apply(start + i as u64, &envelope);
            }
        }
        start = end;
    }
    Ok((state, size))
}

/// The time of the log's last event.
fn last_time(ledger: &Ledger) -> Result<Option<DateTime<Utc>>, String> {
    let log = ledger.log();
    let size = log.head().size;
    if size == 0 {
        return Ok(None);
    }
    let records = log.read(size - 1, size).map_err(|e| e.to_string())?;
    Ok(records
        .first()
        .and_then(|r| Envelope::parse(&r.event).ok())
        .and_then(|e| DateTime::parse_from_rfc3339(&e.time).ok())
        .map(|t| t.with_timezone(&Utc)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_starts_early_enough_to_end_before_now_and_never_before_the_log() {
        let now = Utc::now();
        let start = start_time(now, 1000, None);
        assert_eq!(now - start, chrono::Duration::seconds(1250));
        let later = now - chrono::Duration::seconds(10);
        assert_eq!(start_time(now, 1000, Some(later)), later);
        assert_eq!(
            start_time(now, 1000, Some(start - chrono::Duration::days(1))),
            start
        );
    }
}
