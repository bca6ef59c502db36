//! Administrator commands: the document administrators sign offline, its
//! domain-separated digest, and the signatures over it.
//!
//! A command document is UTF-8 JSON:
//! `{"v":1,"instance":"acme","nonce":"…","expires_at":"2026-12-01T00:00:00Z",
//! "command":{"kind":"admin.add",…}}`. The document's exact bytes are what is
//! hashed: `digest = SHA-256("keyledger/v1/admin-command" || 0x00 || document)`,
//! so the digest binds the instance, the command, the nonce and the expiry.
//! Each administrator signs the 32-byte digest with ed25519. The server never
//! re-serialises a document: it stores it verbatim in the event, so auditors
//! re-hash the same bytes.

use base64::Engine;
use chrono::{DateTime, Utc};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::event::{AdminSignature, SignedCommandRef};

/// Domain separation of the command digest.
pub const COMMAND_DOMAIN: &[u8] = b"keyledger/v1/admin-command\0";
/// The only document version.
pub const DOCUMENT_VERSION: u32 = 1;
/// Longest accepted document.
pub const MAX_DOCUMENT_BYTES: usize = 16 * 1024;
/// Most signatures on one command (the threshold is at most 8).
pub const MAX_SIGNATURES: usize = 16;

/// An administrator command, as signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", deny_unknown_fields)]
pub enum AdminCommand {
    /// Adds an administrator (its id is derived from the public key).
    #[serde(rename = "admin.add")]
    AddAdmin {
        /// Display name.
        name: String,
        /// Base64 ed25519 public key.
        public_key: String,
    },
    /// Removes an administrator (revocation threshold).
    #[serde(rename = "admin.remove")]
    RemoveAdmin {
        /// The administrator's id.
        admin_id: String,
    },
    /// Sets both thresholds; the first time, this leaves imprint mode.
    #[serde(rename = "admin.set_thresholds")]
    SetThresholds {
        /// Distinct administrator signatures most commands need.
        signature_threshold: u8,
        /// Signatures removals and revocations need.
        revocation_threshold: u8,
    },
    /// Registers a key owner, who may then load a master-key part.
    #[serde(rename = "key_owner.register")]
    RegisterKeyOwner {
        /// The owner's id.
        owner_id: String,
        /// Display name.
        name: String,
        /// Base64 ed25519 public key authenticating the owner's parts.
        public_key: String,
    },
    /// Removes a key owner (revocation threshold).
    #[serde(rename = "key_owner.remove")]
    RemoveKeyOwner {
        /// The owner's id.
        owner_id: String,
    },
    /// Opens the loading of master-key parts for a generation.
    #[serde(rename = "master_key.approve_load")]
    ApproveMasterKeyLoad {
        /// The master-key generation.
        generation: u32,
    },
    /// Commits (combines) the loaded parts of a generation.
    #[serde(rename = "master_key.commit")]
    CommitMasterKey {
        /// The master-key generation.
        generation: u32,
    },
    /// Activates a committed generation (a rotation when one is current).
    #[serde(rename = "master_key.activate")]
    ActivateMasterKey {
        /// The master-key generation.
        generation: u32,
    },
    /// Issues an API credential; only the SHA-256 of its token is sent.
    #[serde(rename = "credential.issue")]
    IssueCredential {
        /// The credential's id.
        credential_id: String,
        /// The role it grants.
        role: String,
        /// SHA-256 hex of the bearer token.
        token_digest: String,
    },
    /// Revokes an API credential (revocation threshold).
    #[serde(rename = "credential.revoke")]
    RevokeCredential {
        /// The credential's id.
        credential_id: String,
    },
    /// Sets an instance policy.
    #[serde(rename = "instance.set_policy")]
    SetInstancePolicy {
        /// The policy's type.
        policy_type: String,
        /// Whether the policy is on.
        enabled: bool,
        /// The policy's settings.
        #[serde(default)]
        attributes: std::collections::BTreeMap<String, serde_json::Value>,
    },
    /// Replaces the instance's SIEM sinks (an empty list stops all
    /// forwarding; removing a sink takes the revocation threshold).
    #[serde(rename = "export.set_sinks")]
    SetSinks {
        /// The sinks, each named, with its format and target.
        sinks: Vec<super::sinks::SinkSpec>,
    },
    /// Destroys the master key and all key material; resets the thresholds.
    #[serde(rename = "instance.zeroize")]
    Zeroize {},
}

