//! Validates every event a test wrote against its JSON Schema. One copy,
//! shared by the root's tests and keyledger-ledger's (by `#[path]`), so it
//! names keyledger-core and finds `schemas/events` from either crate.

use std::collections::HashMap;
use std::path::Path;

use jsonschema::Validator;
use keyledger_core::record::Record;

/// Compiled schemas: the envelope and one per event type.
pub struct Schemas {
    envelope: Validator,
    payloads: HashMap<String, Validator>,
}

impl Schemas {
    pub fn load() -> Self {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .ancestors()
            .map(|d| d.join("schemas/events"))
            .find(|d| d.is_dir())
            .expect("schemas/events above the crate");
        let compile = |path: &Path| {
            let value: serde_json::Value =
                serde_json::from_slice(&std::fs::read(path).expect("read schema"))
                    .expect("schema json");
            jsonschema::validator_for(&value).expect("compile schema")
        };
        let mut payloads = HashMap::new();
        for entry in keyledger_core::event::catalog() {
            let file = entry.schema_file();
            payloads.insert(file.clone(), compile(&dir.join(&file)));
        }
        Schemas {
            envelope: compile(&dir.join("envelope.v1.json")),
            payloads,
        }
    }

    /// Panics, naming the record, if any event breaks its schema. Returns the
    /// number of events checked per type.
    pub fn check_all(&self, records: &[Record]) -> HashMap<String, usize> {
        let mut seen = HashMap::new();
        for (i, record) in records.iter().enumerate() {
            let event: serde_json::Value =
                serde_json::from_slice(&record.event).expect("event json");
            if let Err(e) = self.envelope.validate(&event) {
                panic!("record {i} breaks the envelope schema: {e}");
            }
            let file = format!(
                "{}.v{}.json",
                event["type"].as_str().expect("type"),
                event["type_version"]
            );
            let validator = self
                .payloads
                .get(&file)
                .unwrap_or_else(|| panic!("record {i}: no schema {file}"));
            if let Err(e) = validator.validate(&event["payload"]) {
                panic!("record {i} payload breaks {file}: {e}");
            }
            *seen.entry(file).or_insert(0) += 1;
        }
        seen
    }
}
