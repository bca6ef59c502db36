//! `keyledger export`: writes an instance's records from `--since` to the
//! head as SIEM lines (CADF, OCSF, CEF, LEEF or JSON lines) to a new file
//! (mode 0600; an existing file is never overwritten, a failed export
//! removes its partial file) or to stdout; with `--follow` (on PostgreSQL,
//! or from a server) it then goes on writing what is appended until it is
//! stopped. The records come from the stores (`--data-dir`, `--database-url`)
//! or from a server's auditor endpoint (`--url` with an auditor token).

use std::io::Write;
use std::path::PathBuf;

use super::DataArgs;
use super::hsm_args::HsmArgs;
use super::storage_args::DatabaseArgs;
use crate::audit::AuditLog;
use keyledger_export::Format;

#[derive(clap::Args)]
pub struct ExportArgs {
    /// Data directory (embedded store and ledger keys); not with --url.
    #[arg(long, env = "KEYLEDGER_DATA_DIR", required_unless_present = "url")]
    pub data_dir: Option<PathBuf>,
    /// Instance name.
    #[arg(long)]
    pub instance: String,
    #[command(flatten)]
    pub hsm: HsmArgs,
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Base URL of a keyledger server to read the records from
    /// (`GET /api/v2/ledger/records`, each record's leaf hash checked), with
    /// --token-file of an auditor credential; instead of --data-dir.
    #[arg(long, conflicts_with_all = ["data_dir", "database_url"], requires = "token_file")]
    pub url: Option<String>,
    /// File holding the auditor token (first line), with --url.
    #[arg(long, requires = "url")]
    pub token_file: Option<PathBuf>,
    /// Output format: cadf, ocsf, cef, leef or jsonl.
    #[arg(long)]
    pub format: Format,
    /// First sequence number to export (records before it are skipped).
    #[arg(long, default_value_t = 0)]
    pub since: u64,
    /// File to create (mode 0600; refused if it exists). Default: stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// After the head, keep writing the records servers append (each
    /// batch flushed as it comes) until stopped (SIGINT/SIGTERM). Needs
    /// --database-url or --url: an embedded log is locked by the process
    /// writing it.
    #[arg(long)]
    pub follow: bool,
}

/// How often `--follow` asks the database for a new head.
const FOLLOW_POLL: std::time::Duration = std::time::Duration::from_millis(200);

fn create_new(path: &PathBuf) -> Result<std::fs::File, String> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => {
            format!("{} exists; export never overwrites a file", path.display())
        }
        _ => format!("{}: {e}", path.display()),
    })
}

/// Why an export failed: the export's own error (format, store, output,
/// a record that is not the one asked for), or a server's answer refused
/// (`--url`: unreachable, a record whose leaf hash or seq is wrong, fewer
/// records than announced).
pub(super) enum Failure {
    Export(keyledger_export::ExportError),
    /// What the server sent, refused (only `--url` makes these).
    #[cfg_attr(not(feature = "client"), allow(dead_code))]
    Server(String),
}

impl From<keyledger_export::ExportError> for Failure {
    fn from(e: keyledger_export::ExportError) -> Self {
        Failure::Export(e)
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure::Export(e.into())
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Export(e) => e.fmt(f),
            Failure::Server(reason) => f.write_str(reason),
        }
    }
}

/// Where the records come from.
enum Source {
    /// This machine's stores (embedded or PostgreSQL), read through the
    /// instance's ledger.
    Local(crate::ledger::Ledger),
    /// A server's auditor endpoint.
    #[cfg(feature = "client")]
    Remote(super::export_remote::Remote),
}

