//! Runs every RFC 9162 proof vector under `tests/vectors/merkle/` (copied
//! from transparency-dev/merkle, see `tests/vectors/merkle/SOURCE.md`):
//! `wantErr: false` cases must verify, `wantErr: true` cases must fail.
//! Happy-path cases are also regenerated from the reference tree and must
//! match byte for byte. Fails loudly if the directory holds no vectors.

use std::fs;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use keyledger_core::merkle::{
    Hash, MemoryNodes, consistency_proof, inclusion_proof, leaf_hash, root_at, verify_consistency,
    verify_inclusion,
};
use serde::Deserialize;

/// Entries of the RFC 6962 reference tree all happy-path vectors are drawn from.
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

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InclusionCase {
    leaf_idx: u64,
    tree_size: u64,
    root: String,
    leaf_hash: String,
    proof: Option<Vec<String>>,
    desc: String,
    want_err: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConsistencyCase {
    size1: u64,
    size2: u64,
    root1: String,
    root2: String,
    proof: Option<Vec<String>>,
    desc: String,
    want_err: bool,
}

fn vector_dir(kind: &str) -> PathBuf {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/vectors/merkle"
    ))
    .join(kind)
}

/// All `<dir>/<case>/<name>.json` files, sorted.
fn json_files(kind: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let dir = vector_dir(kind);
    let cases = fs::read_dir(&dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
    for case in cases {
        let case = case.unwrap().path();
        if !case.is_dir() {
            continue;
        }
        for f in fs::read_dir(&case).unwrap() {
            let f = f.unwrap().path();
            if f.extension().is_some_and(|e| e == "json") {
                out.push(f);
            }
        }
    }
    out.sort();
    out
}

/// Decodes a base64 hash; `None` if it is not exactly 32 bytes (such a
/// value can never be part of a valid proof).
fn hash(b64: &str) -> Option<Hash> {
    STANDARD.decode(b64).ok()?.try_into().ok()
}

fn hashes(list: &Option<Vec<String>>) -> Option<Vec<Hash>> {
    list.iter().flatten().map(|s| hash(s)).collect()
}

fn reference_tree() -> MemoryNodes {
    MemoryNodes::from_leaves(RFC_ENTRIES.iter().map(|e| leaf_hash(e)))
        .unwrap()
        .0
}

#[test]
fn inclusion_vectors() {
    let files = json_files("inclusion");
    assert!(
        files.len() >= 20,
        "only {} inclusion vectors found: vector directory missing or empty",
        files.len()
    );
    let tree = reference_tree();
    let (mut ok, mut err) = (0, 0);
    for path in &files {
        let text = fs::read_to_string(path).unwrap();
        let c: InclusionCase = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{}: bad JSON: {e}", path.display()));
        let parsed = (hash(&c.root), hash(&c.leaf_hash), hashes(&c.proof));
        let result = match &parsed {
            (Some(root), Some(leaf), Some(proof)) => {
                verify_inclusion(leaf, c.leaf_idx, c.tree_size, proof, root)
                    .map_err(|e| e.to_string())
            }
            _ => Err("a value is not a 32-byte hash".to_owned()),
        };
        assert_eq!(
            result.is_err(),
            c.want_err,
            "{} ({}): got {result:?}",
            path.display(),
            c.desc
        );
        if c.want_err {
            err += 1;
            continue;
        }
        ok += 1;
        // Happy path: our generator reproduces the vector exactly.
        let (Some(root), Some(leaf), Some(proof)) = parsed else {
            unreachable!()
        };
        assert_eq!(
            leaf,
            leaf_hash(RFC_ENTRIES[c.leaf_idx as usize]),
            "{}",
            path.display()
        );
        assert_eq!(
            root_at(&tree, c.tree_size).unwrap(),
            root,
            "{}",
            path.display()
        );
        assert_eq!(
            inclusion_proof(&tree, c.leaf_idx, c.tree_size).unwrap(),
            proof,
            "{}",
            path.display()
        );
    }
    assert!(
        ok >= 5 && err >= 15,
        "inclusion: {ok} ok / {err} error cases"
    );
    println!("inclusion vectors: {ok} verified, {err} rejected as expected");
}

#[test]
fn consistency_vectors() {
    let files = json_files("consistency");
    assert!(
        files.len() >= 20,
        "only {} consistency vectors found: vector directory missing or empty",
        files.len()
    );
    let tree = reference_tree();
    let (mut ok, mut err) = (0, 0);
    for path in &files {
        let text = fs::read_to_string(path).unwrap();
        let c: ConsistencyCase = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{}: bad JSON: {e}", path.display()));
        let parsed = (hash(&c.root1), hash(&c.root2), hashes(&c.proof));
        let result = match &parsed {
            (Some(r1), Some(r2), Some(proof)) => {
                verify_consistency(c.size1, c.size2, proof, r1, r2).map_err(|e| e.to_string())
            }
            _ => Err("a value is not a 32-byte hash".to_owned()),
        };
        assert_eq!(
            result.is_err(),
            c.want_err,
            "{} ({}): got {result:?}",
            path.display(),
            c.desc
        );
        if c.want_err {
            err += 1;
            continue;
        }
        ok += 1;
        let (Some(r1), Some(r2), Some(proof)) = parsed else {
            unreachable!()
        };
        assert_eq!(root_at(&tree, c.size1).unwrap(), r1, "{}", path.display());
        assert_eq!(root_at(&tree, c.size2).unwrap(), r2, "{}", path.display());
        assert_eq!(
            consistency_proof(&tree, c.size1, c.size2).unwrap(),
            proof,
            "{}",
            path.display()
        );
    }
    assert!(
        ok >= 5 && err >= 15,
        "consistency: {ok} ok / {err} error cases"
    );
    println!("consistency vectors: {ok} verified, {err} rejected as expected");
}
