//! The ordered part of verification: sequence numbers, chain links, the key
//! in force (genesis and rotations), time order, the Merkle frontier and the
//! checkpoints.

use std::collections::HashMap;

use ed25519_dalek::VerifyingKey;

use super::checks::{self, Checked, Genesis, Parsed, Rejected, Rotation};
use super::{Failure, Report, Trust, VerifyError, hex_root, peek_checkpoint};
use crate::bundle::Manifest;
use crate::chain::{self, GENESIS_PREV, Link};
use crate::checkpoint::{self, Checkpoint, NoteVerifierKey};
use crate::event::{EventPayload, InstanceCreated, TIME_LEN};
use crate::merkle::{Frontier, Hash};
use crate::record::Record;

/// Streaming verifier state; feed it chunks in order, then [`finish`](Self::finish).
/// Cloning snapshots the state (the exhaustive tamper trial uses this).
#[derive(Clone)]
pub struct SequenceVerifier {
    instance: String,
    origin: String,
    trust: Trust,
    /// Candidate keys by id (trusted keys plus keys the log declares).
    candidates: HashMap<String, VerifyingKey>,
    /// The key in force: (id, public key). None before genesis.
    in_force: Option<(String, VerifyingKey)>,
    /// (first seq signed by the key, key) for checkpoint signatures.
    history: Vec<(u64, String, VerifyingKey)>,
    frontier: Frontier,
    last_link: Link,
    /// Time of the last record applied (canonical, so byte order is time order).
    last_time: [u8; TIME_LEN],
    /// Link of the record before the last one (duplicate detection).
    last_record: Option<Record>,
    /// The last record of the previous chunk, checked once its successor is known.
    carry: Option<Checked>,
    bundle_checkpoint: Result<Checkpoint, String>,
    bundle_note: Vec<u8>,
    trusted_checkpoint: Option<Checkpoint>,
    /// Root and head link captured at the trusted checkpoint's size.
    at_trusted: Option<(Hash, Link)>,
    at_bundle: Option<(Hash, Link)>,
    rotations: u64,
    /// Records the manifest says the bundle holds.
    manifest_size: u64,
    failure: Option<Failure>,
}

impl SequenceVerifier {
    /// Prepares verification of the log described by `manifest`, whose
    /// bundle checkpoint is `bundle_note`.
    pub fn new(
        manifest: &Manifest,
        trust: &Trust,
        bundle_note: &[u8],
    ) -> Result<Self, VerifyError> {
        let trusted_checkpoint = match &trust.checkpoint {
            Some(note) => Some(
                peek_checkpoint(note.as_bytes())
                    .map_err(|e| VerifyError::Trust(format!("trusted checkpoint: {e}")))?,
            ),
            None => None,
        };
        let mut candidates = HashMap::new();
        for key in &trust.keys {
            candidates.insert(hex::encode(key.key_id()), key.key);
        }
        let mut verifier = SequenceVerifier {
            instance: manifest.instance.clone(),
            origin: manifest.origin.clone(),
            trust: trust.clone(),
            candidates,
            in_force: None,
            history: Vec::new(),
            frontier: Frontier::new(),
            last_link: GENESIS_PREV,
            last_time: [0; TIME_LEN],
            last_record: None,
            carry: None,
            bundle_checkpoint: peek_checkpoint(bundle_note),
            bundle_note: bundle_note.to_vec(),
            trusted_checkpoint,
            at_trusted: None,
            at_bundle: None,
            rotations: 0,
            manifest_size: manifest.size,
            failure: None,
        };
        verifier.capture_roots();
        Ok(verifier)
    }

    /// Whether a failure has been found (later input is ignored).
    pub fn failed(&self) -> bool {
        self.failure.is_some()
    }

    /// Verifies the next chunk of records.
    pub fn push_chunk(&mut self, records: Vec<Record>) {
        if self.failed() || records.is_empty() {
            return;
        }
        let checked = checks::check_chunk(records, &self.candidates);
        self.apply_checked(checked);
    }

    /// Keys a parallel pre-check may verify signatures with.
    pub(crate) fn candidates(&self) -> HashMap<String, VerifyingKey> {
        self.candidates.clone()
    }

