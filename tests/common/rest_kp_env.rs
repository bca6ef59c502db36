//! An in-process Key Protect API over a real instance: `key_env::ready()`
//! (master key active), one bearer credential per role issued by signed
//! administrator command, and request helpers for `actix_web::test`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use actix_web::test::TestRequest;
use actix_web::web;

use keyledger::hsm::HsmBackend;
use keyledger::hsm::software::SoftwareHsm;
use keyledger::keys::service::KeyService;
use keyledger::server::AppState;
use keyledger::server::registry::Registry;

use super::key_env::{self, TestClock};

pub const INSTANCE: &str = "kp-instance";
pub const BODY_LIMIT: usize = 1 << 20;
pub const ERROR_MEDIA: &str = "application/vnd.ibm.kms.error+json";
pub const KEY_MEDIA: &str = "application/vnd.ibm.kms.key+json";

pub struct RestEnv {
    pub service: Arc<KeyService>,
    pub clock: TestClock,
    pub state: web::Data<AppState>,
    /// role (and "manager2", a second manager) -> bearer token.
    pub tokens: BTreeMap<&'static str, String>,
}

/// A ready instance under `data` with credentials for every role.
pub fn rest_env(data: &Path) -> RestEnv {
    let hsm: Arc<dyn HsmBackend> = Arc::new(SoftwareHsm::new());
    let env = key_env::ready(data, INSTANCE, hsm);
    let mut tokens = BTreeMap::new();
    for (name, role) in [
        ("manager", "manager"),
        ("manager2", "manager"),
        ("writer", "writer"),
        ("reader", "reader"),
        ("auditor", "auditor"),
    ] {
        let t = key_env::issue_credential(&env.service, &env.clock, &format!("cred-{name}"), role);
        tokens.insert(name, t);
    }
    let service = Arc::new(env.service);
    let registry = Arc::new(Registry::from_services(vec![service.clone()]));
    let state = web::Data::new(AppState {
        registry,
        clock: env.clock.as_clock(),
        sinks: Default::default(),
    });
    RestEnv {
        service,
        clock: env.clock,
        state,
        tokens,
    }
}

impl RestEnv {
    /// A request to `/api/v2{path}` as `role`, with the instance header.
    pub fn req(&self, method: actix_web::http::Method, path: &str, role: &str) -> TestRequest {
        TestRequest::default()
            .method(method)
            .uri(&format!("/api/v2{path}"))
            .insert_header(("bluemix-instance", INSTANCE))
            .insert_header((
                "authorization",
                format!("Bearer {}", self.tokens.get(role).expect("role")),
            ))
    }

    /// How many `access.denied` events the log holds.
    pub fn denials(&self) -> usize {
        key_env::event_types(&self.service)
            .iter()
            .filter(|t| t.as_str() == "access.denied")
            .count()
    }
}
