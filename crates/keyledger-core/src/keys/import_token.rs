//! Import token metadata and projection (pure half).

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

/// Token metadata, as `POST /import_token` answers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportTokenMetadata {
    /// The token's id.
    pub id: String,
    /// When it was created, in [`kp_time`] format.
    pub creation_date: String,
    /// When it expires, in [`kp_time`] format.
    pub expiration_date: String,
    /// How many times it may be retrieved in all.
    pub max_allowed_retrievals: u32,
    /// How many retrievals are left.
    pub remaining_retrievals: u32,
}

/// Key Protect's date format (RFC 3339, whole seconds, `Z`).
pub fn kp_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The import-token projection.
pub mod projection;
