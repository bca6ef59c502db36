//! The PostgreSQL key-material store: the key-material store conformance
//! suite of keyledger-kms, two stores (two pools, as two servers) on one
//! database seeing each other's writes, compare-and-swap races between
//! them, and a `pg_dump` of the database holding no plaintext key material.
//! Each test runs on a throwaway database (`common::TestDb`); PostgreSQL
//! must be reachable: these tests fail, never skip, when it is not.

use std::process::Command;
use std::sync::{Arc, Barrier};
use std::thread;

use base64::Engine;
use keyledger_kms::conformance::material_store::{INST, KEY, TOKEN, material, token};
use keyledger_kms::conformance::{binding, load_master_key, random_part, ready_instance};
use keyledger_kms::hsm::software::SoftwareHsm;
use keyledger_kms::hsm::{KeyCrypto, WrappedMaterial};
use keyledger_kms::import_token::sealing;
use keyledger_kms::material::{KeyMaterialStore, MaterialError, StoredImportToken};
use keyledger_kms::secret::SecretBytes;
use keyledger_store_postgres::PostgresMaterialStore;

mod common;

use common::TestDb;

/// A new, empty material store on its own database (the guard).
fn fresh() -> (TestDb, Arc<dyn KeyMaterialStore>) {
    let db = TestDb::create();
    let store = db.open().material_store();
    (db, Arc::new(store))
}

keyledger_kms::material_store_conformance_tests!(fresh);

/// Two stores as two servers: each opens its own pool on the database.
fn two_stores(db: &TestDb) -> (PostgresMaterialStore, PostgresMaterialStore) {
    (db.open().material_store(), db.open().material_store())
}

#[test]
fn two_stores_on_one_database_see_each_others_writes() {
    let db = TestDb::create();
    let (a, b) = two_stores(&db);

    let m1 = material(KEY, 1, 1);
    a.put(INST, KEY, 1, &m1).expect("a puts");
    assert_eq!(b.get(INST, KEY, 1).expect("b reads"), Some(m1.clone()));
    b.put(INST, KEY, 1, &m1)
        .expect("b puts the same material: idempotent across servers");
    assert!(matches!(
        b.put(INST, KEY, 1, &material(KEY, 1, 9)),
        Err(MaterialError::AlreadyExists { version: 1, .. })
    ));
    b.put(INST, KEY, 2, &material(KEY, 2, 1)).expect("b puts");
    assert_eq!(a.versions(INST, KEY).expect("a lists"), vec![1, 2]);
    assert_eq!(a.keys(INST).expect("a lists keys"), vec![KEY.to_string()]);

    b.replace(INST, KEY, 1, 1, &material(KEY, 1, 2))
        .expect("b rotates");
    assert_eq!(
        a.get(INST, KEY, 1).expect("a reads"),
        Some(material(KEY, 1, 2))
    );
    assert!(matches!(
        a.replace(INST, KEY, 1, 1, &material(KEY, 1, 3)),
        Err(MaterialError::GenerationMismatch {
            expected: 1,
            found: 2,
            ..
        })
    ));

    b.put_import_token(INST, &token(TOKEN, 1)).expect("b puts");
    assert_eq!(
        a.get_import_token(INST, TOKEN).expect("a reads"),
        Some(token(TOKEN, 1))
    );
    a.replace_import_token(INST, 1, &token(TOKEN, 2))
        .expect("a rotates the token");
    assert_eq!(
        b.get_import_token(INST, TOKEN).expect("b reads"),
        Some(token(TOKEN, 2))
    );

    assert_eq!(a.purge(INST, KEY).expect("a purges"), 2);
    assert!(b.versions(INST, KEY).expect("b lists").is_empty());
    assert_eq!(b.get(INST, KEY, 2).expect("b reads"), None);
    assert!(b.purge_import_token(INST, TOKEN).expect("b purges"));
    assert_eq!(a.get_import_token(INST, TOKEN).expect("a reads"), None);
}

/// A blob of generation 2 that only `contender` would write.
fn contender_material(version: u32, contender: usize) -> WrappedMaterial {
    let mut m = material(KEY, version, 2);
    m.blob
        .extend_from_slice(format!(":contender-{contender}").as_bytes());
    m
}