impl AdminCommand {
    /// The command's kind, as written in the document.
    pub fn kind(&self) -> &'static str {
        match self {
            AdminCommand::AddAdmin { .. } => "admin.add",
            AdminCommand::RemoveAdmin { .. } => "admin.remove",
            AdminCommand::SetThresholds { .. } => "admin.set_thresholds",
            AdminCommand::RegisterKeyOwner { .. } => "key_owner.register",
            AdminCommand::RemoveKeyOwner { .. } => "key_owner.remove",
            AdminCommand::ApproveMasterKeyLoad { .. } => "master_key.approve_load",
            AdminCommand::CommitMasterKey { .. } => "master_key.commit",
            AdminCommand::ActivateMasterKey { .. } => "master_key.activate",
            AdminCommand::IssueCredential { .. } => "credential.issue",
            AdminCommand::RevokeCredential { .. } => "credential.revoke",
            AdminCommand::SetInstancePolicy { .. } => "instance.set_policy",
            AdminCommand::SetSinks { .. } => "export.set_sinks",
            AdminCommand::Zeroize {} => "instance.zeroize",
        }
    }

    /// Removals need the revocation threshold rather than the signature
    /// threshold.
    pub fn is_removal(&self) -> bool {
        matches!(
            self,
            AdminCommand::RemoveAdmin { .. }
                | AdminCommand::RemoveKeyOwner { .. }
                | AdminCommand::RevokeCredential { .. }
        )
    }
}

/// The signed document: who it is for, when it expires, what it commands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandDocument {
    /// Document format version.
    pub v: u32,
    /// The instance the command is for.
    pub instance: String,
    /// Single-use value chosen by the author (8-64 characters).
    pub nonce: String,
    /// RFC 3339; the command is refused from this instant on.
    pub expires_at: String,
    /// What the command does.
    pub command: AdminCommand,
}

impl CommandDocument {
    /// A document for `instance` with a random nonce.
    pub fn new(
        instance: &str,
        command: AdminCommand,
        expires_at: DateTime<Utc>,
    ) -> Result<Self, CommandError> {
        let mut nonce = [0u8; 16];
        getrandom::getrandom(&mut nonce).map_err(|_| CommandError::Rng)?;
        Ok(CommandDocument {
            v: DOCUMENT_VERSION,
            instance: instance.to_string(),
            nonce: hex::encode(nonce),
            expires_at: expires_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            command,
        })
    }

    /// The document's bytes (compact JSON; these bytes are what is signed).
    pub fn to_text(&self) -> Result<String, CommandError> {
        serde_json::to_string(self).map_err(|e| CommandError::Malformed(e.to_string()))
    }

    /// Parses and checks a document's shape.
    pub fn parse(text: &str) -> Result<Self, CommandError> {
        if text.len() > MAX_DOCUMENT_BYTES {
            return Err(CommandError::Malformed(format!(
                "document is {} bytes, more than {MAX_DOCUMENT_BYTES}",
                text.len()
            )));
        }
        let doc: CommandDocument =
            serde_json::from_str(text).map_err(|e| CommandError::Malformed(e.to_string()))?;
        if doc.v != DOCUMENT_VERSION {
            return Err(CommandError::Malformed(format!(
                "unsupported document version {}",
                doc.v
            )));
        }
        let nonce_ok = (8..=64).contains(&doc.nonce.len())
            && doc
                .nonce
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !nonce_ok {
            return Err(CommandError::Malformed(
                "nonce must be 8-64 characters of letters, digits, '-' or '_'".into(),
            ));
        }
        doc.expiry()?;
        Ok(doc)
    }

