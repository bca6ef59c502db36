//! The SIEM sinks the server runs: for every instance, the sinks its log
//! says are in force (`export.sinks_set`, set only by a quorum-signed
//! command), each delivered by its own thread from its own durable cursor
//! ([`keyledger_export::delivery`]). The server's configuration supplies
//! only what must stay out of the log: the files behind each sink's
//! references (HEC token, TLS CA and client key) and the directory file
//! sinks write under. A sink whose reference this server cannot resolve
//! is not dropped: it shows as failing, in the metrics and on `/ready`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use keyledger_core::governance::sinks::{SinkSpec, SinkTarget, SinkTls, host_port, http_url};
use keyledger_export::Format;
use keyledger_export::delivery::{Cursor, Delivery, DeliveryConfig, FileCursor, SinkStatus, pause};
use keyledger_export::sink::{Target, TlsClient};
use keyledger_kms::service::KeyService;
use sha2::{Digest, Sha256};

use super::registry::Registry;
use super::sink_board::SinkBoard;

/// What the sinks need from the server's configuration.
#[derive(Clone)]
pub struct SinkSettings {
    /// Cursors live under `<data_dir>/sinks/<instance>/`.
    pub data_dir: PathBuf,
    /// File sinks write under `<export_dir>/<instance>/`.
    pub export_dir: PathBuf,
    /// Reference name -> file (HEC token, CA bundle, client certificate
    /// or key). Only paths: the contents are read when a sink starts.
    pub refs: BTreeMap<String, PathBuf>,
    /// Batching, polling and backoff.
    pub delivery: DeliveryConfig,
    /// On a shared PostgreSQL database: cursors live there, and one
    /// server at a time forwards each sink (the one holding its lease);
    /// none: cursors in files under `data_dir`.
    pub database: Option<Arc<keyledger_store_postgres::PostgresStore>>,
}

