//! `keyledger serve [--config FILE] [--data-dir DIR] [--listen ADDR]
//! [--tls-cert PEM --tls-key PEM | --plain-http] [--dev]`.

use std::path::PathBuf;
use std::sync::Arc;

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
    /// Serve plain HTTP (no TLS); only when asked.
    #[arg(long)]
    pub plain_http: bool,
    /// Development mode: a demo instance, ceremony and credentials on first
    /// start (DATA_DIR/dev-credentials.json); plain HTTP unless TLS files are given.
    #[arg(long)]
    pub dev: bool,
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
    config.plain_http |= args.plain_http;
    config.dev |= args.dev;
    if config.dev && config.tls_cert.is_none() && config.tls_key.is_none() {
        config.plain_http = true;
    }
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| format!("{}: {e}", config.data_dir.display()))?;
    crate::server::run(config, Arc::new(crate::hsm::software::SoftwareHsm::new()))
}
