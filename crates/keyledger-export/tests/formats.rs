//! Each format against its specification, on a log the real writer made
//! holding one event of every catalogued type: CADF's required fields and
//! `typeURI`, OCSF's class, activity and type ids, CEF's and LEEF's
//! escaping of a key named `a|b=c\d` + newline + `e`, JSON lines that
//! re-verify (link, leaf hash, signature), and the instance, seq and leaf
//! hash in every line of every format.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use keyledger_core::chain;
use keyledger_core::event::{self, Actor, AuthMethod, EventDraft, Role};
use keyledger_core::merkle;
use keyledger_export::{ExportError, Format, export_log, render};
use keyledger_ledger::audit::AuditLog;
use keyledger_ledger::ledger::{InitialAdmin, Ledger};
use keyledger_ledger::store::embedded::EmbeddedStore;
use keyledger_ledger::writer::WriterConfig;
use serde_json::{Map, Value, json};

const NAME: &str = "a|b=c\\d\ne";
const INSTANCE: &str = "acme";

fn admin() -> InitialAdmin {
    InitialAdmin {
        admin_id: "admin-1".into(),
        public_key: "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=".into(),
    }
}

/// A value of the JSON Schema `schema` (resolving `$ref`s in `defs`):
/// strings name their field, numbers are 1, options are null.
fn sample(schema: &Value, defs: &Map<String, Value>, field: &str) -> Value {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().expect("ref");
        return sample(&defs[name], defs, field);
    }
    if let Some(any) = schema.get("anyOf").or_else(|| schema.get("oneOf")) {
        let options = any.as_array().expect("anyOf");
        if options
            .iter()
            .any(|o| o.get("type") == Some(&json!("null")))
        {
            return Value::Null;
        }
        return sample(&options[0], defs, field);
    }
    let ty = match schema.get("type") {
        Some(Value::Array(types)) if types.contains(&json!("null")) => return Value::Null,
        Some(Value::String(t)) => t.as_str(),
        other => panic!("{field}: unexpected schema type {other:?}"),
    };
    match ty {
        "string" => json!(format!("sample-{field}")),
        "integer" | "number" => json!(1),
        "boolean" => json!(true),
        "array" => json!([]),
        "object" => {
            let mut out = Map::new();
            let required: BTreeSet<&str> = schema
                .get("required")
                .and_then(Value::as_array)
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (name, prop) in props {
                    if required.contains(name.as_str()) || prop.get("anyOf").is_some() {
                        out.insert(name.clone(), sample(prop, defs, name));
                    }
                }
            }
            Value::Object(out)
        }
        other => panic!("{field}: unexpected type {other}"),
    }
}

fn user() -> Actor {
    Actor {
        principal: "cred-writer".into(),
        role: Role::Writer,
        auth: AuthMethod::Bearer,
    }
}

/// A log with one sample of every catalogued type, then the key named
/// [`NAME`]; returns the directory (kept alive) and the ledger.
fn full_log() -> (tempfile::TempDir, Ledger) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = EmbeddedStore::open(dir.path()).expect("store");
    let config = WriterConfig {
        checkpoint_interval: Duration::ZERO,
        ..WriterConfig::default()
    };
    let ledger =
        Ledger::create(&store, dir.path(), INSTANCE, &admin(), "op", config).expect("create");
    for entry in event::catalog() {
        let schema = serde_json::to_value((entry.schema)()).expect("schema");
        let defs = schema
            .get("$defs")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let payload = sample(&schema, &defs, entry.event_type).to_string();
        let draft =
            EventDraft::from_json(entry.event_type, entry.version, user(), "corr-1", &payload)
                .unwrap_or_else(|e| panic!("{}: {e}: {payload}", entry.event_type));
        ledger.append(draft).expect("append");
    }
    let named = event::KeyCreated {
        key_id: "0f8e4d1c-0000-4000-8000-000000000001".into(),
        name: NAME.into(),
        description: None,
        key_ring_id: "default".into(),
        extractable: false,
        imported: false,
        algorithm: "AES".into(),
        bit_length: 256,
        version_id: "0f8e4d1c-0000-4000-8000-0000000000v1".into(),
        key_check_value: "abcdef".into(),
        expiration_date: None,
        aliases: vec![],
        activation_date: None,
        import_token_id: None,
    };
    ledger
        .append(EventDraft::new(user(), "corr-named", &named).expect("draft"))
        .expect("append");
    (dir, ledger)
}

