//! Inclusion/consistency proof generation and verification at 1k and 1M
//! leaves, from `MemoryNodes` (stored perfect-subtree hashes). Generation
//! reads O(log n) nodes, so time(1M)/time(1k) should stay near
//! log2(1M)/log2(1k) = 2 (target ≤ 3).
//!
//! Run: `cargo bench --bench merkle_proofs`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use keyledger::merkle::{
    Hash, MemoryNodes, consistency_proof, inclusion_proof, leaf_hash, root_at, verify_consistency,
    verify_inclusion,
};

const SIZES: [(u64, &str); 2] = [(1_000, "1k"), (1_000_000, "1M")];
/// Distinct query points per size, cycled through so no single path is hot.
const QUERIES: u64 = 1024;

struct Tree {
    size: u64,
    label: &'static str,
    nodes: MemoryNodes,
    root: Hash,
}

fn build(size: u64, label: &'static str) -> Tree {
    let leaves = (0..size).map(|i| leaf_hash(&i.to_le_bytes()));
    let (nodes, frontier) = match MemoryNodes::from_leaves(leaves) {
        Ok(built) => built,
        Err(e) => panic!("building the {label} tree: {e}"),
    };
    Tree {
        size,
        label,
        nodes,
        root: frontier.root(),
    }
}

/// Pseudo-random points in `1..size` (a fixed LCG; reproducible).
fn points(size: u64) -> Vec<u64> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    (0..QUERIES)
        .map(|_| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            1 + (x >> 11) % (size - 1)
        })
        .collect()
}

fn configure<'a>(
    c: &'a mut Criterion,
    name: &str,
) -> criterion::BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group(name);
    g.measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_millis(500))
        .sample_size(20);
    g
}

fn benches(c: &mut Criterion) {
    let trees: Vec<Tree> = SIZES.iter().map(|&(n, l)| build(n, l)).collect();

    let mut g = configure(c, "inclusion_proof/generate");
    for t in &trees {
        let idx = points(t.size);
        g.bench_function(BenchmarkId::from_parameter(t.label), |b| {
            let mut i = 0usize;
            b.iter(|| {
                i = (i + 1) % idx.len();
                black_box(inclusion_proof(&t.nodes, idx[i], t.size))
            });
        });
    }
    g.finish();

    let mut g = configure(c, "inclusion_proof/verify");
    for t in &trees {
        let cases: Vec<(u64, Hash, Vec<Hash>)> = points(t.size)
            .into_iter()
            .filter_map(|i| {
                let proof = inclusion_proof(&t.nodes, i, t.size).ok()?;
                Some((i, leaf_hash(&i.to_le_bytes()), proof))
            })
            .collect();
        g.bench_function(BenchmarkId::from_parameter(t.label), |b| {
            let mut k = 0usize;
            b.iter(|| {
                k = (k + 1) % cases.len();
                let (i, leaf, proof) = &cases[k];
                black_box(verify_inclusion(leaf, *i, t.size, proof, &t.root))
            });
        });
    }
    g.finish();

    let mut g = configure(c, "consistency_proof/generate");
    for t in &trees {
        let olds = points(t.size);
        g.bench_function(BenchmarkId::from_parameter(t.label), |b| {
            let mut i = 0usize;
            b.iter(|| {
                i = (i + 1) % olds.len();
                black_box(consistency_proof(&t.nodes, olds[i], t.size))
            });
        });
    }
    g.finish();

    let mut g = configure(c, "consistency_proof/verify");
    for t in &trees {
        let cases: Vec<(u64, Hash, Vec<Hash>)> = points(t.size)
            .into_iter()
            .filter_map(|m| {
                let proof = consistency_proof(&t.nodes, m, t.size).ok()?;
                Some((m, root_at(&t.nodes, m).ok()?, proof))
            })
            .collect();
        g.bench_function(BenchmarkId::from_parameter(t.label), |b| {
            let mut k = 0usize;
            b.iter(|| {
                k = (k + 1) % cases.len();
                let (m, r1, proof) = &cases[k];
                black_box(verify_consistency(*m, t.size, proof, r1, &t.root))
            });
        });
    }
    g.finish();
}

criterion_group!(merkle_proofs, benches);
criterion_main!(merkle_proofs);
