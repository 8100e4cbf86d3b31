//! A corpus of bad inputs, each with a clear and correct answer: refused by the API server's
//! schema (422 naming the field), or judged by the operator with a precise reason. No panic,
//! nothing stuck, no command sent for any of them.

use kube::api::{Api, DynamicObject, PostParams};
use kube::core::ApiResource;
use passcode_operator::api::{PasscodeReset, Phase, Reason};
use serde_json::{Value, json};

use testkit::scenario::{Env, OperatorOptions};

const GOVERNED: &str = "      - id: wp\n        passwordPolicies: [{passwordScope: SCOPE_PROFILE, passwordQuality: NUMERIC_COMPLEX, passwordMinimumLength: 6}]\n";

/// Specs the API server refuses: (what, spec, field named in the error).
fn refused_specs() -> Vec<(&'static str, Value, &'static str)> {
    let ok_ref = json!({"secretKeyRef": {"name": "s", "key": "k"}});
    let dev = "enterprises/E/devices/D";
    let mut cases = vec![];
    for (what, device) in [
        ("empty device", json!("")),
        ("one word", json!("phone")),
        ("no devices part", json!("enterprises/E")),
        ("no device id", json!("enterprises/E/devices/")),
        ("no enterprise id", json!("enterprises//devices/D")),
        (
            "operation name",
            json!("enterprises/E/devices/D/operations/1"),
        ),
        ("policy name", json!("enterprises/E/policies/P")),
        ("upper-case prefix", json!("ENTERPRISES/E/devices/D")),
        ("space", json!("enterprises/E F/devices/D")),
        ("newline", json!("enterprises/E/devices/D\n")),
        ("non-ASCII", json!("enterprises/É/devices/D")),
        ("path traversal", json!("enterprises/../devices/D")),
        ("query string", json!("enterprises/E/devices/D?x=1")),
        (
            "too long",
            json!(format!("enterprises/E/devices/{}", "d".repeat(130))),
        ),
        ("number", json!(42)),
        ("null", Value::Null),
    ] {
        cases.push((what, json!({"device": device}), "spec.device"));
    }
    for (what, name) in [
        ("upper case", "Upper"),
        ("underscore", "a_b"),
        ("empty", ""),
        ("leading dash", "-a"),
        ("too long", &"a".repeat(254)),
    ] {
        cases.push((
            what,
            json!({"device": dev, "newPasscode": {"secretKeyRef": {"name": name, "key": "k"}}}),
            "spec.newPasscode.secretKeyRef.name",
        ));
    }
    for (what, key) in [("slash", "a/b"), ("empty", ""), ("space", "a b")] {
        cases.push((
            what,
            json!({"device": dev, "newPasscode": {"secretKeyRef": {"name": "s", "key": key}}}),
            "spec.newPasscode.secretKeyRef.key",
        ));
    }
    cases.push((
        "no secretKeyRef",
        json!({"device": dev, "newPasscode": {}}),
        "spec.newPasscode.secretKeyRef",
    ));
    cases.push((
        "inline passcode",
        json!({"device": dev, "newPasscode": "830417"}),
        "spec.newPasscode",
    ));
    for (what, d) in [
        ("empty", ""),
        ("bare number", "10"),
        ("words", "10 minutes"),
        ("days", "1d"),
        ("negative", "-5m"),
        ("fraction", "1.5h"),
        ("unit only", "m"),
    ] {
        cases.push((
            what,
            json!({"device": dev, "expiresAfter": d, "newPasscode": ok_ref}),
            "spec.expiresAfter",
        ));
    }
    cases.push((
        "lockNow text",
        json!({"device": dev, "lockNow": "yes"}),
        "spec.lockNow",
    ));
    cases.push((
        "requireEntry number",
        json!({"device": dev, "requireEntry": 1}),
        "spec.requireEntry",
    ));
    cases
}

