//! The key-material store conformance suite: the behaviour of
//! [`KeyMaterialStore`] the key service relies on, as checks every backend
//! must pass, each against a new, empty store. Only the trait is used here.
//!
//! `keyledger_kms::material_store_conformance_tests!(fresh);` in a test file,
//! where `fresh()` returns `(guard, Arc<dyn KeyMaterialStore>)` for a new,
//! empty store (the guard, such as a temporary directory, is kept until the
//! check ends), generates one `#[test]` per check, named after it. The
//! embedded store runs it from `tests/key_material_embedded.rs`; a database
//! backend crate runs the same.

use std::sync::Arc;
use std::thread;

use crate::hsm::WrappedMaterial;
use crate::material::{KeyMaterialStore, MaterialError, StoredImportToken};

/// The instance every check writes to (with others for isolation).
pub const INST: &str = "acme";
/// The key id most checks use.
pub const KEY: &str = "12345678-aaaa-4bbb-8ccc-1234567890ab";

/// A distinct, recognisable blob per (key, version, generation).
pub fn material(key: &str, version: u32, generation: u32) -> WrappedMaterial {
    let mut blob = format!("wrapped:{key}:{version}:{generation}:").into_bytes();
    blob.extend((0..48u8).map(|i| i.wrapping_mul(version as u8 + 3)));
    WrappedMaterial {
        mk_generation: generation,
        blob,
    }
}

pub fn check_put_get_round_trip(store: &dyn KeyMaterialStore) {
    assert_eq!(store.get(INST, KEY, 1).expect("get"), None);
    let m = material(KEY, 1, 1);
    store.put(INST, KEY, 1, &m).expect("put");
    assert_eq!(store.get(INST, KEY, 1).expect("get"), Some(m));
    assert_eq!(store.get(INST, KEY, 2).expect("get"), None);
    let empty = WrappedMaterial {
        mk_generation: 0,
        blob: Vec::new(),
    };
    store.put(INST, "empty-blob", 1, &empty).expect("put empty");
    assert_eq!(store.get(INST, "empty-blob", 1).expect("get"), Some(empty));
}

pub fn check_put_is_idempotent_and_never_overwrites(store: &dyn KeyMaterialStore) {
    let m = material(KEY, 1, 1);
    store.put(INST, KEY, 1, &m).expect("put");
    store
        .put(INST, KEY, 1, &m)
        .expect("same material again is fine");
    let other = material(KEY, 1, 2);
    assert!(matches!(
        store.put(INST, KEY, 1, &other),
        Err(MaterialError::AlreadyExists { version: 1, .. })
    ));
    assert_eq!(store.get(INST, KEY, 1).expect("get"), Some(m));
}

pub fn check_versions_and_keys_are_sorted(store: &dyn KeyMaterialStore) {
    assert_eq!(
        store.versions(INST, KEY).expect("versions"),
        Vec::<u32>::new()
    );
    assert_eq!(store.keys(INST).expect("keys"), Vec::<String>::new());
    for v in [3, 1, 10, 2] {
        store.put(INST, KEY, v, &material(KEY, v, 1)).expect("put");
    }
    store
        .put(INST, "a-key", 1, &material("a-key", 1, 1))
        .expect("put");
    assert_eq!(
        store.versions(INST, KEY).expect("versions"),
        vec![1, 2, 3, 10]
    );
    assert_eq!(
        store.keys(INST).expect("keys"),
        vec![KEY.to_string(), "a-key".to_string()],
        "byte order: digits before letters"
    );
    assert_eq!(
        store.versions(INST, "unknown").expect("versions"),
        Vec::<u32>::new()
    );
}

pub fn check_replace_is_compare_and_swap(store: &dyn KeyMaterialStore) {
    let g1 = material(KEY, 1, 1);
    let g2 = material(KEY, 1, 2);
    let g3 = material(KEY, 1, 3);
    assert!(matches!(
        store.replace(INST, KEY, 1, 1, &g2),
        Err(MaterialError::NotFound { version: 1, .. })
    ));
    store.put(INST, KEY, 1, &g1).expect("put");
    store.replace(INST, KEY, 1, 1, &g2).expect("rotate 1 -> 2");
    assert_eq!(store.get(INST, KEY, 1).expect("get"), Some(g2.clone()));
    // A restarted rotation replaying the same step is fine...
    store.replace(INST, KEY, 1, 1, &g2).expect("replay");
    // ...but an out-of-date one is refused and changes nothing.
    assert!(matches!(
        store.replace(INST, KEY, 1, 1, &g3),
        Err(MaterialError::GenerationMismatch {
            expected: 1,
            found: 2,
            ..
        })
    ));
    assert_eq!(store.get(INST, KEY, 1).expect("get"), Some(g2));
    assert_eq!(store.versions(INST, KEY).expect("versions"), vec![1]);
}

