//! REST ledger/admin test setup: real instances in a temporary data dir
//! (embedded store, software HSM, one shared test clock), API credentials
//! issued by administrator command (only SHA-256 digests reach the log),
//! then a server `Registry` opened over that directory, as `keyledger
//! serve` does. Gives the `AppState` for `keyledger::server::app` and the
//! bearer tokens per instance and role.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use actix_web::web;

use keyledger::hsm::HsmBackend;
use keyledger::hsm::software::SoftwareHsm;
use keyledger::secret::SecretBytes;
use keyledger::server::AppState;
use keyledger::server::registry::Registry;

use super::key_env::{
    Owner, TestClock, issue_credential, load_master_key, open_service, register_owners,
};

/// The roles a ready instance gets a credential for.
pub const ROLES: [&str; 4] = ["reader", "writer", "manager", "auditor"];

pub struct RestLedgerEnv {
    pub tmp: tempfile::TempDir,
    pub data: PathBuf,
    pub clock: TestClock,
    pub hsm: Arc<dyn HsmBackend>,
    pub state: web::Data<AppState>,
    /// Bearer token by (instance, role).
    pub tokens: BTreeMap<(String, String), String>,
}

impl RestLedgerEnv {
    /// `ready` instances get two key owners, an active master key and one
    /// credential per role in [`ROLES`]; `bare` instances are only created
    /// (imprint mode: the initial administrator is `key_env::admin_key`).
    pub fn build(ready: &[&str], bare: &[&str]) -> Self {
        let tmp = tempfile::tempdir().expect("tmp");
        let data = tmp.path().join("data");
        let clock = TestClock::new();
        let hsm: Arc<dyn HsmBackend> = Arc::new(SoftwareHsm::new());
        let mut tokens = BTreeMap::new();
        for instance in ready {
            let service = open_service(&data, instance, hsm.clone(), &clock);
            let owners = vec![Owner::new("owner-a", 0x21), Owner::new("owner-b", 0x6d)];
            register_owners(&service, &clock, &owners.iter().collect::<Vec<_>>());
            let parts: Vec<&SecretBytes> = owners.iter().map(|o| &o.part).collect();
            load_master_key(&service, &clock, &owners, &parts);
            for role in ROLES {
                let token = issue_credential(&service, &clock, &format!("{instance}-{role}"), role);
                tokens.insert((instance.to_string(), role.to_string()), token);
            }
            service.shutdown();
        }
        for instance in bare {
            open_service(&data, instance, hsm.clone(), &clock).shutdown();
        }
        let registry = Registry::open_all(
            &keyledger::instance::Storage::embedded(&data).expect("storage"),
            hsm.clone(),
            clock.as_clock(),
        )
        .expect("open registry");
        let state = web::Data::new(AppState {
            registry: Arc::new(registry),
            clock: clock.as_clock(),
            sinks: Default::default(),
        });
        RestLedgerEnv {
            tmp,
            data,
            clock,
            hsm,
            state,
            tokens,
        }
    }

    pub fn token(&self, instance: &str, role: &str) -> &str {
        self.tokens
            .get(&(instance.to_string(), role.to_string()))
            .expect("token")
    }

    pub fn service(&self, instance: &str) -> Arc<keyledger::keys::service::KeyService> {
        self.state.registry.get(instance).expect("instance")
    }
}
