//! `kubectl passcode` as a help desk uses it, against the real control plane and the running
//! operator: the non-interactive forms (passcode on stdin, `-o json`) and the interactive checklist
//! driven in a real terminal (tmux: new-session, send-keys, capture-pane). Also the passcode's
//! Secret after the end: deleted by the plugin, or by the operator when the spec asks.

use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams, PostParams};
use passcode_operator::api::{PasscodeReset, Reason, WorkProfilePasscodePolicy};
use passcode_operator::passcode::{Governing, PasswordQuality, Requirements, judge};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use testkit::cluster::control_plane;
use testkit::scenario::Env;

/// A work profile on a NUMERIC_COMPLEX/6 policy, Android 14.
const POLICY: &str = "      - id: wp\n        passwordPolicies: [{passwordScope: SCOPE_PROFILE, passwordQuality: NUMERIC_COMPLEX, passwordMinimumLength: 6}]\n";
const DEVICES: &str = "      - {id: phone, managementMode: PROFILE_OWNER, apiLevel: 34, policy: wp, syncDelay: 100ms}\n      - {id: unconfirmed, managementMode: PROFILE_OWNER, apiLevel: 34, policy: wp, resetTokenActive: false, syncDelay: 100ms}\n";
const CANARY: &str = "Zq7#canary-Xw";

/// Runs the plugin as a user would, with the admin kubeconfig, in the scenario's namespace.
async fn plugin(env: &Env, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_kubectl-passcode"))
        .args(args)
        .args(["-n", &env.ns])
        .env("KUBECONFIG", control_plane().kubeconfig())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn kubectl-passcode");
    let mut input = child.stdin.take().unwrap();
    let _ = input.write_all(stdin).await;
    drop(input);
    tokio::time::timeout(Duration::from_secs(90), child.wait_with_output())
        .await
        .expect("the plugin ends within 90 s")
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A WorkProfilePasscodePolicy naming the scenario's AMAPI policy `wp`.
async fn governing_policy(env: &Env) -> String {
    let name = format!("{}-corp", env.ns);
    let p: WorkProfilePasscodePolicy = serde_json::from_value(json!({
        "apiVersion": "amapi.passcode-operator.io/v1alpha1", "kind": "WorkProfilePasscodePolicy",
        "metadata": {"name": name},
        "spec": {"amapiPolicies": [env.policy("wp")],
                 "requirements": {"quality": "NUMERIC_COMPLEX", "minimumLength": 6}},
    }))
    .unwrap();
    Api::<WorkProfilePasscodePolicy>::all(env.client.clone())
        .create(&PostParams::default(), &p)
        .await
        .unwrap();
    name
}

async fn resets(env: &Env) -> Vec<PasscodeReset> {
    env.resets()
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
}

async fn secret_exists(env: &Env, name: &str) -> bool {
    Api::<Secret>::namespaced(env.client.clone(), &env.ns)
        .get_opt(name)
        .await
        .unwrap()
        .is_some()
}

#[tokio::test]
async fn a_reset_from_stdin_succeeds_leaves_no_secret_and_never_shows_the_passcode() {
    let env = Env::new("plugin-ok", POLICY, DEVICES).await;
    let device = env.device("phone");
    let out = plugin(
        &env,
        &["reset", &device, "--lock"],
        format!("{CANARY}\n").as_bytes(),
    )
    .await;
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(all.contains("Created PasscodeReset"), "{all}");
    assert!(all.contains("Succeeded/PasscodeReset"), "{all}");
    assert!(all.contains("Deleted Secret"), "{all}");
    let made = resets(&env).await;
    assert_eq!(made.len(), 1);
    let r = &made[0];
    assert!(r.spec.lock_now);
    let secret = &r.spec.new_passcode.as_ref().unwrap().secret_key_ref.name;
    assert!(!secret_exists(&env, secret).await, "the Secret is gone");
    assert_eq!(env.commands("phone").await.len(), 1, "one command");
    // The canary appears nowhere: not in the plugin's output, not in the operator's log.
    let logs = env.operator.as_ref().unwrap().logs();
    for (place, text) in [("plugin output", &all), ("operator log", &logs)] {
        assert!(
            !text.contains(CANARY) && !text.contains("canary-Xw"),
            "leaked into {place}"
        );
    }
}

#[tokio::test]
async fn a_refused_passcode_sends_nothing_and_a_failed_reset_exits_1_with_what_to_do() {
    let env = Env::new("plugin-fail", POLICY, DEVICES).await;
    let file = env.dir.join("requirements.yaml");
    std::fs::write(&file, "quality: NUMERIC_COMPLEX\nminimumLength: 6\n").unwrap();
    let out = plugin(
        &env,
        &[
            "reset",
            &env.device("phone"),
            "--requirements",
            file.to_str().unwrap(),
        ],
        b"1234",
    )
    .await;
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("✗ at least 6 characters"), "{all}");
    assert!(all.contains("Not sent"), "{all}");
    assert!(resets(&env).await.is_empty(), "nothing was created");

    // The device refuses (its user never confirmed the lock): Failed, the reason, what to do.
    let out = plugin(&env, &["reset", &env.device("unconfirmed")], b"830417").await;
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("Failed/DeviceRejected"), "{all}");
    assert!(all.contains("What to do: Follow the message"), "{all}");
    assert!(all.contains("Deleted Secret"), "{all}");

    // Usage errors: exit 2, nothing created.
    for args in [
        &["reset", "not-a-device"][..],
        &["reset", &env.device("phone"), "--expires", "2w"],
        &["reset", &env.device("phone"), "--clear", "--generate"],
    ] {
        let out = plugin(&env, args, b"830417").await;
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
    }
    assert_eq!(resets(&env).await.len(), 1);
}