fn export(ledger: &Ledger, format: Format) -> Vec<String> {
    let mut out = Vec::new();
    let audit: &dyn AuditLog = ledger.writer();
    let n = export_log(audit, format, 0, &mut out).expect("export");
    let text = String::from_utf8(out).expect("utf8");
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    assert_eq!(lines.len() as u64, n);
    assert_eq!(n, audit.size());
    assert!(text.ends_with('\n'));
    lines
}

/// The stored event type of each record.
fn types(ledger: &Ledger) -> Vec<String> {
    let audit: &dyn AuditLog = ledger.writer();
    audit
        .records(0, audit.size())
        .expect("records")
        .iter()
        .map(|r| {
            let v: Value = serde_json::from_slice(&r.event).expect("event");
            v["type"].as_str().expect("type").to_string()
        })
        .collect()
}

fn leaves(ledger: &Ledger) -> Vec<String> {
    let audit: &dyn AuditLog = ledger.writer();
    audit
        .records(0, audit.size())
        .expect("records")
        .iter()
        .map(|r| hex::encode(r.leaf_hash()))
        .collect()
}

#[test]
fn every_catalogued_type_renders_in_every_format_with_its_dedupe_key() {
    let (_dir, ledger) = full_log();
    let types = types(&ledger);
    let present: BTreeSet<&str> = types.iter().map(String::as_str).collect();
    for entry in event::catalog() {
        assert!(present.contains(entry.event_type), "{}", entry.event_type);
    }
    let leaves = leaves(&ledger);
    for format in Format::ALL {
        let lines = export(&ledger, format);
        for (seq, line) in lines.iter().enumerate() {
            assert!(!line.is_empty());
            assert!(line.contains(&leaves[seq]), "{format} {seq}: no leaf hash");
            assert!(line.contains(INSTANCE), "{format} {seq}: no instance");
            match format {
                Format::Cef => {
                    assert!(line.starts_with("CEF:0|keyledger|keyledger|"));
                    assert!(line.contains(&format!(" cn1={seq} ")), "{line}");
                }
                Format::Leef => {
                    assert!(line.starts_with("LEEF:2.0|keyledger|keyledger|"));
                    assert!(line.contains(&format!("^seq={seq}^")), "{line}");
                }
                _ => {
                    let v: Value = serde_json::from_str(line).expect("json");
                    let seq_field = match format {
                        Format::Cadf => &v["keyledger"]["seq"],
                        Format::Ocsf => &v["metadata"]["sequence"],
                        _ => &v["seq"],
                    };
                    assert_eq!(seq_field, &json!(seq), "{format}: {line}");
                }
            }
        }
    }
    // Each line stands alone: render one record directly.
    let audit: &dyn AuditLog = ledger.writer();
    let record = &audit.records(3, 4).expect("record")[0];
    assert!(render(Format::Cadf, INSTANCE, 3, record).is_ok());
    assert!(matches!(
        render(Format::Cef, INSTANCE, 4, record),
        Err(ExportError::Mismatch { found_seq: 3, .. })
    ));
    assert!(matches!(
        render(Format::Jsonl, "other", 3, record),
        Err(ExportError::Mismatch { .. })
    ));
    assert!("xml".parse::<Format>().is_err());
    for format in Format::ALL {
        assert_eq!(format.name().parse::<Format>().expect("parse"), format);
    }
}

