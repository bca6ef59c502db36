//! C2SP signed-note envelope: Ed25519 keys, key ids and signature lines.
//!
//! A note is `text` (non-empty, every line ending in `\n`), a blank line,
//! then one or more lines `— <name> <base64(key id[4] || signature)>\n`.
//! Ed25519 signatures cover `text` exactly (including its final newline).

use core::fmt;
use core::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::CheckpointError;

/// Signature line prefix: U+2014 EM DASH followed by a space.
pub const SIGNATURE_PREFIX: &str = "\u{2014} ";
/// Signature type byte of Ed25519 keys (C2SP signed-note).
pub const ALG_ED25519: u8 = 0x01;
/// Most signature lines a note may carry (as golang.org/x/mod/sumdb/note).
pub const MAX_SIGNATURES: usize = 100;

/// C2SP signed-note key name rule: non-empty, no Unicode whitespace, no `+`.
#[must_use]
pub fn is_valid_key_name(name: &str) -> bool {
    !name.is_empty() && !name.contains('+') && !name.chars().any(char::is_whitespace)
}

/// Ed25519 key id: the first 4 bytes of
/// `SHA-256(name || 0x0A || 0x01 || public key)` (C2SP signed-note).
/// `hex::encode` of it is the 8-hex-digit id of the verifier key string.
#[must_use]
pub fn key_id(name: &str, key: &VerifyingKey) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', ALG_ED25519]);
    h.update(key.as_bytes());
    let d = h.finalize();
    [d[0], d[1], d[2], d[3]]
}

/// A C2SP signed-note Ed25519 verifier key,
/// text form `<name>+<8 hex key id>+<base64(0x01 || public key)>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteVerifierKey {
    /// Key name, as it appears on signature lines.
    pub name: String,
    /// The Ed25519 public key.
    pub key: VerifyingKey,
}

impl NoteVerifierKey {
    /// A verifier for `name` and `key`. The name is not checked: a name that
    /// breaks the naming rule (see [`is_valid_key_name`]) simply never matches
    /// a signature line. Use [`NoteVerifierKey::try_new`] to check it.
    #[must_use]
    pub fn new(name: &str, key: VerifyingKey) -> Self {
        Self {
            name: name.to_owned(),
            key,
        }
    }

    /// A verifier for `name` and `key`, checking the name.
    ///
    /// # Errors
    /// [`CheckpointError::InvalidKeyName`] if `name` breaks the naming rule.
    pub fn try_new(name: &str, key: VerifyingKey) -> Result<Self, CheckpointError> {
        if !is_valid_key_name(name) {
            return Err(CheckpointError::InvalidKeyName);
        }
        Ok(Self {
            name: name.to_owned(),
            key,
        })
    }

    /// The verifier matching a signing key.
    ///
    /// # Errors
    /// [`CheckpointError::InvalidKeyName`] if `name` breaks the naming rule.
    pub fn from_signing_key(name: &str, key: &SigningKey) -> Result<Self, CheckpointError> {
        Self::try_new(name, key.verifying_key())
    }

    /// Parses the `<name>+<hex id>+<base64(0x01 || key)>` text form, checking
    /// that the key id matches the name and key.
    ///
    /// # Errors
    /// [`CheckpointError::KeyFormat`], [`CheckpointError::InvalidKeyName`],
    /// [`CheckpointError::UnsupportedKeyAlgorithm`],
    /// [`CheckpointError::InvalidPublicKey`] or [`CheckpointError::KeyIdMismatch`].
    pub fn parse(text: &str) -> Result<Self, CheckpointError> {
        let mut parts = text.splitn(3, '+');
        let (Some(name), Some(id_hex), Some(key_b64)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(CheckpointError::KeyFormat {
                reason: "expected <name>+<key id>+<key>",
            });
        };
        if !is_valid_key_name(name) {
            return Err(CheckpointError::InvalidKeyName);
        }
        let claimed = parse_key_id(id_hex)?;
        let raw = STANDARD
            .decode(key_b64)
            .map_err(|_| CheckpointError::KeyFormat {
                reason: "key is not standard base64",
            })?;
        let (alg, key_bytes) = raw.split_first().ok_or(CheckpointError::KeyFormat {
            reason: "key is empty",
        })?;
        if *alg != ALG_ED25519 {
            return Err(CheckpointError::UnsupportedKeyAlgorithm { alg: *alg });
        }
        let key_bytes: &[u8; 32] =
            key_bytes
                .try_into()
                .map_err(|_| CheckpointError::KeyFormat {
                    reason: "Ed25519 key must be 32 bytes",
                })?;
        let key =
            VerifyingKey::from_bytes(key_bytes).map_err(|_| CheckpointError::InvalidPublicKey)?;
        let computed = key_id(name, &key);
        if computed != claimed {
            return Err(CheckpointError::KeyIdMismatch { claimed, computed });
        }
        Ok(Self {
            name: name.to_owned(),
            key,
        })
    }

