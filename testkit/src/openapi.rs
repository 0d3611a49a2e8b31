//! The gateway's OpenAPI document (`gateway/openapi.json`) as JSON Schema, for contract tests:
//! instances are checked with an independent validator (the `jsonschema` crate, draft 2020-12 as
//! OpenAPI 3.1 uses, formats asserted).

use std::path::Path;

use serde_json::{json, Value};

/// `gateway/openapi.json`, parsed.
pub fn document() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../gateway/openapi.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("gateway/openapi.json"))
        .expect("openapi.json is JSON")
}

/// A validator for the schema at `pointer` of the document (its `$ref`s resolve inside it).
pub fn validator(doc: &Value, pointer: &str) -> jsonschema::Validator {
    let schema = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$ref": format!("#{pointer}"),
        "components": doc["components"].clone(),
        "webhooks": doc["webhooks"].clone(),
        "paths": doc["paths"].clone(),
    });
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true)
        .build(&schema)
        .unwrap_or_else(|e| panic!("{pointer} is not a usable schema: {e}"))
}

/// Fail, listing every error, unless `instance` matches the schema at `pointer`.
pub fn assert_valid(doc: &Value, pointer: &str, instance: &Value) {
    let v = validator(doc, pointer);
    let errors: Vec<String> = v
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{instance} does not match {pointer}: {errors:#?}"
    );
}

/// JSON pointer escaping of a path for `/paths/…`, percent-encoded for a URI fragment.
fn path_ptr(path: &str) -> String {
    path.replace('~', "~0")
        .replace('/', "~1")
        .replace('{', "%7B")
        .replace('}', "%7D")
}

/// The pointer of the JSON request body schema of `POST path`.
pub fn request_schema(path: &str) -> String {
    format!(
        "/paths/{}/post/requestBody/content/application~1json/schema",
        path_ptr(path)
    )
}

/// The pointer of the JSON schema of `POST path`'s `status` answer.
pub fn response_schema(path: &str, status: u16) -> String {
    format!(
        "/paths/{}/post/responses/{status}/content/application~1json/schema",
        path_ptr(path)
    )
}
