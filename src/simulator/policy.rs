//! An AMAPI policy as the simulator keeps it: every top-level field the fleet or a client set (not
//! only `passwordPolicies`), so a `policies.patch` without `updateMask` visibly wipes the fields
//! the caller did not send, as Google does.

use serde_json::{Map, Value};

use crate::amapi::model::{PasswordRequirements, PasswordScope, Policy};
use crate::passcode::PasswordQuality;

/// Fields the server owns; a client may send them but they are never taken from the body.
const SERVER_FIELDS: &[&str] = &["name", "version"];

#[derive(Clone, Debug, PartialEq)]
pub struct PolicyState {
    /// `enterprises/{e}/policies/{p}`.
    pub name: String,
    pub version: i64,
    /// Top-level fields other than `name` and `version`.
    pub fields: Map<String, Value>,
}

impl PolicyState {
    /// A policy with the given fields; they are checked like a patch body.
    pub fn new(name: String, version: i64, fields: Map<String, Value>) -> Result<Self, String> {
        let fields = client_fields(fields);
        validate(&fields)?;
        Ok(PolicyState {
            name,
            version,
            fields,
        })
    }

    /// The policy as AMAPI returns it.
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("name".into(), Value::String(self.name.clone()));
        out.insert("version".into(), Value::String(self.version.to_string()));
        out.extend(self.fields.clone());
        Value::Object(out)
    }

    /// `passwordPolicies`, through the shared wire type.
    pub fn password_policies(&self) -> Vec<PasswordRequirements> {
        serde_json::from_value::<Policy>(self.to_json())
            .map(|p| p.password_policies)
            .unwrap_or_default()
    }

    /// Applies a patch body. With a mask only the named top-level fields change (a named field
    /// missing from the body is removed); without one every field is replaced by the body's.
    /// The version increases when anything changed. Returns whether it changed.
    pub fn patch(
        &mut self,
        body: Map<String, Value>,
        mask: Option<&[String]>,
    ) -> Result<bool, String> {
        let body = client_fields(body);
        let mut next = match mask {
            None => body,
            Some(paths) => {
                let mut next = self.fields.clone();
                for path in paths {
                    if SERVER_FIELDS.contains(&path.as_str()) {
                        continue;
                    }
                    match body.get(path) {
                        Some(value) => next.insert(path.clone(), value.clone()),
                        None => next.remove(path),
                    };
                }
                next
            }
        };
        next.retain(|_, v| !v.is_null());
        validate(&next)?;
        if next == self.fields {
            return Ok(false);
        }
        self.fields = next;
        self.version += 1;
        Ok(true)
    }
}

fn client_fields(mut fields: Map<String, Value>) -> Map<String, Value> {
    for f in SERVER_FIELDS {
        fields.remove(*f);
    }
    fields
}

/// Parses an `updateMask` (comma-separated field paths, camelCase or snake_case). Only top-level
/// fields are supported: a repeated field like `passwordPolicies` cannot be patched in part.
pub fn parse_update_mask(mask: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for path in mask.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if path.contains('.') {
            return Err(format!(
                "updateMask path {path:?}: the simulator supports only top-level Policy fields"
            ));
        }
        if !path.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(format!("updateMask path {path:?} is not a field name"));
        }
        out.push(snake_to_camel(path));
    }
    Ok(out)
}

fn snake_to_camel(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut upper = false;
    for c in path.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// What Google refuses in a policy's password settings: wrong shapes, unknown enum values, and
/// `unifiedLockSettings` outside `SCOPE_PROFILE`.
fn validate(fields: &Map<String, Value>) -> Result<(), String> {
    let Some(list) = fields.get("passwordPolicies") else {
        return Ok(());
    };
    let Value::Array(items) = list else {
        return Err("passwordPolicies must be a list".into());
    };
    for (i, item) in items.iter().enumerate() {
        let at = format!("passwordPolicies[{i}]");
        let req: PasswordRequirements = serde_json::from_value(item.clone())
            .map_err(|e| format!("{at}: not a PasswordRequirements: {e}"))?;
        if let Some(PasswordScope::Other(s)) = &req.password_scope {
            return Err(format!("{at}.passwordScope: unknown value {s:?}"));
        }
        if let Some(q) = &req.password_quality
            && PasswordQuality::from_amapi_name(q).is_none()
        {
            return Err(format!("{at}.passwordQuality: unknown value {q:?}"));
        }
        if req.unified_lock_settings.is_some() && req.password_scope != Some(PasswordScope::Profile)
        {
            return Err(format!(
                "{at}.unifiedLockSettings is only valid with passwordScope SCOPE_PROFILE"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn policy() -> PolicyState {
        PolicyState::new(
            "enterprises/E/policies/p".into(),
            1,
            obj(json!({
                "passwordPolicies": [{"passwordScope": "SCOPE_PROFILE", "passwordQuality": "NUMERIC"}],
                "screenCaptureDisabled": true,
            })),
        )
        .unwrap()
    }

    #[test]
    fn masked_patch_changes_only_named_fields() {
        let mut p = policy();
        let body = obj(
            json!({"passwordPolicies": [{"passwordQuality": "COMPLEX"}], "cameraDisabled": true}),
        );
        assert_eq!(p.patch(body, Some(&["passwordPolicies".into()])), Ok(true));
        assert_eq!(p.version, 2);
        assert_eq!(p.fields["screenCaptureDisabled"], json!(true));
        assert!(!p.fields.contains_key("cameraDisabled"));
        assert_eq!(
            p.password_policies()[0].password_quality.as_deref(),
            Some("COMPLEX")
        );
    }

    #[test]
    fn unmasked_patch_overwrites_everything() {
        let mut p = policy();
        let body = obj(json!({"passwordPolicies": [], "name": "ignored", "version": "99"}));
        assert_eq!(p.patch(body, None), Ok(true));
        assert_eq!(p.version, 2);
        assert_eq!(p.fields, obj(json!({"passwordPolicies": []})));
        assert_eq!(p.name, "enterprises/E/policies/p");
    }

    #[test]
    fn unchanged_patch_keeps_the_version() {
        let mut p = policy();
        let same = obj(p.to_json());
        assert_eq!(p.patch(same, None), Ok(false));
        assert_eq!(p.version, 1);
    }

    #[test]
    fn invalid_password_policies_are_refused() {
        let mut p = policy();
        for bad in [
            json!({"passwordPolicies": [{"passwordQuality": "VERY_STRONG"}]}),
            json!({"passwordPolicies": [{"passwordScope": "SCOPE_WATCH"}]}),
            json!({"passwordPolicies": [{"passwordScope": "SCOPE_DEVICE", "unifiedLockSettings": "REQUIRE_SEPARATE_WORK_LOCK"}]}),
            json!({"passwordPolicies": {"passwordQuality": "NUMERIC"}}),
        ] {
            assert!(p.patch(obj(bad.clone()), None).is_err(), "{bad}");
        }
        assert_eq!(p, policy(), "a refused patch changes nothing");
    }

    #[test]
    fn update_masks() {
        assert_eq!(
            parse_update_mask("password_policies, cameraDisabled"),
            Ok(vec![
                "passwordPolicies".to_string(),
                "cameraDisabled".to_string()
            ])
        );
        assert!(parse_update_mask("passwordPolicies.passwordQuality").is_err());
        assert!(parse_update_mask("a b").is_err());
    }
}
