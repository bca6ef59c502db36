//! The committed JSON Schemas under `schemas/events/` are exactly what the
//! Rust event definitions generate (regenerate with
//! `KEYLEDGER_UPDATE_SCHEMAS=1 cargo test --test event_schemas`), and every
//! schema is itself a valid JSON Schema.

use std::path::Path;

use keyledger_core::event::catalog;

fn schema_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../schemas/events"))
}

#[test]
fn committed_schemas_match_the_event_definitions() {
    let update = std::env::var_os("KEYLEDGER_UPDATE_SCHEMAS").is_some();
    let mut stale = Vec::new();
    for entry in catalog() {
        let generated =
            serde_json::to_string_pretty(&(entry.schema)()).expect("schema json") + "\n";
        let path = schema_dir().join(entry.schema_file());
        if update {
            std::fs::write(&path, &generated).expect("write schema");
            continue;
        }
        match std::fs::read_to_string(&path) {
            Ok(committed) if committed == generated => {}
            _ => stale.push(entry.schema_file()),
        }
    }
    assert!(
        stale.is_empty(),
        "schemas out of date (run KEYLEDGER_UPDATE_SCHEMAS=1 cargo test --test event_schemas): {stale:?}"
    );
}

#[test]
fn every_schema_file_compiles_and_belongs_to_a_known_type() {
    let known: Vec<String> = catalog().iter().map(|e| e.schema_file()).collect();
    let mut count = 0;
    for file in std::fs::read_dir(schema_dir()).expect("schemas dir") {
        let path = file.expect("entry").path();
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .to_string();
        let schema: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
        jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            name == "envelope.v1.json" || known.contains(&name),
            "schema {name} has no event type"
        );
        count += 1;
    }
    assert_eq!(count, known.len() + 1);
}
