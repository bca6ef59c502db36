//! `keyledger instance create` (operators) and `keyledger admin keygen |
//! draft | sign | submit | new-token` (administrators).
//!
//! Administrators keep their ed25519 keys on their own machines: `keygen`
//! writes the private key to a 0600 file and prints the public key; `draft`
//! writes an unsigned command document (instance, command, random nonce,
//! expiry); each administrator runs `sign` on that file offline; `submit`
//! hands the signed file to the instance, which checks the signatures
//! against its administrators and thresholds.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use chrono::Utc;
use ed25519_dalek::SigningKey;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::DataArgs;
use crate::governance::{AdminCommand, CommandDocument, SignedCommand, admin_id};
use crate::hsm::software::SoftwareHsm;

#[derive(clap::Args)]
pub struct InstanceCreateArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// The initial administrator's public key: a `.pub` file written by
    /// `keyledger admin keygen`, or the base64 key itself.
    #[arg(long)]
    pub admin_public_key: String,
}

#[derive(clap::Args)]
pub struct KeygenArgs {
    /// Private key file to write (mode 0600); the public key goes to FILE.pub.
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(clap::Args)]
pub struct DraftArgs {
    /// Instance the command is for.
    #[arg(long)]
    pub instance: String,
    /// Hours until the command expires (at most 744 = 31 days).
    #[arg(long, default_value_t = 24)]
    pub expires_in_hours: i64,
    /// File to write the unsigned command to.
    #[arg(long)]
    pub out: PathBuf,
    /// The command as JSON, e.g.
    /// '{"kind":"admin.set_thresholds","signature_threshold":2,"revocation_threshold":2}'.
    pub command: String,
}

#[derive(clap::Args)]
pub struct SignArgs {
    /// The administrator's private key file.
    #[arg(long)]
    pub key: PathBuf,
    /// Command file (from `draft` or another administrator's `sign`); the
    /// signature is added in place.
    pub file: PathBuf,
}

#[derive(clap::Args)]
pub struct SubmitArgs {
    /// Data directory of a local instance (exactly one of --data-dir, --url).
    #[arg(long, required_unless_present = "url", conflicts_with = "url")]
    pub data_dir: Option<PathBuf>,
    /// Base URL of a keyledger server (`POST /api/v2/admin/commands`).
    #[arg(long)]
    pub url: Option<String>,
    /// Instance name.
    #[arg(long)]
    pub instance: String,
    #[command(flatten)]
    pub database: super::storage_args::DatabaseArgs,
    /// Signed command file.
    pub file: PathBuf,
}

#[derive(clap::Args)]
pub struct RemoteArgs {
    /// Base URL of a keyledger server.
    #[arg(long)]
    pub url: String,
    /// Instance name.
    #[arg(long)]
    pub instance: String,
}

/// A key owner and the key that proves it.
#[derive(clap::Args)]
pub struct OwnerArgs {
    /// The key owner's id, as registered by `key_owner.register`.
    #[arg(long)]
    pub owner_id: String,
    /// The key owner's ed25519 key (a `keyledger admin keygen` file, 0600).
    #[arg(long)]
    pub owner_key: PathBuf,
}

/// The ceremony status is for the instance's registered key owners, who
/// sign the request.
#[derive(clap::Args)]
pub struct CeremonyStatusArgs {
    #[command(flatten)]
    pub remote: RemoteArgs,
    #[command(flatten)]
    pub owner: OwnerArgs,
}

#[derive(clap::Args)]
pub struct SubmitPartArgs {
    #[command(flatten)]
    pub remote: RemoteArgs,
    #[command(flatten)]
    pub owner: OwnerArgs,
    /// File holding the 32-byte master-key part as 64 hex digits (0600).
    #[arg(long)]
    pub part_file: PathBuf,
}

pub(super) fn instance_create(args: &InstanceCreateArgs) -> Result<(), String> {
    let key = read_public_key_arg(&args.admin_public_key)?;
    let operator = crate::instance::local_operator();
    let created = crate::instance::create(
        &args.data.storage()?,
        &args.data.instance,
        &key,
        &operator.principal,
    )?;
    println!("instance {} created (imprint mode)", created.instance);
    println!("initial administrator: {}", created.admin_id);
    println!("ledger verifier key: {}", created.ledger_verifier_key);
    println!(
        "next: the administrators set the thresholds (admin.set_thresholds) to leave imprint mode"
    );
    Ok(())
}

fn read_public_key_arg(arg: &str) -> Result<String, String> {
    let path = Path::new(arg);
    if path.is_file() {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{arg}: {e}"))?;
        Ok(text.trim().to_string())
    } else {
        Ok(arg.trim().to_string())
    }
}

