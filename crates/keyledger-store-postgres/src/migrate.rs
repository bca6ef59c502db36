//! Versioned schema migrations, `schemas/postgres/NNNN_*.sql`, embedded in
//! the binary and applied at open, all in one transaction, serialised
//! between servers by an advisory lock and recorded in `schema_version`.
//! A database already at a newer version than [`SCHEMA_VERSION`] is refused.

use postgres::Client;

use crate::OpenError;

/// The migrations this binary knows, by version, in order.
pub const MIGRATIONS: &[(i32, &str)] = &[
    (
        1,
        include_str!("../../../schemas/postgres/0001_instance_log.sql"),
    ),
    (
        2,
        include_str!("../../../schemas/postgres/0002_key_material.sql"),
    ),
    (
        3,
        include_str!("../../../schemas/postgres/0003_sink_cursors.sql"),
    ),
];

/// The newest schema version this binary knows.
pub const SCHEMA_VERSION: i32 = 3;

/// Advisory lock key serialising migrations between servers ("kl-schema").
const MIGRATION_LOCK: i64 = 0x6b6c_2d73_6368_656d;

/// Brings the database's schema up to [`SCHEMA_VERSION`], or refuses a
/// newer one. Nothing is changed unless every pending migration applies.
pub fn apply(client: &mut Client) -> Result<(), OpenError> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_version (
             version    INTEGER PRIMARY KEY,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
         )",
    )?;
    let current: i32 = tx
        .query_one("SELECT COALESCE(MAX(version), 0) FROM schema_version", &[])?
        .get(0);
    if current > SCHEMA_VERSION {
        return Err(OpenError::SchemaTooNew {
            found: current,
            known: SCHEMA_VERSION,
        });
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        tx.batch_execute(sql)?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES ($1)",
            &[version],
        )?;
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_in_order_up_to_the_schema_version() {
        let versions: Vec<i32> = MIGRATIONS.iter().map(|(v, _)| *v).collect();
        let expected: Vec<i32> = (1..=SCHEMA_VERSION).collect();
        assert_eq!(versions, expected);
    }
}
