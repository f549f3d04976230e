//! `--rootless`: the runtime runs as an unprivileged user that the run creates (with a range
//! in /etc/subuid and /etc/subgid) and removes at the end; every bundle gets a user namespace
//! mapping container root to that user and 1..=65536 to its range (so the runtime needs
//! newuidmap/newgidmap) and a rootfs owned by the user's ids. Without `--rootless-cgroup` the
//! bundles have no cgroupsPath (the runtime skips the cgroup it cannot write); with it (a pure
//! cgroup v2 host), the suite's cgroup parent is delegated to the user ([`Delegation`]). The
//! runner itself stays root, to look at the container from the host. Tests that cannot make
//! sense rootless are skipped by name ([`skipped`]).

use crate::harness::{CGROUP_FS, CGROUP_PARENT};
use anyhow::{bail, ensure, Context, Result};
use serde_json::{json, Value};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Container ids 1..=RANGE map to the user's subordinate range.
const RANGE: u32 = 65536;
const SUBID_FILES: [&str; 2] = ["/etc/subuid", "/etc/subgid"];

/// Tests that need what an unprivileged user cannot have, by name prefix, with the reason.
const SKIPPED: &[(&str, &str)] = &[
    (
        "cgroups/device-rules",
        "no device rules rootless: the kernel lets no user namespace set them",
    ),
    (
        "cgroups/default-device-rules",
        "no device rules rootless: the kernel lets no user namespace set them",
    ),
    (
        "create-error/device-rule-bad-type",
        "no device rules rootless",
    ),
    ("cgroups/blkio-throttle", "reads the host's disk"),
    (
        "inside/namespaces-new",
        "checks which namespaces are new; rootless adds a user namespace",
    ),
    (
        "inside/user-namespace-maps",
        "maps host ids the user does not own",
    ),
    ("features/namespaces", "maps host ids the user does not own"),
    (
        "inside/namespace-join-path",
        "joins namespaces owned by root",
    ),
    (
        "inside/cgroup-namespace-root",
        "joins a network namespace owned by root",
    ),
    (
        "inside/oom-score-adj",
        "lowering oom_score_adj needs CAP_SYS_RESOURCE",
    ),
    (
        "inside/linux-devices",
        "mknod of a device needs the initial user namespace",
    ),
    (
        "attrs/",
        "scheduler, io priority, memory policy and net devices need host privileges",
    ),
    (
        "apparmor/",
        "loading and changing to an AppArmor profile needs host privileges",
    ),
    (
        "attack/apparmor-",
        "loading an AppArmor profile needs host privileges",
    ),
    ("selinux/", "SELinux labels need host privileges"),
    (
        "inside/idmap-",
        "idmapped mounts need privileges over the source's filesystem",
    ),
    (
        "inside/userns-bind-source-host-only",
        "the source is below a directory only root may search",
    ),
    ("inside/sysctl-user", "maps host ids the user does not own"),
    (
        "inside/no-mount-namespace",
        "runs the runtime in a mount namespace of its own, which needs root",
    ),
    (
        "lifecycle/run-no-subreaper",
        "joins namespaces owned by root",
    ),
];

/// Deviations of real runtimes that only show rootless: (runtime name, test, reason), as in
/// [`crate::xfail`].
const EXPECTED_FAILURES: &[(&str, &str, &str)] = &[
    (
        "runc",
        "inside/user-groups-umask",
        "runc refuses additionalGids in any rootless container; berth sets them when newgidmap wrote the gid map (setgroups stays allowed)",
    ),
    (
        "runc",
        "exec/env-cwd-user",
        "runc refuses exec --additional-gids in any rootless container; berth sets them when newgidmap wrote the gid map",
    ),
];

/// Why `runtime` is expected to fail `test` in rootless mode, if it is.
pub fn expected_failure(runtime: &str, test: &str) -> Option<&'static str> {
    EXPECTED_FAILURES
        .iter()
        .find(|(r, t, _)| *r == runtime && *t == test)
        .map(|(_, _, why)| *why)
}

