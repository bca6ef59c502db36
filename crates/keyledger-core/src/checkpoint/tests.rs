//! Checkpoint / signed-note tests, including known-answer vectors from
//! golang.org/x/mod/sumdb/note and a real sum.golang.org checkpoint
//! (see tests/vectors/checkpoint/SOURCE.md).

use super::*;

const PETER_NOTE: &str = include_str!("../../../../tests/vectors/checkpoint/peterneumann.note");
const PETER_VKEY: &str = include_str!("../../../../tests/vectors/checkpoint/peterneumann.vkey");
const PETER_SKEY: &str = include_str!("../../../../tests/vectors/checkpoint/peterneumann.skey");
const ENOCH_VKEY: &str = include_str!("../../../../tests/vectors/checkpoint/enochroot.vkey");
const PETER_ENOCH_NOTE: &str =
    include_str!("../../../../tests/vectors/checkpoint/peter-and-enoch.note");
const SUMDB_NOTE: &str =
    include_str!("../../../../tests/vectors/checkpoint/sumdb-6476701.checkpoint");
const SUMDB_VKEY: &str = include_str!("../../../../tests/vectors/checkpoint/sumdb.vkey");

const PETER_TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                          then you don't know what your problem is.\n";

fn vkey(s: &str) -> NoteVerifierKey {
    NoteVerifierKey::parse(s.trim_end()).unwrap()
}

fn test_key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn sample() -> Checkpoint {
    let mut cp = Checkpoint {
        origin: "example.com/keyledger".to_owned(),
        size: 1234,
        root: crate::merkle::leaf_hash(b"root"),
        extensions: Vec::new(),
    };
    cp.set_chain_head(&[0xab; 32]);
    cp
}

#[test]
fn go_note_key_ids_and_encoding() {
    let peter = vkey(PETER_VKEY);
    assert_eq!(peter.name, "PeterNeumann");
    assert_eq!(peter.key_id(), [0xc7, 0x4f, 0x20, 0xa3]);
    assert_eq!(peter.to_string(), PETER_VKEY.trim_end());
    let enoch = vkey(ENOCH_VKEY);
    assert_eq!(enoch.key_id(), [0xaf, 0x0c, 0xfe, 0x78]);
    let signer = NoteSignerKey::parse(PETER_SKEY.trim_end()).unwrap();
    assert_eq!(signer.verifier(), peter);
    assert!(!format!("{signer:?}").contains("AYEKF"));
}

#[test]
fn go_note_verifies_and_signing_reproduces_it() {
    let peter = vkey(PETER_VKEY);
    let (text, sigs) = parse_note(PETER_NOTE.as_bytes()).unwrap();
    assert_eq!(text, PETER_TEXT);
    let verified = verify_note(text, &sigs, core::slice::from_ref(&peter)).unwrap();
    assert_eq!(verified.len(), 1);
    assert_eq!(verified[0].key_id, [0xc7, 0x4f, 0x20, 0xa3]);
    // Ed25519 is deterministic: our signer must reproduce Go's note exactly.
    let signer = NoteSignerKey::parse(PETER_SKEY.trim_end()).unwrap();
    let line = note::signature_line(&signer.name, &signer.key, PETER_TEXT);
    assert_eq!(format!("{PETER_TEXT}\n{line}"), PETER_NOTE);
    // Tampered text fails.
    let tampered = PETER_NOTE.replace("cryptography", "cryptographY");
    let (text, sigs) = parse_note(tampered.as_bytes()).unwrap();
    assert_eq!(
        verify_note(text, &sigs, &[peter]),
        Err(CheckpointError::InvalidSignature {
            name: "PeterNeumann".into(),
            key_id: [0xc7, 0x4f, 0x20, 0xa3]
        })
    );
}

#[test]
fn go_note_unknown_keys_are_ignored() {
    let peter = vkey(PETER_VKEY);
    let enoch = vkey(ENOCH_VKEY);
    let (text, sigs) = parse_note(PETER_ENOCH_NOTE.as_bytes()).unwrap();
    assert_eq!(sigs.len(), 2);
    assert_eq!(
        verify_note(text, &sigs, core::slice::from_ref(&peter))
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        verify_note(text, &sigs, &[peter, enoch.clone()])
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        verify_note(text, &sigs, &[]),
        Err(CheckpointError::NoVerifiedSignature)
    );
    assert_eq!(
        verify_note(text, &sigs[..1], &[enoch]),
        Err(CheckpointError::NoVerifiedSignature)
    );
}

#[test]
fn go_note_malformed_messages() {
    let sig = PETER_NOTE
        .strip_prefix(PETER_TEXT)
        .unwrap()
        .strip_prefix('\n')
        .unwrap();
    let bad = [
        PETER_TEXT.to_owned(),
        format!("{PETER_TEXT}\n"),
        format!("{PETER_TEXT}\n{}", &sig[..sig.len() - 1]),
        format!("\x01{PETER_TEXT}\n{sig}"),
        format!(
            "{PETER_TEXT}\n\u{2014} Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
        ),
        format!("{PETER_TEXT}\n{sig}Unexpected line.\n"),
        format!("{PETER_TEXT}\n{}", sig.repeat(101)),
    ];
    for msg in &bad {
        assert!(parse_note(msg.as_bytes()).is_err(), "{msg:?}");
    }
    let mut not_utf8 = vec![0xffu8];
    not_utf8.extend_from_slice(PETER_NOTE.as_bytes());
    assert_eq!(
        parse_note(&not_utf8),
        Err(CheckpointError::NotUtf8 { valid_up_to: 0 })
    );
}

