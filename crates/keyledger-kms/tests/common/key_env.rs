//! A real instance for key-service tests: embedded store, ledger, software
//! (or given) HSM, embedded material store, two key owners and a completed
//! master-key ceremony. One copy, shared with the root package's tests (by
//! `#[path]`), so it names the crates it uses.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use ed25519_dalek::{Signer, SigningKey};
use sha2::Digest;

use keyledger_core::event::{Actor, AuthMethod, Role};
use keyledger_core::governance::{AdminCommand, CommandDocument, SignedCommand};
use keyledger_kms::hsm::{HsmBackend, ceremony};
use keyledger_kms::ledger::{InitialAdmin, Ledger};
use keyledger_kms::material::embedded::EmbeddedMaterialStore;
use keyledger_kms::secret::SecretBytes;
use keyledger_kms::service::{KeyService, part_submission_message};
use keyledger_ledger::store::embedded::EmbeddedStore;
use keyledger_ledger::writer::{Receipt, WriterConfig};

/// The initial administrator's key: RFC 8032 test 1 secret key.
pub fn admin_key() -> SigningKey {
    let seed: [u8; 32] =
        hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
            .expect("hex")
            .try_into()
            .expect("32");
    SigningKey::from_bytes(&seed)
}

/// A command document for `service`'s instance, expiring an hour after the
/// test clock's now.
pub fn document(service: &KeyService, clock: &TestClock, command: AdminCommand) -> SignedCommand {
    let now = *clock.0.lock().expect("clock");
    let doc = CommandDocument::new(service.instance(), command, now + Duration::hours(1))
        .expect("document");
    SignedCommand::unsigned(&doc).expect("unsigned")
}

/// Signs `command` with `signers` and submits it.
pub fn admin_command_by(
    service: &KeyService,
    clock: &TestClock,
    signers: &[&SigningKey],
    command: AdminCommand,
) -> Result<Receipt, keyledger_kms::service::KeyError> {
    let mut signed = document(service, clock, command);
    for k in signers {
        signed.sign(k);
    }
    service.submit_admin_command(&Actor::operator("op"), "admin-cmd", &signed)
}

/// Submits `command` signed by the initial administrator.
pub fn admin_command(
    service: &KeyService,
    clock: &TestClock,
    command: AdminCommand,
) -> Result<Receipt, keyledger_kms::service::KeyError> {
    admin_command_by(service, clock, &[&admin_key()], command)
}

/// Issues an API credential by administrator command and returns its new
/// random bearer token (only the token's SHA-256 reaches the instance).
pub fn issue_credential(
    service: &KeyService,
    clock: &TestClock,
    credential_id: &str,
    role: &str,
) -> String {
    let mut raw = [0u8; 24];
    getrandom::getrandom(&mut raw).expect("rng");
    let token = format!("kl_test_{}", hex::encode(raw));
    admin_command(
        service,
        clock,
        AdminCommand::IssueCredential {
            credential_id: credential_id.into(),
            role: role.into(),
            token_digest: hex::encode(sha2::Sha256::digest(token.as_bytes())),
        },
    )
    .expect("issue credential");
    token
}

/// Registers the owners (threshold 1 leaves imprint mode first).
pub fn register_owners(service: &KeyService, clock: &TestClock, owners: &[&Owner]) {
    if service.projections().governance.imprint_mode() {
        admin_command(
            service,
            clock,
            AdminCommand::SetThresholds {
                signature_threshold: 1,
                revocation_threshold: 1,
            },
        )
        .expect("thresholds");
    }
    for o in owners {
        admin_command(
            service,
            clock,
            AdminCommand::RegisterKeyOwner {
                owner_id: o.id.clone(),
                name: o.id.clone(),
                public_key: base64::Engine::encode(
                    &base64::engine::general_purpose::STANDARD,
                    o.key.verifying_key().as_bytes(),
                ),
            },
        )
        .expect("register owner");
    }
}

/// Loads a new master-key generation from `parts` (one per owner), commits
/// and activates it by administrator commands.
pub fn load_master_key(
    service: &KeyService,
    clock: &TestClock,
    owners: &[Owner],
    parts: &[&SecretBytes],
) {
    let generation = service.projections().master.next_generation();
    admin_command(
        service,
        clock,
        AdminCommand::ApproveMasterKeyLoad { generation },
    )
    .expect("approve load");
    for (o, p) in owners.iter().zip(parts) {
        o.submit(service, p).expect("submit part");
    }
    admin_command(service, clock, AdminCommand::CommitMasterKey { generation }).expect("commit");
    admin_command(
        service,
        clock,
        AdminCommand::ActivateMasterKey { generation },
    )
    .expect("activate");
}

/// A controllable clock.
#[derive(Clone)]
pub struct TestClock(pub Arc<Mutex<DateTime<Utc>>>);

impl TestClock {
    pub fn new() -> Self {
        TestClock(Arc::new(Mutex::new(Utc::now())))
    }
    pub fn advance(&self, by: Duration) {
        *self.0.lock().expect("clock") += by;
    }
    pub fn as_clock(&self) -> keyledger_ledger::writer::Clock {
        let inner = self.0.clone();
        Arc::new(move || *inner.lock().expect("clock"))
    }
}

