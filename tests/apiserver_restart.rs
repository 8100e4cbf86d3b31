//! kube-apiserver restarted under a running operator: it recovers by itself, and a command in
//! flight across the outage still ends with exactly one command. A control plane of its own, so
//! the restart disturbs no other test.

use passcode_operator::api::Reason;
use serde_json::json;
use testkit::cluster::control_plane;
use testkit::scenario::Env;

#[tokio::test]
async fn the_operator_recovers_from_an_apiserver_restart() {
    let devices = "      - {id: before, syncDelay: 50ms}\n      - {id: across, online: false, syncDelay: 50ms}\n      - {id: after, syncDelay: 50ms}\n";
    let env = Env::new("apiserver-restart", "      - id: wp\n", devices).await;
    env.secret("pc", "passcode", b"830417").await;
    let spec = json!({"newPasscode": {"secretKeyRef": {"name": "pc", "key": "passcode"}}});
    env.reset("before", "before", spec.clone()).await;
    env.reason_is("before", Reason::PasscodeReset).await;
    env.reset("across", "across", spec.clone()).await;
    env.issued("across").await;

    // The restart blocks this thread; the simulator must keep serving the operator meanwhile.
    tokio::task::spawn_blocking(|| control_plane().restart_apiserver())
        .await
        .unwrap();
    env.patch_device("across", json!({"online": true})).await;

    // Fresh clients: the old connections died with the server.
    let mut env = env.reconnect().await;
    env.reason_is("across", Reason::PasscodeReset).await;
    env.reset("after", "after", spec).await;
    env.reason_is("after", Reason::PasscodeReset).await;
    for id in ["before", "across", "after"] {
        assert_eq!(env.commands(id).await.len(), 1, "{id}: one command");
    }
    assert!(
        env.operator_alive(),
        "the operator kept running through the outage"
    );
}
