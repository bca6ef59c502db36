//! An HSM backend that times every call of the backend it wraps, per
//! operation, for the server's metrics (`keyledger_hsm_operation_seconds`).
//! It changes nothing else: every answer, error and property is the inner
//! backend's.

use std::sync::Arc;
use std::time::Instant;

use super::{
    HsmBackend, HsmDevice, HsmError, KeyBinding, KeyCrypto, LedgerSigning, MasterKeyCeremony,
    MasterKeyStatus, NewMaterial, SealedPart, WrappedMaterial,
};
use crate::secret::SecretBytes;
use keyledger_ledger::histogram::{AtomicHistogram, HistogramSnapshot, LATENCY_SECONDS_BOUNDS};

/// The operations timed; `Operation as usize` indexes [`OPERATIONS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    Random,
    CeremonyPublicKey,
    LoadPart,
    Commit,
    Activate,
    Retire,
    DiscardNew,
    Zeroize,
    MasterKeyStatus,
    GenerateKey,
    ImportKey,
    ExportKey,
    RewrapMaterial,
    Encrypt,
    Decrypt,
    GenerateSigningKey,
    SigningPublicKey,
    Sign,
    DestroySigningKey,
}

/// Operation names, in [`Operation`] order (the `operation` label).
pub const OPERATIONS: [&str; 19] = [
    "random",
    "ceremony_public_key",
    "load_part",
    "commit",
    "activate",
    "retire",
    "discard_new",
    "zeroize",
    "master_key_status",
    "generate_key",
    "import_key",
    "export_key",
    "rewrap_material",
    "encrypt",
    "decrypt",
    "generate_signing_key",
    "signing_public_key",
    "sign",
    "destroy_signing_key",
];

/// One latency histogram per operation (failed calls included).
#[derive(Debug)]
pub struct HsmLatency {
    per_operation: Vec<AtomicHistogram>,
}

impl Default for HsmLatency {
    fn default() -> Self {
        HsmLatency {
            per_operation: OPERATIONS
                .iter()
                .map(|_| AtomicHistogram::new(LATENCY_SECONDS_BOUNDS))
                .collect(),
        }
    }
}

impl HsmLatency {
    /// `(operation, histogram)` for every operation called at least once.
    pub fn snapshot(&self) -> Vec<(&'static str, HistogramSnapshot)> {
        OPERATIONS
            .iter()
            .zip(&self.per_operation)
            .map(|(name, h)| (*name, h.snapshot()))
            .filter(|(_, s)| s.count > 0)
            .collect()
    }

    fn time<T>(&self, operation: Operation, call: impl FnOnce() -> T) -> T {
        let started = Instant::now();
        let result = call();
        if let Some(h) = self.per_operation.get(operation as usize) {
            h.observe(started.elapsed().as_secs_f64());
        }
        result
    }
}

/// Wraps a backend and records the latency of each of its calls.
pub struct MeasuredHsm {
    inner: Arc<dyn HsmBackend>,
    latency: Arc<HsmLatency>,
}

impl MeasuredHsm {
    pub fn new(inner: Arc<dyn HsmBackend>) -> Self {
        MeasuredHsm {
            inner,
            latency: Arc::new(HsmLatency::default()),
        }
    }

    /// The latencies recorded so far (shared; read it while the backend runs).
    pub fn latency(&self) -> Arc<HsmLatency> {
        self.latency.clone()
    }
}

impl HsmDevice for MeasuredHsm {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
}

impl MasterKeyCeremony for MeasuredHsm {
    fn ceremony_public_key(&self, instance: &str, generation: u32) -> Result<[u8; 32], HsmError> {
        self.latency.time(Operation::CeremonyPublicKey, || {
            self.inner.ceremony_public_key(instance, generation)
        })
    }

    fn load_part(
        &self,
        instance: &str,
        generation: u32,
        owner_id: &str,
        part: &SealedPart,
    ) -> Result<String, HsmError> {
        self.latency.time(Operation::LoadPart, || {
            self.inner.load_part(instance, generation, owner_id, part)
        })
    }

    fn commit(&self, instance: &str, generation: u32, min_parts: u8) -> Result<String, HsmError> {
        self.latency.time(Operation::Commit, || {
            self.inner.commit(instance, generation, min_parts)
        })
    }

    fn activate(&self, instance: &str, generation: u32) -> Result<(), HsmError> {
        self.latency.time(Operation::Activate, || {
            self.inner.activate(instance, generation)
        })
    }

    fn retire(&self, instance: &str, generation: u32) -> Result<(), HsmError> {
        self.latency.time(Operation::Retire, || {
            self.inner.retire(instance, generation)
        })
    }

    fn discard_new(&self, instance: &str) -> Result<(), HsmError> {
        self.latency
            .time(Operation::DiscardNew, || self.inner.discard_new(instance))
    }

    fn zeroize(&self, instance: &str) -> Result<(), HsmError> {
        self.latency
            .time(Operation::Zeroize, || self.inner.zeroize(instance))
    }

    fn master_key_status(&self, instance: &str) -> Result<MasterKeyStatus, HsmError> {
        self.latency.time(Operation::MasterKeyStatus, || {
            self.inner.master_key_status(instance)
        })
    }
}

