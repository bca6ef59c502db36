//! Instance ledgers: creating an instance's log with its ledger key and
//! genesis event, reopening it with the key in force, and rotating that key.
//!
//! Layout under the data directory:
//! `instances/<name>/log/` (owned by the event store) and
//! `instances/<name>/ledger-keys/<key id>.key` (0600, private) and
//! `<key id>.pub` (the C2SP note verifier key).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;

use crate::event::{
    Actor, Envelope, EventDraft, InstanceCreated, LedgerKeyRotated, LedgerTailRecovered,
};
use crate::ledger_key::{KeyFileError, LedgerKey};
use crate::store::{EventStore, InstanceLog, StoreError};
use crate::writer::{LedgerWriter, Receipt, WriteError, WriterConfig, origin_for};

/// Errors opening, creating or administering an instance ledger.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Key(#[from] KeyFileError),
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error("the log of instance {instance:?} is empty or its head record is unreadable: {reason}")]
    BadHead { instance: String, reason: String },
}

/// An open instance ledger: its writer and where its keys live.
pub struct Ledger {
    writer: LedgerWriter,
    keys_dir: PathBuf,
}

/// The administrator an instance starts with (imprint mode).
#[derive(Debug, Clone)]
pub struct InitialAdmin {
    pub admin_id: String,
    /// Base64 ed25519 public key.
    pub public_key: String,
}

/// Directory of an instance's ledger keys.
pub fn keys_dir(data_dir: &Path, instance: &str) -> PathBuf {
    data_dir
        .join("instances")
        .join(instance)
        .join("ledger-keys")
}

impl Ledger {
    /// Creates an instance: a new ledger key (stored 0600), an empty log and
    /// its genesis `instance.created` event.
    pub fn create(
        store: &dyn EventStore,
        data_dir: &Path,
        instance: &str,
        admin: &InitialAdmin,
        operator: &str,
        config: WriterConfig,
    ) -> Result<Self, LedgerError> {
        crate::store::check_instance_name(instance)?;
        // A creation that crashed before its genesis record left an empty
        // log: creating the instance again completes it.
        let log = match store.create_instance(instance) {
            Ok(log) => log,
            Err(StoreError::InstanceExists(name)) => {
                let log = store.open_instance(instance)?;
                if log.head().size != 0 {
                    return Err(StoreError::InstanceExists(name).into());
                }
                log
            }
            Err(e) => return Err(e.into()),
        };
        let origin = origin_for(instance);
        let key = LedgerKey::generate(&origin)?;
        let keys_dir = keys_dir(data_dir, instance);
        publish_key(&keys_dir, &key)?;
        let genesis = InstanceCreated {
            origin,
            ledger_key_id: key.key_id_hex(),
            ledger_public_key: b64(key.verifying_key().as_bytes()),
            initial_admin_id: admin.admin_id.clone(),
            initial_admin_public_key: admin.public_key.clone(),
        };
        let draft = EventDraft::new(Actor::operator(operator), "instance-create", &genesis)
            .map_err(WriteError::from)?;
        let writer = LedgerWriter::start(log, key, config);
        writer.append(draft)?;
        Ok(Ledger { writer, keys_dir })
    }

    /// Opens an existing instance with the ledger key in force at its head.
    pub fn open(
        store: &dyn EventStore,
        data_dir: &Path,
        instance: &str,
        config: WriterConfig,
    ) -> Result<Self, LedgerError> {
        let log = store.open_instance(instance)?;
        let keys_dir = keys_dir(data_dir, instance);
        let key_id = key_in_force(log.as_ref())?;
        let key = LedgerKey::read_file(&keys_dir.join(format!("{key_id}.key")))?;
        let torn = log.torn_tail();
        let ledger = Ledger {
            writer: LedgerWriter::start(log, key, config),
            keys_dir,
        };
        if let Some(torn) = torn {
            let event = LedgerTailRecovered {
                discarded_bytes: torn.discarded_bytes,
                size: torn.size,
            };
            let draft = EventDraft::new(Actor::system(), "ledger-recovery", &event)
                .map_err(WriteError::from)?;
            ledger.append(draft)?;
        }
        Ok(ledger)
    }

    pub fn writer(&self) -> &LedgerWriter {
        &self.writer
    }

    pub fn log(&self) -> &Arc<dyn InstanceLog> {
        self.writer.log()
    }

    /// Directory holding this instance's ledger keys.
    pub fn keys_dir(&self) -> &Path {
        &self.keys_dir
    }

    /// Rotates the ledger key: the new key is stored first, then the
    /// rotation event (signed by the old key) is appended.
    pub fn rotate_key(&self, actor: Actor, correlation_id: &str) -> Result<Receipt, LedgerError> {
        let origin = origin_for(self.writer.instance());
        let key = LedgerKey::generate(&origin)?;
        publish_key(&self.keys_dir, &key)?;
        Ok(self.writer.rotate_key(key, actor, correlation_id)?)
    }

    /// Appends one event and waits until it is durable.
    pub fn append(&self, draft: EventDraft) -> Result<Receipt, WriteError> {
        self.writer.append(draft)
    }

    /// Finishes pending appends, writes a final checkpoint and stops.
    pub fn shutdown(self) {
        self.writer.shutdown();
    }
}

fn publish_key(keys_dir: &Path, key: &LedgerKey) -> Result<(), KeyFileError> {
    let id = key.key_id_hex();
    key.write_file(&keys_dir.join(format!("{id}.key")))?;
    let public = format!("{}\n", key.note_verifier());
    let path = keys_dir.join(format!("{id}.pub"));
    std::fs::write(&path, public).map_err(|source| KeyFileError::Io { path, source })
}

/// The key id in force at the head of `log`: the head record's signer, or
/// the new key if the head record is a rotation.
fn key_in_force(log: &dyn InstanceLog) -> Result<String, LedgerError> {
    let bad = |reason: String| LedgerError::BadHead {
        instance: log.instance().to_string(),
        reason,
    };
    let size = log.head().size;
    if size == 0 {
        return Err(bad("no genesis record".into()));
    }
    let records = log.read(size - 1, size)?;
    let record = records.first().ok_or_else(|| bad("missing".into()))?;
    let envelope = Envelope::parse(&record.event).map_err(|e| bad(e.to_string()))?;
    match envelope.payload_as::<LedgerKeyRotated>() {
        Some(Ok(rotated)) => Ok(rotated.new_key_id),
        Some(Err(e)) => Err(bad(e.to_string())),
        None => Ok(envelope.ledger_key),
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
