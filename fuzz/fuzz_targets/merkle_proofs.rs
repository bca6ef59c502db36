//! RFC 9162 proof verification on arbitrary input, and honest proofs of a
//! small real tree against fuzz-chosen mutations.
//!
//! 1. Arbitrary (leaf, index, size, proof, root) into `verify_inclusion` and
//!    (size1, size2, proof, root1, root2) into `verify_consistency`: no
//!    panic, and whatever verifies has the exact length the tree shape needs.
//! 2. A tree of 1-300 distinct leaves built with `MemoryNodes`/`Frontier`:
//!    the frontier root equals `root_at`; the honest inclusion and consistency
//!    proofs of fuzz-chosen sizes verify; a fuzz-chosen mutation of proof,
//!    leaf, index or roots never does.
#![no_main]

use keyledger::merkle::{
    Hash, MemoryNodes, consistency_proof, consistency_proof_len, empty_root, inclusion_proof,
    inclusion_proof_len, leaf_hash, root_at, verify_consistency, verify_inclusion,
};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

/// A tree size or index: mostly small, sometimes near the u64 edges.
fn size(u: &mut Unstructured) -> Result<u64> {
    Ok(match u.int_in_range(0u8..=3)? {
        0 => u.int_in_range(0..=70)?,
        1 => u64::MAX - u.int_in_range(0..=70)?,
        2 => 1u64 << u.int_in_range(0..=63)?,
        _ => u.arbitrary()?,
    })
}

fn hash(u: &mut Unstructured) -> Result<Hash> {
    u.arbitrary()
}

fn hashes(u: &mut Unstructured) -> Result<Vec<Hash>> {
    let n = u.int_in_range(0..=70)?;
    (0..n).map(|_| hash(u)).collect()
}

fn arbitrary_proofs(u: &mut Unstructured) -> Result<()> {
    let (leaf, index, tree, proof, root) = (hash(u)?, size(u)?, size(u)?, hashes(u)?, hash(u)?);
    if verify_inclusion(&leaf, index, tree, &proof, &root).is_ok() {
        assert_eq!(inclusion_proof_len(index, tree), Some(proof.len()));
    }
    let (size1, size2, proof, root1, root2) = (size(u)?, size(u)?, hashes(u)?, hash(u)?, hash(u)?);
    if verify_consistency(size1, size2, &proof, &root1, &root2).is_ok() {
        assert_eq!(consistency_proof_len(size1, size2), Some(proof.len()));
        if size1 == 0 {
            assert_eq!(root1, empty_root());
        }
        if size1 == size2 {
            assert_eq!(root1, root2);
        }
    }
    Ok(())
}

/// The ways an honest proof is changed. Each must make verification fail.
#[derive(Debug)]
enum Mutation {
    FlipProofBit { at: usize, bit: u8 },
    FlipLeafBit(u8),
    FlipRoot1Bit(u8),
    FlipRoot2Bit(u8),
    Truncate(usize),
    Append(Hash),
    Swap(usize, usize),
    Replace(usize, Hash),
    OtherIndex(u64),
}

fn flip(h: &mut Hash, bit: u8) {
    h[usize::from(bit / 8)] ^= 1 << (bit % 8);
}

fn mutation(u: &mut Unstructured) -> Result<Mutation> {
    Ok(match u.int_in_range(0u8..=8)? {
        0 => Mutation::FlipProofBit {
            at: u.arbitrary()?,
            bit: u.arbitrary()?,
        },
        1 => Mutation::FlipLeafBit(u.arbitrary()?),
        2 => Mutation::FlipRoot1Bit(u.arbitrary()?),
        3 => Mutation::FlipRoot2Bit(u.arbitrary()?),
        4 => Mutation::Truncate(u.arbitrary()?),
        5 => Mutation::Append(hash(u)?),
        6 => Mutation::Swap(u.arbitrary()?, u.arbitrary()?),
        7 => Mutation::Replace(u.arbitrary()?, hash(u)?),
        _ => Mutation::OtherIndex(u.arbitrary()?),
    })
}

