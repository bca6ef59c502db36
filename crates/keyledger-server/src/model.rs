//! The API's wire model: the media types, the parameters and the request
//! and response bodies as schemas, and the key actions. Handlers and the
//! OpenAPI document both depend on it; it depends on neither.

/// Key Protect's error media type.
pub const ERROR_MEDIA: &str = "application/vnd.ibm.kms.error+json";
/// Key Protect's key media type.
pub const KEY_MEDIA: &str = "application/vnd.ibm.kms.key+json";
/// The media type of the action bodies (`POST /keys/{id}/actions/...`).
pub const KEY_ACTION_MEDIA: &str = "application/vnd.ibm.kms.key_action+json";

pub mod actions;
pub mod params;
pub mod requests;
pub mod shapes;

pub use params::*;
pub use shapes::*;