    /// The expiry instant.
    pub fn expiry(&self) -> Result<DateTime<Utc>, CommandError> {
        DateTime::parse_from_rfc3339(&self.expires_at)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| CommandError::Malformed("expires_at is not an RFC 3339 time".into()))
    }
}

/// A document with the administrator signatures gathered so far: the file
/// `keyledger admin sign` writes and `keyledger admin submit` sends.
// Its OpenAPI schema (feature `openapi`) is `governance::openapi`'s, which
// keeps `schemas/openapi.json` free of these field docs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedCommand {
    /// The command document, verbatim: its exact bytes are what is hashed
    /// and signed.
    pub document: String,
    /// The administrator signatures gathered so far (`keyledger admin
    /// sign` keeps one per administrator); none for a command just drafted.
    #[serde(default)]
    pub signatures: Vec<AdminSignature>,
}

impl SignedCommand {
    /// The document with no signature yet.
    pub fn unsigned(document: &CommandDocument) -> Result<Self, CommandError> {
        Ok(SignedCommand {
            document: document.to_text()?,
            signatures: Vec::new(),
        })
    }

    /// Checks the command's form alone, needing no state: the document
    /// parses ([`CommandDocument::parse`]) and there are at most
    /// [`MAX_SIGNATURES`] signatures. What fails here is a malformed
    /// request, whoever sent it and whichever instance it names.
    pub fn check_form(&self) -> Result<CommandDocument, CommandError> {
        if self.signatures.len() > MAX_SIGNATURES {
            return Err(CommandError::Malformed(format!(
                "{} signatures, more than {MAX_SIGNATURES}",
                self.signatures.len()
            )));
        }
        CommandDocument::parse(&self.document)
    }

    /// The digest administrators sign.
    pub fn digest(&self) -> [u8; 32] {
        command_digest(&self.document)
    }

    /// Adds (or replaces) the signature of the administrator holding `key`.
    pub fn sign(&mut self, key: &SigningKey) {
        let admin_id = admin_id(&key.verifying_key());
        let signature = key.sign(&self.digest());
        self.signatures.retain(|s| s.admin_id != admin_id);
        self.signatures.push(AdminSignature {
            admin_id,
            signature: base64::engine::general_purpose::STANDARD.encode(signature.to_bytes()),
        });
    }

    /// The reference stored in events.
    pub fn to_ref(&self) -> SignedCommandRef {
        SignedCommandRef {
            digest: hex::encode(self.digest()),
            document: self.document.clone(),
            signatures: self.signatures.clone(),
        }
    }

    /// From the reference stored in an event (its digest is recomputed,
    /// never trusted).
    pub fn from_ref(r: &SignedCommandRef) -> Self {
        SignedCommand {
            document: r.document.clone(),
            signatures: r.signatures.clone(),
        }
    }
}

/// `SHA-256(COMMAND_DOMAIN || document)`.
pub fn command_digest(document: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(COMMAND_DOMAIN);
    h.update(document.as_bytes());
    h.finalize().into()
}

/// An administrator's id: the first 8 bytes of SHA-256 of the public key, hex.
pub fn admin_id(key: &VerifyingKey) -> String {
    hex::encode(&Sha256::digest(key.as_bytes())[..8])
}

/// Decodes a base64 ed25519 public key.
pub fn decode_public_key(b64: &str) -> Result<VerifyingKey, CommandError> {
    let bytes: [u8; 32] = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| CommandError::Malformed("public key is not 32 bytes of base64".into()))?;
    VerifyingKey::from_bytes(&bytes)
        .map_err(|_| CommandError::Malformed("public key is not a valid ed25519 point".into()))
}

/// Checks one signature over `digest` with `key`.
pub fn signature_valid(key: &VerifyingKey, digest: &[u8; 32], signature_b64: &str) -> bool {
    let Some(bytes) = base64::engine::general_purpose::STANDARD
        .decode(signature_b64)
        .ok()
        .and_then(|b| <[u8; 64]>::try_from(b).ok())
    else {
        return false;
    };
    key.verify_strict(digest, &Signature::from_bytes(&bytes))
        .is_ok()
}