#[tokio::test]
async fn the_api_server_refuses_malformed_specs() {
    let env = Env::without_operator("refused", "", "").await;
    let api: Api<DynamicObject> = Api::namespaced_with(
        env.client.clone(),
        &env.ns,
        &ApiResource::erase::<PasscodeReset>(&()),
    );
    let cases = refused_specs();
    for (i, (what, spec, field)) in cases.iter().enumerate() {
        let obj: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "amapi.passcode-operator.io/v1alpha1", "kind": "PasscodeReset",
            "metadata": {"name": format!("bad-{i}")}, "spec": spec,
        }))
        .unwrap();
        match api.create(&PostParams::default(), &obj).await {
            Err(kube::Error::Api(s)) => {
                assert_eq!(s.code, 422, "{what}: {}", s.message);
                assert!(
                    s.message.contains(field),
                    "{what}: expected {field} in {}",
                    s.message
                );
            }
            other => panic!("{what}: {spec} was accepted: {other:?}"),
        }
    }
    assert!(cases.len() >= 35, "{} refused specs", cases.len());
}

/// Inputs the schema lets through that the operator must answer precisely.
#[tokio::test]
async fn the_operator_answers_every_bad_input_precisely() {
    let devices = "      - {id: phone, policy: wp, syncDelay: 50ms}\n      - {id: free, syncDelay: 50ms}\n      - {id: offline, online: false}\n";
    let mut env = Env::with("judged", GOVERNED, devices, OperatorOptions::default()).await;
    let secret = |v: &[u8]| v.to_vec();
    let passcodes: Vec<(&str, Vec<u8>, Reason)> = vec![
        ("too short", secret(b"135"), Reason::PasscodeInvalid),
        ("five digits", secret(b"13579"), Reason::PasscodeInvalid),
        ("sequence", secret(b"123456"), Reason::PasscodeInvalid),
        ("repeats", secret(b"111111"), Reason::PasscodeInvalid),
        ("descending", secret(b"987654"), Reason::PasscodeInvalid),
        (
            "seventeen",
            secret(b"13579135791357913"),
            Reason::PasscodeInvalid,
        ),
        ("4 KiB", vec![b'7'; 4096], Reason::PasscodeInvalid),
        (
            "accented",
            "Äpfel12345".as_bytes().to_vec(),
            Reason::PasscodeInvalid,
        ),
        (
            "emoji",
            "🔒830417".as_bytes().to_vec(),
            Reason::PasscodeInvalid,
        ),
        (
            "trailing newline",
            secret(b"830417\n"),
            Reason::PasscodeInvalid,
        ),
        ("tab", secret(b"830\t417"), Reason::PasscodeInvalid),
        ("NUL", secret(b"830\x00417"), Reason::PasscodeInvalid),
        (
            "escape sequence",
            secret(b"\x1b[31m830417"),
            Reason::PasscodeInvalid,
        ),
        ("spaces only", secret(b"      "), Reason::PasscodeInvalid),
        ("empty", secret(b""), Reason::SecretInvalid),
        (
            "invalid UTF-8",
            secret(&[0xc3, 0x28, 0x38, 0x33]),
            Reason::SecretInvalid,
        ),
        (
            "binary",
            secret(&[0xff, 0xfe, 0xfd, 0x00, 0x01]),
            Reason::SecretInvalid,
        ),
    ];
    let mut expected: Vec<(String, Reason)> = vec![];
    for (i, (what, value, reason)) in passcodes.iter().enumerate() {
        let name = format!("p{i}");
        env.secret(&name, "passcode", value).await;
        env.reset(
            &name,
            "phone",
            json!({"newPasscode": {"secretKeyRef": {"name": name, "key": "passcode"}}}),
        )
        .await;
        expected.push((name, *reason));
        let _ = what;
    }
    let others: Vec<(&str, &str, Value, Reason)> = vec![
        ("unknown device", "ghost", json!({}), Reason::DeviceNotFound),
        (
            "clearing a governed device",
            "phone",
            json!({}),
            Reason::PasscodeRequired,
        ),
        (
            "expiry below 1m (no CEL on 1.20)",
            "free",
            json!({"expiresAfter": "59s"}),
            Reason::SpecInvalid,
        ),
        (
            "expiry above 168h (no CEL on 1.20)",
            "free",
            json!({"expiresAfter": "169h"}),
            Reason::SpecInvalid,
        ),
        (
            "requireEntry without passcode (no CEL on 1.20)",
            "free",
            json!({"requireEntry": true}),
            Reason::SpecInvalid,
        ),
    ];
    for (i, (_, device, spec, reason)) in others.iter().enumerate() {
        let name = format!("o{i}");
        env.reset(&name, device, spec.clone()).await;
        expected.push((name, *reason));
    }
    // Another enterprise.
    let foreign: PasscodeReset = serde_json::from_value(json!({
        "apiVersion": "amapi.passcode-operator.io/v1alpha1", "kind": "PasscodeReset",
        "metadata": {"name": "foreign"}, "spec": {"device": "enterprises/NotOurs/devices/phone"},
    }))
    .unwrap();
    env.resets()
        .create(&PostParams::default(), &foreign)
        .await
        .unwrap();
    expected.push(("foreign".into(), Reason::EnterpriseNotAllowed));

    for (name, reason) in &expected {
        let r = env.reason_is(name, *reason).await;
        let status = r.status.unwrap();
        assert!(
            status.message.as_deref().is_some_and(|m| m.len() > 20),
            "{name}: {status:#?}"
        );
        assert!(
            r.metadata.finalizers.unwrap_or_default().is_empty(),
            "{name}: no finalizer left"
        );
    }
    assert!(
        env.commands("phone").await.is_empty(),
        "no command for any bad input"
    );
    assert!(env.commands("free").await.is_empty());

    // Waiting, not failing, for what GitOps may still create; clear about what is missing.
    env.secret("nokey", "other", b"830417").await;
    env.reset(
        "missing-secret",
        "phone",
        json!({"newPasscode": {"secretKeyRef": {"name": "absent", "key": "passcode"}}}),
    )
    .await;
    env.reset(
        "missing-key",
        "phone",
        json!({"newPasscode": {"secretKeyRef": {"name": "nokey", "key": "passcode"}}}),
    )
    .await;
    for (name, needle) in [
        ("missing-secret", "absent"),
        ("missing-key", "has no key passcode"),
    ] {
        let r = env
            .wait(name, "WaitingForSecret", |r| {
                r.status.as_ref().and_then(|s| s.reason) == Some(Reason::WaitingForSecret)
            })
            .await;
        assert!(
            r.status.unwrap().message.unwrap().contains(needle),
            "{name}"
        );
    }
    let total = refused_specs().len() + expected.len() + 2;
    assert!(total >= 50, "{total} bad inputs in the corpus");
    let op = env.operator.as_mut().unwrap();
    assert!(op.alive(), "the operator is still running");
    assert!(
        !op.logs().contains("panicked"),
        "the operator never panicked"
    );
}

