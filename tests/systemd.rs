//! The systemd cgroup driver (`--systemd-cgroup`) end to end. Without systemd as init (our
//! hosts) only the clear refusal is tested; on a host that runs systemd (the systemd VM,
//! `make vm-test-systemd`) a container's scope in a nested slice: its properties, update,
//! pause, exec, delete, and that neither delete nor a failed create leaves a unit behind.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{json, Value};

const BERTH: &str = env!("CARGO_BIN_EXE_berth");
const SLICE: &str = "berth_test-nested.slice";

fn systemd_running() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

/// berth with the systemd driver; its output goes through files, not pipes: a container that
/// `create` leaves running inherits them and would keep a pipe open.
fn berth(root: &Path, args: &[&str]) -> Output {
    std::fs::create_dir_all(root).unwrap();
    let (out, err) = (root.join("berth.out"), root.join("berth.err"));
    let status = Command::new(BERTH)
        .arg("--root")
        .arg(root)
        .arg("--systemd-cgroup")
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .status()
        .expect("run berth");
    Output {
        status,
        stdout: std::fs::read(&out).unwrap(),
        stderr: std::fs::read(&err).unwrap(),
    }
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "berth failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `systemctl show -P PROPERTY UNIT`.
fn unit_property(unit: &str, property: &str) -> String {
    let out = Command::new("systemctl")
        .args(["show", "-P", property, unit])
        .output()
        .expect("run systemctl");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A busybox bundle in a fresh temp dir whose config `edit` changes; removed on drop.
struct Bundle {
    dir: PathBuf,
}

impl Bundle {
    fn new(name: &str, edit: impl FnOnce(&mut Value)) -> Bundle {
        let dir = std::env::temp_dir().join(format!("berth-systemd-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mkrootfs = concat!(env!("CARGO_MANIFEST_DIR"), "/hack/mkrootfs");
        let made = Command::new(mkrootfs)
            .arg(dir.join("rootfs"))
            .output()
            .unwrap();
        assert!(made.status.success(), "hack/mkrootfs failed");
        let spec = Command::new(BERTH)
            .args(["spec", "--bundle"])
            .arg(&dir)
            .output()
            .unwrap();
        assert!(spec.status.success());
        let path = dir.join("config.json");
        let mut config: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        config["process"]["terminal"] = json!(false);
        config["process"]["args"] = json!(["sleep", "1000"]);
        // The host's cgroup namespace: /proc/self/cgroup then shows the scope's path.
        config["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n["type"] != "cgroup");
        edit(&mut config);
        std::fs::write(&path, serde_json::to_vec(&config).unwrap()).unwrap();
        Bundle { dir }
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn without_systemd_the_driver_is_refused_clearly() {
    if systemd_running() {
        return;
    }
    let b = Bundle::new("refused", |_| {});
    let root = b.dir.join("state");
    let out = berth(
        &root,
        &["run", "--bundle", b.dir.to_str().unwrap(), "refused"],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.trim(),
        "the systemd cgroup driver needs systemd as the host's init, and it is not running (no /run/systemd/system)"
    );
    assert!(!root.join("refused").exists(), "state left behind");
}

#[test]
fn a_scope_per_container_in_a_nested_slice_and_none_left() {
    if !systemd_running() {
        eprintln!("skipped: systemd is not this host's init");
        return;
    }
    let id = format!("sd{}", std::process::id());
    let unit = format!("berth-test-{id}.scope");
    let b = Bundle::new("scope", |c| {
        c["linux"]["cgroupsPath"] = json!(format!("{SLICE}:berth-test:{id}"));
        c["linux"]["resources"]["memory"] = json!({ "limit": 67108864 });
        c["linux"]["resources"]["pids"] = json!({ "limit": 100 });
    });
    let root = b.dir.join("state");
    let bundle = b.dir.to_str().unwrap();
    ok(berth(&root, &["create", "--bundle", bundle, &id]));
    let dir = Path::new("/sys/fs/cgroup/berth_test.slice/berth_test-nested.slice").join(&unit);
    let state: Value = serde_json::from_str(&ok(berth(&root, &["state", &id]))).unwrap();
    let init = state["pid"].as_i64().unwrap();
    let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap();
    assert!(procs.lines().any(|p| p == init.to_string()), "{procs}");
    assert_eq!(unit_property(&unit, "ActiveState"), "active");
    assert_eq!(unit_property(&unit, "Slice"), SLICE);
    assert_eq!(unit_property(&unit, "Delegate"), "yes");
    assert_eq!(unit_property(&unit, "MemoryMax"), "67108864");
    assert_eq!(unit_property(&unit, "TasksMax"), "100");
    let read = |f: &str| {
        std::fs::read_to_string(dir.join(f))
            .unwrap()
            .trim()
            .to_string()
    };
    assert_eq!(read("memory.max"), "67108864");

    ok(berth(&root, &["start", &id]));
    ok(berth(
        &root,
        &["update", "--memory", "128M", "--pids-limit", "50", &id],
    ));
    assert_eq!(unit_property(&unit, "MemoryMax"), "134217728");
    assert_eq!(unit_property(&unit, "TasksMax"), "50");
    assert_eq!(read("memory.max"), "134217728");

    ok(berth(&root, &["pause", &id]));
    assert_eq!(read("cgroup.freeze"), "1");
    ok(berth(&root, &["resume", &id]));
    let cgroup = ok(berth(&root, &["exec", &id, "cat", "/proc/self/cgroup"]));
    assert!(cgroup.trim().ends_with(&format!("/{unit}")), "{cgroup}");

    ok(berth(&root, &["delete", "--force", &id]));
    assert_eq!(unit_property(&unit, "LoadState"), "not-found");
    assert!(!dir.exists(), "{} left behind", dir.display());

    // A create that fails after the unit started (a cgroup file that does not exist is only
    // found out when it is written) leaves no unit either.
    let bad = Bundle::new("bad", |c| {
        c["linux"]["cgroupsPath"] = json!(format!("{SLICE}:berth-test:{id}"));
        c["linux"]["resources"]["unified"] = json!({ "memory.no_such_file": "1" });
    });
    let out = berth(
        &root,
        &["create", "--bundle", bad.dir.to_str().unwrap(), &id],
    );
    assert!(
        !out.status.success(),
        "create with a bad unified key succeeded"
    );
    assert_eq!(unit_property(&unit, "LoadState"), "not-found");
    assert!(!dir.exists(), "{} left behind", dir.display());
    let _ = Command::new("systemctl")
        .args(["stop", SLICE, "berth_test.slice"])
        .status();
}
