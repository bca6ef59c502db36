//! Governance: administrator commands signed offline under a threshold,
//! the projection of administrators, credentials, policies and approvals,
//! and the rules every command and gated operation must pass.
//!
//! Pure code (no I/O): the server applies these rules before appending a
//! command's event, and `keyledger verify --policy` replays the same rules
//! over a bundle. See `docs/GOVERNANCE.md`.

pub mod approval;
pub mod command;
pub mod policies;
pub mod rules;
pub mod state;
mod view;

pub use approval::{ApprovalDenial, OP_KEY_DELETE, OP_KEY_PURGE};
pub use command::{AdminCommand, CommandDocument, CommandError, SignedCommand, admin_id};
pub use rules::{Authorized, Denial, View, authorize, verified_signers};
pub use state::{Admin, Approval, ApprovalStatus, Credential, GovernanceState, Thresholds};
