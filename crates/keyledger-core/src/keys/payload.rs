//! The one rule for caller-supplied key material (a key's `payload`),
//! applied on every path that brings material in: key creation with a
//! payload, creation through an import token (after the token opens it),
//! rotation of an imported key, and restore with a payload. Pure: no I/O.
//!
//! - A standard key's payload is an AES key of 16, 24 or 32 bytes (Key
//!   Protect's rule for imported keys).
//! - A root key wraps data keys with AES-256-GCM in the HSM backend, and both
//!   backends encrypt with 256-bit material only (`docs/HSM.md`), so a root
//!   key's payload is 32 bytes. Key Protect also accepts 16 and 24-byte root
//!   keys; here they would be stored and then fail every wrap, so they are
//!   refused when they are given (see `docs/KEYS.md`, "Key material").
//!
//! Refusals say what was expected and how many bytes came, never the bytes.

use crate::reason::Reason;

/// Sizes of a standard key's payload (AES-128/192/256), bytes.
pub const STANDARD_KEY_SIZES: [usize; 3] = [16, 24, 32];
/// Size of a root key's payload (AES-256), bytes.
pub const ROOT_KEY_SIZE: usize = 32;

/// Why caller-supplied key material was refused: an invalid field
/// ([`Reason::InvalidField`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// A root key's material is not 32 bytes (its length given).
    #[error(
        "the field `payload` must be a base64-encoded AES key of 32 bytes for a root key (this service wraps with AES-256 only), not {0} bytes"
    )]
    RootKeySize(usize),
    /// A standard key's material is not 16, 24 or 32 bytes (its length given).
    #[error(
        "the field `payload` must be a base64-encoded AES key of 16, 24 or 32 bytes, not {0} bytes"
    )]
    StandardKeySize(usize),
    /// The payload given to restore a key is not that key's material.
    #[error("the field `payload` is not the key material of the key's current version")]
    NotTheKeyMaterial,
    /// The HSM backend could not use the material for what the key is for
    /// (no version is made current with material that cannot be used).
    #[error("the field `payload` is not key material this service can use")]
    Unusable,
}

impl PayloadError {
    /// The reason code of this refusal: an invalid field.
    pub fn reason(&self) -> Reason {
        Reason::InvalidField
    }
}

/// Checks a payload of `len` bytes for a root (`extractable == false`) or
/// standard key.
pub fn check(extractable: bool, len: usize) -> Result<(), PayloadError> {
    match extractable {
        false if len == ROOT_KEY_SIZE => Ok(()),
        false => Err(PayloadError::RootKeySize(len)),
        true if STANDARD_KEY_SIZES.contains(&len) => Ok(()),
        true => Err(PayloadError::StandardKeySize(len)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_keys_take_32_bytes_standard_keys_16_24_or_32() {
        for len in 0..=64 {
            assert_eq!(check(false, len).is_ok(), len == 32, "root {len}");
            assert_eq!(
                check(true, len).is_ok(),
                [16, 24, 32].contains(&len),
                "standard {len}"
            );
        }
        let e = check(false, 17).expect_err("17");
        assert_eq!(e.reason(), Reason::InvalidField);
        assert!(e.to_string().contains("not 17 bytes"), "{e}");
    }
}
