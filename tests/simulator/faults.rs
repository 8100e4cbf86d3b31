//! Quota and injected faults, the late-creation fault, and command durations.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use testkit::discovery::check_command_operation;
use testkit::sim::TestSim;

use crate::{FLEET, GOOD_PIN, PIXEL, error_status, sim};

#[tokio::test]
async fn over_quota_calls_get_429_with_retry_after() {
    let mut s = TestSim::start(&format!(
        "settings: {{quota: {{requests: 3, window: 100s}}}}\n{FLEET}"
    ))
    .await;
    let path = format!("v1/{PIXEL}");
    for _ in 0..3 {
        assert_eq!(s.get(&path).await.status, StatusCode::OK);
    }
    // Neither tokens nor the admin API use quota.
    s.fresh_token().await;
    s.admin(Method::GET, "counters", None).await;
    let r = s.get(&path).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(error_status(&r.body), "RESOURCE_EXHAUSTED");
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((98..=100).contains(&retry), "{retry}");
    let counters = s.counters().await;
    assert_eq!(counters["quotaRejected"], 1);
    assert_eq!(counters["methods"]["devices.get"], 4);

    let r = s
        .admin(
            Method::PUT,
            "quota",
            Some(json!({"requests": 1000, "window": "100s"})),
        )
        .await;
    assert_eq!(r.body, json!({"requests": 1000, "window": "100s"}));
    assert_eq!(s.get(&path).await.status, StatusCode::OK, "a fresh window");
}

#[tokio::test]
async fn injected_faults() {
    let mut s = sim().await;
    let path = format!("v1/{PIXEL}");
    let token = s.token().await;
    // Errors: 503 or 500, before processing: no command is created.
    let set = s
        .admin(Method::PUT, "faults", Some(json!({"errorRate": 1.0})))
        .await;
    assert_eq!(set.status, StatusCode::OK, "{:?}", set.body);
    let r = s
        .amapi_with(
            Method::POST,
            &format!("{path}:issueCommand"),
            Some(json!({"type": "RESET_PASSWORD", "newPassword": GOOD_PIN})),
            Some(&token),
        )
        .await;
    assert!(
        [
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::INTERNAL_SERVER_ERROR
        ]
        .contains(&r.status),
        "{:?}",
        r.status
    );
    assert!(["UNAVAILABLE", "INTERNAL"].contains(&error_status(&r.body)));
    assert_eq!(
        s.admin(Method::GET, "commands", None).await.body["devices"],
        json!({})
    );

    // Throttling: 429 with Retry-After: 1.
    s.admin(Method::PUT, "faults", Some(json!({"throttleRate": 1.0})))
        .await;
    let r = s.get(&path).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers["retry-after"], "1");

    // Latency on every response.
    s.admin(Method::PUT, "faults", Some(json!({"latency": "300ms"})))
        .await;
    let started = Instant::now();
    assert_eq!(s.get(&path).await.status, StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(300));

    // Dropped after processing: the client sees a transport error, the command exists.
    s.admin(Method::PUT, "faults", Some(json!({"dropRate": 1.0})))
        .await;
    let sent = s
        .send(
            Method::POST,
            &format!("{path}:issueCommand"),
            Some(json!({"type": "RESET_PASSWORD", "newPassword": GOOD_PIN})),
            Some(&token),
        )
        .await;
    let failed = match sent {
        Err(_) => true,
        Ok(response) => response.bytes().await.is_err(),
    };
    assert!(failed, "a dropped response is a transport error");
    s.admin(Method::PUT, "faults", Some(json!({}))).await;
    let commands = s.admin(Method::GET, "commands", None).await.body;
    assert_eq!(commands["devices"][PIXEL].as_array().unwrap().len(), 1);
    let listed = s.get(&format!("{path}/operations")).await;
    assert_eq!(listed.body["operations"].as_array().unwrap().len(), 1);

    // Garbage after processing: 200 with an HTML page, and the command exists.
    s.admin(Method::PUT, "faults", Some(json!({"garbageRate": 1.0})))
        .await;
    let garbled = s
        .send(
            Method::POST,
            &format!("{path}:issueCommand"),
            Some(json!({"type": "RESET_PASSWORD", "newPassword": GOOD_PIN})),
            Some(&token),
        )
        .await
        .expect("a response");
    assert_eq!(garbled.status(), StatusCode::OK);
    assert!(serde_json::from_slice::<Value>(&garbled.bytes().await.unwrap()).is_err());
    s.admin(Method::PUT, "faults", Some(json!({}))).await;
    let commands = s.admin(Method::GET, "commands", None).await.body;
    assert_eq!(commands["devices"][PIXEL].as_array().unwrap().len(), 2);

    let counters = s.counters().await;
    assert_eq!(
        counters["faults"],
        json!({"errors": 1, "throttled": 1, "dropped": 1, "garbled": 1,
               "lateCreations": 0, "lateCreationsPending": 0})
    );
    let bad = s
        .admin(Method::PUT, "faults", Some(json!({"errorRate": 3})))
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    // Faults never touch the token endpoint or the admin API.
    s.admin(
        Method::PUT,
        "faults",
        Some(json!({"errorRate": 1.0, "dropRate": 1.0})),
    )
    .await;
    s.fresh_token().await;
    assert_eq!(
        s.admin(Method::GET, "faults", None).await.body["errorRate"],
        1.0
    );
}