pub fn run(args: &ExportArgs) -> Result<(), String> {
    if args.follow && args.database.database_url.is_none() && args.url.is_none() {
        return Err(
            "--follow needs --database-url or --url: an embedded log is locked by the process that writes it"
                .into(),
        );
    }
    // Create the file first: a refused --out leaves the instance untouched.
    let file = args.out.as_ref().map(create_new).transpose()?;
    let source = match open_source(args) {
        Ok(source) => source,
        Err(e) => {
            if let Some(path) = &args.out {
                let _ = std::fs::remove_file(path);
            }
            return Err(e);
        }
    };
    match source {
        Source::Local(ledger) => {
            let result = finish(args, file, |out| {
                export_then_follow(&ledger, args, out).map_err(Failure::from)
            });
            ledger.shutdown();
            result
        }
        #[cfg(feature = "client")]
        Source::Remote(remote) => finish(args, file, |out| {
            remote.export(args.format, args.since, args.follow, out)
        }),
    }
}

fn open_source(args: &ExportArgs) -> Result<Source, String> {
    if let Some(url) = &args.url {
        return remote_source(url, args);
    }
    let data = DataArgs {
        data_dir: args
            .data_dir
            .clone()
            .ok_or("--data-dir or --url is needed")?,
        instance: args.instance.clone(),
        hsm: args.hsm.clone(),
        database: args.database.clone(),
    };
    Ok(Source::Local(super::ledger_cmds::open(&data)?))
}

#[cfg(feature = "client")]
fn remote_source(url: &str, args: &ExportArgs) -> Result<Source, String> {
    let token_file = args.token_file.as_ref().ok_or("--url needs --token-file")?;
    let token = crate::client::Client::read_token(token_file)?;
    super::export_remote::Remote::new(url, &args.instance, token).map(Source::Remote)
}

#[cfg(not(feature = "client"))]
fn remote_source(_url: &str, _args: &ExportArgs) -> Result<Source, String> {
    Err("this keyledger was built without the client feature".into())
}

/// Runs `export` into the file or stdout, and reports like the command does.
fn finish(
    args: &ExportArgs,
    file: Option<std::fs::File>,
    export: impl FnOnce(&mut dyn Write) -> Result<u64, Failure>,
) -> Result<(), String> {
    let result = match file {
        Some(file) => {
            let mut out = std::io::BufWriter::new(file);
            export(&mut out).and_then(|n| {
                out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
                Ok(n)
            })
        }
        None => {
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            match export(&mut out).and_then(|n| out.flush().map(|()| n).map_err(Into::into)) {
                // The reader stopped (`| head`): not an error of the export.
                Err(Failure::Export(keyledger_export::ExportError::Io(e)))
                    if e.kind() == std::io::ErrorKind::BrokenPipe =>
                {
                    Ok(0)
                }
                other => other,
            }
        }
    };
    let written = match result {
        Ok(n) => n,
        Err(e) => {
            // A partial file would block the next attempt (never overwritten).
            if let Some(path) = &args.out {
                let _ = std::fs::remove_file(path);
            }
            return Err(e.to_string());
        }
    };
    if let Some(path) = &args.out {
        eprintln!(
            "exported {written} records from seq {} as {} to {}",
            args.since,
            args.format,
            path.display()
        );
    }
    Ok(())
}

/// Exports from `--since` to the head; with `--follow`, then each new batch
/// as the database's head moves (flushed at once), until the process is
/// stopped or writing fails (a reader that went away ends it).
fn export_then_follow(
    ledger: &crate::ledger::Ledger,
    args: &ExportArgs,
    out: &mut dyn Write,
) -> Result<u64, keyledger_export::ExportError> {
    let audit: &dyn AuditLog = ledger.writer();
    let start = args.since.min(audit.size());
    let written = keyledger_export::export_log(audit, args.format, args.since, out)?;
    if !args.follow {
        return Ok(written);
    }
    out.flush()?;
    let mut next = start + written;
    loop {
        std::thread::sleep(FOLLOW_POLL);
        // A database that is away (failover) is waited for, not an error.
        let Ok(head) = ledger.log().durable_head() else {
            continue;
        };
        if head.size > next {
            next += keyledger_export::export_log(audit, args.format, next, out)?;
            out.flush()?;
        }
    }
}
