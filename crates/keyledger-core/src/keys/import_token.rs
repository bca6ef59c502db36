//! Import token metadata and projection (pure half).
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

/// Token metadata, as `POST /import_token` answers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportTokenMetadata {
    pub id: String,
    pub creation_date: String,
    pub expiration_date: String,
    pub max_allowed_retrievals: u32,
    pub remaining_retrievals: u32,
}

/// Key Protect's date format (RFC 3339, whole seconds, `Z`).
pub fn kp_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub mod projection;
