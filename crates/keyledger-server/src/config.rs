//! Server settings: a TOML file, then `KEYLEDGER_*` environment variables,
//! then command-line flags, each overriding the one before.
//!
//! ```toml
//! data_dir = "/var/lib/keyledger"
//! listen = "0.0.0.0:8443"
//! tls_cert = "/etc/keyledger/cert.pem"
//! tls_key = "/etc/keyledger/key.pem"
//! plain_http = false        # true: serve HTTP without TLS (only when asked)
//! body_limit_bytes = 65536
//! body_timeout_secs = 10    # a body slower than this after its head: 408
//! max_connections = 2048    # open connections per worker thread
//! ops_listen = "127.0.0.1:9464"  # /metrics, /health, /ready (none: not served)
//! dev = false
//! workers = 0               # 0: one per core
//! scheduler_interval_secs = 30
//! # The HSM: the software backend unless a PKCS#11 module and token are
//! # named; the token's user PIN only ever comes from KEYLEDGER_PKCS11_PIN.
//! pkcs11_module = "/usr/lib/softhsm/libsofthsm2.so"
//! pkcs11_token = "keyledger"
//! # The instance logs and key material on PostgreSQL instead of the
//! # embedded files under data_dir (which still holds the ledger keys).
//! database_url = "host=db1,db2 user=keyledger dbname=keyledger target_session_attrs=read-write"
//! # SIEM sinks are set by a quorum-signed `export.set_sinks` command in the
//! # log; the server supplies only what stays out of it: where file sinks
//! # write (default: <data_dir>/export) and the files behind references.
//! export_dir = "/var/log/keyledger"
//! [sink_refs]
//! splunk-token = "/etc/keyledger/splunk.token"
//! siem-ca = "/etc/keyledger/siem-ca.pem"
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// A libpq connection string or URL. It may carry a password, so its
/// `Debug` shows neither it nor anything else of the string.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct DatabaseUrl(pub String);

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DatabaseUrl(..)")
    }
}

/// Everything `keyledger serve` needs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServeConfig {
    pub data_dir: PathBuf,
    pub listen: String,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub plain_http: bool,
    pub body_limit_bytes: usize,
    /// Seconds a request body may take to arrive after its head (408 after).
    pub body_timeout_secs: u64,
    /// Open connections per worker thread; at the bound the server stops
    /// accepting until one closes (the kernel's backlog holds the rest).
    pub max_connections: usize,
    /// Address of the operations listener (`/metrics`, `/health`, `/ready`
    /// naming sealed instances); none: not served (`--dev`: a free loopback
    /// port).
    pub ops_listen: Option<String>,
    pub dev: bool,
    /// Worker threads (0 = one per core).
    pub workers: usize,
    /// Seconds between runs of the scheduled jobs (activation, expiry,
    /// approval expiry, crypto worker, rotation policies).
    pub scheduler_interval_secs: u64,
    /// PKCS#11 module of the HSM holding the master keys (with `pkcs11_token`);
    /// none: the software HSM.
    pub pkcs11_module: Option<PathBuf>,
    /// Label of that module's token.
    pub pkcs11_token: Option<String>,
    /// PostgreSQL holding the instance logs and key material (several
    /// servers may share it); none: the embedded store in `data_dir`.
    pub database_url: Option<DatabaseUrl>,
    /// Where file sinks write (`<export_dir>/<instance>/<file>`); none:
    /// `<data_dir>/export`.
    pub export_dir: Option<PathBuf>,
    /// Sink reference name -> file (HEC token, TLS CA, client certificate
    /// or key), resolved when a sink starts.
    pub sink_refs: BTreeMap<String, PathBuf>,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            data_dir: PathBuf::from("keyledger-data"),
            listen: "127.0.0.1:8080".into(),
            tls_cert: None,
            tls_key: None,
            plain_http: false,
            body_limit_bytes: 64 * 1024,
            body_timeout_secs: 10,
            max_connections: 2048,
            ops_listen: None,
            dev: false,
            workers: 0,
            scheduler_interval_secs: 30,
            pkcs11_module: None,
            pkcs11_token: None,
            database_url: None,
            export_dir: None,
            sink_refs: BTreeMap::new(),
        }
    }
}