#[tokio::test]
async fn generate_makes_a_passcode_the_device_takes_and_shows_it_once() {
    let env = Env::new("plugin-gen", POLICY, DEVICES).await;
    let file = env.dir.join("requirements.yaml");
    std::fs::write(
        &file,
        "quality: COMPLEX\nminimumLength: 10\nminimumUpperCase: 1\nminimumSymbols: 1\n",
    )
    .unwrap();
    let out = plugin(
        &env,
        &[
            "reset",
            &env.device("phone"),
            "--generate",
            "--requirements",
            file.to_str().unwrap(),
            "-o",
            "json",
        ],
        b"",
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).expect("one JSON document on stdout");
    assert_eq!(
        (v["phase"].as_str(), v["reason"].as_str()),
        (Some("Succeeded"), Some("PasscodeReset"))
    );
    assert_eq!(v["secretDeleted"], true);
    let made = v["generatedPasscode"].as_str().unwrap().to_owned();
    let rules = Governing::from_requirements(&[
        Requirements {
            quality: PasswordQuality::Complex,
            minimum_length: Some(10),
            minimum_upper_case: Some(1),
            minimum_symbols: Some(1),
            ..Requirements::default()
        },
        Requirements {
            quality: PasswordQuality::NumericComplex,
            minimum_length: Some(6),
            ..Requirements::default()
        },
    ]);
    assert!(
        judge(Some(made.as_bytes()), &rules, Some(34)).passes,
        "meets the rules"
    );
    assert!(!made.chars().any(passcode_operator::passcode::is_look_alike));
    // Shown once: in the result, not in the progress on stderr.
    assert!(!String::from_utf8_lossy(&out.stderr).contains(&made));
    assert_eq!(env.commands("phone").await.len(), 1);
}

