//! PasscodeResets end to end: the operator binary under its ServiceAccount on the real API
//! server, the simulator over HTTP, one command per reset proven by the simulator's records.

use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use passcode_operator::api::{Phase, Reason, conditions};
use serde_json::json;

use testkit::scenario::{Env, OperatorOptions};

/// A work profile on a NUMERIC_COMPLEX/6 policy, syncing quickly.
const POLICY: &str = "      - id: wp\n        passwordPolicies: [{passwordScope: SCOPE_PROFILE, passwordQuality: NUMERIC_COMPLEX, passwordMinimumLength: 6}]\n";
const PHONE: &str = "      - {id: phone, managementMode: PROFILE_OWNER, apiLevel: 34, policy: wp, syncDelay: 100ms}\n";

fn with_secret() -> serde_json::Value {
    json!({"newPasscode": {"secretKeyRef": {"name": "pc", "key": "passcode"}}})
}

fn merge(a: serde_json::Value, b: serde_json::Value) -> serde_json::Value {
    let mut a = a;
    for (k, v) in b.as_object().unwrap() {
        a[k] = v.clone();
    }
    a
}

#[tokio::test]
async fn new_passcode_with_lock_now_succeeds_once() {
    let env = Env::new("ok-lock", POLICY, PHONE).await;
    env.secret("pc", "passcode", b"830417").await;
    env.reset("r", "phone", merge(with_secret(), json!({"lockNow": true})))
        .await;
    let r = env.reason_is("r", Reason::PasscodeReset).await;
    let s = r.status.unwrap();
    assert!(
        s.operation
            .as_deref()
            .unwrap()
            .starts_with(&env.device("phone"))
    );
    assert!(s.issued_at.is_some() && s.completed_at.is_some() && s.expires_at.is_some());
    assert_eq!(s.observed_generation, r.metadata.generation);
    assert_eq!(
        conditions::status_of(&s.conditions, conditions::READY),
        Some("True")
    );
    assert_eq!(
        conditions::status_of(&s.conditions, conditions::STALLED),
        Some("False")
    );
    assert!(s.requirements.iter().all(|c| c.met) && !s.requirements.is_empty());
    let device = s.device.unwrap();
    assert_eq!(device.management_mode.as_deref(), Some("PROFILE_OWNER"));
    assert_eq!(device.api_level, Some(34));
    assert_eq!(env.commands("phone").await.len(), 1, "exactly one command");
    let sim_device = env.admin_device("phone").await;
    assert_eq!(
        sim_device["locked"], true,
        "LOCK_NOW reached the device: {sim_device}"
    );
    env.wait("r", "the finalizer to go once done", |r| {
        r.metadata.finalizers.as_ref().is_none_or(|f| f.is_empty())
    })
    .await;
    // An Event for the transitions.
    let events: Api<Event> = Api::namespaced(env.client.clone(), &env.ns);
    let reasons: Vec<String> = events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|e| e.reason)
        .collect();
    assert!(reasons.iter().any(|r| r == "PasscodeReset"), "{reasons:?}");
}

#[tokio::test]
async fn clearing_an_ungoverned_work_profile() {
    let env = Env::new(
        "clear",
        "",
        "      - {id: tablet, managementMode: PROFILE_OWNER, apiLevel: 30, syncDelay: 100ms}\n",
    )
    .await;
    env.reset("r", "tablet", json!({})).await;
    env.reason_is("r", Reason::PasscodeCleared).await;
    assert_eq!(env.admin_device("tablet").await["passcodeSet"], false);
    assert_eq!(env.commands("tablet").await.len(), 1);
}

#[tokio::test]
async fn fully_managed_device_passcode() {
    let env = Env::new(
        "managed",
        "",
        "      - {id: kiosk, managementMode: DEVICE_OWNER, apiLevel: 33, syncDelay: 100ms}\n",
    )
    .await;
    env.secret("pc", "passcode", b"Tr0ub4dor&3").await;
    env.reset(
        "r",
        "kiosk",
        merge(with_secret(), json!({"requireEntry": true})),
    )
    .await;
    env.reason_is("r", Reason::PasscodeReset).await;
    let cmds = env.commands("kiosk").await;
    assert_eq!(cmds.len(), 1);
    assert!(cmds[0].to_string().contains("REQUIRE_ENTRY"), "{}", cmds[0]);
}