/// Applies `m` to a proof; false when it does not apply (then it is skipped).
fn mutate_proof(proof: &mut Vec<Hash>, m: &Mutation) -> bool {
    let n = proof.len();
    match *m {
        Mutation::FlipProofBit { at, bit } if n > 0 => flip(&mut proof[at % n], bit),
        Mutation::Truncate(keep) if n > 0 => proof.truncate(keep % n),
        Mutation::Append(extra) => proof.push(extra),
        Mutation::Swap(a, b) if n > 1 && proof[a % n] != proof[b % n] => proof.swap(a % n, b % n),
        Mutation::Replace(at, with) if n > 0 && proof[at % n] != with => proof[at % n] = with,
        _ => return false,
    }
    true
}

fn real_tree(u: &mut Unstructured) -> Result<()> {
    let n = u.int_in_range(1u64..=300)?;
    let salt: u64 = u.arbitrary()?;
    // Distinct entries, so distinct leaves (no two subtrees share a hash).
    let entries: Vec<Vec<u8>> = (0..n)
        .map(|i| [i.to_be_bytes(), salt.to_be_bytes()].concat())
        .collect();
    let leaves: Vec<Hash> = entries.iter().map(|e| leaf_hash(e)).collect();
    let (nodes, frontier) = MemoryNodes::from_leaves(leaves.iter().copied()).expect("small tree");
    assert_eq!(frontier.size(), n);
    assert_eq!(root_at(&nodes, n).expect("root"), frontier.root());

    // Inclusion of leaf `index` in the tree of `size` leaves.
    let size = u.int_in_range(1..=n)?;
    let index = u.int_in_range(0..=size - 1)?;
    let root = root_at(&nodes, size).expect("root at size");
    let proof = inclusion_proof(&nodes, index, size).expect("inclusion proof");
    let leaf = leaves[index as usize];
    assert_eq!(inclusion_proof_len(index, size), Some(proof.len()));
    verify_inclusion(&leaf, index, size, &proof, &root).expect("honest inclusion proof");
    let m = mutation(u)?;
    let (mut bad_proof, mut bad_leaf, mut bad_root, mut bad_index) =
        (proof.clone(), leaf, root, index);
    let applies = match m {
        Mutation::FlipLeafBit(bit) => {
            flip(&mut bad_leaf, bit);
            true
        }
        Mutation::FlipRoot1Bit(bit) | Mutation::FlipRoot2Bit(bit) => {
            flip(&mut bad_root, bit);
            true
        }
        // Another position of the same tree (the size is bound to the root
        // by whoever signed it, so changing the size alone is not tampering).
        Mutation::OtherIndex(other) => {
            bad_index = other;
            other != index
        }
        _ => mutate_proof(&mut bad_proof, &m),
    };
    if applies {
        assert!(
            verify_inclusion(&bad_leaf, bad_index, size, &bad_proof, &bad_root).is_err(),
            "mutated inclusion proof verified: n={n} index={index} size={size} {m:?}"
        );
    }

    // Consistency from size1 to size2.
    let size2 = u.int_in_range(0..=n)?;
    let size1 = u.int_in_range(0..=size2)?;
    let (root1, root2) = (
        root_at(&nodes, size1).expect("root1"),
        root_at(&nodes, size2).expect("root2"),
    );
    let proof = consistency_proof(&nodes, size1, size2).expect("consistency proof");
    assert_eq!(consistency_proof_len(size1, size2), Some(proof.len()));
    verify_consistency(size1, size2, &proof, &root1, &root2).expect("honest consistency proof");
    let m = mutation(u)?;
    let (mut bad_proof, mut bad_root1, mut bad_root2) = (proof.clone(), root1, root2);
    let applies = match m {
        Mutation::FlipRoot1Bit(bit) => {
            flip(&mut bad_root1, bit);
            true
        }
        // Every tree extends the empty tree: with size1 = 0, root2 is free.
        Mutation::FlipRoot2Bit(bit) | Mutation::FlipLeafBit(bit) => {
            flip(&mut bad_root2, bit);
            size1 != 0
        }
        Mutation::OtherIndex(_) => false,
        _ => mutate_proof(&mut bad_proof, &m),
    };
    if applies {
        assert!(
            verify_consistency(size1, size2, &bad_proof, &bad_root1, &bad_root2).is_err(),
            "mutated consistency proof verified: n={n} size1={size1} size2={size2} {m:?}"
        );
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let first = u.arbitrary::<bool>().unwrap_or(false);
    let _ = if first {
        real_tree(&mut u)
    } else {
        arbitrary_proofs(&mut u)
    };
});
