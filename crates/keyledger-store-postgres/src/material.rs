//! The key-material store on PostgreSQL: each key version's material and
//! each import token, wrapped under the instance master key, in the tables
//! `key_material` and `import_tokens` of the database the instance logs use
//! (migration `schemas/postgres/0002_key_material.sql`), so that every
//! server sharing the database sees the same material.
//!
//! Every write is one statement or one transaction, committed (durable,
//! `synchronous_commit` permitting) before it returns `Ok`; a reader sees
//! the old row or the new one, never a mix. New versions and tokens are
//! inserted with `ON CONFLICT DO NOTHING` and compared when the row exists
//! (idempotent put); master-key rotation is a compare-and-swap under the
//! row's `FOR UPDATE` lock; purging `DELETE`s the rows.
//!
//! Errors carry the database's message and SQLSTATE only, never its
//! `DETAIL` (which may quote a row, blob included).

use keyledger_kms::hsm::WrappedMaterial;
use keyledger_kms::material::embedded::MAX_BLOB_LEN;
use keyledger_kms::material::{
    KeyMaterialStore, MaterialError, StoredImportToken, check_address, check_instance,
    check_key_id, check_token, check_token_id, token_replace_allowed,
};
use postgres::Row;
use postgres::types::ToSql;
use r2d2::PooledConnection;

use crate::store::Pool;

/// How often `put` retries when the row it collided with was purged before
/// it could be read (a put racing a purge of the same key).
const PUT_ATTEMPTS: usize = 8;

type Connection = PooledConnection<crate::store::Manager>;

/// Wrapped key material and import tokens in a PostgreSQL database; made
/// by [`PostgresStore::material_store`](crate::PostgresStore::material_store),
/// sharing the store's connection pool. Cheap to clone (the pool is shared).
#[derive(Clone)]
pub struct PostgresMaterialStore {
    pool: Pool,
}

impl std::fmt::Debug for PostgresMaterialStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresMaterialStore")
            .field("pool_size", &self.pool.max_size())
            .finish()
    }
}

/// A driver error as a material error: the server's severity, message and
/// SQLSTATE, without `DETAIL` (a check violation quotes the failing row).
/// A database that cannot be reached or cannot take writes right now is
/// [`MaterialError::Unavailable`] (the server answers 503, retry later),
/// anything else [`MaterialError::Backend`].
fn db(e: postgres::Error) -> MaterialError {
    let unavailable = unreachable(&e);
    let text = match e.as_db_error() {
        Some(d) => format!(
            "postgres: {}: {} (SQLSTATE {})",
            d.severity(),
            d.message(),
            d.code().code()
        ),
        None => format!("postgres: {}", crate::error::describe(&e)),
    };
    if unavailable {
        MaterialError::Unavailable(text)
    } else {
        MaterialError::Backend(text)
    }
}

/// Whether `e` means the database is out of reach or cannot take writes
/// for now (its connection closed or failed, the server shutting down or
/// starting up, a standby after a failover), not that it refused the
/// statement.
fn unreachable(e: &postgres::Error) -> bool {
    match e.code() {
        Some(code) => {
            let code = code.code();
            // 08: connection exception; 57P01-57P03: admin shutdown,
            // crash shutdown, cannot connect now; 25006: read-only
            // transaction (a demoted primary); 53300: too many connections.
            code.starts_with("08")
                || matches!(code, "57P01" | "57P02" | "57P03" | "25006" | "53300")
        }
        None => {
            e.is_closed()
                || std::iter::successors(std::error::Error::source(e), |s| s.source())
                    .any(|s| s.is::<std::io::Error>())
        }
    }
}

/// No connection within the pool's timeout: the database is out of reach.
fn pool_error(e: r2d2::Error) -> MaterialError {
    MaterialError::Unavailable(format!("postgres connection pool: {e}"))
}

fn check_blob(wrapped: &WrappedMaterial, what: &str) -> Result<(), MaterialError> {
    if wrapped.blob.len() > MAX_BLOB_LEN {
        return Err(MaterialError::Backend(format!("{what} too large")));
    }
    Ok(())
}

/// A stored u32 (version or generation), if it is one.
fn to_u32(v: i64) -> Option<u32> {
    u32::try_from(v).ok()
}

