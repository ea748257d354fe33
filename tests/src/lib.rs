//! End-to-end tests live under `tests/`; this library holds what more than one of them reads.

/// The routes the router declares (`api/src/lib.rs`), as (path, methods), in declaration
/// order. Read from the source, so that a route added there is seen by the OpenAPI test and
/// the authorization matrix without anyone remembering to list it.
pub fn declared_routes() -> Vec<(String, Vec<String>)> {
    let src = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../api/src/lib.rs"))
        .expect("api/src/lib.rs is readable");
    let mut out = Vec::new();
    for chunk in src.split(".route(").skip(1) {
        let chunk = chunk.split(".fallback(").next().unwrap_or_default();
        let path = chunk.split('"').nth(1).unwrap_or_default().to_owned();
        let methods = ["get", "post", "put", "patch", "delete"]
            .into_iter()
            .filter(|m| chunk.contains(&format!("{m}(")))
            .map(str::to_owned)
            .collect();
        out.push((path, methods));
    }
    out
}