#[tokio::test]
async fn a_secret_deleted_mid_flight_does_not_matter_once_sent() {
    let env = Env::new(
        "secret-gone",
        "      - id: wp\n",
        "      - {id: offline, online: false, syncDelay: 50ms}\n",
    )
    .await;
    env.secret("pc", "passcode", b"830417").await;
    env.reset(
        "r",
        "offline",
        json!({"newPasscode": {"secretKeyRef": {"name": "pc", "key": "passcode"}}}),
    )
    .await;
    env.issued("r").await;
    env.delete_secret("pc").await;
    env.patch_device("offline", json!({"online": true})).await;
    env.reason_is("r", Reason::PasscodeReset).await;
    assert_eq!(env.commands("offline").await.len(), 1);
}

#[tokio::test]
async fn amapi_answering_garbage_is_survived() {
    let devices = "      - {id: a, syncDelay: 50ms}\n      - {id: b, syncDelay: 50ms}\n      - {id: c, syncDelay: 50ms}\n";
    let env = Env::new("garbage", "      - id: wp\n", devices).await;
    env.sim_send(reqwest::Method::PUT, "faults", json!({"garbageRate": 0.5}))
        .await;
    for id in ["a", "b", "c"] {
        env.reset(id, id, json!({})).await;
    }
    for id in ["a", "b", "c"] {
        let r = env.done(id).await;
        let status = r.status.unwrap();
        let commands = env.commands(id).await;
        assert!(commands.len() <= 1, "{id}: {} commands", commands.len());
        // A garbled issueCommand reply is ambiguous; the command exists and is adopted.
        assert!(
            matches!(status.reason, Some(Reason::PasscodeCleared)),
            "{id}: {status:#?}"
        );
        assert_eq!(status.phase, Some(Phase::Succeeded));
    }
    assert!(
        env.sim_get("counters").await["faults"]["garbled"]
            .as_u64()
            .unwrap()
            > 0
    );
}
