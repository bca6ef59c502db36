//! `keyledger admin submit --url | ceremony-status | submit-part`: the
//! governance flows against a keyledger server's admin endpoints
//! (`docs/REST.md`). Commands, parts and ceremony status requests carry
//! their own signatures (administrators', the key owner's), so no bearer
//! token is sent.

use crate::governance::SignedCommand;

#[cfg(feature = "client")]
mod remote {
    use base64::Engine;
    use ed25519_dalek::Signer;
    use serde_json::json;
    use zeroize::Zeroizing;

    use super::super::admin_cmds::{CeremonyStatusArgs, SubmitPartArgs, read_admin_key};
    use crate::client::Client;
    use crate::governance::SignedCommand;
    use crate::secret::SecretBytes;

    const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

    pub fn submit(url: &str, instance: &str, signed: &SignedCommand) -> Result<(), String> {
        let body = serde_json::to_string(signed).map_err(|e| e.to_string())?;
        let answer = Client::new(url, instance, None).post_json("admin/commands", &body)?;
        println!(
            "accepted: {} at seq {} (record hash {})",
            answer["type"].as_str().unwrap_or("?"),
            answer["seq"],
            answer["receipt"]["leaf_hash"].as_str().unwrap_or("?")
        );
        Ok(())
    }

    /// `GET /admin/ceremony`, signed by the key owner
    /// (`ceremony_status_message` over the instance, the owner and now).
    fn signed_status(
        client: &Client,
        instance: &str,
        owner_id: &str,
        key: &ed25519_dalek::SigningKey,
    ) -> Result<serde_json::Value, String> {
        let time = chrono::Utc::now().timestamp();
        let message = crate::keys::service::ceremony_status_message(instance, owner_id, time);
        let signature = B64.encode(key.sign(&message).to_bytes());
        let time = time.to_string();
        client.get_json_with(
            "admin/ceremony",
            &[
                ("keyledger-key-owner", owner_id),
                ("keyledger-key-owner-time", &time),
                ("keyledger-key-owner-signature", &signature),
            ],
        )
    }

    pub fn ceremony_status(args: &CeremonyStatusArgs) -> Result<(), String> {
        let key = read_admin_key(&args.owner.owner_key)?;
        let client = Client::new(&args.remote.url, &args.remote.instance, None);
        let status = signed_status(&client, &args.remote.instance, &args.owner.owner_id, &key)?;
        let list = |v: &serde_json::Value| {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default()
        };
        println!("generation: {}", status["generation"]);
        println!("unseal: {}", status["unseal"]);
        println!(
            "ceremony public key: {}",
            status["public_key"].as_str().unwrap_or("?")
        );
        println!("registered owners: {}", list(&status["registered_owners"]));
        println!("loaded owners: {}", list(&status["loaded_owners"]));
        Ok(())
    }

    fn read_part(path: &std::path::Path) -> Result<SecretBytes, String> {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(format!(
                "{} is readable by group or others; refusing it",
                path.display()
            ));
        }
        let text = Zeroizing::new(
            std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?,
        );
        let mut part = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(text.trim(), part.as_mut())
            .map_err(|_| format!("{} must hold 64 hex digits", path.display()))?;
        Ok(SecretBytes::new(part.to_vec()))
    }

    pub fn submit_part(args: &SubmitPartArgs) -> Result<(), String> {
        let owner_id = &args.owner.owner_id;
        let key = read_admin_key(&args.owner.owner_key)?;
        let part = read_part(&args.part_file)?;
        let client = Client::new(&args.remote.url, &args.remote.instance, None);
        let status = signed_status(&client, &args.remote.instance, owner_id, &key)?;
        let generation = status["generation"]
            .as_u64()
            .and_then(|g| u32::try_from(g).ok())
            .ok_or("the ceremony status has no generation")?;
        let public_key: [u8; 32] = status["public_key"]
            .as_str()
            .and_then(|k| B64.decode(k).ok())
            .and_then(|k| k.try_into().ok())
            .ok_or("the ceremony status has no valid public key")?;
        let instance = &args.remote.instance;
        let sealed =
            crate::hsm::ceremony::seal_part(&public_key, instance, generation, owner_id, &part)
                .map_err(|e| e.to_string())?;
        let message =
            crate::keys::service::part_submission_message(instance, generation, owner_id, &sealed);
        let signature = key.sign(&message).to_bytes();
        let body = json!({
            "owner_id": owner_id,
            "enc": B64.encode(&sealed.enc),
            "ciphertext": B64.encode(&sealed.ciphertext),
            "signature": B64.encode(signature),
        });
        let answer = client.post_json("admin/ceremony/parts", &body.to_string())?;
        println!(
            "part of {} loaded for generation {generation} at seq {}; verification pattern {}",
            owner_id,
            answer["seq"],
            answer["verification_pattern"].as_str().unwrap_or("?")
        );
        Ok(())
    }
}

#[cfg(feature = "client")]
pub(super) use remote::{ceremony_status, submit_part};

#[cfg(not(feature = "client"))]
const NO_CLIENT: &str = "this build has no HTTP client (cargo feature `client`)";

pub(super) fn submit(url: &str, instance: &str, signed: &SignedCommand) -> Result<(), String> {
    #[cfg(feature = "client")]
    {
        remote::submit(url, instance, signed)
    }
    #[cfg(not(feature = "client"))]
    {
        let _ = (url, instance, signed);
        Err(NO_CLIENT.into())
    }
}

#[cfg(not(feature = "client"))]
pub(super) fn ceremony_status(_: &super::admin_cmds::CeremonyStatusArgs) -> Result<(), String> {
    Err(NO_CLIENT.into())
}

#[cfg(not(feature = "client"))]
pub(super) fn submit_part(_: &super::admin_cmds::SubmitPartArgs) -> Result<(), String> {
    Err(NO_CLIENT.into())
}
