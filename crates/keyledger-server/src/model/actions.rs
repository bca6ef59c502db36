//! The key actions (`POST /keys/{id}/actions/{action}`) as the OpenAPI
//! document describes them: name, operation id, role, body and answer.

/// What an action answers on success.
pub enum ActionAnswer {
    /// 200 with this schema and media type.
    Json(&'static str, &'static str),
    /// 204, or 200 with the key under `prefer: return=representation`.
    KeyOrNoContent,
    /// 204 only.
    NoContent,
}

/// One `POST /keys/{id}/actions/{action}` operation.
pub struct Action {
    pub name: &'static str,
    pub operation_id: &'static str,
    pub summary: &'static str,
    pub role: &'static str,
    /// The body's schema name and whether the body may be omitted.
    pub body: Option<(&'static str, bool)>,
    pub answer: ActionAnswer,
    /// Whether it uses the HSM (and so answers 503 on a sealed instance).
    pub crypto: bool,
    pub receipt: bool,
}

pub const ACTIONS: &[Action] = &[
    Action {
        name: "wrap",
        operation_id: "wrapKey",
        summary: "Wrap a data key (or generate one) with a root key",
        role: "writer",
        body: Some(("WrapBody", true)),
        answer: ActionAnswer::Json("WrapResult", "application/vnd.ibm.kms.key_action_wrap+json"),
        crypto: true,
        receipt: true,
    },
    Action {
        name: "unwrap",
        operation_id: "unwrapKey",
        summary: "Unwrap a data key",
        role: "writer",
        body: Some(("UnwrapBody", false)),
        answer: ActionAnswer::Json(
            "UnwrapResult",
            "application/vnd.ibm.kms.key_action_unwrap+json",
        ),
        crypto: true,
        receipt: true,
    },
    Action {
        name: "rewrap",
        operation_id: "rewrapKey",
        summary: "Wrap a data key again under the key's newest version",
        role: "writer",
        body: Some(("UnwrapBody", false)),
        answer: ActionAnswer::Json(
            "RewrapResult",
            "application/vnd.ibm.kms.key_action_rewrap+json",
        ),
        crypto: true,
        receipt: true,
    },
    Action {
        name: "rotate",
        operation_id: "rotateKey",
        summary: "Rotate a key: add a version (imported keys: with a new payload)",
        role: "writer",
        body: Some(("RotateBody", true)),
        answer: ActionAnswer::KeyOrNoContent,
        crypto: true,
        receipt: true,
    },
    Action {
        name: "enable",
        operation_id: "enableKey",
        summary: "Enable a disabled key",
        role: "manager",
        body: None,
        answer: ActionAnswer::KeyOrNoContent,
        crypto: false,
        receipt: true,
    },
    Action {
        name: "disable",
        operation_id: "disableKey",
        summary: "Disable (suspend) a key",
        role: "manager",
        body: None,
        answer: ActionAnswer::KeyOrNoContent,
        crypto: false,
        receipt: true,
    },
    Action {
        name: "setKeyForDeletion",
        operation_id: "setKeyForDeletion",
        summary: "First authorisation to delete a dual-authorisation key",
        role: "manager",
        body: None,
        answer: ActionAnswer::KeyOrNoContent,
        crypto: false,
        receipt: true,
    },
    Action {
        name: "unsetKeyForDeletion",
        operation_id: "unsetKeyForDeletion",
        summary: "Cancel the authorisation to delete a key",
        role: "manager",
        body: None,
        answer: ActionAnswer::KeyOrNoContent,
        crypto: false,
        receipt: true,
    },
    Action {
        name: "restore",
        operation_id: "restoreKeyAction",
        summary: "Restore a deleted key (as `POST /keys/{id}/restore`)",
        role: "manager",
        body: Some(("RestoreBody", true)),
        answer: ActionAnswer::KeyOrNoContent,
        crypto: false,
        receipt: true,
    },
    Action {
        name: "sync",
        operation_id: "syncAssociatedResources",
        summary: "Sync the resources associated with a key (keyledger has none: checks the key exists)",
        role: "reader",
        body: None,
        answer: ActionAnswer::NoContent,
        crypto: false,
        receipt: false,
    },
];

/// The action names `POST /keys/{id}/actions/{action}` and
/// `POST /keys/{id}?action=` accept.
pub fn action_names() -> impl Iterator<Item = &'static str> {
    ACTIONS.iter().map(|a| a.name)
}
