//! RFC 9162 Merkle tree over SHA-256 (Certificate Transparency v2 hashing).
//!
//! * Hashing ([`leaf_hash`], [`node_hash`], [`empty_root`]) is RFC 9162 §2.1.1.
//! * [`Frontier`] is the compact right edge of an append-only tree: it computes
//!   the Merkle Tree Hash (MTH, §2.1.1) incrementally in `O(log n)` memory and
//!   reports every perfect subtree node completed by each appended leaf.
//! * [`NodeSource`] + [`inclusion_proof`] / [`consistency_proof`] / [`root_at`]
//!   generate RFC 9162 §2.1.3.1 `PATH` and §2.1.4.1 `PROOF` values by reading
//!   `O(log n)` stored perfect-subtree hashes (never rebuilding from leaves).
//! * [`verify_inclusion`] / [`verify_consistency`] are the RFC 9162 §2.1.3.2
//!   and §2.1.4.2 verification algorithms.
//!
//! Node addressing: the node at `(level, index)` is the root of the perfect
//! subtree covering leaves `[index·2^level, (index+1)·2^level)`; level 0 is
//! the leaf hashes themselves.

use sha2::{Digest, Sha256};

mod error;
mod frontier;
mod proof;
mod stored;

pub use error::ProofError;
pub use frontier::{Frontier, FrontierError, frontier_peaks};
pub use proof::{consistency_proof_len, inclusion_proof_len, verify_consistency, verify_inclusion};
pub use stored::{
    MemoryNodes, MemoryNodesError, NodeSource, checked_postorder_position, consistency_proof,
    inclusion_proof, postorder_position, restore_frontier, root_at, stored_node_count,
};

/// A SHA-256 output: a leaf hash, an interior node hash or a tree root.
pub type Hash = [u8; 32];

/// Domain-separation prefix for leaf hashes (RFC 9162 §2.1.1).
const LEAF_PREFIX: u8 = 0x00;
/// Domain-separation prefix for interior node hashes (RFC 9162 §2.1.1).
const NODE_PREFIX: u8 = 0x01;

/// Leaf hash `SHA-256(0x00 || entry)` (RFC 9162 §2.1.1, `MTH({d(0)})`).
#[must_use]
pub fn leaf_hash(entry: &[u8]) -> Hash {
    leaf_hash_of_parts(&[entry])
}

/// [`leaf_hash`] of the concatenation of `parts`, without building it.
#[must_use]
pub fn leaf_hash_of_parts(parts: &[&[u8]]) -> Hash {
    let mut h = Sha256::new();
    h.update([LEAF_PREFIX]);
    for part in parts {
        h.update(part);
    }
    h.finalize().into()
}

/// Interior node hash `SHA-256(0x01 || left || right)` (RFC 9162 §2.1.1).
#[must_use]
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([NODE_PREFIX]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// Root of the empty tree, `SHA-256("")` (RFC 9162 §2.1.1, `MTH({})`).
#[must_use]
pub fn empty_root() -> Hash {
    Sha256::digest(b"").into()
}

/// One perfect-subtree node: the root of the subtree covering leaves
/// `[index·2^level, (index+1)·2^level)` and its hash.
///
/// [`Frontier::push`] returns these, bottom-up, for every node an appended
/// leaf completes (the leaf itself at level 0 first).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NodeRef {
    /// Height above the leaves (0 = leaf).
    pub level: u8,
    /// Position among the nodes of this level, counting from the left.
    pub index: u64,
    /// The node's Merkle Tree Hash.
    pub hash: Hash,
}

/// Largest power of two strictly smaller than `n` (RFC 9162 §2.1.1 `k`).
/// Requires `n >= 2`; returns 0 otherwise instead of panicking.
pub(crate) fn split_point(n: u64) -> u64 {
    if n < 2 {
        return 0;
    }
    1u64 << (63 - (n - 1).leading_zeros())
}

#[cfg(test)]
mod tests;
