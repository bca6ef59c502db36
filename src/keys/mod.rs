//! Root and standard keys: the Key Protect key state machine, the key
//! projection computed from the ledger, the wrapped-DEK ciphertext format,
//! secure import tokens and the key-material store.
//!
//! - [`state`]: which action each key state allows (pure table + time windows).
//! - [`projection`]: current state of every key of an instance, from events only.
//! - [`list_filter`]: the `filter` parameter of `GET /keys`, parsed (pure).
//! - [`ciphertext`]: the versioned, AAD-bound wrapped-DEK format.
//! - [`payload`]: the one size rule for caller-supplied key material (pure).
//! - [`import_token`]: RSA-OAEP import tokens with AES-GCM nonce proof, their
//!   secrets sealed by the HSM backend, and the current token from the log.
//! - [`material`]: where wrapped key material and import tokens live
//!   (separate from the log, so purging a key really shreds it).
//! - [`service`]: the commands of one instance.
//!
//! `ciphertext`, `import_token`, `material` and `service` live in the `keyledger-kms`
//! crate and are re-exported here at their old paths.
//!
//! `docs/KEYS.md` documents the formats and the state table with sources.

pub use keyledger_core::keys::{list_filter, payload, projection, state};
pub use keyledger_kms::{ciphertext, import_token, material, service};
