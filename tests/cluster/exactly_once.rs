//! The exactly-once defects, end to end on the real control plane (the seeded search in
//! `tests/protocol` finds each of them when its fix is reverted; these show them as a user
//! would meet them). Commands are counted on the simulator.

use kube::api::{DeleteParams, Patch, PatchParams};
use passcode_operator::api::Reason;
use serde_json::json;

use testkit::scenario::{Env, OperatorOptions};

const POLICY: &str = "      - id: wp\n";
const TWO_PHONES: &str =
    "      - {id: phone, syncDelay: 100ms}\n      - {id: other, syncDelay: 100ms}\n";

fn spec() -> serde_json::Value {
    json!({"newPasscode": {"secretKeyRef": {"name": "pc", "key": "passcode"}}})
}

/// Defect 1: the command to `phone` left, the operator died before recording it, and the spec
/// was edited to another device (API servers without CEL allow it). The restarted operator stays
/// bound to the claimed device: it finds the command there, follows it, and ends SpecChanged;
/// the other device never gets a command.
#[tokio::test]
async fn a_device_edited_after_the_claim_gets_no_command() {
    let mut env = Env::killed_at("eo-spec-edit", POLICY, TWO_PHONES, "after-issue").await;
    assert_eq!(
        env.commands("phone").await.len(),
        1,
        "sent before the crash"
    );
    let patch = json!({"spec": {"device": env.device("other")}});
    env.resets()
        .patch("r", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    env.start_operator(OperatorOptions::default());
    let r = env.reason_is("r", Reason::SpecChanged).await;
    let status = r.status.unwrap();
    let message = status.message.unwrap();
    assert!(
        message.contains(&env.device("phone")) && message.contains("set the new passcode"),
        "says what became of the claimed command: {message}"
    );
    assert_eq!(
        status.claimed_command.unwrap().device,
        env.device("phone"),
        "the claim keeps its device"
    );
    assert_eq!(env.commands("phone").await.len(), 1);
    assert!(
        env.commands("other").await.is_empty(),
        "never the edited device"
    );
}

/// Defect 2: a reset in flight whose finalizer someone removed by hand, then deleted: no
/// reconcile runs for it, yet the next reset of the device must not wait for it forever.
#[tokio::test]
async fn a_reset_deleted_behind_the_operators_back_does_not_block_its_device() {
    let env = Env::new(
        "eo-stripped",
        POLICY,
        "      - {id: phone, online: false, syncDelay: 100ms}\n",
    )
    .await;
    env.secret("pc", "passcode", b"830417").await;
    env.reset("first", "phone", spec()).await;
    env.issued("first").await;
    let strip = json!({"metadata": {"finalizers": null}});
    env.resets()
        .patch("first", &PatchParams::default(), &Patch::Merge(&strip))
        .await
        .unwrap();
    env.resets()
        .delete("first", &DeleteParams::default())
        .await
        .unwrap();
    env.wait_gone("first").await;
    env.patch_device("phone", json!({"online": true})).await;
    env.reset("second", "phone", spec()).await;
    env.reason_is("second", Reason::PasscodeReset).await;
    assert_eq!(env.commands("phone").await.len(), 2, "one command each");
}

/// Defect 3: run `r` with S1, delete it, re-create it with S2 (a new reset: it runs), delete it,
/// re-create it with S1 (a git revert under Flux `force: true`): S1 does not run twice.
#[tokio::test]
async fn s1_then_s2_then_s1_again_runs_s1_once() {
    let env = Env::new(
        "eo-s1s2s1",
        POLICY,
        "      - {id: phone, syncDelay: 100ms}\n",
    )
    .await;
    env.secret("pc", "passcode", b"830417").await;
    let s1 = spec();
    let mut s2 = spec();
    s2["lockNow"] = json!(true);
    for (i, s) in [&s1, &s2].into_iter().enumerate() {
        env.reset("r", "phone", s.clone()).await;
        env.reason_is("r", Reason::PasscodeReset).await;
        assert_eq!(env.commands("phone").await.len(), i + 1);
        env.wait("r", "no finalizer", |r| {
            r.metadata.finalizers.as_ref().is_none_or(|f| f.is_empty())
        })
        .await;
        env.resets()
            .delete("r", &DeleteParams::default())
            .await
            .unwrap();
        env.wait_gone("r").await;
    }
    env.reset("r", "phone", s1).await;
    let r = env.reason_is("r", Reason::Recreated).await;
    assert!(
        r.status
            .unwrap()
            .message
            .unwrap()
            .contains("already acted on")
    );
    assert_eq!(env.commands("phone").await.len(), 2, "S1 ran once, S2 once");
}

/// Defect 5: Google accepts issueCommand, the client gets a 504, and the command comes into
/// being only after the adoption window (3 s in these tests) has closed, as a request processed
/// late would. The reset ends OutcomeUnknown instead of sending again; when the late command
/// lands, the device has that one and no other.
#[tokio::test]
async fn a_command_created_after_the_window_is_the_only_one() {
    let env = Env::new("eo-late", POLICY, "      - {id: phone, syncDelay: 100ms}\n").await;
    env.secret("pc", "passcode", b"830417").await;
    env.sim_send(
        reqwest::Method::PUT,
        "faults",
        json!({"lateCreationRate": 1.0, "lateCreationDelay": "600s", "methods": ["devices.issueCommand"]}),
    )
    .await;
    env.reset("r", "phone", spec()).await;
    let r = env.reason_is("r", Reason::OutcomeUnknown).await;
    assert!(
        r.status.unwrap().message.unwrap().contains("created later"),
        "the message says why it cannot be known"
    );
    assert!(env.commands("phone").await.is_empty(), "not created yet");
    env.sim_send(reqwest::Method::PUT, "faults", json!({}))
        .await;
    env.sim_send(
        reqwest::Method::POST,
        "clock:advance",
        json!({"seconds": 601}),
    )
    .await;
    let commands = env.commands("phone").await;
    assert_eq!(
        commands.len(),
        1,
        "the late one, and no second: {commands:#?}"
    );
    assert_eq!(env.counter("devices.issueCommand").await, 1, "sent once");
    let r = env.resets().get("r").await.unwrap();
    assert_eq!(r.status.unwrap().reason, Some(Reason::OutcomeUnknown));
}
