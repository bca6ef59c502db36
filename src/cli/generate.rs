//! `keyledger ledger generate`: appends a rule-abiding life of an instance
//! (administrators, key owners and the master-key ceremony, credentials,
//! keys and their use, dual-authorisation deletes with approvals) through
//! the real writer, each event decided by the server's own rules
//! (`crate::life`), for benchmarks, demos and crash tests.

use std::io::Write;

use super::DataArgs;

#[derive(clap::Args)]
pub struct GenerateArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Number of events to append.
    #[arg(long)]
    pub events: u64,
    /// Accepted for scripts that pass it. The life is decided in log order
    /// by one thread; the writer signs on every core.
    #[arg(long, default_value_t = 8)]
    pub threads: usize,
    /// Print `ack <seq> <link>` for every acknowledged (durable) event.
    #[arg(long)]
    pub print_acks: bool,
}

pub fn run(args: &GenerateArgs) -> Result<(), String> {
    let storage = args.data.storage()?;
    let stdout = std::io::stdout();
    let mut ack = |receipt: &crate::writer::Receipt| {
        if args.print_acks {
            let mut out = stdout.lock();
            let _ = writeln!(out, "ack {} {}", receipt.seq, hex::encode(receipt.link));
            let _ = out.flush();
        }
    };
    let generated = crate::life::generate(
        storage.events.as_ref(),
        &args.data.data_dir,
        &args.data.instance,
        args.data.hsm.backend()?,
        args.events,
        &mut ack,
    )?;
    eprintln!(
        "appended {} events in {:.3}s ({:.0}/s, mean batch {:.1}); log size {}",
        generated.appended,
        generated.elapsed.as_secs_f64(),
        generated.appended as f64 / generated.elapsed.as_secs_f64().max(1e-9),
        generated.mean_batch,
        generated.size
    );
    Ok(())
}
