//! Key and master-key commands of one instance: each validates against the
//! projections, does its HSM work, appends its event, and only then answers
//! (audit first: no ciphertext, plaintext or key leaves before its event is
//! durable). The projections are updated by applying the very event bytes
//! that were stored, so they always equal a rebuild from the log.
//!
//! - [`ceremony`](self): key owners, part loading, commit, activate, master-key
//!   rotation, unseal after restart.
//! - lifecycle: create/import, rotate, enable/disable, dual-auth delete,
//!   restore, purge, expiry.
//! - approvals: requests, approvals by other principals, cancellation and
//!   expiry of gated operations (dual-authorisation delete and purge).
//! - worker: the crypto worker, which executes an approved request once and
//!   records its outcome; rotation: policy-driven rotation.
//! - activation: a key's activation and expiration dates, applied through
//!   the log by the scheduler and before every command and key use.
//! - versions: new versions' material, checked and self-tested before any
//!   event names it.
//! - envelope: wrap, unwrap, rewrap, standard-key payload.
//! - import: import tokens (create, retrieve) and opening a token import.

mod access;
mod activation;
mod admin;
mod approvals;
mod ceremony;
mod deferred;
mod envelope;
mod error;
pub mod failpoint;
mod history;
mod import;
mod lifecycle;
mod rings_aliases;
mod rotation;
mod versions;
mod worker;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use chrono::{DateTime, Utc};

pub use approvals::Gated;
pub use ceremony::{
    CeremonyStatus, STATUS_REQUEST_SKEW_SECS, ceremony_status_message, part_submission_message,
};
pub use deferred::Deferred;
pub use envelope::{UnwrapResult, WrapResult};
pub use error::KeyError;
pub use history::AsOf;
pub use import::TokenImport;
pub use lifecycle::{CreateKey, KeyMaterialSource};
pub use rings_aliases::{MAX_ALIASES, check_alias, check_key_ring_id, check_new_aliases};
pub use rotation::rotation_due;

use crate::hsm::{HsmBackend, KeyBinding, WrappedMaterial};
use crate::import_token::{self};
use crate::material::KeyMaterialStore;
use keyledger_core::decide::approval::{self, ApprovalChange, ApprovalCommand};
use keyledger_core::decide::import_token::{ImportTokenChange, ImportTokenCommand};
use keyledger_core::decide::key::{self, KeyChange, KeyCommand};
use keyledger_core::decide::key_ring::{KeyRingChange, KeyRingCommand};
use keyledger_core::decide::master_key::{MasterKeyChange, MasterKeyCommand};
use keyledger_core::event::{
    AccessDenied, Actor, Envelope, EventDraft, EventPayload, KeyOperationFailed,
};
use keyledger_core::keys::projection::KeyRecord;
use keyledger_core::record::Record;
use keyledger_ledger::audit::AuditLog;
use keyledger_ledger::writer::{
    Clock, Follower, LedgerWriter, PendingReceipt, Receipt, WriteError, WriterStats,
};

/// The event recording a refused key operation.
fn operation_failed(key_id: &str, action: &str, error: &KeyError) -> KeyOperationFailed {
    KeyOperationFailed {
        key_id: key_id.chars().take(128).collect(),
        action: action.to_string(),
        reason: error.reason().code().to_string(),
    }
}

pub use keyledger_core::Projections;

/// The key service of one instance.
pub struct KeyService {
    instance: String,
    writer: LedgerWriter,
    hsm: Arc<dyn HsmBackend>,
    material: Arc<dyn KeyMaterialStore>,
    /// The projections; on a shared log also written by the writer's
    /// thread through [`ServiceFollower`].
    state: Arc<RwLock<Projections>>,
    /// On a shared log: moves (under the state's write lock) whenever a
    /// record another server appended may change a decision.
    view: Arc<AtomicU64>,
    /// Serialises commands that change key or master-key state (the write
    /// side), so each is validated against the state its event is applied
    /// to. Key use takes the shared side: uses run concurrently with each
    /// other, but no state change comes between a use's decision and its
    /// event ([`KeyService::submit_key_use`]).
    commands: RwLock<()>,
    clock: Clock,
    /// Wrapped material by (key id, version), read through from the store.
    material_cache: RwLock<HashMap<(String, u32), WrappedMaterial>>,
    /// RSA modulus size of new import tokens.
    import_token_bits: usize,
}

/// Records read from the log per step while replaying.
const REPLAY_CHUNK: u64 = 4096;