/// Why a command document or signature set was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// The document or a signature does not parse or is out of bounds.
    #[error("malformed command: {0}")]
    Malformed(String),
    /// No nonce could be drawn.
    #[error("random number generator failed")]
    Rng,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> SigningKey {
        SigningKey::from_bytes(&[b; 32])
    }

    #[test]
    fn document_round_trips_and_digest_binds_every_field() {
        let doc = CommandDocument {
            v: 1,
            instance: "acme".into(),
            nonce: "0123456789abcdef".into(),
            expires_at: "2026-12-01T00:00:00Z".into(),
            command: AdminCommand::SetThresholds {
                signature_threshold: 2,
                revocation_threshold: 1,
            },
        };
        let text = doc.to_text().unwrap();
        assert_eq!(CommandDocument::parse(&text).unwrap(), doc);
        let base = command_digest(&text);
        for (from, to) in [
            ("acme", "acmf"),
            ("0123456789abcdef", "0123456789abcdee"),
            ("2026-12-01", "2026-12-02"),
            ("\"signature_threshold\":2", "\"signature_threshold\":3"),
        ] {
            let changed = text.replace(from, to);
            assert_ne!(changed, text);
            assert_ne!(command_digest(&changed), base, "{from}");
        }
    }

    #[test]
    fn unknown_fields_kinds_and_versions_are_refused() {
        let ok = r#"{"v":1,"instance":"a","nonce":"abcdefgh","expires_at":"2026-12-01T00:00:00Z","command":{"kind":"instance.zeroize"}}"#;
        CommandDocument::parse(ok).unwrap();
        for bad in [
            ok.replace("\"v\":1", "\"v\":2"),
            ok.replace("instance.zeroize", "instance.explode"),
            ok.replace(
                "\"kind\":\"instance.zeroize\"",
                "\"kind\":\"instance.zeroize\",\"x\":1",
            ),
            ok.replace("abcdefgh", "short"),
            ok.replace("2026-12-01T00:00:00Z", "tomorrow"),
            ok.replace("}}", "},\"extra\":true}"),
        ] {
            assert!(
                matches!(
                    CommandDocument::parse(&bad),
                    Err(CommandError::Malformed(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn form_is_the_document_and_at_most_sixteen_signatures() {
        let doc = CommandDocument::new("acme", AdminCommand::Zeroize {}, Utc::now()).unwrap();
        let mut signed = SignedCommand::unsigned(&doc).unwrap();
        assert_eq!(signed.check_form(), Ok(doc));
        for n in 0..MAX_SIGNATURES as u8 {
            signed.sign(&key(n + 1));
        }
        assert!(signed.check_form().is_ok());
        signed.sign(&key(100));
        assert!(matches!(
            signed.check_form(),
            Err(CommandError::Malformed(m)) if m.contains("17 signatures")
        ));
        signed.signatures.clear();
        signed.document = "{}".into();
        assert!(signed.check_form().is_err());
    }

    #[test]
    fn signatures_verify_only_over_their_document() {
        let doc = CommandDocument::new(
            "acme",
            AdminCommand::RemoveAdmin {
                admin_id: "x".into(),
            },
            Utc::now(),
        )
        .unwrap();
        let mut signed = SignedCommand::unsigned(&doc).unwrap();
        signed.sign(&key(1));
        signed.sign(&key(1));
        assert_eq!(signed.signatures.len(), 1, "re-signing replaces");
        let s = &signed.signatures[0];
        assert_eq!(s.admin_id, admin_id(&key(1).verifying_key()));
        assert!(signature_valid(
            &key(1).verifying_key(),
            &signed.digest(),
            &s.signature
        ));
        assert!(!signature_valid(
            &key(2).verifying_key(),
            &signed.digest(),
            &s.signature
        ));
        let other = command_digest(&signed.document.replace("acme", "acmf"));
        assert!(!signature_valid(
            &key(1).verifying_key(),
            &other,
            &s.signature
        ));
        assert!(!signature_valid(
            &key(1).verifying_key(),
            &signed.digest(),
            "not base64!"
        ));
    }
}