#[test]
fn cadf_lines_carry_the_required_fields_and_activity_tracker_names() {
    let (_dir, ledger) = full_log();
    let types = types(&ledger);
    let lines = export(&ledger, Format::Cadf);
    let mut by_type = BTreeMap::new();
    for (line, ty) in lines.iter().zip(&types) {
        let v: Value = serde_json::from_str(line).expect("json");
        assert_eq!(
            v["typeURI"],
            "http://schemas.dmtf.org/cloud/audit/1.0/event"
        );
        assert!(v["id"].as_str().is_some_and(|s| !s.is_empty()));
        assert!(["activity", "monitor", "control"].contains(&v["eventType"].as_str().expect("t")));
        chrono::DateTime::parse_from_rfc3339(v["eventTime"].as_str().expect("time"))
            .expect("eventTime with a zone");
        assert!(v["action"].as_str().is_some_and(|s| !s.is_empty()));
        assert!(
            ["success", "failure", "pending", "unknown"]
                .contains(&v["outcome"].as_str().expect("outcome"))
        );
        for part in ["initiator", "target", "observer"] {
            assert!(v[part]["id"].is_string(), "{ty}: {part}");
            assert!(v[part]["typeURI"].is_string(), "{ty}: {part}");
        }
        // Record 0 (instance.created) is the operator's; the samples are a writer's.
        let auth = if by_type.is_empty() {
            "local_cli"
        } else {
            "bearer"
        };
        assert_eq!(v["initiator"]["credential"]["type"], auth, "{ty}");
        assert_eq!(v["requestData"]["instanceID"], INSTANCE);
        assert!(v["correlationId"].is_string());
        by_type.entry(ty.clone()).or_insert(v);
    }
    assert_eq!(by_type.len(), event::catalog().len());
    let key = "crn:v1:keyledger:kms:acme:key:sample-key_id";
    for (ty, action) in [
        ("key.created", "kms.secrets.create"),
        ("key.wrapped", "kms.secrets.wrap"),
        ("key.unwrapped", "kms.secrets.unwrap"),
        ("key.rotated", "kms.secrets.rotate"),
        ("key.destroyed", "kms.secrets.delete"),
        ("key.restored", "kms.secrets.restore"),
        ("key.purged", "kms.secrets.purge"),
    ] {
        assert_eq!(by_type[ty]["action"], action, "{ty}");
        assert_eq!(by_type[ty]["target"]["id"], key, "{ty}");
        assert_eq!(by_type[ty]["target"]["typeURI"], "kms/secrets");
        assert_eq!(by_type[ty]["outcome"], "success");
    }
    assert_eq!(
        by_type["key.wrapped"]["responseData"]["keyVersionId"],
        "sample-version_id"
    );
    assert_eq!(by_type["key.disabled"]["responseData"]["keyState"], 2);
    assert_eq!(by_type["key.enabled"]["responseData"]["keyState"], 1);
    assert_eq!(by_type["key.expired"]["responseData"]["keyState"], 3);
    assert_eq!(by_type["key.destroyed"]["responseData"]["keyState"], 5);
    assert_eq!(by_type["admin.added"]["action"], "keyledger.admin.added");
    assert_eq!(
        by_type["ledger_key.rotated"]["action"],
        "keyledger.ledger_key.rotated"
    );
    assert_eq!(
        by_type["ledger_key.rotated"]["target"]["id"],
        "crn:v1:keyledger:kms:acme"
    );
    for ty in [
        "access.denied",
        "key.operation_failed",
        "operation.failed",
        "admin.command_denied",
    ] {
        assert_eq!(by_type[ty]["outcome"], "failure", "{ty}");
        assert!(by_type[ty]["reason"]["reasonCode"].is_string(), "{ty}");
    }
    assert_eq!(
        by_type["key.operation_failed"]["reason"]["reasonCode"],
        "sample-reason"
    );
    assert_eq!(
        by_type["key.operation_failed"]["action"],
        "kms.secrets.sampleaction"
    );
    assert_eq!(
        by_type["access.denied"]["requestData"]["requestURI"],
        "sample-target"
    );
    assert!(by_type["key.created"].get("reason").is_none());
}

