//! The OpenAPI schemas of [`SignedCommand`] and [`AdminSignature`] (feature
//! `openapi`), kept as `schemas/openapi.json` publishes them.
//!
//! utoipa turns every field's doc comment into a `description` and has no
//! attribute to leave one out, so the two types do not derive `ToSchema`.
//! Each has a private mirror here, with the same fields under the same
//! serde attributes but without field docs, and its `ToSchema` is the
//! mirror's. The conversions below name every field on both sides: a field
//! added, removed or retyped on one side only stops the crate compiling.

use std::borrow::Cow;

use utoipa::openapi::{RefOr, schema::Schema};
use utoipa::{PartialSchema, ToSchema};

use super::command::SignedCommand;
use crate::event::AdminSignature;

#[derive(ToSchema)]
#[schema(
    as = SignedCommand,
    description = "A document with the administrator signatures gathered so far: the file\n`keyledger admin sign` writes and `keyledger admin submit` sends."
)]
#[serde(deny_unknown_fields)]
struct SignedCommandSchema {
    document: String,
    #[serde(default)]
    signatures: Vec<AdminSignature>,
}

#[derive(ToSchema)]
#[schema(
    as = AdminSignature,
    description = "One administrator signature over a command."
)]
#[serde(deny_unknown_fields)]
struct AdminSignatureSchema {
    admin_id: String,
    signature: String,
}

impl From<SignedCommand> for SignedCommandSchema {
    fn from(
        SignedCommand {
            document,
            signatures,
        }: SignedCommand,
    ) -> Self {
        SignedCommandSchema {
            document,
            signatures,
        }
    }
}

impl From<SignedCommandSchema> for SignedCommand {
    fn from(
        SignedCommandSchema {
            document,
            signatures,
        }: SignedCommandSchema,
    ) -> Self {
        SignedCommand {
            document,
            signatures,
        }
    }
}

impl From<AdminSignature> for AdminSignatureSchema {
    fn from(
        AdminSignature {
            admin_id,
            signature,
        }: AdminSignature,
    ) -> Self {
        AdminSignatureSchema {
            admin_id,
            signature,
        }
    }
}

impl From<AdminSignatureSchema> for AdminSignature {
    fn from(
        AdminSignatureSchema {
            admin_id,
            signature,
        }: AdminSignatureSchema,
    ) -> Self {
        AdminSignature {
            admin_id,
            signature,
        }
    }
}

impl PartialSchema for SignedCommand {
    fn schema() -> RefOr<Schema> {
        SignedCommandSchema::schema()
    }
}

impl ToSchema for SignedCommand {
    fn name() -> Cow<'static, str> {
        SignedCommandSchema::name()
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        SignedCommandSchema::schemas(schemas)
    }
}

impl PartialSchema for AdminSignature {
    fn schema() -> RefOr<Schema> {
        AdminSignatureSchema::schema()
    }
}

impl ToSchema for AdminSignature {
    fn name() -> Cow<'static, str> {
        AdminSignatureSchema::name()
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        AdminSignatureSchema::schemas(schemas)
    }
}
