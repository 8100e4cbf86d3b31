//! `passcode-operator run` refuses to start, clearly and without a panic, when its configuration
//! cannot work.

use std::process::Command;

fn run(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_passcode-operator"))
        .arg("run")
        .args(["--log-format", "text", "--listen", "127.0.0.1:0"])
        .args(args)
        .env_remove("KUBECONFIG")
        .env_remove("AMAPI_CREDENTIALS")
        .env_remove("GOOGLE_APPLICATION_CREDENTIALS")
        // Nothing listens there: no metadata server.
        .env("GCE_METADATA_HOST", "127.0.0.1:9")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn missing_or_unreadable_credentials_are_a_clear_startup_error() {
    let dir = std::env::temp_dir().join(format!("run-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let not_json = dir.join("not-json.json");
    std::fs::write(&not_json, "this is not a key").unwrap();
    let user = dir.join("user.json");
    std::fs::write(&user, r#"{"type": "authorized_user"}"#).unwrap();
    let not_a_key = dir.join("not-a-key.json");
    std::fs::write(&not_a_key, r#"{"type": "service_account"}"#).unwrap();
    let no_token_file = dir.join("wif.json");
    std::fs::write(
        &no_token_file,
        r#"{"type": "external_account", "audience": "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/k",
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt", "token_url": "http://127.0.0.1:9/v1/token",
            "credential_source": {"file": "/nonexistent/token"}}"#,
    )
    .unwrap();
    let cases = [
        (dir.join("absent.json"), "cannot read credentials file"),
        (dir.clone(), "cannot read credentials file"),
        (not_json, "is not a Google credentials file: not JSON"),
        (
            user,
            r#"has type "authorized_user"; the operator takes service_account"#,
        ),
        (
            not_a_key,
            "is not a Google service-account key (missing field",
        ),
        (
            no_token_file,
            "cannot read the subject token file /nonexistent/token (credential_source.file of",
        ),
    ];
    for (path, expected) in cases {
        let (code, stderr) = run(&["--credentials", path.to_str().unwrap()]);
        assert_eq!(code, Some(1), "{}: {stderr}", path.display());
        assert!(
            stderr.contains(expected) && stderr.contains(path.to_str().unwrap()),
            "{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn no_credentials_file_and_no_metadata_server_is_a_clear_startup_error() {
    let (code, stderr) = run(&[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("no credentials file was given")
            && stderr.contains("no metadata server at http://127.0.0.1:9/"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn bad_flags_are_usage_errors() {
    for args in [
        &["--credentials", "x", "--amapi-rate", "fast"][..],
        &["--credentials", "x", "--policy-resync", "soon"],
        &["--credentials", "x", "--log-format", "xml"],
        &["--concurrency", "many"],
    ] {
        let (code, stderr) = run(args);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"));
    }
    let (code, stderr) = run(&["--credentials", "x", "--adoption-window", "1s"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("at least 3s"), "{stderr}");
    let (code, stderr) = run(&["--credentials", "x", "--log-level", "[[["]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("invalid log level"), "{stderr}");
}

/// `--log-format text` writes colour codes only to a terminal: a pipe or a file gets plain text.
#[test]
fn text_logs_into_a_pipe_have_no_colour_codes() {
    let (code, stderr) = run(&["--credentials", "/nonexistent/key.json"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("ERROR"), "the error is logged: {stderr}");
    assert!(
        !stderr.contains('\u{1b}'),
        "escape codes in a pipe: {stderr:?}"
    );
}
