//! Unit tests: small trees checked exhaustively against a naive recursive
//! transcription of RFC 9162 §2.1.1, §2.1.3.1 and §2.1.4.1.

use core::cell::Cell;

use super::*;

/// The 8 entries of the RFC 6962 / transparency-dev reference tree.
const RFC_ENTRIES: [&[u8]; 8] = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
];

/// Known roots of the reference tree for sizes 1..=8.
const RFC_ROOTS: [&str; 8] = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

fn mth(d: &[Hash]) -> Hash {
    match d.len() {
        0 => empty_root(),
        1 => d[0],
        n => {
            let k = split_point(n as u64) as usize;
            node_hash(&mth(&d[..k]), &mth(&d[k..]))
        }
    }
}

fn naive_path(m: usize, d: &[Hash]) -> Vec<Hash> {
    if d.len() <= 1 {
        return Vec::new();
    }
    let k = split_point(d.len() as u64) as usize;
    if m < k {
        let mut p = naive_path(m, &d[..k]);
        p.push(mth(&d[k..]));
        p
    } else {
        let mut p = naive_path(m - k, &d[k..]);
        p.push(mth(&d[..k]));
        p
    }
}

fn naive_subproof(m: usize, d: &[Hash], b: bool) -> Vec<Hash> {
    let n = d.len();
    if m == n {
        return if b { Vec::new() } else { vec![mth(d)] };
    }
    let k = split_point(n as u64) as usize;
    if m <= k {
        let mut p = naive_subproof(m, &d[..k], b);
        p.push(mth(&d[k..]));
        p
    } else {
        let mut p = naive_subproof(m - k, &d[k..], false);
        p.push(mth(&d[..k]));
        p
    }
}

fn naive_proof(m: usize, d: &[Hash]) -> Vec<Hash> {
    if m == 0 || m == d.len() {
        return Vec::new();
    }
    naive_subproof(m, d, true)
}

fn leaves(n: usize) -> Vec<Hash> {
    (0..n as u64).map(|i| leaf_hash(&i.to_be_bytes())).collect()
}

/// Counts reads so the O(log n) bound is checked.
struct Counting<'a> {
    inner: &'a MemoryNodes,
    reads: Cell<usize>,
}

impl NodeSource for Counting<'_> {
    type Error = MemoryNodesError;
    fn node(&self, level: u8, index: u64) -> Result<Hash, Self::Error> {
        self.reads.set(self.reads.get() + 1);
        self.inner.node(level, index)
    }
}

fn bit_len(n: u64) -> usize {
    (64 - n.leading_zeros()) as usize
}

