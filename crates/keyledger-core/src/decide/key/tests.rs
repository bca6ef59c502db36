//! Given/when/then tests of the key aggregate.

use super::*;
use crate::decide::harness::{Given, given};
use crate::event::{AuthMethod, MasterKeyActivated};
use crate::keys::payload::PayloadError;
use crate::keys::state::{KeyState, StateError};

const T0: &str = "2026-01-01T00:00:00Z";
const T1: &str = "2026-01-01T00:10:00Z";
const T2: &str = "2026-01-01T02:00:00Z";

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("time")
        .with_timezone(&Utc)
}

fn acting(principal: &str, role: Role) -> Actor {
    Actor {
        principal: principal.into(),
        role,
        auth: AuthMethod::LocalCli,
    }
}

fn alice() -> Actor {
    acting("alice", Role::Manager)
}

fn bob() -> Actor {
    acting("bob", Role::Manager)
}

fn created(id: &str, extractable: bool) -> KeyCreated {
    KeyCreated {
        key_id: id.into(),
        name: format!("name-{id}"),
        description: None,
        key_ring_id: "default".into(),
        extractable,
        imported: false,
        algorithm: "AES".into(),
        bit_length: 256,
        version_id: format!("{id}-v1"),
        key_check_value: "00".into(),
        expiration_date: None,
        aliases: vec![],
        activation_date: None,
        import_token_id: None,
    }
}

fn with_master_key() -> Given {
    given().event(
        T0,
        &Actor::system(),
        &MasterKeyActivated {
            generation: 1,
            verification_pattern: "vp".into(),
            command: None,
        },
    )
}

/// A master key and root key `k`, created by alice at T0.
fn root_key() -> Given {
    with_master_key().event(T0, &alice(), &created("k", false))
}

fn command(actor: Actor, at: &str, change: KeyChange) -> KeyCommand {
    KeyCommand {
        actor,
        correlation_id: "c".into(),
        at: t(at),
        change,
    }
}

fn draft<P: EventPayload>(actor: Actor, p: &P) -> EventDraft {
    EventDraft::new(actor, "c", p).expect("draft")
}

fn decide_as(
    actor: Actor,
    at: &str,
    change: KeyChange,
) -> impl FnOnce(&Projections) -> Result<Vec<EventDraft>, Refusal> {
    move |state| decide(state, &command(actor, at, change))
}

fn dual_auth_on() -> KeyPolicyUpdated {
    KeyPolicyUpdated {
        key_id: "k".into(),
        policy_type: "dualAuthDelete".into(),
        enabled: true,
        interval_month: None,
    }
}

fn destroyed() -> KeyDestroyed {
    KeyDestroyed {
        key_id: "k".into(),
        force: false,
        approval_request_id: None,
    }
}

#[test]
fn a_key_is_created_once_and_only_under_an_active_master_key() {
    let new = created("k", false);
    with_master_key()
        .when(decide_as(alice(), T0, KeyChange::Create(new.clone())))
        .then_expect_events(&[draft(alice(), &new)]);
    given()
        .when(decide_as(alice(), T0, KeyChange::Create(new.clone())))
        .then_expect_refusal(Refusal::NoMasterKey);
    root_key()
        .when(decide_as(alice(), T1, KeyChange::Create(new)))
        .then_expect_refusal(Refusal::Conflict("key \"k\"".into()));
}

#[test]
fn key_material_has_the_size_its_key_type_allows() {
    let mut short_root = created("r", false);
    short_root.imported = true;
    short_root.bit_length = 128;
    with_master_key()
        .when(decide_as(alice(), T0, KeyChange::Create(short_root)))
        .then_expect_refusal(Refusal::Payload(PayloadError::RootKeySize(16)));
    let mut standard = created("s", true);
    standard.imported = true;
    standard.bit_length = 128;
    with_master_key()
        .when(decide_as(alice(), T0, KeyChange::Create(standard.clone())))
        .then_expect_events(&[draft(alice(), &standard)]);
    let mut via_token = created("s", true);
    via_token.imported = true;
    via_token.import_token_id = Some("tok".into());
    with_master_key()
        .when(decide_as(alice(), T0, KeyChange::Create(via_token)))
        .then_expect_refusal(Refusal::TokenImportNeedsRootKey);
}

