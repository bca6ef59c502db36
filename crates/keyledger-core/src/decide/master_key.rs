//! The master-key aggregate: the ceremony that loads, commits and activates
//! a master-key generation, rotation to a new generation, and unsealing
//! after a restart, decided against the instance's projections.
//!
//! As for keys, a command is the event it records ([`MasterKeyChange`])
//! plus who asks and when. What the HSM computed (verification patterns,
//! keys re-wrapped) is in the change; the HSM call itself happens before
//! the decision, in the service. Steps that need the administrators carry
//! their signed command, which must be the one the step records (kind and
//! generation), carry its digest, and pass [`authorize`] at the command's
//! time.

use chrono::{DateTime, Utc};

use super::Refusal;
use crate::event::{
    Actor, Envelope, EventDraft, InstanceUnsealed, MasterKeyActivated, MasterKeyCommitted,
    MasterKeyPartLoaded, MasterKeyRotated, SignedCommandRef,
};
use crate::governance::rules::check_effect;
use crate::governance::{AdminCommand, CommandDocument, Denial, SignedCommand, View, authorize};
use crate::master_key::MasterKeyState;
use crate::projections::Projections;

/// One step of the master key's life: the payload of the event it records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MasterKeyChange {
    /// A key owner's part was loaded into the HSM.
    LoadPart(MasterKeyPartLoaded),
    /// The loaded parts were combined (a new generation, or the current
    /// one re-loaded to unseal).
    Commit(MasterKeyCommitted),
    /// The committed generation became the instance's first master key.
    Activate(MasterKeyActivated),
    /// The committed generation replaced the current one.
    Rotate(MasterKeyRotated),
    /// The current generation, re-loaded, unsealed the instance.
    Unseal(InstanceUnsealed),
}

/// A master-key command: who asks, when, under which correlation id, for what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MasterKeyCommand {
    /// Who asks.
    pub actor: Actor,
    /// Correlation id of the request.
    pub correlation_id: String,
    /// The time the command is decided at.
    pub at: DateTime<Utc>,
    /// What it asks for.
    pub change: MasterKeyChange,
}

impl MasterKeyCommand {
    /// The command a stored master-key event records; `None` for other
    /// events, `Some(Err)` for one that does not read.
    pub fn from_envelope(envelope: &Envelope<'_>) -> Option<Result<MasterKeyCommand, String>> {
        let change = super::read_change(envelope, MasterKeyChange::LoadPart)
            .or_else(|| super::read_change(envelope, MasterKeyChange::Commit))
            .or_else(|| super::read_change(envelope, MasterKeyChange::Activate))
            .or_else(|| super::read_change(envelope, MasterKeyChange::Rotate))
            .or_else(|| super::read_change(envelope, MasterKeyChange::Unseal))?;
        Some(change.and_then(|change| {
            let at = super::recorded_at(envelope)?;
            Ok(MasterKeyCommand {
                actor: envelope.actor.clone(),
                correlation_id: envelope.correlation_id.clone(),
                at,
                change,
            })
        }))
    }
}

/// Decides a master-key command against the state before it (`instance`
/// is the instance a step's signed command must name): the command's one
/// event, or why it is refused.
pub fn decide(
    state: &Projections,
    instance: &str,
    command: &MasterKeyCommand,
) -> Result<Vec<EventDraft>, Refusal> {
    check(state, instance, command)?;
    let (actor, id) = (command.actor.clone(), command.correlation_id.as_str());
    let draft = match &command.change {
        MasterKeyChange::LoadPart(p) => EventDraft::new(actor, id, p),
        MasterKeyChange::Commit(p) => EventDraft::new(actor, id, p),
        MasterKeyChange::Activate(p) => EventDraft::new(actor, id, p),
        MasterKeyChange::Rotate(p) => EventDraft::new(actor, id, p),
        MasterKeyChange::Unseal(p) => EventDraft::new(actor, id, p),
    };
    Ok(vec![draft.map_err(|e| Refusal::Invalid(e.to_string()))?])
}

/// The rules of [`decide`] without building the event.
pub fn check(
    state: &Projections,
    instance: &str,
    command: &MasterKeyCommand,
) -> Result<(), Refusal> {
    let master = &state.master;
    let view = View {
        instance,
        governance: &state.governance,
        master,
    };
    let at = command.at;
    match &command.change {
        MasterKeyChange::LoadPart(p) => part_loaded(state, p),
        MasterKeyChange::Commit(p) => committed(view, at, p),
        MasterKeyChange::Activate(p) => {
            signed_step(view, at, p.command.as_ref(), |c| {
                activates(c, p.generation, "generation")
            })?;
            if let Some((current, _)) = &master.current {
                return Err(ceremony(format!(
                    "generation {current} is current: another generation replaces it by rotation (master_key.rotated), not activation"
                )));
            }
            committed_pattern(master, p.generation, &p.verification_pattern)
        }
        MasterKeyChange::Rotate(p) => {
            signed_step(view, at, p.command.as_ref(), |c| {
                activates(c, p.to_generation, "to_generation")
            })?;
            match &master.current {
                Some((current, _)) if *current == p.from_generation => Ok(()),
                current => Err(ceremony(format!(
                    "rotation from generation {} but the current generation is {:?}",
                    p.from_generation,
                    current.as_ref().map(|(g, _)| *g)
                ))),
            }
        }
        MasterKeyChange::Unseal(p) => {
            match &master.current {
                Some((g, _)) if *g == p.master_key_generation => {}
                _ => {
                    return Err(ceremony(format!(
                        "generation {} is not the current master key",
                        p.master_key_generation
                    )));
                }
            }
            committed_pattern(master, p.master_key_generation, &p.verification_pattern)
        }
    }
}