#[test]
fn hashing_primitives() {
    assert_eq!(
        hex::encode(empty_root()),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(leaf_hash(b""), {
        let mut h = [0u8; 32];
        h.copy_from_slice(&hex::decode(RFC_ROOTS[0]).unwrap());
        h
    });
}

#[test]
fn rfc_reference_roots() {
    let d: Vec<Hash> = RFC_ENTRIES.iter().map(|e| leaf_hash(e)).collect();
    let mut f = Frontier::new();
    assert_eq!(f.root(), empty_root());
    for (i, leaf) in d.iter().enumerate() {
        f.push(*leaf);
        assert_eq!(hex::encode(f.root()), RFC_ROOTS[i], "size {}", i + 1);
        assert_eq!(f.root(), mth(&d[..=i]));
    }
}

#[test]
fn exhaustive_small_trees() {
    for n in 0..=17usize {
        let d = leaves(n);
        let (nodes, frontier) = MemoryNodes::from_leaves(d.iter().copied()).unwrap();
        assert_eq!(frontier.size(), n as u64);
        assert_eq!(frontier.root(), mth(&d));
        let src = Counting {
            inner: &nodes,
            reads: Cell::new(0),
        };
        for size in 0..=n {
            let root = mth(&d[..size]);
            assert_eq!(
                root_at(&nodes, size as u64).unwrap(),
                root,
                "root_at {size}"
            );
            for m in 0..size {
                src.reads.set(0);
                let p = inclusion_proof(&src, m as u64, size as u64).unwrap();
                assert!(src.reads.get() <= 2 * bit_len(size as u64), "reads {n} {m}");
                assert_eq!(p, naive_path(m, &d[..size]), "PATH({m}, D[{size}])");
                assert_eq!(Some(p.len()), inclusion_proof_len(m as u64, size as u64));
                verify_inclusion(&d[m], m as u64, size as u64, &p, &root).unwrap();
            }
            assert!(matches!(
                inclusion_proof(&nodes, size as u64, size as u64),
                Err(ProofError::IndexOutOfRange { .. })
            ));
            for old in 0..=size {
                src.reads.set(0);
                let p = consistency_proof(&src, old as u64, size as u64).unwrap();
                assert!(src.reads.get() <= 2 * bit_len(size as u64) + 1);
                assert_eq!(p, naive_proof(old, &d[..size]), "PROOF({old}, D[{size}])");
                assert_eq!(
                    Some(p.len()),
                    consistency_proof_len(old as u64, size as u64)
                );
                let old_root = mth(&d[..old]);
                verify_consistency(old as u64, size as u64, &p, &old_root, &root).unwrap();
            }
        }
    }
}

#[test]
fn mutations_fail_small_trees() {
    let d = leaves(13);
    let (nodes, _) = MemoryNodes::from_leaves(d.iter().copied()).unwrap();
    for size in 1..=13u64 {
        let root = root_at(&nodes, size).unwrap();
        for m in 0..size {
            let p = inclusion_proof(&nodes, m, size).unwrap();
            let leaf = d[m as usize];
            for i in 0..p.len() {
                let mut q = p.clone();
                q[i][7] ^= 0x10;
                assert!(verify_inclusion(&leaf, m, size, &q, &root).is_err());
            }
            let mut longer = p.clone();
            longer.push(root);
            assert!(verify_inclusion(&leaf, m, size, &longer, &root).is_err());
            if !p.is_empty() {
                assert!(verify_inclusion(&leaf, m, size, &p[1..], &root).is_err());
            }
            if inclusion_proof_len(m, size + 1) != Some(p.len()) {
                assert!(verify_inclusion(&leaf, m, size + 1, &p, &root).is_err());
            }
            assert!(verify_inclusion(&leaf, m ^ 1, size, &p, &root).is_err());
            let mut bad_root = root;
            bad_root[0] ^= 1;
            assert!(verify_inclusion(&leaf, m, size, &p, &bad_root).is_err());
        }
        for old in 1..size {
            let p = consistency_proof(&nodes, old, size).unwrap();
            let r1 = root_at(&nodes, old).unwrap();
            for i in 0..p.len() {
                let mut q = p.clone();
                q[i][31] ^= 0x80;
                assert!(verify_consistency(old, size, &q, &r1, &root).is_err());
            }
            assert!(verify_consistency(old, size, &p[..p.len() - 1], &r1, &root).is_err());
            assert!(verify_consistency(old, size, &[], &r1, &root).is_err());
            assert!(verify_consistency(old, size, &p, &root, &r1).is_err());
            assert!(verify_consistency(size, old, &p, &root, &r1).is_err());
        }
    }
}

#[test]
fn postorder_matches_push_order() {
    let mut f = Frontier::new();
    let mut pos = 0u64;
    for i in 0..300u64 {
        for node in f.push(leaf_hash(&i.to_le_bytes())) {
            assert_eq!(postorder_position(node.level, node.index), pos, "{node:?}");
            pos += 1;
        }
        assert_eq!(stored_node_count(f.size()), pos);
    }
    assert_eq!(checked_postorder_position(64, 0), None);
    assert_eq!(checked_postorder_position(0, u64::MAX), None);
    assert_eq!(postorder_position(200, 7), u64::MAX);
}

#[test]
fn frontier_restore_and_peaks() {
    let d = leaves(45);
    let (nodes, frontier) = MemoryNodes::from_leaves(d.iter().copied()).unwrap();
    for size in 0..=45u64 {
        let restored = restore_frontier(&nodes, size).unwrap();
        assert_eq!(restored.root(), mth(&d[..size as usize]));
        let mut r = restored.clone();
        for leaf in &d[size as usize..] {
            r.push(*leaf);
        }
        assert_eq!(r, frontier);
    }
    assert_eq!(
        frontier_peaks(6).collect::<Vec<_>>(),
        vec![(2, 0), (1, 2)],
        "size 6 = 4 + 2"
    );
    assert!(matches!(
        Frontier::from_nodes(3, vec![[0; 32]]),
        Err(FrontierError::PeakCountMismatch {
            expected: 2,
            got: 1,
            ..
        })
    ));
}

#[test]
fn push_reports_completed_nodes() {
    let mut f = Frontier::new();
    let out: Vec<(u8, u64)> = (0..8u64)
        .flat_map(|i| f.push(leaf_hash(&[i as u8])))
        .map(|n| (n.level, n.index))
        .collect();
    assert_eq!(
        out,
        vec![
            (0, 0),
            (0, 1),
            (1, 0),
            (0, 2),
            (0, 3),
            (1, 1),
            (2, 0),
            (0, 4),
            (0, 5),
            (1, 2),
            (0, 6),
            (0, 7),
            (1, 3),
            (2, 1),
            (3, 0)
        ]
    );
}

#[test]
fn full_frontier_does_not_panic() {
    let mut f = Frontier::from_nodes(u64::MAX, vec![[7; 32]; 64]).unwrap();
    assert_eq!(f.try_push([1; 32]), Err(FrontierError::Full));
    assert!(f.push([1; 32]).is_empty());
    assert_eq!(f.size(), u64::MAX);
    let mut g = Frontier::from_nodes(u64::MAX - 1, vec![[7; 32]; 63]).unwrap();
    assert_eq!(g.push([1; 32]).len(), 1);
}

#[test]
fn verifiers_never_panic_on_extremes() {
    let h = [3u8; 32];
    let proof = vec![h; 70];
    for &a in &[0, 1, 2, u64::MAX / 2, u64::MAX - 1, u64::MAX] {
        for &b in &[0, 1, 3, u64::MAX / 2 + 1, u64::MAX - 1, u64::MAX] {
            for len in [0usize, 1, 63, 64, 65, 70] {
                let _ = verify_inclusion(&h, a, b, &proof[..len], &h);
                let _ = verify_consistency(a, b, &proof[..len], &h, &h);
            }
            let _ = inclusion_proof_len(a, b);
            let _ = consistency_proof_len(a, b);
        }
    }
    // size1 == 0: empty proof, root1 must be the empty root.
    assert!(verify_consistency(0, 5, &[], &empty_root(), &h).is_ok());
    assert_eq!(
        verify_consistency(0, 5, &[], &h, &h),
        Err(ProofError::OldRootMismatch)
    );
    assert_eq!(
        verify_consistency(0, 5, &[h], &empty_root(), &h),
        Err(ProofError::WrongProofLength {
            expected: 0,
            got: 1
        })
    );
    assert_eq!(
        verify_consistency(4, 4, &[], &h, &[4; 32]),
        Err(ProofError::NewRootMismatch)
    );
}

#[test]
fn missing_nodes_surface_as_source_errors() {
    let (nodes, _) = MemoryNodes::from_leaves(leaves(5)).unwrap();
    assert!(matches!(
        inclusion_proof(&nodes, 0, 9),
        Err(ProofError::Source(MemoryNodesError::Missing { .. }))
    ));
    assert!(matches!(
        root_at(&nodes, 6),
        Err(ProofError::Source(MemoryNodesError::Missing { .. }))
    ));
    let mut m = MemoryNodes::new();
    assert_eq!(
        m.insert(NodeRef {
            level: 0,
            index: 1,
            hash: [0; 32]
        }),
        Err(MemoryNodesError::OutOfOrder {
            level: 0,
            index: 1,
            expected: 0
        })
    );
}
