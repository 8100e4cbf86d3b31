//! The operator binary as a child process: `passcode-operator run` against a control plane and a
//! simulator, JSON logs to a file, killed on drop (and, under util-linux's `setpriv`, also when
//! the process that started it dies without running any Drop).

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const SETPRIV: &str = "/usr/bin/setpriv";

/// The operator binary Cargo built for this test or benchmark: Cargo names it in
/// `CARGO_BIN_EXE_passcode-operator` when it runs one; else (the executable started by hand) it
/// lies beside the `deps/` directory holding this executable.
pub fn operator_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("CARGO_BIN_EXE_passcode-operator") {
        return path.into();
    }
    let exe = std::env::current_exe().expect("the current executable");
    let path = exe
        .parent()
        .and_then(Path::parent)
        .expect("the executable lies in target/<profile>/deps")
        .join("passcode-operator");
    assert!(
        path.exists(),
        "no operator binary at {}; build it with cargo build",
        path.display()
    );
    path
}

/// A loopback address with a free port.
pub fn free_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("free port");
    l.local_addr().unwrap()
}

/// What one `passcode-operator run` is given.
pub struct Launch<'a> {
    pub kubeconfig: &'a Path,
    /// `--credentials`; `None`: no file (the metadata server, found through `env`).
    pub credentials: Option<&'a Path>,
    pub amapi_base_url: &'a str,
    pub enterprise: &'a str,
    pub namespace: &'a str,
    /// Its stdout and stderr.
    pub log: PathBuf,
    /// Further flags, `--name value` each.
    pub flags: Vec<(&'a str, String)>,
    /// Environment variables, such as `GCE_METADATA_HOST`.
    pub env: Vec<(&'a str, String)>,
    /// `PASSCODE_OPERATOR_FAILPOINT`.
    pub failpoint: Option<&'a str>,
}

pub struct Operator {
    child: Child,
    pub started: Instant,
    pub listen: SocketAddr,
    pub log: PathBuf,
    http: reqwest::Client,
}

impl Operator {
    /// Starts the operator, listening on a free port for its metrics and probes.
    pub fn spawn(launch: Launch) -> Operator {
        let listen = free_port();
        let file = std::fs::File::create(&launch.log).expect("operator log");
        let binary = operator_binary();
        // Under setpriv the operator gets SIGKILL when the thread that started it ends, also when
        // this process is killed outright; setpriv execs it, so the PID is the operator's.
        let mut cmd = if Path::new(SETPRIV).exists() {
            let mut c = Command::new(SETPRIV);
            c.args(["--pdeathsig", "KILL", "--"]).arg(&binary);
            c
        } else {
            Command::new(&binary)
        };
        cmd.arg("run")
            .arg("--kubeconfig")
            .arg(launch.kubeconfig)
            .args(["--amapi-base-url", launch.amapi_base_url])
            .args(["--enterprises", launch.enterprise])
            .args(["--namespace", launch.namespace])
            .args(["--listen", &listen.to_string()])
            .args(["--log-format", "json"])
            .env_remove("KUBECONFIG")
            .env_remove("PASSCODE_OPERATOR_FAILPOINT")
            .env_remove("AMAPI_CREDENTIALS")
            .env_remove("GOOGLE_APPLICATION_CREDENTIALS")
            .env_remove("GCE_METADATA_HOST")
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file);
        if let Some(credentials) = launch.credentials {
            cmd.arg("--credentials").arg(credentials);
        }
        for (name, value) in &launch.env {
            cmd.env(name, value);
        }
        for (name, value) in &launch.flags {
            cmd.arg(format!("--{name}")).arg(value);
        }
        if let Some(fp) = launch.failpoint {
            cmd.env("PASSCODE_OPERATOR_FAILPOINT", fp);
        }
        let started = Instant::now();
        let child = cmd.spawn().expect("start the operator");
        Operator {
            child,
            started,
            listen,
            log: launch.log,
            http: reqwest::Client::new(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: no cleanup, like a node failure.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Waits for the process to end by itself (a failpoint), up to `deadline`. Async: a
    /// simulator serving from the caller's runtime must keep answering meanwhile.
    pub async fn wait_exit(&mut self, deadline: Duration) -> ExitStatus {
        let until = Instant::now() + deadline;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < until,
                "operator did not exit; log:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Polls `/readyz` every 10 ms; returns the time from spawning the process to the first 200.
    pub async fn wait_ready(&mut self, within: Duration) -> Duration {
        let until = Instant::now() + within;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "the operator exited ({status}); log {}:\n{}",
                    self.log.display(),
                    self.tail(30)
                );
            }
            let ok = self
                .http
                .get(format!("http://{}/readyz", self.listen))
                .timeout(Duration::from_secs(1))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ok {
                return self.started.elapsed();
            }
            assert!(
                Instant::now() < until,
                "the operator was not ready within {within:?}; log:\n{}",
                self.tail(30)
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The whole log so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The log's last `n` lines.
    pub fn tail(&self, n: usize) -> String {
        let text = self.logs();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// The operator's /metrics text, or nothing when it does not answer.
    pub async fn metrics(&self) -> String {
        match self
            .http
            .get(format!("http://{}/metrics", self.listen))
            .timeout(Duration::from_secs(5))
            .send()
            .await
        {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.kill();
    }
}
