//! Where an instance's ledger keys live, and the files in
//! `instances/<name>/ledger-keys/` that say so. For every key id:
//!
//! - `<id>.pub`: the C2SP note verifier key (always; what auditors get);
//! - `<id>.key`: the private key, 0600 ([`KeyHome::File`]); or
//! - `<id>.hsm`: a reference to a key pair inside a signing device (an HSM
//!   backend, [`KeyHome::Hsm`]); no private key file exists. Its text is
//!   `keyledger-ledger-key-ref-v1\nbackend <kind>\ninstance <name>\nlabel <label>\n`.
//!
//! Loading a key checks that its key id is the one its file is named after
//! (so a wrong key file or another HSM token is refused, never used to sign).

use std::path::Path;
use std::sync::Arc;

use super::{KeyDevice, LedgerError};
use crate::ledger_key::{KeyFileError, LedgerKey, write_private_atomically};
use crate::signer::LedgerSigner;
use crate::writer::origin_for;

const REF_MAGIC: &str = "keyledger-ledger-key-ref-v1";

/// Where an instance's ledger key lives.
pub enum KeyHome<D: ?Sized> {
    /// A 0600 key file in the instance directory (the default, and the
    /// software path).
    File,
    /// A non-extractable key pair inside a signing device (an HSM backend
    /// that supports signing, PKCS#11); the instance directory holds only a
    /// reference.
    Hsm(Arc<D>),
}

impl<D: ?Sized> Clone for KeyHome<D> {
    fn clone(&self) -> Self {
        match self {
            KeyHome::File => KeyHome::File,
            KeyHome::Hsm(device) => KeyHome::Hsm(device.clone()),
        }
    }
}

impl<D: ?Sized + KeyDevice> std::fmt::Debug for KeyHome<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyHome::File => write!(f, "KeyHome::File"),
            KeyHome::Hsm(hsm) => write!(f, "KeyHome::Hsm({})", hsm.kind()),
        }
    }
}

/// An HSM key reference (`<id>.hsm`).
#[derive(Debug, PartialEq, Eq)]
struct KeyRef {
    backend: String,
    instance: String,
    label: String,
}

impl KeyRef {
    fn to_text(&self) -> String {
        format!(
            "{REF_MAGIC}\nbackend {}\ninstance {}\nlabel {}\n",
            self.backend, self.instance, self.label
        )
    }

    fn parse(text: &str) -> Option<KeyRef> {
        let mut lines = text.strip_suffix('\n')?.split('\n');
        if lines.next()? != REF_MAGIC {
            return None;
        }
        let mut field = |name: &str| {
            let value = lines.next()?.strip_prefix(name)?.strip_prefix(' ')?;
            (!value.is_empty()).then(|| value.to_string())
        };
        let parsed = KeyRef {
            backend: field("backend")?,
            instance: field("instance")?,
            label: field("label")?,
        };
        lines.next().is_none().then_some(parsed)
    }
}

fn io_error(path: &Path) -> impl Fn(std::io::Error) -> KeyFileError + '_ {
    move |source| KeyFileError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Refuses, before anything is created, a home that cannot hold a ledger key.
pub(super) fn check_home<D: ?Sized + KeyDevice>(
    home: &KeyHome<D>,
) -> Result<(), LedgerError<D::Error>> {
    match home {
        KeyHome::Hsm(device) => device.check_can_hold_keys().map_err(LedgerError::Hsm),
        KeyHome::File => Ok(()),
    }
}

/// Makes a new ledger key for `instance` in `home`, stores its private key
/// or HSM reference durably, and publishes its verifier key.
pub(super) fn new_key<D: ?Sized + KeyDevice>(
    home: &KeyHome<D>,
    keys_dir: &Path,
    instance: &str,
) -> Result<Arc<dyn LedgerSigner>, LedgerError<D::Error>> {
    let origin = origin_for(instance);
    let signer: Arc<dyn LedgerSigner> = match home {
        KeyHome::File => {
            let key = LedgerKey::generate(&origin)?;
            key.write_file(&keys_dir.join(format!("{}.key", key.key_id_hex())))?;
            Arc::new(key)
        }
        KeyHome::Hsm(hsm) => {
            // The key id is only known once the key exists, so the label is random.
            let label = format!("ledger-{}", uuid::Uuid::new_v4().simple());
            let key =
                D::generate_signer(hsm, instance, &label, &origin).map_err(LedgerError::Hsm)?;
            let reference = KeyRef {
                backend: hsm.kind().to_string(),
                instance: instance.to_string(),
                label,
            };
            let path = keys_dir.join(format!("{}.hsm", key.key_id_hex()));
            write_private_atomically(&path, reference.to_text().as_bytes())?;
            key
        }
    };
    let path = keys_dir.join(format!("{}.pub", signer.key_id_hex()));
    // Public, but inside the private data directory: 0600 like the rest.
    write_private_atomically(&path, format!("{}\n", signer.note_verifier()).as_bytes())?;
    Ok(signer)
}

