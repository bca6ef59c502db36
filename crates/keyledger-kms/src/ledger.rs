//! Instance ledgers (`keyledger_ledger::ledger`) whose keys may live in this
//! crate's HSM backends: the ledger types instantiated with the signing
//! capability, `dyn LedgerSigning`, as their key device (`crate::signer`
//! implements it). An `Arc<dyn LedgerSigning>` passed where an
//! `Arc<dyn LedgerSigning>` is expected coerces (trait upcasting).
use crate::hsm::{HsmError, LedgerSigning};

pub use keyledger_ledger::ledger::{InitialAdmin, KeyDevice, keys_dir};

/// An open instance ledger whose key is a key file or held in an HSM backend.
pub type Ledger = keyledger_ledger::ledger::Ledger<dyn LedgerSigning>;

/// Where an instance's ledger key lives: a key file or an HSM backend.
pub type KeyHome = keyledger_ledger::ledger::KeyHome<dyn LedgerSigning>;

/// Errors opening, creating or administering an instance ledger.
pub type LedgerError = keyledger_ledger::ledger::LedgerError<HsmError>;
