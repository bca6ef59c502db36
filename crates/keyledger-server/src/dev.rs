//! `keyledger serve --dev`: a working instance in one command, for
//! development only.
//!
//! First start: creates instance `DEV_INSTANCE` with a generated
//! administrator key, leaves imprint mode (thresholds 1/1), registers two
//! key owners, runs the master-key ceremony with generated parts, issues one
//! credential per role and writes `DATA_DIR/dev-credentials.json`. Every step
//! goes through the same signed commands and events as production.
//!
//! Later starts reuse all of it; because the software HSM keeps the master
//! key only in memory, dev mode re-submits the key owners' parts from
//! `DATA_DIR/dev/owner-*.key` to unseal. **Those files hold master-key
//! parts in the clear (mode 0600): that is what makes dev mode insecure.**

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use chrono::{Duration, Utc};
use ed25519_dalek::{Signer, SigningKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use keyledger_core::event::Actor;
use keyledger_core::governance::{AdminCommand, CommandDocument, SignedCommand};
use keyledger_kms::hsm::ceremony;
use keyledger_kms::instance::Storage;
use keyledger_kms::secret::SecretBytes;
use keyledger_kms::service::{KeyService, part_submission_message};
use keyledger_ledger::ledger_key::write_private_atomically;

/// The demo instance's name.
pub const DEV_INSTANCE: &str = "dev-instance";
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
pub const WARNING: &str = "DEVELOPMENT ONLY: these tokens, the admin key and the key owners' master-key parts under dev/ are stored unprotected in the data directory";

/// `DATA_DIR/dev-credentials.json`.
#[derive(Serialize, Deserialize)]
pub struct DevCredentials {
    pub warning: String,
    pub url: String,
    pub instance: String,
    pub tokens: std::collections::BTreeMap<String, String>,
    pub admin_key: PathBuf,
}

#[derive(Serialize, Deserialize)]
struct OwnerFile {
    owner_id: String,
    signing_seed_hex: String,
    part_hex: String,
}

fn dev_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("dev")
}

pub fn credentials_path(data_dir: &Path) -> PathBuf {
    data_dir.join("dev-credentials.json")
}

fn random32() -> Result<Zeroizing<[u8; 32]>, String> {
    let mut b = Zeroizing::new([0u8; 32]);
    getrandom::getrandom(b.as_mut()).map_err(|_| "random number generator failed")?;
    Ok(b)
}

