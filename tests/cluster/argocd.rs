//! The Argo CD health checks in `manifests/argocd/`, run under a real Lua 5.1 interpreter
//! (Debian's lua5.1) against objects read back from the API server in each phase.

use std::io::Write;
use std::process::{Command, Stdio};

use kube::api::{Api, PostParams};
use passcode_operator::api::{Reason, WorkProfilePasscodePolicy};
use serde_json::{Value, json};

use testkit::repo;
use testkit::scenario::{Env, OperatorOptions};

/// A JSON value as a Lua table constructor.
fn lua(v: &Value) -> String {
    match v {
        Value::Null => "nil".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => {
            let mut out = String::from("\"");
            for b in s.bytes() {
                match b {
                    b'"' => out.push_str("\\\""),
                    b'\\' => out.push_str("\\\\"),
                    0x20..=0x7e => out.push(b as char),
                    other => out.push_str(&format!("\\{other}")),
                }
            }
            out.push('"');
            out
        }
        Value::Array(items) => format!(
            "{{{}}}",
            items.iter().map(lua).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!("[{}] = {}", lua(&Value::String(k.clone())), lua(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Runs a health script as Argo CD does (the script is a function body with `obj` bound).
fn health(script: &str, obj: &Value) -> (String, String) {
    let program = format!(
        "local function check(obj)\n{}\nend\nlocal hs = check({})\nio.write(hs.status, \"\\n\", hs.message or \"\")\n",
        std::fs::read_to_string(repo().join("manifests/argocd").join(script)).unwrap(),
        lua(obj)
    );
    let mut child = Command::new("lua5.1")
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("lua5.1 (apt-get install lua5.1)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(program.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "lua: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let (status, message) = text.split_once('\n').unwrap_or((&text, ""));
    (status.to_owned(), message.to_owned())
}

async fn reset_json(env: &Env, name: &str) -> Value {
    serde_json::to_value(env.resets().get(name).await.unwrap()).unwrap()
}

async fn policy_json(env: &Env, name: &str) -> Value {
    serde_json::to_value(
        Api::<WorkProfilePasscodePolicy>::all(env.client.clone())
            .get(name)
            .await
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn health_checks_follow_each_phase() {
    let policies = "      - id: wp\n      - id: shared\n";
    let mut env = Env::without_operator(
        "argocd",
        policies,
        "      - {id: phone, syncDelay: 100ms}\n",
    )
    .await;
    let create_policy = |name: String, amapi: String| {
        let client = env.client.clone();
        async move {
            let p: WorkProfilePasscodePolicy = serde_json::from_value(json!({
                "apiVersion": "amapi.passcode-operator.io/v1alpha1", "kind": "WorkProfilePasscodePolicy",
                "metadata": {"name": name}, "spec": {"amapiPolicies": [amapi], "enforcement": "Enforce", "requirements": {"quality": "SOMETHING"}},
            }))
            .unwrap();
            Api::<WorkProfilePasscodePolicy>::all(client)
                .create(&PostParams::default(), &p)
                .await
                .unwrap();
        }
    };
    let ready = format!("{}-ready", env.ns);
    let (c1, c2) = (format!("{}-c1", env.ns), format!("{}-c2", env.ns));
    create_policy(ready.clone(), env.policy("wp")).await;
    create_policy(c1.clone(), env.policy("shared")).await;
    create_policy(c2.clone(), env.policy("shared")).await;
    env.reset("ok", "phone", json!({})).await;
    env.reset("bad", "ghost", json!({})).await;
    env.reset(
        "waiting",
        "phone",
        json!({"newPasscode": {"secretKeyRef": {"name": "later", "key": "passcode"}}}),
    )
    .await;

    // Before the operator has seen them.
    assert_eq!(
        health("passcodereset-health.lua", &reset_json(&env, "ok").await).0,
        "Progressing"
    );
    assert_eq!(
        health(
            "workprofilepasscodepolicy-health.lua",
            &policy_json(&env, &ready).await
        )
        .0,
        "Progressing"
    );

    env.start_operator(OperatorOptions::default());
    env.reason_is("ok", Reason::PasscodeCleared).await;
    env.reason_is("bad", Reason::DeviceNotFound).await;
    env.wait("waiting", "WaitingForSecret", |r| {
        r.status.as_ref().and_then(|s| s.reason) == Some(Reason::WaitingForSecret)
    })
    .await;

    let (status, message) = health("passcodereset-health.lua", &reset_json(&env, "ok").await);
    assert_eq!(status, "Healthy");
    assert!(message.starts_with("PasscodeCleared"), "{message}");
    let (status, message) = health("passcodereset-health.lua", &reset_json(&env, "bad").await);
    assert_eq!(status, "Degraded");
    assert!(message.starts_with("DeviceNotFound"), "{message}");
    let (status, message) = health(
        "passcodereset-health.lua",
        &reset_json(&env, "waiting").await,
    );
    assert_eq!(status, "Progressing");
    assert!(message.contains("later"), "{message}");

    let healthy = |v: &Value| {
        v["status"]["conditions"]
            .as_array()
            .is_some_and(|c| !c.is_empty())
    };
    for name in [&ready, &c1] {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !healthy(&policy_json(&env, name).await) {
            assert!(std::time::Instant::now() < deadline, "{name} has no status");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
    assert_eq!(
        health(
            "workprofilepasscodepolicy-health.lua",
            &policy_json(&env, &ready).await
        )
        .0,
        "Healthy"
    );
    let (status, message) = health(
        "workprofilepasscodepolicy-health.lua",
        &policy_json(&env, &c1).await,
    );
    assert_eq!(status, "Degraded");
    assert!(message.starts_with("Conflict"), "{message}");
}

/// The argocd-cm patch carries exactly the scripts the tests run.
#[test]
fn argocd_cm_patch_matches_the_scripts() {
    let dir = repo().join("manifests/argocd");
    let patch: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(dir.join("argocd-cm-patch.yaml")).unwrap())
            .unwrap();
    for (key, file) in [
        (
            "resource.customizations.health.amapi.passcode-operator.io_PasscodeReset",
            "passcodereset-health.lua",
        ),
        (
            "resource.customizations.health.amapi.passcode-operator.io_WorkProfilePasscodePolicy",
            "workprofilepasscodepolicy-health.lua",
        ),
    ] {
        let embedded = patch["data"][key]
            .as_str()
            .unwrap_or_else(|| panic!("{key} missing"));
        assert_eq!(
            embedded.trim(),
            std::fs::read_to_string(dir.join(file)).unwrap().trim(),
            "{key} differs from {file}"
        );
    }
}
