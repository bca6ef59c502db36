//! The instances a server serves, opened at start over its [`Storage`],
//! one shared HSM backend (timed per call for the metrics) and the clock
//! (and, on a shared database, opened when another process creates one),
//! and [`AppState`], what every request shares.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use keyledger_kms::hsm::HsmBackend;
use keyledger_kms::hsm::measured::{HsmLatency, MeasuredHsm};
use keyledger_kms::instance::Storage;
use keyledger_kms::service::KeyService;
use keyledger_ledger::writer::Clock;

/// Shared by every request: the instances and the clock.
pub struct AppState {
    /// The instances served.
    pub registry: Arc<Registry>,
    /// The clock events are stamped with.
    pub clock: Clock,
    /// The SIEM sinks running (empty where none run).
    pub sinks: Arc<super::sink_board::SinkBoard>,
}

/// Open instances by name.
pub struct Registry {
    instances: RwLock<BTreeMap<String, Arc<KeyService>>>,
    /// Latency of the HSM calls of every instance, when the registry opened
    /// them (services opened elsewhere are timed by whoever opened them).
    hsm_latency: Option<Arc<HsmLatency>>,
    /// What the registry opened its instances with, to open more later.
    opener: Option<Opener>,
}

/// The storage, HSM and clock instances are opened with.
struct Opener {
    storage: Storage,
    hsm: Arc<dyn HsmBackend>,
    clock: Clock,
}

impl Registry {
    /// Opens every instance found in `storage`; their HSM calls are timed.
    pub fn open_all(
        storage: &Storage,
        hsm: Arc<dyn HsmBackend>,
        clock: Clock,
    ) -> Result<Self, String> {
        let measured = MeasuredHsm::new(hsm);
        let hsm_latency = Some(measured.latency());
        let hsm: Arc<dyn HsmBackend> = Arc::new(measured);
        let mut instances = BTreeMap::new();
        for name in storage.instances()? {
            let service =
                keyledger_kms::instance::open(storage, &name, hsm.clone(), clock.clone())?;
            instances.insert(name, Arc::new(service));
        }
        Ok(Registry {
            instances: RwLock::new(instances),
            hsm_latency,
            opener: Some(Opener {
                storage: storage.clone(),
                hsm,
                clock,
            }),
        })
    }

    /// Opens `name` if it is in the storage and not served yet (another
    /// server or `instance create` made it since this one started);
    /// answers whether it is served now. A new instance starts sealed, like
    /// any instance whose key owners have not loaded its master key here.
    pub fn open_new(&self, name: &str) -> Result<bool, String> {
        if self.get(name).is_some() {
            return Ok(true);
        }
        let Some(opener) = &self.opener else {
            return Ok(false);
        };
        if !opener.storage.instances()?.iter().any(|i| i == name) {
            return Ok(false);
        }
        let mut instances = self
            .instances
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !instances.contains_key(name) {
            let service = keyledger_kms::instance::open(
                &opener.storage,
                name,
                opener.hsm.clone(),
                opener.clock.clone(),
            )?;
            instances.insert(name.to_string(), Arc::new(service));
        }
        Ok(true)
    }

    /// A registry of services opened elsewhere (tests, embedding).
    pub fn from_services(services: Vec<Arc<KeyService>>) -> Self {
        Registry {
            instances: RwLock::new(
                services
                    .into_iter()
                    .map(|s| (s.instance().to_string(), s))
                    .collect(),
            ),
            hsm_latency: None,
            opener: None,
        }
    }

    /// The latency of the HSM calls, per operation (`None` for
    /// [`Registry::from_services`]).
    pub fn hsm_latency(&self) -> Option<&HsmLatency> {
        self.hsm_latency.as_deref()
    }

    pub fn get(&self, name: &str) -> Option<Arc<KeyService>> {
        self.instances
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(name)
            .cloned()
    }

    pub fn names(&self) -> Vec<String> {
        self.instances
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .keys()
            .cloned()
            .collect()
    }

    pub fn all(&self) -> Vec<Arc<KeyService>> {
        self.instances
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }

    /// Stops every instance's writer once its pending appends are durable.
    pub fn shutdown(&self) {
        let all = std::mem::take(
            &mut *self
                .instances
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for (_, service) in all {
            if let Ok(service) = Arc::try_unwrap(service) {
                service.shutdown();
            }
        }
    }
}
