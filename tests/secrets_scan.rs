//! The secrets scanner used by the leak tests finds a secret in every
//! encoding and alignment, and only then.

mod common;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use common::secrets_scan::find_in;

#[test]
fn finds_secrets_in_every_encoding_and_alignment() {
    let secret = b"0123456789abcdef-secret!";
    for prefix in 0..6usize {
        let mut blob = vec![b'x'; prefix];
        blob.extend_from_slice(secret);
        blob.extend_from_slice(b"tail");
        for text in [
            STANDARD.encode(&blob),
            URL_SAFE.encode(&blob),
            hex::encode(&blob),
        ] {
            assert!(
                !find_in(text.as_bytes(), &[("s", secret)]).is_empty(),
                "{prefix}: {text}"
            );
        }
        assert!(!find_in(&blob, &[("s", secret)]).is_empty());
    }
    assert!(find_in(b"nothing to see", &[("s", secret)]).is_empty());
}