#[test]
fn ocsf_lines_are_api_activity_with_consistent_ids() {
    let (_dir, ledger) = full_log();
    let types = types(&ledger);
    let lines = export(&ledger, Format::Ocsf);
    let mut activity = BTreeMap::new();
    for (line, ty) in lines.iter().zip(&types) {
        let v: Value = serde_json::from_str(line).expect("json");
        assert_eq!(v["class_uid"], 6003);
        let id = v["activity_id"].as_u64().expect("activity_id");
        assert!([1, 2, 3, 4, 99].contains(&id), "{ty}: {id}");
        assert_eq!(v["type_uid"].as_u64(), Some(600300 + id));
        assert!(v["time"].as_i64().is_some_and(|t| t > 0));
        assert!((1..=6).contains(&v["severity_id"].as_u64().expect("severity")));
        assert!([1, 2].contains(&v["status_id"].as_u64().expect("status")));
        assert_eq!(v["metadata"]["product"]["name"], "keyledger");
        assert!(v["metadata"]["version"].is_string());
        let who = if activity.is_empty() {
            "op"
        } else {
            "cred-writer"
        };
        assert_eq!(v["actor"]["user"]["uid"], who, "{ty}");
        assert!(v["api"]["operation"].is_string());
        assert!(v["src_endpoint"].is_object());
        assert!(v["resources"][0]["uid"].is_string());
        activity
            .entry(ty.clone())
            .or_insert((id, v["status_id"].as_u64().expect("s")));
    }
    assert_eq!(activity["key.created"], (1, 1));
    assert_eq!(activity["key.payload_read"], (2, 1));
    assert_eq!(activity["key.rotated"], (3, 1));
    assert_eq!(activity["key.destroyed"], (4, 1));
    assert_eq!(activity["key.wrapped"], (99, 1));
    assert_eq!(activity["access.denied"], (99, 2));
}

/// Splits `text` on `sep` not preceded by an escaping backslash.
fn split_unescaped(text: &str, sep: char) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            let next = chars.next().expect("dangling backslash");
            parts.last_mut().expect("part").extend([c, next]);
        } else if c == sep {
            parts.push(String::new());
        } else {
            parts.last_mut().expect("part").push(c);
        }
    }
    parts
}