/// Decisions made for one command on a shared log before its error stands
/// (each retry follows a record another server appended in between).
const MAX_DECISIONS: u32 = 8;

/// Event types no projection uses: another server's records of these
/// cannot change a decision, so they do not move the view.
const VIEW_NEUTRAL: &[&str] = &[
    "key.wrapped",
    "key.unwrapped",
    "key.rewrapped",
    "key.payload_read",
    "key.operation_failed",
    "access.denied",
];

/// Applies a shared log's records to a service's projections for its
/// writer ([`Follower`]), moving the view when another server's record may
/// change a decision.
struct ServiceFollower {
    state: Arc<RwLock<Projections>>,
    view: Arc<AtomicU64>,
}

impl Follower for ServiceFollower {
    fn follow(&self, first: u64, records: &[Record], others: bool) {
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        let mut moved = false;
        for (seq, record) in (first..).zip(records) {
            if let Ok(envelope) = Envelope::parse(&record.event) {
                moved |= others && !VIEW_NEUTRAL.contains(&envelope.event_type.as_str());
                state.apply(seq, &envelope);
            }
        }
        if moved {
            self.view.fetch_add(1, Ordering::AcqRel);
        }
    }

    fn view(&self) -> u64 {
        self.view.load(Ordering::Acquire)
    }
}

impl KeyService {
    /// Opens the service over an instance's writer, replaying its log into
    /// the projections; then the crypto worker completes every approved
    /// request that has no outcome yet (one a crash interrupted).
    pub fn open(
        writer: LedgerWriter,
        hsm: Arc<dyn HsmBackend>,
        material: Arc<dyn KeyMaterialStore>,
        clock: Clock,
    ) -> Result<Self, KeyError> {
        let log = writer.log().clone();
        let size = log.head().size;
        let mut projections = Projections::default();
        let mut start = 0;
        while start < size {
            let end = (start + REPLAY_CHUNK).min(size);
            let records = log.read(start, end).map_err(|e| {
                KeyError::Write(keyledger_ledger::writer::WriteError::Storage(e.to_string()))
            })?;
            for (i, record) in records.iter().enumerate() {
                if let Ok(envelope) = Envelope::parse(&record.event) {
                    projections.apply(start + i as u64, &envelope);
                }
            }
            start = end;
        }
        let state = Arc::new(RwLock::new(projections));
        let view = Arc::new(AtomicU64::new(0));
        if writer.shared() {
            // Another server's records (and, on a shared log, our own) reach
            // the projections through the writer, in log order.
            let follower = ServiceFollower {
                state: state.clone(),
                view: view.clone(),
            };
            writer.follow(Arc::new(follower), size)?;
        }
        let service = KeyService {
            instance: writer.instance().to_string(),
            writer,
            hsm,
            material,
            state,
            view,
            commands: RwLock::new(()),
            clock,
            material_cache: RwLock::new(HashMap::new()),
            import_token_bits: import_token::DEFAULT_KEY_BITS,
        };
        service.run_worker()?;
        Ok(service)
    }

    /// Makes new import tokens with `bits`-bit RSA keys instead of Key
    /// Protect's 4096 (tests: 2048 generates in a fraction of the time).
    /// Sizes outside 2048..=8192 are refused when a token is created.
    pub fn with_import_token_key_bits(mut self, bits: usize) -> Self {
        self.import_token_bits = bits;
        self
    }

    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// True when wrap and unwrap may be started on an async event loop (the
    /// HSM backend's calls never wait): see [`Deferred`].
    pub fn key_use_is_immediate(&self) -> bool {
        // A shared log's writer may be asked to catch up before a refusal,
        // and a database-backed material store blocks: both belong on a
        // blocking pool.
        self.hsm.calls_are_immediate() && self.material.reads_are_local() && !self.writer.shared()
    }

    /// The ledger writer (for the command line and tests; the server reads
    /// through [`KeyService::audit_log`] and [`KeyService::writer_stats`]).
    pub fn writer(&self) -> &LedgerWriter {
        &self.writer
    }

    /// The read-only audit view of this instance's log.
    pub fn audit_log(&self) -> &dyn AuditLog {
        &self.writer
    }

    /// The ledger writer's counters (batches, events, checkpoints, ...).
    pub fn writer_stats(&self) -> &WriterStats {
        self.writer.stats()
    }

