//! `passcode-operator check` as a user runs it: the passcode on stdin, exit codes 0/1/2, text and
//! JSON output, and the passcode never echoed back.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn check(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_passcode-operator"))
        .arg("check")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn passcode-operator");
    // A usage error exits before reading stdin; the closed pipe is then expected, not a failure.
    match child.stdin.take().unwrap().write_all(stdin) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => panic!("write stdin: {e}"),
        _ => {}
    }
    child.wait_with_output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

const POLICY: &[&str] = &[
    "--requirements",
    "examples/policy.yaml",
    "--api-level",
    "34",
];

#[test]
fn short_sequential_pin_fails_and_names_each_unmet_requirement() {
    let out = check(POLICY, b"1234");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report = text(&out);
    assert!(report.contains("✗ at least 6 characters"), "{report}");
    assert!(
        report.contains("✗ no repeating or ordered sequence of more than 3"),
        "{report}"
    );
    assert!(report.contains("does not meet 2 requirements"), "{report}");
}

#[test]
fn good_pin_passes_and_json_has_the_documented_shape() {
    let out = check(&[POLICY, &["--output", "json"]].concat(), b"830417\n");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["passes"], true);
    let metrics = v["metrics"].as_object().unwrap();
    let mut keys: Vec<&str> = metrics.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "complexity",
            "credentialType",
            "invalidCharacters",
            "length",
            "letters",
            "lowerCase",
            "maxLengthSequence",
            "nonLetter",
            "nonNumeric",
            "numeric",
            "symbols",
            "upperCase"
        ]
    );
    assert_eq!(
        v["metrics"]["length"], 6,
        "one trailing newline is stripped"
    );
    assert_eq!(v["metrics"]["credentialType"], "PIN");
    for r in v["requirements"].as_array().unwrap() {
        assert!(r["rule"].is_string() && r["description"].is_string() && r["met"] == true);
    }
}

#[test]
fn android_14_needs_six_digits_without_any_policy() {
    let out = check(&["--api-level", "34"], b"2580");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains('✗'));
    let out = check(&["--api-level", "33"], b"2580");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn bare_requirements_mapping_is_accepted() {
    let dir = std::env::temp_dir().join(format!("check-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("req.yaml");
    std::fs::write(
        &file,
        "quality: COMPLEX\nminimumLength: 8\nminimumSymbols: 2\n",
    )
    .unwrap();
    let f = file.to_str().unwrap();
    assert_eq!(
        check(&["--requirements", f], b"Tr0ub4dor&3!").status.code(),
        Some(0)
    );
    let weak = check(&["--requirements", f], b"Troubador3");
    assert_eq!(weak.status.code(), Some(1));
    assert!(
        text(&weak).contains("✗ at least 2 symbols"),
        "{}",
        text(&weak)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn usage_and_input_errors_exit_2_with_a_clear_message() {
    let cases: &[(&[&str], &[u8], &str)] = &[
        (
            &["--requirements", "/nonexistent.yaml"],
            b"1234",
            "cannot read requirements file",
        ),
        (&[], b"", "empty"),
        (&[], b"\n", "empty"),
        (&[], &[0xff, 0xfe, 0x41], "not valid UTF-8"),
        (&["--output", "xml"], b"1234", "invalid value"),
        (&["--api-level", "zero"], b"1234", "invalid value"),
        (
            &["--requirements", "manifests/serviceaccount.yaml"],
            b"1234",
            "not a WorkProfilePasscodePolicy",
        ),
    ];
    for (args, stdin, expected) in cases {
        let out = check(args, stdin);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(text(&out).contains(expected), "{args:?}: {}", text(&out));
    }
}

#[test]
fn the_passcode_never_appears_in_any_output() {
    const CANARY: &str = "Zq7#canary!Xw";
    for args in [&["--output", "json"][..], &["--output", "text"], &[]] {
        for input in [
            CANARY.as_bytes().to_vec(),
            format!("{CANARY}é").into_bytes(),
        ] {
            let out = check(args, &input);
            let all = text(&out);
            assert!(!all.contains(CANARY) && !all.contains("canary"), "{all}");
        }
    }
    // Invalid UTF-8 around the canary: the error must not quote the bytes either.
    let mut input = CANARY.as_bytes().to_vec();
    input.push(0xff);
    let out = check(&[], &input);
    assert_eq!(out.status.code(), Some(2));
    assert!(!text(&out).contains("canary"), "{}", text(&out));
}

/// The README documents every checklist rule the engine can emit.
#[test]
fn readme_documents_every_rule() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    for (rule, _) in passcode_operator::passcode::RULES {
        assert!(
            readme.contains(&format!("| `{rule}` |")),
            "README lacks rule {rule}"
        );
    }
}
