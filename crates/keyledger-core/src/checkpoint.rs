//! C2SP tlog-checkpoint signed notes (<https://c2sp.org/tlog-checkpoint>,
//! <https://c2sp.org/signed-note>).
//!
//! A checkpoint body is
//!
//! ```text
//! <origin>\n
//! <tree size, decimal, no leading zeros>\n
//! <RFC 9162 root hash, standard base64>\n
//! [<extension line>\n]*
//! ```
//!
//! followed by a blank line and one or more signature lines
//! `— <key name> <base64(key id[4] || Ed25519 signature[64])>\n`; each
//! signature covers the body including its final newline. keyledger uses one
//! extension line, `keyledger-chain <64 lowercase hex>` (the BLAKE3 chain
//! head, see [`Checkpoint::chain_head`]).
//!
//! Parsing takes bytes and never panics.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{SigningKey, VerifyingKey};

use crate::merkle::Hash;

mod note;

pub use note::{
    ALG_ED25519, MAX_SIGNATURES, NoteSignature, NoteSignerKey, NoteVerifierKey, SIGNATURE_PREFIX,
    is_valid_key_name, key_id, parse_note, verify_note,
};

/// Prefix of keyledger's chain-head extension line.
pub const CHAIN_EXTENSION_PREFIX: &str = "keyledger-chain ";

/// Why a checkpoint or signed note was rejected. Line numbers are 1-based
/// positions in the note text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// The note is not UTF-8.
    #[error("note is not UTF-8 (valid up to byte {valid_up_to})")]
    NotUtf8 {
        /// Length of the valid UTF-8 prefix.
        valid_up_to: usize,
    },
    /// A line holds an ASCII control character other than the newline.
    #[error("line {line} contains a control character")]
    ControlCharacter {
        /// Offending line.
        line: usize,
    },
    /// No blank line separates the body from the signatures.
    #[error("note has no blank line before its signatures")]
    MissingBlankLine,
    /// The blank line is followed by nothing.
    #[error("note has no signature lines")]
    NoSignatures,
    /// The last line does not end with a newline.
    #[error("note does not end with a newline")]
    MissingTrailingNewline,
    /// More signature lines than [`MAX_SIGNATURES`].
    #[error("note has more than {max} signatures")]
    TooManySignatures {
        /// The limit.
        max: usize,
    },
    /// A signature line is not `— <name> <base64>` with a decodable signature.
    #[error("signature line {line} is malformed: {reason}")]
    MalformedSignatureLine {
        /// Offending line.
        line: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// The body lacks a mandatory line.
    #[error("checkpoint body has no {which} line")]
    MissingLine {
        /// `"origin"`, `"tree size"` or `"root hash"`.
        which: &'static str,
    },
    /// The origin line is empty.
    #[error("checkpoint origin is empty")]
    EmptyOrigin,
    /// The size line is not a decimal number.
    #[error("tree size is not a decimal number")]
    SizeNotDecimal,
    /// The size line has a leading zero.
    #[error("tree size has leading zeros")]
    SizeLeadingZero,
    /// The size does not fit in 64 bits.
    #[error("tree size does not fit in 64 bits")]
    SizeOverflow,
    /// The root line is not standard, padded, canonical base64.
    #[error("root hash is not standard base64")]
    RootBase64,
    /// The root decodes to the wrong number of bytes.
    #[error("root hash is {got} bytes, expected 32")]
    RootLength {
        /// Decoded length.
        got: usize,
    },
    /// An extension line is empty (or a body line contains a newline when signing).
    #[error("body line {line} is empty or contains a newline")]
    BadBodyLine {
        /// Offending line.
        line: usize,
    },
    /// The `keyledger-chain` extension is not 64 lowercase hex digits, or repeats.
    #[error("keyledger-chain extension on line {line} is malformed")]
    BadChainExtension {
        /// Offending line.
        line: usize,
    },
    /// A key name is empty or contains whitespace or `+`.
    #[error("key name is empty or contains whitespace or '+'")]
    InvalidKeyName,
    /// A key string does not have the signed-note key syntax.
    #[error("malformed key: {reason}")]
    KeyFormat {
        /// What is wrong.
        reason: &'static str,
    },
    /// The key is not an Ed25519 (type 0x01) key.
    #[error("unsupported key algorithm {alg:#04x}")]
    UnsupportedKeyAlgorithm {
        /// The type byte found.
        alg: u8,
    },
    /// The public key bytes are not a valid Ed25519 point.
    #[error("invalid Ed25519 public key")]
    InvalidPublicKey,
    /// The key id in a key string does not match its name and key.
    #[error(
        "key id {} does not match computed {}",
        hex::encode(.claimed),
        hex::encode(.computed)
    )]
    KeyIdMismatch {
        /// Id written in the key string.
        claimed: [u8; 4],
        /// Id computed from name and key.
        computed: [u8; 4],
    },
    /// Two different trusted keys share a name and key id.
    #[error("ambiguous verifier key {name}+{}", hex::encode(.key_id))]
    AmbiguousKey {
        /// Key name.
        name: String,
        /// Key id.
        key_id: [u8; 4],
    },
    /// A trusted key's signature does not verify.
    #[error("invalid signature for key {name}+{}", hex::encode(.key_id))]
    InvalidSignature {
        /// Key name.
        name: String,
        /// Key id.
        key_id: [u8; 4],
    },
    /// No trusted key signed the note.
    #[error("note has no signature from a trusted key")]
    NoVerifiedSignature,
}

