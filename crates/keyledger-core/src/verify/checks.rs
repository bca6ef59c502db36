//! The per-record checks that need no ordering: the strict reading of the
//! event and its payload, chain link, leaf hash and signature. Run one chunk
//! at a time, on all cores with the `parallel` feature.

use std::borrow::Cow;
use std::collections::HashMap;

use ed25519_dalek::{Signature, VerifyingKey};
#[cfg(feature = "parallel")]
use rayon::prelude::*;

use crate::chain::{self, Link};
use crate::event::{
    EventPayload, InstanceCreated, LedgerKeyRotated, PayloadError, StrictEnvelope, TIME_LEN,
    check_payload,
};
use crate::merkle::Hash;
use crate::record::Record;

/// Signatures checked per batch verification.
const SIGNATURE_BATCH: usize = 64;

/// Fewest signatures worth a batch verification.
const MIN_BATCH: usize = 4;

/// A key the log itself declares (genesis or rotation).
#[derive(Debug, Clone)]
pub(crate) struct DeclaredKey {
    pub key_id: String,
    pub public_key: VerifyingKey,
}

/// What one record says about itself, checked independently of its neighbours.
#[derive(Clone)]
pub(crate) struct Checked {
    pub record: Record,
    pub link: Link,
    pub leaf: Hash,
    pub parsed: Result<Parsed, Rejected>,
    /// The public key the signature verified under, if it verified.
    pub verified_with: Option<VerifyingKey>,
}

/// Why a record's event was refused by the strict reading.
#[derive(Clone, Debug)]
pub(crate) enum Rejected {
    /// Not a well-formed event of its type (`malformed`).
    Malformed(String),
    /// A type and version the catalogue does not hold (`unknown_event`).
    Unknown { event_type: String, version: u32 },
}

#[derive(Clone)]
pub(crate) struct Parsed {
    pub instance: String,
    pub seq: u64,
    /// The canonical time (byte order is time order).
    pub time: [u8; TIME_LEN],
    /// The catalogue's name of the event type.
    pub event_type: &'static str,
    pub ledger_key: String,
    pub prev: Option<Link>,
    pub genesis: Option<Result<Genesis, String>>,
    pub rotation: Option<Result<Rotation, String>>,
}

/// What an `instance.created` declares.
#[derive(Clone)]
pub(crate) struct Genesis {
    pub origin: String,
    pub key: DeclaredKey,
}

/// What a `ledger_key.rotated` declares.
#[derive(Clone)]
pub(crate) struct Rotation {
    pub old_key_id: String,
    pub key: DeclaredKey,
}

/// Checks a chunk (in parallel with the `parallel` feature). `keys` maps
/// key ids to candidate public keys (the trusted keys and those the log
/// declared before this chunk); signatures are verified with the key their record names, in
/// batches of [`SIGNATURE_BATCH`] either way, and re-checked against the key
/// in force by the sequential pass.
pub(crate) fn check_chunk(
    records: Vec<Record>,
    keys: &HashMap<String, VerifyingKey>,
) -> Vec<Checked> {
    #[cfg(feature = "parallel")]
    if records.len() >= SIGNATURE_BATCH {
        let mut checked: Vec<Checked> = records.into_par_iter().map(check_one).collect();
        let keys = with_declared(keys, &checked);
        checked
            .par_chunks_mut(SIGNATURE_BATCH)
            .for_each(|batch| verify_signatures(batch, &keys));
        return checked;
    }
    // Sequentially: without the feature, or for a chunk too small to be
    // worth spreading over threads.
    let mut checked: Vec<Checked> = records.into_iter().map(check_one).collect();
    let keys = with_declared(keys, &checked);
    checked
        .chunks_mut(SIGNATURE_BATCH)
        .for_each(|batch| verify_signatures(batch, &keys));
    checked
}

/// `keys` plus the keys the chunk itself declares (its genesis or a
/// rotation), so the records they sign are batch-verified too. Only a
/// speed-up: the ordered pass accepts a signature only under the key in
/// force, and re-checks any other. A declared key never replaces a known
/// one of the same id.
fn with_declared<'k>(
    keys: &'k HashMap<String, VerifyingKey>,
    checked: &[Checked],
) -> Cow<'k, HashMap<String, VerifyingKey>> {
    let mut keys = Cow::Borrowed(keys);
    for c in checked {
        let Ok(parsed) = &c.parsed else { continue };
        let declared = match (&parsed.genesis, &parsed.rotation) {
            (Some(Ok(g)), _) => &g.key,
            (_, Some(Ok(r))) => &r.key,
            _ => continue,
        };
        if !keys.contains_key(&declared.key_id) {
            keys.to_mut()
                .insert(declared.key_id.clone(), declared.public_key);
        }
    }
    keys
}

