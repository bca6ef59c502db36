-- keyledger-store-postgres migration 0002: the key-material store.
-- Applied once, inside the opening transaction, by keyledger-store-postgres
-- (crates/keyledger-store-postgres/src/migrate.rs), which records it in
-- schema_version. Never edit an applied migration: add the next one.
--
-- Nothing here is plaintext: every blob is key material (or an import
-- token's secret) wrapped under the instance master key by the HSM backend,
-- bound to its address by AEAD associated data. Purging DELETEs the rows.
-- No foreign key to `instances`: material is addressed by instance name
-- alone, and purging an instance's material leaves its log alone.
-- u32 values (versions, master-key generations) are kept in BIGINT columns
-- with range checks, since PostgreSQL has no unsigned integers. Names use
-- the "C" collation: listings come back in byte order, as the embedded
-- store sorts them.

-- One row per key version: its material wrapped under master-key
-- generation `mk_generation`. Versions are immutable except for the
-- compare-and-swap of master-key rotation (UPDATE of mk_generation, blob).
CREATE TABLE key_material (
    instance      TEXT COLLATE "C" NOT NULL,
    key_id        TEXT COLLATE "C" NOT NULL CHECK (key_id ~ '^[A-Za-z0-9-]{1,64}$'),
    version       BIGINT NOT NULL CHECK (version BETWEEN 1 AND 4294967295),
    mk_generation BIGINT NOT NULL CHECK (mk_generation BETWEEN 0 AND 4294967295),
    blob          BYTEA  NOT NULL CHECK (octet_length(blob) <= 65536),
    PRIMARY KEY (instance, key_id, version)
);

-- One row per import token: its RSA public key (SPKI DER, not secret) and
-- its two secrets, the RSA private key and the nonce, each wrapped under a
-- master-key generation. Kept apart from key_material: tokens are not keys.
CREATE TABLE import_tokens (
    instance               TEXT COLLATE "C" NOT NULL,
    token_id               TEXT COLLATE "C" NOT NULL CHECK (token_id ~ '^[A-Za-z0-9-]{1,64}$'),
    public_key_der         BYTEA  NOT NULL
        CHECK (octet_length(public_key_der) BETWEEN 1 AND 4096),
    private_key_generation BIGINT NOT NULL
        CHECK (private_key_generation BETWEEN 0 AND 4294967295),
    private_key            BYTEA  NOT NULL
        CHECK (octet_length(private_key) BETWEEN 1 AND 65536),
    nonce_generation       BIGINT NOT NULL
        CHECK (nonce_generation BETWEEN 0 AND 4294967295),
    nonce                  BYTEA  NOT NULL
        CHECK (octet_length(nonce) BETWEEN 1 AND 65536),
    PRIMARY KEY (instance, token_id)
);