/// A running sink thread.
struct Worker {
    key: (String, String),
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

/// The identity of a sink's configuration: its cursor belongs to it, so a
/// sink whose target or format changes starts again from the log's start.
fn spec_digest(spec: &SinkSpec) -> String {
    let text = serde_json::to_string(spec).unwrap_or_default();
    hex::encode(&Sha256::digest(text.as_bytes())[..8])
}

/// Starts the supervisor: every `poll`, for every instance, it starts the
/// sinks the log has set and stops the ones it no longer has. It stops
/// (and stops its sinks) when `stop` is set.
pub fn spawn(
    registry: Arc<Registry>,
    settings: SinkSettings,
    board: Arc<SinkBoard>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<()>> {
    *board
        .behind_after
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(settings.delivery.behind_after);
    std::thread::Builder::new()
        .name("keyledger-sinks".into())
        .spawn(move || supervise(&registry, &settings, &board, &stop))
}

fn supervise(registry: &Registry, settings: &SinkSettings, board: &SinkBoard, stop: &AtomicBool) {
    // (instance, name, digest) -> worker
    let mut workers: BTreeMap<(String, String, String), Worker> = BTreeMap::new();
    let mut seen: BTreeMap<String, Option<u64>> = BTreeMap::new();
    let mut stopping: Vec<Worker> = Vec::new();
    loop {
        for service in registry.all() {
            let instance = service.instance().to_string();
            let set_seq = service.with_projections(|p| p.governance.sinks_set_seq);
            if seen.get(&instance) == Some(&set_seq) {
                continue;
            }
            seen.insert(instance.clone(), set_seq);
            let specs = service.with_projections(|p| p.governance.sinks.clone());
            let wanted: BTreeMap<(String, String, String), SinkSpec> = specs
                .into_iter()
                .map(|s| ((instance.clone(), s.name.clone(), spec_digest(&s)), s))
                .collect();
            let gone: Vec<_> = workers
                .keys()
                .filter(|k| k.0 == instance && !wanted.contains_key(*k))
                .cloned()
                .collect();
            for key in gone {
                if let Some(w) = workers.remove(&key) {
                    w.stop.store(true, Ordering::Relaxed);
                    board.set(w.key.clone(), None);
                    stopping.push(w);
                }
            }
            for (key, spec) in wanted {
                if workers.contains_key(&key) {
                    continue;
                }
                match start(&service, spec, &key.2, settings) {
                    Ok((worker, status)) => {
                        board.set(worker.key.clone(), Some(status));
                        workers.insert(key, worker);
                    }
                    Err(e) => eprintln!(
                        "keyledger: sink {:?} of {instance}: cannot start a thread: {e}",
                        key.1
                    ),
                }
            }
        }
        stopping.retain(|w| !w.thread.is_finished());
        if !pause(stop, Duration::from_millis(250)) {
            break;
        }
    }
    // Shutting down: stop every sink; a transport in the middle of a batch
    // gets a moment (its batch is sent again after the restart anyway).
    for w in workers.values() {
        w.stop.store(true, Ordering::Relaxed);
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut all: Vec<Worker> = workers.into_values().chain(stopping).collect();
    while !all.is_empty() && Instant::now() < deadline {
        all.retain(|w| !w.thread.is_finished());
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn start(
    service: &Arc<KeyService>,
    spec: SinkSpec,
    digest: &str,
    settings: &SinkSettings,
) -> std::io::Result<(Worker, Arc<SinkStatus>)> {
    let instance = service.instance().to_string();
    let status = Arc::new(SinkStatus::default());
    let stop = Arc::new(AtomicBool::new(false));
    let key = (instance.clone(), spec.name.clone());
    let cursor_key = format!("{}.{digest}", spec.name);
    let thread = {
        let service = service.clone();
        let status = status.clone();
        let stop = stop.clone();
        let settings = settings.clone();
        std::thread::Builder::new()
            .name(format!("keyledger-sink-{}", spec.name))
            .spawn(move || run(&service, &spec, &cursor_key, &settings, &status, &stop))?
    };
    Ok((Worker { key, stop, thread }, status))
}

/// One sink's thread: opens its transport (retrying while it cannot),
/// then delivers from its cursor until stopped; a cursor that fails (a
/// lost database lease, a full disk) is opened again after a backoff.
fn run(
    service: &KeyService,
    spec: &SinkSpec,
    cursor_key: &str,
    settings: &SinkSettings,
    status: &SinkStatus,
    stop: &AtomicBool,
) {
    lower_priority();
    let instance = service.instance();
    let log = service.audit_log();
    status.head.store(log.size(), Ordering::Relaxed);
    let format: Format = match spec.format.parse() {
        Ok(f) => f,
        Err(e) => {
            status.fail(e.to_string());
            return;
        }
    };
    let mut backoff = settings.delivery.min_backoff;
    let mut transport = loop {
        match target(instance, spec, format, settings)
            .and_then(|t| keyledger_export::sink::open(t).map_err(|e| e.to_string()))
        {
            Ok(t) => break t,
            Err(e) => {
                status.fail(e);
                if !pause(stop, backoff) {
                    return;
                }
                backoff = (backoff * 2).min(settings.delivery.max_backoff);
            }
        }
    };
    while !stop.load(Ordering::Relaxed) {
        let mut cursor = match open_cursor(instance, cursor_key, settings, status, log.size()) {
            Ok(Some(c)) => c,
            // Another server forwards this sink: look again in a while.
            Ok(None) => {
                pause(stop, LEASE_RETRY);
                continue;
            }
            Err(e) => {
                status.fail(e);
                pause(stop, settings.delivery.max_backoff.min(LEASE_RETRY * 5));
                continue;
            }
        };
        Delivery {
            log,
            format,
            transport: transport.as_mut(),
            cursor: cursor.as_mut(),
            status,
            config: &settings.delivery,
        }
        .run(stop);
        if !stop.load(Ordering::Relaxed) {
            pause(stop, settings.delivery.min_backoff);
        }
    }
}

/// Forwarding is background work: a sink thread runs at nice
/// [`SINK_NICENESS`], so when the cores are saturated requests get them
/// first and the sinks fall behind (their lag grows, bounded by the
/// cursor) instead of slowing appends; they catch up when load drops.
/// Best effort: where the priority cannot be changed the thread runs at
/// the server's.
fn lower_priority() {
    let _ = rustix::process::setpriority_process(Some(rustix::thread::gettid()), SINK_NICENESS);
}

/// The nice value of sink threads (see [`lower_priority`]).
pub const SINK_NICENESS: i32 = 10;

/// How often a standby server tries to take a sink's lease.
const LEASE_RETRY: Duration = Duration::from_secs(1);

/// The sink's cursor: a file under the data directory, or on a shared
/// database the sink's lease (`None` while another server holds it; the
/// status then reports that server's progress).
fn open_cursor(
    instance: &str,
    key: &str,
    settings: &SinkSettings,
    status: &SinkStatus,
    head: u64,
) -> Result<Option<Box<dyn Cursor>>, String> {
    match &settings.database {
        None => {
            let path = settings
                .data_dir
                .join("sinks")
                .join(instance)
                .join(format!("{key}.cursor"));
            let cursor =
                FileCursor::open(&path).map_err(|e| format!("cursor {}: {e}", path.display()))?;
            status.stand_by(false, status.cursor.load(Ordering::Relaxed), head);
            Ok(Some(Box::new(cursor)))
        }
        Some(db) => match db.sink_lease(instance, key)? {
            Some(lease) => {
                status.stand_by(false, status.cursor.load(Ordering::Relaxed), head);
                Ok(Some(Box::new(LeaseCursor(lease))))
            }
            None => {
                status.stand_by(true, db.sink_cursor(instance, key)?, head);
                Ok(None)
            }
        },
    }
}

/// A sink's cursor on the database, read and written through its lease.
struct LeaseCursor(keyledger_store_postgres::SinkLease);

impl Cursor for LeaseCursor {
    fn load(&mut self) -> Result<u64, String> {
        self.0.load().map_err(|e| format!("sink lease: {e}"))
    }
    fn store(&mut self, next: u64) -> Result<(), String> {
        self.0.store(next).map_err(|e| format!("sink lease: {e}"))
    }
}

/// The transport target of a sink, its references resolved on this server.
fn target(
    instance: &str,
    spec: &SinkSpec,
    format: Format,
    settings: &SinkSettings,
) -> Result<Target, String> {
    let file = |name: &str| -> Result<&PathBuf, String> {
        settings.refs.get(name).ok_or_else(|| {
            format!("reference {name:?} is not configured on this server (sink_refs)")
        })
    };
    let tls = |t: &Option<SinkTls>, host: &str| -> Result<TlsClient, String> {
        let t = t.clone().unwrap_or_default();
        Ok(TlsClient {
            server_name: t.server_name.clone().unwrap_or_else(|| host.to_string()),
            ca_file: t.ca_ref.as_deref().map(file).transpose()?.cloned(),
            client_cert: t.client_cert_ref.as_deref().map(file).transpose()?.cloned(),
            client_key: t.client_key_ref.as_deref().map(file).transpose()?.cloned(),
        })
    };
    let host = hostname();
    match &spec.target {
        SinkTarget::File {
            file: name,
            max_bytes,
            keep,
        } => {
            let dir = settings.export_dir.join(instance);
            keyledger_ledger::data_dir::create_dir_all(&dir)
                .map_err(|e| format!("{}: {e}", dir.display()))?;
            Ok(Target::File {
                path: dir.join(name),
                max_bytes: *max_bytes,
                keep: *keep,
            })
        }
        SinkTarget::Syslog { address, tls: t } => {
            let (h, _) = host_port(address)?;
            Ok(Target::Syslog {
                address: address.clone(),
                tls: t.as_ref().map(|_| tls(t, h)).transpose()?,
                hostname: host,
                app_name: "keyledger".into(),
            })
        }
        SinkTarget::Hec {
            url,
            token_ref,
            index,
            tls: t,
        } => {
            let (https, h) = http_url(url)?;
            let path = file(token_ref)?;
            let token = std::fs::read_to_string(path)
                .map(|s| zeroize::Zeroizing::new(s.trim().to_string()))
                .map_err(|e| format!("reference {token_ref:?}: {}: {e}", path.display()))?;
            if token.is_empty() {
                return Err(format!("reference {token_ref:?}: the token file is empty"));
            }
            Ok(Target::Hec {
                url: url.clone(),
                token,
                tls: if https { Some(tls(t, h)?) } else { None },
                index: index.clone(),
                source: format!("keyledger:{instance}"),
                sourcetype: format!("keyledger:{}", format.name()),
                host,
                json_event: matches!(format, Format::Cadf | Format::Ocsf | Format::Jsonl),
            })
        }
    }
}

/// This machine's name, for syslog's HOSTNAME and HEC's `host`.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "keyledger".into())
}
