//! What the integration tests that run real busybox containers share: [`Ctr`], a bundle with
//! its own state root and a unique absolute cgroupsPath, force-deleted and removed on drop.
//!
//! Every container gets an absolute cgroupsPath `/berth-test/<pid>-<n>-<name>`: without one the
//! cgroup would nest under the test's own cgroups, which belong to whoever runs the tests.
//! The shared `/berth-test` parents go too when nobody else uses them.
// Each test binary uses its own part of this module.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub const BERTH: &str = env!("CARGO_BIN_EXE_berth");
const APPLETS: &[&str] = &[
    "sh", "sleep", "cat", "head", "tr", "echo", "grep", "true", "ls",
];

pub struct Ctr {
    pub id: String,
    pub dir: PathBuf,
    /// The cgroupsPath, e.g. `/berth-test/123-0-mem`.
    pub cgroup: String,
}

impl Ctr {
    /// A bundle running `args`, with `edit` applied to the default config (after the test's
    /// own changes: no terminal, writable root, the unique cgroupsPath).
    pub fn new(name: &str, args: &[&str], edit: impl FnOnce(&mut Value)) -> Ctr {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let unique = format!(
            "{}-{}-{name}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let dir = std::env::temp_dir().join(format!("berth-res-{unique}"));
        let bin = dir.join("bundle/rootfs/bin");
        fs::create_dir_all(&bin).unwrap();
        fs::create_dir_all(dir.join("root")).unwrap();
        fs::create_dir_all(dir.join("bundle/rootfs/tmp")).unwrap();
        fs::copy("/bin/busybox", bin.join("busybox")).unwrap();
        for applet in APPLETS {
            std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
        }
        let ctr = Ctr {
            id: format!("res-{unique}"),
            cgroup: format!("/berth-test/{unique}"),
            dir,
        };
        let out = Command::new(BERTH)
            .args(["spec", "-b"])
            .arg(ctr.bundle())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "spec: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let path = ctr.bundle().join("config.json");
        let mut config: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        config["process"]["terminal"] = json!(false);
        config["process"]["args"] = json!(args);
        config["root"]["readonly"] = json!(false);
        config["linux"]["cgroupsPath"] = json!(ctr.cgroup);
        edit(&mut config);
        fs::write(&path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
        ctr
    }

    pub fn bundle(&self) -> PathBuf {
        self.dir.join("bundle")
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.join("root").join(&self.id)
    }

    pub fn berth(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BERTH);
        cmd.arg("--root").arg(self.dir.join("root")).args(args);
        cmd
    }

    /// `berth CMD ID ARGS...`, its output captured.
    pub fn cmd(&self, cmd: &str, args: &[&str]) -> Output {
        let mut all = vec![cmd, self.id.as_str()];
        all.extend_from_slice(args);
        self.berth(&all).stdin(Stdio::null()).output().unwrap()
    }

    /// Run in the foreground; (exit code, stdout, stderr).
    pub fn run(&self) -> (i32, String, String) {
        let out = self
            .berth(&["run", "-b"])
            .arg(self.bundle())
            .arg(&self.id)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (
            out.status.code().unwrap_or(-1),
            text(&out.stdout),
            text(&out.stderr),
        )
    }

    /// `run -d`. The container inherits the runtime's stdio, so no pipe is used: reading one to
    /// its end would wait for the container.
    pub fn start_detached(&self) {
        let log = self.dir.join("run-d.stderr");
        let status = self
            .berth(&["run", "-d", "-b"])
            .arg(self.bundle())
            .arg(&self.id)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap())
            .status()
            .unwrap();
        assert!(
            status.success(),
            "run -d: {}",
            fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// `create` expected to fail; its stderr.
    pub fn create_fails(&self) -> String {
        let out = self
            .berth(&["create", "-b"])
            .arg(self.bundle())
            .arg(&self.id)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(!out.status.success(), "create succeeded");
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    pub fn status(&self) -> String {
        let out = self.cmd("state", &[]);
        assert!(
            out.status.success(),
            "state: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        doc["status"].as_str().unwrap().to_string()
    }

    /// The container's cgroup directory in the v1 hierarchy mounted at /sys/fs/cgroup/<name>.
    pub fn cg(&self, hierarchy: &str) -> PathBuf {
        Path::new("/sys/fs/cgroup")
            .join(hierarchy)
            .join(self.cgroup.trim_start_matches('/'))
    }

    pub fn cg_file(&self, hierarchy: &str, file: &str) -> String {
        let path = self.cg(hierarchy).join(file);
        fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
            .trim()
            .to_string()
    }

    /// Whether any hierarchy still has the container's cgroup.
    pub fn cgroup_left(&self) -> Vec<PathBuf> {
        fs::read_dir("/sys/fs/cgroup")
            .unwrap()
            .flatten()
            .map(|h| h.path().join(self.cgroup.trim_start_matches('/')))
            .filter(|p| p.exists())
            .collect()
    }

    pub fn pids(&self) -> Vec<i64> {
        let out = self.cmd("ps", &["-f", "json"]);
        assert!(
            out.status.success(),
            "ps: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

impl Drop for Ctr {
    fn drop(&mut self) {
        let _ = self.cmd("delete", &["--force"]);
        let _ = fs::remove_dir_all(&self.dir);
        for h in fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            // Busy or not empty: another test still uses it.
            let _ = fs::remove_dir(h.path().join("berth-test"));
        }
    }
}

pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
