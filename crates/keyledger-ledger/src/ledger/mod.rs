//! Instance ledgers: creating an instance's log with its ledger key and
//! genesis event, reopening it with the key in force, and rotating that key.
//!
//! Layout under the data directory:
//! `instances/<name>/log/` (owned by the event store) and, per ledger key,
//! `instances/<name>/ledger-keys/<key id>.pub` (the C2SP note verifier key)
//! with either `<key id>.key` (0600, the private key: [`KeyHome::File`]) or
//! `<key id>.hsm` (a reference to a key pair in a signing device:
//! [`KeyHome::Hsm`]); see [`key_home`].
//!
//! This crate knows no device: [`Ledger`] is generic over the
//! [`KeyDevice`] that may hold its keys, which the layer above implements
//! for its HSM backends. [`NoDevice`] (the default) is a ledger whose keys
//! are always key files.

mod device;
mod key_home;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine;

use crate::ledger_key::KeyFileError;
use crate::store::{EventStore, InstanceLog, StoreError};
use crate::writer::{LedgerWriter, Receipt, WriteError, WriterConfig, origin_for};
use keyledger_core::event::{
    Actor, Envelope, EventDraft, InstanceCreated, LedgerKeyRotated, LedgerTailRecovered,
};

pub use device::{KeyDevice, NoDevice};
pub use key_home::KeyHome;