#[tokio::test]
async fn a_secret_created_after_the_reset_is_picked_up() {
    let env = Env::new("gitops-order", POLICY, PHONE).await;
    env.reset("r", "phone", with_secret()).await;
    env.wait("r", "WaitingForSecret", |r| {
        r.status.as_ref().and_then(|s| s.reason) == Some(Reason::WaitingForSecret)
    })
    .await;
    assert!(env.commands("phone").await.is_empty());
    env.secret("pc", "passcode", b"830417").await;
    env.reason_is("r", Reason::PasscodeReset).await;
    assert_eq!(env.commands("phone").await.len(), 1);
}

#[tokio::test]
async fn two_resets_of_one_device_run_one_after_the_other() {
    let env = Env::new("serial", POLICY, PHONE).await;
    env.secret("pc", "passcode", b"830417").await;
    env.reset("first", "phone", with_secret()).await;
    env.reset("second", "phone", with_secret()).await;
    let first = env
        .reason_is("first", Reason::PasscodeReset)
        .await
        .status
        .unwrap();
    let second = env
        .reason_is("second", Reason::PasscodeReset)
        .await
        .status
        .unwrap();
    assert_eq!(
        env.commands("phone").await.len(),
        2,
        "one command per reset"
    );
    let (a, b) = if first.issued_at < second.issued_at {
        (&first, &second)
    } else {
        (&second, &first)
    };
    assert!(
        b.issued_at.as_ref().unwrap().0 >= a.completed_at.as_ref().unwrap().0,
        "never two in flight: {a:#?} {b:#?}"
    );
}

#[tokio::test]
async fn an_offline_device_past_expiry_fails_command_expired() {
    let env = Env::new("expiry", POLICY, "      - {id: phone, managementMode: PROFILE_OWNER, apiLevel: 34, policy: wp, online: false}\n").await;
    env.secret("pc", "passcode", b"830417").await;
    env.reset(
        "r",
        "phone",
        merge(with_secret(), json!({"expiresAfter": "1m"})),
    )
    .await;
    env.wait("r", "AwaitingDevice", |r| {
        r.status.as_ref().and_then(|s| s.reason) == Some(Reason::AwaitingDevice)
    })
    .await;
    // Two hours pass for the device (the simulator's clock): the command expires unexecuted.
    env.sim_send(
        reqwest::Method::POST,
        "clock:advance",
        json!({"seconds": 7200}),
    )
    .await;
    let r = env.reason_is("r", Reason::CommandExpired).await;
    assert!(r.status.unwrap().message.unwrap().contains("expired"));
    assert_eq!(env.commands("phone").await.len(), 1);
}

#[tokio::test]
async fn deleting_an_in_flight_reset_cancels_its_command() {
    let env = Env::new("delete", POLICY, "      - {id: phone, managementMode: PROFILE_OWNER, apiLevel: 34, policy: wp, online: false}\n").await;
    env.secret("pc", "passcode", b"830417").await;
    env.reset("r", "phone", with_secret()).await;
    let r = env
        .wait("r", "AwaitingDevice", |r| {
            r.status.as_ref().and_then(|s| s.reason) == Some(Reason::AwaitingDevice)
        })
        .await;
    assert!(
        r.metadata
            .finalizers
            .unwrap_or_default()
            .iter()
            .any(|f| f.contains("cancel-in-flight"))
    );
    env.resets()
        .delete("r", &DeleteParams::default())
        .await
        .unwrap();
    env.wait_gone("r").await;
    let cmds = env.commands("phone").await;
    assert_eq!(cmds.len(), 1);
    assert_eq!(cmds[0]["state"], "CANCELLED", "{}", cmds[0]);
    // Coming online later changes nothing.
    env.patch_device("phone", json!({"online": true})).await;
    assert_eq!(env.admin_device("phone").await["passcodeSet"], true);
}

