//! `keyledger serve [--config FILE] [--data-dir DIR] [--listen ADDR]
//! [--tls-cert PEM --tls-key PEM | --plain-http] [--ops-listen ADDR] [--dev]
//! [--pkcs11-module PATH --pkcs11-token LABEL] [--database-url URL]`.

use std::path::PathBuf;
use std::sync::Arc;

use crate::hsm::HsmBackend;
use crate::server::ServeConfig;

#[derive(clap::Args)]
pub struct ServeArgs {
    /// TOML configuration file (flags and KEYLEDGER_* variables override it).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Data directory (embedded store, key material, ledger keys).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Address to listen on, e.g. 127.0.0.1:8080.
    #[arg(long)]
    pub listen: Option<String>,
    /// TLS certificate chain (PEM).
    #[arg(long)]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long)]
    pub tls_key: Option<PathBuf>,
    /// Address of the operations listener: /metrics, /health, and /ready
    /// naming sealed instances (default: none; with --dev a free loopback port).
    #[arg(long)]
    pub ops_listen: Option<String>,
    /// Serve plain HTTP (no TLS); only when asked.
    #[arg(long)]
    pub plain_http: bool,
    /// Development mode: a demo instance, ceremony and credentials on first
    /// start (DATA_DIR/dev-credentials.json); plain HTTP unless TLS files are given.
    #[arg(long)]
    pub dev: bool,
    /// PKCS#11 module of the HSM that holds the master keys (with
    /// --pkcs11-token; user PIN in KEYLEDGER_PKCS11_PIN). Without it: the
    /// software HSM.
    #[arg(long)]
    pub pkcs11_module: Option<PathBuf>,
    /// Label of that module's token.
    #[arg(long)]
    pub pkcs11_token: Option<String>,
    /// PostgreSQL for the instance logs and key material (a libpq URL or
    /// connection string; several servers may share it). Without it: the
    /// embedded store in the data directory. Also KEYLEDGER_DATABASE_URL.
    #[arg(long)]
    pub database_url: Option<String>,
    /// Where SIEM file sinks write (default: DATA_DIR/export). Also
    /// KEYLEDGER_EXPORT_DIR.
    #[arg(long)]
    pub export_dir: Option<PathBuf>,
    /// A SIEM sink reference, NAME=FILE: the file behind a sink's
    /// `token_ref`, `ca_ref`, `client_cert_ref` or `client_key_ref`
    /// (repeatable; also KEYLEDGER_SINK_REFS=NAME=FILE,...).
    #[arg(long, value_name = "NAME=FILE")]
    pub sink_ref: Vec<String>,
}

pub(super) fn run(args: &ServeArgs) -> Result<(), String> {
    let mut config = match &args.config {
        Some(path) => ServeConfig::from_file(path)?,
        None => ServeConfig::default(),
    };
    config.apply_env(|k| std::env::var(k).ok())?;
    if let Some(d) = &args.data_dir {
        config.data_dir = d.clone();
    }
    if let Some(l) = &args.listen {
        config.listen = l.clone();
    }
    if args.tls_cert.is_some() {
        config.tls_cert = args.tls_cert.clone();
    }
    if args.tls_key.is_some() {
        config.tls_key = args.tls_key.clone();
    }
    if args.ops_listen.is_some() {
        config.ops_listen = args.ops_listen.clone();
    }
    config.plain_http |= args.plain_http;
    config.dev |= args.dev;
    if args.pkcs11_module.is_some() {
        config.pkcs11_module = args.pkcs11_module.clone();
    }
    if args.pkcs11_token.is_some() {
        config.pkcs11_token = args.pkcs11_token.clone();
    }
    if args.export_dir.is_some() {
        config.export_dir = args.export_dir.clone();
    }
    for pair in &args.sink_ref {
        config.add_sink_ref(pair)?;
    }
    if let Some(url) = &args.database_url {
        config.database_url = Some(crate::server::config::DatabaseUrl(url.clone()));
    }
    if config.dev && config.tls_cert.is_none() && config.tls_key.is_none() {
        config.plain_http = true;
    }
    if config.dev && config.ops_listen.is_none() {
        config.ops_listen = Some("127.0.0.1:0".into());
    }
    // Everything that can refuse the start comes before anything is
    // written: a refused start leaves no data directory behind (the store
    // creates it, 0700, once the server opens its instances).
    config.check()?;
    crate::data_dir::check_private(&config.data_dir)?;
    let hsm = hsm_backend(&config)?;
    eprintln!("keyledger: HSM backend {}", hsm.kind());
    crate::server::run(config, hsm)
}

/// The PKCS#11 token the configuration names (logged in with the PIN from
/// the environment), or the software HSM.
fn hsm_backend(config: &ServeConfig) -> Result<Arc<dyn HsmBackend>, String> {
    match (&config.pkcs11_module, &config.pkcs11_token) {
        (Some(module), Some(token)) => pkcs11_backend(module, token),
        _ => Ok(Arc::new(crate::hsm::software::SoftwareHsm::new())),
    }
}

#[cfg(feature = "pkcs11")]
fn pkcs11_backend(module: &std::path::Path, token: &str) -> Result<Arc<dyn HsmBackend>, String> {
    crate::cli::hsm_args::open_pkcs11(module, token, "a PKCS#11 HSM")
}

#[cfg(not(feature = "pkcs11"))]
fn pkcs11_backend(_module: &std::path::Path, _token: &str) -> Result<Arc<dyn HsmBackend>, String> {
    Err("this keyledger was built without the pkcs11 feature".into())
}
