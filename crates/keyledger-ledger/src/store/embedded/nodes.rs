//! The derived nodes file: every perfect-subtree hash, 32 bytes each, at
//! `merkle::postorder_position(level, index) * 32`, i.e. in exactly the
//! order `Frontier::push` reports them.

use std::fs::File;
use std::os::unix::fs::FileExt;

use crate::store::StoreError;
use keyledger_core::merkle::{self, Frontier};

fn too_large() -> StoreError {
    StoreError::Backend("tree position does not fit in a file offset".into())
}

/// Byte length of the nodes file of a tree of `size` leaves (equivalently,
/// where the nodes of leaf `size` start).
pub(crate) fn byte_offset(size: u64) -> Result<u64, StoreError> {
    merkle::checked_postorder_position(0, size)
        .and_then(|p| p.checked_mul(32))
        .ok_or_else(too_large)
}

/// Byte offset of node (`level`, `index`).
pub(crate) fn node_offset(level: u8, index: u64) -> Result<u64, StoreError> {
    merkle::checked_postorder_position(level, index)
        .and_then(|p| p.checked_mul(32))
        .ok_or_else(too_large)
}

/// Restores the frontier of the first `size` leaves from the stored peaks;
/// `None` if the nodes file is too short to hold them.
pub(crate) fn load_frontier(nodes: &File, size: u64) -> Result<Option<Frontier>, StoreError> {
    if nodes.metadata()?.len() < byte_offset(size)? {
        return Ok(None);
    }
    let mut peaks = Vec::new();
    for (level, index) in merkle::frontier_peaks(size) {
        let mut hash = [0u8; 32];
        nodes.read_exact_at(&mut hash, node_offset(level, index)?)?;
        peaks.push(hash);
    }
    Ok(Frontier::from_nodes(size, peaks).ok())
}
