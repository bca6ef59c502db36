//! keyledger-server: the REST server (`keyledger serve`), the Key Protect
//! v2 API on actix-web over the same key service the command line uses.
//! It depends on `keyledger-core`, `keyledger-ledger` and `keyledger-kms`,
//! never on the root package (the command line).
//!
//! - [`auth`]: bearer credentials (digests from the log), roles.
//! - [`keys`]: key endpoints and actions.
//! - [`ledger_api`]: auditor endpoints (checkpoint, records, proofs, bundle).
//! - [`admin_api`]: signed admin commands, the ceremony, governance state.
//! - [`errors`]: Key Protect error bodies for every refusal, including the
//!   ones actix itself produces (unknown route, oversized body, ...).
//! - [`listener`]: the listening sockets; the HTTP/1 parser's own 400/431
//!   get Key Protect bodies there.
//! - [`guard`]: what a request must satisfy before its body is read
//!   (identity from headers, single-valued headers, body timeout).
//! - [`metrics`]: Prometheus metrics, served with `/health` and `/ready` on
//!   the separate operations listener (`ops_listen`); the API listener
//!   answers `/health` and `/ready` without naming any instance.
//! - [`model`]: the API's wire model (media types, parameters, request
//!   bodies, and the answers: each one type the handler serialises and the
//!   document describes); handlers and [`openapi`] both use it.
//! - [`openapi`]: the OpenAPI document (`schemas/openapi.json`), served at
//!   `/api/v2/openapi.json`.
//! - [`access_log`]: one JSON line per request on stderr (no secrets).
//! - [`dev`]: `--dev` bootstrap.
//! - [`follow`]: on PostgreSQL, hears of other servers' appends and catches
//!   each instance up.
//! - [`sinks`]: the SIEM sinks the instances' logs set, each delivering
//!   from its own durable cursor; [`sink_board`]: their status, which
//!   metrics and `/ready` show.
//! - [`wire`]: body parsing, writing answers and response headers every
//!   handler shares.
//!
//! Blocking work (appending events, HSM calls) runs on actix's blocking
//! pool; an operation's event is durable before its response is written.
//! Wrap and unwrap on a backend whose calls never wait run on the event loop
//! and await their event's durability instead (`keys::deferred`).

#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod access_log;
pub mod admin_api;
pub mod app;
pub mod auth;
pub mod config;
pub mod dev;
pub mod errors;
pub mod follow;
pub mod guard;
pub mod import_tokens;
pub mod keys;
pub mod ledger_api;
pub mod listener;
pub mod metrics;
pub mod model;
pub mod openapi;
pub mod ops;
pub mod policies;
pub mod registrations;
pub mod registry;
pub mod resources;
pub mod rings_aliases;
pub mod scheduler;
pub mod sink_board;
pub mod sinks;
pub mod wire;

use std::sync::Arc;

use actix_web::web;

pub use app::{Limits, ROUTES, app, ops_app, routes};
pub use config::ServeConfig;
pub use registry::AppState;
use registry::Registry;

use keyledger_kms::hsm::HsmBackend;
use keyledger_ledger::writer::Clock;

fn tls_config(config: &ServeConfig) -> Result<Option<rustls::ServerConfig>, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let (Some(cert), Some(key)) = (&config.tls_cert, &config.tls_key) else {
        return Ok(None);
    };
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map(Some)
        .map_err(|e| format!("TLS: {e}"))
}

/// The stores `config` names: PostgreSQL with `database_url` (and the
/// store, to listen for other servers' appends), else the embedded files
/// in `data_dir` (which holds the ledger keys either way).
pub fn open_storage(
    config: &ServeConfig,
) -> Result<
    (
        keyledger_kms::instance::Storage,
        Option<Arc<keyledger_store_postgres::PostgresStore>>,
    ),
    String,
> {
    match &config.database_url {
        Some(url) => keyledger_store_postgres::open_storage(&config.data_dir, &url.0)
            .map(|(storage, store)| (storage, Some(store))),
        None => Ok((
            keyledger_kms::instance::Storage::embedded(&config.data_dir)?,
            None,
        )),
    }
}

/// Runs the server until SIGINT/SIGTERM, then drains in-flight requests and
/// stops every instance's writer (acknowledged events are already durable).
pub fn run(config: ServeConfig, hsm: Arc<dyn HsmBackend>) -> Result<(), String> {
    config.check()?;
    let tls = tls_config(&config)?;
    let bound = listener::bind_all(&config)?;
    let clock: Clock = Arc::new(chrono::Utc::now);
    let (storage, database) = open_storage(&config)?;
    let sink_settings = sinks::SinkSettings {
        database: database.clone(),
        ..config.sink_settings()
    };
    if config.dev {
        dev::bootstrap(&storage, hsm.clone())?;
    }
    let registry = Arc::new(Registry::open_all(&storage, hsm, clock.clone())?);
    if config.dev
        && let Some(service) = registry.get(dev::DEV_INSTANCE)
    {
        dev::unseal(&config.data_dir, &service)?;
    }
    let sinks = Arc::new(sink_board::SinkBoard::default());
    let state = web::Data::new(AppState {
        registry: registry.clone(),
        clock,
        sinks: sinks.clone(),
    });
    let listening = listener::listen(bound, &config, state, tls)?;
    if config.dev {
        dev::set_url(&config.data_dir, &listening.api_url)?;
        eprintln!("keyledger: {}", dev::WARNING);
        eprintln!(
            "keyledger: dev credentials in {}",
            dev::credentials_path(&config.data_dir).display()
        );
    }
    eprintln!(
        "keyledger: serving {} instance(s) on {}",
        registry.names().len(),
        listening.api_url
    );
    if let Some(url) = &listening.ops_url {
        eprintln!("keyledger: operations (metrics, health, ready) on {url}");
    }
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let scheduler = scheduler::spawn(
        registry.clone(),
        std::time::Duration::from_secs(config.scheduler_interval_secs.max(1)),
        stop.clone(),
    )
    .map_err(|e| format!("scheduler: {e}"))?;
    // Other servers' appends reach this one's projections within
    // milliseconds (each writer also catches up before it appends).
    let follower = match database {
        Some(store) => Some(
            follow::spawn(store, registry.clone(), stop.clone())
                .map_err(|e| format!("follower: {e}"))?,
        ),
        None => None,
    };
    let sink_supervisor = sinks::spawn(registry.clone(), sink_settings, sinks, stop.clone())
        .map_err(|e| format!("sinks: {e}"))?;
    let result = actix_web::rt::System::new().block_on(listening.server);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = sink_supervisor.join();
    let _ = scheduler.join();
    if let Some(follower) = follower {
        let _ = follower.join();
    }
    registry.shutdown();
    result.map_err(|e| e.to_string())
}
