//! docs/LEDGER-FORMAT.md cannot drift from the code: its event catalogue
//! (§11) is exactly `event::catalog()` (every type, version and payload
//! member with its JSON type), and it names every failure code `verify`
//! reports.
//!
//! `KEYLEDGER_UPDATE_DOCS=1 cargo test -p keyledger-core --test
//! ledger_format_doc` rewrites the catalogue between its markers.

use std::path::PathBuf;

use keyledger_core::event::catalog;
use keyledger_core::verify::Failure;
use serde_json::Value;

const BEGIN: &str = "<!-- catalogue:begin (generated from event/catalog.rs; see crates/keyledger-core/tests/ledger_format_doc.rs) -->\n";
const END: &str = "<!-- catalogue:end -->\n";

fn doc_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/LEDGER-FORMAT.md")
}

/// A member's JSON type, in words.
fn type_of(schema: &Value) -> String {
    if let Some(reference) = schema["$ref"].as_str() {
        return reference
            .rsplit('/')
            .next()
            .unwrap_or(reference)
            .to_string();
    }
    if let Some(c) = schema["const"].as_str() {
        return format!("\"{c}\"");
    }
    if let Some(any) = schema["anyOf"].as_array() {
        return any.iter().map(type_of).collect::<Vec<_>>().join(" or ");
    }
    match &schema["type"] {
        Value::Array(types) => types
            .iter()
            .map(|t| type_of(&serde_json::json!({ "type": t, "format": schema["format"], "items": schema["items"] })))
            .collect::<Vec<_>>()
            .join(" or "),
        Value::String(t) => match t.as_str() {
            "integer" => match schema["format"].as_str() {
                Some(format) => format!("integer ({format})"),
                None => "integer".into(),
            },
            "array" => format!("array of {}", type_of(&schema["items"])),
            "object" => "object (any members)".into(),
            other => other.to_string(),
        },
        _ => panic!("unexpected schema {schema}"),
    }
}