#[test]
fn the_state_machine_decides_enable_and_disable() {
    let disable = KeyChange::Disable(KeyDisabled { key_id: "k".into() });
    let enable = KeyChange::Enable(KeyEnabled { key_id: "k".into() });
    root_key()
        .when(decide_as(alice(), T1, enable.clone()))
        .then_expect_refusal(Refusal::State(StateError::InvalidState {
            state: KeyState::Active,
            action: KeyAction::Enable,
        }));
    root_key()
        .when(decide_as(alice(), T1, disable))
        .then_expect_events(&[draft(alice(), &KeyDisabled { key_id: "k".into() })]);
    root_key()
        .event(T1, &alice(), &KeyDisabled { key_id: "k".into() })
        .when(decide_as(alice(), T1, enable))
        .then_expect_events(&[draft(alice(), &KeyEnabled { key_id: "k".into() })]);
    given()
        .when(decide_as(
            alice(),
            T1,
            KeyChange::Enable(KeyEnabled {
                key_id: "nope".into(),
            }),
        ))
        .then_expect_refusal(Refusal::UnknownKey("nope".into()));
}

#[test]
fn root_key_actions_are_refused_on_standard_keys() {
    let rotate = KeyRotated {
        key_id: "s".into(),
        version_id: "s-v2".into(),
        key_check_value: "01".into(),
        imported: false,
    };
    with_master_key()
        .event(T0, &alice(), &created("s", true))
        .when(decide_as(alice(), T2, KeyChange::Rotate(rotate)))
        .then_expect_refusal(Refusal::State(StateError::RootKeyRequired {
            action: KeyAction::Rotate,
        }));
    let read = KeyPayloadRead {
        key_id: "k".into(),
        version_id: "k-v1".into(),
    };
    root_key()
        .when(decide_as(alice(), T1, KeyChange::ReadPayload(read)))
        .then_expect_refusal(Refusal::NotExtractable("k".into()));
}

#[test]
fn rotation_waits_an_hour_and_keeps_the_key_material_source() {
    let rotate = KeyRotated {
        key_id: "k".into(),
        version_id: "k-v2".into(),
        key_check_value: "01".into(),
        imported: false,
    };
    let rotated = root_key().event(T1, &alice(), &rotate);
    rotated
        .when(decide_as(alice(), T1, KeyChange::Rotate(rotate.clone())))
        .then_expect_refusal(Refusal::State(StateError::RotatedTooRecently));
    root_key()
        .event(T1, &alice(), &rotate)
        .when(decide_as(alice(), T2, KeyChange::Rotate(rotate.clone())))
        .then_expect_events(&[draft(alice(), &rotate)]);
    let imported = KeyRotated {
        imported: true,
        ..rotate
    };
    root_key()
        .when(decide_as(alice(), T2, KeyChange::Rotate(imported)))
        .then_expect_refusal(Refusal::Invalid(
            "a generated key rotates to generated material".into(),
        ));
}

#[test]
fn dual_auth_delete_needs_a_second_principal() {
    let protected = root_key().event(T0, &alice(), &dual_auth_on());
    protected
        .when(decide_as(alice(), T1, KeyChange::Destroy(destroyed())))
        .then_expect_refusal(Refusal::State(StateError::AuthorizationsNotMet));
    let authorize = KeyDeletionAuthorized {
        key_id: "k".into(),
        auth_expiration: "2026-01-08T00:00:00Z".into(),
    };
    let authorized = || {
        root_key()
            .event(T0, &alice(), &dual_auth_on())
            .event(T1, &alice(), &authorize)
    };
    // The one who authorised cannot also delete.
    authorized()
        .when(decide_as(alice(), T2, KeyChange::Destroy(destroyed())))
        .then_expect_refusal(Refusal::State(StateError::AuthorizationsNotMet));
    authorized()
        .when(decide_as(bob(), T2, KeyChange::Destroy(destroyed())))
        .then_expect_events(&[draft(bob(), &destroyed())]);
    // Without the policy, set-for-deletion is refused.
    root_key()
        .when(decide_as(
            alice(),
            T1,
            KeyChange::AuthorizeDeletion(authorize),
        ))
        .then_expect_refusal(Refusal::State(StateError::NotDualAuth));
}

#[test]
fn dual_auth_delete_is_irreversible() {
    let off = KeyPolicyUpdated {
        enabled: false,
        ..dual_auth_on()
    };
    root_key()
        .event(T0, &alice(), &dual_auth_on())
        .when(decide_as(alice(), T1, KeyChange::SetPolicy(off.clone())))
        .then_expect_refusal(Refusal::State(StateError::DualAuthIrreversible));
    root_key()
        .when(decide_as(alice(), T1, KeyChange::SetPolicy(off.clone())))
        .then_expect_events(&[draft(alice(), &off)]);
    let bad = KeyPolicyUpdated {
        policy_type: "rotation".into(),
        enabled: true,
        interval_month: Some(13),
        ..dual_auth_on()
    };
    root_key()
        .when(decide_as(alice(), T1, KeyChange::SetPolicy(bad)))
        .then_expect_refusal(Refusal::Invalid(
            "policy must be dualAuthDelete, or rotation with interval_month 1-12".into(),
        ));
}

