//! Real receivers for the SIEM sink tests: a throwaway `rsyslogd` (imtcp on
//! loopback, plain or TLS through the gtls driver) that writes each
//! message's MSG as one line of a file, and the Splunk-HEC-like receiver
//! `tests/support/hec_receiver.py`. Free loopback ports, everything in a
//! temporary directory, the process killed on drop (also on panic).
//!
//! Self-contained (std, serde_json, tempfile) so that both the export
//! crate's tests and the root tests can include it with `#[path]`.
//! `scripts/rsyslog-setup` installs rsyslog and rsyslog-gnutls.

#![allow(dead_code)]

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// How long a receiver may take to listen.
const START_DEADLINE: Duration = Duration::from_secs(60);

/// A loopback port nothing listens on right now.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    listener.local_addr().expect("local address").port()
}

/// Whether something listens on 127.0.0.1:`port` (read from /proc, so no
/// probe connection reaches the receiver).
fn listening(port: u16) -> bool {
    let wanted = format!("0100007F:{port:04X}");
    fs::read_to_string("/proc/net/tcp")
        .map(|table| {
            table.lines().skip(1).any(|row| {
                let cols: Vec<&str> = row.split_whitespace().collect();
                cols.len() > 3 && cols[1] == wanted && cols[3] == "0A"
            })
        })
        .unwrap_or(false)
}

/// Waits until `child` listens on `port`; panics with its log if it exits.
fn wait_listening(child: &mut Child, port: u16, log: &Path, what: &str) {
    let deadline = Instant::now() + START_DEADLINE;
    loop {
        if listening(port) {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "{what} exited ({status}) before listening on {port}: {}",
                fs::read_to_string(log).unwrap_or_default()
            );
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{what} not listening on {port} after {START_DEADLINE:?}: {}",
                fs::read_to_string(log).unwrap_or_default()
            );
        }
        sleep(Duration::from_millis(50));
    }
}