/// A ledger key as loaded: its signer and where it lives.
pub(super) type LoadedKey<D> = (Arc<dyn LedgerSigner>, KeyHome<D>);

/// Loads the ledger key `key_id` of `instance` from wherever its files say
/// it lives; `hsm` is the backend to use if it is in an HSM.
pub(super) fn load_key<D: ?Sized + KeyDevice>(
    keys_dir: &Path,
    instance: &str,
    key_id: &str,
    hsm: Option<&Arc<D>>,
) -> Result<LoadedKey<D>, LedgerError<D::Error>> {
    let file = keys_dir.join(format!("{key_id}.key"));
    let reference = keys_dir.join(format!("{key_id}.hsm"));
    let (signer, home): (Arc<dyn LedgerSigner>, KeyHome<D>) =
        match (file.exists(), reference.exists()) {
            (true, true) => {
                return Err(LedgerError::KeyStorage {
                    key_id: key_id.to_string(),
                    reason: format!(
                        "both a key file and an HSM reference exist in {}",
                        keys_dir.display()
                    ),
                });
            }
            (false, false) => {
                return Err(LedgerError::KeyStorage {
                    key_id: key_id.to_string(),
                    reason: format!(
                        "neither {key_id}.key nor {key_id}.hsm exists in {}",
                        keys_dir.display()
                    ),
                });
            }
            (true, false) => (Arc::new(LedgerKey::read_file(&file)?), KeyHome::File),
            (false, true) => {
                let key_ref = read_ref(&reference, instance, key_id)?;
                let Some(hsm) = hsm.filter(|h| h.kind() == key_ref.backend) else {
                    return Err(LedgerError::KeyStorage {
                        key_id: key_id.to_string(),
                        reason: format!(
                            "it is held in a {} HSM backend: open the ledger with that backend",
                            key_ref.backend
                        ),
                    });
                };
                let key = D::open_signer(hsm, instance, &key_ref.label, &origin_for(instance))
                    .map_err(LedgerError::Hsm)?;
                (key, KeyHome::Hsm(hsm.clone()))
            }
        };
    if signer.key_id_hex() != key_id {
        return Err(LedgerError::KeyStorage {
            key_id: key_id.to_string(),
            reason: format!(
                "the key found ({}) has key id {}: wrong key file or HSM token",
                signer.location(),
                signer.key_id_hex()
            ),
        });
    }
    Ok((signer, home))
}

fn read_ref<E>(path: &Path, instance: &str, key_id: &str) -> Result<KeyRef, LedgerError<E>> {
    let text = std::fs::read_to_string(path).map_err(io_error(path))?;
    let bad = |reason: String| LedgerError::KeyStorage {
        key_id: key_id.to_string(),
        reason,
    };
    let key_ref =
        KeyRef::parse(&text).ok_or_else(|| bad(format!("{} is malformed", path.display())))?;
    if key_ref.instance != instance {
        return Err(bad(format!(
            "{} names instance {:?}, not {instance:?}",
            path.display(),
            key_ref.instance
        )));
    }
    Ok(key_ref)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_references_round_trip_and_reject_junk() {
        let r = KeyRef {
            backend: "pkcs11".into(),
            instance: "acme".into(),
            label: "ledger-00ff".into(),
        };
        assert_eq!(
            r.to_text(),
            "keyledger-ledger-key-ref-v1\nbackend pkcs11\ninstance acme\nlabel ledger-00ff\n"
        );
        assert_eq!(KeyRef::parse(&r.to_text()), Some(r));
        for junk in [
            "",
            "keyledger-ledger-key-ref-v1\nbackend pkcs11\ninstance acme\nlabel ledger-00ff",
            "keyledger-ledger-key-ref-v2\nbackend pkcs11\ninstance acme\nlabel l\n",
            "keyledger-ledger-key-ref-v1\nbackend pkcs11\ninstance acme\n",
            "keyledger-ledger-key-ref-v1\nbackend pkcs11\ninstance acme\nlabel \n",
            "keyledger-ledger-key-ref-v1\nbackend pkcs11\nlabel l\ninstance acme\n",
            "keyledger-ledger-key-ref-v1\nbackend pkcs11\ninstance acme\nlabel l\nextra\n",
        ] {
            assert_eq!(KeyRef::parse(junk), None, "{junk:?}");
        }
    }
}
