//! A small checker for JSON values against the schemas of Google's AMAPI discovery document, the
//! contract both the client and the simulator must fit. It knows the parts of the discovery
//! format AMAPI uses: `type`, `format` (int64 travels as a string), `properties`,
//! `additionalProperties`, `$ref`, `items` and `enum`. Unknown properties are errors, so a typo
//! or an invented field in a response is caught.
//!
//! The document is read from `$AMAPI_DISCOVERY`, else from
//! `~/.cache/passcode-operator/androidmanagement.v1.json`, which `hack/discovery` (run by
//! `make test`) puts there.

use std::path::PathBuf;
use std::sync::OnceLock;

use serde_json::Value;

/// `~/.cache/passcode-operator` (or under `$XDG_CACHE_HOME`), where `hack/discovery` puts the
/// discovery document and the Python venv.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .expect("HOME or XDG_CACHE_HOME is set")
        .join("passcode-operator")
}

/// Where the discovery document is expected.
pub fn document_path() -> PathBuf {
    match std::env::var_os("AMAPI_DISCOVERY") {
        Some(path) => PathBuf::from(path),
        None => cache_dir().join("androidmanagement.v1.json"),
    }
}

/// The discovery document, read once.
pub fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        let path = document_path();
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "cannot read the AMAPI discovery document {}: {e}; run hack/discovery (or make discovery), \
                 or set AMAPI_DISCOVERY",
                path.display()
            )
        });
        let doc: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
        assert_eq!(
            doc["name"], "androidmanagement",
            "{} is not the AMAPI discovery document",
            path.display()
        );
        doc
    })
}

/// Checks `value` against the discovery document's schema `schema_name` (e.g. `"Device"`).
/// Every problem is reported, one per line, with its JSON path.
pub fn check(schema_name: &str, value: &Value) -> Result<(), String> {
    let doc = document();
    let Some(schema) = doc["schemas"].get(schema_name) else {
        return Err(format!(
            "the discovery document has no schema {schema_name}"
        ));
    };
    let mut errors = Vec::new();
    walk(doc, schema, value, schema_name, &mut errors);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("\n"))
    }
}

fn walk(doc: &Value, schema: &Value, value: &Value, path: &str, errors: &mut Vec<String>) {
    if let Some(name) = schema.get("$ref").and_then(Value::as_str) {
        match doc["schemas"].get(name) {
            Some(target) => walk(doc, target, value, path, errors),
            None => errors.push(format!("{path}: $ref to unknown schema {name}")),
        }
        return;
    }
    if value.is_null() {
        errors.push(format!("{path}: null (Google omits absent fields)"));
        return;
    }
    let kind = schema.get("type").and_then(Value::as_str).unwrap_or("any");
    match kind {
        "any" => {}
        "object" => object(doc, schema, value, path, errors),
        "array" => match value.as_array() {
            None => errors.push(format!("{path}: expected an array, got {}", brief(value))),
            Some(items) => {
                let item_schema = schema.get("items").cloned().unwrap_or(Value::Null);
                for (i, item) in items.iter().enumerate() {
                    walk(doc, &item_schema, item, &format!("{path}[{i}]"), errors);
                }
            }
        },
        "string" => string(schema, value, path, errors),
        "integer" => integer(schema, value, path, errors),
        "number" => {
            if !value.is_number() {
                errors.push(format!("{path}: expected a number, got {}", brief(value)));
            }
        }
        "boolean" => {
            if !value.is_boolean() {
                errors.push(format!("{path}: expected a boolean, got {}", brief(value)));
            }
        }
        other => errors.push(format!("{path}: schema type {other} is not supported")),
    }
}

fn object(doc: &Value, schema: &Value, value: &Value, path: &str, errors: &mut Vec<String>) {
    let Some(fields) = value.as_object() else {
        errors.push(format!("{path}: expected an object, got {}", brief(value)));
        return;
    };
    let properties = schema.get("properties").and_then(Value::as_object);
    let additional = schema.get("additionalProperties");
    for (key, field) in fields {
        let at = format!("{path}.{key}");
        match (properties.and_then(|p| p.get(key)), additional) {
            (Some(property), _) => walk(doc, property, field, &at, errors),
            (None, Some(additional)) => walk(doc, additional, field, &at, errors),
            (None, None) => errors.push(format!("{at}: unknown property")),
        }
    }
}

fn string(schema: &Value, value: &Value, path: &str, errors: &mut Vec<String>) {
    let Some(text) = value.as_str() else {
        errors.push(format!("{path}: expected a string, got {}", brief(value)));
        return;
    };
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.iter().any(|a| a.as_str() == Some(text))
    {
        errors.push(format!("{path}: {text:?} is not one of the enum values"));
    }
    let format = schema.get("format").and_then(Value::as_str);
    let ok = match format {
        Some("int64") => text.parse::<i64>().is_ok(),
        Some("uint64") => text.parse::<u64>().is_ok(),
        Some("google-datetime") => text.parse::<jiff::Timestamp>().is_ok(),
        Some("google-duration") => is_google_duration(text),
        Some("byte") => text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+/=-_".contains(&b)),
        _ => true,
    };
    if !ok {
        errors.push(format!(
            "{path}: {text:?} is not a valid {}",
            format.unwrap_or("string")
        ));
    }
}

fn integer(schema: &Value, value: &Value, path: &str, errors: &mut Vec<String>) {
    let in_range = match schema.get("format").and_then(Value::as_str) {
        Some("int32") => value.as_i64().is_some_and(|n| i32::try_from(n).is_ok()),
        Some("uint32") => value.as_u64().is_some_and(|n| u32::try_from(n).is_ok()),
        _ => value.is_i64() || value.is_u64(),
    };
    if !in_range {
        errors.push(format!(
            "{path}: expected an integer of format {}, got {}",
            schema["format"],
            brief(value)
        ));
    }
}

/// `"600s"`, `"1.5s"`, `"-2s"`: seconds with up to nine fractional digits.
fn is_google_duration(text: &str) -> bool {
    let Some(number) = text.strip_suffix('s') else {
        return false;
    };
    let number = number.strip_prefix('-').unwrap_or(number);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, "0"));
    !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && (1..=9).contains(&fraction.len())
        && fraction.bytes().all(|b| b.is_ascii_digit())
}

fn brief(value: &Value) -> String {
    let text = value.to_string();
    if text.len() > 60 {
        format!("{}...", &text[..60])
    } else {
        text
    }
}

/// Checks an Operation for a command: the Operation itself, and its metadata (an `Any` in the
/// schema) as the discovery document's `Command`.
pub fn check_command_operation(op: &Value) -> Result<(), String> {
    check("Operation", op)?;
    let mut metadata = op
        .get("metadata")
        .cloned()
        .ok_or("Operation.metadata is missing")?;
    let at_type = metadata
        .as_object_mut()
        .and_then(|m| m.remove("@type"))
        .ok_or("Operation.metadata has no @type")?;
    if at_type != "type.googleapis.com/google.android.devicemanagement.v1.Command" {
        return Err(format!("Operation.metadata.@type is {at_type}"));
    }
    check("Command", &metadata).map_err(|e| e.replace("Command", "Operation.metadata"))
}
