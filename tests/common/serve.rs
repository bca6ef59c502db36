//! A `keyledger serve --dev` child process on a free port, its stderr
//! captured to a file (scanned by the tests), and Key Protect calls on it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::http::{Conn, Response};

pub const INSTANCE: &str = "dev-instance";

pub struct DevServer {
    pub child: Child,
    pub addr: String,
    /// The operations listener (`/metrics`, `/health`, `/ready`).
    pub ops_addr: String,
    pub data_dir: PathBuf,
    pub stderr_path: PathBuf,
    pub tokens: std::collections::BTreeMap<String, String>,
}

impl DevServer {
    /// Starts `keyledger serve --dev` on `data_dir` (created or reused) with
    /// extra `env`, and waits until it listens. Stderr goes to `stderr_path`.
    pub fn start(data_dir: &Path, stderr_path: &Path, env: &[(&str, &str)]) -> DevServer {
        let stderr = std::fs::File::create(stderr_path).expect("stderr file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_keyledger"));
        cmd.args(["serve", "--dev", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn keyledger serve");
        let deadline = Instant::now() + Duration::from_secs(120);
        let listening = |text: &str, what: &str| {
            text.lines().filter(|l| l.starts_with(what)).find_map(|l| {
                l.split_once(" on http://")
                    .map(|(_, a)| a.trim().to_string())
            })
        };
        let (addr, ops_addr) = loop {
            let text = std::fs::read_to_string(stderr_path).unwrap_or_default();
            if let (Some(addr), Some(ops)) = (
                listening(&text, "keyledger: serving "),
                listening(&text, "keyledger: operations "),
            ) {
                break (addr, ops);
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("keyledger serve exited early ({status}): {text}");
            }
            assert!(Instant::now() < deadline, "server did not start: {text}");
            std::thread::sleep(Duration::from_millis(20));
        };
        let creds: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(data_dir.join("dev-credentials.json")).expect("credentials"),
        )
        .expect("credentials JSON");
        let tokens = creds["tokens"]
            .as_object()
            .expect("tokens")
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().expect("token").to_string()))
            .collect();
        DevServer {
            child,
            addr,
            ops_addr,
            data_dir: data_dir.to_path_buf(),
            stderr_path: stderr_path.to_path_buf(),
            tokens,
        }
    }

    pub fn conn(&self) -> Conn {
        Conn::connect(&self.addr).expect("connect")
    }

    /// A connection to the operations listener.
    pub fn ops_conn(&self) -> Conn {
        Conn::connect(&self.ops_addr).expect("connect to the operations listener")
    }

    pub fn token(&self, role: &str) -> String {
        self.tokens.get(role).expect("role token").clone()
    }

    /// Sends SIGTERM and waits for the exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        self.child.wait().expect("wait")
    }

    /// The dev instance's log size (records), as the server reports it.
    pub fn log_records(&self) -> u64 {
        log_records(&mut self.ops_conn())
    }

    /// Everything the server printed so far.
    pub fn output(&self) -> Vec<u8> {
        std::fs::read(&self.stderr_path).expect("read stderr")
    }
}

impl Drop for DevServer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A Key Protect call as `token` on the dev instance.
pub fn call(
    conn: &mut Conn,
    token: &str,
    method: &str,
    path: &str,
    body: Option<&serde_json::Value>,
) -> Response {
    let auth = format!("Bearer {token}");
    let bytes = body.map(|b| serde_json::to_vec(b).expect("json"));
    conn.request(
        method,
        path,
        &[("authorization", &auth), ("bluemix-instance", INSTANCE)],
        bytes.as_deref(),
    )
    .expect("request")
}

/// Creates a root key named `name`; returns its id.
pub fn create_root_key(conn: &mut Conn, token: &str, name: &str) -> String {
    let body = serde_json::json!({
        "metadata": {"collectionType": "application/vnd.ibm.kms.key+json", "collectionTotal": 1},
        "resources": [{"type": "application/vnd.ibm.kms.key+json", "name": name, "extractable": false}],
    });
    let res = call(conn, token, "POST", "/api/v2/keys", Some(&body));
    assert_eq!(
        res.status(),
        201,
        "create: {}",
        String::from_utf8_lossy(&res.body)
    );
    res.json()["resources"][0]["id"]
        .as_str()
        .expect("key id")
        .to_string()
}

/// The instance's log size as `/metrics` reports it (`conn`: a connection
/// to the operations listener, [`DevServer::ops_conn`]).
pub fn log_records(conn: &mut Conn) -> u64 {
    let res = conn.request("GET", "/metrics", &[], None).expect("metrics");
    assert_eq!(res.status(), 200);
    let text = String::from_utf8(res.body).expect("metrics text");
    let prefix = format!("keyledger_log_records{{instance=\"{INSTANCE}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no log_records gauge in {text}"))
}
