//! Proof generation from stored perfect-subtree hashes (RFC 9162 §2.1.3.1, §2.1.4.1).
//!
//! Every node the RFC recursion needs is either a perfect subtree (one stored
//! node) or a right-edge range `D[a:b]` whose hash is composed from the
//! `popcount(b - a)` perfect subtrees tiling it. Each proof reads `O(log n)`
//! stored nodes and never touches the leaves.

use super::{
    Frontier, Hash, NodeRef, ProofError, empty_root, frontier_peaks, node_hash, split_point,
};

/// Read access to the stored perfect-subtree hashes of an append-only tree.
pub trait NodeSource {
    /// The storage error type.
    type Error;
    /// Hash of the perfect subtree at (level, index); only ever asked for
    /// nodes that are complete at the tree size in question.
    ///
    /// # Errors
    /// Whatever the storage reports (missing node, I/O, corruption).
    fn node(&self, level: u8, index: u64) -> Result<Hash, Self::Error>;
}

impl<S: NodeSource + ?Sized> NodeSource for &S {
    type Error = S::Error;
    fn node(&self, level: u8, index: u64) -> Result<Hash, Self::Error> {
        (**self).node(level, index)
    }
}

/// MTH(D[lo:hi]) for a range whose start is aligned to the largest power of
/// two not below its length (true of every range RFC 9162's recursion
/// produces), composed from the perfect subtrees tiling it, right to left.
fn range_hash<S: NodeSource>(src: &S, lo: u64, hi: u64) -> Result<Hash, ProofError<S::Error>> {
    let len = hi.saturating_sub(lo);
    if len == 0 {
        return Ok(empty_root());
    }
    let mut end = hi;
    let mut acc: Option<Hash> = None;
    for level in 0u8..64 {
        if (len >> level) & 1 == 0 {
            continue;
        }
        let start = end - (1u64 << level);
        let h = src
            .node(level, start >> level)
            .map_err(ProofError::Source)?;
        acc = Some(match acc {
            None => h,
            Some(right) => node_hash(&h, &right),
        });
        end = start;
    }
    Ok(acc.unwrap_or_else(empty_root))
}

/// RFC 9162 §2.1.1 Merkle Tree Hash of the first `size` leaves, composed
/// from the `popcount(size)` stored peaks ([`empty_root`] for 0).
///
/// # Errors
/// [`ProofError::Source`] if a node cannot be read.
pub fn root_at<S: NodeSource>(src: &S, size: u64) -> Result<Hash, ProofError<S::Error>> {
    range_hash(src, 0, size)
}

/// Restores the [`Frontier`] of a tree of `size` leaves by reading its
/// `popcount(size)` peaks from storage.
///
/// # Errors
/// [`ProofError::Source`] if a node cannot be read.
pub fn restore_frontier<S: NodeSource>(
    src: &S,
    size: u64,
) -> Result<Frontier, ProofError<S::Error>> {
    let peaks = frontier_peaks(size)
        .map(|(level, index)| src.node(level, index).map_err(ProofError::Source))
        .collect::<Result<Vec<_>, _>>()?;
    // The count matches by construction of `frontier_peaks`.
    Ok(Frontier::from_peaks_unchecked(size, peaks))
}

/// RFC 9162 §2.1.3.1 inclusion proof `PATH(index, D[size])`, leaf-side first.
///
/// # Errors
/// [`ProofError::IndexOutOfRange`] if `index >= size`, [`ProofError::Source`]
/// if a node cannot be read.
pub fn inclusion_proof<S: NodeSource>(
    src: &S,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, ProofError<S::Error>> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let mut top_down = Vec::with_capacity(64);
    let (mut lo, mut hi) = (0u64, size);
    while hi - lo > 1 {
        let k = split_point(hi - lo);
        if index - lo < k {
            // PATH(m, D[0:k]) : MTH(D[k:n])
            top_down.push(range_hash(src, lo + k, hi)?);
            hi = lo + k;
        } else {
            // PATH(m - k, D[k:n]) : MTH(D[0:k])
            top_down.push(range_hash(src, lo, lo + k)?);
            lo += k;
        }
    }
    top_down.reverse();
    Ok(top_down)
}

/// RFC 9162 §2.1.4.1 consistency proof `PROOF(old_size, D[new_size])`.
/// Empty when `old_size == 0` or `old_size == new_size` (as transparency-dev).
///
/// # Errors
/// [`ProofError::Size1GreaterThanSize2`] if `old_size > new_size`,
/// [`ProofError::Source`] if a node cannot be read.
pub fn consistency_proof<S: NodeSource>(
    src: &S,
    old_size: u64,
    new_size: u64,
) -> Result<Vec<Hash>, ProofError<S::Error>> {
    if old_size > new_size {
        return Err(ProofError::Size1GreaterThanSize2 {
            size1: old_size,
            size2: new_size,
        });
    }
    if old_size == 0 || old_size == new_size {
        return Ok(Vec::new());
    }
    // SUBPROOF(m, D[lo:hi], b), unrolled; `m` is relative to `lo`.
    let mut top_down = Vec::with_capacity(65);
    let (mut lo, mut hi, mut m, mut b) = (0u64, new_size, old_size, true);
    loop {
        let n = hi - lo;
        if m == n {
            // SUBPROOF(m, D[m], true) = {}; SUBPROOF(m, D[m], false) = {MTH(D[m])}.
            if !b {
                top_down.push(range_hash(src, lo, hi)?);
            }
            break;
        }
        let k = split_point(n);
        if k == 0 {
            break; // unreachable: m < n implies n >= 2
        }
        if m <= k {
            // SUBPROOF(m, D[0:k], b) : MTH(D[k:n])
            top_down.push(range_hash(src, lo + k, hi)?);
            hi = lo + k;
        } else {
            // SUBPROOF(m - k, D[k:n], false) : MTH(D[0:k])
            top_down.push(range_hash(src, lo, lo + k)?);
            lo += k;
            m -= k;
            b = false;
        }
    }
    top_down.reverse();
    Ok(top_down)
}