    /// Stops the service and its ledger writer once pending appends are
    /// durable (the writer must not be shared with anything still running).
    pub fn shutdown(self) {
        self.writer.shutdown();
    }

    /// Runs `f` on the projections under the read lock (no copy).
    pub fn with_projections<R>(&self, f: impl FnOnce(&Projections) -> R) -> R {
        f(&self.read())
    }

    /// A snapshot of the projections.
    pub fn projections(&self) -> Projections {
        self.read().clone()
    }

    /// One key, by id or alias.
    pub fn key(&self, id_or_alias: &str) -> Result<KeyRecord, KeyError> {
        self.read()
            .keys
            .resolve(id_or_alias)
            .cloned()
            .ok_or_else(|| KeyError::NotFound(id_or_alias.to_string()))
    }

    fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    fn read(&self) -> RwLockReadGuard<'_, Projections> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn cache_read(&self) -> RwLockReadGuard<'_, HashMap<(String, u32), WrappedMaterial>> {
        self.material_cache
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn cache_write(&self) -> RwLockWriteGuard<'_, HashMap<(String, u32), WrappedMaterial>> {
        self.material_cache
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Drops cached material of a key (after purge).
    fn forget_material(&self, key_id: &str) {
        self.cache_write().retain(|(k, _), _| k != key_id);
    }

    /// The write side of the command lock. On a shared log the service
    /// then catches up with what other servers appended, so the command is
    /// decided on the latest state (the writer still refuses it if another
    /// server's record comes first: [`Self::decide_then_append`]).
    fn lock_commands(&self) -> RwLockWriteGuard<'_, ()> {
        let guard = self
            .commands
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if self.writer.shared() {
            // A failure shows again, and is answered, when the command appends.
            let _ = self.writer.catch_up();
        }
        guard
    }

    /// The shared side of the command lock: key use.
    fn share_commands(&self) -> RwLockReadGuard<'_, ()> {
        self.commands.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends an event and applies the stored bytes to the projections.
    fn record<P: EventPayload>(
        &self,
        actor: &Actor,
        correlation_id: &str,
        payload: &P,
    ) -> Result<Receipt, KeyError> {
        let draft = EventDraft::new(actor.clone(), correlation_id, payload)
            .map_err(keyledger_ledger::writer::WriteError::from)?;
        self.append(draft)
    }

    /// Decides a key change with the key aggregate ([`key::decide`], the
    /// decision `verify --policy` replays) against the projections at the
    /// service's time, then appends the events it produces and applies
    /// them. The caller holds the command lock and has made whatever the
    /// change records (ids, HSM output); a refusal appends nothing.
    fn decide_key(
        &self,
        actor: &Actor,
        correlation_id: &str,
        change: KeyChange,
    ) -> Result<Receipt, KeyError> {
        let command = KeyCommand {
            actor: actor.clone(),
            correlation_id: correlation_id.to_string(),
            at: self.now(),
            change,
        };
        self.decide_then_append(|state| Ok(key::decide(state, &command)?))
    }

    /// [`Self::decide_key`] for the approval aggregate
    /// ([`approval::decide`]).
    fn decide_approval(
        &self,
        actor: &Actor,
        correlation_id: &str,
        change: ApprovalChange,
    ) -> Result<Receipt, KeyError> {
        let command = ApprovalCommand {
            actor: actor.clone(),
            correlation_id: correlation_id.to_string(),
            at: self.now(),
            change,
        };
        self.decide_then_append(|state| Ok(approval::decide(state, &command)?))
    }

    /// [`Self::decide_key`] for the key-ring aggregate
    /// ([`keyledger_core::decide::key_ring::decide`]).
    fn decide_key_ring(
        &self,
        actor: &Actor,
        correlation_id: &str,
        change: KeyRingChange,
    ) -> Result<Receipt, KeyError> {
        let command = KeyRingCommand {
            actor: actor.clone(),
            correlation_id: correlation_id.to_string(),
            at: self.now(),
            change,
        };
        self.decide_then_append(|state| {
            Ok(keyledger_core::decide::key_ring::decide(state, &command)?)
        })
    }

    /// [`Self::decide_key`] for the import-token aggregate
    /// ([`import_token::decide`]).
    fn decide_import_token(
        &self,
        actor: &Actor,
        correlation_id: &str,
        change: ImportTokenChange,
    ) -> Result<Receipt, KeyError> {
        let command = ImportTokenCommand {
            actor: actor.clone(),
            correlation_id: correlation_id.to_string(),
            at: self.now(),
            change,
        };
        self.decide_then_append(|state| {
            Ok(keyledger_core::decide::import_token::decide(
                state, &command,
            )?)
        })
    }

