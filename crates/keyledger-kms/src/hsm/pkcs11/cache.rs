//! Bounded cache of unwrapped key-version objects, so encrypt/decrypt do not
//! derive a KEK and unwrap on every call.
//!
//! Entries are session objects (sensitive, non-extractable) created by one of
//! the pool's sessions; PKCS#11 lets every session of the application use
//! them while that session stays open, and the pool keeps its sessions open
//! for the life of the `Pkcs11Hsm`. An evicted object may still be in use by
//! another thread, so it is parked and destroyed only once nobody holds it.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use cryptoki::object::ObjectHandle;
use sha2::{Digest, Sha256};

use super::pool::lock;
use crate::hsm::{KeyBinding, WrappedMaterial};

/// A cached key object (its handle); destroyed via [`KeyCache::take_unused`].
#[derive(Debug)]
pub(super) struct CachedKey<H = ObjectHandle>(pub(super) H);

/// The binding and a digest of the wrapped blob: a different (e.g. tampered)
/// blob for the same binding never hits another blob's entry.
#[derive(Clone, PartialEq, Eq, Hash)]
pub(super) struct CacheKey {
    binding: KeyBinding,
    wrapped_generation: u32,
    blob_digest: [u8; 32],
}

impl CacheKey {
    pub(super) fn new(binding: &KeyBinding, wrapped: &WrappedMaterial) -> Self {
        CacheKey {
            binding: binding.clone(),
            wrapped_generation: wrapped.mk_generation,
            blob_digest: Sha256::digest(&wrapped.blob).into(),
        }
    }
}

struct Inner<H> {
    map: HashMap<CacheKey, Arc<CachedKey<H>>>,
    order: VecDeque<CacheKey>,
    parked: Vec<Arc<CachedKey<H>>>,
}

/// Generic over the handle type only so the unit tests need no token.
pub(super) struct KeyCache<H = ObjectHandle> {
    capacity: usize,
    inner: Mutex<Inner<H>>,
}

impl<H: Copy> KeyCache<H> {
    pub(super) fn new(capacity: usize) -> Self {
        KeyCache {
            capacity: capacity.max(1),
            inner: Mutex::new(Inner {
                map: HashMap::new(),
                order: VecDeque::new(),
                parked: Vec::new(),
            }),
        }
    }

    pub(super) fn get(&self, key: &CacheKey) -> Option<Arc<CachedKey<H>>> {
        lock(&self.inner).map.get(key).cloned()
    }

    /// Inserts (replacing a concurrent insert of the same key), evicting the
    /// oldest entries beyond capacity.
    pub(super) fn insert(&self, key: CacheKey, handle: H) -> Arc<CachedKey<H>> {
        let entry = Arc::new(CachedKey(handle));
        let mut inner = lock(&self.inner);
        match inner.map.insert(key.clone(), entry.clone()) {
            Some(old) => inner.parked.push(old),
            None => inner.order.push_back(key),
        }
        while inner.map.len() > self.capacity {
            let Some(oldest) = inner.order.pop_front() else {
                break;
            };
            if let Some(old) = inner.map.remove(&oldest) {
                inner.parked.push(old);
            }
        }
        entry
    }

    /// Removes the entries `pred` selects (retired or zeroized master keys).
    pub(super) fn evict_where(&self, pred: impl Fn(&KeyBinding, u32) -> bool) {
        let mut inner = lock(&self.inner);
        let doomed: Vec<CacheKey> = inner
            .map
            .keys()
            .filter(|k| pred(&k.binding, k.wrapped_generation))
            .cloned()
            .collect();
        for k in doomed {
            if let Some(old) = inner.map.remove(&k) {
                inner.parked.push(old);
            }
        }
        let Inner { map, order, .. } = &mut *inner;
        order.retain(|k| map.contains_key(k));
    }

    /// Handles of evicted objects no thread holds any more: the caller
    /// destroys them.
    pub(super) fn take_unused(&self) -> Vec<H> {
        let mut inner = lock(&self.inner);
        let mut unused = Vec::new();
        inner.parked.retain(|k| {
            if Arc::strong_count(k) == 1 {
                unused.push(k.0);
                false
            } else {
                true
            }
        });
        unused
    }

    pub(super) fn len(&self) -> usize {
        lock(&self.inner).map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u32) -> CacheKey {
        let b = KeyBinding {
            instance: "i".into(),
            key_id: format!("k{i}"),
            version: 1,
            mk_generation: 1,
        };
        CacheKey::new(
            &b,
            &WrappedMaterial {
                mk_generation: 1,
                blob: vec![1, 2, 3],
            },
        )
    }

    #[test]
    fn evicted_objects_are_destroyed_only_when_unused() {
        let cache = KeyCache::<u64>::new(2);
        let held = cache.insert(key(0), 10u64);
        cache.insert(key(1), 11u64);
        cache.insert(key(2), 12u64); // evicts key(0), still held
        assert_eq!(cache.len(), 2);
        assert!(cache.get(&key(0)).is_none());
        assert!(cache.take_unused().is_empty(), "key(0) is still in use");
        drop(held);
        assert_eq!(cache.take_unused(), vec![10u64]);
        cache.evict_where(|b, _| b.key_id == "k1");
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.take_unused(), vec![11u64]);
        // Another blob for the same binding is another entry.
        let other = CacheKey::new(
            &KeyBinding {
                instance: "i".into(),
                key_id: "k2".into(),
                version: 1,
                mk_generation: 1,
            },
            &WrappedMaterial {
                mk_generation: 1,
                blob: vec![1, 2, 4],
            },
        );
        assert!(cache.get(&other).is_none());
        assert!(cache.get(&key(2)).is_some());
    }
}
