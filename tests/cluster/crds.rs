//! The CRDs on a real API server: established, schema enforced, status subresource, printer
//! columns, short names and category.

use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::ApiResource;
use kube::{Client, Resource};
use passcode_operator::api::{PasscodeReset, WorkProfilePasscodePolicy};
use serde_json::{Value, json};

use testkit::cluster::{admin, control_plane, namespace};

#[test]
fn talks_to_kube_apiserver_v1_20() {
    let version = &control_plane().server_version;
    assert!(version.starts_with("v1.20."), "server version {version}");
}

fn resets(client: &Client, ns: &str) -> Api<DynamicObject> {
    Api::namespaced_with(
        client.clone(),
        ns,
        &ApiResource::erase::<PasscodeReset>(&()),
    )
}

fn policies(client: &Client) -> Api<DynamicObject> {
    Api::all_with(
        client.clone(),
        &ApiResource::erase::<WorkProfilePasscodePolicy>(&()),
    )
}

fn reset(name: &str, spec: Value) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": PasscodeReset::api_version(&()),
        "kind": "PasscodeReset",
        "metadata": {"name": name},
        "spec": spec,
    }))
    .unwrap()
}

fn policy(name: &str, spec: Value) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": WorkProfilePasscodePolicy::api_version(&()),
        "kind": "WorkProfilePasscodePolicy",
        "metadata": {"name": name},
        "spec": spec,
    }))
    .unwrap()
}

/// Creates `obj` and expects the API server to refuse it as Invalid, naming `field`.
async fn assert_invalid(api: &Api<DynamicObject>, obj: &DynamicObject, field: &str) {
    match api.create(&PostParams::default(), obj).await {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 422, "{}", status.message);
            assert!(
                status.message.contains(field),
                "expected {field} in: {}",
                status.message
            );
        }
        other => panic!("expected 422 for {field}, got {other:?}"),
    }
}

#[tokio::test]
async fn schema_accepts_good_resets_and_rejects_bad_ones() {
    let client = admin().await;
    let ns = namespace(&client, "schema-resets").await;
    let api = resets(&client, &ns);
    let good = json!({
        "device": "enterprises/LC01abc/devices/3a8f0c2d",
        "newPasscode": {"secretKeyRef": {"name": "jdoe-passcode", "key": "passcode"}},
        "lockNow": true,
        "expiresAfter": "1h30m",
    });
    api.create(&PostParams::default(), &reset("good", good.clone()))
        .await
        .expect("a valid reset is accepted");
    api.create(
        &PostParams::default(),
        &reset("clear", json!({"device": "enterprises/E/devices/D"})),
    )
    .await
    .expect("a reset that clears the passcode is accepted");

    let with = |path: &str, value: Value| {
        let mut spec = good.clone();
        let mut cursor = &mut spec;
        let parts: Vec<&str> = path.split('.').collect();
        for part in &parts[..parts.len() - 1] {
            cursor = cursor.get_mut(*part).unwrap();
        }
        cursor[parts[parts.len() - 1]] = value;
        spec
    };
    let cases = [
        ("device", json!("not-a-device"), "spec.device"),
        ("device", json!("enterprises/E/policies/P"), "spec.device"),
        (
            "device",
            json!("enterprises/E/devices/D/operations/1"),
            "spec.device",
        ),
        (
            "device",
            json!(format!("enterprises/E/devices/{}", "d".repeat(140))),
            "spec.device",
        ),
        (
            "newPasscode.secretKeyRef.name",
            json!("Upper_Case"),
            "spec.newPasscode.secretKeyRef.name",
        ),
        (
            "newPasscode.secretKeyRef.key",
            json!("a/b"),
            "spec.newPasscode.secretKeyRef.key",
        ),
        (
            "newPasscode.secretKeyRef.key",
            json!(""),
            "spec.newPasscode.secretKeyRef.key",
        ),
        ("expiresAfter", json!("10 minutes"), "spec.expiresAfter"),
        ("expiresAfter", json!("1d"), "spec.expiresAfter"),
        ("lockNow", json!("yes"), "spec.lockNow"),
    ];
    for (i, (path, value, field)) in cases.into_iter().enumerate() {
        assert_invalid(&api, &reset(&format!("bad-{i}"), with(path, value)), field).await;
    }
    let no_device = json!({"lockNow": true});
    assert_invalid(&api, &reset("no-device", no_device), "spec.device").await;
}