#[test]
fn replace_races_between_two_stores_have_exactly_one_winner() {
    const ROUNDS: u32 = 12;
    const CONTENDERS: usize = 6;
    let db = TestDb::create();
    let (a, b) = two_stores(&db);
    for v in 1..=ROUNDS {
        a.put(INST, KEY, v, &material(KEY, v, 1)).expect("put");
    }
    let stores = [&a, &b];
    for v in 1..=ROUNDS {
        let start = Barrier::new(CONTENDERS);
        let results: Vec<(usize, Result<(), MaterialError>)> = thread::scope(|s| {
            let handles: Vec<_> = (0..CONTENDERS)
                .map(|c| {
                    let store = stores[c % 2];
                    let start = &start;
                    s.spawn(move || {
                        start.wait();
                        (c, store.replace(INST, KEY, v, 1, &contender_material(v, c)))
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("contender"))
                .collect()
        });
        let winners: Vec<usize> = results
            .iter()
            .filter(|(_, r)| r.is_ok())
            .map(|(c, _)| *c)
            .collect();
        assert_eq!(winners.len(), 1, "version {v}: winners {winners:?}");
        for (c, r) in &results {
            if *c != winners[0] {
                assert!(
                    matches!(
                        r,
                        Err(MaterialError::GenerationMismatch {
                            expected: 1,
                            found: 2,
                            ..
                        })
                    ),
                    "version {v}, contender {c}: {r:?}"
                );
            }
        }
        let stored = contender_material(v, winners[0]);
        assert_eq!(b.get(INST, KEY, v).expect("get"), Some(stored.clone()));
        assert_eq!(a.get(INST, KEY, v).expect("get"), Some(stored));
    }
}

#[test]
fn import_token_replace_races_between_two_stores_have_exactly_one_winner() {
    const CONTENDERS: usize = 6;
    let db = TestDb::create();
    let (a, b) = two_stores(&db);
    a.put_import_token(INST, &token(TOKEN, 1)).expect("put");
    let rewrapped = |c: usize| {
        let mut t = token(TOKEN, 2);
        t.private_key
            .blob
            .extend_from_slice(format!(":contender-{c}").as_bytes());
        t
    };
    let stores = [&a, &b];
    let start = Barrier::new(CONTENDERS);
    let results: Vec<(usize, Result<(), MaterialError>)> = thread::scope(|s| {
        let handles: Vec<_> = (0..CONTENDERS)
            .map(|c| {
                let store = stores[c % 2];
                let start = &start;
                let t = rewrapped(c);
                s.spawn(move || {
                    start.wait();
                    (c, store.replace_import_token(INST, 1, &t))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("contender"))
            .collect()
    });
    let winners: Vec<usize> = results
        .iter()
        .filter(|(_, r)| r.is_ok())
        .map(|(c, _)| *c)
        .collect();
    assert_eq!(winners.len(), 1, "winners {winners:?}");
    for (c, r) in &results {
        if *c != winners[0] {
            assert!(
                matches!(
                    r,
                    Err(MaterialError::TokenGenerationMismatch {
                        expected: 1,
                        found: 2,
                        ..
                    })
                ),
                "contender {c}: {r:?}"
            );
        }
    }
    assert_eq!(
        b.get_import_token(INST, TOKEN).expect("get"),
        Some(rewrapped(winners[0]))
    );
}

#[test]
fn the_schema_refuses_what_the_store_never_writes() {
    // The database's own checks back up the store's: a bad key id or
    // version written past the store is refused.
    let db = TestDb::create();
    let store = db.open().material_store();
    store.put(INST, KEY, 1, &material(KEY, 1, 1)).expect("put");
    let mut client = db.config().connect(postgres::NoTls).expect("connect");
    for (key_id, version) in [("../x", 1i64), ("k", 0), ("k", 1 << 32)] {
        assert!(
            client
                .execute(
                    "INSERT INTO key_material (instance, key_id, version, mk_generation, blob)
                     VALUES ('acme', $1, $2, 1, '\\x00')",
                    &[&key_id, &version],
                )
                .is_err(),
            "{key_id:?} {version}"
        );
    }
    // A write the database refuses: the error names the SQLSTATE but does
    // not quote the failing row (PostgreSQL's DETAIL would, blob included).
    client
        .execute(
            "ALTER TABLE key_material ADD CONSTRAINT tiny_blobs CHECK (octet_length(blob) < 8) NOT VALID",
            &[],
        )
        .expect("add a stricter check");
    let refused = material("refused-key", 1, 1);
    let err = store
        .put(INST, "refused-key", 1, &refused)
        .expect_err("the database refuses the row");
    let message = err.to_string();
    assert!(message.contains("SQLSTATE 23514"), "{message}");
    assert!(message.contains("tiny_blobs"), "{message}");
    // PostgreSQL cuts a failing row's long values to 64 bytes: look for a
    // prefix of the blob, as bytea hex and as text.
    for form in [
        hex::encode(&refused.blob[..16]),
        String::from_utf8_lossy(&refused.blob[..16]).into_owned(),
    ] {
        assert!(
            !message.contains(&form),
            "the error quotes the blob: {message}"
        );
    }
    assert!(!message.contains("Failing row"), "{message}");
    assert_eq!(store.get(INST, "refused-key", 1).expect("get"), None);
    client
        .execute("ALTER TABLE key_material DROP CONSTRAINT tiny_blobs", &[])
        .expect("drop the stricter check");

    // A generation out of u32 range is reported as corrupt, not truncated.
    client
        .execute(
            "ALTER TABLE key_material DROP CONSTRAINT key_material_mk_generation_check",
            &[],
        )
        .expect("drop check");
    client
        .execute(
            "UPDATE key_material SET mk_generation = -1 WHERE key_id = $1",
            &[&KEY],
        )
        .expect("damage");
    assert!(matches!(
        store.get(INST, KEY, 1),
        Err(MaterialError::Corrupt { version: 1, .. })
    ));
    assert!(matches!(
        store.put(INST, KEY, 1, &material(KEY, 1, 1)),
        Err(MaterialError::Corrupt { .. })
    ));
    assert_eq!(store.purge(INST, KEY).expect("purge still works"), 1);
}

/// The `pg_dump` binary: `KEYLEDGER_TEST_PG_DUMP`, else `pg_dump` on the
/// PATH, else PostgreSQL 15's.
fn pg_dump_command() -> Command {
    if let Ok(path) = std::env::var("KEYLEDGER_TEST_PG_DUMP") {
        return Command::new(path);
    }
    let on_path = Command::new("pg_dump").arg("--version").output();
    if on_path.is_ok_and(|o| o.status.success()) {
        Command::new("pg_dump")
    } else {
        Command::new("/usr/lib/postgresql/15/bin/pg_dump")
    }
}

/// A plain-SQL `pg_dump` of the test database (schema and data).
fn pg_dump(db: &TestDb) -> Vec<u8> {
    let config = db.config();
    let mut cmd = pg_dump_command();
    cmd.arg("--no-password").arg("--format=plain");
    if let Some(host) = config.get_hosts().first() {
        match host {
            postgres::config::Host::Tcp(h) => cmd.arg("--host").arg(h),
            postgres::config::Host::Unix(p) => cmd.arg("--host").arg(p),
        };
    }
    if let Some(port) = config.get_ports().first() {
        cmd.arg("--port").arg(port.to_string());
    }
    if let Some(user) = config.get_user() {
        cmd.arg("--username").arg(user);
    }
    if let Some(password) = config.get_password() {
        cmd.env("PGPASSWORD", String::from_utf8_lossy(password).as_ref());
    }
    cmd.arg(config.get_dbname().expect("test database name"));
    let out = cmd
        .output()
        .expect("run pg_dump (install postgresql-client)");
    assert!(
        out.status.success(),
        "pg_dump failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Every form in which `secret` could show up in a dump: raw, hex (both
/// cases) and base64 (standard, unpadded, URL-safe).
fn forms(secret: &[u8]) -> Vec<(String, Vec<u8>)> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    vec![
        ("raw".into(), secret.to_vec()),
        ("hex".into(), hex::encode(secret).into_bytes()),
        ("HEX".into(), hex::encode_upper(secret).into_bytes()),
        ("base64".into(), STANDARD.encode(secret).into_bytes()),
        (
            "base64 unpadded".into(),
            STANDARD_NO_PAD.encode(secret).into_bytes(),
        ),
        (
            "base64url".into(),
            URL_SAFE_NO_PAD.encode(secret).into_bytes(),
        ),
    ]
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn a_pg_dump_holds_no_plaintext_key_material() {
    let db = TestDb::create();
    let store = db.open().material_store();
    let hsm = SoftwareHsm::new();
    let (inst, _parts) = ready_instance(&hsm, "pgdump");
    let mut secrets: Vec<(&str, SecretBytes)> = Vec::new();

    // A key imported with known material, and one generated in the HSM.
    let imported = SecretBytes::random(32).expect("rng");
    let v1 = hsm
        .import_key(&binding(&inst, KEY, 1, 1), &imported)
        .expect("import")
        .wrapped;
    store.put(&inst, KEY, 1, &v1).expect("put v1");
    let v2 = hsm
        .generate_key(&binding(&inst, KEY, 2, 1), 32)
        .expect("generate")
        .wrapped;
    store.put(&inst, KEY, 2, &v2).expect("put v2");
    let generated = hsm
        .export_key(&binding(&inst, KEY, 2, 1), &v2)
        .expect("export");
    secrets.push(("imported key material", imported));
    secrets.push(("generated key material", generated));

    // An import token: its private key and nonce sealed by the HSM.
    let private_key = SecretBytes::random(1190).expect("rng");
    let nonce = SecretBytes::random(12).expect("rng");
    let sealed: StoredImportToken = sealing::seal(
        &hsm,
        &inst,
        TOKEN,
        b"spki-of-the-token",
        &private_key,
        &nonce,
        1,
    )
    .expect("seal token");
    store.put_import_token(&inst, &sealed).expect("put token");
    secrets.push(("import token private key", private_key));
    secrets.push(("import token nonce", nonce));

    // A key that is purged: not even its wrapped form may remain.
    let purged_plain = SecretBytes::random(32).expect("rng");
    let purged = hsm
        .import_key(&binding(&inst, "purged-key", 1, 1), &purged_plain)
        .expect("import")
        .wrapped;
    store
        .put(&inst, "purged-key", 1, &purged)
        .expect("put purged");
    assert_eq!(store.purge(&inst, "purged-key").expect("purge"), 1);
    secrets.push(("purged key material", purged_plain));

    // Master-key rotation: everything re-wrapped under generation 2.
    load_master_key(&hsm, &inst, 2, &[random_part(), random_part()]);
    for (v, wrapped) in [(1, &v1), (2, &v2)] {
        let rewrapped = hsm
            .rewrap_material(&binding(&inst, KEY, v, 1), wrapped, 2)
            .expect("rewrap");
        store
            .replace(&inst, KEY, v, 1, &rewrapped)
            .expect("replace");
    }
    let token2 = sealing::rewrap(&hsm, &inst, &sealed, 1, 2).expect("rewrap token");
    store
        .replace_import_token(&inst, 1, &token2)
        .expect("replace token");

    let dump = pg_dump(&db);
    // The dump is real: it holds the live wrapped blobs (bytea as hex)...
    let live = store.get(&inst, KEY, 1).expect("get").expect("stored");
    assert_eq!(live.mk_generation, 2);
    assert!(
        contains(&dump, hex::encode(&live.blob).as_bytes()),
        "the dump does not hold the stored wrapped material: the scan would prove nothing"
    );
    assert!(contains(&dump, hex::encode(&token2.nonce.blob).as_bytes()));
    // ...but neither the replaced generation-1 blobs nor the purged one.
    for (what, blob) in [
        ("replaced v1 blob", &v1.blob),
        ("replaced token blob", &sealed.private_key.blob),
        ("purged blob", &purged.blob),
    ] {
        assert!(
            !contains(&dump, hex::encode(blob).as_bytes()),
            "{what} is still in the dump"
        );
    }
    for (what, secret) in &secrets {
        for (form, needle) in forms(secret.expose()) {
            assert!(
                !contains(&dump, &needle),
                "{what} ({form}) occurs in the pg_dump"
            );
        }
    }
}
