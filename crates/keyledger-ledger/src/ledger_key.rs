//! The per-instance ledger key: an ed25519 key that signs every record and
//! every checkpoint of one instance.
//!
//! This is the file-backed [`LedgerSigner`]: the private part lives in a 0600
//! key file written atomically (temp file, fsync, rename, fsync directory).
//! (A key held in a signing device, such as an HSM, is another
//! [`LedgerSigner`], made by a [`crate::ledger::KeyDevice`].)
//! The public part is published as a C2SP note verifier key
//! (`<name>+<id>+<base64>`).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ed25519_dalek::{SigningKey, VerifyingKey};
use zeroize::Zeroizing;

use crate::signer::{LedgerSigner, SignError};
use keyledger_core::chain::{self, Link};
use keyledger_core::checkpoint::NoteVerifierKey;

mod seed_signer;
use seed_signer::SeedSigner;

/// An instance ledger signing key. Zeroized on drop; never printed.
pub struct LedgerKey {
    signing: SigningKey,
    /// Signs records (the hot path): the same RFC 8032 signatures as
    /// `signing`, from the seed expanded once.
    records: SeedSigner,
    name: String,
}

impl std::fmt::Debug for LedgerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LedgerKey({} [redacted])", self.key_id_hex())
    }
}

/// Errors handling ledger key files.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("ledger key file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("ledger key file {path} is malformed")]
    Malformed { path: PathBuf },
    #[error("ledger key file {path} is readable by group or others (mode {mode:o}); refusing it")]
    Permissions { path: PathBuf, mode: u32 },
    #[error("random number generator failed")]
    Rng,
}

impl LedgerKey {
    /// A fresh key from the operating system's RNG. `name` is the note
    /// signer name (the checkpoint origin).
    pub fn generate(name: &str) -> Result<Self, KeyFileError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        getrandom::getrandom(seed.as_mut()).map_err(|_| KeyFileError::Rng)?;
        Ok(Self::from_seed(name, &seed))
    }

    /// A key from a 32-byte seed (RFC 8032 secret key).
    pub fn from_seed(name: &str, seed: &[u8; 32]) -> Self {
        let signing = SigningKey::from_bytes(seed);
        let records = SeedSigner::new(seed, signing.verifying_key());
        LedgerKey {
            signing,
            records,
            name: name.to_string(),
        }
    }

    /// Note signer name (the checkpoint origin).
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        self.signing.verifying_key()
    }

    /// The published verifier key.
    pub fn note_verifier(&self) -> NoteVerifierKey {
        NoteVerifierKey::new(&self.name, self.verifying_key())
    }

    /// C2SP key id, 8 lower-case hex characters; named in every record.
    pub fn key_id_hex(&self) -> String {
        hex::encode(self.note_verifier().key_id())
    }

    /// Signs the record whose chain link is `link`.
    pub fn sign_record(&self, link: &Link) -> [u8; 64] {
        self.sign_bytes(&chain::signing_message(link))
    }

    /// An RFC 8032 ed25519 signature of `message`.
    fn sign_bytes(&self, message: &[u8]) -> [u8; 64] {
        self.records.sign(message)
    }

    /// Which Ed25519 implementation signs records ("aws-lc" or
    /// "ed25519-dalek"); both give the same RFC 8032 bytes.
    pub fn signing_implementation(&self) -> &'static str {
        self.records.implementation()
    }

    /// Signs a checkpoint as a C2SP note under this key's name.
    pub fn sign_checkpoint(&self, checkpoint: &keyledger_core::checkpoint::Checkpoint) -> String {
        checkpoint.sign(&self.name, &self.signing)
    }

    /// Writes the private key to `path` with mode 0600, atomically.
    pub fn write_file(&self, path: &Path) -> Result<(), KeyFileError> {
        let mut text = Zeroizing::new(String::new());
        text.push_str("keyledger-ledger-key-v1\n");
        text.push_str(&self.name);
        text.push('\n');
        text.push_str(&hex::encode(self.signing.to_bytes()));
        text.push('\n');
        write_private_atomically(path, text.as_bytes())
    }

    /// Reads a key written by [`LedgerKey::write_file`]; refuses files that
    /// group or others can read.
    pub fn read_file(path: &Path) -> Result<Self, KeyFileError> {
        let io = |source| KeyFileError::Io {
            path: path.to_path_buf(),
            source,
        };
        let meta = fs::metadata(path).map_err(io)?;
        let mode = std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyFileError::Permissions {
                path: path.to_path_buf(),
                mode,
            });
        }
        let text = Zeroizing::new(fs::read_to_string(path).map_err(io)?);
        let malformed = || KeyFileError::Malformed {
            path: path.to_path_buf(),
        };
        let mut lines = text.lines();
        if lines.next() != Some("keyledger-ledger-key-v1") {
            return Err(malformed());
        }
        let name = lines.next().ok_or_else(malformed)?.to_string();
        let mut seed = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(lines.next().ok_or_else(malformed)?, seed.as_mut())
            .map_err(|_| malformed())?;
        if lines.next().is_some() {
            return Err(malformed());
        }
        Ok(Self::from_seed(&name, &seed))
    }
}

