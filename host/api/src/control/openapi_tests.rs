//! The document matches the router and the checked-in copy.

use std::collections::BTreeMap;

/// `(path, methods)` of every `.route(...)` in `app()`, read from its source.
fn routed() -> BTreeMap<String, Vec<String>> {
    let src = include_str!("mod.rs");
    let body = &src[src.find("pub fn app(").unwrap_or(0)..];
    let mut out = BTreeMap::new();
    for chunk in body.split(".route(").skip(1) {
        let chunk = chunk.split(".with_state").next().unwrap_or(chunk);
        let Some(path) = chunk.split('"').nth(1) else {
            continue;
        };
        let mut methods: Vec<String> = ["get(", "put(", "post(", "delete("]
            .iter()
            .filter(|m| chunk.contains(*m))
            .map(|m| m.trim_end_matches('(').to_uppercase())
            .collect();
        methods.sort();
        out.insert(path.to_string(), methods);
    }
    out
}

#[test]
fn every_route_is_documented_and_nothing_else() {
    let mut documented = super::operations();
    for m in documented.values_mut() {
        m.sort();
    }
    assert_eq!(
        documented,
        routed(),
        "control/openapi.rs and app() in control/mod.rs list different routes"
    );
}

#[test]
fn the_checked_in_document_is_current() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
    let generated = super::document_json();
    if std::env::var_os("BERTH_BLESS").is_some() {
        std::fs::write(&path, generated).unwrap_or_else(|e| panic!("writing {path:?}: {e}"));
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "docs/openapi.json is not the document the code generates; regenerate it with \
         `BERTH_BLESS=1 cargo test -p berth-api --lib openapi` and commit it"
    );
}
