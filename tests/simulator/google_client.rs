//! Google's own Python client against the simulator.

use std::io::Write;
use std::process::{Command, Stdio};

use reqwest::Method;
use testkit::discovery;

use crate::{GOOD_PIN, PIXEL, sim};

fn venv_python() -> std::path::PathBuf {
    let python = discovery::cache_dir().join("venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run hack/discovery (or make discovery)",
        python.display()
    );
    python
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn googles_python_client_resets_a_passcode() {
    let s = sim().await;
    let python = venv_python();
    let dir = std::env::temp_dir().join(format!("sim-python-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key_path = dir.join("sa.json");
    std::fs::write(&key_path, s.sim.credentials_json()).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/google_client.py");
    let base = s.base.clone();
    let key = key_path.clone();
    let output = tokio::task::spawn_blocking(move || {
        let mut child = Command::new(python)
            .arg(script)
            .args(["--credentials".as_ref(), key.as_os_str()])
            .args(["--base-url", &base, "--device", PIXEL])
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run the venv's python");
        // The passcode goes in on stdin, never as an argument.
        child
            .stdin
            .take()
            .unwrap()
            .write_all(GOOD_PIN.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "google_client.py failed:\n{text}");
    assert!(text.contains("SUCCEEDED"), "{text}");
    assert!(
        !text.contains(GOOD_PIN),
        "the script never prints the passcode"
    );
    let commands = s.admin(Method::GET, "commands", None).await.body;
    let devices = commands["devices"].as_object().unwrap();
    assert_eq!(devices.len(), 1);
    assert_eq!(
        devices[PIXEL].as_array().unwrap().len(),
        1,
        "exactly one command"
    );
    assert_eq!(devices[PIXEL][0]["state"], "SUCCEEDED");
    let counters = s.counters().await;
    assert_eq!(counters["tokens"], 1);
    assert_eq!(counters["methods"]["devices.issueCommand"], 1);
}