/// A key owner: an id, their signing key and their part.
pub struct Owner {
    pub id: String,
    pub key: SigningKey,
    pub part: SecretBytes,
}

impl Owner {
    pub fn new(id: &str, part_byte: u8) -> Self {
        let mut seed = [0u8; 32];
        getrandom::getrandom(&mut seed).expect("rng");
        Owner {
            id: id.into(),
            key: SigningKey::from_bytes(&seed),
            part: SecretBytes::new(
                [part_byte; 32]
                    .iter()
                    .enumerate()
                    .map(|(i, b)| b ^ (i as u8 * 7))
                    .collect(),
            ),
        }
    }

    /// Seals and signs this owner's part for the service's current ceremony.
    pub fn submit(
        &self,
        service: &KeyService,
        part: &SecretBytes,
    ) -> Result<String, keyledger_kms::service::KeyError> {
        let status = service.ceremony_status()?;
        let sealed = ceremony::seal_part(
            &status.public_key,
            service.instance(),
            status.generation,
            &self.id,
            part,
        )
        .expect("seal");
        let message =
            part_submission_message(service.instance(), status.generation, &self.id, &sealed);
        let signature = self.key.sign(&message).to_bytes();
        service
            .submit_part("ceremony", &self.id, &sealed, &signature)
            .map(|(vp, _)| vp)
    }
}

pub fn admin() -> Actor {
    Actor {
        principal: "admin-1".into(),
        role: Role::Admin,
        auth: AuthMethod::AdminSignatures,
    }
}

/// A manager acting through the service directly (an operator at the
/// command line): not an API credential, so no `credential.issued` is
/// needed; the role table still applies to its role.
pub fn user(name: &str) -> Actor {
    Actor {
        principal: name.into(),
        role: Role::Manager,
        auth: AuthMethod::LocalCli,
    }
}

pub struct KeyEnv {
    pub data: PathBuf,
    pub clock: TestClock,
    pub service: KeyService,
    pub owners: Vec<Owner>,
    pub hsm: Arc<dyn HsmBackend>,
}

/// Opens (or creates) `instance` under `data` with `hsm`.
pub fn open_service(
    data: &Path,
    instance: &str,
    hsm: Arc<dyn HsmBackend>,
    clock: &TestClock,
) -> KeyService {
    let store = EmbeddedStore::open(data).expect("store");
    let config = WriterConfig {
        clock: clock.as_clock(),
        ..WriterConfig::default()
    };
    let ledger = if store
        .list_instances()
        .expect("list")
        .iter()
        .any(|i| i == instance)
    {
        Ledger::open(&store, data, instance, config).expect("open ledger")
    } else {
        let admin = InitialAdmin {
            admin_id: keyledger_core::governance::admin_id(&admin_key().verifying_key()),
            public_key: "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=".into(),
        };
        Ledger::create(&store, data, instance, &admin, "test", config).expect("create ledger")
    };
    let material = Arc::new(EmbeddedMaterialStore::open(data).expect("material"));
    KeyService::open(ledger.writer().clone(), hsm, material, clock.as_clock())
        .expect("service")
        // RSA-2048 import tokens: a 4096-bit key takes seconds to generate.
        .with_import_token_key_bits(2048)
}

use keyledger_ledger::store::EventStore;

/// A new instance with two key owners and an active master key.
pub fn ready(data: &Path, instance: &str, hsm: Arc<dyn HsmBackend>) -> KeyEnv {
    let clock = TestClock::new();
    let service = open_service(data, instance, hsm.clone(), &clock);
    let owners = vec![Owner::new("owner-a", 0x11), Owner::new("owner-b", 0x5c)];
    register_owners(&service, &clock, &owners.iter().collect::<Vec<_>>());
    let parts: Vec<&SecretBytes> = owners.iter().map(|o| &o.part).collect();
    load_master_key(&service, &clock, &owners, &parts);
    KeyEnv {
        data: data.to_path_buf(),
        clock,
        service,
        owners,
        hsm,
    }
}

/// Every record of the service's log.
pub fn records(service: &KeyService) -> Vec<keyledger_core::record::Record> {
    let log = service.writer().log();
    log.read(0, log.head().size).expect("read log")
}

/// The event types of the service's log, in order.
pub fn event_types(service: &KeyService) -> Vec<String> {
    records(service)
        .iter()
        .map(|r| {
            keyledger_core::event::Envelope::parse(&r.event)
                .expect("event")
                .event_type
        })
        .collect()
}

/// Projections rebuilt from the log equal the live ones, and every event
/// matches its JSON Schema.
pub fn assert_log_consistent(service: &KeyService) {
    let records = records(service);
    let rebuilt =
        keyledger_kms::service::Projections::rebuild(records.iter().map(|r| r.event.as_slice()));
    assert_eq!(
        rebuilt,
        service.projections(),
        "rebuilt projections differ from the live state"
    );
    super::events::Schemas::load().check_all(&records);
}