    /// [`Self::decide_key`] for the master-key aggregate
    /// ([`keyledger_core::decide::master_key::decide`]).
    fn decide_master_key(
        &self,
        actor: &Actor,
        correlation_id: &str,
        change: MasterKeyChange,
    ) -> Result<Receipt, KeyError> {
        let command = MasterKeyCommand {
            actor: actor.clone(),
            correlation_id: correlation_id.to_string(),
            at: self.now(),
            change,
        };
        self.decide_then_append(|state| {
            Ok(keyledger_core::decide::master_key::decide(
                state,
                &self.instance,
                &command,
            )?)
        })
    }

    /// The master-key decision on `change` without appending: for a step
    /// whose HSM effect comes between the decision and the event.
    fn decide_master_key_only(
        &self,
        actor: &Actor,
        correlation_id: &str,
        change: &MasterKeyChange,
    ) -> Result<(), KeyError> {
        let command = MasterKeyCommand {
            actor: actor.clone(),
            correlation_id: correlation_id.to_string(),
            at: self.now(),
            change: change.clone(),
        };
        Ok(keyledger_core::decide::master_key::check(
            &self.read(),
            &self.instance,
            &command,
        )?)
    }

    /// Appends a decision's drafts in order and answers the last receipt; a
    /// decision that records nothing is an internal error.
    fn append_drafts(
        &self,
        drafts: Vec<EventDraft>,
        basis: Option<u64>,
    ) -> Result<Receipt, KeyError> {
        let mut receipt = None;
        for draft in drafts {
            receipt = Some(self.append_on(draft, basis)?);
        }
        receipt.ok_or_else(|| KeyError::Invalid("the command records nothing".into()))
    }

