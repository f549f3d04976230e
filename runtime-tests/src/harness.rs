//! Per-test context: a private state root, unique ids and cgroup paths, bundle
//! generation, and a Drop guard that undoes everything the test made.

use crate::runtime::{Out, Running, Runtime};
use anyhow::{bail, ensure, Context, Result};
use serde_json::{json, Value};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant};

pub const CGROUP_FS: &str = "/sys/fs/cgroup";
/// Parent of every test cgroup. Absolute, so the runtime never nests it under
/// its caller's cgroup (which may belong to someone else).
pub const CGROUP_PARENT: &str = "runtime-tests";
/// With `--systemd-cgroups`: the slice every test's scope is in, and the scopes' prefix.
const SYSTEMD_SLICE: &str = "runtime_tests.slice";
const SYSTEMD_PREFIX: &str = "runtime-tests";

static SYSTEMD_CGROUPS: AtomicBool = AtomicBool::new(false);

/// Bundles name their cgroup as a systemd driver wants it (`slice:prefix:name`).
pub fn set_systemd_cgroups(on: bool) {
    SYSTEMD_CGROUPS.store(on, Ordering::Relaxed);
}

fn systemd_cgroups() -> bool {
    SYSTEMD_CGROUPS.load(Ordering::Relaxed)
}

/// linux.cgroupsPath for the test cgroup `name`.
pub fn cgroups_path(name: &str) -> String {
    if systemd_cgroups() {
        format!("{SYSTEMD_SLICE}:{SYSTEMD_PREFIX}:{name}")
    } else {
        format!("/{CGROUP_PARENT}/{name}")
    }
}

/// The top-level cgroup all test cgroups are below.
pub fn cgroup_parent() -> &'static str {
    if systemd_cgroups() {
        SYSTEMD_SLICE
    } else {
        CGROUP_PARENT
    }
}

/// The cgroup (from the hierarchy's root) that linux.cgroupsPath `path` names: absolute paths
/// as they are, `slice:prefix:name` as systemd nests it (`a-b.slice` in `a.slice`).
pub fn host_cgroup(path: &str) -> String {
    let Some((slice, rest)) = path.split_once(':') else {
        return path.to_string();
    };
    let (prefix, name) = rest.split_once(':').unwrap_or(("", rest));
    let mut out = String::new();
    let base = slice.strip_suffix(".slice").unwrap_or(slice);
    let parts: Vec<&str> = base.split('-').collect();
    for i in 1..=parts.len() {
        out.push_str(&format!("/{}.slice", parts[..i].join("-")));
    }
    out.push_str(&format!("/{prefix}-{name}.scope"));
    out
}

/// The test cgroup `name` from the hierarchy's root.
pub fn cgroup_rel(name: &str) -> String {
    host_cgroup(&cgroups_path(name))
}

/// With `--systemd-cgroups`, once every test is done: the tests' slice, made by systemd for
/// their scopes, is stopped so that no unit of ours is left.
pub fn stop_systemd_slice() {
    if systemd_cgroups() {
        let _ = Command::new("systemctl")
            .args(["stop", SYSTEMD_SLICE])
            .status();
    }
}

/// What all tests of one run share.
pub struct Env {
    pub runtime: Runtime,
    pub checker: PathBuf,
    /// Pristine rootfs built once per run; each bundle gets a copy.
    pub rootfs: PathBuf,
    pub workdir: PathBuf,
    pub keep: bool,
    /// Rootless mode: the user the runtime runs as.
    pub rootless: Option<crate::rootless::User>,
}

pub struct Bundle {
    pub id: String,
    pub dir: PathBuf,
    pub cgroup: String,
}

impl Bundle {
    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.join("config.json")
    }

    pub fn dir_str(&self) -> &str {
        self.dir.to_str().expect("utf-8 temp path")
    }
}

pub struct Ctx<'e> {
    pub env: &'e Env,
    pub dir: PathBuf,
    state: PathBuf,
    containers: Vec<String>,
    cgroups: Vec<String>,
    children: Vec<Child>,
    seq: usize,
}

static UNIQUE: AtomicUsize = AtomicUsize::new(0);

/// Process-wide unique name, also used as cgroup leaf and container id.
fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}-{}",
        std::process::id(),
        UNIQUE.fetch_add(1, Ordering::Relaxed)
    )
}

