//! Opening an instance as a whole: its ledger (embedded store), its key
//! material store and an HSM backend, behind one [`KeyService`].
//!
//! Used by the command line and (later) the server; tests use the pieces
//! directly.

use std::path::Path;
use std::sync::Arc;

use crate::hsm::HsmBackend;
use crate::ledger::{InitialAdmin, Ledger};
use crate::material::embedded::EmbeddedMaterialStore;
use crate::service::{KeyError, KeyService};
use keyledger_core::event::Actor;
use keyledger_core::governance::{admin_id, decode_public_key};
use keyledger_ledger::store::embedded::EmbeddedStore;
use keyledger_ledger::writer::{Clock, WriterConfig};

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
    data_dir: &Path,
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
    let store = EmbeddedStore::open(data_dir).map_err(|e| e.to_string())?;
    let ledger = Ledger::create(
        &store,
        data_dir,
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

/// Opens an existing instance's key service over the embedded store.
pub fn open(
    data_dir: &Path,
    instance: &str,
    hsm: Arc<dyn HsmBackend>,
    clock: Clock,
) -> Result<KeyService, String> {
    let store = EmbeddedStore::open(data_dir).map_err(|e| e.to_string())?;
    let config = WriterConfig {
        clock: clock.clone(),
        // Its events come from request handlers sharing the cores.
        handoff_chunk: Some(KEY_SERVICE_HANDOFF_CHUNK),
        ..WriterConfig::default()
    };
    // The ledger key in force may live in `hsm` (a PKCS#11 token).
    let ledger = Ledger::open_with_hsm(&store, data_dir, instance, config, hsm.clone())
        .map_err(|e| e.to_string())?;
    let material = Arc::new(EmbeddedMaterialStore::open(data_dir).map_err(|e| e.to_string())?);
    KeyService::open(ledger.writer().clone(), hsm, material, clock)
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