    /// Applies the ordered checks to records pre-checked by
    /// [`checks::check_chunk`] (possibly with an older key snapshot: any
    /// signature not verified under the key in force is re-checked here).
    pub(crate) fn apply_checked(&mut self, checked: Vec<Checked>) {
        for next in checked {
            if self.failed() {
                return;
            }
            if let Some(current) = self.carry.take() {
                self.step(current, Some(&next));
                if self.failed() {
                    return;
                }
            }
            self.carry = Some(next);
        }
    }

    /// Records a framing error after the records pushed so far.
    pub fn frame_error(&mut self, reason: String) {
        if let Some(current) = self.carry.take() {
            self.step(current, None);
        }
        if self.failure.is_none() {
            self.failure = Some(Failure::Malformed {
                seq: self.frontier.size(),
                reason,
            });
        }
    }

    fn position(&self) -> u64 {
        self.frontier.size()
    }

    fn fail(&mut self, failure: Failure) {
        if self.failure.is_none() {
            self.failure = Some(failure);
        }
    }

    fn step(&mut self, current: Checked, next: Option<&Checked>) {
        let position = self.position();
        let parsed = match &current.parsed {
            Ok(p) => p,
            Err(Rejected::Malformed(reason)) => {
                let reason = reason.clone();
                return self.fail(Failure::Malformed {
                    seq: position,
                    reason,
                });
            }
            Err(Rejected::Unknown {
                event_type,
                version,
            }) => {
                return self.fail(Failure::UnknownEvent {
                    seq: position,
                    event_type: event_type.clone(),
                    type_version: *version,
                });
            }
        };
        if parsed.instance != self.instance {
            return self.fail(Failure::WrongInstance {
                seq: position,
                expected: self.instance.clone(),
                found: parsed.instance.clone(),
            });
        }
        if parsed.seq != position {
            return self.fail(self.classify_sequence(position, parsed.seq, &current, next));
        }
        if parsed.prev != Some(self.last_link) {
            return self.fail(Failure::ChainBroken { seq: position });
        }
        if position == 0
            && let Err(failure) = self.accept_genesis(parsed)
        {
            return self.fail(failure);
        }
        let Some((key_id, key)) = self.in_force.clone() else {
            return self.fail(Failure::BadGenesis {
                reason: "no ledger key in force".into(),
            });
        };
        if parsed.ledger_key != key_id {
            return self.fail(Failure::UnauthorizedKey {
                seq: position,
                key_id: parsed.ledger_key.clone(),
                expected: key_id,
            });
        }
        let verified = current.verified_with == Some(key)
            || chain::verify_record(&key, &current.link, &current.record.signature);
        if !verified {
            return self.fail(Failure::BadSignature { seq: position });
        }
        if parsed.time < self.last_time {
            return self.fail(Failure::TimeBackwards {
                seq: position,
                time: String::from_utf8_lossy(&parsed.time).into_owned(),
                previous: String::from_utf8_lossy(&self.last_time).into_owned(),
            });
        }
        if let Some(rotation) = &parsed.rotation
            && let Err(reason) = self.accept_rotation(position, &key_id, rotation)
        {
            return self.fail(Failure::BadRotation {
                seq: position,
                reason,
            });
        }
        self.last_time = parsed.time;
        self.frontier.push(current.leaf);
        self.last_link = current.link;
        self.last_record = Some(current.record);
        self.capture_roots();
    }

    fn accept_genesis(&mut self, parsed: &Parsed) -> Result<(), Failure> {
        let bad = |reason: String| Failure::BadGenesis { reason };
        if parsed.event_type != InstanceCreated::TYPE {
            return Err(bad(format!(
                "the first record is {}, not {}",
                parsed.event_type,
                InstanceCreated::TYPE
            )));
        }
        let Genesis { origin, key } = match &parsed.genesis {
            Some(Ok(genesis)) => genesis,
            Some(Err(reason)) => return Err(bad(reason.clone())),
            None => return Err(bad("unsupported instance.created version".into())),
        };
        if *origin != self.origin {
            return Err(bad(format!(
                "origin {origin:?} is not the instance's {:?}",
                self.origin
            )));
        }
        let key_id = hex::encode(NoteVerifierKey::new(&self.origin, key.public_key).key_id());
        if key_id != key.key_id {
            return Err(bad(
                "ledger key id does not match the ledger public key".into()
            ));
        }
        let public_key = key.public_key;
        if !self.trust.keys.is_empty() && !self.trust.keys.iter().any(|t| t.key == public_key) {
            return Err(Failure::UntrustedKey { key_id });
        }
        self.candidates.insert(key_id.clone(), public_key);
        self.in_force = Some((key_id.clone(), public_key));
        self.history.push((0, key_id, public_key));
        Ok(())
    }

