//! A throwaway pg_auto_failover formation: a monitor and two PostgreSQL
//! nodes with synchronous replication, on free loopback ports, each run by
//! `pg_autoctl ... --run` in the background, in one temporary directory
//! (data, pg_autoctl's configuration and state via `XDG_*`). Offers the
//! multi-host URL of the formation and "stop the primary"; stops and
//! removes everything when dropped. `scripts/pg-auto-failover-setup`
//! installs `pg_autoctl`.
//!
//! The monitor's health checks and demote timeout are shortened (seconds,
//! not the production defaults of tens of seconds) so that a failover
//! takes a few seconds in a test.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::{PG_BIN, connect, free_port, pg_command, run, run_quietly, server_dir, wait_for};

/// The database the nodes create and the store uses.
pub const DBNAME: &str = "keyledger";

/// How long the monitor waits, after it declared the primary unhealthy,
/// before it promotes the secondary (`pgautofailover.primary_demote_timeout`):
/// the least time a failover takes here.
pub const DEMOTE_TIMEOUT: Duration = Duration::from_secs(6);

/// Creating a node includes a base backup; bound the waits generously for
/// a loaded 2-core CI machine.
const SETUP_LIMIT: Duration = Duration::from_secs(90);

struct Server {
    name: &'static str,
    pgdata: PathBuf,
    port: u16,
    child: Option<Child>,
}

/// A monitor and two nodes (see the module docs).
pub struct Formation {
    dir: tempfile::TempDir,
    monitor: Server,
    nodes: Vec<Server>,
}

fn autoctl_path() -> Option<String> {
    ["/usr/bin/pg_autoctl", &format!("{PG_BIN}/pg_autoctl")]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .map(str::to_string)
}

fn autoctl() -> String {
    autoctl_path().unwrap_or_else(|| {
        panic!("pg_autoctl is not installed: run scripts/pg-auto-failover-setup")
    })
}

impl Formation {
    /// Creates and starts the monitor and both nodes; returns once one node
    /// is primary and the other a secondary in synchronous replication.
    pub fn start() -> Self {
        let dir = server_dir("kl-pgaf-");
        let mut formation = Formation {
            monitor: Server {
                name: "monitor",
                pgdata: dir.path().join("monitor"),
                port: free_port(),
                child: None,
            },
            nodes: Vec::new(),
            dir,
        };
        let monitor_port = formation.monitor.port;
        formation.spawn_monitor();
        formation.wait("the pg_auto_failover monitor", || {
            connect(monitor_port, "pg_auto_failover").is_ok_and(|mut c| {
                c.query_one("SELECT count(*) FROM pgautofailover.formation", &[])
                    .is_ok()
            })
        });
        formation.tune_monitor();
        formation.add_node("node1");
        formation.wait("node1 to run alone as primary", || {
            formation
                .states()
                .iter()
                .any(|(n, r, g)| n == "node1" && r == "single" && g == "single")
        });
        formation.add_node("node2");
        let node1_port = formation.nodes[0].port;
        formation.wait(
            "a primary and a secondary in synchronous replication",
            || {
                // pg_autoctl's base backup waits for a spread checkpoint
                // on the primary; ask for an immediate one so it finishes
                // at once.
                if let Ok(mut c) = connect(node1_port, "postgres") {
                    let _ = c.batch_execute("CHECKPOINT");
                }
                formation.in_sync()
            },
        );
        formation
    }

    fn env(&self) -> Vec<(&'static str, PathBuf)> {
        let root = self.dir.path();
        vec![
            ("XDG_CONFIG_HOME", root.join("config")),
            ("XDG_DATA_HOME", root.join("share")),
            ("XDG_RUNTIME_DIR", root.join("run")),
            ("PG_CONFIG", PathBuf::from(format!("{PG_BIN}/pg_config"))),
        ]
    }

    fn autoctl_command(&self) -> Command {
        let env = self.env();
        let env: Vec<(&str, &Path)> = env.iter().map(|(k, v)| (*k, v.as_path())).collect();
        pg_command(&autoctl(), &env, self.dir.path())
    }

    fn monitor_uri(&self) -> String {
        format!(
            "postgres://autoctl_node@127.0.0.1:{}/pg_auto_failover?sslmode=disable",
            self.monitor.port
        )
    }

    fn log_file(&self, name: &str) -> (Stdio, Stdio) {
        let f = File::create(self.dir.path().join(format!("{name}.log"))).expect("log file");
        let g = f.try_clone().expect("log file");
        (Stdio::from(f), Stdio::from(g))
    }

