//! `keyledger export`: writes an instance's records from `--since` to the
//! head as SIEM lines (CADF, OCSF, CEF, LEEF or JSON lines) to a new file
//! (mode 0600; an existing file is never overwritten, a failed export
//! removes its partial file) or to stdout; with `--follow` (on PostgreSQL)
//! it then goes on writing what servers append until it is stopped.

use std::io::Write;
use std::path::PathBuf;

use super::DataArgs;
use crate::audit::AuditLog;
use keyledger_export::Format;

#[derive(clap::Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub data: DataArgs,
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
    /// --database-url: an embedded log is locked by the process writing it.
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

pub fn run(args: &ExportArgs) -> Result<(), String> {
    if args.follow && args.data.database.database_url.is_none() {
        return Err(
            "--follow needs --database-url: an embedded log is locked by the process that writes it"
                .into(),
        );
    }
    // Create the file first: a refused --out leaves the instance untouched.
    let file = args.out.as_ref().map(create_new).transpose()?;
    let ledger = super::ledger_cmds::open(&args.data)?;
    let audit: &dyn AuditLog = ledger.writer();
    let result = match file {
        Some(file) => {
            let mut out = std::io::BufWriter::new(file);
            export_then_follow(&ledger, args, &mut out).and_then(|n| {
                out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
                Ok(n)
            })
        }
        None => {
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            match export_then_follow(&ledger, args, &mut out)
                .and_then(|n| out.flush().map(|()| n).map_err(Into::into))
            {
                // The reader stopped (`| head`): not an error of the export.
                Err(keyledger_export::ExportError::Io(e))
                    if e.kind() == std::io::ErrorKind::BrokenPipe =>
                {
                    Ok(0)
                }
                other => other,
            }
        }
    };
    let size = audit.size();
    ledger.shutdown();
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
            "exported {written} records ({} to {size}) as {} to {}",
            args.since.min(size),
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
