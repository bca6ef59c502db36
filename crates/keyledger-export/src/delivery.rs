//! Delivery of one sink: reads the instance's log from the sink's durable
//! cursor, renders a bounded batch, hands it to the sink's transport, and
//! moves the cursor only once the transport says the receiver took the
//! whole batch. At least once: after a crash, a restart or a receiver
//! outage the batch that was not acknowledged is sent again, nothing
//! earlier. The loop reads the log through the same read interface as
//! `keyledger export` and never touches the writer, so a slow or dead
//! receiver costs appends nothing; what waits is one batch in memory and
//! a cursor that falls behind (the lag the status reports).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use keyledger_core::record::Record;
use keyledger_ledger::audit::AuditLog;
use keyledger_ledger::data_dir;

use crate::mapping::{Mapped, Outcome};
use crate::sink::{Entry, Transport};
use crate::{ExportError, Format};

/// Batching, polling and backoff of a delivery loop.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// Most records in one batch.
    pub max_records: u64,
    /// Most rendered bytes in one batch (a batch holds at least one record).
    pub max_bytes: usize,
    /// How often an idle loop looks for new records.
    pub idle_poll: Duration,
    /// First wait after a failed batch; doubles up to `max_backoff`.
    pub min_backoff: Duration,
    /// Longest wait between attempts.
    pub max_backoff: Duration,
    /// A sink is *behind* once it has not been caught up for this long.
    pub behind_after: Duration,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            max_records: 1000,
            max_bytes: 1 << 20,
            idle_poll: Duration::from_millis(100),
            min_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(30),
            behind_after: Duration::from_secs(10),
        }
    }
}

/// Where a sink stands, shared with metrics and readiness.
#[derive(Debug)]
pub struct SinkStatus {
    /// The next sequence number to deliver (the durable cursor).
    pub cursor: AtomicU64,
    /// The log's size when the loop last looked.
    pub head: AtomicU64,
    /// Records the receiver acknowledged since the process started.
    pub delivered: AtomicU64,
    /// Batches that failed since the process started.
    pub failures: AtomicU64,
    /// Whether the last attempt failed.
    pub failing: AtomicBool,
    /// Another server forwards this sink (it holds the sink's lease);
    /// this one watches its cursor and stands by.
    pub standby: AtomicBool,
    /// This server holds the sink's cursor (a file, or the database lease)
    /// and delivers; false until it does, while it stands by, and after it
    /// lost the cursor.
    pub forwarding: AtomicBool,
    /// Why the last attempt failed (no secret: transport errors never
    /// carry one).
    pub last_error: Mutex<Option<String>>,
    caught_up_at: Mutex<Instant>,
}

impl Default for SinkStatus {
    fn default() -> Self {
        SinkStatus {
            cursor: AtomicU64::new(0),
            head: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            failing: AtomicBool::new(false),
            standby: AtomicBool::new(false),
            forwarding: AtomicBool::new(false),
            last_error: Mutex::new(None),
            caught_up_at: Mutex::new(Instant::now()),
        }
    }
}

impl SinkStatus {
    /// Records not yet acknowledged.
    pub fn lag(&self) -> u64 {
        self.head
            .load(Ordering::Relaxed)
            .saturating_sub(self.cursor.load(Ordering::Relaxed))
    }

    /// Failing, or not caught up for longer than `after` (a standby is
    /// neither: another server forwards).
    pub fn behind(&self, after: Duration) -> bool {
        !self.standby.load(Ordering::Relaxed)
            && (self.failing.load(Ordering::Relaxed)
                || (self.lag() > 0 && lock(&self.caught_up_at).elapsed() > after))
    }

    /// The last error, if the last attempt failed.
    pub fn error(&self) -> Option<String> {
        if self.failing.load(Ordering::Relaxed) {
            lock(&self.last_error).clone()
        } else {
            None
        }
    }

