//! The server's modules import one another without a circle: handlers
//! depend on `auth`, `wire`, `model` and `errors`, the OpenAPI document and
//! the application depend on the handlers, and nothing points back. Reads
//! the crate's own sources, so a new `use super::…` that closes a circle
//! fails here with the circle named.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Every `super::NAME` / `crate::NAME` / `super::{a, b}` a source text names.
fn referenced(text: &str, prefixes: &[&str]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        for prefix in prefixes {
            let mut rest = code;
            while let Some(at) = rest.find(prefix) {
                let after = &rest[at + prefix.len()..];
                let before_ok = at == 0
                    || !rest[..at]
                        .chars()
                        .next_back()
                        .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':');
                if before_ok {
                    if let Some(group) = after.strip_prefix('{') {
                        let group = group.split('}').next().unwrap_or("");
                        for name in group.split(',') {
                            let name = name.trim().split("::").next().unwrap_or("");
                            out.insert(name.to_string());
                        }
                    } else {
                        let name: String = after
                            .chars()
                            .take_while(|c| c.is_alphanumeric() || *c == '_')
                            .collect();
                        out.insert(name);
                    }
                }
                rest = &rest[at + prefix.len()..];
            }
        }
    }
    out
}

#[test]
fn server_modules_import_each_other_without_a_circle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    // Module name -> source texts (a directory's files belong to its module).
    let mut modules: BTreeMap<String, Vec<(bool, String)>> = BTreeMap::new();
    for entry in std::fs::read_dir(&src).expect("src") {
        let path = entry.expect("entry").path();
        let name = path
            .file_stem()
            .expect("name")
            .to_string_lossy()
            .to_string();
        if name == "lib" {
            continue;
        }
        if path.is_dir() {
            for file in std::fs::read_dir(&path).expect("dir") {
                let text = std::fs::read_to_string(file.expect("file").path()).expect("read");
                modules.entry(name.clone()).or_default().push((true, text));
            }
        } else {
            let text = std::fs::read_to_string(&path).expect("read");
            modules.entry(name).or_default().push((false, text));
        }
    }
    let names: BTreeSet<String> = modules.keys().cloned().collect();
    assert!(names.len() > 15, "found only {names:?}");
    let mut edges: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (module, texts) in &modules {
        let mut to = BTreeSet::new();
        for (nested, text) in texts {
            // In a directory module's files `super::` is the module itself.
            let prefixes: &[&str] = if *nested {
                &["crate::", "super::super::"]
            } else {
                &["crate::", "super::"]
            };
            for name in referenced(text, prefixes) {
                if let Some(target) = names.get(&name)
                    && target != module
                {
                    to.insert(target.as_str());
                }
            }
        }
        edges.insert(module.as_str(), to);
    }
    // Depth-first search for a back edge; report the circle it closes.
    fn visit<'a>(
        node: &'a str,
        edges: &BTreeMap<&'a str, BTreeSet<&'a str>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<Vec<&'a str>> {
        if let Some(at) = path.iter().position(|n| *n == node) {
            let mut circle = path[at..].to_vec();
            circle.push(node);
            return Some(circle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node);
        for next in edges.get(node).into_iter().flatten() {
            if let Some(circle) = visit(next, edges, path, done) {
                return Some(circle);
            }
        }
        path.pop();
        done.insert(node);
        None
    }
    let mut done = BTreeSet::new();
    for module in edges.keys() {
        if let Some(circle) = visit(module, &edges, &mut Vec::new(), &mut done) {
            panic!("import circle: {}", circle.join(" -> "));
        }
    }
    // The layering this test keeps: handlers never import the document or
    // the application that registers them.
    for handler in [
        "keys",
        "policies",
        "ledger_api",
        "admin_api",
        "rings_aliases",
    ] {
        for upper in ["openapi", "app", "listener"] {
            assert!(!edges[handler].contains(upper), "{handler} imports {upper}");
        }
    }
}

#[test]
fn the_reference_finder_sees_plain_grouped_and_nested_paths() {
    let text = "use super::{auth::Caller, errors};\nlet x = crate::wire::blocking;\n// super::openapi in a comment\nkeyledger_core::keys::state";
    let found = referenced(text, &["crate::", "super::"]);
    assert_eq!(
        found,
        ["auth", "errors", "wire"]
            .map(String::from)
            .into_iter()
            .collect()
    );
}