#[test]
fn real_sumdb_checkpoint_verifies() {
    let key = vkey(SUMDB_VKEY);
    assert_eq!(key.key_id(), [0x03, 0x3d, 0xe0, 0xae]);
    let cp = parse_and_verify(SUMDB_NOTE, core::slice::from_ref(&key)).unwrap();
    assert_eq!(cp.origin, "go.sum database tree");
    assert_eq!(cp.size, 6_476_701);
    assert_eq!(
        STANDARD.encode(cp.root),
        "mb8QLQIs0Z0yP5Cstq6guj87oXWeC9gEM8oVikmm9Wk="
    );
    assert!(cp.extensions.is_empty());
    assert_eq!(
        cp.body(),
        SUMDB_NOTE.split_once("\n\n").unwrap().0.to_owned() + "\n"
    );
    let forged = SUMDB_NOTE.replace("6476701", "6476702");
    assert!(matches!(
        parse_and_verify(forged, &[key]),
        Err(CheckpointError::InvalidSignature { .. })
    ));
}

#[test]
fn sign_parse_round_trip() {
    let cp = sample();
    let k1 = test_key(1);
    let k2 = test_key(2);
    let v1 = NoteVerifierKey::from_signing_key("log.example", &k1).unwrap();
    let v2 = NoteVerifierKey::from_signing_key("witness.example", &k2).unwrap();
    let note = cp
        .sign_multi(&[("log.example", &k1), ("witness.example", &k2)])
        .unwrap();
    assert!(note.starts_with(&cp.body()));
    assert!(note.contains("\n\n\u{2014} log.example "));
    assert_eq!(
        parse_and_verify(&note, core::slice::from_ref(&v1)).unwrap(),
        cp
    );
    assert_eq!(
        parse_and_verify(&note, core::slice::from_ref(&v2)).unwrap(),
        cp
    );
    assert_eq!(
        parse_and_verify(note.as_bytes(), &[v1.clone(), v2]).unwrap(),
        cp
    );
    assert_eq!(cp.chain_head().unwrap(), Some([0xab; 32]));
    let (parsed, sigs) = Checkpoint::parse_with_signatures(&note).unwrap();
    assert_eq!(parsed, cp);
    assert_eq!(sigs.len(), 2);
    assert_eq!(sigs[0].key_id, v1.key_id());
    // Parsed verifier key round-trips through its text form.
    assert_eq!(NoteVerifierKey::parse(&v1.to_string()).unwrap(), v1);
    // A key with the right name but the wrong key id is simply unknown.
    let other = NoteVerifierKey::from_signing_key("log.example", &test_key(3)).unwrap();
    assert_eq!(
        parse_and_verify(&note, &[other]),
        Err(CheckpointError::NoVerifiedSignature)
    );
    // Empty tree checkpoint.
    let empty = Checkpoint {
        origin: "o".into(),
        size: 0,
        root: crate::merkle::empty_root(),
        extensions: vec![],
    };
    let n = empty.try_sign("k", &k1).unwrap();
    assert_eq!(n, empty.sign("k", &k1));
    let vk = NoteVerifierKey::from_signing_key("k", &k1).unwrap();
    assert_eq!(parse_and_verify(n, &[vk]).unwrap(), empty);
}

#[test]
fn every_single_byte_mutation_is_rejected() {
    let k = test_key(9);
    let v = NoteVerifierKey::from_signing_key("log", &k).unwrap();
    let note = sample().sign("log", &k).into_bytes();
    for i in 0..note.len() {
        for flip in [0x01u8, 0x20, 0x80] {
            let mut m = note.clone();
            m[i] ^= flip;
            assert!(
                parse_and_verify(&m, core::slice::from_ref(&v)).is_err(),
                "byte {i} ^ {flip:#x}"
            );
        }
    }
    for len in 0..note.len() {
        assert!(parse_and_verify(&note[..len], core::slice::from_ref(&v)).is_err());
    }
}