    /// Marks the sink failing for `why` (a configuration it cannot run,
    /// a transport error).
    pub fn fail(&self, why: String) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        self.failing.store(true, Ordering::Relaxed);
        *lock(&self.last_error) = Some(why);
    }

    /// Marks the sink as forwarded by another server (`true`) or by this
    /// one, with the cursor and log size to report.
    pub fn stand_by(&self, standby: bool, cursor: u64, head: u64) {
        self.standby.store(standby, Ordering::Relaxed);
        self.forwarding.store(!standby, Ordering::Relaxed);
        self.failing.store(false, Ordering::Relaxed);
        self.cursor.store(cursor, Ordering::Relaxed);
        self.head.store(head, Ordering::Relaxed);
    }

    fn succeeded(&self) {
        self.failing.store(false, Ordering::Relaxed);
    }

    fn caught_up(&self) {
        *lock(&self.caught_up_at) = Instant::now();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Where a sink's durable cursor lives: the next sequence number to
/// deliver. An error of either call ends [`Delivery::run`], whose caller
/// opens the cursor again (a lost database lease, a full disk).
pub trait Cursor: Send {
    /// The stored cursor; 0 when none was stored yet.
    fn load(&mut self) -> Result<u64, String>;
    /// Stores `next` durably.
    fn store(&mut self, next: u64) -> Result<(), String>;
}

impl Cursor for FileCursor {
    fn load(&mut self) -> Result<u64, String> {
        FileCursor::load(self).map_err(|e| format!("cursor {}: {e}", self.path.display()))
    }
    fn store(&mut self, next: u64) -> Result<(), String> {
        FileCursor::store(self, next).map_err(|e| format!("cursor {}: {e}", self.path.display()))
    }
}

/// A sink's durable cursor in a file replaced atomically (write, fsync,
/// rename, fsync the directory).
#[derive(Debug, Clone)]
pub struct FileCursor {
    path: PathBuf,
}

impl FileCursor {
    /// The cursor kept at `path` (its directory is created, 0700).
    pub fn open(path: &Path) -> std::io::Result<Self> {
        if let Some(dir) = path.parent() {
            data_dir::create_dir_all(dir)?;
        }
        Ok(FileCursor {
            path: path.to_path_buf(),
        })
    }

    /// The stored cursor; 0 when none was stored yet.
    pub fn load(&self) -> std::io::Result<u64> {
        match std::fs::read_to_string(&self.path) {
            Ok(text) => text.trim().parse().map_err(|_| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}: not a cursor", self.path.display()),
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// Stores `next` durably ([`data_dir::write_atomic`]).
    pub fn store(&self, next: u64) -> std::io::Result<()> {
        let (Some(dir), Some(name)) = (
            self.path.parent(),
            self.path.file_name().and_then(|n| n.to_str()),
        ) else {
            return Err(std::io::Error::other("a cursor path names a file"));
        };
        data_dir::write_atomic(dir, name, format!("{next}\n").as_bytes())
    }
}

/// Renders one record as a transport entry.
pub fn entry(
    format: Format,
    instance: &str,
    seq: u64,
    record: &Record,
) -> Result<Entry, ExportError> {
    let m = Mapped::new(instance, seq, record)?;
    let line = crate::line_of(format, &m, record)?;
    let time = chrono::DateTime::from_timestamp_millis(m.time_ms).unwrap_or_default();
    Ok(Entry {
        seq,
        time,
        event_type: m.event_type,
        failure: m.outcome == Outcome::Failure,
        line,
    })
}

/// One sink's loop: runs until `stop`, delivering `log` from `cursor` in
/// `format` through `transport`, and keeping `status` current.
pub struct Delivery<'a> {
    /// The instance's log.
    pub log: &'a dyn AuditLog,
    /// The format lines are rendered in.
    pub format: Format,
    /// Where the batches go.
    pub transport: &'a mut dyn Transport,
    /// The durable cursor.
    pub cursor: &'a mut dyn Cursor,
    /// Shared status.
    pub status: &'a SinkStatus,
    /// Batching, polling and backoff.
    pub config: &'a DeliveryConfig,
}

impl Delivery<'_> {
    /// Runs until `stop` is set, or until the cursor cannot be read or
    /// stored (reported in the status; the caller opens it again). Errors
    /// of the transport and the store are reported and retried with
    /// backoff.
    pub fn run(&mut self, stop: &AtomicBool) {
        let mut next = match self.cursor.load() {
            Ok(next) => next,
            Err(e) => {
                self.status.forwarding.store(false, Ordering::Relaxed);
                self.status.fail(e);
                return;
            }
        };
        self.status.cursor.store(next, Ordering::Relaxed);
        let mut backoff = self.config.min_backoff;
        let mut batch: Vec<Entry> = Vec::new();
        // The log's size when the batch was read: a batch that reaches it
        // leaves the sink caught up.
        let mut batch_head = 0;
        while !stop.load(Ordering::Relaxed) {
            let head = self.log.size();
            self.status.head.store(head, Ordering::Relaxed);
            if batch.is_empty() {
                if next >= head {
                    self.status.caught_up();
                    pause(stop, self.config.idle_poll);
                    continue;
                }
                match self.read(next, head) {
                    Ok(b) => {
                        batch = b;
                        batch_head = head;
                    }
                    Err(e) => {
                        self.status.fail(e.to_string());
                        backoff = self.wait(stop, backoff);
                        continue;
                    }
                }
            }
            let end = next + batch.len() as u64;
            let sent = self.transport.send(&batch).map_err(|e| e.to_string());
            if sent.is_ok()
                && let Err(e) = self.cursor.store(end)
            {
                // Delivered but not recorded: sent again after the cursor
                // is opened again (at least once).
                self.status.forwarding.store(false, Ordering::Relaxed);
                self.status.fail(e);
                return;
            }
            match sent {
                Ok(()) => {
                    let delivered = end - next;
                    next = end;
                    batch.clear();
                    self.status.cursor.store(next, Ordering::Relaxed);
                    self.status
                        .delivered
                        .fetch_add(delivered, Ordering::Relaxed);
                    self.status.succeeded();
                    if next >= batch_head {
                        self.status.caught_up();
                    }
                    backoff = self.config.min_backoff;
                }
                Err(e) => {
                    self.status.fail(e);
                    backoff = self.wait(stop, backoff);
                }
            }
        }
    }

    /// Records `next..` up to the batch bounds, rendered.
    fn read(&self, next: u64, head: u64) -> Result<Vec<Entry>, ExportError> {
        let stop = head.min(next.saturating_add(self.config.max_records));
        let records = self.log.records(next, stop)?;
        let instance = self.log.instance();
        let mut batch = Vec::with_capacity(records.len());
        let mut bytes = 0;
        for (seq, record) in (next..).zip(&records) {
            let e = entry(self.format, instance, seq, record)?;
            bytes += e.line.len();
            batch.push(e);
            if bytes >= self.config.max_bytes {
                break;
            }
        }
        Ok(batch)
    }

    /// Waits `backoff` (or until stopped) and returns the next backoff.
    fn wait(&self, stop: &AtomicBool, backoff: Duration) -> Duration {
        pause(stop, backoff);
        (backoff * 2).min(self.config.max_backoff)
    }
}

/// Sleeps `d` in short steps; false when stopped.
pub fn pause(stop: &AtomicBool, d: Duration) -> bool {
    let until = Instant::now() + d;
    while Instant::now() < until {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        std::thread::sleep((until - Instant::now()).min(Duration::from_millis(50)));
    }
    !stop.load(Ordering::Relaxed)
}