pub fn check_purge_shreds_every_version(store: &dyn KeyMaterialStore) {
    for v in 1..=3 {
        store.put(INST, KEY, v, &material(KEY, v, 1)).expect("put");
    }
    store
        .put(INST, "survivor", 1, &material("survivor", 1, 1))
        .expect("put");
    assert_eq!(store.purge(INST, KEY).expect("purge"), 3);
    for v in 1..=3 {
        assert_eq!(store.get(INST, KEY, v).expect("get"), None);
    }
    assert!(store.versions(INST, KEY).expect("versions").is_empty());
    assert_eq!(
        store.keys(INST).expect("keys"),
        vec!["survivor".to_string()]
    );
    assert_eq!(store.purge(INST, KEY).expect("purge again"), 0);
    assert_eq!(
        store.purge(INST, "never-existed").expect("purge unknown"),
        0
    );
    assert!(store.get(INST, "survivor", 1).expect("get").is_some());
    // A purged key id can hold material again only through a new put.
    store
        .put(INST, KEY, 1, &material(KEY, 1, 5))
        .expect("put after purge");
    assert_eq!(
        store.get(INST, KEY, 1).expect("get"),
        Some(material(KEY, 1, 5))
    );
}

pub fn check_purge_instance(store: &dyn KeyMaterialStore) {
    for key in ["k-1", "k-2", "k-3"] {
        for v in 1..=2 {
            store.put(INST, key, v, &material(key, v, 1)).expect("put");
        }
    }
    store
        .put("other", "k-1", 1, &material("k-1", 1, 1))
        .expect("put other");
    assert_eq!(store.purge_instance(INST).expect("purge instance"), 6);
    assert!(store.keys(INST).expect("keys").is_empty());
    assert_eq!(store.get(INST, "k-2", 2).expect("get"), None);
    assert_eq!(store.purge_instance(INST).expect("again"), 0);
    assert!(store.get("other", "k-1", 1).expect("other kept").is_some());
}

pub fn check_instances_and_keys_are_isolated(store: &dyn KeyMaterialStore) {
    store
        .put("inst-a", KEY, 1, &material("a", 1, 1))
        .expect("put a");
    store
        .put("inst-b", KEY, 1, &material("b", 1, 1))
        .expect("put b");
    store
        .put("inst-a", "other-key", 1, &material("o", 1, 1))
        .expect("put o");
    assert_eq!(
        store.get("inst-a", KEY, 1).expect("get"),
        Some(material("a", 1, 1))
    );
    assert_eq!(
        store.get("inst-b", KEY, 1).expect("get"),
        Some(material("b", 1, 1))
    );
    assert_eq!(store.purge("inst-a", KEY).expect("purge"), 1);
    assert!(store.get("inst-b", KEY, 1).expect("get").is_some());
    assert!(store.get("inst-a", "other-key", 1).expect("get").is_some());
    assert_eq!(store.keys("inst-b").expect("keys"), vec![KEY.to_string()]);
}