pub(super) fn keygen(args: &KeygenArgs) -> Result<(), String> {
    if args.out.exists() {
        return Err(format!(
            "{} exists; refusing to overwrite a key",
            args.out.display()
        ));
    }
    let key = crate::admin_key::generate()?;
    crate::admin_key::write(&args.out, &key)?;
    let public = base64::engine::general_purpose::STANDARD.encode(key.verifying_key().as_bytes());
    let pub_path = public_path(&args.out);
    std::fs::write(&pub_path, format!("{public}\n"))
        .map_err(|e| format!("{}: {e}", pub_path.display()))?;
    println!("admin id: {}", admin_id(&key.verifying_key()));
    println!("public key: {public}");
    println!(
        "private key: {} (mode 0600; keep it offline)",
        args.out.display()
    );
    Ok(())
}

fn public_path(key: &Path) -> PathBuf {
    let mut name = key.as_os_str().to_os_string();
    name.push(".pub");
    PathBuf::from(name)
}

/// Reads an administrator (or key owner) key file.
pub(super) fn read_admin_key(path: &Path) -> Result<SigningKey, String> {
    crate::admin_key::read(path)
}

pub(super) fn draft(args: &DraftArgs) -> Result<(), String> {
    let command: AdminCommand =
        serde_json::from_str(&args.command).map_err(|e| format!("command: {e}"))?;
    if !(1..=744).contains(&args.expires_in_hours) {
        return Err("--expires-in-hours must be between 1 and 744".into());
    }
    let expires = Utc::now() + chrono::Duration::hours(args.expires_in_hours);
    let doc = CommandDocument::new(&args.instance, command, expires).map_err(|e| e.to_string())?;
    let signed = SignedCommand::unsigned(&doc).map_err(|e| e.to_string())?;
    write_command(&args.out, &signed)?;
    println!("{}", summary(&doc, &signed));
    Ok(())
}

fn summary(doc: &CommandDocument, signed: &SignedCommand) -> String {
    format!(
        "{} for instance {} (nonce {}, expires {}); digest {}; {} signature(s)",
        doc.command.kind(),
        doc.instance,
        doc.nonce,
        doc.expires_at,
        hex::encode(signed.digest()),
        signed.signatures.len()
    )
}

pub(super) fn read_command(path: &Path) -> Result<SignedCommand, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: not a command file: {e}", path.display()))
}

fn write_command(path: &Path, signed: &SignedCommand) -> Result<(), String> {
    let text = serde_json::to_string_pretty(signed).map_err(|e| e.to_string())?;
    std::fs::write(path, format!("{text}\n")).map_err(|e| format!("{}: {e}", path.display()))
}

pub(super) fn sign(args: &SignArgs) -> Result<(), String> {
    let key = read_admin_key(&args.key)?;
    let mut signed = read_command(&args.file)?;
    let doc = CommandDocument::parse(&signed.document).map_err(|e| e.to_string())?;
    signed.sign(&key);
    write_command(&args.file, &signed)?;
    println!(
        "signed by {}: {}",
        admin_id(&key.verifying_key()),
        summary(&doc, &signed)
    );
    Ok(())
}

pub(super) fn submit(args: &SubmitArgs) -> Result<(), String> {
    let signed = read_command(&args.file)?;
    let data_dir = match (&args.url, &args.data_dir) {
        (Some(url), None) => return super::admin_remote::submit(url, &args.instance, &signed),
        (None, Some(dir)) => dir,
        _ => return Err("give exactly one of --data-dir and --url".into()),
    };
    let hsm = Arc::new(SoftwareHsm::new());
    let storage = args.database.storage(data_dir)?;
    let service = crate::instance::open(&storage, &args.instance, hsm, Arc::new(Utc::now))?;
    let correlation = format!("admin-submit-{}", &hex::encode(signed.digest())[..16]);
    let result =
        service.submit_admin_command(&crate::instance::local_operator(), &correlation, &signed);
    service.shutdown();
    let receipt = result.map_err(|e| e.to_string())?;
    let event = crate::event::Envelope::parse(&receipt.event).map_err(|e| e.to_string())?;
    println!(
        "accepted: {} at seq {} (record hash {})",
        event.event_type,
        receipt.seq,
        hex::encode(receipt.leaf)
    );
    Ok(())
}

/// Prints a new random API token and the SHA-256 digest that goes into a
/// `credential.issue` command. The token is shown once and stored nowhere.
pub(super) fn new_token() -> Result<(), String> {
    let mut raw = Zeroizing::new([0u8; 32]);
    getrandom::getrandom(raw.as_mut()).map_err(|_| "random number generator failed")?;
    let token = Zeroizing::new(format!(
        "kl_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw.as_ref())
    ));
    println!("token: {}", token.as_str());
    println!(
        "token_digest: {}",
        hex::encode(Sha256::digest(token.as_bytes()))
    );
    Ok(())
}
