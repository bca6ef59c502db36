-- keyledger-store-postgres migration 0003: SIEM sink cursors.
-- Applied once, inside the opening transaction, by keyledger-store-postgres
-- (crates/keyledger-store-postgres/src/migrate.rs), which records it in
-- schema_version. Never edit an applied migration: add the next one.
--
-- One row per sink configuration (`sink` = "<name>.<configuration digest>"):
-- the next sequence number of the instance's log to deliver. Servers on
-- one database share it, and only the server holding the sink's advisory
-- lock (a session lock on its own connection) delivers and writes it, so a
-- receiver gets each record from one server, and another server takes over
-- from the same cursor when that one dies.
CREATE TABLE sink_cursors (
    instance   TEXT COLLATE "C" NOT NULL,
    sink       TEXT COLLATE "C" NOT NULL CHECK (length(sink) BETWEEN 1 AND 128),
    next_seq   BIGINT NOT NULL CHECK (next_seq >= 0),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (instance, sink)
);