fn check_one(record: Record) -> Checked {
    let link = record.link();
    let leaf = record.leaf_hash();
    let parsed = parse(&record.event);
    Checked {
        record,
        link,
        leaf,
        parsed,
        verified_with: None,
    }
}

/// Reads an event strictly (`StrictEnvelope::parse`) and checks its
/// payload against the catalogue, in one pass over the envelope and one
/// typed read of the payload.
fn parse(event: &[u8]) -> Result<Parsed, Rejected> {
    let envelope =
        StrictEnvelope::parse(event).map_err(|e| Rejected::Malformed(format!("event: {e}")))?;
    let payload = envelope.payload;
    let invalid = |e: serde_json::Error| Rejected::Malformed(format!("payload: {e}"));
    let mut genesis = None;
    let mut rotation = None;
    let event_type = match (envelope.event_type.as_ref(), envelope.type_version) {
        (InstanceCreated::TYPE, InstanceCreated::VERSION) => {
            let g: InstanceCreated = serde_json::from_str(payload).map_err(invalid)?;
            genesis = Some(
                declared(g.ledger_key_id, &g.ledger_public_key).map(|key| Genesis {
                    origin: g.origin,
                    key,
                }),
            );
            InstanceCreated::TYPE
        }
        (LedgerKeyRotated::TYPE, LedgerKeyRotated::VERSION) => {
            let r: LedgerKeyRotated = serde_json::from_str(payload).map_err(invalid)?;
            rotation = Some(
                declared(r.new_key_id, &r.new_public_key).map(|key| Rotation {
                    old_key_id: r.old_key_id,
                    key,
                }),
            );
            LedgerKeyRotated::TYPE
        }
        (event_type, version) => {
            check_payload(event_type, version, payload).map_err(|e| match e {
                PayloadError::UnknownType {
                    event_type,
                    version,
                } => Rejected::Unknown {
                    event_type,
                    version,
                },
                PayloadError::Invalid(reason) => Rejected::Malformed(format!("payload: {reason}")),
            })?
        }
    };
    Ok(Parsed {
        prev: chain::from_hex(&envelope.prev),
        instance: envelope.instance.into_owned(),
        seq: envelope.seq,
        time: envelope.time,
        event_type,
        ledger_key: envelope.ledger_key.into_owned(),
        genesis,
        rotation,
    })
}

fn declared(key_id: String, public_b64: &str) -> Result<DeclaredKey, String> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(public_b64)
        .map_err(|e| format!("public key base64: {e}"))?;
    let array: [u8; 32] = bytes
        .try_into()
        .map_err(|_| "public key is not 32 bytes".to_string())?;
    let public_key = VerifyingKey::from_bytes(&array).map_err(|e| format!("public key: {e}"))?;
    Ok(DeclaredKey { key_id, public_key })
}

fn verify_signatures(batch: &mut [Checked], keys: &HashMap<String, VerifyingKey>) {
    let mut messages = Vec::with_capacity(batch.len());
    let mut signatures = Vec::with_capacity(batch.len());
    let mut verifying = Vec::with_capacity(batch.len());
    let mut indices = Vec::with_capacity(batch.len());
    for (i, c) in batch.iter().enumerate() {
        let Ok(parsed) = &c.parsed else { continue };
        let Some(key) = keys.get(&parsed.ledger_key) else {
            continue;
        };
        messages.push(chain::signing_message(&c.link));
        signatures.push(Signature::from_bytes(&c.record.signature));
        verifying.push(*key);
        indices.push(i);
    }
    let message_refs: Vec<&[u8]> = messages.iter().map(|m| m.as_slice()).collect();
    // Batch verification pays off from a handful of signatures on; below
    // that, strict single verification is cheaper.
    let all_good = indices.len() >= MIN_BATCH
        && ed25519_dalek::verify_batch(&message_refs, &signatures, &verifying).is_ok();
    for (n, i) in indices.into_iter().enumerate() {
        let ok = all_good
            || chain::verify_record(&verifying[n], &batch[i].link, &batch[i].record.signature);
        if ok {
            batch[i].verified_with = Some(verifying[n]);
        }
    }
}
