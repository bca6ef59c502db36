//! Scans files and captured output for secrets in any common encoding: raw
//! bytes, lower/upper hex, and standard/URL-safe base64 at every alignment
//! (a secret inside a larger base64 blob shows up as a fixed core substring
//! that depends on its offset modulo 3).

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};

/// Every encoding of `secret` that must not appear anywhere.
pub fn encodings(secret: &[u8]) -> Vec<(String, Vec<u8>)> {
    assert!(
        secret.len() >= 8,
        "secrets shorter than 8 bytes give false positives"
    );
    let mut out = vec![
        ("raw".to_string(), secret.to_vec()),
        ("hex".to_string(), hex::encode(secret).into_bytes()),
        ("HEX".to_string(), hex::encode_upper(secret).into_bytes()),
    ];
    for (name, engine) in [("base64", &STANDARD), ("base64url", &URL_SAFE)] {
        for shift in 0..3usize {
            let mut padded = vec![0u8; shift];
            padded.extend_from_slice(secret);
            let encoded = engine.encode(&padded);
            // Characters fully determined by the secret's bytes alone.
            let skip = (shift * 4).div_ceil(3);
            let whole = (padded.len() / 3) * 4;
            if whole > skip + 4 {
                out.push((
                    format!("{name}@{shift}"),
                    encoded.as_bytes()[skip..whole].to_vec(),
                ));
            }
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Finds which secrets (by label) appear in `bytes`, and how.
pub fn find_in(bytes: &[u8], secrets: &[(&str, &[u8])]) -> Vec<String> {
    let mut found = Vec::new();
    for (label, secret) in secrets {
        for (encoding, needle) in encodings(secret) {
            if contains(bytes, &needle) {
                found.push(format!("{label} as {encoding}"));
            }
        }
    }
    found
}

/// Every regular file under `dir`.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

/// Panics naming each file of `dir` in which a secret appears.
pub fn assert_dir_clean(dir: &Path, secrets: &[(&str, &[u8])]) -> usize {
    let files = files_under(dir);
    let mut leaks = Vec::new();
    for file in &files {
        let bytes = std::fs::read(file).expect("read");
        for hit in find_in(&bytes, secrets) {
            leaks.push(format!("{}: {hit}", file.display()));
        }
    }
    assert!(leaks.is_empty(), "secrets found on disk: {leaks:#?}");
    files.len()
}