fn submit(service: &KeyService, admin: &SigningKey, command: AdminCommand) -> Result<(), String> {
    let doc = CommandDocument::new(service.instance(), command, Utc::now() + Duration::hours(1))
        .map_err(|e| e.to_string())?;
    let mut signed = SignedCommand::unsigned(&doc).map_err(|e| e.to_string())?;
    signed.sign(admin);
    service
        .submit_admin_command(&Actor::operator("dev-bootstrap"), "dev-bootstrap", &signed)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn submit_part(service: &KeyService, owner: &OwnerFile) -> Result<(), String> {
    let mut seed = Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(&owner.signing_seed_hex, seed.as_mut()).map_err(|e| e.to_string())?;
    let key = SigningKey::from_bytes(&seed);
    let part = SecretBytes::new(hex::decode(&owner.part_hex).map_err(|e| e.to_string())?);
    let status = service.ceremony_status().map_err(|e| e.to_string())?;
    let sealed = ceremony::seal_part(
        &status.public_key,
        service.instance(),
        status.generation,
        &owner.owner_id,
        &part,
    )
    .map_err(|e| e.to_string())?;
    let message = part_submission_message(
        service.instance(),
        status.generation,
        &owner.owner_id,
        &sealed,
    );
    let signature = key.sign(&message).to_bytes();
    service
        .submit_part("dev-bootstrap", &owner.owner_id, &sealed, &signature)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn read_owners(data_dir: &Path) -> Result<Vec<OwnerFile>, String> {
    ["owner-a", "owner-b"]
        .iter()
        .map(|id| {
            let path = dev_dir(data_dir).join(format!("{id}.key"));
            let text = Zeroizing::new(
                std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?,
            );
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
        })
        .collect()
}

/// First start: creates the demo instance and everything around it.
/// Returns the credentials to write once the server's URL is known.
pub fn bootstrap(
    storage: &Storage,
    hsm: Arc<dyn keyledger_kms::hsm::HsmBackend>,
) -> Result<(), String> {
    if storage.instances()?.iter().any(|i| i == DEV_INSTANCE) {
        return Ok(());
    }
    let data_dir = storage.data_dir.as_path();
    let dir = dev_dir(data_dir);
    let admin = keyledger_kms::admin_key::generate()?;
    keyledger_kms::admin_key::write(&dir.join("admin.key"), &admin)?;
    let admin_pub = B64.encode(admin.verifying_key().as_bytes());
    keyledger_kms::instance::create(storage, DEV_INSTANCE, &admin_pub, "dev-bootstrap")?;

    let mut owners = Vec::new();
    for id in ["owner-a", "owner-b"] {
        let owner = OwnerFile {
            owner_id: id.into(),
            signing_seed_hex: hex::encode(random32()?.as_ref()),
            part_hex: hex::encode(random32()?.as_ref()),
        };
        let json = Zeroizing::new(serde_json::to_string(&owner).map_err(|e| e.to_string())?);
        write_private_atomically(&dir.join(format!("{id}.key")), json.as_bytes())
            .map_err(|e| e.to_string())?;
        owners.push(owner);
    }
    let service = keyledger_kms::instance::open(storage, DEV_INSTANCE, hsm, Arc::new(Utc::now))?;
    let result = (|| {
        submit(
            &service,
            &admin,
            AdminCommand::SetThresholds {
                signature_threshold: 1,
                revocation_threshold: 1,
            },
        )?;
        for o in &owners {
            let mut seed = Zeroizing::new([0u8; 32]);
            hex::decode_to_slice(&o.signing_seed_hex, seed.as_mut()).map_err(|e| e.to_string())?;
            let key = SigningKey::from_bytes(&seed);
            submit(
                &service,
                &admin,
                AdminCommand::RegisterKeyOwner {
                    owner_id: o.owner_id.clone(),
                    name: o.owner_id.clone(),
                    public_key: B64.encode(key.verifying_key().as_bytes()),
                },
            )?;
        }
        submit(
            &service,
            &admin,
            AdminCommand::ApproveMasterKeyLoad { generation: 1 },
        )?;
        for o in &owners {
            submit_part(&service, o)?;
        }
        submit(
            &service,
            &admin,
            AdminCommand::CommitMasterKey { generation: 1 },
        )?;
        submit(
            &service,
            &admin,
            AdminCommand::ActivateMasterKey { generation: 1 },
        )?;
        let mut tokens = std::collections::BTreeMap::new();
        for (name, role) in [
            ("manager", "manager"),
            ("manager2", "manager"),
            ("writer", "writer"),
            ("reader", "reader"),
            ("auditor", "auditor"),
        ] {
            let token = format!("kl_{}", hex::encode(random32()?.as_ref()));
            submit(
                &service,
                &admin,
                AdminCommand::IssueCredential {
                    credential_id: format!("dev-{name}"),
                    role: role.into(),
                    token_digest: hex::encode(Sha256::digest(token.as_bytes())),
                },
            )?;
            tokens.insert(name.to_string(), token);
        }
        let creds = DevCredentials {
            warning: WARNING.into(),
            url: String::new(),
            instance: DEV_INSTANCE.into(),
            tokens,
            admin_key: dir.join("admin.key"),
        };
        let json = serde_json::to_string_pretty(&creds).map_err(|e| e.to_string())?;
        write_private_atomically(&credentials_path(data_dir), json.as_bytes())
            .map_err(|e| e.to_string())
    })();
    service.shutdown();
    result
}

/// Records the server's URL in `dev-credentials.json`.
pub fn set_url(data_dir: &Path, url: &str) -> Result<(), String> {
    let path = credentials_path(data_dir);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut creds: DevCredentials =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    creds.url = url.to_string();
    let json = serde_json::to_string_pretty(&creds).map_err(|e| e.to_string())?;
    write_private_atomically(&path, json.as_bytes()).map_err(|e| e.to_string())
}

/// Later starts: re-loads the key owners' parts to unseal the demo instance.
pub fn unseal(data_dir: &Path, service: &KeyService) -> Result<(), String> {
    if !service.sealed() {
        return Ok(());
    }
    for owner in read_owners(data_dir)? {
        submit_part(service, &owner)?;
    }
    let operator = Actor::operator("dev-bootstrap");
    service
        .commit_master_key(&operator, "dev-unseal")
        .map_err(|e| e.to_string())?;
    service
        .activate_master_key(&operator, "dev-unseal")
        .map_err(|e| e.to_string())?;
    Ok(())
}