    fn spawn_monitor(&mut self) {
        let (out, err) = self.log_file("monitor");
        let mut cmd = self.autoctl_command();
        cmd.args(["create", "monitor", "--pgdata"])
            .arg(&self.monitor.pgdata)
            .args(["--pgport", &self.monitor.port.to_string()])
            .args(["--hostname", "127.0.0.1", "--listen", "127.0.0.1"])
            .args(["--auth", "trust", "--no-ssl", "--run"])
            .args(["--pgctl", &format!("{PG_BIN}/pg_ctl")])
            .stdout(out)
            .stderr(err);
        self.monitor.child = Some(cmd.spawn().expect("spawn pg_autoctl create monitor"));
    }

    /// Health checks every second, one retry, unhealthy after 2 s, and
    /// the demote timeout of [`DEMOTE_TIMEOUT`].
    fn tune_monitor(&self) {
        let mut c = connect(self.monitor.port, "pg_auto_failover").expect("monitor");
        let demote = DEMOTE_TIMEOUT.as_millis().to_string();
        for (name, value) in [
            ("health_check_period", "1000"),
            ("health_check_timeout", "1000"),
            ("health_check_max_retries", "1"),
            ("health_check_retry_delay", "500"),
            ("node_considered_unhealthy_timeout", "2000"),
            ("primary_demote_timeout", demote.as_str()),
        ] {
            // One statement each: ALTER SYSTEM refuses a transaction block.
            c.batch_execute(&format!("ALTER SYSTEM SET pgautofailover.{name} = {value}"))
                .expect("tune the monitor");
        }
        c.batch_execute("SELECT pg_reload_conf()")
            .expect("reload the monitor");
    }

    fn add_node(&mut self, name: &'static str) {
        let node = Server {
            name,
            pgdata: self.dir.path().join(name),
            port: free_port(),
            child: None,
        };
        let (out, err) = self.log_file(name);
        let mut cmd = self.autoctl_command();
        cmd.args(["create", "postgres", "--pgdata"])
            .arg(&node.pgdata)
            .args(["--pgport", &node.port.to_string()])
            .args(["--hostname", "127.0.0.1", "--listen", "127.0.0.1"])
            .args(["--name", name, "--dbname", DBNAME])
            .args(["--auth", "trust", "--no-ssl", "--run"])
            .args(["--monitor", &self.monitor_uri()])
            .args(["--pgctl", &format!("{PG_BIN}/pg_ctl")])
            .stdout(out)
            .stderr(err);
        let child = cmd.spawn().expect("spawn pg_autoctl create postgres");
        self.nodes.push(Server {
            child: Some(child),
            ..node
        });
    }

    /// (name, reported state, goal state) of every node, as the monitor
    /// sees them; empty if the monitor does not answer.
    pub fn states(&self) -> Vec<(String, String, String)> {
        let Ok(mut c) = connect(self.monitor.port, "pg_auto_failover") else {
            return Vec::new();
        };
        c.query(
            "SELECT nodename, reportedstate::text, goalstate::text FROM pgautofailover.node",
            &[],
        )
        .map(|rows| {
            rows.iter()
                .map(|r| (r.get(0), r.get(1), r.get(2)))
                .collect()
        })
        .unwrap_or_default()
    }

    /// The index of the node the monitor has as primary (reported and
    /// assigned), if any.
    pub fn primary(&self) -> Option<usize> {
        let states = self.states();
        self.nodes.iter().position(|n| {
            states
                .iter()
                .any(|(name, r, g)| name == n.name && r == "primary" && g == "primary")
        })
    }

    /// Whether one node is primary, the other secondary, and the primary
    /// replicates to it synchronously.
    fn in_sync(&self) -> bool {
        let Some(p) = self.primary() else {
            return false;
        };
        let states = self.states();
        let secondary_ok = self.nodes.iter().enumerate().all(|(i, n)| {
            i == p
                || states
                    .iter()
                    .any(|(name, r, g)| name == n.name && r == "secondary" && g == "secondary")
        });
        secondary_ok
            && connect(self.nodes[p].port, "postgres").is_ok_and(|mut c| {
                c.query_one(
                "SELECT count(*) FROM pg_stat_replication WHERE sync_state IN ('sync', 'quorum')",
                &[],
            )
            .is_ok_and(|r| r.get::<_, i64>(0) >= 1)
            })
    }