/// A key version's row (`mk_generation, blob`), strictly.
fn material_from_row(
    row: &Row,
    key_id: &str,
    version: u32,
) -> Result<WrappedMaterial, MaterialError> {
    let corrupt = || MaterialError::Corrupt {
        key_id: key_id.to_string(),
        version,
    };
    let mk_generation = to_u32(row.try_get(0).map_err(|_| corrupt())?).ok_or_else(corrupt)?;
    let blob: Vec<u8> = row.try_get(1).map_err(|_| corrupt())?;
    if blob.len() > MAX_BLOB_LEN {
        return Err(corrupt());
    }
    Ok(WrappedMaterial {
        mk_generation,
        blob,
    })
}

const TOKEN_COLUMNS: &str =
    "public_key_der, private_key_generation, private_key, nonce_generation, nonce";

/// A token's row ([`TOKEN_COLUMNS`]), strictly.
fn token_from_row(row: &Row, token_id: &str) -> Result<StoredImportToken, MaterialError> {
    let corrupt = || MaterialError::TokenCorrupt {
        token_id: token_id.to_string(),
    };
    let wrapped = |generation: usize, blob: usize| -> Result<WrappedMaterial, MaterialError> {
        let mk_generation =
            to_u32(row.try_get(generation).map_err(|_| corrupt())?).ok_or_else(corrupt)?;
        let blob: Vec<u8> = row.try_get(blob).map_err(|_| corrupt())?;
        if blob.len() > MAX_BLOB_LEN {
            return Err(corrupt());
        }
        Ok(WrappedMaterial {
            mk_generation,
            blob,
        })
    };
    let token = StoredImportToken {
        token_id: token_id.to_string(),
        public_key_der: row.try_get(0).map_err(|_| corrupt())?,
        private_key: wrapped(1, 2)?,
        nonce: wrapped(3, 4)?,
    };
    check_token(&token).map_err(|_| corrupt())?;
    Ok(token)
}

fn check_new_token(token: &StoredImportToken) -> Result<(), MaterialError> {
    check_token(token)?;
    check_blob(&token.private_key, "wrapped token secret")?;
    check_blob(&token.nonce, "wrapped token secret")
}

impl PostgresMaterialStore {
    pub(crate) fn new(pool: Pool) -> Self {
        PostgresMaterialStore { pool }
    }

    fn conn(&self) -> Result<Connection, MaterialError> {
        self.pool.get().map_err(pool_error)
    }

    fn read_material(
        conn: &mut impl postgres::GenericClient,
        instance: &str,
        key_id: &str,
        version: u32,
        lock: &str,
    ) -> Result<Option<WrappedMaterial>, MaterialError> {
        let sql = format!(
            "SELECT mk_generation, blob FROM key_material
             WHERE instance = $1 AND key_id = $2 AND version = $3 {lock}"
        );
        let version_col = i64::from(version);
        let params: [&(dyn ToSql + Sync); 3] = [&instance, &key_id, &version_col];
        conn.query_opt(sql.as_str(), &params)
            .map_err(db)?
            .map(|row| material_from_row(&row, key_id, version))
            .transpose()
    }

    fn read_token(
        conn: &mut impl postgres::GenericClient,
        instance: &str,
        token_id: &str,
        lock: &str,
    ) -> Result<Option<StoredImportToken>, MaterialError> {
        let sql = format!(
            "SELECT {TOKEN_COLUMNS} FROM import_tokens
             WHERE instance = $1 AND token_id = $2 {lock}"
        );
        conn.query_opt(sql.as_str(), &[&instance, &token_id])
            .map_err(db)?
            .map(|row| token_from_row(&row, token_id))
            .transpose()
    }
}

impl KeyMaterialStore for PostgresMaterialStore {
    fn reads_are_local(&self) -> bool {
        false
    }

