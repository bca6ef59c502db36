//! What metrics and `/ready` see of the SIEM sinks running ([`super::sinks`]
//! starts and stops them): each sink's shared status, by instance and name.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use keyledger_export::delivery::{DeliveryConfig, SinkStatus};

/// One running sink, as metrics and `/ready` see it.
#[derive(Debug, Clone)]
pub struct SinkView {
    /// The instance.
    pub instance: String,
    /// The sink's name.
    pub sink: String,
    /// Its status.
    pub status: Arc<SinkStatus>,
}

/// The sinks running now, for metrics and readiness.
#[derive(Debug, Default)]
pub struct SinkBoard {
    sinks: RwLock<BTreeMap<(String, String), Arc<SinkStatus>>>,
    pub(crate) behind_after: RwLock<Option<Duration>>,
}

impl SinkBoard {
    /// Every running sink, by instance and name.
    pub fn all(&self) -> Vec<SinkView> {
        self.sinks
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|((instance, sink), status)| SinkView {
                instance: instance.clone(),
                sink: sink.clone(),
                status: status.clone(),
            })
            .collect()
    }

    /// Brings every sink's view of its log's size up to date with
    /// `size_of(instance)` (a sink stuck in a write does not look), so its
    /// lag is the records it really has not had acknowledged.
    pub fn refresh(&self, size_of: impl Fn(&str) -> Option<u64>) {
        for s in self.all() {
            if let Some(size) = size_of(&s.instance) {
                s.status.head.fetch_max(size, Ordering::Relaxed);
            }
        }
    }

    /// The sinks that are failing or have not caught up for a while.
    pub fn behind(&self) -> Vec<SinkView> {
        let after = self
            .behind_after
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .unwrap_or(DeliveryConfig::default().behind_after);
        self.all()
            .into_iter()
            .filter(|s| s.status.behind(after))
            .collect()
    }

    pub(crate) fn set(&self, key: (String, String), status: Option<Arc<SinkStatus>>) {
        let mut sinks = self
            .sinks
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match status {
            Some(s) => sinks.insert(key, s),
            None => sinks.remove(&key),
        };
    }
}
