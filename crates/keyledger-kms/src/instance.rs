//! Opening an instance as a whole: its ledger, its key material store and
//! an HSM backend, behind one [`KeyService`], over a [`Storage`] (the
//! embedded files, or stores a caller opened elsewhere, e.g. PostgreSQL).
//!
//! Used by the command line and the server; tests use the pieces directly.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::hsm::HsmBackend;
use crate::ledger::{InitialAdmin, Ledger};
use crate::material::KeyMaterialStore;
use crate::material::embedded::EmbeddedMaterialStore;
use crate::service::{KeyError, KeyService};
use keyledger_core::event::Actor;
use keyledger_core::governance::{admin_id, decode_public_key};
use keyledger_ledger::store::EventStore;
use keyledger_ledger::store::embedded::EmbeddedStore;
use keyledger_ledger::writer::{Clock, WriterConfig};

/// Where instances live: the event store (logs, tree, checkpoints), the
/// key-material store, and the data directory, which keeps the ledger keys
/// (and, with `--dev`, the demo's files) whatever the stores are.
#[derive(Clone)]
pub struct Storage {
    /// Ledger key files (`<data_dir>/<instance>/ledger-keys`) and dev files.
    pub data_dir: PathBuf,
    /// The instance logs.
    pub events: Arc<dyn EventStore>,
    /// Wrapped key material and import tokens.
    pub material: Arc<dyn KeyMaterialStore>,
}

impl Storage {
    /// Everything in `data_dir`: the embedded event and material stores.
    pub fn embedded(data_dir: &Path) -> Result<Self, String> {
        Ok(Storage {
            data_dir: data_dir.to_path_buf(),
            events: Arc::new(EmbeddedStore::open(data_dir).map_err(|e| e.to_string())?),
            material: Arc::new(EmbeddedMaterialStore::open(data_dir).map_err(|e| e.to_string())?),
        })
    }

    /// Names of the instances in the event store.
    pub fn instances(&self) -> Result<Vec<String>, String> {
        self.events.list_instances().map_err(|e| e.to_string())
    }
}

/// What `keyledger instance create` reports.
#[derive(Debug, Clone)]
pub struct CreatedInstance {
    pub instance: String,
    pub admin_id: String,
    /// C2SP note verifier key of the genesis ledger key.
    pub ledger_verifier_key: String,
}

/// Creates an instance with its log, ledger key and genesis event naming
/// the initial administrator (imprint mode). The operator acting here holds
/// no role inside the instance.
pub fn create(
    storage: &Storage,
    instance: &str,
    admin_public_key_b64: &str,
    operator: &str,
) -> Result<CreatedInstance, String> {
    let key = decode_public_key(admin_public_key_b64).map_err(|e| e.to_string())?;
    let admin = InitialAdmin {
        admin_id: admin_id(&key),
        public_key: base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            key.as_bytes(),
        ),
    };
    let ledger = Ledger::create(
        storage.events.as_ref(),
        &storage.data_dir,
        instance,
        &admin,
        operator,
        WriterConfig::default(),
    )
    .map_err(|e| e.to_string())?;
    let verifier = ledger.writer().current_key().note_verifier().to_string();
    ledger.shutdown();
    Ok(CreatedInstance {
        instance: instance.to_string(),
        admin_id: admin.admin_id,
        ledger_verifier_key: verifier,
    })
}

/// Records per signed chunk the key service's writer hands to its
/// committer ([`WriterConfig::handoff_chunk`]: 4 was no better beyond the
/// noise, whole batches 4-6% slower; docs/BENCHMARKS.md).
pub const KEY_SERVICE_HANDOFF_CHUNK: usize = 8;

/// Opens an existing instance's key service.
pub fn open(
    storage: &Storage,
    instance: &str,
    hsm: Arc<dyn HsmBackend>,
    clock: Clock,
) -> Result<KeyService, String> {
    let config = WriterConfig {
        clock: clock.clone(),
        // Its events come from request handlers sharing the cores.
        handoff_chunk: Some(KEY_SERVICE_HANDOFF_CHUNK),
        ..WriterConfig::default()
    };
    // The ledger key in force may live in `hsm` (a PKCS#11 token).
    let ledger = Ledger::open_with_hsm(
        storage.events.as_ref(),
        &storage.data_dir,
        instance,
        config,
        hsm.clone(),
    )
    .map_err(|e| e.to_string())?;
    KeyService::open(
        ledger.writer().clone(),
        hsm,
        storage.material.clone(),
        clock,
    )
    .map_err(|e: KeyError| e.to_string())
}

/// The operator actor of the local command line.
pub fn local_operator() -> Actor {
    let name = std::env::var("USER").unwrap_or_else(|_| "operator".into());
    let name: String = name
        .chars()
        .filter(|c| c.is_ascii_graphic() && *c != '"' && *c != '\\')
        .take(64)
        .collect();
    Actor::operator(if name.is_empty() { "operator" } else { &name })
}