impl<'e> Ctx<'e> {
    pub fn new(env: &'e Env, test: &str) -> Result<Self> {
        let dir = env.workdir.join(test.replace('/', "_"));
        let state = dir.join("state");
        fs::create_dir_all(dir.join("logs"))?;
        fs::create_dir_all(&state)?;
        if let Some(user) = &env.rootless {
            user.chown(&dir)?;
        }
        Ok(Ctx {
            env,
            dir,
            state,
            containers: vec![],
            cgroups: vec![],
            children: vec![],
            seq: 0,
        })
    }

    pub fn timeout(&self) -> Duration {
        self.env.runtime.timeout
    }

    /// `runtime --root STATE ARGS...`, started but not awaited.
    pub fn spawn_with(
        &mut self,
        args: &[&str],
        customize: impl FnOnce(&mut Command),
    ) -> Result<Running> {
        let env = self.env;
        self.spawn_runtime(&env.runtime, args, customize)
    }

    /// Like [`Ctx::spawn_with`], with another binary of the runtime (e.g. a copy of it).
    pub fn spawn_binary(
        &mut self,
        binary: &Path,
        args: &[&str],
        customize: impl FnOnce(&mut Command),
    ) -> Result<Running> {
        let runtime = Runtime {
            path: binary.to_path_buf(),
            timeout: self.timeout(),
            user: self.env.runtime.user,
            global_args: self.env.runtime.global_args.clone(),
        };
        self.spawn_runtime(&runtime, args, customize)
    }

    fn spawn_runtime(
        &mut self,
        runtime: &Runtime,
        args: &[&str],
        customize: impl FnOnce(&mut Command),
    ) -> Result<Running> {
        self.seq += 1;
        let tag = format!("{:03}-{}", self.seq, args.first().copied().unwrap_or("cmd"));
        let mut full = vec!["--root", self.state.to_str().expect("utf-8 temp path")];
        full.extend_from_slice(args);
        runtime.spawn(&full, &self.dir.join("logs"), &tag, customize)
    }

    pub fn spawn(&mut self, args: &[&str]) -> Result<Running> {
        self.spawn_with(args, |_| {})
    }

    pub fn rt(&mut self, args: &[&str]) -> Result<Out> {
        self.spawn(args)?.wait()
    }

    /// Makes a bundle whose config is the base config edited by `edit`; its id
    /// and cgroup are registered for cleanup.
    pub fn bundle(&mut self, edit: impl FnOnce(&mut Value)) -> Result<Bundle> {
        let id = unique("rt");
        let dir = self.dir.join(&id);
        let rootfs = dir.join("rootfs");
        fs::create_dir_all(&dir)?;
        let cp = Command::new("cp")
            .arg("-a")
            .arg(&self.env.rootfs)
            .arg(&rootfs)
            .status()?;
        ensure!(cp.success(), "copying rootfs failed");
        fs::copy(&self.env.checker, rootfs.join("checker")).context("copying checker")?;
        let mut config = base_config(&id);
        edit(&mut config);
        if let Some(user) = &self.env.rootless {
            user.adapt(&mut config);
            user.shift_owners(&rootfs)?;
        }
        fs::write(dir.join("config.json"), serde_json::to_vec_pretty(&config)?)?;
        self.containers.push(id.clone());
        self.cgroups.push(id.clone());
        Ok(Bundle {
            cgroup: id.clone(),
            id,
            dir,
        })
    }

    /// In rootless mode, give what the runner made for the runtime (a socket it connects to)
    /// to the runtime's user.
    pub fn hand_over(&self, path: &Path) -> Result<()> {
        match &self.env.rootless {
            Some(user) => user.chown(path),
            None => Ok(()),
        }
    }

    /// Registers an extra id (e.g. a hand-picked invalid one) for cleanup.
    pub fn track(&mut self, id: &str) {
        self.containers.push(id.to_string());
    }

    /// Starts a helper process that is killed when the test ends.
    pub fn child(&mut self, cmd: &mut Command) -> Result<u32> {
        let child = cmd.spawn().with_context(|| format!("spawning {cmd:?}"))?;
        let pid = child.id();
        self.children.push(child);
        Ok(pid)
    }

    pub fn state(&mut self, id: &str) -> Result<Value> {
        let out = self.rt(&["state", id])?.ok()?;
        serde_json::from_str(&out.stdout).with_context(|| format!("state output: {}", out.stdout))
    }

