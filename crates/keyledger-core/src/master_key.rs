//! What the log says about an instance's master key: registered key owners,
//! the ceremony in progress (parts loaded, commit) and the current
//! generation with its verification pattern. Computed only from events
//! (`apply` never fails on a well-formed log); the HSM backend holds the key
//! itself.

use std::collections::BTreeMap;

use crate::event::{
    Envelope, InstanceUnsealed, InstanceZeroized, KeyOwnerRegistered, KeyOwnerRemoved,
    MasterKeyActivated, MasterKeyCommitted, MasterKeyPartLoaded, MasterKeyRotated,
};

/// A registered key owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyOwner {
    /// Display name given at registration.
    pub name: String,
    /// Ed25519 public key authenticating the owner's part submissions.
    pub public_key: [u8; 32],
}

/// A ceremony in progress: parts loaded into the "new" register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingMasterKey {
    /// The generation the ceremony builds.
    pub generation: u32,
    /// Owner id → verification pattern of the part they loaded.
    pub parts: BTreeMap<String, String>,
    /// Verification pattern once committed.
    pub committed: Option<String>,
}

/// The master-key projection of one instance.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MasterKeyState {
    /// Registered key owners by owner id.
    pub owners: BTreeMap<String, KeyOwner>,
    /// Current generation and its verification pattern.
    pub current: Option<(u32, String)>,
    /// The ceremony in progress, if any.
    pub pending: Option<PendingMasterKey>,
    /// Generations ever activated, oldest first, with their patterns.
    pub history: Vec<(u32, String)>,
}

impl MasterKeyState {
    /// Applies one event; events of other kinds are ignored.
    pub fn apply(&mut self, envelope: &Envelope<'_>) {
        if let Some(Ok(e)) = envelope.payload_as::<KeyOwnerRegistered>() {
            if let Some(public_key) = decode_key(&e.public_key) {
                self.owners.insert(
                    e.owner_id,
                    KeyOwner {
                        name: e.name,
                        public_key,
                    },
                );
            }
        } else if let Some(Ok(e)) = envelope.payload_as::<KeyOwnerRemoved>() {
            self.owners.remove(&e.owner_id);
        } else if let Some(Ok(e)) = envelope.payload_as::<MasterKeyPartLoaded>() {
            let pending = self.pending.get_or_insert_with(|| PendingMasterKey {
                generation: e.generation,
                parts: BTreeMap::new(),
                committed: None,
            });
            if pending.generation != e.generation {
                *pending = PendingMasterKey {
                    generation: e.generation,
                    parts: BTreeMap::new(),
                    committed: None,
                };
            }
            pending.parts.insert(e.owner_id, e.verification_pattern);
        } else if let Some(Ok(e)) = envelope.payload_as::<MasterKeyCommitted>() {
            if let Some(p) = self
                .pending
                .as_mut()
                .filter(|p| p.generation == e.generation)
            {
                p.committed = Some(e.verification_pattern);
            }
        } else if let Some(Ok(e)) = envelope.payload_as::<MasterKeyActivated>() {
            self.activate(e.generation, e.verification_pattern);
        } else if let Some(Ok(e)) = envelope.payload_as::<MasterKeyRotated>() {
            let vp = self
                .pending
                .as_ref()
                .filter(|p| p.generation == e.to_generation)
                .and_then(|p| p.committed.clone())
                .unwrap_or_default();
            self.activate(e.to_generation, vp);
        } else if let Some(Ok(_)) = envelope.payload_as::<InstanceUnsealed>() {
            self.pending = None;
        } else if let Some(Ok(_)) = envelope.payload_as::<InstanceZeroized>() {
            self.current = None;
            self.pending = None;
        }
    }

    fn activate(&mut self, generation: u32, vp: String) {
        self.current = Some((generation, vp.clone()));
        self.history.push((generation, vp));
        self.pending = None;
    }

    /// The generation a new ceremony loads: one past the last activated.
    pub fn next_generation(&self) -> u32 {
        self.history.iter().map(|(g, _)| *g).max().unwrap_or(0) + 1
    }

    /// Whether the pending ceremony re-loads the current generation (unseal
    /// after a restart) rather than a new master key.
    pub fn pending_is_unseal(&self) -> bool {
        matches!((&self.pending, &self.current), (Some(p), Some((g, _))) if p.generation == *g)
    }
}

fn decode_key(b64: &str) -> Option<[u8; 32]> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .ok()?
        .try_into()
        .ok()
}
