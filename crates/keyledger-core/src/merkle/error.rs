//! The single error type of proof generation and verification.

use core::convert::Infallible;

/// Why a Merkle proof could not be generated or did not verify.
///
/// Verification functions use the default `E = Infallible` (they never touch
/// storage); generation functions carry the [`NodeSource`](super::NodeSource)
/// error in [`ProofError::Source`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError<E = Infallible> {
    /// The leaf index is not inside the tree (`index >= size`); this includes
    /// every index for the empty tree (RFC 9162 §2.1.3.2 step 1).
    #[error("leaf index {index} is out of range for tree size {size}")]
    IndexOutOfRange {
        /// Requested leaf index.
        index: u64,
        /// Tree size the proof is for.
        size: u64,
    },
    /// A consistency proof was asked for from a larger tree to a smaller one.
    #[error("old tree size {size1} is greater than new tree size {size2}")]
    Size1GreaterThanSize2 {
        /// Old (first) tree size.
        size1: u64,
        /// New (second) tree size.
        size2: u64,
    },
    /// A consistency proof between different, non-empty sizes was empty
    /// (RFC 9162 §2.1.4.2 step 1).
    #[error("consistency proof is empty")]
    EmptyProof,
    /// The proof does not have the exact number of hashes the tree shape
    /// requires (this includes a non-empty proof where none is allowed).
    #[error("proof has {got} hashes, expected {expected}")]
    WrongProofLength {
        /// Length the tree shape requires.
        expected: usize,
        /// Length supplied.
        got: usize,
    },
    /// The RFC algorithm ran out of tree before the proof ended (`sn == 0`
    /// while hashes remain); `at` is the index of the first unused hash.
    #[error("proof hash {at} is beyond the root of the tree")]
    ProofTooLong {
        /// Index of the offending proof hash.
        at: usize,
    },
    /// The proof ended before reaching the root (`sn != 0` at the end).
    #[error("proof ended before reaching the root")]
    ProofTooShort,
    /// The root recomputed from an inclusion proof differs from the expected root.
    #[error("inclusion proof does not lead to the expected root")]
    RootMismatch,
    /// The old-tree root recomputed from a consistency proof differs from `root1`.
    #[error("consistency proof does not match the old root")]
    OldRootMismatch,
    /// The new-tree root recomputed from a consistency proof differs from `root2`.
    #[error("consistency proof does not match the new root")]
    NewRootMismatch,
    /// The underlying [`NodeSource`](super::NodeSource) failed (generation only).
    #[error("node source: {0}")]
    Source(E),
}

impl ProofError<Infallible> {
    /// Re-types a storage-free error so it can be returned where a
    /// `ProofError<E>` is expected.
    #[must_use]
    pub fn widen<E>(self) -> ProofError<E> {
        match self {
            Self::IndexOutOfRange { index, size } => ProofError::IndexOutOfRange { index, size },
            Self::Size1GreaterThanSize2 { size1, size2 } => {
                ProofError::Size1GreaterThanSize2 { size1, size2 }
            }
            Self::EmptyProof => ProofError::EmptyProof,
            Self::WrongProofLength { expected, got } => {
                ProofError::WrongProofLength { expected, got }
            }
            Self::ProofTooLong { at } => ProofError::ProofTooLong { at },
            Self::ProofTooShort => ProofError::ProofTooShort,
            Self::RootMismatch => ProofError::RootMismatch,
            Self::OldRootMismatch => ProofError::OldRootMismatch,
            Self::NewRootMismatch => ProofError::NewRootMismatch,
            Self::Source(never) => match never {},
        }
    }
}
