//! The compact right edge ("frontier") of an append-only RFC 9162 tree.

use super::{Hash, NodeRef, empty_root, node_hash};

/// Why a [`Frontier`] could not be built or extended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrontierError {
    /// The tree already holds `u64::MAX` leaves; no further leaf fits.
    #[error("tree is full: it already holds u64::MAX leaves")]
    Full,
    /// [`Frontier::from_nodes`] was given the wrong number of peak hashes:
    /// a tree of size `n` has exactly `popcount(n)` peaks.
    #[error("a tree of size {size} has {expected} peaks, got {got}")]
    PeakCountMismatch {
        /// Tree size being restored.
        size: u64,
        /// `popcount(size)`.
        expected: usize,
        /// Number of hashes supplied.
        got: usize,
    },
}

/// Positions `(level, index)` of the perfect subtrees ("peaks") that make up
/// a tree of `size` leaves, from left (largest) to right (smallest).
///
/// These are the nodes to read back from storage to restore a [`Frontier`]
/// with [`Frontier::from_nodes`]. RFC 9162 §2.1.1's MTH of `size` leaves is
/// the right fold `H(p0, H(p1, … H(pk-1, pk)))` of these peaks.
pub fn frontier_peaks(size: u64) -> impl Iterator<Item = (u8, u64)> {
    (0u8..64)
        .rev()
        .filter(move |&level| (size >> level) & 1 == 1)
        .map(move |level| (level, (size >> level) - 1))
}

/// The compact right edge of an append-only RFC 9162 Merkle tree.
///
/// Holds the tree size and one hash per set bit of the size (the perfect
/// subtrees "peaks" of [`frontier_peaks`]), i.e. at most 64 hashes, so the
/// root of an arbitrarily long stream of leaves is computed in flat memory.
/// [`Frontier::root`] is the RFC 9162 §2.1.1 Merkle Tree Hash of all leaves
/// appended so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// Peak hashes from left (highest level) to right (lowest level).
    peaks: Vec<Hash>,
}

impl Frontier {
    /// The frontier of the empty tree.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Restores the frontier of a tree of `size` leaves from its peak hashes,
    /// given left to right in the order of [`frontier_peaks`]`(size)`.
    ///
    /// # Errors
    /// [`FrontierError::PeakCountMismatch`] unless `peaks.len() == popcount(size)`.
    pub fn from_nodes(size: u64, peaks: Vec<Hash>) -> Result<Self, FrontierError> {
        let expected = size.count_ones() as usize;
        if peaks.len() != expected {
            return Err(FrontierError::PeakCountMismatch {
                size,
                expected,
                got: peaks.len(),
            });
        }
        Ok(Self { size, peaks })
    }

    /// Restores from peaks already known to number `popcount(size)`.
    pub(super) fn from_peaks_unchecked(size: u64, peaks: Vec<Hash>) -> Self {
        Self { size, peaks }
    }

    /// Number of leaves appended so far.
    #[must_use]
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The peak hashes, left to right (see [`frontier_peaks`] for positions).
    #[must_use]
    pub fn peaks(&self) -> &[Hash] {
        &self.peaks
    }

    /// RFC 9162 §2.1.1 Merkle Tree Hash of the leaves appended so far
    /// ([`empty_root`] for the empty tree).
    #[must_use]
    pub fn root(&self) -> Hash {
        let mut it = self.peaks.iter().rev();
        match it.next() {
            None => empty_root(),
            Some(last) => it.fold(*last, |acc, peak| node_hash(peak, &acc)),
        }
    }

    /// Appends a leaf hash (already `leaf_hash(entry)`) and returns every
    /// perfect-subtree node it completes, bottom-up: the leaf itself at
    /// level 0, then each newly completed parent.
    ///
    /// Returns an empty `Vec` and leaves the frontier unchanged if the tree is
    /// full (`u64::MAX` leaves); use [`Frontier::try_push`] to get an error.
    pub fn push(&mut self, leaf: Hash) -> Vec<NodeRef> {
        self.try_push(leaf).unwrap_or_default()
    }

    /// Like [`Frontier::push`] but reports a full tree as an error.
    ///
    /// # Errors
    /// [`FrontierError::Full`] if the tree already holds `u64::MAX` leaves.
    pub fn try_push(&mut self, leaf: Hash) -> Result<Vec<NodeRef>, FrontierError> {
        let mut out = Vec::with_capacity(1 + self.size.trailing_ones() as usize);
        self.push_with(leaf, |node| out.push(node))?;
        Ok(out)
    }

    /// Appends a leaf hash without reporting completed nodes (the streaming
    /// verifier's fast path: no allocation).
    ///
    /// # Errors
    /// [`FrontierError::Full`] if the tree already holds `u64::MAX` leaves.
    pub fn append(&mut self, leaf: Hash) -> Result<(), FrontierError> {
        self.push_with(leaf, |_| {})
    }

    /// Appends a leaf hash, calling `on_node` for each completed node in the
    /// same order [`Frontier::push`] returns them.
    ///
    /// # Errors
    /// [`FrontierError::Full`] if the tree already holds `u64::MAX` leaves.
    pub fn push_with(
        &mut self,
        leaf: Hash,
        mut on_node: impl FnMut(NodeRef),
    ) -> Result<(), FrontierError> {
        let old = self.size;
        let new_size = old.checked_add(1).ok_or(FrontierError::Full)?;
        let mut hash = leaf;
        let mut level: u8 = 0;
        on_node(NodeRef {
            level,
            index: old,
            hash,
        });
        // Every set low bit of `old` is a pending left sibling; `old` has a
        // zero bit below 64 (it is < u64::MAX), so `level` stays < 64.
        while level < 63 && (old >> level) & 1 == 1 {
            let Some(left) = self.peaks.pop() else {
                break;
            };
            hash = node_hash(&left, &hash);
            level += 1;
            on_node(NodeRef {
                level,
                index: old >> level,
                hash,
            });
        }
        self.peaks.push(hash);
        self.size = new_size;
        Ok(())
    }
}
