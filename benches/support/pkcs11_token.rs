//! The PKCS#11 backend for `hsm_wrap`: a throwaway SoftHSM2 token in a
//! temporary directory (`scripts/softhsm-setup` installs SoftHSM2), deleted
//! when the backend drops.

use std::path::{Path, PathBuf};
use std::process::Command;

use keyledger::hsm::pkcs11::{Pkcs11Config, Pkcs11Hsm};
use keyledger::hsm::prelude::*;
use keyledger::hsm::{
    HsmError, KeyBinding, MasterKeyStatus, NewMaterial, SealedPart, WrappedMaterial,
};
use keyledger::secret::SecretBytes;

const LABEL: &str = "keyledger-bench";
const PIN: &str = "bench-user-pin";

fn module_path() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("KEYLEDGER_PKCS11_MODULE") {
        return Some(PathBuf::from(p));
    }
    [
        "/usr/lib/softhsm/libsofthsm2.so",
        "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
        "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
        "/usr/local/lib/softhsm/libsofthsm2.so",
    ]
    .iter()
    .map(Path::new)
    .find(|p| p.is_file())
    .map(Path::to_path_buf)
}

/// A [`Pkcs11Hsm`] on its own token, and the token's directory.
pub struct TokenHsm {
    hsm: Pkcs11Hsm,
    _dir: tempfile::TempDir,
}

/// The PKCS#11 backend with `pool_size` sessions, or `None` (and why) when
/// SoftHSM2 is not installed.
pub fn backend(pool_size: usize) -> Result<TokenHsm, String> {
    let module = module_path().ok_or("SoftHSM2 not installed (run scripts/softhsm-setup)")?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let tokens = dir.path().join("tokens");
    std::fs::create_dir(&tokens).map_err(|e| e.to_string())?;
    let conf = dir.path().join("softhsm2.conf");
    let text = format!(
        "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
        tokens.display()
    );
    std::fs::write(&conf, text).map_err(|e| e.to_string())?;
    // SAFETY: called from `main` before any other thread exists, and before
    // the first C_Initialize (which is when SoftHSM2 reads it).
    unsafe { std::env::set_var("SOFTHSM2_CONF", &conf) };
    let out = Command::new("softhsm2-util")
        .args([
            "--init-token",
            "--free",
            "--label",
            LABEL,
            "--so-pin",
            "bench-so-pin",
            "--pin",
            PIN,
        ])
        .output()
        .map_err(|e| format!("softhsm2-util: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "softhsm2-util: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let mut config = Pkcs11Config::new(module, LABEL, SecretBytes::from_slice(PIN.as_bytes()));
    config.pool_size = pool_size;
    let hsm = Pkcs11Hsm::open(config).map_err(|e| e.to_string())?;
    Ok(TokenHsm { hsm, _dir: dir })
}

impl HsmDevice for TokenHsm {
    fn kind(&self) -> &'static str {
        self.hsm.kind()
    }
}

impl MasterKeyCeremony for TokenHsm {
    fn ceremony_public_key(&self, instance: &str, generation: u32) -> Result<[u8; 32], HsmError> {
        self.hsm.ceremony_public_key(instance, generation)
    }

    fn load_part(
        &self,
        instance: &str,
        generation: u32,
        owner: &str,
        part: &SealedPart,
    ) -> Result<String, HsmError> {
        self.hsm.load_part(instance, generation, owner, part)
    }

    fn commit(&self, instance: &str, generation: u32, min_parts: u8) -> Result<String, HsmError> {
        self.hsm.commit(instance, generation, min_parts)
    }

    fn activate(&self, instance: &str, generation: u32) -> Result<(), HsmError> {
        self.hsm.activate(instance, generation)
    }

    fn retire(&self, instance: &str, generation: u32) -> Result<(), HsmError> {
        self.hsm.retire(instance, generation)
    }

    fn discard_new(&self, instance: &str) -> Result<(), HsmError> {
        self.hsm.discard_new(instance)
    }

    fn zeroize(&self, instance: &str) -> Result<(), HsmError> {
        self.hsm.zeroize(instance)
    }

    fn master_key_status(&self, instance: &str) -> Result<MasterKeyStatus, HsmError> {
        self.hsm.master_key_status(instance)
    }
}

impl KeyCrypto for TokenHsm {
    fn random(&self, out: &mut [u8]) -> Result<(), HsmError> {
        self.hsm.random(out)
    }

    fn generate_key(&self, binding: &KeyBinding, len: usize) -> Result<NewMaterial, HsmError> {
        self.hsm.generate_key(binding, len)
    }

    fn import_key(
        &self,
        binding: &KeyBinding,
        material: &SecretBytes,
    ) -> Result<NewMaterial, HsmError> {
        self.hsm.import_key(binding, material)
    }

    fn export_key(
        &self,
        binding: &KeyBinding,
        wrapped: &WrappedMaterial,
    ) -> Result<SecretBytes, HsmError> {
        self.hsm.export_key(binding, wrapped)
    }

    fn rewrap_material(
        &self,
        binding: &KeyBinding,
        wrapped: &WrappedMaterial,
        to_generation: u32,
    ) -> Result<WrappedMaterial, HsmError> {
        self.hsm.rewrap_material(binding, wrapped, to_generation)
    }

    fn encrypt(
        &self,
        binding: &KeyBinding,
        wrapped: &WrappedMaterial,
        plaintext: &SecretBytes,
        aad: &[u8],
    ) -> Result<Vec<u8>, HsmError> {
        self.hsm.encrypt(binding, wrapped, plaintext, aad)
    }

    fn decrypt(
        &self,
        binding: &KeyBinding,
        wrapped: &WrappedMaterial,
        sealed: &[u8],
        aad: &[u8],
    ) -> Result<SecretBytes, HsmError> {
        self.hsm.decrypt(binding, wrapped, sealed, aad)
    }
}

impl LedgerSigning for TokenHsm {
    fn supports_signing(&self) -> bool {
        self.hsm.supports_signing()
    }

    fn generate_signing_key(&self, instance: &str, label: &str) -> Result<[u8; 32], HsmError> {
        self.hsm.generate_signing_key(instance, label)
    }

    fn signing_public_key(&self, instance: &str, label: &str) -> Result<[u8; 32], HsmError> {
        self.hsm.signing_public_key(instance, label)
    }

    fn sign(&self, instance: &str, label: &str, message: &[u8]) -> Result<[u8; 64], HsmError> {
        self.hsm.sign(instance, label, message)
    }

    fn destroy_signing_key(&self, instance: &str, label: &str) -> Result<(), HsmError> {
        self.hsm.destroy_signing_key(instance, label)
    }
}