/// Undoes backslash escaping (`\n`, `\r` and `\<c>`).
fn unescape(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next().expect("dangling backslash") {
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                other => out.push(other),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// CEF extension pairs: keys are the words before an unescaped `=`; a
/// value runs to the space before the next key.
fn cef_extension(ext: &str) -> BTreeMap<String, String> {
    let mut tokens: Vec<(String, String)> = Vec::new();
    for word in ext.split(' ') {
        let pair = split_unescaped(word, '=');
        if pair.len() == 2 && !pair[0].is_empty() && pair[0].chars().all(char::is_alphanumeric) {
            tokens.push((pair[0].clone(), pair[1].clone()));
        } else {
            let last = tokens.last_mut().expect("value before any key");
            last.1.push(' ');
            last.1.push_str(word);
        }
    }
    tokens.into_iter().map(|(k, v)| (k, unescape(&v))).collect()
}

#[test]
fn cef_escapes_pipes_equals_backslashes_and_newlines_per_the_specification() {
    use keyledger_export::cef::{escape_header, escape_value};
    assert_eq!(escape_header("a|b\\c"), "a\\|b\\\\c");
    assert_eq!(escape_header("x=y"), "x=y");
    assert_eq!(escape_value(NAME), "a|b\\=c\\\\d\\ne");
    assert_eq!(escape_value("r\r"), "r\\r");

    let (_dir, ledger) = full_log();
    let lines = export(&ledger, Format::Cef);
    let line = lines.last().expect("named key");
    assert!(line.contains("cs4=a|b\\=c\\\\d\\ne"), "{line}");
    let header = split_unescaped(line, '|');
    // 7 header fields, then the extension, whose pipes are not separators.
    let ext_start = header[..7].iter().map(|h| h.len() + 1).sum::<usize>();
    assert_eq!(
        &header[..7],
        [
            "CEF:0",
            "keyledger",
            "keyledger",
            keyledger_export::PRODUCT_VERSION,
            "key.created",
            "kms.secrets.create",
            "3"
        ]
    );
    let ext = cef_extension(&line[ext_start..]);
    assert_eq!(ext["cs4Label"], "targetName");
    assert_eq!(ext["cs4"], NAME);
    assert_eq!(ext["act"], "kms.secrets.create");
    assert_eq!(ext["cs1"], INSTANCE);
    assert_eq!(ext["cs2"], leaves(&ledger).last().expect("leaf").as_str());
    assert_eq!(ext["outcome"], "success");
    for line in &lines {
        assert!(!line.contains('\n') && !line.contains('\r'));
    }
}

#[test]
fn leef_declares_its_delimiter_and_escapes_values() {
    use keyledger_export::leef::escape_value;
    assert_eq!(escape_value("a^b=c\\d\ne\r"), "a\\^b\\=c\\\\d\\ne\\r");

    let (_dir, ledger) = full_log();
    let lines = export(&ledger, Format::Leef);
    let line = lines.last().expect("named key");
    let header: Vec<&str> = line.splitn(7, '|').collect();
    assert_eq!(header[0], "LEEF:2.0");
    assert_eq!(header[4], "key.created");
    assert_eq!(header[5], "^", "declared delimiter");
    let mut attrs = BTreeMap::new();
    for pair in split_unescaped(header[6], '^') {
        let kv = split_unescaped(&pair, '=');
        assert_eq!(kv.len(), 2, "{pair}");
        attrs.insert(kv[0].clone(), unescape(&kv[1]));
    }
    assert_eq!(attrs["resourceName"], NAME);
    assert_eq!(attrs["instance"], INSTANCE);
    assert_eq!(
        attrs["leafHash"],
        leaves(&ledger).last().expect("leaf").as_str()
    );
    assert_eq!(attrs["usrName"], "cred-writer");
    assert_eq!(attrs["devTimeFormat"], "yyyy-MM-dd'T'HH:mm:ss.SSSXXX");
    for line in &lines {
        assert!(!line.contains('\n') && !line.contains('\r'));
    }
}

#[test]
fn jsonl_lines_re_verify() {
    let (_dir, ledger) = full_log();
    let key = ledger.writer().current_key().verifying_key();
    let audit: &dyn AuditLog = ledger.writer();
    let stored = audit.records(0, audit.size()).expect("records");
    let lines = export(&ledger, Format::Jsonl);
    let mut prev = chain::GENESIS_PREV;
    for (seq, line) in lines.iter().enumerate() {
        let v: Value = serde_json::from_str(line).expect("json");
        assert_eq!(v["instance"], INSTANCE);
        assert_eq!(v["seq"], seq as u64);
        // The event exactly as stored, byte for byte.
        // The event exactly as stored, byte for byte: the line's last field.
        let start = line.find(",\"event\":").expect("event") + ",\"event\":".len();
        let event = &line.as_bytes()[start..line.len() - 1];
        assert_eq!(event, stored[seq].event.as_slice());
        let signature: [u8; 64] = hex::decode(v["signature"].as_str().expect("sig"))
            .expect("hex")
            .try_into()
            .expect("64 bytes");
        let link = chain::link(event);
        assert_eq!(v["link"], hex::encode(link));
        assert_eq!(
            v["leaf"],
            hex::encode(merkle::leaf_hash_of_parts(&[event, &signature]))
        );
        assert!(
            chain::verify_record(&key, &link, &signature),
            "signature {seq}"
        );
        assert_eq!(v["event"]["prev"], hex::encode(prev));
        prev = link;
    }
}