#[test]
fn malformed_bodies_are_rejected_precisely() {
    let root = STANDARD.encode([7u8; 32]);
    let cases: Vec<(String, CheckpointError)> = vec![
        (format!("o\n01\n{root}\n"), CheckpointError::SizeLeadingZero),
        (format!("o\n00\n{root}\n"), CheckpointError::SizeLeadingZero),
        (format!("o\n-1\n{root}\n"), CheckpointError::SizeNotDecimal),
        (format!("o\n+1\n{root}\n"), CheckpointError::SizeNotDecimal),
        (format!("o\n\n{root}\n"), CheckpointError::SizeNotDecimal),
        (
            format!("o\n18446744073709551616\n{root}\n"),
            CheckpointError::SizeOverflow,
        ),
        (
            "o\n1\nnot base64!\n".to_owned(),
            CheckpointError::RootBase64,
        ),
        (
            format!("o\n1\n{}\n", STANDARD.encode([7u8; 31])),
            CheckpointError::RootLength { got: 31 },
        ),
        (format!("\n1\n{root}\n"), CheckpointError::EmptyOrigin),
        (
            "o\n1\n".to_owned(),
            CheckpointError::MissingLine { which: "root hash" },
        ),
        (
            "o\n".to_owned(),
            CheckpointError::MissingLine { which: "tree size" },
        ),
        (
            format!("o\n1\n{root}"),
            CheckpointError::MissingTrailingNewline,
        ),
        (
            format!("o\n1\n{root}\next\n\nmore\n"),
            CheckpointError::BadBodyLine { line: 5 },
        ),
        (
            format!("o\n1\n{root}\nkeyledger-chain ABCD\n"),
            CheckpointError::BadChainExtension { line: 4 },
        ),
    ];
    for (body, want) in cases {
        assert_eq!(Checkpoint::parse_body(&body), Err(want), "{body:?}");
    }
    // Non-canonical base64 (non-zero trailing bits) is rejected.
    let mut nc = root.clone().into_bytes();
    nc[42] = b'9';
    let nc = String::from_utf8(nc).unwrap();
    assert_eq!(
        Checkpoint::parse_body(&format!("o\n1\n{nc}\n")),
        Err(CheckpointError::RootBase64)
    );
    let ok = Checkpoint::parse_body(&format!("o\n0\n{root}\nanything goes\n")).unwrap();
    assert_eq!(ok.extensions, vec!["anything goes".to_owned()]);
}

#[test]
fn note_level_errors() {
    let k = test_key(4);
    let v = NoteVerifierKey::from_signing_key("log", &k).unwrap();
    let body = sample().body();
    assert_eq!(
        parse_and_verify(body.as_bytes(), core::slice::from_ref(&v)),
        Err(CheckpointError::MissingBlankLine)
    );
    assert_eq!(
        parse_and_verify(format!("{body}\n"), core::slice::from_ref(&v)),
        Err(CheckpointError::NoSignatures)
    );
    let note = sample().sign("log", &k);
    assert_eq!(
        parse_and_verify(note.trim_end(), core::slice::from_ref(&v)),
        Err(CheckpointError::MissingTrailingNewline)
    );
    let with_cr = note.replacen("keyledger\n", "keyledger\r\n", 1);
    assert!(matches!(
        parse_and_verify(with_cr, &[v]),
        Err(CheckpointError::ControlCharacter { .. })
    ));
}

#[test]
fn signing_rejects_bad_input() {
    let k = test_key(5);
    let mut cp = sample();
    assert_eq!(
        cp.try_sign("bad name", &k),
        Err(CheckpointError::InvalidKeyName)
    );
    assert_eq!(cp.try_sign("a+b", &k), Err(CheckpointError::InvalidKeyName));
    assert!(parse_unverified(cp.sign("bad name", &k)).is_err());
    assert_eq!(cp.sign_multi(&[]), Err(CheckpointError::NoSignatures));
    cp.extensions.push(String::new());
    assert!(matches!(
        cp.try_sign("k", &k),
        Err(CheckpointError::BadBodyLine { .. })
    ));
    cp.extensions = vec!["two\nlines".into()];
    assert!(matches!(
        cp.try_sign("k", &k),
        Err(CheckpointError::BadBodyLine { .. })
    ));
    cp.extensions.clear();
    cp.origin.clear();
    assert_eq!(cp.try_sign("k", &k), Err(CheckpointError::EmptyOrigin));
}

#[test]
fn verifier_key_parse_errors() {
    let good = PETER_VKEY.trim_end();
    assert!(NoteVerifierKey::parse(good).is_ok());
    assert!(matches!(
        NoteVerifierKey::parse(&good.replace("c74f20a3", "c74f20a4")),
        Err(CheckpointError::KeyIdMismatch { .. })
    ));
    assert!(matches!(
        NoteVerifierKey::parse(&good.replace("+ARpc", "+AhpC")),
        Err(CheckpointError::UnsupportedKeyAlgorithm { .. } | CheckpointError::KeyFormat { .. })
    ));
    // Every proper substring and every single-byte increment is rejected (as Go's test).
    let b = good.as_bytes();
    for i in 0..=b.len() {
        for j in i + 1..=b.len() {
            if (i, j) != (0, b.len())
                && let Ok(s) = core::str::from_utf8(&b[i..j])
            {
                assert!(NoteVerifierKey::parse(s).is_err(), "{s}");
            }
        }
    }
    for i in 0..b.len() {
        let mut m = b.to_vec();
        m[i] = m[i].wrapping_add(1);
        if let Ok(s) = core::str::from_utf8(&m) {
            assert!(NoteVerifierKey::parse(s).is_err(), "{s}");
        }
    }
}