    /// A rotation signed (already checked) by the key in force, `in_force`:
    /// it must name that key as the old one and a new key whose id matches;
    /// the new key is in force from `position + 1` on.
    fn accept_rotation(
        &mut self,
        position: u64,
        in_force: &str,
        rotation: &Result<Rotation, String>,
    ) -> Result<(), String> {
        let Rotation { old_key_id, key } = rotation.as_ref().map_err(Clone::clone)?;
        if old_key_id != in_force {
            return Err(format!(
                "old_key_id {old_key_id:?} is not the key in force {in_force:?}"
            ));
        }
        let new_id = hex::encode(NoteVerifierKey::new(&self.origin, key.public_key).key_id());
        if new_id != key.key_id {
            return Err("new_key_id does not match the new public key".into());
        }
        self.candidates.insert(new_id.clone(), key.public_key);
        self.in_force = Some((new_id.clone(), key.public_key));
        self.history.push((position + 1, new_id, key.public_key));
        self.rotations += 1;
        Ok(())
    }

    fn classify_sequence(
        &self,
        position: u64,
        found: u64,
        current: &Checked,
        next: Option<&Checked>,
    ) -> Failure {
        if found < position {
            let same_as_last = self
                .last_record
                .as_ref()
                .is_some_and(|r| *r == current.record);
            if same_as_last || found + 1 == position && current.link == self.last_link {
                return Failure::Duplicated {
                    seq: found,
                    position,
                };
            }
            return Failure::Reordered {
                seq: position,
                found,
            };
        }
        let next_seq = next.and_then(|n| n.parsed.as_ref().ok()).map(|p| p.seq);
        if next_seq == Some(position) {
            Failure::Reordered {
                seq: position,
                found,
            }
        } else {
            Failure::Removed {
                seq: position,
                found,
            }
        }
    }

    fn capture_roots(&mut self) {
        let size = self.frontier.size();
        if self
            .trusted_checkpoint
            .as_ref()
            .is_some_and(|c| c.size == size)
        {
            self.at_trusted = Some((self.frontier.root(), self.last_link));
        }
        if self
            .bundle_checkpoint
            .as_ref()
            .is_ok_and(|c| c.size == size)
        {
            self.at_bundle = Some((self.frontier.root(), self.last_link));
        }
    }

    /// The key that signs a checkpoint of `size`: the key in force once
    /// records `0..size` are applied (a rotation at `size - 1` already counts).
    fn key_at(&self, size: u64) -> Option<&(u64, String, VerifyingKey)> {
        self.history.iter().rev().find(|(from, _, _)| *from <= size)
    }

    /// Ends verification and reports.
    pub fn finish(mut self) -> Report {
        if let Some(current) = self.carry.take() {
            self.step(current, None);
        }
        if self.failure.is_none() && self.frontier.size() == 0 {
            // Even an instance's log holds its genesis record.
            let claimed = self.bundle_checkpoint.as_ref().map_or(0, |c| c.size);
            self.fail(Failure::Truncated {
                expected: self.manifest_size.max(claimed).max(1),
                found: 0,
            });
        }
        if self.failure.is_none() {
            self.check_trusted_checkpoint();
        }
        if self.failure.is_none() {
            self.check_bundle_checkpoint();
        }
        if self.failure.is_none() {
            self.check_manifest_size();
        }
        Report {
            ok: self.failure.is_none(),
            instance: self.instance.clone(),
            records: self.frontier.size(),
            root: hex_root(&self.frontier.root()),
            checkpoint_size: self.bundle_checkpoint.as_ref().ok().map(|c| c.size),
            key_rotations: self.rotations,
            failure: self.failure,
        }
    }