/// The late-creation fault: Google's front end answers 504 while the request is still on its way;
/// the command is created only later, exactly like any other, and carried out once.
#[tokio::test]
async fn late_creation_fault_creates_the_command_after_the_client_got_an_error() {
    let mut s = sim().await;
    let path = format!("v1/{PIXEL}");
    let command = json!({"type": "RESET_PASSWORD", "newPassword": GOOD_PIN,
                         "resetPasswordFlags": ["LOCK_NOW"], "duration": "600.000123456s"});
    // Limited to other methods, the fault leaves issueCommand alone.
    let set = s
        .admin(
            Method::PUT,
            "faults",
            Some(json!({"lateCreationRate": 1.0, "lateCreationDelay": "300s", "methods": ["devices.get"]})),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{:?}", set.body);
    assert_eq!(set.body["lateCreationDelay"], "300s");
    let normal = s
        .post(&format!("{path}:issueCommand"), command.clone())
        .await;
    assert_eq!(normal.status, StatusCode::OK, "{:?}", normal.body);
    assert_eq!(
        s.get(&path).await.status,
        StatusCode::OK,
        "no effect on gets"
    );
    s.wait_done(normal.body["name"].as_str().unwrap()).await;

    s.admin(
        Method::PUT,
        "faults",
        Some(json!({"lateCreationRate": 1.0, "lateCreationDelay": "300s"})),
    )
    .await;
    // A malformed command is refused at once, as usual.
    let bad = s
        .post(&format!("{path}:issueCommand"), json!({"type": "FLY"}))
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let sent_at = s.admin(Method::GET, "clock", None).await.body["now"]
        .as_str()
        .unwrap()
        .parse::<jiff::Timestamp>()
        .unwrap();
    let r = s
        .post(&format!("{path}:issueCommand"), command.clone())
        .await;
    let answered_at = s.admin(Method::GET, "clock", None).await.body["now"]
        .as_str()
        .unwrap()
        .parse::<jiff::Timestamp>()
        .unwrap();
    assert_eq!(r.status, StatusCode::GATEWAY_TIMEOUT, "{:?}", r.body);
    assert_eq!(error_status(&r.body), "DEADLINE_EXCEEDED");
    assert!(!r.body.to_string().contains(GOOD_PIN));
    // Only the first command exists, for now.
    assert_eq!(
        operations(&mut s, PIXEL).await.len(),
        1,
        "nothing new right after"
    );
    let counters = s.counters().await;
    assert_eq!(counters["faults"]["lateCreations"], 1);
    assert_eq!(counters["faults"]["lateCreationsPending"], 1);
    assert_eq!(counters["methods"]["devices.issueCommand"], 3);
    // Not before its time.
    s.admin(Method::POST, "clock:advance", Some(json!({"seconds": 290})))
        .await;
    assert_eq!(operations(&mut s, PIXEL).await.len(), 1);
    assert_eq!(
        s.admin(Method::GET, &format!("{PIXEL}/commands"), None)
            .await
            .body["commands"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // Once due (the fault switched off meanwhile: what was accepted still happens).
    s.admin(Method::PUT, "faults", Some(json!({}))).await;
    s.admin(Method::POST, "clock:advance", Some(json!({"seconds": 11})))
        .await;
    let ops = operations(&mut s, PIXEL).await;
    assert_eq!(ops.len(), 2);
    assert_eq!(s.counters().await["faults"]["lateCreationsPending"], 0);
    let late = &ops[1];
    check_command_operation(late).unwrap();
    let m = &late["metadata"];
    assert_eq!(m["duration"], "600.000123456s");
    assert_eq!(m["newPassword"], GOOD_PIN, "echoed like any command");
    assert_eq!(m["resetPasswordFlags"], json!(["LOCK_NOW"]));
    let created: jiff::Timestamp = m["createTime"].as_str().unwrap().parse().unwrap();
    let delay = jiff::SignedDuration::from_secs(300);
    assert!(
        created >= sent_at + delay && created <= answered_at + delay,
        "created {created}, sent {sent_at}"
    );
    let name = late["name"].as_str().unwrap().to_owned();
    let id = |name: &str| name.rsplit('/').next().unwrap().parse::<u64>().unwrap();
    assert!(
        id(&name) > id(normal.body["name"].as_str().unwrap()),
        "numbered when created"
    );
    let done = s.wait_done(&name).await;
    assert!(done["response"].is_object(), "{done}");
    // Carried out once, and never created again.
    s.admin(
        Method::POST,
        "clock:advance",
        Some(json!({"seconds": 3600})),
    )
    .await;
    let commands = s
        .admin(Method::GET, &format!("{PIXEL}/commands"), None)
        .await
        .body;
    let commands = commands["commands"].as_array().unwrap();
    assert_eq!(commands.len(), 2);
    assert_eq!(commands[1]["operation"], json!(name));
    assert_eq!(commands[1]["state"], "SUCCEEDED");
    assert_eq!(commands[1]["duration"], "600.000123456s");
    assert_eq!(s.counters().await["methods"]["devices.issueCommand"], 3);
}

async fn operations(s: &mut TestSim, device: &str) -> Vec<Value> {
    let r = s.get(&format!("v1/{device}/operations")).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body["operations"].as_array().unwrap().clone()
}

/// `Command.duration` with nanoseconds: accepted, used for expiry, echoed as protobuf JSON writes
/// it.
#[tokio::test]
async fn command_durations_keep_their_nanoseconds() {
    let mut s = sim().await;
    let drawer = "enterprises/E1/devices/drawer";
    for (sent, echoed) in [
        ("600.000123456s", "600.000123456s"),
        ("600s", "600s"),
        ("90.5s", "90.500s"),
        ("60.000001000s", "60.000001s"),
    ] {
        let r = s
            .post(
                &format!("v1/{drawer}:issueCommand"),
                json!({"type": "RESET_PASSWORD", "newPassword": GOOD_PIN, "duration": sent}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{sent}: {:?}", r.body);
        assert_eq!(r.body["metadata"]["duration"], echoed, "{sent}");
        check_command_operation(&r.body).unwrap();
        let got = s
            .get(&format!("v1/{}", r.body["name"].as_str().unwrap()))
            .await;
        assert_eq!(got.body["metadata"]["duration"], echoed, "{sent}");
    }
    for bad in ["600.0000001234s", "-600s", "600.s"] {
        let r = s
            .post(
                &format!("v1/{drawer}:issueCommand"),
                json!({"type": "RESET_PASSWORD", "duration": bad}),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    // The fraction counts for expiry: 60.5 s is still pending 60 s (and the few real
    // milliseconds this test takes) later, expired a second after that.
    let r = s
        .post(
            &format!("v1/{drawer}:issueCommand"),
            json!({"type": "RESET_PASSWORD", "newPassword": GOOD_PIN, "duration": "60.500s"}),
        )
        .await;
    let name = r.body["name"].as_str().unwrap().to_owned();
    s.admin(Method::POST, "clock:advance", Some(json!({"seconds": 60})))
        .await;
    assert_eq!(s.get(&format!("v1/{name}")).await.body["done"], false);
    s.admin(Method::POST, "clock:advance", Some(json!({"seconds": 1})))
        .await;
    assert_eq!(s.get(&format!("v1/{name}")).await.body["error"]["code"], 4);
}