    /// The libpq multi-host URL of the formation: connections go to
    /// whichever node is the writable primary.
    pub fn url(&self) -> String {
        let hosts = vec!["127.0.0.1"; self.nodes.len()].join(",");
        let ports = self
            .nodes
            .iter()
            .map(|n| n.port.to_string())
            .collect::<Vec<_>>()
            .join(",");
        format!(
            "host={hosts} port={ports} user=postgres dbname={DBNAME} \
             target_session_attrs=read-write connect_timeout=2"
        )
    }

    /// Stops the primary node (its pg_autoctl and PostgreSQL, `--immediate`,
    /// so no shutdown checkpoint: like a crash) and returns its index and
    /// the moment it stopped answering. The node stays down.
    pub fn stop_primary(&mut self) -> (usize, Instant) {
        // Only a secondary that was in sync may be promoted without loss.
        self.wait("the formation in sync before the primary stops", || {
            self.in_sync()
        });
        let p = self.primary().expect("a primary to stop");
        let pgdata = self.nodes[p].pgdata.clone();
        let port = self.nodes[p].port;
        run(
            self.autoctl_command()
                .args(["stop", "--immediate", "--pgdata"])
                .arg(&pgdata),
            "pg_autoctl stop --immediate (the primary)",
        );
        wait_for(
            "the stopped primary to refuse connections",
            SETUP_LIMIT,
            || connect(port, "postgres").is_err(),
        );
        // Its pg_autoctl process is reaped when the formation drops.
        (p, Instant::now())
    }

    /// Polls `ready` until it holds; after [`SETUP_LIMIT`] panics with
    /// `what` and the pg_autoctl logs.
    fn wait(&self, what: &str, mut ready: impl FnMut() -> bool) {
        let start = Instant::now();
        while !ready() {
            if start.elapsed() > SETUP_LIMIT {
                panic!(
                    "gave up after {SETUP_LIMIT:?} waiting for {what}\n{}",
                    self.logs()
                );
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until the node `index` is the primary.
    pub fn wait_promoted(&self, index: usize) {
        self.wait("the secondary to be promoted", || {
            let states = self.states();
            let name = self.nodes[index].name;
            states
                .iter()
                .any(|(n, r, _)| n == name && (r == "wait_primary" || r == "primary"))
        });
    }

    /// The last lines of every pg_autoctl log (for a failing test).
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for name in ["monitor", "node1", "node2"] {
            let text = std::fs::read_to_string(self.dir.path().join(format!("{name}.log")))
                .unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            out.push_str(&format!("--- {name}.log ---\n"));
            for l in &lines[lines.len().saturating_sub(25)..] {
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    }
}

/// Waits (bounded) for a pg_autoctl process to end, killing it if it does
/// not.
fn reap(child: &mut Child) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(15) {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
}

impl Drop for Formation {
    fn drop(&mut self) {
        // Every pg_autoctl is told to stop first (each stops its own
        // PostgreSQL), then all are reaped, so their shutdowns overlap;
        // pg_ctl is the backstop for a server left behind. Never panics
        // (this may run while a test unwinds).
        let root = self.dir.path().to_path_buf();
        let env = [
            ("XDG_CONFIG_HOME", root.join("config")),
            ("XDG_DATA_HOME", root.join("share")),
            ("XDG_RUNTIME_DIR", root.join("run")),
        ];
        let env: Vec<(&str, &Path)> = env.iter().map(|(k, v)| (*k, v.as_path())).collect();
        let mut servers: Vec<&mut Server> = self
            .nodes
            .iter_mut()
            .chain(std::iter::once(&mut self.monitor))
            .collect();
        if let Some(autoctl) = autoctl_path() {
            for s in servers.iter().filter(|s| s.child.is_some()) {
                run_quietly(
                    pg_command(&autoctl, &env, &root)
                        .args(["stop", "--immediate", "--pgdata"])
                        .arg(&s.pgdata),
                    &format!("pg_autoctl stop {}", s.name),
                );
            }
        }
        for s in servers.iter_mut() {
            if let Some(mut child) = s.child.take() {
                reap(&mut child);
            }
        }
        for s in &servers {
            if s.pgdata.join("postmaster.pid").exists() {
                run_quietly(
                    pg_command(&format!("{PG_BIN}/pg_ctl"), &env, &root)
                        .args(["-D"])
                        .arg(&s.pgdata)
                        .args(["-m", "immediate", "-w", "stop"]),
                    &format!("pg_ctl stop {}", s.name),
                );
            }
        }
    }
}
