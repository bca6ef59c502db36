//! Property tests of `keyledger_core::merkle` against ct-merkle, an independent
//! RFC 6962/9162 implementation: roots, inclusion and consistency proofs
//! must be byte-identical, verify both ways, and every mutation must fail.

use ct_merkle::digest::consts::U32;
use ct_merkle::digest::{FixedOutput, HashMarker, Output, OutputSizeUser, Update};
use ct_merkle::mem_backed_tree::MemoryBackedTree;
use ct_merkle::{ConsistencyProof, InclusionProof};
use keyledger_core::merkle::{
    Frontier, Hash, MemoryNodes, consistency_proof, consistency_proof_len, inclusion_proof,
    inclusion_proof_len, leaf_hash, postorder_position, root_at, stored_node_count,
    verify_consistency, verify_inclusion,
};
use proptest::prelude::*;

/// sha2 0.10's SHA-256 behind the digest 0.11 traits ct-merkle 0.3 needs.
#[derive(Clone, Default)]
struct Sha256(sha2::Sha256);

impl HashMarker for Sha256 {}
impl OutputSizeUser for Sha256 {
    type OutputSize = U32;
}
impl Update for Sha256 {
    fn update(&mut self, data: &[u8]) {
        sha2::Digest::update(&mut self.0, data);
    }
}
impl FixedOutput for Sha256 {
    fn finalize_into(self, out: &mut Output<Self>) {
        out.copy_from_slice(&sha2::Digest::finalize(self.0));
    }
}

type Reference = MemoryBackedTree<Sha256, Vec<u8>>;

struct Trees {
    entries: Vec<Vec<u8>>,
    reference: Reference,
    nodes: MemoryNodes,
    frontier: Frontier,
}

fn build(entries: Vec<Vec<u8>>) -> Trees {
    let mut reference = Reference::new();
    for e in &entries {
        reference.push(e.clone());
    }
    let (nodes, frontier) = MemoryNodes::from_leaves(entries.iter().map(|e| leaf_hash(e))).unwrap();
    Trees {
        entries,
        reference,
        nodes,
        frontier,
    }
}

fn flat(proof: &[Hash]) -> Vec<u8> {
    proof.concat()
}

fn entries(max: usize) -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec(prop::collection::vec(any::<u8>(), 0..24), 0..max)
}

/// Entries made distinct by an index prefix, so that no two leaves (and
/// hence no sibling hashes) coincide and every mutation must be detected.
fn unique_entries(max: usize) -> impl Strategy<Value = Vec<Vec<u8>>> {
    entries(max).prop_map(|v| {
        v.into_iter()
            .enumerate()
            .map(|(i, e)| [(i as u32).to_be_bytes().as_slice(), &e].concat())
            .collect()
    })
}

/// Up to `n` indices in `0..len`, always including the ends.
fn sample(len: u64, n: u64, seed: u64) -> Vec<u64> {
    if len <= n {
        return (0..len).collect();
    }
    let mut v: Vec<u64> = (0..n)
        .map(|i| (seed.wrapping_mul(2_654_435_761).wrapping_add(i * 7919)) % len)
        .collect();
    v.extend([0, len - 1]);
    v
}

/// Every single mutation of a valid inclusion proof must fail.
fn inclusion_mutations_fail(leaf: &Hash, index: u64, size: u64, proof: &[Hash], root: &Hash) {
    assert!(verify_inclusion(leaf, index, size, proof, root).is_ok());
    for i in 0..proof.len() {
        for bit in [0usize, 77, 255] {
            let mut p = proof.to_vec();
            p[i][bit / 8] ^= 1 << (bit % 8);
            assert!(verify_inclusion(leaf, index, size, &p, root).is_err());
        }
        let mut dropped = proof.to_vec();
        dropped.remove(i);
        assert!(verify_inclusion(leaf, index, size, &dropped, root).is_err());
    }
    let mut longer = proof.to_vec();
    longer.push(*root);
    assert!(verify_inclusion(leaf, index, size, &longer, root).is_err());
    let mut longer = proof.to_vec();
    longer.insert(0, *leaf);
    assert!(verify_inclusion(leaf, index, size, &longer, root).is_err());
    let mut bad_root = *root;
    bad_root[31] ^= 0x40;
    assert!(verify_inclusion(leaf, index, size, proof, &bad_root).is_err());
    let mut bad_leaf = *leaf;
    bad_leaf[0] ^= 1;
    assert!(verify_inclusion(&bad_leaf, index, size, proof, root).is_err());
    for other in [index ^ 1, index + 1, index.wrapping_sub(1), size] {
        if other != index {
            assert!(
                verify_inclusion(leaf, other, size, proof, root).is_err(),
                "index {other}"
            );
        }
    }
    // A proof for one size can be a valid proof for another size of the
    // same shape (RFC 9162 binds the size only through the root), so only
    // sizes whose proof shape differs must fail.
    for other in [size + 1, size - 1, size * 2, index] {
        if inclusion_proof_len(index, other) != Some(proof.len()) {
            assert!(
                verify_inclusion(leaf, index, other, proof, root).is_err(),
                "size {other}"
            );
        }
    }
}

