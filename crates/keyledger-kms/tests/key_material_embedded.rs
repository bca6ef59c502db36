//! The embedded key-material store: the conformance suite
//! (`keyledger_kms::conformance::material_store`) plus its file
//! layout, permissions, durability conventions and shredding.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use keyledger_kms::conformance::material_store::{self as conformance, INST, KEY, material};
use keyledger_kms::material::embedded::EmbeddedMaterialStore;
use keyledger_kms::material::{KeyMaterialStore, MaterialError};
use keyledger_ledger::store::EventStore;
use keyledger_ledger::store::embedded::EmbeddedStore;

/// A new, empty embedded store in a temporary directory (the guard).
fn fresh() -> (tempfile::TempDir, Arc<dyn KeyMaterialStore>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = EmbeddedMaterialStore::open(dir.path()).expect("open");
    (dir, Arc::new(store))
}

keyledger_kms::material_store_conformance_tests!(fresh);

fn mode(path: &Path) -> u32 {
    fs::metadata(path).expect("metadata").permissions().mode() & 0o777
}

/// Every file under `dir`, recursively.
fn all_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                out.extend(all_files(&path));
            } else {
                out.push(path);
            }
        }
    }
    out
}

#[test]
fn layout_modes_and_no_temp_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = EmbeddedMaterialStore::open(dir.path()).expect("open");
    store.put(INST, KEY, 1, &material(KEY, 1, 1)).expect("put");
    store.put(INST, KEY, 2, &material(KEY, 2, 1)).expect("put");
    store
        .replace(INST, KEY, 2, 1, &material(KEY, 2, 2))
        .expect("replace");

    let key_dir = dir
        .path()
        .join("instances")
        .join(INST)
        .join("material")
        .join(KEY);
    assert_eq!(
        store.version_path(INST, KEY, 1).expect("path"),
        key_dir.join("1.bin")
    );
    assert_eq!(mode(&key_dir.join("1.bin")), 0o600);
    assert_eq!(mode(&key_dir.join("2.bin")), 0o600);
    assert_eq!(mode(&key_dir), 0o700);
    assert_eq!(mode(key_dir.parent().expect("material")), 0o700);
    let mut names: Vec<String> = fs::read_dir(&key_dir)
        .expect("read")
        .map(|e| e.expect("entry").file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    assert_eq!(names, ["1.bin", "2.bin"], "no temp file left behind");
}

#[test]
fn survives_reopen_and_shares_the_data_dir_with_the_event_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let events = EmbeddedStore::open(dir.path()).expect("event store");
    events.create_instance(INST).expect("create instance");
    {
        let store = EmbeddedMaterialStore::open(dir.path()).expect("open");
        store.put(INST, KEY, 1, &material(KEY, 1, 1)).expect("put");
    }
    let store = EmbeddedMaterialStore::open(dir.path()).expect("reopen");
    assert_eq!(
        store.get(INST, KEY, 1).expect("get"),
        Some(material(KEY, 1, 1))
    );
    assert_eq!(
        events.list_instances().expect("list"),
        vec![INST.to_string()]
    );
    // Purging the instance's material leaves its log alone.
    assert_eq!(store.purge_instance(INST).expect("purge"), 1);
    assert!(dir.path().join("instances").join(INST).join("log").is_dir());
    assert!(
        !dir.path()
            .join("instances")
            .join(INST)
            .join("material")
            .exists()
    );
    drop(events);
    let events = EmbeddedStore::open(dir.path()).expect("event store again");
    events.open_instance(INST).expect("log still opens");
}

#[test]
fn damaged_files_are_reported_not_trusted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = EmbeddedMaterialStore::open(dir.path()).expect("open");
    store.put(INST, KEY, 1, &material(KEY, 1, 1)).expect("put");
    let path = store.version_path(INST, KEY, 1).expect("path");
    let good = fs::read(&path).expect("read");

    let mut flipped = good.clone();
    flipped[14] ^= 1;
    fs::write(&path, &flipped).expect("write");
    assert!(matches!(
        store.get(INST, KEY, 1),
        Err(MaterialError::Corrupt { version: 1, .. })
    ));
    fs::write(&path, &good[..good.len() - 1]).expect("truncate");
    assert!(matches!(
        store.get(INST, KEY, 1),
        Err(MaterialError::Corrupt { .. })
    ));
    // A corrupt version is never silently overwritten by put...
    assert!(matches!(
        store.put(INST, KEY, 1, &material(KEY, 1, 1)),
        Err(MaterialError::Corrupt { .. })
    ));
    // ...but purge still shreds it.
    assert_eq!(store.purge(INST, KEY).expect("purge"), 1);
}

