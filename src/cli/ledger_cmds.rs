//! `keyledger ledger export | rotate-key | keys | checkpoint`.

use std::path::{Path, PathBuf};

use super::DataArgs;
use crate::audit::AuditLog;
use crate::event::Actor;
use crate::ledger::Ledger;
use crate::store::EventStore;
use crate::writer::WriterConfig;

#[derive(clap::Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Bundle directory to create (must not exist or be empty).
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(clap::Args)]
pub struct InstanceArgs {
    #[command(flatten)]
    pub data: DataArgs,
}

pub(super) fn open(data: &DataArgs) -> Result<Ledger, String> {
    let storage = data.storage()?;
    open_in(storage.events.as_ref(), data)
}

/// Opens the instance with the ledger key in force, in the HSM the flags
/// name if it lives there.
pub(super) fn open_in(store: &dyn EventStore, data: &DataArgs) -> Result<Ledger, String> {
    let (dir, instance, config) = (&data.data_dir, &data.instance, WriterConfig::default());
    match data.hsm.backend()? {
        Some(hsm) => Ledger::open_with_hsm(store, dir, instance, config, hsm),
        None => Ledger::open(store, dir, instance, config),
    }
    .map_err(|e| e.to_string())
}

/// The published ledger public keys of an instance, oldest first.
pub(super) fn published_keys(keys_dir: &Path) -> Result<Vec<String>, String> {
    let mut entries: Vec<(std::time::SystemTime, String)> = Vec::new();
    let dir = std::fs::read_dir(keys_dir).map_err(|e| format!("{}: {e}", keys_dir.display()))?;
    for entry in dir {
        let entry = entry.map_err(|e| e.to_string())?;
        let path = entry.path();
        if path.extension().is_some_and(|x| x == "pub") {
            let text =
                std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let modified = entry
                .metadata()
                .and_then(|m| m.modified())
                .unwrap_or(std::time::UNIX_EPOCH);
            entries.push((modified, text.trim().to_string()));
        }
    }
    entries.sort();
    Ok(entries.into_iter().map(|(_, k)| k).collect())
}

pub fn export(args: &ExportArgs) -> Result<(), String> {
    let ledger = open(&args.data)?;
    let audit: &dyn AuditLog = ledger.writer();
    let checkpoint = audit.checkpoint().map_err(|e| e.to_string())?;
    let manifest =
        crate::bundle::export_bundle(audit, &checkpoint, &args.out).map_err(|e| e.to_string())?;
    ledger.shutdown();
    println!(
        "exported {} records of instance {} to {}",
        manifest.size,
        manifest.instance,
        args.out.display()
    );
    Ok(())
}

pub fn rotate_key(args: &InstanceArgs) -> Result<(), String> {
    let ledger = open(&args.data)?;
    let receipt = ledger
        .rotate_key(Actor::operator("cli"), "ledger-rotate-key")
        .map_err(|e| e.to_string())?;
    let key = ledger.writer().current_key().note_verifier().to_string();
    ledger.shutdown();
    println!("rotated at seq {}; new ledger key:\n{key}", receipt.seq);
    Ok(())
}

pub fn keys(args: &InstanceArgs) -> Result<(), String> {
    let dir = crate::ledger::keys_dir(&args.data.data_dir, &args.data.instance);
    for key in published_keys(&dir)? {
        println!("{key}");
    }
    Ok(())
}

pub fn checkpoint(args: &InstanceArgs) -> Result<(), String> {
    let ledger = open(&args.data)?;
    let note = ledger.writer().checkpoint().map_err(|e| e.to_string())?;
    ledger.shutdown();
    print!("{note}");
    Ok(())
}
