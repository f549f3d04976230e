//! `create` through the CLI where berth goes beyond runc: configs it refuses with an error that
//! names the cause (runc accepts them or fails obscurely), and the sealed binary its container
//! processes run from (CVE-2019-5736).

use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use berth::sealed_exe::{seal_of, Seal};
use serde_json::{json, Value};

const BERTH: &str = env!("CARGO_BIN_EXE_berth");

/// A busybox bundle under /tmp with berth's default config (no terminal), its own state root
/// and cgroup; everything is removed on drop.
struct Bundle {
    dir: PathBuf,
    id: String,
    root: PathBuf,
    binary: PathBuf,
}

impl Bundle {
    fn new(name: &str, edit: impl FnOnce(&mut Value)) -> Bundle {
        let id = format!("create-{name}-{}", std::process::id());
        let dir = std::env::temp_dir().join(format!("berth-{id}"));
        let _ = std::fs::remove_dir_all(&dir);
        let bin = dir.join("rootfs/bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::copy("/bin/busybox", bin.join("busybox")).unwrap();
        std::os::unix::fs::symlink("busybox", bin.join("sleep")).unwrap();
        let mut spec = berth::spec::example(false);
        spec["process"]["terminal"] = false.into();
        spec["process"]["args"] = json!(["sleep", "60"]);
        spec["linux"]["cgroupsPath"] = format!("/berth-test/{id}").into();
        edit(&mut spec);
        std::fs::write(dir.join("config.json"), spec.to_string()).unwrap();
        let root = dir.join("state");
        let binary = PathBuf::from(BERTH);
        Bundle {
            dir,
            id,
            root,
            binary,
        }
    }

    /// `berth ARGS`: success, stdout, stderr. Output goes through files: a created init
    /// inherits them and would hold pipes open.
    fn berth(&self, args: &[&str]) -> (bool, String, String) {
        let (out, err) = (self.dir.join("out"), self.dir.join("err"));
        let ok = Command::new(&self.binary)
            .arg("--root")
            .arg(&self.root)
            .args(args)
            .stdin(Stdio::null())
            .stdout(File::create(&out).unwrap())
            .stderr(File::create(&err).unwrap())
            .status()
            .expect("run berth")
            .success();
        let read = |p| std::fs::read_to_string(p).unwrap_or_default();
        (ok, read(&out), read(&err))
    }

    fn create(&self) -> (bool, String, String) {
        self.berth(&["create", "--bundle", self.dir.to_str().unwrap(), &self.id])
    }

    /// `create` must fail and its error must say `words`.
    fn create_fails_saying(&self, words: &str) {
        let (ok, _, err) = self.create();
        assert!(!ok, "create succeeded");
        assert!(err.contains(words), "{words:?} not in: {err}");
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        let _ = self.berth(&["delete", "--force", &self.id]);
        let _ = std::fs::remove_dir_all(&self.dir);
        for h in std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            let _ = std::fs::remove_dir(h.path().join("berth-test").join(&self.id));
        }
    }
}

#[test]
fn empty_root_path_is_refused() {
    let b = Bundle::new("empty-root", |s| s["root"]["path"] = json!(""));
    b.create_fails_saying("root.path: must not be empty");
}

#[test]
fn mount_at_root_is_refused() {
    let b = Bundle::new("mount-root", |s| {
        let m = json!({ "destination": "/", "type": "tmpfs", "source": "tmpfs" });
        s["mounts"].as_array_mut().unwrap().push(m);
    });
    b.create_fails_saying("would cover the whole rootfs");
}

/// The init is OOM-killed as soon as it is charged to a cgroup of one page: the error says so.
#[test]
fn init_killed_by_a_tiny_memory_limit_is_explained() {
    let b = Bundle::new("oom", |s| {
        s["linux"]["resources"]["memory"] = json!({ "limit": 1 });
    });
    b.create_fails_saying("container init was OOM-killed");
}

/// runc drops a class id it has no net_cls hierarchy for; berth refuses it.
#[test]
fn class_id_without_net_cls_is_refused() {
    if Path::new("/sys/fs/cgroup/net_cls").exists() {
        eprintln!("skipped: this host has a net_cls hierarchy");
        return;
    }
    let b = Bundle::new("classid", |s| {
        s["linux"]["resources"]["network"] = json!({ "classID": 1048577 });
    });
    b.create_fails_saying("linux.resources.network.classID");
}

/// The created init (still the runtime, waiting for `start`) runs from a sealed copy of berth:
/// through an overlayfs, or a memfd when the state root lies in the binary's own directory
/// (overlayfs refuses overlapping layers; a copy of berth's binary here, as its own directory
/// may be read-only): read-only, or sealed against writes.
#[test]
fn container_processes_run_from_a_sealed_binary() {
    for (name, memfd) in [("seal-overlay", false), ("seal-memfd", true)] {
        let mut b = Bundle::new(name, |_| {});
        if memfd {
            let copy = b.dir.join("bin/berth");
            std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
            std::fs::copy(BERTH, &copy).unwrap();
            b.root = b.dir.join("bin/state");
            b.binary = copy;
        }
        let (ok, _, err) = b.create();
        assert!(ok, "{err}");
        let state: Value = serde_json::from_str(&b.berth(&["state", &b.id]).1).unwrap();
        let exe = format!("/proc/{}/exe", state["pid"]);
        let fd: OwnedFd = std::fs::File::open(&exe).unwrap().into();
        let want = if memfd { Seal::Memfd } else { Seal::Overlay };
        assert_eq!(seal_of(&fd), Some(want), "{name}");
    }
}
