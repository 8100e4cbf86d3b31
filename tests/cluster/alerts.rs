//! The alerts (`manifests/monitoring/alerts.yaml`) evaluated by promtool on the operator's real
//! `/metrics`: operators run against the simulator with the trouble each alert is about provoked
//! (an OutcomeUnknown, a 403, 429s, a reset past its expiry, a missing subscription, a starved rate
//! limiter), scraped, and the scrapes turned into promtool unit tests. A counter becomes a series
//! that rises from 0 at the process's start at the rate observed ("it goes on like this"), or
//! jumps to the scraped value once ("it happened once"); a gauge keeps its scraped value (after a
//! quiet start in the second case). Each
//! case says which alerts fire and, by listing all, that no other does.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use passcode_operator::api::Reason;
use serde_json::{Value, json};
use testkit::scenario::{Env, OperatorOptions};
use testkit::{repo, tool, yaml_documents};

const POLICY: &str = "      - id: wp\n";
const EVERY_MINUTES: usize = 90;

/// One scrape: each counter and gauge sample (histograms left out: no alert reads them).
struct Scrape {
    samples: Vec<(String, &'static str, f64)>,
    uptime: Duration,
}

impl Scrape {
    fn parse(text: &str, uptime: Duration) -> Scrape {
        let mut types = BTreeMap::new();
        let mut samples = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                types.insert(name.to_owned(), kind.to_owned());
                continue;
            }
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').unwrap();
            let name = series.split('{').next().unwrap();
            let kind = match types.get(name.strip_suffix("_total").unwrap_or(name)) {
                Some(k) if k == "counter" && name.ends_with("_total") => "counter",
                Some(k) if k == "gauge" => "gauge",
                _ => continue,
            };
            samples.push((series.to_owned(), kind, value.parse().unwrap()));
        }
        assert!(!samples.is_empty(), "no samples in:\n{text}");
        Scrape { samples, uptime }
    }

    fn value(&self, series: &str) -> f64 {
        self.samples
            .iter()
            .find(|(s, _, _)| s == series)
            .unwrap_or_else(|| panic!("no {series} in the scrape: {:?}", self.samples))
            .2
    }

    /// promtool input series: counters going on at the observed rate.
    fn continued(&self) -> Vec<(String, String)> {
        let minutes = self.uptime.as_secs_f64() / 60.0;
        self.samples
            .iter()
            .map(|(s, kind, v)| {
                let values = match *kind {
                    "counter" => format!("0+{}x{EVERY_MINUTES}", v / minutes),
                    _ => format!("{v}+0x{EVERY_MINUTES}"),
                };
                (s.clone(), values)
            })
            .collect()
    }

    /// promtool input series: a quiet process until minute 30 (counters 0, one leader, nothing in
    /// flight or past expiry), then the scraped values for good.
    fn once(&self) -> Vec<(String, String)> {
        self.samples
            .iter()
            .map(|(s, kind, v)| {
                let values = match *kind {
                    "counter" => format!("0+0x29 {v}+0x{}", EVERY_MINUTES - 30),
                    _ => {
                        let quiet = if s == "passcode_operator_leader" {
                            1
                        } else {
                            0
                        };
                        format!("{quiet}+0x29 {v}+0x{}", EVERY_MINUTES - 30)
                    }
                };
                (s.clone(), values)
            })
            .collect()
    }
}

async fn scrape(env: &Env, started: Instant) -> Scrape {
    Scrape::parse(&env.metrics().await, started.elapsed())
}

/// Waits until the operator's metrics satisfy `check`.
async fn metrics_until(env: &Env, what: &str, within: Duration, check: impl Fn(&str) -> bool) {
    testkit::until(
        &format!("{what} in the metrics"),
        within,
        Duration::from_millis(250),
        || env.metrics(),
        |text: &String| check(text),
    )
    .await;
}

fn rules() -> BTreeMap<String, Value> {
    let text = std::fs::read_to_string(repo().join("manifests/monitoring/alerts.yaml")).unwrap();
    let doc = &yaml_documents(&text)[0];
    doc["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap().clone())
        .map(|r| (r["alert"].as_str().unwrap().to_owned(), r))
        .collect()
}

/// The alert as promtool must see it firing: its labels (with the expression's own) and
/// annotations.
fn firing(rules: &BTreeMap<String, Value>, name: &str, labels: &[(&str, &str)]) -> Value {
    let rule = &rules[name];
    let mut l = rule["labels"].clone();
    for (k, v) in labels {
        l[*k] = json!(v);
    }
    json!({"exp_labels": l, "exp_annotations": rule["annotations"]})
}

/// The alerts that fire at one evaluation, each with its expected instances.
type Firing<'a> = Vec<(&'a str, Vec<Value>)>;