    /// Decides with `decide` on the projections and appends what it
    /// records. On a shared log the decision is made on the view it is read
    /// with: if another server's record moved that view before the event
    /// was sequenced ([`WriteError::Stale`]: nothing stored), or the
    /// decision is a refusal and the service had not yet seen everything
    /// others appended, it catches up and decides again.
    fn decide_then_append(
        &self,
        decide: impl Fn(&Projections) -> Result<Vec<EventDraft>, KeyError>,
    ) -> Result<Receipt, KeyError> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let (decision, basis) = {
                let state = self.read();
                (decide(&state), self.basis())
            };
            let result = decision.and_then(|drafts| self.append_drafts(drafts, basis));
            match result {
                Err(e) if attempts < MAX_DECISIONS && self.decide_again(&e) => continue,
                other => return other,
            }
        }
    }

    /// On a shared log, whether `error` may be an answer to a view that is
    /// out of date: stale (the writer has already caught up), or a refusal
    /// after which catching up with other servers moved the view.
    fn decide_again(&self, error: &KeyError) -> bool {
        if !self.writer.shared() {
            return false;
        }
        match error {
            KeyError::Write(WriteError::Stale) => true,
            KeyError::Write(_) | KeyError::Hsm(_) | KeyError::Material(_) => false,
            _ => self.caught_up_moved(),
        }
    }

    /// Catches up with what other servers appended; true if that moved the
    /// view (false on a log only this server writes).
    fn caught_up_moved(&self) -> bool {
        if !self.writer.shared() {
            return false;
        }
        let before = self.view.load(Ordering::Acquire);
        self.writer.catch_up().is_ok() && self.view.load(Ordering::Acquire) != before
    }

    /// Catches up with what other servers appended to a shared log (a
    /// no-op otherwise): the server calls it when it hears of their appends.
    pub fn catch_up(&self) -> Result<u64, KeyError> {
        Ok(self.writer.catch_up()?)
    }

    /// The view decisions are made on: read with the projections (under
    /// their lock); `None` on a log only this server writes.
    fn basis(&self) -> Option<u64> {
        self.writer
            .shared()
            .then(|| self.view.load(Ordering::Acquire))
    }

    /// Appends a draft decided on `basis` and, on a log only this server
    /// writes, applies the stored bytes to the projections (on a shared log
    /// the writer's follower has applied them before answering).
    fn append_on(&self, draft: EventDraft, basis: Option<u64>) -> Result<Receipt, KeyError> {
        let receipt = self.writer.submit_on(draft, basis).wait()?;
        if !self.writer.shared()
            && let Ok(envelope) = Envelope::parse(&receipt.event)
        {
            self.state
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .apply(receipt.seq, &envelope);
        }
        Ok(receipt)
    }

    /// Appends a draft with no decision behind it (see [`Self::append_on`]).
    fn append(&self, draft: EventDraft) -> Result<Receipt, KeyError> {
        self.append_on(draft, None)
    }

    /// Decides a key use (wrap, unwrap, rewrap, payload read) with the key
    /// aggregate ([`key::decide`], the decision `verify --policy` replays
    /// for every use) and hands its event to the writer without waiting.
    /// The caller holds the shared side of the command lock
    /// ([`Self::share_commands`]) from before it used the key's material
    /// until this returns, so no state change is sequenced between the
    /// decision and the event. A refusal appends nothing.
    fn submit_key_use(
        &self,
        actor: &Actor,
        correlation_id: &str,
        change: KeyChange,
    ) -> Result<PendingReceipt, KeyError> {
        let command = KeyCommand {
            actor: actor.clone(),
            correlation_id: correlation_id.to_string(),
            at: self.now(),
            change,
        };
        let (drafts, basis) = {
            let state = self.read();
            (key::decide(&state, &command), self.basis())
        };
        let mut drafts = drafts?.into_iter();
        match (drafts.next(), drafts.next()) {
            (Some(draft), None) => Ok(self.writer.submit_on(draft, basis)),
            _ => Err(KeyError::Invalid(
                "a key use records exactly one event".into(),
            )),
        }
    }

    /// Appends an event the projections ignore (key use): no state lock.
    fn record_use<P: EventPayload>(
        &self,
        actor: &Actor,
        correlation_id: &str,
        payload: &P,
    ) -> Result<Receipt, KeyError> {
        Ok(self.submit_use(actor, correlation_id, payload)?.wait()?)
    }

    /// Hands an event the projections ignore to the writer without waiting.
    fn submit_use<P: EventPayload>(
        &self,
        actor: &Actor,
        correlation_id: &str,
        payload: &P,
    ) -> Result<PendingReceipt, KeyError> {
        let draft = EventDraft::new(actor.clone(), correlation_id, payload)
            .map_err(keyledger_ledger::writer::WriteError::from)?;
        Ok(self.writer.submit(draft))
    }

    /// Records a refused key operation, then returns the refusal. If even
    /// the denial cannot be recorded, the caller still gets the refusal.
    fn refuse(
        &self,
        actor: &Actor,
        correlation_id: &str,
        key_id: &str,
        action: &str,
        error: KeyError,
    ) -> KeyError {
        let event = operation_failed(key_id, action, &error);
        let _ = self.record_use(actor, correlation_id, &event);
        error
    }

    /// [`Self::refuse`] without waiting: the refusal is released once its
    /// event is durable (or could not be recorded).
    fn refusal<T>(
        &self,
        actor: &Actor,
        correlation_id: &str,
        key_id: &str,
        action: &str,
        error: KeyError,
    ) -> Deferred<T> {
        let event = operation_failed(key_id, action, &error);
        match self.submit_use(actor, correlation_id, &event) {
            Ok(receipt) => Deferred::refused(receipt, error),
            Err(_) => Deferred::failed(error),
        }
    }

    /// Records a refused ceremony or access attempt.
    fn deny(
        &self,
        actor: &Actor,
        correlation_id: &str,
        action: &str,
        target: &str,
        error: KeyError,
    ) -> KeyError {
        let event = AccessDenied {
            action: action.to_string(),
            target: target.chars().take(128).collect(),
            reason: error.to_string(),
        };
        let _ = self.record_use(actor, correlation_id, &event);
        error
    }

    /// The binding of a key version under the master-key generation its
    /// stored material is wrapped with.
    fn binding(&self, key_id: &str, version: u32, mk_generation: u32) -> KeyBinding {
        KeyBinding {
            instance: self.instance.clone(),
            key_id: key_id.to_string(),
            version,
            mk_generation,
        }
    }

    /// The current master-key generation, or why there is none usable.
    fn current_generation(&self) -> Result<u32, KeyError> {
        let generation = self
            .read()
            .master
            .current
            .as_ref()
            .map(|(g, _)| *g)
            .ok_or(KeyError::NoMasterKey)?;
        match self.hsm.master_key_status(&self.instance)?.current {
            Some((g, _)) if g == generation => Ok(generation),
            _ => Err(KeyError::Sealed),
        }
    }
}
