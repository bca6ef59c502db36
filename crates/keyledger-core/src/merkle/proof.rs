//! Proof verification: RFC 9162 §2.1.3.2 (inclusion) and §2.1.4.2 (consistency).
//!
//! Both verifiers first check the exact proof length the tree shape requires
//! (so failures are reported precisely), then run the RFC algorithm verbatim.
//! They never panic, whatever the sizes, indices or proof contents.

use super::{Hash, ProofError, empty_root, node_hash};

/// `(inner, border)` decomposition of an inclusion proof for leaf `index` in a
/// tree of `size > index` leaves: `inner` hashes below the level where the
/// path to `index` and the path to the last leaf diverge, then `border` hashes
/// of left siblings along the right edge.
fn decompose(index: u64, size: u64) -> (u32, u32) {
    let last = size.saturating_sub(1);
    let inner = 64 - (index ^ last).leading_zeros();
    let border = index.checked_shr(inner).unwrap_or(0).count_ones();
    (inner, border)
}

/// Number of hashes in the RFC 9162 §2.1.3.1 inclusion proof `PATH(index, D[size])`,
/// or `None` if `index >= size`.
#[must_use]
pub fn inclusion_proof_len(index: u64, size: u64) -> Option<usize> {
    if index >= size {
        return None;
    }
    let (inner, border) = decompose(index, size);
    Some((inner + border) as usize)
}

/// Number of hashes in the RFC 9162 §2.1.4.1 consistency proof
/// `PROOF(size1, D[size2])`, or `None` if `size1 > size2`.
/// Zero when `size1 == 0` or `size1 == size2`.
#[must_use]
pub fn consistency_proof_len(size1: u64, size2: u64) -> Option<usize> {
    if size1 > size2 {
        return None;
    }
    if size1 == 0 || size1 == size2 {
        return Some(0);
    }
    let (inner, border) = decompose(size1 - 1, size2);
    let shift = size1.trailing_zeros();
    // The proof starts with the hash of the subtree of size 2^shift that ends
    // at size1, unless size1 is that subtree itself (then root1 is the seed).
    let start = u32::from(size1 != 1u64 << shift);
    Some((start + inner.saturating_sub(shift) + border) as usize)
}

/// Verifies that `leaf_hash` is the leaf at `index` of the tree of `size`
/// leaves whose root is `root`, using an RFC 9162 §2.1.3.1 audit path.
///
/// Implements RFC 9162 §2.1.3.2 exactly, after checking the proof length.
///
/// # Errors
/// [`ProofError::IndexOutOfRange`] if `index >= size`,
/// [`ProofError::WrongProofLength`] if the proof has the wrong number of
/// hashes, [`ProofError::RootMismatch`] if it does not lead to `root`.
pub fn verify_inclusion(
    leaf_hash: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    // Step 1: index must be inside the tree.
    let Some(expected) = inclusion_proof_len(index, size) else {
        return Err(ProofError::IndexOutOfRange { index, size });
    };
    if proof.len() != expected {
        return Err(ProofError::WrongProofLength {
            expected,
            got: proof.len(),
        });
    }
    // Steps 2-3.
    let mut fn_ = index;
    let mut sn = size - 1;
    let mut r = *leaf_hash;
    // Step 4.
    for (at, p) in proof.iter().enumerate() {
        if sn == 0 {
            return Err(ProofError::ProofTooLong { at });
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    // Step 5.
    if sn != 0 {
        return Err(ProofError::ProofTooShort);
    }
    if r != *root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// Verifies that the tree of `size1` leaves with root `root1` is a prefix of
/// the tree of `size2` leaves with root `root2`, using an RFC 9162 §2.1.4.1
/// consistency proof.
///
/// Implements RFC 9162 §2.1.4.2 exactly, with the edge cases handled like
/// transparency-dev/merkle: `size1 > size2` fails; `size1 == size2` needs an
/// empty proof and `root1 == root2`; `size1 == 0` needs an empty proof (every
/// tree extends the empty tree) and, stricter than transparency-dev, `root1`
/// must be [`empty_root`].
///
/// # Errors
/// [`ProofError::Size1GreaterThanSize2`], [`ProofError::EmptyProof`],
/// [`ProofError::WrongProofLength`], [`ProofError::OldRootMismatch`] or
/// [`ProofError::NewRootMismatch`] as appropriate.
pub fn verify_consistency(
    size1: u64,
    size2: u64,
    proof: &[Hash],
    root1: &Hash,
    root2: &Hash,
) -> Result<(), ProofError> {
    if size1 > size2 {
        return Err(ProofError::Size1GreaterThanSize2 { size1, size2 });
    }
    if size1 == size2 || size1 == 0 {
        if !proof.is_empty() {
            return Err(ProofError::WrongProofLength {
                expected: 0,
                got: proof.len(),
            });
        }
        if size1 == 0 && *root1 != empty_root() {
            return Err(ProofError::OldRootMismatch);
        }
        if size1 == size2 && root1 != root2 {
            return Err(ProofError::NewRootMismatch);
        }
        return Ok(());
    }
    // Step 1.
    if proof.is_empty() {
        return Err(ProofError::EmptyProof);
    }
    let expected = consistency_proof_len(size1, size2).unwrap_or(0);
    if proof.len() != expected {
        return Err(ProofError::WrongProofLength {
            expected,
            got: proof.len(),
        });
    }
    // Step 2: if size1 is an exact power of 2, prepend root1 to the path.
    let seeded = size1.is_power_of_two();
    let (first, rest, offset) = if seeded {
        (root1, proof, 0)
    } else {
        match proof.split_first() {
            Some((first, rest)) => (first, rest, 1),
            None => return Err(ProofError::EmptyProof),
        }
    };
    // Step 3.
    let mut fn_ = size1 - 1;
    let mut sn = size2 - 1;
    // Step 4.
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    // Step 5.
    let mut fr = *first;
    let mut sr = *first;
    // Step 6.
    for (i, c) in rest.iter().enumerate() {
        if sn == 0 {
            return Err(ProofError::ProofTooLong { at: i + offset });
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    // Step 7.
    if sn != 0 {
        return Err(ProofError::ProofTooShort);
    }
    if fr != *root1 {
        return Err(ProofError::OldRootMismatch);
    }
    if sr != *root2 {
        return Err(ProofError::NewRootMismatch);
    }
    Ok(())
}
