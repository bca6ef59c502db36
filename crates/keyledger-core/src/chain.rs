//! The BLAKE3 hash chain that links every record to the one before it, and
//! the domain-separated message the ledger key signs for each record.
//!
//! `link(n) = BLAKE3("keyledger/v1/chain" || 0x00 || event_bytes(n))`. The
//! event bytes of record `n + 1` carry `link(n)` in their `prev` field, so each
//! link commits to the whole history before it. Record 0 carries
//! [`GENESIS_PREV`] (32 zero bytes).

/// A BLAKE3 chain link (32 bytes).
pub type Link = [u8; 32];

/// The `prev` value of the first record of every instance.
pub const GENESIS_PREV: Link = [0u8; 32];

/// Domain-separation prefix of a chain link.
pub const CHAIN_DOMAIN: &[u8] = b"keyledger/v1/chain\0";

/// Domain-separation prefix of the message a record signature covers.
pub const SIGNATURE_DOMAIN: &[u8] = b"keyledger/v1/record-signature\0";

/// Length of the message a record signature covers.
pub const SIGNING_MESSAGE_LEN: usize = SIGNATURE_DOMAIN.len() + 32;

/// The chain link of one record's event bytes.
pub fn link(event_bytes: &[u8]) -> Link {
    let mut hasher = blake3::Hasher::new();
    hasher.update(CHAIN_DOMAIN);
    hasher.update(event_bytes);
    *hasher.finalize().as_bytes()
}

/// The exact message the instance ledger key signs for a record whose chain
/// link is `link`: `"keyledger/v1/record-signature" || 0x00 || link`.
pub fn signing_message(link: &Link) -> [u8; SIGNING_MESSAGE_LEN] {
    let mut message = [0u8; SIGNING_MESSAGE_LEN];
    message[..SIGNATURE_DOMAIN.len()].copy_from_slice(SIGNATURE_DOMAIN);
    message[SIGNATURE_DOMAIN.len()..].copy_from_slice(link);
    message
}

/// Lower-case hex of a link, as carried in the `prev` field.
pub fn to_hex(link: &Link) -> String {
    // base16ct: one `prev` per record, on the sequencer's path; `hex`'s
    // char-by-char encoder costs several times as much.
    base16ct::lower::encode_string(link)
}

/// Parses a 64-character lower-case hex link.
pub fn from_hex(text: &str) -> Option<Link> {
    if text.len() != 64 {
        return None;
    }
    // base16ct's lower-case decoder refuses upper-case digits itself.
    let mut out = [0u8; 32];
    base16ct::lower::decode(text, &mut out).ok()?;
    Some(out)
}

/// Verifies a record signature against a public key (strict RFC 8032 checks).
pub fn verify_record(key: &ed25519_dalek::VerifyingKey, link: &Link, signature: &[u8; 64]) -> bool {
    let signature = ed25519_dalek::Signature::from_bytes(signature);
    key.verify_strict(&signing_message(link), &signature)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_is_domain_separated_blake3() {
        let mut expected = blake3::Hasher::new();
        expected.update(b"keyledger/v1/chain\0{}");
        assert_eq!(link(b"{}"), *expected.finalize().as_bytes());
        assert_ne!(link(b"{}"), *blake3::hash(b"{}").as_bytes());
    }

    #[test]
    fn hex_round_trip_rejects_upper_case_and_wrong_length() {
        let l = link(b"x");
        assert_eq!(from_hex(&to_hex(&l)), Some(l));
        assert_eq!(from_hex(&to_hex(&l).to_uppercase()), None);
        let one_upper = format!("A{}", &to_hex(&[0xab; 32])[1..]);
        assert_eq!(from_hex(&one_upper), None);
        assert_eq!(from_hex(&format!("g{}", &to_hex(&l)[1..])), None);
        assert_eq!(from_hex(&to_hex(&l)[..62]), None);
    }

    #[test]
    fn signing_message_layout() {
        let l = [7u8; 32];
        let m = signing_message(&l);
        assert!(m.starts_with(SIGNATURE_DOMAIN));
        assert_eq!(&m[SIGNATURE_DOMAIN.len()..], &l);
    }
}