/// Every single mutation of a valid consistency proof must fail.
fn consistency_mutations_fail(m: u64, n: u64, proof: &[Hash], r1: &Hash, r2: &Hash) {
    assert!(verify_consistency(m, n, proof, r1, r2).is_ok());
    for i in 0..proof.len() {
        for bit in [3usize, 128, 250] {
            let mut p = proof.to_vec();
            p[i][bit / 8] ^= 1 << (bit % 8);
            assert!(verify_consistency(m, n, &p, r1, r2).is_err());
        }
        let mut dropped = proof.to_vec();
        dropped.remove(i);
        assert!(verify_consistency(m, n, &dropped, r1, r2).is_err());
    }
    let mut longer = proof.to_vec();
    longer.push(*r2);
    assert!(verify_consistency(m, n, &longer, r1, r2).is_err());
    let mut longer = proof.to_vec();
    longer.insert(0, *r1);
    assert!(verify_consistency(m, n, &longer, r1, r2).is_err());
    let (mut b1, mut b2) = (*r1, *r2);
    b1[5] ^= 2;
    b2[9] ^= 4;
    assert!(verify_consistency(m, n, proof, &b1, r2).is_err());
    assert!(verify_consistency(m, n, proof, r1, &b2).is_err());
    assert!(verify_consistency(m, n, proof, r2, r1).is_err() || r1 == r2);
    // As for inclusion, only size changes that change the proof shape must fail.
    for (a, b) in [
        (m + 1, n),
        (m - 1, n),
        (m, n + 1),
        (m, n - 1),
        (m ^ 2, n),
        (n, m),
    ] {
        if (a, b) != (m, n) && consistency_proof_len(a, b) != Some(proof.len()) {
            assert!(
                verify_consistency(a, b, proof, r1, r2).is_err(),
                "sizes {a} {b}"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn roots_match_reference(entries in entries(400)) {
        let t = build(entries);
        prop_assert_eq!(t.frontier.size(), t.entries.len() as u64);
        let reference_root = t.reference.root();
        prop_assert_eq!(&t.frontier.root()[..], &reference_root.as_bytes()[..]);
        prop_assert_eq!(root_at(&t.nodes, t.frontier.size()).unwrap(), t.frontier.root());
    }

    #[test]
    fn inclusion_proofs_match_reference(entries in unique_entries(2000), seed in any::<u64>()) {
        prop_assume!(!entries.is_empty());
        let t = build(entries);
        let size = t.frontier.size();
        let root = t.frontier.root();
        let ref_root = t.reference.root();
        for (k, idx) in sample(size, 40, seed).into_iter().enumerate() {
            let ours = inclusion_proof(&t.nodes, idx, size).unwrap();
            let theirs = t.reference.prove_inclusion(idx as usize);
            prop_assert_eq!(flat(&ours), theirs.as_bytes().to_vec(), "index {} of {}", idx, size);
            let entry = &t.entries[idx as usize];
            let leaf = leaf_hash(entry);
            prop_assert!(verify_inclusion(&leaf, idx, size, &ours, &root).is_ok());
            let as_ref = InclusionProof::<Sha256>::try_from_bytes(flat(&ours)).unwrap();
            prop_assert!(ref_root.verify_inclusion(entry, idx, &as_ref).is_ok());
            if k < 4 {
                inclusion_mutations_fail(&leaf, idx, size, &ours, &root);
            }
        }
    }

    #[test]
    fn consistency_proofs_match_reference(entries in unique_entries(2000), seed in any::<u64>()) {
        prop_assume!(entries.len() >= 2);
        let t = build(entries);
        let n = t.frontier.size();
        let r2 = t.frontier.root();
        for (k, m) in sample(n, 40, seed).into_iter().filter(|&m| m > 0).enumerate() {
            let ours = consistency_proof(&t.nodes, m, n).unwrap();
            let r1 = root_at(&t.nodes, m).unwrap();
            prop_assert!(verify_consistency(m, n, &ours, &r1, &r2).is_ok());
            if m == n {
                prop_assert!(ours.is_empty());
                continue;
            }
            let theirs = t.reference.prove_consistency((n - m) as usize);
            prop_assert_eq!(flat(&ours), theirs.as_bytes().to_vec(), "{} -> {}", m, n);
            let old = ct_merkle::RootHash::<Sha256>::new(r1.into(), m);
            let new = ct_merkle::RootHash::<Sha256>::new(r2.into(), n);
            let as_ref = ConsistencyProof::<Sha256>::try_from_bytes(flat(&ours)).unwrap();
            prop_assert!(new.verify_consistency(&old, &as_ref).is_ok());
            if k < 4 {
                consistency_mutations_fail(m, n, &ours, &r1, &r2);
            }
        }
    }

    #[test]
    fn postorder_position_matches_push_order(count in 0u64..3000) {
        let mut f = Frontier::new();
        let mut pos = 0u64;
        for i in 0..count {
            for node in f.push(leaf_hash(&i.to_be_bytes())) {
                prop_assert_eq!(postorder_position(node.level, node.index), pos);
                pos += 1;
            }
        }
        prop_assert_eq!(stored_node_count(count), pos);
    }

    #[test]
    fn verifiers_never_panic(
        index in any::<u64>(),
        size in any::<u64>(),
        size2 in any::<u64>(),
        proof in prop::collection::vec(any::<[u8; 32]>(), 0..70),
        root in any::<[u8; 32]>(),
    ) {
        let _ = verify_inclusion(&root, index, size, &proof, &root);
        let _ = verify_inclusion(&root, index % size.max(1), size, &proof, &root);
        let _ = verify_consistency(size, size2, &proof, &root, &root);
        let _ = verify_consistency(size.min(size2), size.max(size2), &proof, &root, &root);
    }
}