/// Kills (SIGKILL) and reaps `child` if it runs.
fn kill_child(child: &mut Option<Child>) {
    if let Some(mut c) = child.take() {
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// The lines of `path` (none when it does not exist yet).
fn file_lines(path: &Path) -> Vec<String> {
    match fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8(bytes).expect("receiver output is UTF-8");
            text.split_terminator('\n').map(str::to_string).collect()
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => panic!("{}: {e}", path.display()),
    }
}

/// The rsyslogd binary: `RSYSLOGD`, the usual sbin paths, else from PATH.
fn rsyslogd() -> PathBuf {
    if let Some(p) = std::env::var_os("RSYSLOGD") {
        return PathBuf::from(p);
    }
    for p in [
        "/usr/sbin/rsyslogd",
        "/sbin/rsyslogd",
        "/usr/local/sbin/rsyslogd",
    ] {
        if Path::new(p).is_file() {
            return PathBuf::from(p);
        }
    }
    PathBuf::from("rsyslogd")
}

/// A throwaway rsyslogd: imtcp on 127.0.0.1 and a free port (TLS with the
/// gtls driver, anonymous client auth, when given a certificate and key),
/// Direct main queue, every message's MSG appended as one line to a file
/// (`flushOnTXEnd`). Its own pid file and work directory; no imuxsock or
/// imklog, so it does not clash with a system rsyslog and needs no root.
pub struct Rsyslog {
    dir: tempfile::TempDir,
    conf: PathBuf,
    pidfile: PathBuf,
    out: PathBuf,
    log: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl Rsyslog {
    /// Starts it and waits until it listens. `tls`: the server's
    /// certificate (PEM chain) and private key (PEM) paths.
    pub fn start(tls: Option<(&Path, &Path)>) -> Rsyslog {
        Self::start_with(tls, None)
    }

    /// Like [`Rsyslog::start`] over TLS, also requiring every client to
    /// present a certificate that chains to `client_ca` (gtls
    /// `x509/certvalid`).
    pub fn start_mtls(cert: &Path, key: &Path, client_ca: &Path) -> Rsyslog {
        Self::start_with(Some((cert, key)), Some(client_ca))
    }

    fn start_with(tls: Option<(&Path, &Path)>, client_ca: Option<&Path>) -> Rsyslog {
        let dir = tempfile::tempdir().expect("temp dir");
        let work = dir.path().join("work");
        fs::create_dir(&work).expect("work dir");
        let out = dir.path().join("messages.log");
        let port = free_port();
        let (global_tls, module_params) = match tls {
            None => (String::new(), String::new()),
            Some((cert, key)) => (
                format!(
                    "\n  DefaultNetstreamDriverCertFile=\"{}\"\n  DefaultNetstreamDriverKeyFile=\"{}\"{}",
                    cert.display(),
                    key.display(),
                    client_ca
                        .map(|ca| format!("\n  DefaultNetstreamDriverCAFile=\"{}\"", ca.display()))
                        .unwrap_or_default()
                ),
                format!(
                    " StreamDriver.Name=\"gtls\" StreamDriver.Mode=\"1\" StreamDriver.AuthMode=\"{}\"",
                    if client_ca.is_some() {
                        "x509/certvalid"
                    } else {
                        "anon"
                    }
                ),
            ),
        };
        let conf_text = format!(
            r#"# Throwaway rsyslogd for the keyledger sink tests.
global(workDirectory="{work}" maxMessageSize="4m"{global_tls})
main_queue(queue.type="Direct")
module(load="imtcp"{module_params})
template(name="msg_only" type="string" string="%msg%\n")
ruleset(name="net") {{
  action(type="omfile" file="{out}" template="msg_only" flushOnTXEnd="on" ioBufferSize="4m")
}}
input(type="imtcp" address="127.0.0.1" port="{port}" ruleset="net")
"#,
            work = work.display(),
            out = out.display(),
        );
        let conf = dir.path().join("rsyslog.conf");
        fs::write(&conf, conf_text).expect("write rsyslog.conf");
        let mut me = Rsyslog {
            pidfile: dir.path().join("rsyslogd.pid"),
            log: dir.path().join("rsyslogd.log"),
            dir,
            conf,
            out,
            port,
            child: None,
        };
        me.spawn();
        me
    }

    fn spawn(&mut self) {
        // A SIGKILLed rsyslogd leaves its pid file behind.
        let _ = fs::remove_file(&self.pidfile);
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("rsyslogd log");
        let mut child = Command::new(rsyslogd())
            .arg("-n")
            .arg("-f")
            .arg(&self.conf)
            .arg("-i")
            .arg(&self.pidfile)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting rsyslogd (scripts/rsyslog-setup): {e}"));
        wait_listening(&mut child, self.port, &self.log, "rsyslogd");
        self.child = Some(child);
    }

    /// `127.0.0.1:port`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The MSG of every message received so far, one per line.
    pub fn lines(&self) -> Vec<String> {
        file_lines(&self.out)
    }

    /// The output file.
    pub fn out_path(&self) -> &Path {
        &self.out
    }

    /// rsyslogd's own messages so far (its stdout and stderr: session
    /// errors and the like).
    pub fn internal_log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL (no chance to flush or close cleanly).
    pub fn kill9(&mut self) {
        kill_child(&mut self.child);
    }

    /// Starts it again (killing it first if it runs): same port, same
    /// output file.
    pub fn restart(&mut self) {
        kill_child(&mut self.child);
        self.spawn();
    }

    /// Whether the process runs.
    pub fn running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// The temporary directory (config, output, log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        kill_child(&mut self.child);
    }
}

/// `tests/support/hec_receiver.py`, found from the including crate upwards.
fn hec_script() -> PathBuf {
    let mut dir = Some(Path::new(env!("CARGO_MANIFEST_DIR")));
    while let Some(d) = dir {
        let candidate = d.join("tests/support/hec_receiver.py");
        if candidate.is_file() {
            return candidate;
        }
        dir = d.parent();
    }
    panic!("tests/support/hec_receiver.py not found above CARGO_MANIFEST_DIR")
}

/// The Splunk-HEC-like receiver (`tests/support/hec_receiver.py`) on
/// 127.0.0.1 and a free port; taken events are appended as JSON lines to a
/// file in a temporary directory.
pub struct HecReceiver {
    dir: tempfile::TempDir,
    token: String,
    /// Certificate, key and client CA arguments for HTTPS.
    tls_args: Vec<PathBuf>,
    out: PathBuf,
    log: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl HecReceiver {
    /// Starts it with the token it accepts and waits until it listens.
    pub fn start(token: &str) -> HecReceiver {
        Self::start_with(token, Vec::new())
    }

    /// The same over HTTPS with the server certificate (PEM chain) and key;
    /// with `client_ca`, a client certificate signed by it is required.
    pub fn start_tls(
        token: &str,
        cert: &Path,
        key: &Path,
        client_ca: Option<&Path>,
    ) -> HecReceiver {
        let mut tls_args = vec![cert.to_path_buf(), key.to_path_buf()];
        tls_args.extend(client_ca.map(Path::to_path_buf));
        Self::start_with(token, tls_args)
    }

    fn start_with(token: &str, tls_args: Vec<PathBuf>) -> HecReceiver {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut me = HecReceiver {
            out: dir.path().join("events.jsonl"),
            log: dir.path().join("hec_receiver.log"),
            dir,
            token: token.to_string(),
            tls_args,
            port: free_port(),
            child: None,
        };
        me.spawn();
        me
    }

    fn spawn(&mut self) {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("receiver log");
        let mut command = Command::new("python3");
        command
            .arg(hec_script())
            .arg("--port")
            .arg(self.port.to_string())
            .arg("--token")
            .arg(&self.token)
            .arg("--out")
            .arg(&self.out);
        for (flag, path) in ["--cert", "--key", "--client-ca"]
            .iter()
            .zip(&self.tls_args)
        {
            command.arg(flag).arg(path);
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting python3 hec_receiver.py: {e}"));
        wait_listening(&mut child, self.port, &self.log, "hec_receiver.py");
        self.child = Some(child);
    }

    /// The collector endpoint,
    /// `http(s)://127.0.0.1:port/services/collector/event`.
    pub fn url(&self) -> String {
        let scheme = if self.tls_args.is_empty() {
            "http"
        } else {
            "https"
        };
        format!(
            "{scheme}://127.0.0.1:{}/services/collector/event",
            self.port
        )
    }

    /// The same endpoint named `host` (which must resolve to 127.0.0.1).
    pub fn url_for(&self, host: &str) -> String {
        self.url().replace("127.0.0.1", host)
    }

    /// `127.0.0.1:port`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Every event object taken so far, in order.
    pub fn events(&self) -> Vec<serde_json::Value> {
        file_lines(&self.out)
            .iter()
            .map(|l| serde_json::from_str(l).expect("receiver wrote JSON"))
            .collect()
    }

    /// SIGKILL.
    pub fn kill9(&mut self) {
        kill_child(&mut self.child);
    }

    /// Starts it again (killing it first if it runs): same port and file.
    pub fn restart(&mut self) {
        kill_child(&mut self.child);
        self.spawn();
    }
}

impl Drop for HecReceiver {
    fn drop(&mut self) {
        kill_child(&mut self.child);
    }
}