/// A C2SP tlog-checkpoint: the signed statement "the log `origin` has
/// `size` entries with RFC 9162 root `root`", plus extension lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// Log identity line (non-empty, e.g. a schema-less URL).
    pub origin: String,
    /// Number of leaves in the tree.
    pub size: u64,
    /// RFC 9162 Merkle Tree Hash of those leaves.
    pub root: Hash,
    /// Extension lines, each non-empty, without newlines.
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// The note body: origin, size, base64 root and extension lines, each
    /// followed by `\n`. This is exactly the signed message.
    #[must_use]
    pub fn body(&self) -> String {
        let mut s = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            STANDARD.encode(self.root)
        );
        for ext in &self.extensions {
            s.push_str(ext);
            s.push('\n');
        }
        s
    }

    /// Checks that [`Checkpoint::body`] would parse back to `self`.
    ///
    /// # Errors
    /// [`CheckpointError::EmptyOrigin`], [`CheckpointError::ControlCharacter`]
    /// or [`CheckpointError::BadBodyLine`].
    pub fn validate(&self) -> Result<(), CheckpointError> {
        if self.origin.is_empty() {
            return Err(CheckpointError::EmptyOrigin);
        }
        let lines = core::iter::once((1, self.origin.as_str())).chain(
            self.extensions
                .iter()
                .enumerate()
                .map(|(i, e)| (i + 4, e.as_str())),
        );
        for (line, text) in lines {
            if text.is_empty() || text.contains('\n') {
                return Err(CheckpointError::BadBodyLine { line });
            }
            if text.chars().any(|c| c < ' ') {
                return Err(CheckpointError::ControlCharacter { line });
            }
        }
        self.chain_head().map(|_| ())
    }

    /// Signs the checkpoint with one key, returning the complete note text
    /// `body || "\n" || "— name base64(key id || sig)\n"`.
    ///
    /// Does not validate: a checkpoint that breaks the format (empty origin,
    /// newline in a line, bad key name, …) yields a note that
    /// [`parse_and_verify`] rejects. Use [`Checkpoint::try_sign`] to check first.
    #[must_use]
    pub fn sign(&self, name: &str, key: &SigningKey) -> String {
        let body = self.body();
        let line = note::signature_line(name, key, &body);
        format!("{body}\n{line}")
    }

    /// Signs the checkpoint with a key held elsewhere (an HSM): `sign`
    /// receives the note body and returns the Ed25519 signature over it by
    /// the key whose public half is `key`. The note is the same as
    /// [`Checkpoint::sign`] makes with that key's private half.
    ///
    /// # Errors
    /// Whatever `sign` returns.
    pub fn sign_detached<E>(
        &self,
        name: &str,
        key: &VerifyingKey,
        sign: impl FnOnce(&[u8]) -> Result<[u8; 64], E>,
    ) -> Result<String, E> {
        let body = self.body();
        let signature = sign(body.as_bytes())?;
        let line = note::signature_line_of(name, key, &signature);
        Ok(format!("{body}\n{line}"))
    }

    /// [`Checkpoint::sign`] after checking the checkpoint and key name.
    ///
    /// # Errors
    /// As [`Checkpoint::validate`], or [`CheckpointError::InvalidKeyName`].
    pub fn try_sign(&self, name: &str, key: &SigningKey) -> Result<String, CheckpointError> {
        self.sign_multi(&[(name, key)])
    }

    /// Signs the checkpoint with several keys (one signature line each, in order).
    ///
    /// # Errors
    /// As [`Checkpoint::try_sign`]; [`CheckpointError::NoSignatures`] if
    /// `signers` is empty, [`CheckpointError::TooManySignatures`] past the limit.
    pub fn sign_multi(&self, signers: &[(&str, &SigningKey)]) -> Result<String, CheckpointError> {
        self.validate()?;
        if signers.is_empty() {
            return Err(CheckpointError::NoSignatures);
        }
        if signers.len() > MAX_SIGNATURES {
            return Err(CheckpointError::TooManySignatures {
                max: MAX_SIGNATURES,
            });
        }
        let body = self.body();
        let mut out = body.clone();
        out.push('\n');
        for (name, key) in signers {
            if !is_valid_key_name(name) {
                return Err(CheckpointError::InvalidKeyName);
            }
            out.push_str(&note::signature_line(name, key, &body));
        }
        Ok(out)
    }

    /// Parses a checkpoint body (the signed text, ending in `\n`).
    ///
    /// # Errors
    /// Any body-level [`CheckpointError`].
    pub fn parse_body(body: &str) -> Result<Self, CheckpointError> {
        let Some(body) = body.strip_suffix('\n') else {
            return Err(CheckpointError::MissingTrailingNewline);
        };
        let mut lines = body.split('\n');
        let origin = lines
            .next()
            .ok_or(CheckpointError::MissingLine { which: "origin" })?;
        if origin.is_empty() {
            return Err(CheckpointError::EmptyOrigin);
        }
        let size = parse_size(
            lines
                .next()
                .ok_or(CheckpointError::MissingLine { which: "tree size" })?,
        )?;
        let root_b64 = lines
            .next()
            .ok_or(CheckpointError::MissingLine { which: "root hash" })?;
        let raw = STANDARD
            .decode(root_b64)
            .map_err(|_| CheckpointError::RootBase64)?;
        let root: Hash = raw
            .as_slice()
            .try_into()
            .map_err(|_| CheckpointError::RootLength { got: raw.len() })?;
        let extensions: Vec<String> = lines.map(str::to_owned).collect();
        let cp = Self {
            origin: origin.to_owned(),
            size,
            root,
            extensions,
        };
        cp.validate()?;
        Ok(cp)
    }

    /// Parses a signed checkpoint note without checking any signature (for
    /// inspection only), returning the checkpoint and its signature lines.
    ///
    /// # Errors
    /// Any syntax-level [`CheckpointError`].
    pub fn parse_with_signatures(
        note: impl AsRef<[u8]>,
    ) -> Result<(Self, Vec<NoteSignature>), CheckpointError> {
        let (text, sigs) = parse_note(note.as_ref())?;
        Ok((Self::parse_body(text)?, sigs))
    }

    /// The `keyledger-chain` extension value, if present.
    ///
    /// # Errors
    /// [`CheckpointError::BadChainExtension`] if the extension is not
    /// exactly 64 lowercase hex digits or appears more than once.
    pub fn chain_head(&self) -> Result<Option<[u8; 32]>, CheckpointError> {
        let mut found = None;
        for (i, ext) in self.extensions.iter().enumerate() {
            let Some(hex_str) = ext.strip_prefix(CHAIN_EXTENSION_PREFIX) else {
                continue;
            };
            let line = i + 4;
            let well_formed = hex_str.len() == 64
                && hex_str
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
            let mut head = [0u8; 32];
            if found.is_some() || !well_formed || hex::decode_to_slice(hex_str, &mut head).is_err()
            {
                return Err(CheckpointError::BadChainExtension { line });
            }
            found = Some(head);
        }
        Ok(found)
    }

    /// Adds (or replaces) the `keyledger-chain <hex>` extension line.
    pub fn set_chain_head(&mut self, head: &[u8; 32]) {
        self.extensions
            .retain(|e| !e.starts_with(CHAIN_EXTENSION_PREFIX));
        self.extensions
            .push(format!("{CHAIN_EXTENSION_PREFIX}{}", hex::encode(head)));
    }
}