/// `deleteSecretAfterFinished` on a reset deleted after its command went out: the command is
/// cancelled, the Secret it read is deleted (by its uid), and only then does the reset go.
#[tokio::test]
async fn deleting_a_reset_whose_command_went_out_deletes_its_secret() {
    let env = Env::new("delete-secret", POLICY, "      - {id: phone, managementMode: PROFILE_OWNER, apiLevel: 34, policy: wp, online: false}\n").await;
    env.secret("pc", "passcode", b"830417").await;
    let secrets =
        Api::<k8s_openapi::api::core::v1::Secret>::namespaced(env.client.clone(), &env.ns);
    let uid = secrets.get("pc").await.unwrap().metadata.uid;
    let spec = merge(
        with_secret(),
        json!({"newPasscode": {"secretKeyRef": {"name": "pc", "key": "passcode"}, "deleteSecretAfterFinished": true}}),
    );
    env.reset("r", "phone", spec).await;
    let r = env.issued("r").await;
    let claimed = r.status.unwrap().claimed_command.unwrap();
    assert_eq!(claimed.secret_name.as_deref(), Some("pc"));
    assert_eq!(
        claimed.secret_uid, uid,
        "the claim records the Secret it read"
    );
    env.resets()
        .delete("r", &DeleteParams::default())
        .await
        .unwrap();
    env.wait_gone("r").await;
    assert!(
        secrets.get_opt("pc").await.unwrap().is_none(),
        "the reset went and left the Secret holding the sent passcode"
    );
    let cmds = env.commands("phone").await;
    assert_eq!(cmds.len(), 1);
    assert_eq!(cmds[0]["state"], "CANCELLED", "{}", cmds[0]);
}

#[tokio::test]
async fn a_command_cancelled_elsewhere_is_command_cancelled() {
    let env = Env::new("cancelled", POLICY, "      - {id: phone, managementMode: PROFILE_OWNER, apiLevel: 34, policy: wp, online: false}\n").await;
    env.secret("pc", "passcode", b"830417").await;
    env.reset("r", "phone", with_secret()).await;
    let r = env.issued("r").await;
    // An admin cancels it in the EMM console (AMAPI operations.cancel).
    let op = r.status.unwrap().operation.unwrap();
    env.console().await.cancel_operation(&op).await.unwrap();
    env.reason_is("r", Reason::CommandCancelled).await;
}