#[tokio::test]
async fn check_list_status_and_wait_use_what_the_operator_reported() {
    let env = Env::new("plugin-read", POLICY, DEVICES).await;
    let policy = governing_policy(&env).await;
    let device = env.device("phone");
    // Before any reset the cluster does not know the device's policy: Android's own rules only.
    let out = plugin(&env, &["check", &device, "-o", "json"], b"2580").await;
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["passes"], true, "{v}");
    assert_eq!(
        plugin(&env, &["reset", &device], b"830417")
            .await
            .status
            .code(),
        Some(0)
    );
    // Now the operator has reported the device's AMAPI policy, which the WorkProfilePasscodePolicy
    // names, and its API level.
    let out = plugin(&env, &["check", &device, "-o", "json"], b"2580").await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["passes"], false);
    assert_eq!(v["apiLevel"], 34);
    assert!(v["sources"][0].as_str().unwrap().contains(&policy), "{v}");
    let out = plugin(&env, &["check", &device], b"830417").await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("✓ no repeating or ordered sequence"),
        "{}",
        text(&out)
    );

    let name = resets(&env).await[0].metadata.name.clone().unwrap();
    let out = plugin(&env, &["list"], b"").await;
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["NAME", "DEVICE", "PHASE", "REASON", "REQUESTER", "AGE"]
    );
    let row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(
        row[..5],
        [
            name.as_str(),
            device.as_str(),
            "Succeeded",
            "PasscodeReset",
            "-"
        ]
    );
    let out = plugin(&env, &["list", "-o", "json"], b"").await;
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 1);
    for args in [
        &["status", name.as_str(), "-o", "json"][..],
        &["status", "-o", "json"],
    ] {
        let out = plugin(&env, args, b"").await;
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["name"], name.as_str());
        assert_eq!(v["reason"], "PasscodeReset");
        assert!(v["whatToDo"].as_str().unwrap().contains("usual channel"));
        assert!(
            v["requirements"]
                .as_array()
                .unwrap()
                .iter()
                .all(|l| l["met"] == true)
        );
    }
    let out = plugin(&env, &["status", "nothing-here"], b"").await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));

    // `wait` on a reset made with YAML: exit 1 for a Failed one, with what to do.
    env.secret("pc", "passcode", b"830417").await;
    env.reset(
        "by-yaml",
        "unconfirmed",
        json!({"newPasscode": {"secretKeyRef": {"name": "pc", "key": "passcode"}}}),
    )
    .await;
    let out = plugin(&env, &["wait", "by-yaml"], b"").await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("Failed/DeviceRejected"),
        "{}",
        text(&out)
    );
    assert!(
        secret_exists(&env, "pc").await,
        "not the plugin's Secret: left alone"
    );
}

#[tokio::test]
async fn the_operator_deletes_the_secret_once_final_when_the_spec_asks() {
    let env = Env::new("plugin-opdel", POLICY, DEVICES).await;
    for (name, device) in [
        ("ok", "phone"),
        ("refused", "unconfirmed"),
        ("kept", "phone"),
    ] {
        env.secret(name, "passcode", b"830417").await;
        let delete = name != "kept";
        env.reset(
            name,
            device,
            json!({"newPasscode": {"secretKeyRef": {"name": name, "key": "passcode"},
                                   "deleteSecretAfterFinished": delete}}),
        )
        .await;
        let reason = if device == "phone" {
            Reason::PasscodeReset
        } else {
            Reason::DeviceRejected
        };
        env.reason_is(name, reason).await;
        if delete {
            let r = env
                .wait(name, "secretDeletedAt", |r| {
                    r.status
                        .as_ref()
                        .is_some_and(|s| s.secret_deleted_at.is_some())
                })
                .await;
            assert!(
                !secret_exists(&env, name).await,
                "{name}: the Secret is gone"
            );
            assert!(
                !r.status
                    .unwrap()
                    .message
                    .unwrap()
                    .contains("could not be deleted")
            );
        } else {
            assert!(
                secret_exists(&env, name).await,
                "without the field the Secret stays"
            );
        }
    }
    assert_eq!(env.commands("phone").await.len(), 2);
}