/// Parses a signed checkpoint note without checking any signature (for
/// inspection only). The note syntax is still fully checked.
///
/// # Errors
/// Any syntax-level [`CheckpointError`].
pub fn parse_unverified(note: impl AsRef<[u8]>) -> Result<Checkpoint, CheckpointError> {
    Checkpoint::parse_with_signatures(note).map(|(cp, _)| cp)
}

/// Parses a signed checkpoint note and checks it is signed by at least one
/// of `verifiers`. Signature lines from unknown keys are ignored; an invalid
/// signature from a known key rejects the note. Never panics on any input.
///
/// # Errors
/// Any [`CheckpointError`]; notably [`CheckpointError::NoVerifiedSignature`]
/// and [`CheckpointError::InvalidSignature`].
pub fn parse_and_verify(
    note: impl AsRef<[u8]>,
    verifiers: &[NoteVerifierKey],
) -> Result<Checkpoint, CheckpointError> {
    let (text, sigs) = parse_note(note.as_ref())?;
    let cp = Checkpoint::parse_body(text)?;
    verify_note(text, &sigs, verifiers)?;
    Ok(cp)
}

fn parse_size(text: &str) -> Result<u64, CheckpointError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CheckpointError::SizeNotDecimal);
    }
    if text.len() > 1 && text.starts_with('0') {
        return Err(CheckpointError::SizeLeadingZero);
    }
    text.parse::<u64>()
        .map_err(|_| CheckpointError::SizeOverflow)
}

#[cfg(test)]
mod tests;