#[tokio::test]
async fn every_failure_has_its_reason() {
    let devices = "      - {id: phone, managementMode: PROFILE_OWNER, apiLevel: 34, policy: wp, syncDelay: 100ms}\n      - {id: disabled, managementMode: PROFILE_OWNER, apiLevel: 34, state: DISABLED}\n      - {id: nomode, managementMode: MANAGEMENT_MODE_UNSPECIFIED, apiLevel: 34}\n      - {id: nougat, managementMode: PROFILE_OWNER, apiLevel: 25}\n      - {id: unconfirmed, managementMode: PROFILE_OWNER, apiLevel: 34, policy: wp, resetTokenActive: false, syncDelay: 100ms}\n";
    let env = Env::new("failures", POLICY, devices).await;
    env.secret("pc", "passcode", b"830417").await;
    env.secret("weak", "passcode", b"1234").await;
    env.secret("empty", "passcode", b"").await;
    env.secret("binary", "passcode", &[0xff, 0xfe, 0x00]).await;
    let weak = json!({"newPasscode": {"secretKeyRef": {"name": "weak", "key": "passcode"}}});
    let cases = [
        ("not-found", "ghost", with_secret(), Reason::DeviceNotFound),
        (
            "disabled",
            "disabled",
            with_secret(),
            Reason::DeviceNotActive,
        ),
        (
            "nomode",
            "nomode",
            with_secret(),
            Reason::ManagementModeUnsupported,
        ),
        (
            "nougat",
            "nougat",
            with_secret(),
            Reason::ApiLevelUnsupported,
        ),
        (
            "clear-governed",
            "phone",
            json!({}),
            Reason::PasscodeRequired,
        ),
        ("weak", "phone", weak, Reason::PasscodeInvalid),
        (
            "empty",
            "phone",
            json!({"newPasscode": {"secretKeyRef": {"name": "empty", "key": "passcode"}}}),
            Reason::SecretInvalid,
        ),
        (
            "binary",
            "phone",
            json!({"newPasscode": {"secretKeyRef": {"name": "binary", "key": "passcode"}}}),
            Reason::SecretInvalid,
        ),
        (
            "token",
            "unconfirmed",
            with_secret(),
            Reason::DeviceRejected,
        ),
        // 1.20 does not evaluate CEL, so the operator itself refuses out-of-range values.
        (
            "too-short",
            "phone",
            merge(with_secret(), json!({"expiresAfter": "30s"})),
            Reason::SpecInvalid,
        ),
    ];
    for (name, device, spec, _) in &cases {
        env.reset(name, device, spec.clone()).await;
    }
    // A device of an enterprise this operator may not act on.
    let foreign: passcode_operator::api::PasscodeReset = serde_json::from_value(json!({
        "apiVersion": "amapi.passcode-operator.io/v1alpha1", "kind": "PasscodeReset",
        "metadata": {"name": "foreign"},
        "spec": {"device": "enterprises/SomeoneElse/devices/phone"},
    }))
    .unwrap();
    env.resets()
        .create(&Default::default(), &foreign)
        .await
        .unwrap();
    for (name, _, _, reason) in cases {
        let r = env.reason_is(name, reason).await;
        let message = r.status.unwrap().message.unwrap_or_default();
        assert!(
            message.len() > 20,
            "{name}: a message for people: {message:?}"
        );
    }
    env.reason_is("foreign", Reason::EnterpriseNotAllowed).await;
    let token = env.done("token").await.status.unwrap().message.unwrap();
    assert!(
        token.contains("confirmed"),
        "explains the reset token: {token}"
    );
    let weak = env.done("weak").await.status.unwrap();
    assert!(weak.requirements.iter().any(|c| !c.met), "{weak:#?}");
    // Only the device that was asked to act got a command; the others never did.
    assert_eq!(env.commands("unconfirmed").await.len(), 1);
    assert_eq!(env.commands("phone").await.len(), 0);
    for id in ["disabled", "nomode", "nougat"] {
        assert_eq!(env.commands(id).await.len(), 0, "{id}");
    }
}

#[tokio::test]
async fn permission_denied_for_an_enterprise_the_credentials_cannot_reach() {
    let mut env = Env::without_operator("denied", POLICY, PHONE).await;
    // The operator may act on a second enterprise, which the simulator's service account
    // cannot access.
    env.enterprise = format!("{},Nope{}", env.enterprise, env.ns.replace('-', ""));
    env.start_operator(OperatorOptions::default());
    let real = env.enterprise.split(',').next().unwrap().to_owned();
    let other = env.enterprise.split(',').nth(1).unwrap().to_owned();
    let r: passcode_operator::api::PasscodeReset = serde_json::from_value(json!({
        "apiVersion": "amapi.passcode-operator.io/v1alpha1", "kind": "PasscodeReset",
        "metadata": {"name": "r"},
        "spec": {"device": format!("enterprises/{other}/devices/phone")},
    }))
    .unwrap();
    env.resets().create(&Default::default(), &r).await.unwrap();
    env.enterprise = real;
    let done = env.done("r").await.status.unwrap();
    assert_eq!(done.reason, Some(Reason::PermissionDenied), "{done:#?}");
}

