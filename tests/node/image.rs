//! The image `hack/image` builds without Docker: what the Dockerfile says (user, entrypoint,
//! command, environment, the same rootfs script), small, no shell or build tools, reproducible.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::Value;
use testkit::node::{build_image, image};
use testkit::repo;

/// An unpacked OCI archive: its image config and the paths in its layers.
struct Unpacked {
    manifest_digest: String,
    config: Value,
    files: Vec<String>,
    layer_bytes: u64,
}

fn unpack(archive: &Path) -> Unpacked {
    // One directory per unpacking: the tests run side by side.
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let dir: PathBuf = std::env::temp_dir().join(format!(
        "passcode-operator-image-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let tar = |args: &[&str]| {
        let out = Command::new("tar").args(args).output().expect("run tar");
        assert!(out.status.success(), "tar {args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    tar(&[
        "-xf",
        archive.to_str().unwrap(),
        "-C",
        dir.to_str().unwrap(),
    ]);
    let blob = |digest: &str| {
        dir.join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
    };
    let json =
        |path: PathBuf| -> Value { serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap() };
    let index = json(dir.join("index.json"));
    let manifest_digest = index["manifests"][0]["digest"].as_str().unwrap().to_owned();
    let manifest = json(blob(&manifest_digest));
    let config = json(blob(manifest["config"]["digest"].as_str().unwrap()));
    let mut files = Vec::new();
    let mut layer_bytes = 0;
    for layer in manifest["layers"].as_array().unwrap() {
        layer_bytes += layer["size"].as_u64().unwrap();
        let path = blob(layer["digest"].as_str().unwrap());
        files.extend(
            tar(&["-tf", path.to_str().unwrap()])
                .lines()
                .map(|l| l.trim_start_matches("./").trim_end_matches('/').to_owned()),
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
    Unpacked {
        manifest_digest,
        config,
        files,
        layer_bytes,
    }
}

/// The arguments of instruction `key` in the Dockerfile's last stage.
fn dockerfile(key: &str) -> Vec<String> {
    let text = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    let last = text.rsplit("\nFROM ").next().unwrap();
    last.lines()
        .filter_map(|l| l.strip_prefix(&format!("{key} ")))
        .map(|v| v.trim().to_owned())
        .collect()
}

#[test]
fn the_image_is_what_the_dockerfile_says() {
    let image = unpack(image());
    let c = &image.config["config"];
    assert_eq!(c["User"].as_str(), Some(dockerfile("USER")[0].as_str()));
    assert_eq!(c["User"], "65532:65532", "non-root");
    let exec = |key: &str| -> Value { serde_json::from_str(&dockerfile(key)[0]).unwrap() };
    assert_eq!(c["Entrypoint"], exec("ENTRYPOINT"));
    assert_eq!(c["Cmd"], exec("CMD"));
    let env: Vec<&str> = c["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for e in dockerfile("ENV") {
        assert!(env.contains(&e.as_str()), "ENV {e} in {env:?}");
    }
    // Both build the rootfs with the same script.
    let text = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    assert!(text.contains(
        "hack/image rootfs /rootfs target/release/passcode-operator target/release/kubectl-passcode"
    ));
    assert!(text.contains("FROM scratch\nCOPY --from=build /rootfs/ /\n"));

    for wanted in [
        "usr/local/bin/passcode-operator",
        "usr/local/bin/kubectl-passcode",
        "etc/ssl/certs/ca-certificates.crt",
        "etc/passwd",
        "usr/lib/x86_64-linux-gnu/libc.so.6",
    ] {
        assert!(
            image.files.iter().any(|f| f == wanted),
            "{wanted} in the image: {:?}",
            image.files
        );
    }
    // No shell, no package manager, no build tools: every executable is ours or the loader.
    for f in &image.files {
        let name = f.rsplit('/').next().unwrap();
        assert!(
            ![
                "sh", "bash", "dash", "busybox", "apt", "apt-get", "dpkg", "cargo", "rustc", "gcc",
                "cc", "ld"
            ]
            .contains(&name),
            "{f} in the image"
        );
        assert!(
            !f.starts_with("usr/bin/") && !f.starts_with("bin/"),
            "{f} in the image"
        );
    }
    assert!(
        image.files.len() < 60,
        "a handful of files, not a distribution: {:?}",
        image.files
    );
    let mib = image.layer_bytes as f64 / 1048576.0;
    eprintln!("image: {} files, layers {mib:.1} MiB", image.files.len());
    assert!(mib < 40.0, "small: {mib:.1} MiB");
}

#[test]
fn the_image_is_reproducible() {
    let first = unpack(image());
    let again = repo().join("target/image/passcode-operator-again.tar");
    build_image(&again);
    let second = unpack(&again);
    std::fs::remove_file(&again).unwrap();
    assert_eq!(
        first.manifest_digest, second.manifest_digest,
        "two builds of one tree give one image"
    );
}
