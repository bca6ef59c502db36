//! `keyledger ledger generate`: appends realistic events of the real types
//! through the real writer, from several threads (benchmarks, demos, crash
//! tests).

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use base64::Engine;

use super::DataArgs;
use crate::ledger::{InitialAdmin, KeyHome, Ledger};
use crate::sample_events::realistic_event;
use crate::store::EventStore;
use crate::store::embedded::EmbeddedStore;
use crate::writer::WriterConfig;

#[derive(clap::Args)]
pub struct GenerateArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Number of events to append.
    #[arg(long)]
    pub events: u64,
    /// Concurrent appending threads.
    #[arg(long, default_value_t = 8)]
    pub threads: usize,
    /// Print `ack <seq> <link>` for every acknowledged (durable) event.
    #[arg(long)]
    pub print_acks: bool,
}

pub fn run(args: &GenerateArgs) -> Result<(), String> {
    let store = EmbeddedStore::open(&args.data.data_dir).map_err(|e| e.to_string())?;
    let exists = store
        .list_instances()
        .map_err(|e| e.to_string())?
        .contains(&args.data.instance);
    let ledger = if exists {
        super::ledger_cmds::open_in(&store, &args.data)?
    } else {
        let home = match args.data.hsm.backend()? {
            Some(hsm) => KeyHome::Hsm(hsm),
            None => KeyHome::File,
        };
        Ledger::create_in(
            &store,
            &args.data.data_dir,
            &args.data.instance,
            &demo_admin()?,
            "generate",
            WriterConfig::default(),
            home,
        )
        .map_err(|e| e.to_string())?
    };
    let next = AtomicU64::new(0);
    let failures = AtomicU64::new(0);
    let started = Instant::now();
    let stdout = std::io::stdout();
    std::thread::scope(|scope| {
        for thread in 0..args.threads.max(1) {
            let (ledger, next, failures, stdout) = (&ledger, &next, &failures, &stdout);
            scope.spawn(move || {
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= args.events {
                        break;
                    }
                    let result = realistic_event(n, thread)
                        .and_then(|d| ledger.append(d).map_err(|e| e.to_string()));
                    match result {
                        Ok(receipt) if args.print_acks => {
                            let mut out = stdout.lock();
                            let _ =
                                writeln!(out, "ack {} {}", receipt.seq, hex::encode(receipt.link));
                            let _ = out.flush();
                        }
                        Ok(_) => {}
                        Err(e) => {
                            failures.fetch_add(1, Ordering::Relaxed);
                            eprintln!("keyledger: append failed: {e}");
                        }
                    }
                }
            });
        }
    });
    let elapsed = started.elapsed();
    let head = ledger.log().head();
    let stats = ledger.writer().stats();
    let batches = stats.batches.load(Ordering::Relaxed).max(1);
    let records = stats.records.load(Ordering::Relaxed);
    ledger.shutdown();
    let failed = failures.load(Ordering::Relaxed);
    eprintln!(
        "appended {} events in {:.3}s ({:.0}/s, {} threads, mean batch {:.1}); log size {}",
        args.events - failed,
        elapsed.as_secs_f64(),
        (args.events - failed) as f64 / elapsed.as_secs_f64().max(1e-9),
        args.threads,
        records as f64 / batches as f64,
        head.size
    );
    if failed > 0 {
        return Err(format!("{failed} appends failed"));
    }
    Ok(())
}

fn demo_admin() -> Result<InitialAdmin, String> {
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed).map_err(|e| e.to_string())?;
    let key = ed25519_dalek::SigningKey::from_bytes(&seed);
    Ok(InitialAdmin {
        admin_id: "admin-generated".into(),
        public_key: base64::engine::general_purpose::STANDARD
            .encode(key.verifying_key().as_bytes()),
    })
}