/// Position of node `(level, index)` in an append-only node file where, after
/// each leaf push, the nodes [`Frontier::push`] returns are appended in order
/// (MMR post-order). With `m = (index+1)·2^level − 1` leaves preceding the
/// node's last leaf, the position is `2m − popcount(m) + level`.
///
/// Saturates to `u64::MAX` for nodes that cannot exist in a tree of at most
/// `2^63` leaves; see [`checked_postorder_position`].
#[must_use]
pub fn postorder_position(level: u8, index: u64) -> u64 {
    checked_postorder_position(level, index).unwrap_or(u64::MAX)
}

/// [`postorder_position`], or `None` when the position does not fit in a
/// `u64` (level ≥ 64 or a node beyond a tree of `2^63` leaves).
#[must_use]
pub fn checked_postorder_position(level: u8, index: u64) -> Option<u64> {
    let end = index.checked_add(1)?;
    let end = end.checked_mul(1u64.checked_shl(u32::from(level))?)?;
    let m = end - 1;
    m.checked_mul(2)?
        .checked_sub(u64::from(m.count_ones()))?
        .checked_add(u64::from(level))
}

/// Number of nodes in the post-order node file after `size` leaves:
/// `2·size − popcount(size)` (saturating).
#[must_use]
pub fn stored_node_count(size: u64) -> u64 {
    size.saturating_mul(2)
        .saturating_sub(u64::from(size.count_ones()))
}

/// Why [`MemoryNodes`] refused a node or could not serve one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MemoryNodesError {
    /// The requested node is not stored.
    #[error("node (level {level}, index {index}) is not stored")]
    Missing {
        /// Requested level.
        level: u8,
        /// Requested index.
        index: u64,
    },
    /// Nodes must be inserted in append order: `index` must equal the number
    /// of nodes already stored at that level.
    #[error("node (level {level}, index {index}) inserted out of order, expected index {expected}")]
    OutOfOrder {
        /// Level of the rejected node.
        level: u8,
        /// Index of the rejected node.
        index: u64,
        /// The next index this level accepts.
        expected: u64,
    },
}

/// In-memory [`NodeSource`]: one `Vec` of hashes per level, fed with the
/// output of [`Frontier::push`]. For tests, benchmarks and small trees.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemoryNodes {
    levels: Vec<Vec<Hash>>,
}

impl MemoryNodes {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds the store and the frontier for `leaves` (leaf hashes).
    ///
    /// # Errors
    /// [`super::FrontierError::Full`] only for more than `u64::MAX` leaves.
    pub fn from_leaves(
        leaves: impl IntoIterator<Item = Hash>,
    ) -> Result<(Self, Frontier), super::FrontierError> {
        let mut nodes = Self::new();
        let mut frontier = Frontier::new();
        for leaf in leaves {
            frontier.push_with(leaf, |n| nodes.store(n))?;
        }
        Ok((nodes, frontier))
    }

    /// Stores one node; it must be the next node of its level.
    ///
    /// # Errors
    /// [`MemoryNodesError::OutOfOrder`] if `node.index` is not the next index.
    pub fn insert(&mut self, node: NodeRef) -> Result<(), MemoryNodesError> {
        let level = usize::from(node.level);
        let expected = self.levels.get(level).map_or(0, |v| v.len() as u64);
        if node.index != expected {
            return Err(MemoryNodesError::OutOfOrder {
                level: node.level,
                index: node.index,
                expected,
            });
        }
        self.store(node);
        Ok(())
    }

    /// Stores every node of `nodes` with [`MemoryNodes::insert`].
    ///
    /// # Errors
    /// The first [`MemoryNodesError::OutOfOrder`]; earlier nodes stay stored.
    pub fn extend(
        &mut self,
        nodes: impl IntoIterator<Item = NodeRef>,
    ) -> Result<(), MemoryNodesError> {
        nodes.into_iter().try_for_each(|n| self.insert(n))
    }

    /// Number of leaves stored (nodes at level 0).
    #[must_use]
    pub fn leaf_count(&self) -> u64 {
        self.levels.first().map_or(0, |v| v.len() as u64)
    }

    fn store(&mut self, node: NodeRef) {
        let level = usize::from(node.level);
        if self.levels.len() <= level {
            self.levels.resize_with(level + 1, Vec::new);
        }
        if let Some(v) = self.levels.get_mut(level) {
            v.push(node.hash);
        }
    }
}

impl NodeSource for MemoryNodes {
    type Error = MemoryNodesError;

    fn node(&self, level: u8, index: u64) -> Result<Hash, Self::Error> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.levels.get(usize::from(level))?.get(i))
            .copied()
            .ok_or(MemoryNodesError::Missing { level, index })
    }
}