/// A promtool test group: at each minute, the alerts that fire (every other alert: none).
fn group(
    rules: &BTreeMap<String, Value>,
    name: &str,
    series: Vec<(String, String)>,
    checks: Vec<(usize, Firing)>,
) -> Value {
    let mut tests = Vec::new();
    for (minute, fire) in checks {
        for alert in rules.keys() {
            let exp: Vec<Value> = fire
                .iter()
                .filter(|(a, _)| a == alert)
                .flat_map(|(_, e)| e.clone())
                .collect();
            tests.push(
                json!({"eval_time": format!("{minute}m"), "alertname": alert, "exp_alerts": exp}),
            );
        }
    }
    json!({
        "name": name,
        "interval": "1m",
        "input_series": series.into_iter().map(|(s, v)| json!({"series": s, "values": v})).collect::<Vec<_>>(),
        "alert_rule_test": tests,
    })
}

fn promtool_test(dir: &Path, groups: Vec<Value>) {
    let file = dir.join("alerts-test.yaml");
    let doc = json!({
        "rule_files": [repo().join("manifests/monitoring/alerts.yaml")],
        "evaluation_interval": "1m",
        "tests": groups,
    });
    std::fs::write(&file, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    let out = Command::new(tool("promtool"))
        .args(["test", "rules", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool test rules {}:\n{}{}",
        file.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn replace(series: &mut [(String, String)], name: &str, values: &str) {
    let s = series
        .iter_mut()
        .find(|(s, _)| s == name)
        .unwrap_or_else(|| panic!("no {name} in the scrape"));
    s.1 = values.to_owned();
}

#[test]
fn the_alert_rules_check() {
    let out = Command::new(tool("promtool"))
        .args(["check", "rules"])
        .arg(repo().join("manifests/monitoring/alerts.yaml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every dashboard query is valid PromQL (checked by promtool as recording rules) and reads only
/// metrics the operator exports.
#[tokio::test]
async fn the_dashboard_reads_real_metrics() {
    // With a subscription, so the notification series exist too.
    let mut env = Env::notified(
        "dashboard",
        POLICY,
        "      - {id: phone, syncDelay: 50ms}\n",
    )
    .await;
    env.start_operator(OperatorOptions {
        pubsub_subscription: Some(testkit::scenario::SUBSCRIPTION.into()),
        ..Default::default()
    });
    env.reset("r", "phone", json!({})).await;
    env.reason_is("r", Reason::PasscodeCleared).await;
    let text = env.metrics().await;
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("manifests/monitoring/dashboard.json")).unwrap(),
    )
    .unwrap();
    let mut rules = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"]
                .as_str()
                .unwrap()
                .replace("$__rate_interval", "5m");
            for word in expr.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
                if word.starts_with("passcode_operator_") {
                    assert!(
                        text.lines().any(|l| l.starts_with(word)),
                        "{}: {word} is not in the operator's metrics",
                        panel["title"]
                    );
                }
            }
            rules.push(json!({"record": format!("dashboard:panel{}", rules.len()), "expr": expr}));
        }
    }
    assert!(rules.len() >= 11);
    let file = env.dir.join("dashboard-rules.yaml");
    std::fs::write(
        &file,
        json!({"groups": [{"name": "dashboard", "rules": rules}]}).to_string(),
    )
    .unwrap();
    let out = Command::new(tool("promtool"))
        .args(["check", "rules", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn each_alert_fires_on_the_operators_real_metrics() {
    let rules = rules();
    // A healthy operator: a reset that succeeds.
    let started = Instant::now();
    let healthy = Env::new(
        "alerts-healthy",
        POLICY,
        "      - {id: phone, syncDelay: 50ms}\n",
    )
    .await;
    healthy.reset("r", "phone", json!({})).await;
    healthy.reason_is("r", Reason::PasscodeCleared).await;
    let calm = scrape(&healthy, started).await;

    // An operator in trouble: an OutcomeUnknown (claimed, killed before sending, restarted), a
    // reset for an enterprise its identity cannot reach (403), issueCommand throttled (429), a
    // reset still Pending past its command's expiry (its operation unreadable), a subscription
    // that does not exist.
    let devices = "      - {id: phone, syncDelay: 50ms}\n      - {id: away, online: false}\n      - {id: t, syncDelay: 50ms}\n";
    let mut env = Env::killed_at("alerts-trouble", POLICY, devices, "before-issue").await;
    let real = env.enterprise.clone();
    let other = format!("Nope{}", env.ns.replace('-', ""));
    env.enterprise = format!("{real},{other}");
    let started = Instant::now();
    env.start_operator(OperatorOptions {
        pubsub_subscription: Some("projects/sim-project/subscriptions/missing".into()),
        ..Default::default()
    });
    env.enterprise = real;
    env.reset("late", "away", json!({"expiresAfter": "60s"}))
        .await;
    env.issued("late").await;
    let denied: passcode_operator::api::PasscodeReset = serde_json::from_value(json!({
        "apiVersion": "amapi.passcode-operator.io/v1alpha1", "kind": "PasscodeReset",
        "metadata": {"name": "denied"},
        "spec": {"device": format!("enterprises/{other}/devices/phone")},
    }))
    .unwrap();
    env.resets()
        .create(&Default::default(), &denied)
        .await
        .unwrap();
    env.sim_send(
        reqwest::Method::PUT,
        "faults",
        json!({"throttleRate": 1.0, "methods": ["devices.issueCommand"]}),
    )
    .await;
    env.reset("throttled", "t", json!({})).await;
    env.reason_is("r", Reason::OutcomeUnknown).await;
    env.reason_is("denied", Reason::PermissionDenied).await;
    metrics_until(&env, "429s, a failed pull", Duration::from_secs(60), |m| {
        m.contains("outcome=\"quota\"")
            && !m.contains("passcode_operator_notifications_total{outcome=\"pull_error\"} 0")
    })
    .await;
    // The command expires 60 s after it was issued. The operator would end the reset at once
    // (AMAPI reports the expiry) were it able to read the operation: make it unable to.
    env.sim_send(
        reqwest::Method::PUT,
        "faults",
        json!({"errorRate": 1.0, "methods": ["operations.get", "operations.list", "operations.cancel"]}),
    )
    .await;
    metrics_until(
        &env,
        "a reset past its expiry",
        Duration::from_secs(90),
        |m| m.contains("passcode_operator_resets_past_expiry 1"),
    )
    .await;
    let trouble = scrape(&env, started).await;
    let denied_series: Vec<String> = trouble
        .samples
        .iter()
        .filter(|(s, _, v)| s.contains("outcome=\"denied\"") && *v > 0.0)
        .map(|(s, _, _)| s.clone())
        .collect();
    assert!(!denied_series.is_empty(), "{:?}", trouble.samples);
    let denied_methods: Vec<&str> = denied_series
        .iter()
        .map(|s| {
            s.split("method=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap()
        })
        .collect();

    // A starved rate limiter: one call a second for many resets at once.
    let phones: String = (0..6)
        .map(|i| format!("      - {{id: p{i}, syncDelay: 50ms}}\n"))
        .collect();
    let started = Instant::now();
    let slow = Env::with(
        "alerts-rate",
        POLICY,
        &phones,
        OperatorOptions {
            flags: vec![("amapi-rate", "1".into())],
            ..Default::default()
        },
    )
    .await;
    for i in 0..6 {
        slow.reset(&format!("r{i}"), &format!("p{i}"), json!({}))
            .await;
    }
    let waited = |m: &str| {
        m.lines()
            .find(|l| l.starts_with("passcode_operator_amapi_rate_limit_wait_seconds_total "))
            .and_then(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    metrics_until(
        &slow,
        "waits for the rate limiter",
        Duration::from_secs(60),
        |m| waited(m) > started.elapsed().as_secs_f64(),
    )
    .await;
    let starved = scrape(&slow, started).await;

    let f = |name: &str, labels: &[(&str, &str)]| firing(&rules, name, labels);
    let denied_firing: Vec<Value> = denied_methods
        .iter()
        .map(|m| f("PasscodeOperatorAmapiDenied", &[("method", m)]))
        .collect();
    let mut groups = vec![
        group(
            &rules,
            "healthy, going on",
            calm.continued(),
            vec![(60, vec![])],
        ),
        group(
            &rules,
            "trouble, going on",
            trouble.continued(),
            vec![(
                60,
                vec![
                    (
                        "PasscodeResetPastExpiry",
                        vec![f("PasscodeResetPastExpiry", &[])],
                    ),
                    (
                        "PasscodeResetOutcomeUnknown",
                        vec![f("PasscodeResetOutcomeUnknown", &[])],
                    ),
                    ("PasscodeOperatorAmapiDenied", denied_firing.clone()),
                    (
                        "PasscodeOperatorAmapiQuotaExhausted",
                        vec![f("PasscodeOperatorAmapiQuotaExhausted", &[])],
                    ),
                    (
                        "PasscodeOperatorNotificationsFailing",
                        vec![f(
                            "PasscodeOperatorNotificationsFailing",
                            &[("outcome", "pull_error")],
                        )],
                    ),
                ],
            )],
        ),
        // The same trouble once: the one-off events alert at once, the lasting conditions only
        // after their `for`, and the past-expiry gauge (a state) once it has lasted 15 minutes.
        group(
            &rules,
            "trouble, once",
            trouble.once(),
            vec![
                (
                    31,
                    vec![
                        (
                            "PasscodeResetOutcomeUnknown",
                            vec![f("PasscodeResetOutcomeUnknown", &[])],
                        ),
                        ("PasscodeOperatorAmapiDenied", denied_firing),
                    ],
                ),
                (
                    50,
                    vec![
                        (
                            "PasscodeResetPastExpiry",
                            vec![f("PasscodeResetPastExpiry", &[])],
                        ),
                        (
                            "PasscodeResetOutcomeUnknown",
                            vec![f("PasscodeResetOutcomeUnknown", &[])],
                        ),
                    ],
                ),
            ],
        ),
        group(
            &rules,
            "rate limiter starved, going on",
            starved.continued(),
            vec![(
                60,
                vec![(
                    "PasscodeOperatorRateLimited",
                    vec![f("PasscodeOperatorRateLimited", &[])],
                )],
            )],
        ),
    ];

    // What cannot be provoked cheaply, on the healthy scrape's real series: the token failures
    // (credentials that cannot work stop the operator at start), Kubernetes errors, a broken
    // invariant, the leader gone or doubled, nothing scraped.
    assert!(
        calm.samples
            .iter()
            .any(|(s, _, _)| s.starts_with("passcode_operator_amapi_calls_total{"))
    );
    let mut auth = calm.continued();
    auth.push((
        "passcode_operator_amapi_calls_total{method=\"devices.get\",outcome=\"auth\"}".into(),
        format!("0+1x{EVERY_MINUTES}"),
    ));
    let mut kube = calm.continued();
    replace(
        &mut kube,
        "passcode_operator_reconcile_errors_total{kind=\"kubernetes\"}",
        "0+10x90",
    );
    let mut invariant = calm.continued();
    replace(
        &mut invariant,
        "passcode_operator_reconcile_errors_total{kind=\"invariant\"}",
        "0+0x29 1+0x60",
    );
    let mut no_leader = calm.continued();
    assert_eq!(calm.value("passcode_operator_leader"), 1.0);
    replace(&mut no_leader, "passcode_operator_leader", "0+0x90");
    let two_leaders: Vec<(String, String)> = ["a", "b"]
        .iter()
        .flat_map(|i| {
            calm.continued().into_iter().map(move |(s, v)| {
                let labelled = match s.split_once('{') {
                    Some((n, rest)) => format!("{n}{{instance=\"{i}\",{rest}"),
                    None => format!("{s}{{instance=\"{i}\"}}"),
                };
                (labelled, v)
            })
        })
        .collect();
    groups.extend([
        group(
            &rules,
            "tokens refused",
            auth,
            vec![(
                60,
                vec![(
                    "PasscodeOperatorAmapiAuthFailing",
                    vec![f("PasscodeOperatorAmapiAuthFailing", &[])],
                )],
            )],
        ),
        group(
            &rules,
            "kubernetes errors",
            kube,
            vec![(
                60,
                vec![(
                    "PasscodeOperatorReconcileErrors",
                    vec![f(
                        "PasscodeOperatorReconcileErrors",
                        &[("kind", "kubernetes")],
                    )],
                )],
            )],
        ),
        group(
            &rules,
            "an invariant broken",
            invariant,
            vec![(
                31,
                vec![(
                    "PasscodeOperatorInvariantBroken",
                    vec![f("PasscodeOperatorInvariantBroken", &[])],
                )],
            )],
        ),
        group(
            &rules,
            "no leader",
            no_leader,
            vec![(
                60,
                vec![(
                    "PasscodeOperatorNoLeader",
                    vec![f("PasscodeOperatorNoLeader", &[])],
                )],
            )],
        ),
        group(
            &rules,
            "two leaders",
            two_leaders,
            vec![(
                60,
                vec![(
                    "PasscodeOperatorTwoLeaders",
                    vec![f("PasscodeOperatorTwoLeaders", &[])],
                )],
            )],
        ),
        group(
            &rules,
            "nothing scraped",
            vec![("up{job=\"passcode-operator\"}".into(), "0+0x90".into())],
            vec![(
                60,
                vec![(
                    "PasscodeOperatorNoLeader",
                    vec![f("PasscodeOperatorNoLeader", &[])],
                )],
            )],
        ),
    ]);
    promtool_test(&env.dir, groups);
}