pub fn check_refuses_bad_addresses(store: &dyn KeyMaterialStore) {
    let m = material(KEY, 1, 1);
    for bad_key in [
        "",
        ".",
        "..",
        "../escape",
        "a/b",
        "a\\b",
        "with space",
        "nul\0",
        "ünï",
        &"x".repeat(65),
    ] {
        assert!(
            matches!(
                store.put(INST, bad_key, 1, &m),
                Err(MaterialError::InvalidKeyId)
            ),
            "{bad_key:?}"
        );
        assert!(matches!(
            store.get(INST, bad_key, 1),
            Err(MaterialError::InvalidKeyId)
        ));
        assert!(matches!(
            store.versions(INST, bad_key),
            Err(MaterialError::InvalidKeyId)
        ));
        assert!(matches!(
            store.purge(INST, bad_key),
            Err(MaterialError::InvalidKeyId)
        ));
    }
    for bad_instance in ["", "..", "../x", "UPPER", "a/b", &"i".repeat(65)] {
        assert!(
            matches!(
                store.put(bad_instance, KEY, 1, &m),
                Err(MaterialError::InvalidInstance)
            ),
            "{bad_instance:?}"
        );
        assert!(matches!(
            store.keys(bad_instance),
            Err(MaterialError::InvalidInstance)
        ));
        assert!(matches!(
            store.purge_instance(bad_instance),
            Err(MaterialError::InvalidInstance)
        ));
    }
    assert!(matches!(
        store.put(INST, KEY, 0, &m),
        Err(MaterialError::InvalidVersion)
    ));
    assert!(matches!(
        store.get(INST, KEY, 0),
        Err(MaterialError::InvalidVersion)
    ));
    assert!(
        store.keys(INST).expect("keys").is_empty(),
        "nothing was written"
    );
}