    /// This key's 4-byte id (see [`key_id`]).
    #[must_use]
    pub fn key_id(&self) -> [u8; 4] {
        key_id(&self.name, &self.key)
    }

    /// Whether `sig` (bytes after the 4-byte key id) is a valid strict
    /// Ed25519 signature of `msg` by this key.
    #[must_use]
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        Signature::from_slice(sig).is_ok_and(|s| self.key.verify_strict(msg, &s).is_ok())
    }
}

impl fmt::Display for NoteVerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut raw = Vec::with_capacity(33);
        raw.push(ALG_ED25519);
        raw.extend_from_slice(self.key.as_bytes());
        write!(
            f,
            "{}+{}+{}",
            self.name,
            hex::encode(self.key_id()),
            STANDARD.encode(raw)
        )
    }
}

impl FromStr for NoteVerifierKey {
    type Err = CheckpointError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// A C2SP signed-note Ed25519 signer key, text form
/// `PRIVATE+KEY+<name>+<hex id>+<base64(0x01 || 32-byte seed)>`
/// (as golang.org/x/mod/sumdb/note). `Debug` never shows the secret.
pub struct NoteSignerKey {
    /// Key name.
    pub name: String,
    /// The Ed25519 signing key (zeroized on drop).
    pub key: SigningKey,
}

impl fmt::Debug for NoteSignerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NoteSignerKey")
            .field("name", &self.name)
            .field(
                "key_id",
                &hex::encode(key_id(&self.name, &self.key.verifying_key())),
            )
            .finish_non_exhaustive()
    }
}

impl NoteSignerKey {
    /// Parses the `PRIVATE+KEY+…` text form and checks its key id.
    ///
    /// # Errors
    /// As [`NoteVerifierKey::parse`].
    pub fn parse(text: &str) -> Result<Self, CheckpointError> {
        let rest = text
            .strip_prefix("PRIVATE+KEY+")
            .ok_or(CheckpointError::KeyFormat {
                reason: "missing PRIVATE+KEY+ prefix",
            })?;
        let mut parts = rest.splitn(3, '+');
        let (Some(name), Some(id_hex), Some(key_b64)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(CheckpointError::KeyFormat {
                reason: "expected PRIVATE+KEY+<name>+<key id>+<key>",
            });
        };
        if !is_valid_key_name(name) {
            return Err(CheckpointError::InvalidKeyName);
        }
        let claimed = parse_key_id(id_hex)?;
        let raw =
            Zeroizing::new(
                STANDARD
                    .decode(key_b64)
                    .map_err(|_| CheckpointError::KeyFormat {
                        reason: "key is not standard base64",
                    })?,
            );
        let (alg, seed) = raw.split_first().ok_or(CheckpointError::KeyFormat {
            reason: "key is empty",
        })?;
        if *alg != ALG_ED25519 {
            return Err(CheckpointError::UnsupportedKeyAlgorithm { alg: *alg });
        }
        let seed: &[u8; 32] = seed.try_into().map_err(|_| CheckpointError::KeyFormat {
            reason: "Ed25519 seed must be 32 bytes",
        })?;
        let key = SigningKey::from_bytes(seed);
        let computed = key_id(name, &key.verifying_key());
        if computed != claimed {
            return Err(CheckpointError::KeyIdMismatch { claimed, computed });
        }
        Ok(Self {
            name: name.to_owned(),
            key,
        })
    }

    /// The matching verifier key.
    #[must_use]
    pub fn verifier(&self) -> NoteVerifierKey {
        NoteVerifierKey {
            name: self.name.clone(),
            key: self.key.verifying_key(),
        }
    }
}

fn parse_key_id(id_hex: &str) -> Result<[u8; 4], CheckpointError> {
    let mut id = [0u8; 4];
    if id_hex.len() != 8 || hex::decode_to_slice(id_hex, &mut id).is_err() {
        return Err(CheckpointError::KeyFormat {
            reason: "key id must be 8 hex digits",
        });
    }
    Ok(id)
}

/// One parsed signature line of a note.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteSignature {
    /// Signer key name.
    pub name: String,
    /// Signer key id (first 4 signature bytes).
    pub key_id: [u8; 4],
    /// Signature bytes after the key id.
    pub signature: Vec<u8>,
}

/// Formats one signature line `— <name> <base64(key id || sig)>\n`.
pub(super) fn signature_line(name: &str, key: &SigningKey, text: &str) -> String {
    let sig = key.sign(text.as_bytes());
    signature_line_of(name, &key.verifying_key(), &sig.to_bytes())
}

