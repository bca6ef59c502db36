-- keyledger-store-postgres migration 0001: the instance log.
-- Applied once, inside the opening transaction, by keyledger-store-postgres
-- (crates/keyledger-store-postgres/src/migrate.rs), which records it in
-- schema_version. Never edit an applied migration: add the next one.

-- One row per instance: its head (the next seq and the link of the last
-- record). Each append takes this row FOR UPDATE, so appends to one
-- instance are serialised by the database, across every server.
CREATE TABLE instances (
    name      TEXT PRIMARY KEY,
    size      BIGINT NOT NULL CHECK (size >= 0),
    head_link BYTEA  NOT NULL CHECK (octet_length(head_link) = 32)
);

-- The records (source of truth). The primary key is the backstop against
-- two records at one seq.
CREATE TABLE records (
    instance  TEXT   NOT NULL REFERENCES instances (name),
    seq       BIGINT NOT NULL CHECK (seq >= 0),
    event     BYTEA  NOT NULL,
    signature BYTEA  NOT NULL CHECK (octet_length(signature) = 64),
    link      BYTEA  NOT NULL CHECK (octet_length(link) = 32),
    leaf      BYTEA  NOT NULL CHECK (octet_length(leaf) = 32),
    PRIMARY KEY (instance, seq)
);

-- Every perfect-subtree hash of the RFC 9162 tree over the records'
-- leaves, written in the same transaction as the records completing it.
CREATE TABLE nodes (
    instance TEXT     NOT NULL REFERENCES instances (name),
    level    SMALLINT NOT NULL CHECK (level >= 0 AND level < 64),
    idx      BIGINT   NOT NULL CHECK (idx >= 0),
    hash     BYTEA    NOT NULL CHECK (octet_length(hash) = 32),
    PRIMARY KEY (instance, level, idx)
);

-- The latest signed checkpoint note of each instance.
CREATE TABLE checkpoints (
    instance TEXT        PRIMARY KEY REFERENCES instances (name),
    note     TEXT        NOT NULL,
    saved_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
