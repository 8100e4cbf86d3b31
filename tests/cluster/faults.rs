//! Faults: the operator killed at every point of the flow and restarted, and AMAPI failing often.
//! Whatever happens, no reset gets stuck and no device gets two commands for one reset.

use std::time::Duration;

use passcode_operator::api::{Phase, Reason};
use serde_json::{Value, json};

use testkit::scenario::{Env, OperatorOptions};

const PHONE: &str = "      - {id: phone, syncDelay: 50ms}\n";

fn spec() -> Value {
    json!({"newPasscode": {"secretKeyRef": {"name": "pc", "key": "passcode"}}})
}

/// Every crash point, and the Nth status write (claim, operation recorded, final status).
#[tokio::test]
async fn killed_at_every_point_and_restarted_never_twice() {
    for failpoint in [
        "before-first-status-write",
        "after-record",
        "after-finalizer",
        "before-status-write:1",
        "before-issue",
        "after-issue",
        "before-status-write:2",
        "before-status-write:3",
        "before-finalizer-removal",
    ] {
        let started = std::time::Instant::now();
        let test = format!("kill-{}", failpoint.replace(':', "-"));
        let mut env = Env::killed_at(&test, "      - id: wp\n", PHONE, failpoint).await;
        env.start_operator(OperatorOptions::default());
        let r = env.done("r").await;
        env.wait("r", "no finalizer left", |r| {
            r.metadata.finalizers.as_ref().is_none_or(|f| f.is_empty())
        })
        .await;
        let status = r.status.unwrap();
        let commands = env.commands("phone").await;
        assert!(
            commands.len() <= 1,
            "{failpoint}: {} commands",
            commands.len()
        );
        if failpoint == "before-issue" {
            // Claimed, then killed before sending: the restarted operator cannot know that
            // nothing left, finds no command from the claim on the device, and says so.
            assert_eq!(
                status.reason,
                Some(Reason::OutcomeUnknown),
                "{failpoint}: {status:#?}"
            );
            assert!(
                commands.is_empty(),
                "{failpoint}: never a command after the fact"
            );
        } else {
            assert_eq!(
                status.reason,
                Some(Reason::PasscodeReset),
                "{failpoint}: {status:#?}"
            );
            assert_eq!(commands.len(), 1, "{failpoint}");
        }
        eprintln!(
            "{failpoint}: {:?} in {:.1?}",
            status.reason,
            started.elapsed()
        );
    }
}

/// `before-status-write:N` above counts the claim (1), the operation recorded (2) and the final
/// status (3), whoever writes the first status: what the reset shows when the operator dies says
/// which write it was.
#[tokio::test]
async fn the_nth_status_write_is_the_claim_then_the_operation_then_the_end() {
    for n in [1, 3] {
        let failpoint = format!("before-status-write:{n}");
        let env = Env::killed_at(
            &format!("nth-write-{n}"),
            "      - id: wp\n",
            PHONE,
            &failpoint,
        )
        .await;
        let r = env.resets().get("r").await.unwrap();
        let status = r.status.clone().unwrap_or_default();
        let finalizer = r
            .metadata
            .finalizers
            .iter()
            .flatten()
            .any(|f| f == passcode_operator::reconcile::reset::decide::FINALIZER);
        if n == 1 {
            assert!(
                finalizer && status.claimed_at.is_none(),
                "{failpoint} is the claim: {:#?} {status:#?}",
                r.metadata.finalizers
            );
        } else {
            assert!(
                status.operation.is_some() && status.completed_at.is_none(),
                "{failpoint} is the final status: {status:#?}"
            );
        }
    }
}

/// AMAPI answering 20% 5xx, 20% 429, some dropped connections and latency: every reset ends, and
/// its outcome agrees with what the device received.
#[tokio::test]
async fn flaky_amapi_never_yields_two_commands() {
    let mut devices = String::new();
    for i in 0..12 {
        devices.push_str(&format!("      - {{id: p{i}, syncDelay: 50ms}}\n"));
    }
    let env = Env::new("flaky", "      - id: wp\n", &devices).await;
    env.secret("pc", "passcode", b"830417").await;
    env.sim_send(
        reqwest::Method::PUT,
        "faults",
        json!({"errorRate": 0.2, "throttleRate": 0.2, "dropRate": 0.05, "latency": "20ms"}),
    )
    .await;
    for i in 0..12 {
        env.reset(&format!("r{i}"), &format!("p{i}"), spec()).await;
    }
    let mut outcomes = std::collections::BTreeMap::new();
    for i in 0..12 {
        let r = env.done(&format!("r{i}")).await;
        let status = r.status.unwrap();
        let commands = env.commands(&format!("p{i}")).await;
        assert!(commands.len() <= 1, "r{i}: {} commands", commands.len());
        // A 5xx or a cut connection on issueCommand is resolved from the device's operations:
        // the claim's command is adopted, or, with none from the claim listed, the reset ends
        // OutcomeUnknown (it may have been created late): never a second command.
        match status.reason {
            Some(Reason::PasscodeReset) => {
                assert_eq!(commands.len(), 1, "r{i}");
                assert_eq!(commands[0]["state"], "SUCCEEDED", "r{i}: {}", commands[0]);
            }
            Some(Reason::OutcomeUnknown) => {
                assert!(
                    commands.is_empty(),
                    "r{i}: a listed command is adopted: {commands:?}"
                );
            }
            other => panic!("r{i}: {other:?}: {status:#?}"),
        }
        *outcomes.entry(format!("{:?}", status.reason)).or_insert(0) += 1;
        env.wait(&format!("r{i}"), "no finalizer left", |r| {
            r.metadata.finalizers.as_ref().is_none_or(|f| f.is_empty())
        })
        .await;
        assert_ne!(status.phase, Some(Phase::Pending));
    }
    let counters = env.sim_get("counters").await;
    assert!(
        counters["faults"]["errors"].as_u64().unwrap() > 0,
        "faults were injected: {counters}"
    );
    eprintln!("outcomes under faults: {outcomes:?}");
}

/// issueCommand refused with 429 on every retry certainly sent nothing: the claim is released and
/// the reset tried again later, never failed for it, and it succeeds once AMAPI lets it through.
#[tokio::test]
async fn a_throttled_command_is_tried_again_not_failed() {
    let env = Env::new(
        "throttled",
        "      - id: wp\n",
        "      - {id: t, syncDelay: 50ms}\n",
    )
    .await;
    env.sim_send(
        reqwest::Method::PUT,
        "faults",
        json!({"throttleRate": 1.0, "methods": ["devices.issueCommand"]}),
    )
    .await;
    env.reset("r", "t", json!({})).await;
    let r = env
        .wait("r", "the claim released after 429s", |r| {
            r.status.as_ref().and_then(|s| s.reason) == Some(Reason::Retrying)
        })
        .await;
    let s = r.status.unwrap();
    assert!(s.claimed_at.is_none(), "released: {s:#?}");
    assert!(s.message.unwrap().contains("did not take the command"));
    assert!(env.commands("t").await.is_empty());
    // Still not failed a few attempts later.
    let deadline = std::time::Instant::now() + Duration::from_secs(8);
    while std::time::Instant::now() < deadline {
        let r = env.resets().get("r").await.unwrap();
        assert_eq!(r.phase(), Phase::Pending, "{:#?}", r.status);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    env.sim_send(reqwest::Method::PUT, "faults", json!({}))
        .await;
    env.reason_is("r", Reason::PasscodeCleared).await;
    assert_eq!(env.commands("t").await.len(), 1);
}
