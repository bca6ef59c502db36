//! Bounded cache of unwrapped, key-expanded AES-256-GCM ciphers, keyed by
//! the exact (binding, wrapped blob) they were unwrapped from, so `encrypt`
//! and `decrypt` do not unwrap the key material on every call.
//!
//! - Sharded: 16 `RwLock`ed maps; a hit takes one shard's read lock.
//! - A hit compares the whole binding and blob, so a forged or altered blob
//!   never reaches a cached cipher; the map key is the blob's last 8 bytes
//!   (part of its GCM tag, unforgeable without the master key, so attackers
//!   cannot crowd one bucket with valid entries).
//! - Bounded: `capacity` entries in all; a full shard evicts with the CLOCK
//!   (second chance) approximation of LRU.
//! - Ciphers zeroize on drop (`aes-gcm` with its `zeroize` feature); the
//!   backend purges an instance's entries (under its own write lock, see
//!   `software.rs`) when a master key is retired or the instance zeroized.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};

use aes_gcm::Aes256Gcm;

use crate::hsm::{HsmError, KeyBinding, WrappedMaterial};

const SHARDS: usize = 16;

/// One cached cipher and exactly what it was unwrapped from.
pub(super) struct Entry {
    instance: String,
    key_id: String,
    version: u32,
    mk_generation: u32,
    blob: Vec<u8>,
    cipher: Aes256Gcm,
    referenced: AtomicBool,
}

impl Entry {
    pub(super) fn new(binding: &KeyBinding, wrapped: &WrappedMaterial, cipher: Aes256Gcm) -> Self {
        Entry {
            instance: binding.instance.clone(),
            key_id: binding.key_id.clone(),
            version: binding.version,
            mk_generation: binding.mk_generation,
            blob: wrapped.blob.clone(),
            cipher,
            referenced: AtomicBool::new(false),
        }
    }

    fn matches(&self, binding: &KeyBinding, wrapped: &WrappedMaterial) -> bool {
        self.version == binding.version
            && self.mk_generation == binding.mk_generation
            && wrapped.mk_generation == binding.mk_generation
            && self.blob == wrapped.blob
            && self.key_id == binding.key_id
            && self.instance == binding.instance
    }
}

/// The map key is already uniformly distributed: pass it through.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type Shard = HashMap<u64, Entry, BuildHasherDefault<IdHasher>>;

pub(super) struct CipherCache {
    shards: Vec<RwLock<Shard>>,
    per_shard: usize,
}

fn slot(wrapped: &WrappedMaterial) -> u64 {
    let blob = &wrapped.blob;
    let mut tail = [0u8; 8];
    if blob.len() >= 8 {
        tail.copy_from_slice(&blob[blob.len() - 8..]);
    }
    u64::from_le_bytes(tail)
}

fn poisoned<T>(_: T) -> HsmError {
    HsmError::Backend("software HSM cipher cache lock poisoned".into())
}

impl CipherCache {
    /// A cache of about `capacity` ciphers (0 disables caching).
    pub(super) fn new(capacity: usize) -> Self {
        let shards = (0..SHARDS).map(|_| RwLock::new(Shard::default())).collect();
        CipherCache {
            shards,
            per_shard: capacity.div_ceil(SHARDS),
        }
    }

    fn shard(&self, key: u64) -> &RwLock<Shard> {
        // Bits 32.. pick the shard; the maps use the low bits (bucket) and
        // the top 7 bits (control byte).
        let idx = usize::try_from((key >> 32) & 0xff).unwrap_or(0) % SHARDS;
        &self.shards[idx]
    }

    /// Runs `f` with the cached cipher if there is one; gives `f` back on a miss.
    pub(super) fn with<R, F>(
        &self,
        binding: &KeyBinding,
        wrapped: &WrappedMaterial,
        f: F,
    ) -> Result<Result<R, HsmError>, F>
    where
        F: FnOnce(&Aes256Gcm) -> Result<R, HsmError>,
    {
        let key = slot(wrapped);
        let Ok(shard) = self.shard(key).read() else {
            return Err(f);
        };
        match shard.get(&key) {
            Some(entry) if entry.matches(binding, wrapped) => {
                if !entry.referenced.load(Ordering::Relaxed) {
                    entry.referenced.store(true, Ordering::Relaxed);
                }
                Ok(f(&entry.cipher))
            }
            _ => Err(f),
        }
    }

    /// Caches a cipher. The caller holds the backend's instance lock (read),
    /// so a concurrent purge cannot be overtaken by this insert.
    pub(super) fn insert(&self, entry: Entry, wrapped: &WrappedMaterial) -> Result<(), HsmError> {
        if self.per_shard == 0 {
            return Ok(());
        }
        let key = slot(wrapped);
        let mut shard = self.shard(key).write().map_err(poisoned)?;
        if shard.len() >= self.per_shard && !shard.contains_key(&key) {
            evict_one(&mut shard);
        }
        shard.insert(key, entry);
        Ok(())
    }

    /// Drops (and so zeroizes) every cipher of `instance`, or only those of
    /// its master-key generation `generation`.
    pub(super) fn purge(&self, instance: &str, generation: Option<u32>) -> Result<(), HsmError> {
        for shard in &self.shards {
            let mut shard = shard.write().map_err(poisoned)?;
            shard.retain(|_, e| {
                e.instance != instance || generation.is_some_and(|g| g != e.mk_generation)
            });
        }
        Ok(())
    }

    /// Number of cached ciphers (tests, metrics).
    pub(super) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.read().map(|s| s.len()).unwrap_or(0))
            .sum()
    }
}

/// CLOCK: clear the reference bit of recently used entries until one
/// without it is found; evict that one (or the first, if all were used).
fn evict_one(shard: &mut Shard) {
    let mut victim = None;
    let mut first = None;
    for (key, entry) in shard.iter() {
        first.get_or_insert(*key);
        if entry.referenced.swap(false, Ordering::Relaxed) {
            continue;
        }
        victim = Some(*key);
        break;
    }
    if let Some(key) = victim.or(first) {
        shard.remove(&key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aes_gcm::KeyInit;

    fn binding(key: &str) -> KeyBinding {
        KeyBinding {
            instance: "i".into(),
            key_id: key.into(),
            version: 1,
            mk_generation: 1,
        }
    }

    fn wrapped(seed: u8) -> WrappedMaterial {
        WrappedMaterial {
            mk_generation: 1,
            blob: (0..60u8).map(|b| b.wrapping_mul(seed)).collect(),
        }
    }

    fn cipher() -> Aes256Gcm {
        Aes256Gcm::new_from_slice(&[1u8; 32]).unwrap()
    }

    #[test]
    fn hit_needs_exact_binding_and_blob_and_capacity_is_bounded() {
        let cache = CipherCache::new(32);
        let (b, w) = (binding("k"), wrapped(3));
        cache.insert(Entry::new(&b, &w, cipher()), &w).unwrap();
        assert!(cache.with(&b, &w, |_| Ok(())).is_ok());
        assert!(cache.with(&binding("other"), &w, |_| Ok(())).is_err());
        let mut other_gen = w.clone();
        other_gen.mk_generation = 2;
        assert!(cache.with(&b, &other_gen, |_| Ok(())).is_err());
        for seed in 0..=255u8 {
            let w = wrapped(seed);
            cache.insert(Entry::new(&b, &w, cipher()), &w).unwrap();
        }
        assert!(cache.len() <= 32);
        cache.purge("i", Some(2)).unwrap();
        assert!(cache.len() > 0);
        cache.purge("i", None).unwrap();
        assert_eq!(cache.len(), 0);
    }
}