/// Skipped only without a delegated cgroup: the tests that need the container's cgroup.
const SKIPPED_WITHOUT_CGROUP: &[(&str, &str)] = &[
    (
        "cgroups/",
        "limits, update and events need a writable cgroup",
    ),
    (
        "create-error/negative-memory-limit",
        "needs a writable cgroup",
    ),
    ("create-error/cpus-not-on-host", "needs a writable cgroup"),
    (
        "create-error/unknown-unified-key",
        "needs a writable cgroup",
    ),
    ("exec/sub-cgroup", "needs a writable cgroup"),
    (
        "exec/detach-pid-file",
        "finds the exec'd process in the container's cgroup",
    ),
    (
        "exec/bad-input-fails",
        "counts the container's processes in its cgroup",
    ),
    (
        "exec/paused-needs-ignore-paused",
        "pause needs a writable cgroup",
    ),
    (
        "lifecycle/kill-paused-sigkill",
        "pause needs a writable cgroup",
    ),
    (
        "lifecycle/delete-force-kills-whole-cgroup",
        "needs a writable cgroup",
    ),
    (
        "lifecycle/kill-all-reaches-whole-cgroup",
        "needs a writable cgroup",
    ),
    (
        "lifecycle/create-refuses-busy-cgroup",
        "needs a writable cgroup",
    ),
    (
        "lifecycle/create-refuses-frozen-cgroup",
        "needs a writable cgroup",
    ),
    (
        "inside/cgroup-path",
        "the container has no cgroup of its own",
    ),
];

/// Why `test` is skipped in rootless mode (`delegated`: with a delegated cgroup), if it is.
pub fn skipped(test: &str, delegated: bool) -> Option<&'static str> {
    let without = if delegated {
        &[][..]
    } else {
        SKIPPED_WITHOUT_CGROUP
    };
    SKIPPED
        .iter()
        .chain(without)
        .find(|(prefix, _)| test.starts_with(prefix))
        .map(|(_, why)| *why)
}

/// The unprivileged user of a rootless run; removed (with its subordinate ranges) on drop.
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// Start of the subordinate uid and gid range.
    pub sub: u32,
    /// The suite's cgroup parent, delegated to the user.
    pub delegation: Option<Delegation>,
}

impl User {
    /// `delegate`: delegate the suite's cgroup parent (`/sys/fs/cgroup/PARENT`) to the user.
    pub fn create(delegate: bool) -> Result<User> {
        ensure!(
            nix::unistd::geteuid().is_root(),
            "--rootless: the runner must be root to create its user"
        );
        let name = format!("rt-rootless-{}", std::process::id());
        let made = Command::new("useradd")
            .args(["--system", "--no-create-home", "--user-group"])
            .args(["--shell", "/usr/sbin/nologin", &name])
            .status()
            .context("run useradd")?;
        ensure!(made.success(), "useradd {name} failed");
        let mut user = User {
            uid: 0,
            gid: 0,
            sub: 0,
            name,
            delegation: None,
        };
        // From here on, dropping `user` removes what exists of it.
        let pw = nix::unistd::User::from_name(&user.name)?
            .with_context(|| format!("user {} not found after useradd", user.name))?;
        user.uid = pw.uid.as_raw();
        user.gid = pw.gid.as_raw();
        user.sub = free_range()?;
        for file in SUBID_FILES {
            let mut text = fs::read_to_string(file).unwrap_or_default();
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            text += &format!("{}:{}:{RANGE}\n", user.name, user.sub);
            fs::write(file, text).with_context(|| format!("write {file}"))?;
        }
        if delegate {
            user.delegation = Some(Delegation::create(user.uid, user.gid)?);
        }
        Ok(user)
    }

    /// Give a rootfs to the user's ids as the container sees them: host owner 0 becomes the
    /// user, owner N the Nth id of its range (so /home/tester stays 1000:1000 inside).
    pub fn shift_owners(&self, path: &Path) -> Result<()> {
        let shift = |id: u32, own: u32| if id == 0 { own } else { self.sub + id - 1 };
        let meta = fs::symlink_metadata(path)?;
        std::os::unix::fs::lchown(
            path,
            Some(shift(meta.uid(), self.uid)),
            Some(shift(meta.gid(), self.gid)),
        )
        .with_context(|| format!("chown {}", path.display()))?;
        // chown clears set-id bits: put them back.
        if !meta.file_type().is_symlink() && meta.mode() & 0o6000 != 0 {
            fs::set_permissions(path, fs::Permissions::from_mode(meta.mode()))?;
        }
        if meta.is_dir() {
            for entry in fs::read_dir(path)? {
                self.shift_owners(&entry?.path())?;
            }
        }
        Ok(())
    }

    /// Give `path` (recursively) to the user.
    pub fn chown(&self, path: &Path) -> Result<()> {
        let done = Command::new("chown")
            .args(["-R", &format!("{}:{}", self.uid, self.gid)])
            .arg(path)
            .status()?;
        ensure!(done.success(), "chown -R {}", path.display());
        Ok(())
    }