impl ServeConfig {
    /// Reads a TOML file.
    pub fn from_file(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::from_toml(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn from_toml(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// Applies `KEYLEDGER_*` variables from `env`.
    pub fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<(), String> {
        if let Some(v) = env("KEYLEDGER_DATA_DIR") {
            self.data_dir = v.into();
        }
        if let Some(v) = env("KEYLEDGER_LISTEN") {
            self.listen = v;
        }
        if let Some(v) = env("KEYLEDGER_TLS_CERT") {
            self.tls_cert = Some(v.into());
        }
        if let Some(v) = env("KEYLEDGER_TLS_KEY") {
            self.tls_key = Some(v.into());
        }
        let flag = |name: &str, v: String| match v.as_str() {
            "1" | "true" => Ok(true),
            "0" | "false" => Ok(false),
            _ => Err(format!("{name} must be true or false")),
        };
        if let Some(v) = env("KEYLEDGER_PLAIN_HTTP") {
            self.plain_http = flag("KEYLEDGER_PLAIN_HTTP", v)?;
        }
        if let Some(v) = env("KEYLEDGER_DEV") {
            self.dev = flag("KEYLEDGER_DEV", v)?;
        }
        if let Some(v) = env("KEYLEDGER_BODY_LIMIT_BYTES") {
            self.body_limit_bytes = v
                .parse()
                .map_err(|_| "KEYLEDGER_BODY_LIMIT_BYTES must be a number")?;
        }
        if let Some(v) = env("KEYLEDGER_BODY_TIMEOUT_SECS") {
            self.body_timeout_secs = v
                .parse()
                .map_err(|_| "KEYLEDGER_BODY_TIMEOUT_SECS must be a number")?;
        }
        if let Some(v) = env("KEYLEDGER_MAX_CONNECTIONS") {
            self.max_connections = v
                .parse()
                .map_err(|_| "KEYLEDGER_MAX_CONNECTIONS must be a number")?;
        }
        if let Some(v) = env("KEYLEDGER_OPS_LISTEN") {
            self.ops_listen = Some(v);
        }
        if let Some(v) = env("KEYLEDGER_WORKERS") {
            self.workers = v
                .parse()
                .map_err(|_| "KEYLEDGER_WORKERS must be a number")?;
        }
        if let Some(v) = env("KEYLEDGER_SCHEDULER_INTERVAL_SECS") {
            self.scheduler_interval_secs = v
                .parse()
                .map_err(|_| "KEYLEDGER_SCHEDULER_INTERVAL_SECS must be a number")?;
        }
        if let Some(v) = env("KEYLEDGER_PKCS11_MODULE") {
            self.pkcs11_module = Some(v.into());
        }
        if let Some(v) = env("KEYLEDGER_PKCS11_TOKEN") {
            self.pkcs11_token = Some(v);
        }
        if let Some(v) = env("KEYLEDGER_DATABASE_URL") {
            self.database_url = Some(DatabaseUrl(v));
        }
        if let Some(v) = env("KEYLEDGER_EXPORT_DIR") {
            self.export_dir = Some(v.into());
        }
        if let Some(v) = env("KEYLEDGER_SINK_REFS") {
            for pair in v.split(',').filter(|p| !p.is_empty()) {
                self.add_sink_ref(pair)?;
            }
        }
        Ok(())
    }

    /// Adds one `NAME=FILE` sink reference.
    pub fn add_sink_ref(&mut self, pair: &str) -> Result<(), String> {
        match pair.split_once('=') {
            Some((name, file)) if !name.is_empty() && !file.is_empty() => {
                self.sink_refs.insert(name.to_string(), file.into());
                Ok(())
            }
            _ => Err(format!(
                "a sink reference is NAME=FILE, not {:?}",
                pair.chars().take(64).collect::<String>()
            )),
        }
    }

    /// What the SIEM sinks need of this configuration.
    pub fn sink_settings(&self) -> super::sinks::SinkSettings {
        super::sinks::SinkSettings {
            data_dir: self.data_dir.clone(),
            export_dir: self
                .export_dir
                .clone()
                .unwrap_or_else(|| self.data_dir.join("export")),
            refs: self.sink_refs.clone(),
            delivery: Default::default(),
            database: None,
        }
    }

    /// Checks the combinations: TLS needs both files unless plain HTTP was
    /// asked for; a PKCS#11 module needs its token label and the reverse.
    pub fn check(&self) -> Result<(), String> {
        if self.body_timeout_secs == 0 || self.max_connections == 0 {
            return Err("body_timeout_secs and max_connections must be above zero".into());
        }
        if self.pkcs11_module.is_some() != self.pkcs11_token.is_some() {
            return Err("a PKCS#11 HSM needs both pkcs11_module and pkcs11_token".into());
        }
        match (&self.tls_cert, &self.tls_key, self.plain_http) {
            (Some(_), Some(_), false) => Ok(()),
            (None, None, true) => Ok(()),
            (_, _, true) => Err("plain_http and TLS files are mutually exclusive".into()),
            _ => Err(
                "TLS needs both tls_cert and tls_key; to serve plain HTTP, ask for it (--plain-http or --dev)"
                    .into(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_then_env_then_checks() {
        let mut c =
            ServeConfig::from_toml("listen = \"0.0.0.0:9000\"\nplain_http = true\n").unwrap();
        assert_eq!(c.listen, "0.0.0.0:9000");
        c.apply_env(|k| (k == "KEYLEDGER_LISTEN").then(|| "127.0.0.1:1".to_string()))
            .unwrap();
        assert_eq!(c.listen, "127.0.0.1:1");
        c.check().unwrap();
        assert!(ServeConfig::from_toml("nonsense = 1").is_err());
        let tls_half = ServeConfig {
            tls_cert: Some("c.pem".into()),
            ..ServeConfig::default()
        };
        assert!(tls_half.check().unwrap_err().contains("both"));
        assert!(
            c.apply_env(|k| (k == "KEYLEDGER_DEV").then(|| "maybe".to_string()))
                .unwrap_err()
                .contains("true or false")
        );
    }

    #[test]
    fn every_setting_has_a_variable() {
        let mut c = ServeConfig::default();
        let env = |k: &str| {
            Some(
                match k {
                    "KEYLEDGER_DATA_DIR" => "/d",
                    "KEYLEDGER_LISTEN" => "0.0.0.0:1",
                    "KEYLEDGER_TLS_CERT" => "c.pem",
                    "KEYLEDGER_TLS_KEY" => "k.pem",
                    "KEYLEDGER_PLAIN_HTTP" => "false",
                    "KEYLEDGER_DEV" => "true",
                    "KEYLEDGER_BODY_LIMIT_BYTES" => "1000",
                    "KEYLEDGER_BODY_TIMEOUT_SECS" => "4",
                    "KEYLEDGER_MAX_CONNECTIONS" => "64",
                    "KEYLEDGER_OPS_LISTEN" => "127.0.0.1:2",
                    "KEYLEDGER_WORKERS" => "3",
                    "KEYLEDGER_SCHEDULER_INTERVAL_SECS" => "7",
                    "KEYLEDGER_PKCS11_MODULE" => "/lib/p11.so",
                    "KEYLEDGER_PKCS11_TOKEN" => "tok",
                    "KEYLEDGER_DATABASE_URL" => "host=127.0.0.1 password=hunter2",
                    "KEYLEDGER_EXPORT_DIR" => "/x",
                    "KEYLEDGER_SINK_REFS" => "tok=/t,ca=/c.pem",
                    _ => return None,
                }
                .to_string(),
            )
        };
        c.apply_env(env).unwrap();
        let expected = ServeConfig {
            data_dir: "/d".into(),
            listen: "0.0.0.0:1".into(),
            tls_cert: Some("c.pem".into()),
            tls_key: Some("k.pem".into()),
            plain_http: false,
            body_limit_bytes: 1000,
            body_timeout_secs: 4,
            max_connections: 64,
            ops_listen: Some("127.0.0.1:2".into()),
            dev: true,
            workers: 3,
            scheduler_interval_secs: 7,
            pkcs11_module: Some("/lib/p11.so".into()),
            pkcs11_token: Some("tok".into()),
            database_url: Some(DatabaseUrl("host=127.0.0.1 password=hunter2".into())),
            export_dir: Some("/x".into()),
            sink_refs: [("tok".into(), "/t".into()), ("ca".into(), "/c.pem".into())].into(),
        };
        assert_eq!(c, expected);
        assert!(
            !format!("{c:?}").contains("hunter2"),
            "Debug shows the password"
        );
        c.check().unwrap();
        assert!(
            c.apply_env(|k| (k == "KEYLEDGER_SCHEDULER_INTERVAL_SECS").then(|| "soon".into()))
                .unwrap_err()
                .contains("must be a number")
        );
        let half = ServeConfig {
            pkcs11_module: Some("/lib/p11.so".into()),
            plain_http: true,
            ..ServeConfig::default()
        };
        assert_eq!(
            half.check().unwrap_err(),
            "a PKCS#11 HSM needs both pkcs11_module and pkcs11_token"
        );
        let from_file = ServeConfig::from_toml(
            "pkcs11_module = \"/lib/p11.so\"\npkcs11_token = \"tok\"\nplain_http = true\n",
        )
        .unwrap();
        assert_eq!(from_file.pkcs11_token.as_deref(), Some("tok"));
        from_file.check().unwrap();
    }
}
