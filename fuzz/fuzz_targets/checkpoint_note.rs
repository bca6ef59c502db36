//! Checkpoint and signed-note parsing on arbitrary bytes.
//!
//! The input goes through `parse_note`, `checkpoint::parse_unverified`,
//! `Checkpoint::parse_with_signatures` and `checkpoint::parse_and_verify`
//! (with the seed bundle's ledger keys plus every line of the input that
//! parses as a verifier key), each line through `NoteVerifierKey::parse`
//! and `NoteSignerKey::parse`, and the whole text through the trusted-key
//! file parser. Properties: no panic; a parsed checkpoint's
//! body is byte-for-byte the signed text; a parsed key prints back as its
//! text; a verified checkpoint equals the unverified parse; re-signing a
//! parsed checkpoint gives a note that verifies to the same checkpoint.
#![no_main]

use keyledger::checkpoint::{
    self, Checkpoint, NoteSignerKey, NoteVerifierKey, parse_note, verify_note,
};
use keyledger::ledger_key::LedgerKey;
use libfuzzer_sys::fuzz_target;

/// The ledger keys of the seed bundle (`fuzz/seeds/bundle`, instance `fz`).
const SEED_KEYS: &str = include_str!("../seeds/ledger.vkeys");

fuzz_target!(|data: &[u8]| {
    let mut verifiers = keyledger::verify::parse_trusted_keys(SEED_KEYS).expect("seed keys");
    let text = String::from_utf8_lossy(data);
    for line in text.lines() {
        if let Ok(key) = NoteVerifierKey::parse(line) {
            // Key text round-trips (the id's hex digits may be upper case).
            let printed = key.to_string();
            let (a, b): (Vec<&str>, Vec<&str>) = (
                printed.splitn(3, '+').collect(),
                line.splitn(3, '+').collect(),
            );
            assert_eq!(
                (a[0], a[1], a[2]),
                (b[0], b[1].to_ascii_lowercase().as_str(), b[2])
            );
            assert!(checkpoint::is_valid_key_name(&key.name));
            verifiers.push(key);
        }
        if let Ok(signer) = NoteSignerKey::parse(line) {
            let verifier = signer.verifier();
            assert_eq!(
                verifier.key_id(),
                checkpoint::key_id(&signer.name, &verifier.key)
            );
        }
    }

    // The `--trusted-key` file parser.
    let _ = keyledger::verify::parse_trusted_keys(&text);

    let unverified = checkpoint::parse_unverified(data);
    let with_sigs = Checkpoint::parse_with_signatures(data);
    assert_eq!(
        unverified.as_ref().ok(),
        with_sigs.as_ref().ok().map(|(cp, _)| cp)
    );
    if let Ok((note_text, sigs)) = parse_note(data) {
        assert!(!sigs.is_empty() && sigs.len() <= checkpoint::MAX_SIGNATURES);
        assert!(note_text.ends_with('\n'));
        let _ = verify_note(note_text, &sigs, &verifiers);
        if let Ok(cp) = &unverified {
            // The body is exactly the signed text: nothing is normalised away.
            assert_eq!(cp.body(), note_text, "checkpoint body does not round-trip");
            assert!(cp.validate().is_ok());
            assert!(!cp.origin.is_empty());
        }
    }

    let verified = checkpoint::parse_and_verify(data, &verifiers);
    if let Ok(cp) = &verified {
        assert_eq!(
            Some(cp),
            unverified.as_ref().ok(),
            "verified but not parsable"
        );
    }

    // A parsed checkpoint re-signed under a fixed key verifies to itself.
    if let Ok(cp) = unverified
        && checkpoint::is_valid_key_name(&cp.origin)
    {
        let key = LedgerKey::from_seed(&cp.origin, &[7u8; 32]);
        let note = key.sign_checkpoint(&cp);
        let again = checkpoint::parse_and_verify(note.as_bytes(), &[key.note_verifier()])
            .expect("re-signed checkpoint verifies");
        assert_eq!(again, cp);
    }
});