#[test]
fn purge_shreds_leftovers_and_leaves_no_blob_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = EmbeddedMaterialStore::open(dir.path()).expect("open");
    let m = material(KEY, 1, 1);
    store.put(INST, KEY, 1, &m).expect("put");
    store.put(INST, KEY, 2, &material(KEY, 2, 1)).expect("put");
    // A temp file from a crash mid-write, and a stray file.
    let key_dir = dir
        .path()
        .join("instances")
        .join(INST)
        .join("material")
        .join(KEY);
    fs::write(key_dir.join(".3.bin.tmp"), b"half written").expect("tmp");
    assert_eq!(
        store.versions(INST, KEY).expect("versions"),
        vec![1, 2],
        "temp files are not versions"
    );

    assert_eq!(store.purge(INST, KEY).expect("purge"), 2);
    assert!(!key_dir.exists(), "the key directory is removed");
    for file in all_files(dir.path()) {
        let bytes = fs::read(&file).expect("read");
        assert!(
            !bytes.windows(m.blob.len()).any(|w| w == m.blob.as_slice()),
            "blob bytes survive in {}",
            file.display()
        );
    }
}

#[test]
fn import_tokens_are_files_beside_the_keys_and_shredded_on_purge() {
    let dir = tempfile::tempdir().expect("tempdir");
    let t = conformance::token(conformance::TOKEN, 1);
    {
        let store = EmbeddedMaterialStore::open(dir.path()).expect("open");
        store.put_import_token(INST, &t).expect("put");
    }
    let store = EmbeddedMaterialStore::open(dir.path()).expect("reopen");
    assert_eq!(
        store
            .get_import_token(INST, conformance::TOKEN)
            .expect("get"),
        Some(t.clone()),
        "survives reopening"
    );
    let path = store
        .token_path(INST, conformance::TOKEN)
        .expect("token path");
    let tokens_dir = dir
        .path()
        .join("instances")
        .join(INST)
        .join("import-tokens");
    assert_eq!(path, tokens_dir.join(format!("{}.bin", conformance::TOKEN)));
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(&tokens_dir), 0o700);
    assert!(
        !dir.path()
            .join("instances")
            .join(INST)
            .join("material")
            .exists(),
        "tokens are not key material directories"
    );

    // Damage is reported, never trusted, and never silently overwritten.
    let good = fs::read(&path).expect("read");
    let mut flipped = good.clone();
    flipped[10] ^= 1;
    fs::write(&path, &flipped).expect("write");
    assert!(matches!(
        store.get_import_token(INST, conformance::TOKEN),
        Err(MaterialError::TokenCorrupt { .. })
    ));
    assert!(matches!(
        store.put_import_token(INST, &t),
        Err(MaterialError::TokenCorrupt { .. })
    ));
    // A valid file of another token under this token's name is refused too.
    let other = conformance::token("other-token", 1);
    store.put_import_token(INST, &other).expect("put other");
    fs::copy(store.token_path(INST, "other-token").expect("p"), &path).expect("copy");
    assert!(matches!(
        store.get_import_token(INST, conformance::TOKEN),
        Err(MaterialError::TokenCorrupt { .. })
    ));
    fs::write(&path, &good).expect("restore");

    // A crash leftover is shredded with the token; no secret bytes survive.
    fs::write(
        tokens_dir.join(format!(".{}.bin.tmp", conformance::TOKEN)),
        &t.private_key.blob,
    )
    .expect("tmp");
    assert_eq!(
        store.import_tokens(INST).expect("list"),
        vec![conformance::TOKEN.to_string(), "other-token".to_string()],
        "temp files are not tokens"
    );
    assert!(
        store
            .purge_import_token(INST, conformance::TOKEN)
            .expect("purge")
    );
    for file in all_files(dir.path()) {
        let bytes = fs::read(&file).expect("read");
        for blob in [&t.private_key.blob, &t.nonce.blob] {
            assert!(
                !bytes.windows(blob.len()).any(|w| w == blob.as_slice()),
                "token secret survives in {}",
                file.display()
            );
        }
    }
}