/// A step the administrators ordered: its signed command must be there, be
/// the one the step records, carry its digest, and pass [`authorize`].
pub fn signed_step(
    view: View<'_>,
    at: DateTime<Utc>,
    command: Option<&SignedCommandRef>,
    matches: impl FnOnce(&AdminCommand) -> Result<(), String>,
) -> Result<(), Refusal> {
    let Some(reference) = command else {
        return Err(Refusal::CommandMissing);
    };
    let signed = SignedCommand::from_ref(reference);
    if let Ok(document) = CommandDocument::parse(&signed.document) {
        matches(&document.command).map_err(Refusal::CommandMismatch)?;
    }
    if reference.digest != hex::encode(signed.digest()) {
        return Err(Refusal::DigestMismatch);
    }
    authorize(view, &signed, at)?;
    Ok(())
}

/// "It carries a KIND command, not EXPECTED".
pub fn wrong_kind(command: &AdminCommand, expected: &str) -> Result<(), String> {
    Err(format!(
        "it carries a {} command, not {expected}",
        command.kind()
    ))
}

/// A part is loaded by a registered owner, for the next generation once
/// the administrators approved its loading, or for the current generation
/// (unseal after a restart).
fn part_loaded(state: &Projections, p: &MasterKeyPartLoaded) -> Result<(), Refusal> {
    let master = &state.master;
    if !master.owners.contains_key(&p.owner_id) {
        return Err(Refusal::UnknownKeyOwner(p.owner_id.clone()));
    }
    let unseal = master
        .current
        .as_ref()
        .is_some_and(|(g, _)| *g == p.generation);
    if unseal {
        return Ok(());
    }
    let next = master.next_generation();
    if p.generation != next {
        return Err(ceremony(format!(
            "parts are loaded for generation {next} (or the current one, to unseal), not {}",
            p.generation
        )));
    }
    if !state.governance.load_approved.contains(&p.generation) {
        return Err(Refusal::LoadNotApproved(p.generation));
    }
    Ok(())
}

/// A new generation is committed by administrator command; the current
/// generation is re-committed without one while unsealing, but still only
/// from a part of every registered owner and only if the parts reproduce
/// its verification pattern.
fn committed(view: View<'_>, at: DateTime<Utc>, p: &MasterKeyCommitted) -> Result<(), Refusal> {
    let master = view.master;
    let current = master.current.as_ref();
    let unseal = p.command.is_none()
        && master.pending_is_unseal()
        && current.is_some_and(|(g, _)| *g == p.generation);
    if !unseal {
        return signed_step(view, at, p.command.as_ref(), |c| match c {
            AdminCommand::CommitMasterKey { generation } if *generation == p.generation => Ok(()),
            AdminCommand::CommitMasterKey { .. } => Err("generation differs".into()),
            other => wrong_kind(other, "master_key.commit"),
        });
    }
    // `check_effect` refuses a commit command while unsealing; the parts
    // rule it applies to new generations is the one unsealing needs too, so
    // it is asked about the same state seen as if nothing were current.
    let as_new = MasterKeyState {
        current: None,
        ..master.clone()
    };
    let view = View {
        master: &as_new,
        ..view
    };
    check_effect(
        view,
        &AdminCommand::CommitMasterKey {
            generation: p.generation,
        },
    )?;
    match current {
        Some((_, vp)) if *vp == p.verification_pattern => Ok(()),
        _ => Err(ceremony(format!(
            "the re-loaded parts do not reproduce the verification pattern of generation {}",
            p.generation
        ))),
    }
}

fn ceremony(message: String) -> Refusal {
    Refusal::Denied(Denial::Ceremony(message))
}

fn activates(command: &AdminCommand, generation: u32, field: &str) -> Result<(), String> {
    match command {
        AdminCommand::ActivateMasterKey { generation: g } if *g == generation => Ok(()),
        AdminCommand::ActivateMasterKey { .. } => Err(format!("{field} differs")),
        other => wrong_kind(other, "master_key.activate"),
    }
}

/// The generation is the committed one and the event names its pattern.
fn committed_pattern(
    master: &MasterKeyState,
    generation: u32,
    pattern: &str,
) -> Result<(), Refusal> {
    match &master.pending {
        Some(p) if p.generation == generation => match &p.committed {
            Some(vp) if vp == pattern => Ok(()),
            Some(_) => Err(ceremony(format!(
                "the verification pattern differs from the one generation {generation} was committed with"
            ))),
            None => Err(ceremony(format!(
                "generation {generation} is not committed"
            ))),
        },
        _ => Err(ceremony(format!(
            "generation {generation} is not committed"
        ))),
    }
}

#[cfg(test)]
mod tests;
