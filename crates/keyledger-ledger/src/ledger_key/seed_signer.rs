//! RFC 8032 Ed25519 signatures from the ledger key's seed, on the hot path
//! (one per record).
//!
//! ed25519-dalek is the reference and always present. Built with the
//! `aws-lc` feature (a default one), signing goes through AWS-LC's Ed25519
//! instead: its x86-64 assembly signs the record message in ~8.5 µs against
//! dalek's ~18 µs on this project's 2-core machines (docs/BENCHMARKS.md).
//! Ed25519 signatures are deterministic, so both give the same bytes; AWS-LC
//! is only used for a key after a known-answer self-test at load shows it
//! derives the same public key and signs a fixed message exactly as dalek
//! does, and a call AWS-LC fails falls back to dalek. The offline verifier
//! (built without default features) never signs, so it does not carry
//! AWS-LC.

use ed25519_dalek::VerifyingKey;
use ed25519_dalek::hazmat::{ExpandedSecretKey, raw_sign};
use sha2::Sha512;

/// Signs with one seed. Holds no `Debug`: nothing of it may be printed.
pub(super) struct SeedSigner {
    /// The scalar and nonce prefix the seed expands to (zeroized on drop),
    /// kept so that a signature skips re-deriving them.
    expanded: ExpandedSecretKey,
    public: VerifyingKey,
    /// AWS-LC's key for the same seed, if it passed the self-test. Its
    /// private key lives in AWS-LC's memory, which `OPENSSL_free` cleanses
    /// when the key is dropped.
    #[cfg(feature = "aws-lc")]
    accelerated: Option<aws_lc_rs::signature::Ed25519KeyPair>,
}

/// The message of the load-time self-test.
#[cfg(feature = "aws-lc")]
const SELF_TEST_MESSAGE: &[u8] = b"keyledger/v1/ed25519-self-test";

impl SeedSigner {
    pub(super) fn new(seed: &[u8; 32], public: VerifyingKey) -> Self {
        let expanded = ExpandedSecretKey::from(seed);
        #[cfg(feature = "aws-lc")]
        let accelerated = aws_lc_rs::signature::Ed25519KeyPair::from_seed_unchecked(seed)
            .ok()
            .filter(|pair| agrees_with_dalek(pair, &expanded, &public));
        SeedSigner {
            expanded,
            public,
            #[cfg(feature = "aws-lc")]
            accelerated,
        }
    }

    /// The RFC 8032 signature of `message`.
    pub(super) fn sign(&self, message: &[u8]) -> [u8; 64] {
        #[cfg(feature = "aws-lc")]
        if let Some(signature) = self
            .accelerated
            .as_ref()
            .and_then(|pair| accelerated_signature(pair, message))
        {
            return signature;
        }
        self.reference_signature(message)
    }

    /// ed25519-dalek's signature of `message`.
    fn reference_signature(&self, message: &[u8]) -> [u8; 64] {
        raw_sign::<Sha512>(&self.expanded, message, &self.public).to_bytes()
    }

    /// Which implementation signs: "aws-lc" or "ed25519-dalek".
    pub(super) fn implementation(&self) -> &'static str {
        #[cfg(feature = "aws-lc")]
        if self.accelerated.is_some() {
            return "aws-lc";
        }
        "ed25519-dalek"
    }
}

#[cfg(feature = "aws-lc")]
fn accelerated_signature(
    pair: &aws_lc_rs::signature::Ed25519KeyPair,
    message: &[u8],
) -> Option<[u8; 64]> {
    pair.try_sign(message).ok()?.as_ref().try_into().ok()
}

/// The self-test: the same public key, and the same signature of a fixed
/// message, as the reference.
#[cfg(feature = "aws-lc")]
fn agrees_with_dalek(
    pair: &aws_lc_rs::signature::Ed25519KeyPair,
    expanded: &ExpandedSecretKey,
    public: &VerifyingKey,
) -> bool {
    use aws_lc_rs::signature::KeyPair;
    let reference = raw_sign::<Sha512>(expanded, SELF_TEST_MESSAGE, public).to_bytes();
    pair.public_key().as_ref() == public.as_bytes()
        && accelerated_signature(pair, SELF_TEST_MESSAGE) == Some(reference)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;
    use proptest::prelude::*;

    fn signer(seed: &[u8; 32]) -> SeedSigner {
        SeedSigner::new(seed, SigningKey::from_bytes(seed).verifying_key())
    }

    #[test]
    fn the_default_build_signs_with_aws_lc() {
        let expected = if cfg!(feature = "aws-lc") {
            "aws-lc"
        } else {
            "ed25519-dalek"
        };
        assert_eq!(signer(&[9u8; 32]).implementation(), expected);
    }

    #[test]
    fn a_public_key_that_is_not_the_seeds_keeps_the_reference() {
        // Handed a wrong public key, the self-test fails and dalek signs
        // (with the key it was given, as raw_sign does).
        let other = SigningKey::from_bytes(&[2u8; 32]).verifying_key();
        let s = SeedSigner::new(&[1u8; 32], other);
        assert_eq!(s.implementation(), "ed25519-dalek");
        assert_eq!(s.sign(b"m"), s.reference_signature(b"m"));
    }

    proptest! {
        #[test]
        fn signs_exactly_as_ed25519_dalek(seed in any::<[u8; 32]>(), message in proptest::collection::vec(any::<u8>(), 0..300)) {
            let s = signer(&seed);
            let dalek = SigningKey::from_bytes(&seed);
            prop_assert_eq!(s.sign(&message), ed25519_dalek::Signer::sign(&dalek, &message).to_bytes());
        }
    }
}
