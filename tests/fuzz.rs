//! Fuzzing with proptest, bounded in cases so `make test` stays quick: the rules engine on any
//! bytes and any requirements, AMAPI response parsing on arbitrary JSON and bytes, and the reset
//! decision on arbitrary statuses. Nothing may panic; the passcode never shows in a checklist.

use passcode_operator::amapi::model::{
    Device, ErrorBody, ListDevicesResponse, ListOperationsResponse, Operation, Policy,
};
use passcode_operator::passcode::{Governing, PasswordQuality, Requirements, judge};
use proptest::prelude::*;
use serde_json::{Map, Value};

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn quality() -> impl Strategy<Value = PasswordQuality> {
    proptest::sample::select(PasswordQuality::ALL.to_vec())
}

fn counter() -> impl Strategy<Value = Option<u32>> {
    proptest::option::of(prop_oneof![0u32..20, Just(u32::MAX), Just(1000)])
}

prop_compose! {
    fn requirements()(quality in quality(), minimum_length in counter(), minimum_letters in counter(),
                      minimum_lower_case in counter(), minimum_upper_case in counter(),
                      minimum_non_letter in counter(), minimum_numeric in counter(),
                      minimum_symbols in counter(), history_length in counter()) -> Requirements {
        Requirements { quality, minimum_length, minimum_letters, minimum_lower_case, minimum_upper_case,
                       minimum_non_letter, minimum_numeric, minimum_symbols, history_length }
    }
}

/// Arbitrary JSON, biased towards AMAPI's field names so parsers see plausible shapes too.
fn json() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("name".to_owned()),
        Just("done".to_owned()),
        Just("metadata".to_owned()),
        Just("error".to_owned()),
        Just("errorCode".to_owned()),
        Just("code".to_owned()),
        Just("newPassword".to_owned()),
        Just("createTime".to_owned()),
        Just("state".to_owned()),
        Just("apiLevel".to_owned()),
        Just("appliedPolicyVersion".to_owned()),
        Just("passwordPolicies".to_owned()),
        Just("operations".to_owned()),
        Just("devices".to_owned()),
        Just("nextPageToken".to_owned()),
        "[a-zA-Z@]{0,12}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,20}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec((key.clone(), inner), 0..8)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

proptest! {
    #![proptest_config(config(20_000))]

    #[test]
    fn the_rules_engine_takes_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..40), reqs in proptest::collection::vec(requirements(), 0..4), api in proptest::option::of(0u32..40)) {
        let governing = Governing::from_requirements(&reqs);
        let verdict = judge(Some(&bytes), &governing, api);
        prop_assert_eq!(verdict.passes, verdict.requirements.iter().all(|c| c.met));
        let clearing = judge(None, &governing, api);
        prop_assert_eq!(clearing.passes, !governing.requires_passcode());
        if bytes.len() >= 6 && bytes.iter().all(|b| b.is_ascii_alphanumeric()) {
            let text = String::from_utf8(bytes.clone()).unwrap();
            prop_assert!(verdict.requirements.iter().all(|c| !c.description.contains(&text)));
        }
    }
}

proptest! {
    #![proptest_config(config(5_000))]

    #[test]
    fn amapi_responses_never_panic_the_parser(value in json()) {
        let text = value.to_string();
        let _ = serde_json::from_value::<Operation>(value.clone()).map(|op| op.outcome());
        let _ = serde_json::from_value::<Device>(value.clone());
        let _ = serde_json::from_value::<Policy>(value.clone());
        let _ = serde_json::from_value::<ListOperationsResponse>(value.clone());
        let _ = serde_json::from_value::<ListDevicesResponse>(value.clone());
        let _ = serde_json::from_value::<ErrorBody>(value.clone());
        let _ = serde_json::from_str::<Operation>(&text);
        // Whatever parses, the passcode AMAPI echoes in the metadata never survives.
        if let Ok(op) = serde_json::from_value::<Operation>(value) {
            prop_assert!(!serde_json::to_string(&op.metadata).unwrap().contains("newPassword"));
        }
    }

    #[test]
    fn raw_bytes_never_panic_the_parser(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = serde_json::from_slice::<Operation>(&bytes);
        let _ = serde_json::from_slice::<Device>(&bytes);
        let _ = serde_json::from_slice::<ErrorBody>(&bytes);
    }
}