    fn put(
        &self,
        instance: &str,
        key_id: &str,
        version: u32,
        wrapped: &WrappedMaterial,
    ) -> Result<(), MaterialError> {
        check_address(instance, key_id, version)?;
        check_blob(wrapped, "wrapped material")?;
        let mut conn = self.conn()?;
        let version_col = i64::from(version);
        let generation = i64::from(wrapped.mk_generation);
        for _ in 0..PUT_ATTEMPTS {
            // One autocommit statement: committed when it returns.
            let inserted = conn
                .execute(
                    "INSERT INTO key_material (instance, key_id, version, mk_generation, blob)
                     VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (instance, key_id, version) DO NOTHING",
                    &[&instance, &key_id, &version_col, &generation, &wrapped.blob],
                )
                .map_err(db)?;
            if inserted == 1 {
                return Ok(());
            }
            // The version exists (committed: the conflict waited for it).
            match Self::read_material(&mut *conn, instance, key_id, version, "")? {
                Some(current) if &current == wrapped => return Ok(()),
                Some(_) => {
                    return Err(MaterialError::AlreadyExists {
                        key_id: key_id.to_string(),
                        version,
                    });
                }
                // Purged in between: try the insert again.
                None => continue,
            }
        }
        Err(MaterialError::Backend(format!(
            "key {key_id} version {version} kept appearing and disappearing during put"
        )))
    }

    fn get(
        &self,
        instance: &str,
        key_id: &str,
        version: u32,
    ) -> Result<Option<WrappedMaterial>, MaterialError> {
        check_address(instance, key_id, version)?;
        let mut conn = self.conn()?;
        Self::read_material(&mut *conn, instance, key_id, version, "")
    }

    fn versions(&self, instance: &str, key_id: &str) -> Result<Vec<u32>, MaterialError> {
        check_instance(instance)?;
        check_key_id(key_id)?;
        let mut conn = self.conn()?;
        let rows = conn
            .query(
                "SELECT version FROM key_material
                 WHERE instance = $1 AND key_id = $2 ORDER BY version",
                &[&instance, &key_id],
            )
            .map_err(db)?;
        rows.iter()
            .map(|row| {
                let v: i64 = row.get(0);
                to_u32(v).filter(|v| *v > 0).ok_or_else(|| {
                    MaterialError::Backend(format!(
                        "stored version {v} of key {key_id} is out of range"
                    ))
                })
            })
            .collect()
    }

    fn keys(&self, instance: &str) -> Result<Vec<String>, MaterialError> {
        check_instance(instance)?;
        let mut conn = self.conn()?;
        // key_id is COLLATE "C": byte order, as the embedded store sorts.
        let rows = conn
            .query(
                "SELECT key_id FROM key_material WHERE instance = $1
                 GROUP BY key_id ORDER BY key_id",
                &[&instance],
            )
            .map_err(db)?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }

    fn replace(
        &self,
        instance: &str,
        key_id: &str,
        version: u32,
        expected_generation: u32,
        wrapped: &WrappedMaterial,
    ) -> Result<(), MaterialError> {
        check_address(instance, key_id, version)?;
        check_blob(wrapped, "wrapped material")?;
        let mut conn = self.conn()?;
        let mut tx = conn.transaction().map_err(db)?;
        // The row lock makes the compare and the swap one step: a racing
        // replace waits here and then compares against the winner's row.
        let current = Self::read_material(&mut tx, instance, key_id, version, "FOR UPDATE")?
            .ok_or_else(|| MaterialError::NotFound {
                key_id: key_id.to_string(),
                version,
            })?;
        if &current == wrapped {
            return Ok(());
        }
        if current.mk_generation != expected_generation {
            return Err(MaterialError::GenerationMismatch {
                key_id: key_id.to_string(),
                version,
                expected: expected_generation,
                found: current.mk_generation,
            });
        }
        let version_col = i64::from(version);
        let generation = i64::from(wrapped.mk_generation);
        tx.execute(
            "UPDATE key_material SET mk_generation = $4, blob = $5
             WHERE instance = $1 AND key_id = $2 AND version = $3",
            &[&instance, &key_id, &version_col, &generation, &wrapped.blob],
        )
        .map_err(db)?;
        tx.commit().map_err(db)
    }

    fn purge(&self, instance: &str, key_id: &str) -> Result<u32, MaterialError> {
        check_instance(instance)?;
        check_key_id(key_id)?;
        let mut conn = self.conn()?;
        let deleted = conn
            .execute(
                "DELETE FROM key_material WHERE instance = $1 AND key_id = $2",
                &[&instance, &key_id],
            )
            .map_err(db)?;
        u32::try_from(deleted)
            .map_err(|_| MaterialError::Backend(format!("{deleted} versions purged")))
    }