/// The members of an object schema: `name`: type, `(optional)` when it may
/// be absent.
fn members(schema: &Value) -> String {
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if let Some(variants) = schema["oneOf"].as_array() {
        // A tagged enum: each variant's members, in turn.
        return variants
            .iter()
            .map(|v| format!("({})", members(v)))
            .collect::<Vec<_>>()
            .join(" or ");
    }
    let properties = schema["properties"].as_object().expect("properties");
    if properties.is_empty() {
        return "(none: `{}`)".into();
    }
    properties
        .iter()
        .map(|(name, member)| {
            let optional = if required.contains(&name.as_str()) {
                ""
            } else {
                " (optional)"
            };
            format!("`{name}`: {}{optional}", type_of(member))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The catalogue section's generated text: one table row per event type,
/// then the shared object types its members refer to.
fn catalogue() -> String {
    let mut out = String::from("| type | version | payload members |\n|---|---|---|\n");
    let mut definitions = std::collections::BTreeMap::new();
    for entry in catalog() {
        let schema = serde_json::to_value((entry.schema)()).expect("schema json");
        assert_eq!(
            schema["additionalProperties"], false,
            "{}",
            entry.event_type
        );
        out.push_str(&format!(
            "| `{}` | {} | {} |\n",
            entry.event_type,
            entry.version,
            members(&schema)
        ));
        if let Some(defs) = schema["$defs"].as_object() {
            for (name, def) in defs {
                definitions.insert(name.clone(), members(def));
            }
        }
    }
    out.push_str("\n| object | members |\n|---|---|\n");
    for (name, members) in definitions {
        out.push_str(&format!("| {name} | {members} |\n"));
    }
    out
}

#[test]
fn the_documented_catalogue_is_the_code_s() {
    let path = doc_path();
    let doc = std::fs::read_to_string(&path).expect("LEDGER-FORMAT.md");
    let start = doc.find(BEGIN).expect("catalogue begin marker") + BEGIN.len();
    let end = start + doc[start..].find(END).expect("catalogue end marker");
    let expected = catalogue();
    if std::env::var_os("KEYLEDGER_UPDATE_DOCS").is_some() {
        let updated = format!("{}{expected}{}", &doc[..start], &doc[end..]);
        std::fs::write(&path, updated).expect("write doc");
        return;
    }
    assert_eq!(
        &doc[start..end],
        expected,
        "docs/LEDGER-FORMAT.md §11 differs from event/catalog.rs; \
         regenerate with KEYLEDGER_UPDATE_DOCS=1"
    );
}

/// One failure of every kind. The match is exhaustive, so a new kind does
/// not compile until it is listed here (and then documented).
fn every_failure() -> Vec<Failure> {
    let s = String::new;
    let all = vec![
        Failure::Malformed {
            seq: 0,
            reason: s(),
        },
        Failure::UnknownEvent {
            seq: 0,
            event_type: s(),
            type_version: 1,
        },
        Failure::WrongInstance {
            seq: 0,
            expected: s(),
            found: s(),
        },
        Failure::Removed { seq: 0, found: 1 },
        Failure::Reordered { seq: 0, found: 1 },
        Failure::Duplicated {
            seq: 0,
            position: 1,
        },
        Failure::ChainBroken { seq: 0 },
        Failure::BadSignature { seq: 0 },
        Failure::UnauthorizedKey {
            seq: 0,
            key_id: s(),
            expected: s(),
        },
        Failure::TimeBackwards {
            seq: 0,
            time: s(),
            previous: s(),
        },
        Failure::BadRotation {
            seq: 0,
            reason: s(),
        },
        Failure::BadGenesis { reason: s() },
        Failure::UntrustedKey { key_id: s() },
        Failure::Truncated {
            expected: 1,
            found: 0,
        },
        Failure::BadCheckpoint { reason: s() },
        Failure::CheckpointShape { reason: s() },
        Failure::CheckpointSizeMismatch {
            checkpoint: 0,
            records: 1,
        },
        Failure::RootMismatch { size: 0 },
        Failure::ChainHeadMismatch { size: 0 },
        Failure::InconsistentCheckpoint { size: 0 },
        Failure::BadManifest { reason: s() },
        Failure::ManifestMismatch {
            manifest: 0,
            records: 1,
        },
    ];
    for failure in &all {
        match failure {
            Failure::Malformed { .. }
            | Failure::UnknownEvent { .. }
            | Failure::WrongInstance { .. }
            | Failure::Removed { .. }
            | Failure::Reordered { .. }
            | Failure::Duplicated { .. }
            | Failure::ChainBroken { .. }
            | Failure::BadSignature { .. }
            | Failure::UnauthorizedKey { .. }
            | Failure::TimeBackwards { .. }
            | Failure::BadRotation { .. }
            | Failure::BadGenesis { .. }
            | Failure::UntrustedKey { .. }
            | Failure::Truncated { .. }
            | Failure::BadCheckpoint { .. }
            | Failure::CheckpointShape { .. }
            | Failure::CheckpointSizeMismatch { .. }
            | Failure::RootMismatch { .. }
            | Failure::ChainHeadMismatch { .. }
            | Failure::InconsistentCheckpoint { .. }
            | Failure::BadManifest { .. }
            | Failure::ManifestMismatch { .. } => {}
        }
    }
    all
}

#[test]
fn the_spec_names_every_failure_code_verify_reports() {
    let doc = std::fs::read_to_string(doc_path()).expect("LEDGER-FORMAT.md");
    let section = doc
        .split("\n## ")
        .find(|s| s.starts_with("9. "))
        .expect("§9");
    let mut codes = Vec::new();
    for failure in every_failure() {
        let json = serde_json::to_value(&failure).expect("json");
        let code = json["kind"].as_str().expect("kind").to_string();
        assert!(
            section.contains(&format!("`{code}`")),
            "docs/LEDGER-FORMAT.md §9 does not name the failure code `{code}`"
        );
        codes.push(code);
    }
    let distinct: std::collections::BTreeSet<_> = codes.iter().collect();
    assert_eq!(distinct.len(), codes.len());
}