/// Formats the signature line of a signature `sig` made by `key` elsewhere.
pub(super) fn signature_line_of(name: &str, key: &VerifyingKey, sig: &[u8; 64]) -> String {
    let mut raw = Vec::with_capacity(68);
    raw.extend_from_slice(&key_id(name, key));
    raw.extend_from_slice(sig);
    format!("{SIGNATURE_PREFIX}{name} {}\n", STANDARD.encode(raw))
}

/// Splits a note into its text (with final newline) and parsed signature
/// lines, enforcing the signed-note syntax. Never panics.
///
/// # Errors
/// [`CheckpointError::NotUtf8`], [`CheckpointError::ControlCharacter`],
/// [`CheckpointError::MissingBlankLine`], [`CheckpointError::NoSignatures`],
/// [`CheckpointError::MissingTrailingNewline`],
/// [`CheckpointError::TooManySignatures`] or
/// [`CheckpointError::MalformedSignatureLine`].
pub fn parse_note(note: &[u8]) -> Result<(&str, Vec<NoteSignature>), CheckpointError> {
    let note = core::str::from_utf8(note).map_err(|e| CheckpointError::NotUtf8 {
        valid_up_to: e.valid_up_to(),
    })?;
    for (i, line) in note.split('\n').enumerate() {
        if line.chars().any(|c| c < ' ') {
            return Err(CheckpointError::ControlCharacter { line: i + 1 });
        }
    }
    let split = note
        .rfind("\n\n")
        .ok_or(CheckpointError::MissingBlankLine)?;
    let (text, sigs) = (&note[..=split], &note[split + 2..]);
    if sigs.is_empty() {
        return Err(CheckpointError::NoSignatures);
    }
    let Some(sigs) = sigs.strip_suffix('\n') else {
        return Err(CheckpointError::MissingTrailingNewline);
    };
    let first_sig_line = text.matches('\n').count() + 2;
    let mut out = Vec::new();
    for (i, line) in sigs.split('\n').enumerate() {
        let line_no = first_sig_line + i;
        if i >= MAX_SIGNATURES {
            return Err(CheckpointError::TooManySignatures {
                max: MAX_SIGNATURES,
            });
        }
        let malformed = |reason| CheckpointError::MalformedSignatureLine {
            line: line_no,
            reason,
        };
        let rest = line
            .strip_prefix(SIGNATURE_PREFIX)
            .ok_or(malformed("missing \u{2014} prefix"))?;
        let (name, b64) = rest.split_once(' ').ok_or(malformed("missing space"))?;
        if !is_valid_key_name(name) {
            return Err(malformed("invalid key name"));
        }
        let raw = STANDARD.decode(b64).map_err(|_| malformed("bad base64"))?;
        if raw.len() < 5 {
            return Err(malformed("signature shorter than 5 bytes"));
        }
        let (id, sig) = raw.split_at(4);
        out.push(NoteSignature {
            name: name.to_owned(),
            key_id: [id[0], id[1], id[2], id[3]],
            signature: sig.to_vec(),
        });
    }
    Ok((text, out))
}

/// Verifies the signatures of a parsed note against `verifiers`: lines from
/// unknown keys are ignored, a line from a known key that fails to verify
/// rejects the note, and at least one known key must have signed.
/// Returns the deduplicated verified signatures.
///
/// # Errors
/// [`CheckpointError::InvalidSignature`], [`CheckpointError::AmbiguousKey`] or
/// [`CheckpointError::NoVerifiedSignature`].
pub fn verify_note(
    text: &str,
    sigs: &[NoteSignature],
    verifiers: &[NoteVerifierKey],
) -> Result<Vec<NoteSignature>, CheckpointError> {
    let mut verified: Vec<NoteSignature> = Vec::new();
    for sig in sigs {
        let mut matching = verifiers
            .iter()
            .filter(|v| v.name == sig.name && v.key_id() == sig.key_id);
        let Some(v) = matching.next() else {
            continue;
        };
        if matching.any(|other| other.key != v.key) {
            return Err(CheckpointError::AmbiguousKey {
                name: sig.name.clone(),
                key_id: sig.key_id,
            });
        }
        if !v.verify(text.as_bytes(), &sig.signature) {
            return Err(CheckpointError::InvalidSignature {
                name: sig.name.clone(),
                key_id: sig.key_id,
            });
        }
        if !verified
            .iter()
            .any(|s| s.name == sig.name && s.key_id == sig.key_id)
        {
            verified.push(sig.clone());
        }
    }
    if verified.is_empty() {
        return Err(CheckpointError::NoVerifiedSignature);
    }
    Ok(verified)
}