/// tmux on a private socket, killed when the test ends.
struct Tmux(String);

impl Tmux {
    fn run(&self, args: &[&str]) -> String {
        let out = std::process::Command::new("tmux")
            .args(["-u", "-L", &self.0])
            .args(args)
            .env("LANG", "C.UTF-8")
            .output()
            .expect("run tmux (hack/deps installs it)");
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn pane(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "plugin"])
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "plugin"];
        args.extend_from_slice(keys);
        self.run(&args);
    }

    /// Waits until the pane shows what `check` looks for.
    async fn until(&self, what: &str, check: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let pane = self.pane();
            if check(&pane) {
                return pane;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; the pane:\n{pane}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = std::process::Command::new("tmux")
            .args(["-L", &self.0, "kill-server"])
            .output();
    }
}

#[tokio::test]
async fn the_interactive_checklist_ticks_at_each_keystroke_and_sends_only_when_all_are_met() {
    let env = Env::new("plugin-tty", POLICY, DEVICES).await;
    governing_policy(&env).await;
    let device = env.device("phone");
    // A first reset, so the operator has reported the device's AMAPI policy.
    assert_eq!(
        plugin(&env, &["reset", &device], b"830417")
            .await
            .status
            .code(),
        Some(0)
    );

    let tmux = Tmux(format!("pcr-{}", env.ns));
    let command = format!(
        "KUBECONFIG={} {} reset {device} -n {} --lock; echo \"exit code $?\"; exec cat",
        control_plane().kubeconfig().display(),
        env!("CARGO_BIN_EXE_kubectl-passcode"),
        env.ns,
    );
    tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "plugin",
        "-x",
        "150",
        "-y",
        "40",
        "sh",
        "-c",
        &command,
    ]);
    tmux.until("the prompt", |p| p.contains("New passcode:"))
        .await;
    tmux.keys(&["-l", "1234"]);
    let pane = tmux
        .until("the checklist for 1234", |p| {
            p.contains("New passcode: ••••") && p.contains("✗ at least 6 characters")
        })
        .await;
    println!("--- the checklist after 1234 ---\n{}", pane.trim_end());
    assert!(
        pane.contains("✗ no repeating or ordered sequence"),
        "{pane}"
    );
    assert!(pane.contains("✓ at most 16 characters"), "{pane}");
    tmux.keys(&["Enter"]);
    tmux.until("a refusal to send", |p| {
        p.contains("not sent: 2 requirements are not met")
    })
    .await;
    assert_eq!(
        resets(&env).await.len(),
        1,
        "Enter sent nothing while rules were unmet"
    );
    tmux.keys(&["C-u"]);
    tmux.keys(&["-l", "830417"]);
    let pane = tmux
        .until("every rule met", |p| {
            p.contains("New passcode: ••••••") && !p.contains('✗')
        })
        .await;
    println!("--- the checklist, every rule met ---\n{}", pane.trim_end());
    tmux.keys(&["Enter"]);
    let pane = tmux
        .until("the end of the reset", |p| p.contains("exit code "))
        .await;
    println!("--- the pane at the end ---\n{}", pane.trim_end());
    assert!(pane.contains("Succeeded/PasscodeReset"), "{pane}");
    assert!(pane.contains("exit code 0"), "{pane}");
    // (1234 is in the sequence rule's own wording, so only the sent passcode is looked for.)
    assert!(!pane.contains("830417"), "typed characters are never shown");
    assert_eq!(env.commands("phone").await.len(), 2);
    let made = resets(&env).await;
    assert!(made.iter().all(|r| {
        r.spec
            .new_passcode
            .as_ref()
            .is_some_and(|p| !p.delete_secret_after_finished)
    }));
    for r in made {
        let secret = r.spec.new_passcode.unwrap().secret_key_ref.name;
        assert!(!secret_exists(&env, &secret).await, "{secret} is gone");
    }
}
