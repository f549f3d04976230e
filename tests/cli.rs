//! The CLI surface that needs no container: man pages, completions, features, spec.

use std::process::Command;

fn berth(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(args)
        .output()
        .expect("run berth")
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("berth-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn man_pages_for_every_command() {
    let dir = temp_dir("man");
    assert!(berth(&["man", dir.to_str().unwrap()]).status.success());
    for page in [
        "berth",
        "berth-create",
        "berth-run",
        "berth-exec",
        "berth-kill",
        "berth-delete",
        "berth-features",
        "berth-events",
        "berth-update",
    ] {
        let text = std::fs::read_to_string(dir.join(format!("{page}.8")))
            .unwrap_or_else(|e| panic!("{page}.8: {e}"));
        assert!(text.contains(".TH"), "{page}.8 is not a man page");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn completions_name_the_commands() {
    for shell in ["bash", "zsh", "fish"] {
        let out = berth(&["completion", shell]);
        assert!(out.status.success(), "{shell}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("exec") && text.contains("delete"),
            "{shell} completion lacks commands"
        );
    }
}

#[test]
fn spec_writes_a_config_berth_accepts() {
    let dir = temp_dir("spec");
    std::fs::create_dir_all(&dir).unwrap();
    assert!(berth(&["spec", "--bundle", dir.to_str().unwrap()])
        .status
        .success());
    let text = std::fs::read(dir.join("config.json")).unwrap();
    let spec: oci_spec::runtime::Spec = serde_json::from_slice(&text).expect("config.json parses");
    berth::spec::validate(&spec).expect("berth's own default config is valid");
    // A second spec must not overwrite it.
    assert!(!berth(&["spec", "--bundle", dir.to_str().unwrap()])
        .status
        .success());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn features_is_valid_json_with_versions() {
    let out = berth(&["features"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("features is json");
    assert_eq!(v["ociVersionMax"], berth::state::OCI_VERSION);
    assert!(v["mountOptions"]
        .as_array()
        .is_some_and(|o| o.iter().any(|x| x == "rbind")));
}

/// Docker reads `--version` as runc's: "NAME version X" and "spec: Y" lines.
#[test]
fn version_reads_like_runcs() {
    let out = berth(&["--version"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some(format!("berth version {}", env!("CARGO_PKG_VERSION")).as_str()),
        "{text}"
    );
    assert_eq!(
        lines.next(),
        Some(format!("spec: {}", berth::state::OCI_VERSION).as_str()),
        "{text}"
    );
}
