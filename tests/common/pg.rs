//! A throwaway PostgreSQL database for a test: created on the server at
//! `KEYLEDGER_TEST_PG_URL` (default `host=127.0.0.1 port=5432 user=postgres
//! dbname=postgres`; `scripts/postgres-setup` makes sure it runs), dropped
//! with its connections when the value is dropped. No database is a test
//! failure naming the URL, never a skip. And the check every test of a
//! database-backed log ends with: export it, `verify` and `verify --policy`.

use std::path::Path;

pub struct Db {
    admin: String,
    name: String,
}

impl Db {
    pub fn create() -> Db {
        let admin = std::env::var("KEYLEDGER_TEST_PG_URL")
            .unwrap_or_else(|_| "host=127.0.0.1 port=5432 user=postgres dbname=postgres".into());
        let mut bytes = [0u8; 6];
        getrandom::getrandom(&mut bytes).expect("random");
        let name = format!("kl_test_{}", hex::encode(bytes));
        let mut client = postgres::Client::connect(&admin, postgres::NoTls)
            .unwrap_or_else(|e| panic!("PostgreSQL at {admin:?} (scripts/postgres-setup): {e}"));
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create database");
        Db { admin, name }
    }

    /// The database's connection string: the admin's with another dbname
    /// (libpq takes the last of a repeated keyword).
    pub fn url(&self) -> String {
        format!("{} dbname={}", self.admin, self.name)
    }

    /// An instance's log size as stored.
    pub fn size(&self, instance: &str) -> i64 {
        let mut c = postgres::Client::connect(&self.url(), postgres::NoTls).expect("connect");
        c.query_one("SELECT size FROM instances WHERE name = $1", &[&instance])
            .expect("size")
            .get(0)
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Ok(mut client) = postgres::Client::connect(&self.admin, postgres::NoTls) {
            let _ = client.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// Exports `instance` from the database at `url` (ledger keys in `data`)
/// into `bundle` with `keyledger ledger export --database-url`, then checks
/// that `keyledger verify` and `keyledger verify --policy` pass on it.
pub fn export_and_verify(data: &Path, instance: &str, url: &str, bundle: &Path) {
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_keyledger"))
            .args(args)
            .output()
            .expect("run keyledger")
    };
    let bundle_arg = bundle.to_str().expect("utf-8 path");
    let out = run(&[
        "ledger",
        "export",
        "--data-dir",
        data.to_str().expect("utf-8 path"),
        "--instance",
        instance,
        "--database-url",
        url,
        "--out",
        bundle_arg,
    ]);
    assert!(
        out.status.success(),
        "export: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for args in [
        &["verify", bundle_arg][..],
        &["verify", "--policy", bundle_arg][..],
    ] {
        let out = run(args);
        assert!(
            out.status.success(),
            "{args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
