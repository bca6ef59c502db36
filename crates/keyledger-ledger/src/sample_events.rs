//! Realistic event drafts of the real types, as a busy instance writes them
//! (for the writer's benchmarks and tests). They do not make a rule-abiding
//! log (keys used before they exist, approvals of requests never made):
//! `keyledger ledger generate` writes one (the root crate's `life`).

use keyledger_core::event::{self, Actor, AuthMethod, EventDraft, Role};

fn id(prefix: &str, n: u64) -> String {
    let digest = blake3::hash(&n.to_le_bytes());
    let h = digest.to_hex();
    format!(
        "{prefix}{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn digest(n: u64) -> String {
    hex::encode(sha2_digest(&n.to_be_bytes()))
}

fn sha2_digest(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

/// Event `n` of a realistic mix: mostly key use, some lifecycle, approvals
/// and credentials, as a busy instance would write.
pub fn realistic_event(n: u64, thread: usize) -> Result<EventDraft, String> {
    let user = Actor {
        principal: format!("cred-{:04}", (n * 7 + thread as u64) % 50),
        role: if n.is_multiple_of(3) {
            Role::Manager
        } else {
            Role::Writer
        },
        auth: AuthMethod::Bearer,
    };
    let key_id = id("", n % 1000);
    let version = id("v", n % 4000);
    let corr = format!("gen-{n}");
    let draft = match n % 20 {
        0 => EventDraft::new(
            user,
            corr,
            &event::KeyCreated {
                key_id,
                name: format!("app-key-{}", n % 1000),
                description: Some("generated".into()),
                key_ring_id: "default".into(),
                extractable: n.is_multiple_of(40),
                imported: false,
                algorithm: "AES".into(),
                bit_length: 256,
                version_id: version,
                key_check_value: digest(n)[..6].to_string(),
                expiration_date: None,
                aliases: vec![],
                activation_date: None,
                import_token_id: None,
            },
        ),
        1 => EventDraft::new(
            user,
            corr,
            &event::KeyRotated {
                key_id,
                version_id: version,
                key_check_value: digest(n)[..6].to_string(),
                imported: false,
            },
        ),
        2 => EventDraft::new(
            user,
            corr,
            &event::ApprovalRequested {
                request_id: id("req-", n),
                operation: "key.delete".into(),
                target: key_id,
                required_approvals: 2,
                expires_at: "2026-12-05T00:00:00Z".into(),
            },
        ),
        3 => EventDraft::new(
            user,
            corr,
            &event::ApprovalGranted {
                request_id: id("req-", n - 1),
                approver: "cred-0002".into(),
            },
        ),
        4 => EventDraft::new(
            user,
            corr,
            &event::CredentialIssued {
                credential_id: id("cred-", n),
                role: "writer".into(),
                token_digest: digest(n),
                command: None,
            },
        ),
        5 => EventDraft::new(user, corr, &event::KeyDisabled { key_id }),
        6 => EventDraft::new(user, corr, &event::KeyEnabled { key_id }),
        7..=13 => EventDraft::new(
            user,
            corr,
            &event::KeyWrapped {
                key_id,
                version_id: version,
                generated_dek: n.is_multiple_of(2),
                aad_entries: (n % 3) as u32,
                ciphertext_digest: digest(n),
            },
        ),
        14..=18 => EventDraft::new(
            user,
            corr,
            &event::KeyUnwrapped {
                key_id,
                version_id: version,
                rewrapped_version_id: None,
                ciphertext_digest: digest(n),
            },
        ),
        _ => EventDraft::new(
            user,
            corr,
            &event::KeyRewrapped {
                key_id,
                from_version_id: version.clone(),
                to_version_id: id("v", n % 4000 + 1),
                ciphertext_digest: digest(n),
            },
        ),
    };
    draft.map_err(|e| e.to_string())
}
