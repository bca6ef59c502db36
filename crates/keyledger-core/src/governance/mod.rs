//! Governance: administrator commands signed offline under a threshold,
//! the projection of administrators, credentials, policies and approvals,
//! and the rules every command and gated operation must pass.
//!
//! Pure code (no I/O): the server applies these rules before appending a
//! command's event, and `keyledger verify --policy` replays the same rules
//! over a bundle. See `docs/GOVERNANCE.md`.

pub(crate) mod approval;
pub(crate) mod command;
#[cfg(feature = "openapi")]
mod openapi;
pub(crate) mod policies;
pub(crate) mod rules;
pub mod sinks;
pub(crate) mod state;
mod view;

pub use approval::{ApprovalDenial, OP_KEY_DELETE, OP_KEY_PURGE, check_cancel, check_grant};
pub use command::{
    AdminCommand, CommandDocument, CommandError, MAX_DOCUMENT_BYTES, MAX_SIGNATURES, SignedCommand,
    admin_id, decode_public_key,
};
pub use rules::{Authorized, Denial, MIN_KEY_OWNERS, View, authorize, verified_signers};
pub use state::{
    Admin, Approval, ApprovalStatus, Credential, GovernanceState, InstancePolicy, Thresholds,
};
