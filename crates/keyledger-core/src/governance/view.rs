//! A canonical JSON view of the governance projection, for golden fixtures
//! (`projections/governance/`) and auditors' tools. Deterministic: maps are
//! ordered, times are the events' times.

use base64::Engine;
use serde_json::{Value, json};

use super::state::{ApprovalStatus, GovernanceState};

impl GovernanceState {
    /// The projection as canonical JSON.
    pub fn to_json(&self) -> Value {
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        let admins: serde_json::Map<String, Value> = self
            .admins
            .iter()
            .map(|(id, a)| {
                (
                    id.clone(),
                    json!({"name": a.name, "publicKey": b64(&a.public_key), "addedSeq": a.added_seq}),
                )
            })
            .collect();
        let credentials: serde_json::Map<String, Value> = self
            .credentials
            .iter()
            .map(|(id, c)| {
                (
                    id.clone(),
                    json!({"role": c.role, "tokenDigest": c.token_digest, "issuedSeq": c.issued_seq, "revoked": c.revoked}),
                )
            })
            .collect();
        let policies: serde_json::Map<String, Value> = self
            .policies
            .iter()
            .map(|(k, p)| {
                (
                    k.clone(),
                    json!({"enabled": p.enabled, "attributes": p.attributes, "updatedSeq": p.updated_seq}),
                )
            })
            .collect();
        let approvals: serde_json::Map<String, Value> = self
            .approvals
            .iter()
            .map(|(id, a)| {
                let status = match &a.status {
                    ApprovalStatus::Pending => json!("pending"),
                    ApprovalStatus::Executed(seq) => json!({"executed": seq}),
                    ApprovalStatus::Failed(reason) => json!({"failed": reason}),
                    ApprovalStatus::Cancelled => json!("cancelled"),
                    ApprovalStatus::Expired => json!("expired"),
                };
                (
                    id.clone(),
                    json!({
                        "operation": a.operation,
                        "target": a.target,
                        "requester": a.requester,
                        "required": a.required,
                        "expiresAt": a.expires_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                        "approvers": a.approvers,
                        "requestedSeq": a.requested_seq,
                        "quorumSeq": a.quorum_seq(),
                        "status": status,
                    }),
                )
            })
            .collect();
        let mut view = json!({
            "imprintMode": self.imprint_mode(),
            "thresholds": self.thresholds.map(|t| json!({"signature": t.signature, "revocation": t.revocation})),
            "admins": admins,
            "usedNonces": self.used_nonces,
            "credentials": credentials,
            "policies": policies,
            "approvals": approvals,
            "loadApproved": self.load_approved,
        });
        // Only once sinks were ever set, so older fixtures stay as they are.
        if let (Some(seq), Some(map)) = (self.sinks_set_seq, view.as_object_mut()) {
            map.insert("sinks".into(), json!({"setSeq": seq, "sinks": self.sinks}));
        }
        view
    }
}