/// Signing in process: infallible and cheap (tens of microseconds).
impl LedgerSigner for LedgerKey {
    fn name(&self) -> &str {
        LedgerKey::name(self)
    }

    fn verifying_key(&self) -> VerifyingKey {
        LedgerKey::verifying_key(self)
    }

    fn sign_message(&self, message: &[u8]) -> Result<[u8; 64], SignError> {
        Ok(self.sign_bytes(message))
    }

    fn location(&self) -> String {
        "file".to_string()
    }

    fn signs_in_process(&self) -> bool {
        true
    }
}

impl From<LedgerKey> for Arc<dyn LedgerSigner> {
    fn from(key: LedgerKey) -> Self {
        Arc::new(key)
    }
}

pub use keyledger_core::chain::verify_record;

/// Writes `bytes` to `path` via a 0600 temp file, fsync, rename and a
/// directory fsync, so a crash leaves either the old file or the new one.
pub fn write_private_atomically(path: &Path, bytes: &[u8]) -> Result<(), KeyFileError> {
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source| KeyFileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    crate::data_dir::create_dir_all(dir).map_err(io)?;
    let tmp = path.with_extension("tmp");
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)?;
    drop(file);
    fs::rename(&tmp, path).map_err(io)?;
    fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_expansion_signs_exactly_as_the_signing_key() {
        use ed25519_dalek::Signer;
        // RFC 8032 signatures are deterministic: the cached expanded key must
        // give the very bytes `SigningKey::sign` gives, for any message.
        let key = LedgerKey::from_seed("n", &[7u8; 32]);
        for message in [&b""[..], b"abc", &[0xffu8; 300]] {
            assert_eq!(
                key.sign_bytes(message),
                key.signing.sign(message).to_bytes()
            );
        }
        let link = chain::link(b"{}");
        assert_eq!(
            key.sign_record(&link),
            key.signing.sign(&chain::signing_message(&link)).to_bytes()
        );
    }

    #[test]
    fn key_file_round_trip_is_0600_and_debug_is_redacted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("k.key");
        let key = LedgerKey::generate("keyledger/test").expect("key");
        key.write_file(&path).expect("write");
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &fs::metadata(&path).expect("meta").permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
        let back = LedgerKey::read_file(&path).expect("read");
        assert_eq!(back.verifying_key(), key.verifying_key());
        let debug = format!("{key:?}");
        assert!(debug.contains("[redacted]"));
        assert!(!debug.contains(&hex::encode(key.signing.to_bytes())));
    }

    #[test]
    fn group_readable_key_file_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("k.key");
        LedgerKey::generate("n")
            .expect("key")
            .write_file(&path)
            .expect("write");
        fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o640))
            .expect("chmod");
        assert!(matches!(
            LedgerKey::read_file(&path),
            Err(KeyFileError::Permissions { .. })
        ));
    }

    #[test]
    fn the_signer_trait_signs_what_the_key_signs() {
        let key = LedgerKey::generate("keyledger/t").expect("key");
        let link = chain::link(b"{\"a\":1}");
        let signer: &dyn LedgerSigner = &key;
        assert_eq!(signer.record_signature(&link), Ok(key.sign_record(&link)));
        assert_eq!(signer.key_id_hex(), key.key_id_hex());
        let cp = keyledger_core::checkpoint::Checkpoint {
            origin: "keyledger/t".into(),
            size: 3,
            root: [7u8; 32],
            extensions: vec![],
        };
        assert_eq!(signer.checkpoint_note(&cp), Ok(key.sign_checkpoint(&cp)));
        assert_eq!(signer.location(), "file");
    }

    #[test]
    fn record_signatures_verify_and_bind_the_link() {
        let key = LedgerKey::generate("n").expect("key");
        let link = chain::link(b"{}");
        let sig = key.sign_record(&link);
        assert!(verify_record(&key.verifying_key(), &link, &sig));
        assert!(!verify_record(
            &key.verifying_key(),
            &chain::link(b"{ }"),
            &sig
        ));
    }
}