#[test]
fn the_role_table_applies_to_credential_roles() {
    let delete = KeyChange::Destroy(destroyed());
    let writer = acting("w", Role::Writer);
    root_key()
        .when(decide_as(writer.clone(), T1, delete.clone()))
        .then_expect_refusal(Refusal::RoleNotAllowed {
            role: Role::Writer,
            command: "delete",
            need: Need::Manager,
        });
    root_key()
        .when(decide_as(
            acting("r", Role::Reader),
            T1,
            KeyChange::Create(created("n", false)),
        ))
        .then_expect_refusal(Refusal::RoleNotAllowed {
            role: Role::Reader,
            command: "create",
            need: Need::Writer,
        });
    // A writer may create; the service itself is outside the table.
    let new = created("n", false);
    root_key()
        .when(decide_as(
            writer.clone(),
            T1,
            KeyChange::Create(new.clone()),
        ))
        .then_expect_events(&[draft(writer, &new)]);
    root_key()
        .when(decide_as(Actor::system(), T1, delete))
        .then_expect_events(&[draft(Actor::system(), &destroyed())]);
    // Policies need a manager, or the writer that created the key (a
    // creation with policy overrides).
    let wendy = acting("wendy", Role::Writer);
    let set = KeyChange::SetPolicy(dual_auth_on());
    root_key()
        .when(decide_as(wendy.clone(), T1, set.clone()))
        .then_expect_refusal(Refusal::RoleNotAllowed {
            role: Role::Writer,
            command: "setPolicy",
            need: Need::Manager,
        });
    with_master_key()
        .event(T0, &wendy, &created("k", false))
        .when(decide_as(wendy.clone(), T0, set))
        .then_expect_events(&[draft(wendy, &dual_auth_on())]);
}

#[test]
fn expiry_and_activation_wait_for_their_dates() {
    let mut dated = created("d", false);
    dated.expiration_date = Some(T2.into());
    dated.activation_date = Some(T1.into());
    let key = || with_master_key().event(T0, &alice(), &dated);
    let activate = KeyChange::Activate(KeyActivated { key_id: "d".into() });
    key()
        .when(decide_as(Actor::system(), T0, activate.clone()))
        .then_expect_refusal(Refusal::State(StateError::InvalidState {
            state: KeyState::PreActivation,
            action: KeyAction::Activate,
        }));
    key()
        .when(decide_as(Actor::system(), T1, activate))
        .then_expect_events(&[draft(Actor::system(), &KeyActivated { key_id: "d".into() })]);
    let expire = KeyChange::Expire(KeyExpired { key_id: "d".into() });
    key()
        .event(T1, &Actor::system(), &KeyActivated { key_id: "d".into() })
        .when(decide_as(Actor::system(), T1, expire))
        .then_expect_refusal(Refusal::NotDue("d".into()));
}

#[test]
fn a_destroyed_key_waits_four_hours_for_purge() {
    let gone = root_key().event(T1, &alice(), &destroyed());
    let purge = KeyPurged {
        key_id: "k".into(),
        versions_shredded: 1,
        approval_request_id: None,
    };
    gone.when(decide_as(alice(), T2, KeyChange::Purge(purge)))
        .then_expect_refusal(Refusal::State(StateError::PurgeTooEarly {
            allowed_from: t("2026-01-01T04:10:00Z"),
        }));
}

#[test]
fn a_dual_auth_key_is_purged_only_on_an_approval() {
    let authorize = KeyDeletionAuthorized {
        key_id: "k".into(),
        auth_expiration: "2026-01-08T00:00:00Z".into(),
    };
    let gone = || {
        root_key()
            .event(T0, &alice(), &dual_auth_on())
            .event(T0, &alice(), &authorize)
            .event(T1, &bob(), &destroyed())
    };
    let purge = |request: Option<&str>| KeyPurged {
        key_id: "k".into(),
        versions_shredded: 1,
        approval_request_id: request.map(str::to_string),
    };
    let later = "2026-01-01T06:00:00Z";
    gone()
        .when(decide_as(alice(), later, KeyChange::Purge(purge(None))))
        .then_expect_refusal(Refusal::State(StateError::AuthorizationsNotMet));
    gone()
        .when(decide_as(
            bob(),
            later,
            KeyChange::Purge(purge(Some("req"))),
        ))
        .then_expect_events(&[draft(bob(), &purge(Some("req")))]);
}