/// Four threads writing versions of their own keys and racing on one shared
/// version with equal material: every write lands, none is lost.
pub fn check_concurrent_writers(store: Arc<dyn KeyMaterialStore>) {
    let threads: Vec<_> = (0..4u32)
        .map(|t| {
            let store = Arc::clone(&store);
            thread::spawn(move || {
                for v in 1..=10u32 {
                    let key = format!("key-{t}");
                    store
                        .put(INST, &key, v, &material(&key, v, 1))
                        .expect("put");
                    // Everyone also races on one shared version with equal material.
                    store
                        .put(INST, "shared", 1, &material("shared", 1, 1))
                        .expect("shared put");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
    for t in 0..4u32 {
        let key = format!("key-{t}");
        assert_eq!(
            store.versions(INST, &key).expect("versions"),
            (1..=10).collect::<Vec<_>>()
        );
        for v in 1..=10 {
            assert_eq!(
                store.get(INST, &key, v).expect("get"),
                Some(material(&key, v, 1))
            );
        }
    }
    assert_eq!(store.versions(INST, "shared").expect("versions"), vec![1]);
}

// ---- import tokens ----

/// The import-token id most token checks use.
pub const TOKEN: &str = "7d1e5b2a-3c4d-4e5f-8a9b-0c1d2e3f4a5b";

/// A recognisable token; `generation` for both secrets.
pub fn token(id: &str, generation: u32) -> StoredImportToken {
    StoredImportToken {
        token_id: id.to_string(),
        public_key_der: format!("spki:{id}").into_bytes(),
        private_key: WrappedMaterial {
            mk_generation: generation,
            blob: format!("wrapped-private-key:{id}:{generation}").into_bytes(),
        },
        nonce: WrappedMaterial {
            mk_generation: generation,
            blob: format!("wrapped-nonce:{id}:{generation}").into_bytes(),
        },
    }
}

pub fn check_import_token_round_trip(store: &dyn KeyMaterialStore) {
    assert_eq!(store.get_import_token(INST, TOKEN).expect("get"), None);
    assert!(store.import_tokens(INST).expect("list").is_empty());
    let t = token(TOKEN, 1);
    store.put_import_token(INST, &t).expect("put");
    store
        .put_import_token(INST, &t)
        .expect("the same token again is fine");
    assert_eq!(
        store.get_import_token(INST, TOKEN).expect("get"),
        Some(t.clone())
    );
    assert!(matches!(
        store.put_import_token(INST, &token(TOKEN, 2)),
        Err(MaterialError::TokenExists { .. })
    ));
    assert_eq!(
        store.get_import_token(INST, TOKEN).expect("get"),
        Some(t),
        "a refused put changes nothing"
    );
    store
        .put_import_token(INST, &token("0-older-token", 1))
        .expect("put");
    assert_eq!(
        store.import_tokens(INST).expect("list"),
        vec!["0-older-token".to_string(), TOKEN.to_string()]
    );
    // Tokens are not keys, and keys are not tokens.
    assert!(store.keys(INST).expect("keys").is_empty());
    store
        .put(INST, KEY, 1, &material(KEY, 1, 1))
        .expect("put key");
    assert_eq!(store.import_tokens(INST).expect("list").len(), 2);
}

pub fn check_import_token_replace_is_compare_and_swap(store: &dyn KeyMaterialStore) {
    let g1 = token(TOKEN, 1);
    let g2 = token(TOKEN, 2);
    assert!(matches!(
        store.replace_import_token(INST, 1, &g2),
        Err(MaterialError::TokenNotFound { .. })
    ));
    store.put_import_token(INST, &g1).expect("put");
    store
        .replace_import_token(INST, 1, &g2)
        .expect("rotate 1 -> 2");
    assert_eq!(
        store.get_import_token(INST, TOKEN).expect("get"),
        Some(g2.clone())
    );
    store
        .replace_import_token(INST, 1, &g2)
        .expect("replaying the same step is fine");
    assert!(matches!(
        store.replace_import_token(INST, 1, &token(TOKEN, 3)),
        Err(MaterialError::TokenGenerationMismatch {
            expected: 1,
            found: 2,
            ..
        })
    ));
    // Only the wrapped secrets may change: never the public key.
    let mut other_key = token(TOKEN, 3);
    other_key.public_key_der = b"spki:someone-else".to_vec();
    assert!(matches!(
        store.replace_import_token(INST, 2, &other_key),
        Err(MaterialError::TokenExists { .. })
    ));
    assert_eq!(store.get_import_token(INST, TOKEN).expect("get"), Some(g2));
}

pub fn check_import_token_purge(store: &dyn KeyMaterialStore) {
    store.put_import_token(INST, &token(TOKEN, 1)).expect("put");
    store
        .put_import_token(INST, &token("survivor-token", 1))
        .expect("put");
    assert!(store.purge_import_token(INST, TOKEN).expect("purge"));
    assert!(!store.purge_import_token(INST, TOKEN).expect("again"));
    assert!(
        !store
            .purge_import_token(INST, "never-existed")
            .expect("unknown")
    );
    assert_eq!(store.get_import_token(INST, TOKEN).expect("get"), None);
    assert_eq!(
        store.import_tokens(INST).expect("list"),
        vec!["survivor-token".to_string()]
    );
    // A purged id can hold a token again only through a new put.
    store.put_import_token(INST, &token(TOKEN, 4)).expect("put");
    assert_eq!(
        store.get_import_token(INST, TOKEN).expect("get"),
        Some(token(TOKEN, 4))
    );
}

pub fn check_import_tokens_isolated_and_purged_with_the_instance(store: &dyn KeyMaterialStore) {
    store
        .put_import_token("inst-a", &token(TOKEN, 1))
        .expect("a");
    store
        .put_import_token("inst-b", &token(TOKEN, 7))
        .expect("b");
    assert_eq!(
        store.get_import_token("inst-a", TOKEN).expect("get"),
        Some(token(TOKEN, 1))
    );
    assert_eq!(
        store.get_import_token("inst-b", TOKEN).expect("get"),
        Some(token(TOKEN, 7))
    );
    assert!(store.purge_import_token("inst-a", TOKEN).expect("purge"));
    assert!(
        store
            .get_import_token("inst-b", TOKEN)
            .expect("get")
            .is_some()
    );
    store
        .put_import_token("inst-a", &token(TOKEN, 1))
        .expect("a");
    store
        .put("inst-a", KEY, 1, &material(KEY, 1, 1))
        .expect("key");
    assert_eq!(store.purge_instance("inst-a").expect("purge instance"), 1);
    assert!(store.import_tokens("inst-a").expect("list").is_empty());
    assert_eq!(store.get_import_token("inst-a", TOKEN).expect("get"), None);
    assert_eq!(
        store.import_tokens("inst-b").expect("list"),
        vec![TOKEN.to_string()]
    );
}

pub fn check_import_token_refuses_bad_input(store: &dyn KeyMaterialStore) {
    for bad_id in ["", "..", "../escape", "a/b", "with space", &"t".repeat(65)] {
        let t = token(bad_id, 1);
        assert!(
            matches!(
                store.put_import_token(INST, &t),
                Err(MaterialError::InvalidTokenId)
            ),
            "{bad_id:?}"
        );
        assert!(matches!(
            store.get_import_token(INST, bad_id),
            Err(MaterialError::InvalidTokenId)
        ));
        assert!(matches!(
            store.purge_import_token(INST, bad_id),
            Err(MaterialError::InvalidTokenId)
        ));
    }
    assert!(matches!(
        store.put_import_token("../x", &token(TOKEN, 1)),
        Err(MaterialError::InvalidInstance)
    ));
    assert!(matches!(
        store.import_tokens("UPPER"),
        Err(MaterialError::InvalidInstance)
    ));
    for broken in [
        StoredImportToken {
            public_key_der: Vec::new(),
            ..token(TOKEN, 1)
        },
        StoredImportToken {
            nonce: WrappedMaterial {
                mk_generation: 1,
                blob: Vec::new(),
            },
            ..token(TOKEN, 1)
        },
    ] {
        assert!(matches!(
            store.put_import_token(INST, &broken),
            Err(MaterialError::TokenCorrupt { .. })
        ));
    }
    assert!(
        store.import_tokens(INST).expect("list").is_empty(),
        "nothing was written"
    );
}

/// One check against a store.
pub type Check = fn(&dyn KeyMaterialStore);

/// Every check taking a store by reference, by name, in the order the macro
/// generates them ([`check_concurrent_writers`] takes an `Arc` and is run
/// besides these).
pub const CHECKS: &[(&str, Check)] = &[
    ("check_put_get_round_trip", check_put_get_round_trip),
    (
        "check_put_is_idempotent_and_never_overwrites",
        check_put_is_idempotent_and_never_overwrites,
    ),
    (
        "check_versions_and_keys_are_sorted",
        check_versions_and_keys_are_sorted,
    ),
    (
        "check_replace_is_compare_and_swap",
        check_replace_is_compare_and_swap,
    ),
    (
        "check_purge_shreds_every_version",
        check_purge_shreds_every_version,
    ),
    ("check_purge_instance", check_purge_instance),
    (
        "check_instances_and_keys_are_isolated",
        check_instances_and_keys_are_isolated,
    ),
    ("check_refuses_bad_addresses", check_refuses_bad_addresses),
    (
        "check_import_token_round_trip",
        check_import_token_round_trip,
    ),
    (
        "check_import_token_replace_is_compare_and_swap",
        check_import_token_replace_is_compare_and_swap,
    ),
    ("check_import_token_purge", check_import_token_purge),
    (
        "check_import_tokens_isolated_and_purged_with_the_instance",
        check_import_tokens_isolated_and_purged_with_the_instance,
    ),
    (
        "check_import_token_refuses_bad_input",
        check_import_token_refuses_bad_input,
    ),
];

/// One `#[test]` per key-material store check against a new, empty store
/// from `$fresh()` (which returns `(guard, Arc<dyn KeyMaterialStore>)`),
/// plus one test that the list is [`CHECKS`]; each backend's test file
/// invokes it once.
#[macro_export]
macro_rules! material_store_conformance_tests {
    ($fresh:expr) => {
        $crate::material_store_conformance_tests!(@each $fresh;
            check_put_get_round_trip,
            check_put_is_idempotent_and_never_overwrites,
            check_versions_and_keys_are_sorted,
            check_replace_is_compare_and_swap,
            check_purge_shreds_every_version,
            check_purge_instance,
            check_instances_and_keys_are_isolated,
            check_refuses_bad_addresses,
            check_import_token_round_trip,
            check_import_token_replace_is_compare_and_swap,
            check_import_token_purge,
            check_import_tokens_isolated_and_purged_with_the_instance,
            check_import_token_refuses_bad_input,
        );
    };
    (@each $fresh:expr; $($check:ident),* $(,)?) => {
        $(
            #[test]
            fn $check() {
                let (_guard, store) = ($fresh)();
                $crate::conformance::material_store::$check(&*store);
            }
        )*

        #[test]
        fn check_concurrent_writers() {
            let (_guard, store) = ($fresh)();
            $crate::conformance::material_store::check_concurrent_writers(store);
        }

        #[test]
        fn material_store_conformance_runs_every_check() {
            let names: &[&str] = &[$(stringify!($check)),*];
            let all: Vec<&str> = $crate::conformance::material_store::CHECKS
                .iter()
                .map(|(n, _)| *n)
                .collect();
            assert_eq!(names, all.as_slice());
        }
    };
}