/// Errors opening, creating or administering an instance ledger. `E` is
/// the error of the [`KeyDevice`] that may hold the ledger key.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError<E = std::convert::Infallible> {
    /// The event store failed or refused.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A ledger key file could not be read or written.
    #[error(transparent)]
    Key(#[from] KeyFileError),
    /// An append (the genesis, recovery or rotation event) failed.
    #[error(transparent)]
    Write(#[from] WriteError),
    /// The device holding (or asked to hold) the ledger key failed or refused.
    #[error("ledger key in the HSM: {0}")]
    Hsm(#[source] E),
    /// The key in force cannot be found or is not the one its files name.
    #[error("cannot use ledger key {key_id}: {reason}")]
    KeyStorage {
        /// The key id the log names.
        key_id: String,
        /// What is wrong.
        reason: String,
    },
    /// The log has no readable head record to take the key in force from.
    #[error("the log of instance {instance:?} is empty or its head record is unreadable: {reason}")]
    BadHead {
        /// The instance.
        instance: String,
        /// What is wrong.
        reason: String,
    },
}

/// An open instance ledger: its writer and where its keys live. `D` is the
/// kind of signing device its keys may live in ([`NoDevice`]: key files only).
pub struct Ledger<D: ?Sized + KeyDevice = NoDevice> {
    writer: LedgerWriter,
    keys_dir: PathBuf,
    /// Where the key in force lives (and where a rotation puts the next one).
    home: Mutex<KeyHome<D>>,
}

/// The administrator an instance starts with (imprint mode).
#[derive(Debug, Clone)]
pub struct InitialAdmin {
    /// The administrator's id (`governance::admin_id` of the public key).
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

impl<D: ?Sized + KeyDevice> Ledger<D> {
    /// Creates an instance: a new ledger key (stored 0600), an empty log and
    /// its genesis `instance.created` event.
    pub fn create(
        store: &dyn EventStore,
        data_dir: &Path,
        instance: &str,
        admin: &InitialAdmin,
        operator: &str,
        config: WriterConfig,
    ) -> Result<Self, LedgerError<D::Error>> {
        Self::create_in(
            store,
            data_dir,
            instance,
            admin,
            operator,
            config,
            KeyHome::File,
        )
    }

    /// [`Ledger::create`] with the ledger key in `home`: a key file, or a
    /// key pair generated inside a signing device.
    pub fn create_in(
        store: &dyn EventStore,
        data_dir: &Path,
        instance: &str,
        admin: &InitialAdmin,
        operator: &str,
        config: WriterConfig,
        home: KeyHome<D>,
    ) -> Result<Self, LedgerError<D::Error>> {
        crate::store::check_instance_name(instance)?;
        key_home::check_home(&home)?;
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
        let keys_dir = keys_dir(data_dir, instance);
        let key = key_home::new_key(&home, &keys_dir, instance)?;
        let genesis = InstanceCreated {
            origin: origin_for(instance),
            ledger_key_id: key.key_id_hex(),
            ledger_public_key: b64(key.verifying_key().as_bytes()),
            initial_admin_id: admin.admin_id.clone(),
            initial_admin_public_key: admin.public_key.clone(),
        };
        let draft = EventDraft::new(Actor::operator(operator), "instance-create", &genesis)
            .map_err(WriteError::from)?;
        let writer = LedgerWriter::start(log, key, config);
        writer.append(draft)?;
        Ok(Ledger {
            writer,
            keys_dir,
            home: Mutex::new(home),
        })
    }

    /// Opens an existing instance with the ledger key in force at its head.
    /// A key held in a device needs [`Ledger::open_with_hsm`].
    pub fn open(
        store: &dyn EventStore,
        data_dir: &Path,
        instance: &str,
        config: WriterConfig,
    ) -> Result<Self, LedgerError<D::Error>> {
        Self::open_with(store, data_dir, instance, config, None)
    }

    /// [`Ledger::open`] where the key in force may be held in the device
    /// `hsm` (the instance directory records which key lives where; a key
    /// file is still used from its file).
    pub fn open_with_hsm(
        store: &dyn EventStore,
        data_dir: &Path,
        instance: &str,
        config: WriterConfig,
        hsm: Arc<D>,
    ) -> Result<Self, LedgerError<D::Error>> {
        Self::open_with(store, data_dir, instance, config, Some(hsm))
    }

    fn open_with(
        store: &dyn EventStore,
        data_dir: &Path,
        instance: &str,
        config: WriterConfig,
        hsm: Option<Arc<D>>,
    ) -> Result<Self, LedgerError<D::Error>> {
        let log = store.open_instance(instance)?;
        let keys_dir = keys_dir(data_dir, instance);
        let key_id = key_in_force(log.as_ref())?;
        let (key, home) = key_home::load_key(&keys_dir, instance, &key_id, hsm.as_ref())?;
        let torn = log.torn_tail();
        let ledger = Ledger {
            writer: LedgerWriter::start(log, key, config),
            keys_dir,
            home: Mutex::new(home),
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

    /// The instance's writer.
    pub fn writer(&self) -> &LedgerWriter {
        &self.writer
    }

    /// The instance's log (for readers).
    pub fn log(&self) -> &Arc<dyn InstanceLog> {
        self.writer.log()
    }

    /// Directory holding this instance's ledger keys.
    pub fn keys_dir(&self) -> &Path {
        &self.keys_dir
    }

    /// Where the ledger key in force lives.
    pub fn key_home(&self) -> KeyHome<D> {
        self.home
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Rotates the ledger key: the new key is made where the key in force
    /// lives and stored first, then the rotation event (signed by the old
    /// key) is appended.
    pub fn rotate_key(
        &self,
        actor: Actor,
        correlation_id: &str,
    ) -> Result<Receipt, LedgerError<D::Error>> {
        self.rotate_key_to(self.key_home(), actor, correlation_id)
    }

    /// Rotates the ledger key to a new key made in `home` (e.g. moving an
    /// instance's ledger key from a key file into an HSM); later rotations
    /// stay there.
    pub fn rotate_key_to(
        &self,
        home: KeyHome<D>,
        actor: Actor,
        correlation_id: &str,
    ) -> Result<Receipt, LedgerError<D::Error>> {
        key_home::check_home(&home)?;
        let mut current = self.home.lock().unwrap_or_else(PoisonError::into_inner);
        let key = key_home::new_key(&home, &self.keys_dir, self.writer.instance())?;
        let receipt = self.writer.rotate_key(key, actor, correlation_id)?;
        *current = home;
        Ok(receipt)
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

/// The key id in force at the head of `log`: the head record's signer, or
/// the new key if the head record is a rotation.
fn key_in_force<E>(log: &dyn InstanceLog) -> Result<String, LedgerError<E>> {
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
