//! Every CEL rule of both CRDs, evaluated client-side with kube's CEL support (API servers older
//! than 1.25 drop these rules, so this is where they are proven), accepting and rejecting.

use serde_json::{Value, json};

use super::{PasscodeReset, PasscodeResetSpec, WorkProfilePasscodePolicy};

fn reset(spec: Value) -> PasscodeReset {
    PasscodeReset::new(
        "r",
        serde_json::from_value::<PasscodeResetSpec>(spec).unwrap(),
    )
}

fn policy(requirements: Value, policies: Value) -> WorkProfilePasscodePolicy {
    serde_json::from_value(json!({
        "apiVersion": "amapi.passcode-operator.io/v1alpha1",
        "kind": "WorkProfilePasscodePolicy",
        "metadata": {"name": "p"},
        "spec": {"amapiPolicies": policies, "requirements": requirements},
    }))
    .unwrap()
}

fn messages(result: Result<(), kube::core::cel::ValidationErrors>) -> String {
    match result {
        Ok(()) => String::new(),
        Err(e) => e.to_string(),
    }
}

const DEVICE: &str = "enterprises/LC01abc/devices/3a8f0c2d";

#[test]
fn reset_spec_is_immutable() {
    let old = reset(json!({"device": DEVICE, "lockNow": true}));
    assert!(old.validate_cel_update(&old.clone()).is_ok());
    for changed in [
        json!({"device": DEVICE, "lockNow": false}),
        json!({"device": "enterprises/LC01abc/devices/other", "lockNow": true}),
        json!({"device": DEVICE, "lockNow": true, "expiresAfter": "20m"}),
    ] {
        let err = messages(reset(changed).validate_cel_update(&old));
        assert!(err.contains("spec is immutable"), "{err}");
    }
}

#[test]
fn require_entry_needs_a_new_passcode() {
    let with = reset(json!({"device": DEVICE, "requireEntry": true,
        "newPasscode": {"secretKeyRef": {"name": "s", "key": "k"}}}));
    assert!(with.validate_cel().is_ok());
    let without = reset(json!({"device": DEVICE, "requireEntry": true}));
    assert!(messages(without.validate_cel()).contains("requireEntry needs a newPasscode"));
}

#[test]
fn expires_after_is_bounded() {
    for ok in ["60s", "1m", "10m", "1h30m", "168h"] {
        let r = reset(json!({"device": DEVICE, "expiresAfter": ok}));
        assert!(
            r.validate_cel().is_ok(),
            "{ok}: {}",
            messages(r.validate_cel())
        );
    }
    for bad in ["59s", "0s", "169h", "10081m"] {
        let r = reset(json!({"device": DEVICE, "expiresAfter": bad}));
        assert!(
            messages(r.validate_cel()).contains("between 1m and 168h"),
            "{bad}"
        );
    }
}

#[test]
fn counters_only_with_complex() {
    let one = json!(["enterprises/E/policies/P"]);
    assert!(
        policy(
            json!({"quality": "COMPLEX", "minimumSymbols": 2}),
            one.clone()
        )
        .validate_cel()
        .is_ok()
    );
    for counter in [
        "minimumLetters",
        "minimumLowerCase",
        "minimumUpperCase",
        "minimumNonLetter",
        "minimumNumeric",
        "minimumSymbols",
    ] {
        let mut req = json!({"quality": "ALPHANUMERIC"});
        req[counter] = json!(1);
        let err = messages(policy(req, one.clone()).validate_cel());
        assert!(
            err.contains("only take effect with quality COMPLEX"),
            "{counter}: {err}"
        );
    }
}

#[test]
fn minimum_length_only_where_android_applies_it() {
    let one = json!(["enterprises/E/policies/P"]);
    for q in [
        "NUMERIC",
        "NUMERIC_COMPLEX",
        "ALPHABETIC",
        "ALPHANUMERIC",
        "COMPLEX",
    ] {
        let p = policy(json!({"quality": q, "minimumLength": 6}), one.clone());
        assert!(
            p.validate_cel().is_ok(),
            "{q}: {}",
            messages(p.validate_cel())
        );
    }
    for q in [
        "PASSWORD_QUALITY_UNSPECIFIED",
        "BIOMETRIC_WEAK",
        "SOMETHING",
        "COMPLEXITY_LOW",
        "COMPLEXITY_MEDIUM",
        "COMPLEXITY_HIGH",
    ] {
        let err =
            messages(policy(json!({"quality": q, "minimumLength": 6}), one.clone()).validate_cel());
        assert!(
            err.contains("minimumLength only takes effect"),
            "{q}: {err}"
        );
    }
}

#[test]
fn counters_fit_in_sixteen_characters() {
    let one = json!(["enterprises/E/policies/P"]);
    let fits = json!({"quality": "COMPLEX", "minimumLowerCase": 4, "minimumUpperCase": 4, "minimumNumeric": 4, "minimumSymbols": 4});
    assert!(policy(fits, one.clone()).validate_cel().is_ok());
    let over = json!({"quality": "COMPLEX", "minimumLowerCase": 5, "minimumUpperCase": 4, "minimumNumeric": 4, "minimumSymbols": 4});
    assert!(messages(policy(over, one).validate_cel()).contains("more than 16 characters"));
}

#[test]
fn amapi_policies_do_not_repeat() {
    let req = json!({"quality": "NUMERIC"});
    let two = json!(["enterprises/E/policies/A", "enterprises/E/policies/B"]);
    assert!(policy(req.clone(), two).validate_cel().is_ok());
    let twice = json!(["enterprises/E/policies/A", "enterprises/E/policies/A"]);
    assert!(messages(policy(req, twice).validate_cel()).contains("must not repeat"));
}

#[test]
fn a_scope_covers_some_namespaces() {
    let scope = |spec: Value| -> super::PasscodeResetScope {
        serde_json::from_value(json!({
            "apiVersion": "amapi.passcode-operator.io/v1alpha1",
            "kind": "PasscodeResetScope",
            "metadata": {"name": "s"},
            "spec": spec,
        }))
        .unwrap()
    };
    assert!(
        scope(json!({"namespaces": ["a"], "enterprises": ["E"]}))
            .validate_cel()
            .is_ok()
    );
    assert!(
        scope(json!({"namespaceSelector": {"matchLabels": {"t": "a"}}, "enterprises": ["E"]}))
            .validate_cel()
            .is_ok()
    );
    let none = messages(scope(json!({"enterprises": ["E"]})).validate_cel());
    assert!(none.contains("a scope names namespaces"), "{none}");
}

/// Every rule in the generated CRDs is covered by a test above: adding a rule without a test
/// fails here.
#[test]
fn every_rule_is_tested() {
    fn count(v: &Value) -> usize {
        match v {
            Value::Object(m) => m
                .iter()
                .map(|(k, v)| match (k.as_str(), v) {
                    ("x-kubernetes-validations", Value::Array(rules)) => rules.len(),
                    _ => count(v),
                })
                .sum(),
            Value::Array(items) => items.iter().map(count).sum(),
            _ => 0,
        }
    }
    let rules: usize = super::crds()
        .iter()
        .map(|crd| count(&serde_json::to_value(crd).unwrap()))
        .sum();
    assert_eq!(
        rules, 8,
        "a CEL rule was added or removed: test it above and update this count"
    );
}