    /// Turn a test's config into a rootless one: a user namespace with our mappings (unless
    /// the test set its own), and the delegated cgroup or none.
    pub fn adapt(&self, config: &mut Value) {
        let linux = &mut config["linux"];
        let namespaces = linux["namespaces"].as_array_mut();
        if let Some(ns) = namespaces {
            if !ns.iter().any(|n| n["type"] == "user") {
                ns.push(json!({ "type": "user" }));
            }
        }
        for (field, own) in [("uidMappings", self.uid), ("gidMappings", self.gid)] {
            if linux[field].is_null() {
                linux[field] = json!([
                    { "containerID": 0, "hostID": own, "size": 1 },
                    { "containerID": 1, "hostID": self.sub, "size": RANGE },
                ]);
            }
        }
        // Delegated: the base config's path, below the suite's parent. Otherwise none: the
        // runtime may then run without a cgroup.
        if self.delegation.is_none() {
            let obj = linux.as_object_mut().expect("linux is an object");
            obj.remove("cgroupsPath");
        }
    }
}

/// The suite's cgroup parent delegated to the user, as systemd's `Delegate=` does: the
/// directory and its cgroup.procs, cgroup.subtree_control and cgroup.threads are the user's.
/// A process may only move between cgroups below one whose cgroup.procs it can write, so the
/// runner moves itself into a leaf below the parent (and back at the end): the runtimes it
/// starts, and their containers, then move within the user's subtree.
pub struct Delegation {
    parent: PathBuf,
    leaf: PathBuf,
    home: PathBuf,
}

impl Delegation {
    fn create(uid: u32, gid: u32) -> Result<Delegation> {
        let root = Path::new(CGROUP_FS);
        ensure!(
            root.join("cgroup.controllers").exists(),
            "--rootless-cgroup: needs a pure cgroup v2 host ({CGROUP_FS} is not cgroup2)"
        );
        let own = fs::read_to_string("/proc/self/cgroup")?;
        let own = own
            .lines()
            .find_map(|l| l.strip_prefix("0::"))
            .context("no cgroup2 line in /proc/self/cgroup")?;
        let parent = root.join(CGROUP_PARENT);
        fs::create_dir_all(&parent)?;
        let delegation = Delegation {
            leaf: parent.join(format!("runner-{}", std::process::id())),
            home: root.join(own.trim_start_matches('/')),
            parent,
        };
        for file in [
            "",
            "cgroup.procs",
            "cgroup.subtree_control",
            "cgroup.threads",
        ] {
            let path = delegation.parent.join(file);
            std::os::unix::fs::chown(&path, Some(uid), Some(gid))
                .with_context(|| format!("chown {}", path.display()))?;
        }
        fs::create_dir(&delegation.leaf)?;
        fs::write(
            delegation.leaf.join("cgroup.procs"),
            std::process::id().to_string(),
        )
        .with_context(|| format!("move the runner into {}", delegation.leaf.display()))?;
        Ok(delegation)
    }
}

impl Drop for Delegation {
    fn drop(&mut self) {
        let _ = fs::write(
            self.home.join("cgroup.procs"),
            std::process::id().to_string(),
        );
        let _ = fs::remove_dir(&self.leaf);
        let _ = fs::remove_dir(&self.parent);
    }
}

impl Drop for User {
    fn drop(&mut self) {
        let prefix = format!("{}:", self.name);
        for file in SUBID_FILES {
            if let Ok(text) = fs::read_to_string(file) {
                let kept: String = text
                    .lines()
                    .filter(|l| !l.starts_with(&prefix))
                    .map(|l| format!("{l}\n"))
                    .collect();
                let _ = fs::write(file, kept);
            }
        }
        match Command::new("userdel").arg(&self.name).status() {
            Ok(s) if s.success() => {}
            r => eprintln!("runtime-tests: userdel {} failed: {r:?}", self.name),
        }
    }
}

/// A subordinate range no entry of /etc/subuid or /etc/subgid uses yet, and above every
/// regular id.
fn free_range() -> Result<u32> {
    let mut start: u64 = 1_000_000;
    for file in SUBID_FILES {
        let text = fs::read_to_string(file).unwrap_or_default();
        for line in text.lines() {
            let f: Vec<&str> = line.split(':').collect();
            if let [_, s, n] = f[..] {
                if let (Ok(s), Ok(n)) = (s.parse::<u64>(), n.parse::<u64>()) {
                    start = start.max(s + n);
                }
            }
        }
    }
    if start + u64::from(RANGE) >= u64::from(u32::MAX) {
        bail!("no free subordinate id range left in /etc/subuid, /etc/subgid");
    }
    Ok(start as u32)
}
