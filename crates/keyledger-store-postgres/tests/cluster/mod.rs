//! Throwaway PostgreSQL clusters for tests: each one lives in its own
//! temporary directory, listens on a free port of 127.0.0.1 only (its Unix
//! socket in that directory), lets loopback connections in with trust
//! auth, and is stopped and removed when its guard drops (also when the
//! test panics). They never touch the server on 5432.
//!
//! PostgreSQL refuses to run as root, so when the tests run as root every
//! server tool runs as the `postgres` OS user (`runuser -u postgres --`),
//! in directories owned by it.
//!
//! [`Cluster`] is one `initdb`/`pg_ctl` server; [`autofailover`] is a
//! pg_auto_failover monitor with two nodes.
#![allow(dead_code, clippy::expect_used, clippy::panic, clippy::unwrap_used)]

pub mod autofailover;

use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Where Debian puts the PostgreSQL 15 server programs.
pub const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// The OS user that runs the servers when the tests run as root.
const PG_OS_USER: &str = "postgres";

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

fn running_as_root() -> bool {
    fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// `program` with `env` set, run as the postgres OS user when we are root,
/// in `cwd` (which that user can enter).
pub fn pg_command(program: &str, env: &[(&str, &Path)], cwd: &Path) -> Command {
    let mut cmd = if running_as_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", PG_OS_USER, "--", "env"]);
        c
    } else {
        Command::new("env")
    };
    for (k, v) in env {
        cmd.arg(format!("{k}={}", v.display()));
    }
    cmd.arg(program).current_dir(cwd).stdin(Stdio::null());
    cmd
}

/// Runs `cmd` to its end; panics with its output if it failed.
pub fn run(cmd: &mut Command, what: &str) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    if !out.status.success() {
        panic!(
            "{what} failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

/// Runs `cmd`, ignoring failure (for clean-up); says so on stderr.
pub fn run_quietly(cmd: &mut Command, what: &str) {
    match cmd.stdout(Stdio::null()).stderr(Stdio::null()).status() {
        Ok(s) if s.success() => {}
        Ok(s) => eprintln!("cluster clean-up: {what}: {s}"),
        Err(e) => eprintln!("cluster clean-up: {what}: {e}"),
    }
}

/// A temporary directory owned by the postgres OS user (when root).
pub fn server_dir(prefix: &str) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("temporary directory");
    if running_as_root() {
        run(
            Command::new("chown").args([
                &format!("{PG_OS_USER}:{PG_OS_USER}"),
                dir.path().to_str().expect("utf-8 temp path"),
            ]),
            "chown the cluster directory",
        );
    }
    dir
}

/// Writes `contents` to `path` with `mode`, owned by the server's user.
pub fn write_server_file(path: &Path, contents: &[u8], mode: u32) {
    fs::write(path, contents).expect("write server file");
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod server file");
    if running_as_root() {
        run(
            Command::new("chown").args([
                &format!("{PG_OS_USER}:{PG_OS_USER}"),
                path.to_str().expect("utf-8 path"),
            ]),
            "chown a server file",
        );
    }
}

/// Polls `ready` every 100 ms until it holds; panics after `limit` with
/// `what` (a bound on a wait, not a timing assertion).
pub fn wait_for(what: &str, limit: Duration, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        if start.elapsed() > limit {
            panic!("gave up after {limit:?} waiting for {what}");
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// Whether something accepts PostgreSQL connections on 127.0.0.1:`port`
/// as user postgres to `dbname`.
pub fn answers(port: u16, dbname: &str) -> bool {
    connect(port, dbname).is_ok()
}

/// A plaintext connection to 127.0.0.1:`port` as user postgres.
pub fn connect(port: u16, dbname: &str) -> Result<postgres::Client, postgres::Error> {
    let mut config = postgres::Config::new();
    config
        .host("127.0.0.1")
        .port(port)
        .user("postgres")
        .dbname(dbname)
        .connect_timeout(Duration::from_secs(2));
    config.connect(postgres::NoTls)
}

/// One throwaway PostgreSQL 15 server (`initdb` + `pg_ctl`).
pub struct Cluster {
    dir: tempfile::TempDir,
    data: PathBuf,
    port: u16,
}

impl Cluster {
    /// A new cluster, initialised but not started: configure it with
    /// [`configure`](Self::configure) and files in [`dir`](Self::dir),
    /// then [`start`](Self::start) it.
    pub fn init() -> Self {
        let dir = server_dir("kl-pg-");
        let data = dir.path().join("data");
        run(
            pg_command(&format!("{PG_BIN}/initdb"), &[], dir.path()).args([
                "-D",
                data.to_str().expect("utf-8 path"),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ]),
            "initdb",
        );
        let port = free_port();
        let cluster = Cluster { dir, data, port };
        cluster.configure(&[
            "listen_addresses = '127.0.0.1'".to_string(),
            format!("port = {port}"),
            format!("unix_socket_directories = '{}'", cluster.dir().display()),
            "max_connections = 40".to_string(),
            "shared_buffers = 16MB".to_string(),
        ]);
        cluster
    }

    /// A cluster initialised and started with the defaults.
    pub fn started() -> Self {
        let c = Self::init();
        c.start();
        c
    }

    /// The cluster's directory (owned by the server's user): a place for
    /// certificate files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Appends `lines` to `postgresql.conf` (takes effect at start).
    pub fn configure(&self, lines: &[String]) {
        let conf = self.data.join("postgresql.conf");
        let mut text = fs::read_to_string(&conf).expect("read postgresql.conf");
        text.push_str("\n# keyledger test cluster\n");
        for l in lines {
            text.push_str(l);
            text.push('\n');
        }
        fs::write(&conf, text).expect("write postgresql.conf");
    }

    /// Replaces `pg_hba.conf` with `lines` (takes effect at start).
    pub fn set_hba(&self, lines: &[&str]) {
        fs::write(self.data.join("pg_hba.conf"), lines.join("\n") + "\n").expect("write pg_hba");
    }

    /// Starts the server and waits until it accepts connections.
    pub fn start(&self) {
        let log = self.dir().join("server.log");
        run(
            pg_command(&format!("{PG_BIN}/pg_ctl"), &[], self.dir()).args([
                "-D",
                self.data.to_str().expect("utf-8 path"),
                "-l",
                log.to_str().expect("utf-8 path"),
                "-w",
                "-t",
                "60",
                "start",
            ]),
            "pg_ctl start",
        );
    }

    /// Stops the server at once (`pg_ctl stop -m immediate`: no shutdown
    /// checkpoint, like a crash of the server processes); returns when
    /// it is gone.
    pub fn stop_immediate(&self) {
        run(&mut self.stop_command(), "pg_ctl stop -m immediate");
    }

    fn stop_command(&self) -> Command {
        let mut cmd = pg_command(&format!("{PG_BIN}/pg_ctl"), &[], self.dir());
        cmd.args([
            "-D",
            self.data.to_str().expect("utf-8 path"),
            "-m",
            "immediate",
            "-w",
            "stop",
        ]);
        cmd
    }

    /// A libpq connection string for `dbname` as user postgres, plus
    /// `extra` settings.
    pub fn url(&self, dbname: &str, extra: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname={dbname} connect_timeout=2 {extra}",
            self.port
        )
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Not running any more is fine (a test stopped it).
        if self.data.join("postmaster.pid").exists() {
            run_quietly(&mut self.stop_command(), "pg_ctl stop");
        }
    }
}