impl KeyCrypto for MeasuredHsm {
    fn calls_are_immediate(&self) -> bool {
        self.inner.calls_are_immediate()
    }

    fn random(&self, out: &mut [u8]) -> Result<(), HsmError> {
        self.latency
            .time(Operation::Random, || self.inner.random(out))
    }

    fn generate_key(&self, binding: &KeyBinding, len: usize) -> Result<NewMaterial, HsmError> {
        self.latency.time(Operation::GenerateKey, || {
            self.inner.generate_key(binding, len)
        })
    }

    fn import_key(
        &self,
        binding: &KeyBinding,
        material: &SecretBytes,
    ) -> Result<NewMaterial, HsmError> {
        self.latency.time(Operation::ImportKey, || {
            self.inner.import_key(binding, material)
        })
    }

    fn export_key(
        &self,
        binding: &KeyBinding,
        wrapped: &WrappedMaterial,
    ) -> Result<SecretBytes, HsmError> {
        self.latency.time(Operation::ExportKey, || {
            self.inner.export_key(binding, wrapped)
        })
    }

    fn rewrap_material(
        &self,
        binding: &KeyBinding,
        wrapped: &WrappedMaterial,
        to_generation: u32,
    ) -> Result<WrappedMaterial, HsmError> {
        self.latency.time(Operation::RewrapMaterial, || {
            self.inner.rewrap_material(binding, wrapped, to_generation)
        })
    }

    fn encrypt(
        &self,
        binding: &KeyBinding,
        wrapped: &WrappedMaterial,
        plaintext: &SecretBytes,
        aad: &[u8],
    ) -> Result<Vec<u8>, HsmError> {
        self.latency.time(Operation::Encrypt, || {
            self.inner.encrypt(binding, wrapped, plaintext, aad)
        })
    }

    fn decrypt(
        &self,
        binding: &KeyBinding,
        wrapped: &WrappedMaterial,
        sealed: &[u8],
        aad: &[u8],
    ) -> Result<SecretBytes, HsmError> {
        self.latency.time(Operation::Decrypt, || {
            self.inner.decrypt(binding, wrapped, sealed, aad)
        })
    }
}

impl LedgerSigning for MeasuredHsm {
    fn supports_signing(&self) -> bool {
        self.inner.supports_signing()
    }

    fn generate_signing_key(&self, instance: &str, label: &str) -> Result<[u8; 32], HsmError> {
        self.latency.time(Operation::GenerateSigningKey, || {
            self.inner.generate_signing_key(instance, label)
        })
    }

    fn signing_public_key(&self, instance: &str, label: &str) -> Result<[u8; 32], HsmError> {
        self.latency.time(Operation::SigningPublicKey, || {
            self.inner.signing_public_key(instance, label)
        })
    }

    fn sign(&self, instance: &str, label: &str, message: &[u8]) -> Result<[u8; 64], HsmError> {
        self.latency.time(Operation::Sign, || {
            self.inner.sign(instance, label, message)
        })
    }

    fn destroy_signing_key(&self, instance: &str, label: &str) -> Result<(), HsmError> {
        self.latency.time(Operation::DestroySigningKey, || {
            self.inner.destroy_signing_key(instance, label)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hsm::software::SoftwareHsm;

    #[test]
    fn calls_are_forwarded_and_timed_per_operation() {
        let measured = MeasuredHsm::new(Arc::new(SoftwareHsm::new()));
        let latency = measured.latency();
        assert!(latency.snapshot().is_empty(), "nothing called yet");
        let mut a = [0u8; 32];
        let mut b = [0u8; 32];
        measured.random(&mut a).expect("random");
        measured.random(&mut b).expect("random");
        assert_ne!(a, b, "the inner backend's RNG answered");
        assert!(measured.master_key_status("nobody").is_ok());
        assert_eq!(measured.kind(), "software");
        let snapshot = latency.snapshot();
        let names: Vec<&str> = snapshot.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["random", "master_key_status"]);
        assert_eq!(snapshot[0].1.count, 2);
        assert_eq!(snapshot[1].1.count, 1);
    }

    #[test]
    fn operation_names_follow_the_enum_order() {
        assert_eq!(OPERATIONS[Operation::Random as usize], "random");
        assert_eq!(OPERATIONS[Operation::Encrypt as usize], "encrypt");
        assert_eq!(OPERATIONS[Operation::Decrypt as usize], "decrypt");
        assert_eq!(
            OPERATIONS[Operation::DestroySigningKey as usize],
            "destroy_signing_key"
        );
        assert_eq!(Operation::DestroySigningKey as usize, OPERATIONS.len() - 1);
    }

    #[test]
    fn failed_calls_are_timed_and_their_errors_kept() {
        let measured = MeasuredHsm::new(Arc::new(SoftwareHsm::new()));
        let err = measured
            .commit("nobody", 1, 2)
            .expect_err("no parts were loaded");
        let direct = SoftwareHsm::new()
            .commit("nobody", 1, 2)
            .expect_err("no parts were loaded");
        assert_eq!(err.to_string(), direct.to_string());
        assert_eq!(measured.latency().snapshot()[0].0, "commit");
    }
}
