//! The per-record checks that need no ordering: parsing, chain link, leaf
//! hash and signature. Run one chunk at a time, on all cores with the
//! `parallel` feature.

use std::collections::HashMap;

use ed25519_dalek::{Signature, VerifyingKey};
#[cfg(feature = "parallel")]
use rayon::prelude::*;

use crate::chain::{self, Link};
use crate::event::{Envelope, InstanceCreated, LedgerKeyRotated};
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
    pub public_key: Option<VerifyingKey>,
}

/// What one record says about itself, checked independently of its neighbours.
#[derive(Clone)]
pub(crate) struct Checked {
    pub record: Record,
    pub link: Link,
    pub leaf: Hash,
    pub parsed: Result<Parsed, String>,
    /// The public key the signature verified under, if it verified.
    pub verified_with: Option<VerifyingKey>,
}

#[derive(Clone)]
pub(crate) struct Parsed {
    pub instance: String,
    pub seq: u64,
    pub event_type: String,
    pub ledger_key: String,
    pub prev: Option<Link>,
    pub genesis: Option<Result<DeclaredKey, String>>,
    pub rotation: Option<Result<DeclaredKey, String>>,
}

/// Checks a chunk (in parallel with the `parallel` feature). `keys` maps
/// key ids to candidate public keys (from the bundle and from the log so
/// far); signatures are verified with the key their record names, in
/// batches of [`SIGNATURE_BATCH`] either way, and re-checked against the key
/// in force by the sequential pass.
pub(crate) fn check_chunk(
    records: Vec<Record>,
    keys: &HashMap<String, VerifyingKey>,
) -> Vec<Checked> {
    #[cfg(feature = "parallel")]
    if records.len() >= SIGNATURE_BATCH {
        let mut checked: Vec<Checked> = records.into_par_iter().map(check_one).collect();
        checked
            .par_chunks_mut(SIGNATURE_BATCH)
            .for_each(|batch| verify_signatures(batch, keys));
        return checked;
    }
    // Sequentially: without the feature, or for a chunk too small to be
    // worth spreading over threads.
    let mut checked: Vec<Checked> = records.into_iter().map(check_one).collect();
    checked
        .chunks_mut(SIGNATURE_BATCH)
        .for_each(|batch| verify_signatures(batch, keys));
    checked
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

fn parse(event: &[u8]) -> Result<Parsed, String> {
    let envelope = Envelope::parse(event).map_err(|e| format!("event JSON: {e}"))?;
    let genesis = envelope.payload_as::<InstanceCreated>().map(|r| {
        r.map_err(|e| e.to_string())
            .and_then(|g| declared(g.ledger_key_id, &g.ledger_public_key))
    });
    let rotation = envelope.payload_as::<LedgerKeyRotated>().map(|r| {
        r.map_err(|e| e.to_string())
            .and_then(|g| declared(g.new_key_id, &g.new_public_key))
    });
    Ok(Parsed {
        prev: chain::from_hex(&envelope.prev),
        instance: envelope.instance,
        seq: envelope.seq,
        event_type: envelope.event_type,
        ledger_key: envelope.ledger_key,
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
    let key = VerifyingKey::from_bytes(&array).map_err(|e| format!("public key: {e}"))?;
    Ok(DeclaredKey {
        key_id,
        public_key: Some(key),
    })
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