    fn verify_note(
        &self,
        note: &[u8],
        size: u64,
        extra: &[NoteVerifierKey],
    ) -> Result<Checkpoint, String> {
        let mut verifiers: Vec<NoteVerifierKey> = extra.to_vec();
        if let Some((_, _, key)) = self.key_at(size) {
            verifiers.push(NoteVerifierKey::new(&self.origin, *key));
        }
        let checkpoint =
            checkpoint::parse_and_verify(note, &verifiers).map_err(|e| e.to_string())?;
        if checkpoint.origin != self.origin {
            return Err(format!(
                "origin {:?} is not {:?}",
                checkpoint.origin, self.origin
            ));
        }
        Ok(checkpoint)
    }

    fn check_trusted_checkpoint(&mut self) {
        let Some(trusted) = self.trusted_checkpoint.clone() else {
            return;
        };
        let records = self.frontier.size();
        if trusted.size > records {
            return self.fail(Failure::Truncated {
                expected: trusted.size,
                found: records,
            });
        }
        let note = self.trust.checkpoint.clone().unwrap_or_default();
        let trusted_keys = self.trust.keys.clone();
        if let Err(reason) = self.verify_note(note.as_bytes(), trusted.size, &trusted_keys) {
            return self.fail(Failure::BadCheckpoint {
                reason: format!("trusted checkpoint: {reason}"),
            });
        }
        if let Err(reason) = check_shape(&trusted) {
            return self.fail(Failure::CheckpointShape {
                reason: format!("trusted checkpoint: {reason}"),
            });
        }
        match self.at_trusted {
            Some((root, link)) if root == trusted.root && head_matches(&trusted, &link) => {}
            _ => self.fail(Failure::InconsistentCheckpoint { size: trusted.size }),
        }
    }

    /// The manifest's record count must match: more means records were cut
    /// off; fewer means records were added after export.
    fn check_manifest_size(&mut self) {
        let records = self.frontier.size();
        if self.manifest_size > records {
            self.fail(Failure::Truncated {
                expected: self.manifest_size,
                found: records,
            });
        } else if self.manifest_size < records {
            self.fail(Failure::ManifestMismatch {
                manifest: self.manifest_size,
                records,
            });
        }
    }

    fn check_bundle_checkpoint(&mut self) {
        let records = self.frontier.size();
        let claimed = match &self.bundle_checkpoint {
            Ok(c) => c.clone(),
            Err(reason) => {
                let reason = reason.clone();
                return self.fail(Failure::BadCheckpoint { reason });
            }
        };
        if claimed.size > records {
            return self.fail(Failure::Truncated {
                expected: claimed.size,
                found: records,
            });
        }
        if claimed.size < records {
            return self.fail(Failure::CheckpointSizeMismatch {
                checkpoint: claimed.size,
                records,
            });
        }
        let note = self.bundle_note.clone();
        if let Err(reason) = self.verify_note(&note, claimed.size, &[]) {
            return self.fail(Failure::BadCheckpoint { reason });
        }
        if let Err(reason) = check_shape(&claimed) {
            return self.fail(Failure::CheckpointShape { reason });
        }
        match self.at_bundle {
            Some((root, _)) if root != claimed.root => {
                self.fail(Failure::RootMismatch { size: claimed.size })
            }
            Some((_, link)) if !head_matches(&claimed, &link) => {
                self.fail(Failure::ChainHeadMismatch { size: claimed.size })
            }
            Some(_) => {}
            None => self.fail(Failure::RootMismatch { size: claimed.size }),
        }
    }
}

/// A checkpoint has exactly the four body lines of LEDGER-FORMAT §6: its
/// only extension line is one well-formed `keyledger-chain <hex>`.
fn check_shape(checkpoint: &Checkpoint) -> Result<(), String> {
    match checkpoint.extensions.as_slice() {
        [line] if line.starts_with(checkpoint::CHAIN_EXTENSION_PREFIX) => checkpoint
            .chain_head()
            .map(|_| ())
            .map_err(|e| e.to_string()),
        [] => Err("no keyledger-chain line".into()),
        [_] => Err("its fourth line is not a keyledger-chain line".into()),
        lines => Err(format!(
            "{} lines after the root, not one keyledger-chain line",
            lines.len()
        )),
    }
}

/// The checkpoint's `keyledger-chain` line names `link` (its shape is
/// checked first by [`check_shape`], so the line is there).
fn head_matches(checkpoint: &Checkpoint, link: &Link) -> bool {
    let expected = format!("keyledger-chain {}", chain::to_hex(link));
    checkpoint.extensions.len() == 1 && checkpoint.extensions[0] == expected
}
