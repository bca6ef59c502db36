//! keyledger-kms: the key-management layer and the key service. It owns
//! where master keys live and where every operation on key material
//! happens, and it knows nothing of HTTP or async runtimes.
//!
//! - [`hsm`]: the HSM, split by capability ([`hsm::MasterKeyCeremony`],
//!   [`hsm::KeyCrypto`], the optional [`hsm::LedgerSigning`];
//!   [`hsm::HsmBackend`] is all three), with the software backend, the
//!   PKCS#11 backend (feature `pkcs11`) and the timing wrapper
//!   ([`hsm::measured`]); [`conformance`] (feature `conformance`) is the
//!   suite every backend runs.
//! - [`signer`]: [`signer::HsmSigner`], a ledger key held in an HSM with the
//!   signing capability, and the HSM backends as the ledger's key device;
//!   [`ledger`]: the instance-ledger types over that device.
//! - [`material`]: where wrapped key material and import tokens live,
//!   apart from the log (purging a key shreds it), with the embedded store.
//! - [`ciphertext`]: the versioned, AAD-bound wrapped-DEK format.
//! - [`import_token`]: RSA-OAEP import tokens with AES-GCM nonce proof, and
//!   their private keys sealed by the HSM ([`import_token::sealing`]).
//! - [`secret`]: secret byte strings (zeroized, constant-time, never printed).
//! - [`service`]: the key service of one instance, the imperative shell
//!   around `keyledger_core::decide` (check, HSM call, append, answer);
//!   [`instance`] opens one as a whole (log, material store, HSM).
//! - [`admin_key`]: an administrator's or key owner's private key file.
//!
//! Depends on `keyledger-core` and `keyledger-ledger`, never on the root
//! package, actix, tokio or the server (`docs/KMS-CRATE.md`).
#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod admin_key;
pub mod ciphertext;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod hsm;
pub mod import_token;
pub mod instance;
pub mod ledger;
pub mod material;
pub mod secret;
pub mod service;
pub mod signer;