#[tokio::test]
async fn a_spec_edited_after_issue_is_refused_with_spec_changed() {
    let env = Env::new("spec-edit", POLICY, "      - {id: phone, managementMode: PROFILE_OWNER, apiLevel: 34, policy: wp, online: false, syncDelay: 100ms}\n").await;
    env.secret("pc", "passcode", b"830417").await;
    env.reset("r", "phone", with_secret()).await;
    env.issued("r").await;
    // Kubernetes 1.20 does not enforce the immutability rule, so the edit goes through.
    let patch = json!({"spec": {"lockNow": true}});
    env.resets()
        .patch("r", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    env.patch_device("phone", json!({"online": true})).await;
    let r = env.reason_is("r", Reason::SpecChanged).await;
    assert!(
        r.status
            .unwrap()
            .message
            .unwrap()
            .contains("set the new passcode")
    );
    let cmds = env.commands("phone").await;
    assert_eq!(cmds.len(), 1, "no second command for the edited spec");
    assert!(
        !cmds[0].to_string().contains("LOCK_NOW"),
        "the edit was not acted on"
    );
}

/// Finished resets leave the operator's cache; an edit brings one back, and it is noted, not acted on.
#[tokio::test]
async fn a_spec_edited_after_the_end_is_noted_and_not_acted_on() {
    let env = Env::new("spec-edit-after", POLICY, PHONE).await;
    env.secret("pc", "passcode", b"830417").await;
    env.reset("r", "phone", with_secret()).await;
    env.reason_is("r", Reason::PasscodeReset).await;
    env.wait("r", "no finalizer", |r| {
        r.metadata.finalizers.as_ref().is_none_or(|f| f.is_empty())
    })
    .await;
    let patch = json!({"spec": {"lockNow": true}});
    env.resets()
        .patch("r", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let r = env
        .wait("r", "the edit noted", |r| {
            r.status.as_ref().and_then(|s| s.observed_generation) == r.metadata.generation
        })
        .await;
    let s = r.status.unwrap();
    assert_eq!(s.reason, Some(Reason::PasscodeReset), "the outcome stands");
    assert!(
        s.message.unwrap().contains("changed after the reset ended"),
        "the edit is noted"
    );
    assert_eq!(env.commands("phone").await.len(), 1, "and not acted on");
}

async fn killed_at(test: &str, failpoint: &str) -> Env {
    Env::killed_at(test, POLICY, PHONE, failpoint).await
}

/// Stops the operator right after it claimed `r`, before it sent anything.
async fn killed_at_the_claim(test: &str) -> Env {
    let env = killed_at(test, "before-issue").await;
    let claimed = env.resets().get("r").await.unwrap().status.unwrap();
    assert!(
        claimed.claimed_at.is_some() && claimed.operation.is_none(),
        "{claimed:#?}"
    );
    env
}

/// Killed between the claim and the command: the restarted operator cannot know whether a command
/// went out, looks for the claim's command on the device for the adoption window (3 s in these
/// tests), and with none listed ends OutcomeUnknown: it never sends a command after the fact.
#[tokio::test]
async fn killed_at_the_claim_looks_for_the_command_then_ends_outcome_unknown() {
    let mut env = killed_at_the_claim("crash-claim").await;
    env.start_operator(OperatorOptions::default());
    let waiting = env
        .wait("r", "the restarted operator to look for the command", |r| {
            r.status
                .as_ref()
                .and_then(|s| s.message.as_deref())
                .is_some_and(|m| m.contains("not known yet"))
        })
        .await;
    assert!(waiting.status.unwrap().claimed_at.is_some());
    let r = env.reason_is("r", Reason::OutcomeUnknown).await;
    assert!(
        r.status
            .unwrap()
            .message
            .unwrap()
            .contains("will not send a second command")
    );
    assert!(env.commands("phone").await.is_empty(), "nothing sent");
}

/// Killed after sending, while someone else sent two look-alike commands to the device (from the
/// EMM console, say: same type, same flags, same time). The claim's fingerprint tells its own
/// command from theirs: it is adopted, theirs are left alone, and nothing more is sent.
#[tokio::test]
async fn look_alike_commands_are_told_apart_by_the_claims_fingerprint() {
    let mut env = killed_at("crash-issue-twins", "after-issue").await;
    let console = env.console().await;
    let command = passcode_operator::amapi::model::Command {
        type_: passcode_operator::amapi::model::CommandType::ResetPassword,
        new_password: Some(zeroize::Zeroizing::new("147258".to_owned())),
        reset_password_flags: vec![],
        duration: Some("600s".into()),
    };
    for _ in 0..2 {
        console
            .issue_command(&env.device("phone"), &command)
            .await
            .unwrap();
    }
    env.start_operator(OperatorOptions::default());
    let r = env.reason_is("r", Reason::PasscodeReset).await;
    let status = r.status.unwrap();
    let commands = env.commands("phone").await;
    assert_eq!(commands.len(), 3, "the reset's one and the console's two");
    let ours = commands
        .iter()
        .find(|c| c["operation"].as_str() == status.operation.as_deref())
        .unwrap_or_else(|| panic!("{:?} among {commands:#?}", status.operation));
    use passcode_operator::amapi::model::parse_google_duration_nanos as nanos;
    assert_eq!(
        ours["duration"].as_str().and_then(nanos),
        status.claimed_command.and_then(|c| nanos(&c.duration)),
        "the adopted command carries the claim's fingerprint"
    );
}

#[tokio::test]
async fn killed_after_issuing_adopts_the_command_instead_of_sending_another() {
    let mut env = killed_at("crash-issue", "after-issue").await;
    assert_eq!(
        env.commands("phone").await.len(),
        1,
        "the command left before the crash"
    );
    env.start_operator(OperatorOptions::default());
    let r = env.reason_is("r", Reason::PasscodeReset).await;
    assert!(r.status.unwrap().operation.is_some());
    assert_eq!(env.commands("phone").await.len(), 1, "adopted, not resent");
}

#[tokio::test]
async fn a_restarted_operator_never_touches_finished_resets() {
    let mut env = Env::new("restart", POLICY, PHONE).await;
    env.secret("pc", "passcode", b"830417").await;
    for i in 0..3 {
        env.reset(&format!("r{i}"), "phone", with_secret()).await;
    }
    for i in 0..3 {
        env.reason_is(&format!("r{i}"), Reason::PasscodeReset).await;
    }
    env.operator.as_mut().unwrap().kill();
    let calls = env.sim_get("counters").await["methods"].clone();
    env.start_operator(OperatorOptions::default());
    // A reset created after the restart proves the new operator is reconciling.
    env.reset("after", "phone", with_secret()).await;
    env.reason_is("after", Reason::PasscodeReset).await;
    let now = env.sim_get("counters").await["methods"].clone();
    let issued = now["devices.issueCommand"].as_u64().unwrap()
        - calls["devices.issueCommand"].as_u64().unwrap();
    assert_eq!(issued, 1, "only the new reset's command");
    assert_eq!(env.commands("phone").await.len(), 4);
    let gets = now["devices.get"].as_u64().unwrap() - calls["devices.get"].as_u64().unwrap();
    assert_eq!(
        gets, 1,
        "finished resets cost no AMAPI call after a restart"
    );
}

#[tokio::test]
async fn graceful_shutdown_on_sigterm() {
    let mut env = Env::new("sigterm", POLICY, PHONE).await;
    env.secret("pc", "passcode", b"830417").await;
    env.reset("r", "phone", with_secret()).await;
    env.reason_is("r", Reason::PasscodeReset).await;
    let op = env.operator.as_mut().unwrap();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &op.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = op.wait_exit(std::time::Duration::from_secs(30)).await;
    assert!(
        exit.success(),
        "clean exit on SIGTERM: {exit:?}\n{}",
        op.logs()
    );
    assert!(op.logs().contains("shutting down"));
}

#[tokio::test]
async fn metrics_and_health_are_served() {
    let env = Env::new("metrics", POLICY, PHONE).await;
    env.secret("pc", "passcode", b"830417").await;
    env.reset("r", "phone", with_secret()).await;
    env.reason_is("r", Reason::PasscodeReset).await;
    let listen = env.operator.as_ref().unwrap().listen;
    let http = reqwest::Client::new();
    assert_eq!(
        http.get(format!("http://{listen}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        http.get(format!("http://{listen}/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let text = env.metrics().await;
    for needle in [
        "passcode_operator_reconciles_total{resource=\"passcodereset\",result=\"ok\"}",
        "passcode_operator_reset_transitions_total{phase=\"Succeeded\",reason=\"PasscodeReset\"} 1",
        "passcode_operator_amapi_calls_total{method=\"devices.issueCommand\",outcome=\"ok\"} 1",
        "passcode_operator_amapi_call_duration_seconds_bucket",
        "passcode_operator_commands_in_flight 0",
        "passcode_operator_leader 1",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
    assert_eq!(
        Env::phase(&env.resets().get("r").await.unwrap()),
        Phase::Succeeded
    );
}
