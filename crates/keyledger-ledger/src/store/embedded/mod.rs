//! The embedded backend: plain files under `DATA_DIR/instances/<name>/log/`,
//! nothing to install. See `docs/STORE-EMBEDDED.md` for the byte layout,
//! durability and recovery rules.
//!
//! - `records.log`: the append-only record log (source of truth), one
//!   `write` + one `fdatasync` per `append` batch.
//! - `records.idx`, `tree.nodes`, `trusted`: derived data (offset index,
//!   Merkle nodes, last fsynced point), validated and completed at open.
//! - `checkpoint.note`: the latest signed checkpoint, replaced atomically.
//! - `LOCK`: an exclusive `flock` held while the log is open (one writer per
//!   instance across processes).

pub(crate) mod check;
mod files;
mod frame;
mod log;
mod nodes;
mod recovery;
mod scan;

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

pub use log::EmbeddedLog;
pub use recovery::{OpenReport, TailRecovery};

use super::{EventStore, InstanceLog, StoreError, check_instance_name};
use files::{CHECKPOINT_FILE, INDEX_FILE, NODES_FILE, RECORDS_FILE, TRUSTED_FILE};

/// Directory under the data dir holding one directory per instance.
const INSTANCES_DIR: &str = "instances";
/// Directory, inside an instance's directory, owned by this backend.
const LOG_DIR: &str = "log";

/// A store keeping each instance's log in files under a data directory.
pub struct EmbeddedStore {
    data_dir: PathBuf,
    /// The report of the latest open of each instance by this store.
    reports: Mutex<HashMap<String, OpenReport>>,
}

/// Whether an instance's log exists.
enum LogState {
    Absent,
    Present,
    /// No record log, yet files that only exist beside one.
    Damaged,
}

impl EmbeddedStore {
    /// Opens (creating if needed) the store rooted at `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        crate::data_dir::create_dir_all(&data_dir.join(INSTANCES_DIR))?;
        Ok(EmbeddedStore {
            data_dir: data_dir.to_path_buf(),
            reports: Mutex::new(HashMap::new()),
        })
    }

    /// The data directory this store was opened on.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// `DATA_DIR/instances/<instance>/log`, the only directory of an
    /// instance this backend touches.
    pub fn log_dir(&self, instance: &str) -> PathBuf {
        self.data_dir
            .join(INSTANCES_DIR)
            .join(instance)
            .join(LOG_DIR)
    }

    /// Like [`EventStore::create_instance`], returning the concrete log.
    pub fn create_log(&self, instance: &str) -> Result<Arc<EmbeddedLog>, StoreError> {
        check_instance_name(instance)?;
        let log_dir = self.log_dir(instance);
        self.refuse_existing(instance, &log_dir)?;
        let instances = self.data_dir.join(INSTANCES_DIR);
        let instance_dir = instances.join(instance);
        crate::data_dir::create_dir_all(&instance_dir)?;
        match crate::data_dir::create_dir(&log_dir) {
            Ok(()) => {}
            // A creation that crashed half-way is completed.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e.into()),
        }
        files::sync_dir(&instance_dir)?;
        files::sync_dir(&instances)?;
        files::sync_dir(&self.data_dir)?;
        let lock = files::lock(&log_dir, instance)?;
        self.refuse_existing(instance, &log_dir)?;
        for derived in [INDEX_FILE, NODES_FILE] {
            match fs::remove_file(log_dir.join(derived)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        files::write_atomic(&log_dir, RECORDS_FILE, &frame::header())?;
        self.open_locked(instance, log_dir, lock)
    }

    /// Like [`EventStore::open_instance`], returning the concrete log.
    pub fn open_log(&self, instance: &str) -> Result<Arc<EmbeddedLog>, StoreError> {
        check_instance_name(instance)?;
        let log_dir = self.log_dir(instance);
        self.require_existing(instance, &log_dir)?;
        let lock = files::lock(&log_dir, instance)?;
        self.require_existing(instance, &log_dir)?;
        self.open_locked(instance, log_dir, lock)
    }

    /// The torn tail discarded by the latest open of `instance` through this
    /// store, if any, so the writer can record a `ledger.tail_recovered`
    /// event. Copies of discarded bytes are also kept in `log/torn/`.
    pub fn recovery_report(&self, instance: &str) -> Option<TailRecovery> {
        self.open_report(instance).and_then(|r| r.tail)
    }

    /// The full report of the latest open of `instance` through this store.
    pub fn open_report(&self, instance: &str) -> Option<OpenReport> {
        self.reports
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(instance)
            .cloned()
    }

    fn state(log_dir: &Path) -> io::Result<LogState> {
        if fs::metadata(log_dir.join(RECORDS_FILE)).is_ok_and(|m| m.is_file()) {
            return Ok(LogState::Present);
        }
        for name in [CHECKPOINT_FILE, TRUSTED_FILE] {
            match fs::symlink_metadata(log_dir.join(name)) {
                Ok(_) => return Ok(LogState::Damaged),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) if e.kind() == io::ErrorKind::NotADirectory => {}
                Err(e) => return Err(e),
            }
        }
        Ok(LogState::Absent)
    }

    fn refuse_existing(&self, instance: &str, log_dir: &Path) -> Result<(), StoreError> {
        match Self::state(log_dir)? {
            LogState::Absent => Ok(()),
            LogState::Present => Err(StoreError::InstanceExists(instance.to_string())),
            LogState::Damaged => Err(missing_log()),
        }
    }

    fn require_existing(&self, instance: &str, log_dir: &Path) -> Result<(), StoreError> {
        match Self::state(log_dir)? {
            LogState::Present => Ok(()),
            LogState::Absent => Err(StoreError::UnknownInstance(instance.to_string())),
            LogState::Damaged => Err(missing_log()),
        }
    }

    fn open_locked(
        &self,
        instance: &str,
        dir: PathBuf,
        lock: fs::File,
    ) -> Result<Arc<EmbeddedLog>, StoreError> {
        let records = OpenOptions::new()
            .read(true)
            .write(true)
            .open(dir.join(RECORDS_FILE))?;
        let index = files::open_rw(&dir.join(INDEX_FILE))?;
        let nodes = files::open_rw(&dir.join(NODES_FILE))?;
        let log_files = log::LogFiles {
            dir,
            _lock: lock,
            records,
            index,
            nodes,
        };
        let recovered = recovery::recover(&log_files)?;
        self.reports
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(instance.to_string(), recovered.report.clone());
        Ok(Arc::new(EmbeddedLog::new(
            instance.to_string(),
            log_files,
            recovered.frontier,
            recovered.end,
            recovered.report,
        )))
    }
}

fn missing_log() -> StoreError {
    StoreError::Corrupt {
        seq: 0,
        reason: format!("{RECORDS_FILE} is missing although the instance has a checkpoint"),
    }
}

impl EventStore for EmbeddedStore {
    fn create_instance(&self, instance: &str) -> Result<Arc<dyn InstanceLog>, StoreError> {
        Ok(self.create_log(instance)?)
    }

    fn open_instance(&self, instance: &str) -> Result<Arc<dyn InstanceLog>, StoreError> {
        Ok(self.open_log(instance)?)
    }

    fn list_instances(&self) -> Result<Vec<String>, StoreError> {
        let mut names = Vec::new();
        for entry in fs::read_dir(self.data_dir.join(INSTANCES_DIR))? {
            let entry = entry?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if check_instance_name(&name).is_ok()
                && matches!(Self::state(&self.log_dir(&name))?, LogState::Present)
            {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }
}
