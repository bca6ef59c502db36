//! Reading the known-answer vector files of `tests/vectors/kat/` (stored
//! verbatim, each with a SOURCE note). A missing, empty or short vector file
//! fails the test.

use std::collections::HashMap;
use std::path::Path;

/// A record: `NAME = value` lines (a line without `=` is a flag such as `FAIL`).
pub type Fields = HashMap<String, String>;

/// `tests/vectors/kat` of the workspace root: this file is also compiled
/// into crates' tests (`crates/*/tests/common`), so the directory is found
/// from the compiling package's manifest directory upwards.
fn kat_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|dir| dir.join("tests/vectors/kat"))
        .find(|dir| dir.is_dir())
        .unwrap_or_else(|| {
            panic!(
                "tests/vectors/kat not found above {}",
                env!("CARGO_MANIFEST_DIR")
            )
        })
}

/// Reads a vector file: records separated by blank lines; `#` comments and
/// `[...]` headers are skipped (a header's text is kept as `SECTION`).
pub fn records(name: &str, at_least: usize) -> Vec<Fields> {
    let path = kat_dir().join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("vector file {}: {e}", path.display()));
    assert!(text.contains("SOURCE:"), "{name} has no SOURCE note");
    let mut out = Vec::new();
    let mut current = Fields::new();
    let mut section = String::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') {
            continue;
        }
        if line.is_empty() {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            continue;
        }
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = header.to_string();
            continue;
        }
        if current.is_empty() {
            current.insert("SECTION".into(), section.clone());
        }
        match line.split_once('=') {
            Some((k, v)) => current.insert(k.trim().to_string(), v.trim().to_string()),
            None => current.insert(line.to_string(), String::new()),
        };
    }
    if !current.is_empty() {
        out.push(current);
    }
    assert!(
        out.len() >= at_least,
        "{name}: {} records, expected at least {at_least}",
        out.len()
    );
    out
}

pub fn bytes(r: &Fields, key: &str) -> Vec<u8> {
    let v = r
        .get(key)
        .unwrap_or_else(|| panic!("field {key} missing in {r:?}"));
    hex::decode(v).unwrap_or_else(|e| panic!("field {key}: {e}"))
}