    fn purge_instance(&self, instance: &str) -> Result<u64, MaterialError> {
        check_instance(instance)?;
        let mut conn = self.conn()?;
        let mut tx = conn.transaction().map_err(db)?;
        tx.execute(
            "DELETE FROM import_tokens WHERE instance = $1",
            &[&instance],
        )
        .map_err(db)?;
        let deleted = tx
            .execute("DELETE FROM key_material WHERE instance = $1", &[&instance])
            .map_err(db)?;
        tx.commit().map_err(db)?;
        Ok(deleted)
    }

    fn put_import_token(
        &self,
        instance: &str,
        token: &StoredImportToken,
    ) -> Result<(), MaterialError> {
        check_instance(instance)?;
        check_new_token(token)?;
        let mut conn = self.conn()?;
        let private_generation = i64::from(token.private_key.mk_generation);
        let nonce_generation = i64::from(token.nonce.mk_generation);
        for _ in 0..PUT_ATTEMPTS {
            let inserted = conn
                .execute(
                    "INSERT INTO import_tokens (instance, token_id, public_key_der,
                         private_key_generation, private_key, nonce_generation, nonce)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)
                     ON CONFLICT (instance, token_id) DO NOTHING",
                    &[
                        &instance,
                        &token.token_id,
                        &token.public_key_der,
                        &private_generation,
                        &token.private_key.blob,
                        &nonce_generation,
                        &token.nonce.blob,
                    ],
                )
                .map_err(db)?;
            if inserted == 1 {
                return Ok(());
            }
            match Self::read_token(&mut *conn, instance, &token.token_id, "")? {
                Some(current) if &current == token => return Ok(()),
                Some(_) => {
                    return Err(MaterialError::TokenExists {
                        token_id: token.token_id.clone(),
                    });
                }
                None => continue,
            }
        }
        Err(MaterialError::Backend(format!(
            "import token {} kept appearing and disappearing during put",
            token.token_id
        )))
    }

    fn get_import_token(
        &self,
        instance: &str,
        token_id: &str,
    ) -> Result<Option<StoredImportToken>, MaterialError> {
        check_instance(instance)?;
        check_token_id(token_id)?;
        let mut conn = self.conn()?;
        Self::read_token(&mut *conn, instance, token_id, "")
    }

    fn import_tokens(&self, instance: &str) -> Result<Vec<String>, MaterialError> {
        check_instance(instance)?;
        let mut conn = self.conn()?;
        // token_id is COLLATE "C": byte order.
        let rows = conn
            .query(
                "SELECT token_id FROM import_tokens WHERE instance = $1 ORDER BY token_id",
                &[&instance],
            )
            .map_err(db)?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }

    fn replace_import_token(
        &self,
        instance: &str,
        expected_generation: u32,
        token: &StoredImportToken,
    ) -> Result<(), MaterialError> {
        check_instance(instance)?;
        check_new_token(token)?;
        let mut conn = self.conn()?;
        let mut tx = conn.transaction().map_err(db)?;
        let current = Self::read_token(&mut tx, instance, &token.token_id, "FOR UPDATE")?
            .ok_or_else(|| MaterialError::TokenNotFound {
                token_id: token.token_id.clone(),
            })?;
        if !token_replace_allowed(&current, expected_generation, token)? {
            return Ok(());
        }
        let private_generation = i64::from(token.private_key.mk_generation);
        let nonce_generation = i64::from(token.nonce.mk_generation);
        tx.execute(
            "UPDATE import_tokens SET private_key_generation = $3, private_key = $4,
                 nonce_generation = $5, nonce = $6
             WHERE instance = $1 AND token_id = $2",
            &[
                &instance,
                &token.token_id,
                &private_generation,
                &token.private_key.blob,
                &nonce_generation,
                &token.nonce.blob,
            ],
        )
        .map_err(db)?;
        tx.commit().map_err(db)
    }

    fn purge_import_token(&self, instance: &str, token_id: &str) -> Result<bool, MaterialError> {
        check_instance(instance)?;
        check_token_id(token_id)?;
        let mut conn = self.conn()?;
        let deleted = conn
            .execute(
                "DELETE FROM import_tokens WHERE instance = $1 AND token_id = $2",
                &[&instance, &token_id],
            )
            .map_err(db)?;
        Ok(deleted > 0)
    }
}
