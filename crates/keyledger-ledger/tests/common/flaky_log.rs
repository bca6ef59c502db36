//! An instance log whose appends fail while `broken` is set ("disk full"):
//! for fail-closed tests of the writer, the key service and the API.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use keyledger_core::merkle;
use keyledger_core::record::Record;
use keyledger_ledger::store::{ChainHead, InstanceLog, SealedRecord, StoreError};

pub struct FlakyLog {
    pub inner: Arc<dyn InstanceLog>,
    pub broken: AtomicBool,
}

impl FlakyLog {
    pub fn new(inner: Arc<dyn InstanceLog>) -> Self {
        FlakyLog {
            inner,
            broken: AtomicBool::new(false),
        }
    }
}

impl InstanceLog for FlakyLog {
    fn instance(&self) -> &str {
        self.inner.instance()
    }
    fn head(&self) -> ChainHead {
        self.inner.head()
    }
    fn append(&self, batch: &[SealedRecord]) -> Result<(), StoreError> {
        if self.broken.load(Ordering::SeqCst) {
            return Err(StoreError::Io(std::io::Error::other("disk full")));
        }
        self.inner.append(batch)
    }
    fn read(&self, start: u64, end: u64) -> Result<Vec<Record>, StoreError> {
        self.inner.read(start, end)
    }
    fn node(&self, level: u8, index: u64) -> Result<merkle::Hash, StoreError> {
        self.inner.node(level, index)
    }
    fn save_checkpoint(&self, note: &str) -> Result<(), StoreError> {
        self.inner.save_checkpoint(note)
    }
    fn latest_checkpoint(&self) -> Result<Option<String>, StoreError> {
        self.inner.latest_checkpoint()
    }
}
