//! Instance ledgers (`keyledger_ledger::ledger`) whose keys may live in this
//! crate's HSM backends: the ledger types instantiated with
//! `dyn HsmBackend` as their key device (`crate::signer` implements it).
use crate::hsm::{HsmBackend, HsmError};

pub use keyledger_ledger::ledger::{InitialAdmin, KeyDevice, keys_dir};

/// An open instance ledger whose key is a key file or held in an HSM backend.
pub type Ledger = keyledger_ledger::ledger::Ledger<dyn HsmBackend>;

/// Where an instance's ledger key lives: a key file or an HSM backend.
pub type KeyHome = keyledger_ledger::ledger::KeyHome<dyn HsmBackend>;

/// Errors opening, creating or administering an instance ledger.
pub type LedgerError = keyledger_ledger::ledger::LedgerError<HsmError>;