    /// Polls `state` until the status is `want`. A failing `state` counts as
    /// "not yet": a foreground `run` may not have created the container.
    pub fn wait_status(&mut self, id: &str, want: &str) -> Result<Value> {
        let deadline = Instant::now() + self.timeout();
        loop {
            let seen = match self.state(id) {
                Ok(st) if st["status"] == want => return Ok(st),
                Ok(st) => st["status"].to_string(),
                Err(e) => format!("{e:#}"),
            };
            if Instant::now() > deadline {
                bail!("container {id} never became {want}; last seen: {seen}");
            }
            sleep(Duration::from_millis(50));
        }
    }

    /// Asserts a failed operation left nothing: no container in the state root
    /// and no cgroup directory.
    pub fn assert_nothing_left(&mut self, id: &str, cgroup: &str) -> Result<()> {
        ensure!(
            self.rt(&["state", id])?
                .status
                .is_some_and(|s| !s.success()),
            "`state {id}` still succeeds"
        );
        let list = self.rt(&["list", "-q"])?.ok()?;
        ensure!(
            list.stdout.trim().is_empty(),
            "`list -q` still shows: {}",
            list.stdout.trim()
        );
        let left: Vec<_> = fs::read_dir(&self.state)?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name())
            .collect();
        ensure!(left.is_empty(), "state root still holds {left:?}");
        let dirs = cgroup_dirs(cgroup);
        ensure!(dirs.is_empty(), "cgroup left behind: {dirs:?}");
        Ok(())
    }
}

impl Drop for Ctx<'_> {
    fn drop(&mut self) {
        for id in std::mem::take(&mut self.containers) {
            let _ = self.rt(&["delete", "--force", &id]);
        }
        for mut child in self.children.drain(..) {
            let _ = child.kill();
            let _ = child.wait();
        }
        for cg in &self.cgroups {
            for dir in cgroup_dirs(cg) {
                let _ = fs::remove_dir(dir);
            }
        }
        if !self.env.keep {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// Existing directories of the test cgroup `name`, one per mounted hierarchy.
pub fn cgroup_dirs(name: &str) -> Vec<PathBuf> {
    hierarchies()
        .into_iter()
        .map(|h| h.join(cgroup_rel(name).trim_start_matches('/')))
        .filter(|d| d.is_dir())
        .collect()
}

pub fn hierarchies() -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(CGROUP_FS) else {
        return vec![];
    };
    let mut v: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    // A pure cgroup v2 host has the unified hierarchy at the top itself.
    if Path::new(CGROUP_FS).join("cgroup.controllers").exists() {
        v = vec![PathBuf::from(CGROUP_FS)];
    }
    v
}

/// Host namespace inode of `/proc/self/ns/<ns>`.
pub fn ns_inode(pid: &str, ns: &str) -> Result<u64> {
    Ok(fs::metadata(format!("/proc/{pid}/ns/{ns}"))?.ino())
}

/// The base config, close to `runc spec` but non-interactive, writable root and
/// an absolute cgroup path.
pub fn base_config(cgroup: &str) -> Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    let ro = ["nosuid", "noexec", "nodev", "ro"];
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": { "uid": 0, "gid": 0 },
            "args": ["/checker"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {
                "bounding": caps, "effective": caps, "permitted": caps, "ambient": caps,
            },
            "rlimits": [{ "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 }],
            "noNewPrivileges": true,
        },
        "root": { "path": "rootfs", "readonly": false },
        "hostname": "runtime-tests",
        "mounts": [
            { "destination": "/proc", "type": "proc", "source": "proc" },
            { "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
              "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] },
            { "destination": "/dev/pts", "type": "devpts", "source": "devpts",
              "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] },
            { "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
              "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
            { "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
              "options": ["nosuid", "noexec", "nodev"] },
            { "destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ro },
            { "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
              "options": ["nosuid", "noexec", "nodev", "relatime", "ro"] },
        ],
        "linux": {
            "cgroupsPath": cgroups_path(cgroup),
            "resources": { "devices": [{ "allow": false, "access": "rwm" }] },
            "namespaces": [
                { "type": "pid" }, { "type": "network" }, { "type": "ipc" },
                { "type": "uts" }, { "type": "mount" },
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
                "/proc/scsi",
            ],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
        },
    })
}
