//! Building blocks of the cases, public so that a backend's own tests can
//! use them too: chained sealed records and batches, and assertions that a
//! log holds exactly some records and the tree they make.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::store::{ChainHead, InstanceLog, Linked, LogNodes, SealedRecord};
use keyledger_core::chain::{self, GENESIS_PREV, Link};
use keyledger_core::merkle::{
    self, Frontier, Hash, MemoryNodes, NodeRef, verify_consistency, verify_inclusion,
};
use keyledger_core::record::Record;

/// A realistic sealed record: JSON event bytes carrying `seq` and `prev`,
/// padded by `pad` bytes of body, with a deterministic 64-byte "signature"
/// (the store does not verify signatures).
pub fn sealed(instance: &str, seq: u64, prev: &Link, pad: usize) -> SealedRecord {
    let body = "x".repeat(pad);
    let event = format!(
        r#"{{"instance":"{instance}","seq":{seq},"type":"test.event","payload":{{"body":"{body}"}},"prev":"{}"}}"#,
        chain::to_hex(prev)
    )
    .into_bytes();
    Linked::new(seq, event)
        .sign(|link| {
            let mut signature = [0u8; 64];
            signature[..32].copy_from_slice(link);
            signature[32..].copy_from_slice(&chain::link(link));
            Ok::<_, std::convert::Infallible>(signature)
        })
        .unwrap_or_else(|never| match never {})
}

/// `record` sealed at `seq` (whatever seq its event carries).
pub fn at_seq(seq: u64, record: &Record) -> SealedRecord {
    SealedRecord::new(seq, record.clone())
}

/// `n` records continuing the chain after `head`; sizes vary with the seq.
pub fn batch(instance: &str, head: ChainHead, n: u64) -> Vec<SealedRecord> {
    let mut prev = head.link;
    (head.size..head.size + n)
        .map(|seq| {
            let r = sealed(instance, seq, &prev, (seq as usize * 37) % 300);
            prev = *r.link();
            r
        })
        .collect()
}

/// The head after `records` (which must start at seq 0).
pub fn head_of(records: &[SealedRecord]) -> ChainHead {
    ChainHead {
        size: records.len() as u64,
        link: records.last().map_or(GENESIS_PREV, |r| *r.link()),
    }
}

/// Appends batches of the given sizes, returning every record appended.
pub fn append_batches(log: &dyn InstanceLog, sizes: &[u64]) -> Vec<SealedRecord> {
    let mut all = Vec::new();
    for &n in sizes {
        let b = batch(log.instance(), log.head(), n);
        log.append(&b).expect("append");
        all.extend(b);
    }
    all
}

/// The records of `sealed`, in order.
pub fn records(sealed: &[SealedRecord]) -> Vec<Record> {
    sealed.iter().map(|s| s.record().clone()).collect()
}

/// Asserts that `log` holds exactly `expected` (head, full and partial reads).
pub fn assert_log_holds(log: &dyn InstanceLog, expected: &[SealedRecord]) {
    assert_eq!(log.head(), head_of(expected));
    let want = records(expected);
    let got = log.read(0, expected.len() as u64).expect("read all");
    assert_eq!(got, want);
    let n = expected.len() as u64;
    for (a, b) in [
        (0, 0),
        (0, 1),
        (n / 3, n / 2),
        (n.saturating_sub(1), n),
        (n, n),
    ] {
        if a <= b && b <= n {
            let got = log.read(a, b).expect("read range");
            assert_eq!(got, want[a as usize..b as usize], "read({a}, {b})");
        }
    }
}

/// Every node `Frontier::push` produces for `leaves`.
fn reference_nodes(leaves: &[Hash]) -> Vec<NodeRef> {
    let mut frontier = Frontier::new();
    leaves.iter().flat_map(|l| frontier.push(*l)).collect()
}

/// Asserts `node`, roots and proofs of `log` match a `Frontier` fed `leaves`.
pub fn assert_tree_matches(log: &dyn InstanceLog, leaves: &[Hash]) {
    let size = leaves.len() as u64;
    for node in reference_nodes(leaves) {
        assert_eq!(
            log.node(node.level, node.index).expect("node"),
            node.hash,
            "node ({}, {})",
            node.level,
            node.index
        );
    }
    let (mem, _) = MemoryNodes::from_leaves(leaves.iter().copied()).expect("reference");
    let src = LogNodes(log);
    let mut roots = Vec::new();
    for s in 0..=size {
        let (_, frontier) = MemoryNodes::from_leaves(leaves[..s as usize].iter().copied())
            .expect("reference prefix");
        let root = merkle::root_at(&src, s).expect("root_at");
        assert_eq!(root, frontier.root(), "root at {s}");
        roots.push(root);
    }
    for s in 1..=size {
        for i in 0..s {
            let proof = merkle::inclusion_proof(&src, i, s).expect("inclusion proof");
            assert_eq!(
                proof,
                merkle::inclusion_proof(&mem, i, s).expect("reference")
            );
            verify_inclusion(&leaves[i as usize], i, s, &proof, &roots[s as usize])
                .expect("inclusion verifies");
        }
    }
    for s2 in 0..=size {
        for s1 in 0..=s2 {
            let proof = merkle::consistency_proof(&src, s1, s2).expect("consistency proof");
            assert_eq!(
                proof,
                merkle::consistency_proof(&mem, s1, s2).expect("reference")
            );
            verify_consistency(s1, s2, &proof, &roots[s1 as usize], &roots[s2 as usize])
                .expect("consistency verifies");
        }
    }
}