#[test]
fn key_use_needs_a_key_whose_state_allows_it() {
    let wrap = |id: &str| KeyWrapped {
        key_id: id.into(),
        version_id: format!("{id}-v1"),
        generated_dek: true,
        aad_entries: 0,
        ciphertext_digest: "00".repeat(32),
    };
    root_key()
        .when(decide_as(alice(), T1, KeyChange::Wrap(wrap("k"))))
        .then_expect_events(&[draft(alice(), &wrap("k"))]);
    root_key()
        .when(decide_as(alice(), T1, KeyChange::Wrap(wrap("nope"))))
        .then_expect_refusal(Refusal::UnknownKey("nope".into()));
    let refused = root_key()
        .event(T0, &alice(), &KeyDisabled { key_id: "k".into() })
        .when(decide_as(alice(), T1, KeyChange::Wrap(wrap("k"))))
        .into_refusal();
    assert!(
        matches!(
            refused,
            Some(Refusal::State(StateError::InvalidState { .. }))
        ),
        "{refused:?}"
    );
    let unwrap = KeyUnwrapped {
        key_id: "k".into(),
        version_id: "k-v1".into(),
        rewrapped_version_id: None,
        ciphertext_digest: "00".repeat(32),
    };
    let refused = root_key()
        .event(T0, &alice(), &destroyed())
        .when(decide_as(alice(), T1, KeyChange::Unwrap(unwrap)))
        .into_refusal();
    assert!(
        matches!(refused, Some(Refusal::State(StateError::Deleted { .. }))),
        "{refused:?}"
    );
}

#[test]
fn credentials_act_while_in_force_and_in_their_role() {
    use crate::event::{CredentialIssued, CredentialRevoked};
    let issued = CredentialIssued {
        credential_id: "app".into(),
        role: "writer".into(),
        token_digest: "ab".repeat(32),
        command: None,
    };
    let app = acting("app", Role::Writer);
    let create = || KeyChange::Create(created("n", false));
    with_master_key()
        .event(T0, &Actor::system(), &issued)
        .when(decide_as(app.clone(), T1, create()))
        .then_expect_events(&[draft(app.clone(), &created("n", false))]);
    with_master_key()
        .event(T0, &Actor::system(), &issued)
        .when(decide_as(acting("app", Role::Manager), T1, create()))
        .then_expect_refusal(Refusal::CredentialRoleMismatch {
            credential: "app".into(),
            issued: "writer".into(),
            acting: Role::Manager,
        });
    with_master_key()
        .event(T0, &Actor::system(), &issued)
        .event(
            T0,
            &Actor::system(),
            &CredentialRevoked {
                credential_id: "app".into(),
                command: None,
            },
        )
        .when(decide_as(app, T1, create()))
        .then_expect_refusal(Refusal::CredentialRevoked("app".into()));
    // A bearer principal is a credential, or it is refused.
    let ghost = Actor {
        principal: "ghost".into(),
        role: Role::Writer,
        auth: AuthMethod::Bearer,
    };
    with_master_key()
        .when(decide_as(ghost, T1, create()))
        .then_expect_refusal(Refusal::CredentialUnknown("ghost".into()));
}

#[test]
fn keys_live_in_existing_key_rings_under_the_instance_policy() {
    let mut elsewhere = created("n", false);
    elsewhere.key_ring_id = "nowhere".into();
    with_master_key()
        .when(decide_as(alice(), T1, KeyChange::Create(elsewhere)))
        .then_expect_refusal(Refusal::KeyRingUnknown("nowhere".into()));
    let moved = KeyMoved {
        key_id: "k".into(),
        from_key_ring_id: "default".into(),
        to_key_ring_id: "nowhere".into(),
    };
    root_key()
        .when(decide_as(alice(), T1, KeyChange::Move(moved)))
        .then_expect_refusal(Refusal::KeyRingUnknown("nowhere".into()));
    let policy = crate::event::InstancePolicyUpdated {
        policy_type: "keyCreateImportAccess".into(),
        enabled: true,
        attributes: [("create_root_key".to_string(), serde_json::json!(false))]
            .into_iter()
            .collect(),
        command: None,
    };
    let refused = with_master_key()
        .event(T0, &Actor::system(), &policy)
        .when(decide_as(
            alice(),
            T1,
            KeyChange::Create(created("n", false)),
        ))
        .into_refusal();
    assert!(
        matches!(refused, Some(Refusal::PolicyDenied(_))),
        "{refused:?}"
    );
    with_master_key()
        .event(T0, &Actor::system(), &policy)
        .when(decide_as(
            alice(),
            T1,
            KeyChange::Create(created("s", true)),
        ))
        .then_expect_events(&[draft(alice(), &created("s", true))]);
}