#[tokio::test]
async fn schema_accepts_good_policies_and_rejects_bad_ones() {
    let client = admin().await;
    let api = policies(&client);
    let good = json!({
        "amapiPolicies": ["enterprises/LC01abc/policies/work-profile"],
        "enforcement": "Enforce",
        "requirements": {"quality": "COMPLEX", "minimumLength": 8, "minimumSymbols": 1,
                         "historyLength": 5, "expirationTimeout": "2160h",
                         "requirePasswordUnlock": "REQUIRE_EVERY_DAY",
                         "unifiedLockSettings": "REQUIRE_SEPARATE_WORK_LOCK"},
    });
    api.create(&PostParams::default(), &policy("schema-good", good))
        .await
        .expect("a valid policy is accepted");
    let req = |r: Value| json!({"amapiPolicies": ["enterprises/E/policies/P"], "requirements": r});
    let many: Vec<String> = (0..65)
        .map(|i| format!("enterprises/E/policies/p{i}"))
        .collect();
    let cases = [
        (
            req(json!({"quality": "NUMERICAL"})),
            "spec.requirements.quality",
        ),
        (
            req(json!({"quality": "NUMERIC", "minimumLength": 17})),
            "spec.requirements.minimumLength",
        ),
        (
            req(json!({"quality": "NUMERIC", "minimumLength": -1})),
            "spec.requirements.minimumLength",
        ),
        (
            req(json!({"quality": "COMPLEX", "minimumSymbols": 40})),
            "spec.requirements.minimumSymbols",
        ),
        (
            req(json!({"quality": "COMPLEX", "expirationTimeout": "90 days"})),
            "spec.requirements.expirationTimeout",
        ),
        (
            req(json!({"quality": "COMPLEX", "requirePasswordUnlock": "SOMETIMES"})),
            "spec.requirements.requirePasswordUnlock",
        ),
        (req(json!({})), "spec.requirements.quality"),
        (
            json!({"amapiPolicies": [], "requirements": {"quality": "NUMERIC"}}),
            "spec.amapiPolicies",
        ),
        (
            json!({"amapiPolicies": many, "requirements": {"quality": "NUMERIC"}}),
            "spec.amapiPolicies",
        ),
        (
            json!({"amapiPolicies": ["enterprises/E/devices/D"], "requirements": {"quality": "NUMERIC"}}),
            "spec.amapiPolicies",
        ),
        (
            json!({"amapiPolicies": ["enterprises/E/policies/P"], "enforcement": "Sometimes", "requirements": {"quality": "NUMERIC"}}),
            "spec.enforcement",
        ),
    ];
    for (i, (spec, field)) in cases.into_iter().enumerate() {
        assert_invalid(&api, &policy(&format!("schema-bad-{i}"), spec), field).await;
    }
}

#[tokio::test]
async fn status_is_a_subresource() {
    let client = admin().await;
    let ns = namespace(&client, "status").await;
    let api = resets(&client, &ns);
    api.create(
        &PostParams::default(),
        &reset("r", json!({"device": "enterprises/E/devices/D"})),
    )
    .await
    .unwrap();
    // A status sent with the main resource is ignored...
    let main = json!({"status": {"phase": "Succeeded"}});
    api.patch("r", &PatchParams::default(), &Patch::Merge(&main))
        .await
        .unwrap();
    let got = api.get("r").await.unwrap();
    assert!(
        got.data.get("status").is_none(),
        "status written through the main resource"
    );
    // ...and taken through /status.
    let status =
        json!({"status": {"phase": "Pending", "reason": "Validating", "observedGeneration": 1}});
    api.patch_status("r", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
    let got = api.get("r").await.unwrap();
    assert_eq!(got.data["status"]["reason"], "Validating");
    // The status schema is enforced too.
    let bad = json!({"status": {"phase": "Done"}});
    let err = api
        .patch_status("r", &PatchParams::default(), &Patch::Merge(&bad))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 422),
        "{err:?}"
    );
}

#[tokio::test]
async fn printer_columns_short_names_and_category() {
    let client = admin().await;
    let ns = namespace(&client, "columns").await;
    let api = resets(&client, &ns);
    api.create(
        &PostParams::default(),
        &reset(
            "jdoe-pixel",
            json!({"device": "enterprises/LC01abc/devices/3a8f0c2d"}),
        ),
    )
    .await
    .unwrap();
    let status = json!({"status": {"phase": "Pending", "reason": "WaitingForSecret"}});
    api.patch_status(
        "jdoe-pixel",
        &PatchParams::default(),
        &Patch::Merge(&status),
    )
    .await
    .unwrap();
    let cp = control_plane();
    // kubectl asks the server for the Table form; the columns come from the CRD.
    let table = cp.kubectl(&["get", "pcr", "-n", &ns]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["NAME", "DEVICE", "PHASE", "REASON", "AGE"],
        "{table}"
    );
    let row = table.lines().nth(1).unwrap();
    for cell in [
        "jdoe-pixel",
        "enterprises/LC01abc/devices/3a8f0c2d",
        "Pending",
        "WaitingForSecret",
    ] {
        assert!(row.contains(cell), "{table}");
    }
    let all = cp.kubectl(&["get", "passcode", "-A"]);
    assert!(
        all.contains("passcodereset.amapi.passcode-operator.io/jdoe-pixel"),
        "{all}"
    );
    policies(&client)
        .create(
            &PostParams::default(),
            &policy(
                "columns",
                json!({"amapiPolicies": ["enterprises/E/policies/columns"], "requirements": {"quality": "SOMETHING"}}),
            ),
        )
        .await
        .unwrap();
    let table = cp.kubectl(&["get", "wppp", "columns"]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "ENFORCEMENT", "READY", "AGE"], "{table}");
    assert!(
        table.lines().nth(1).unwrap().contains("Observe"),
        "default enforcement: {table}"
    );
}
