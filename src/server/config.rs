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
//! dev = false
//! scheduler_interval_secs = 30
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

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
    pub dev: bool,
    /// Worker threads (0 = one per core).
    pub workers: usize,
    /// Seconds between runs of the scheduled jobs (activation, expiry,
    /// approval expiry, crypto worker, rotation policies).
    pub scheduler_interval_secs: u64,
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
            dev: false,
            workers: 0,
            scheduler_interval_secs: 30,
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
        if let Some(v) = env("KEYLEDGER_WORKERS") {
            self.workers = v
                .parse()
                .map_err(|_| "KEYLEDGER_WORKERS must be a number")?;
        }
        Ok(())
    }

    /// Checks the combination: TLS needs both files unless plain HTTP was asked for.
    pub fn check(&self) -> Result<(), String> {
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
}
