//! Cgroup tests against the real host hierarchies (run as root).
//!
//! The test process's own cgroups may belong to whoever runs it, so nothing is ever created
//! there: every cgroup made here is `/berth-test/<pid>-<n>-<name>` from the hierarchy roots,
//! and is removed again (the shared `/berth-test` parent too, if nobody else is using it).

use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicUsize, Ordering};

use berth::cgroups::Cgroup;
use berth::Error;
use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::sys::signal::Signal;
use nix::sys::stat::Mode;
use nix::unistd::Pid;

/// A cgroup at a fresh absolute path, destroyed (with its `/berth-test` parent if empty) on drop.
struct TestCgroup {
    cg: Cgroup,
    path: PathBuf,
}

impl TestCgroup {
    fn new(name: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = PathBuf::from(format!("/berth-test/{}-{n}-{name}", std::process::id()));
        let cg = Cgroup::resolve(Some(&path), "unused").expect("resolve");
        TestCgroup { cg, path }
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        let _ = self.cg.destroy();
        for dir in self.cg.dirs() {
            // Busy or not empty: another test is still using it.
            let _ = std::fs::remove_dir(dir.parent().unwrap());
        }
    }
}

/// A `sleep` we started; killed and reaped on drop if a test failed before doing so.
struct Sleeper(Child);

impl Sleeper {
    fn spawn() -> Self {
        Sleeper(
            Command::new("sleep")
                .arg("1000")
                .spawn()
                .expect("spawn sleep"),
        )
    }
    fn pid(&self) -> Pid {
        Pid::from_raw(self.0.id() as i32)
    }
    /// Wait for it to end and return the signal that ended it.
    fn reap(&mut self) -> Option<i32> {
        self.0.wait().expect("wait").signal()
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn procs_of(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("cgroup.procs")).unwrap()
}

#[test]
fn lifecycle_create_add_freeze_kill_destroy() {
    let t = TestCgroup::new("life");
    assert!(t.cg.dirs().count() > 0);
    for dir in t.cg.dirs() {
        assert!(
            dir.ends_with(t.path.strip_prefix("/").unwrap()),
            "{}",
            dir.display()
        );
        assert!(!dir.exists(), "resolve must not create {}", dir.display());
    }
    t.cg.create().unwrap();
    for dir in t.cg.dirs() {
        assert!(dir.is_dir(), "{} not created", dir.display());
        // A v1 cpuset cgroup (v2 has no cpuset.effective_cpus) needs cpus and mems set.
        if dir.join("cpuset.effective_cpus").exists() {
            for file in ["cpuset.cpus", "cpuset.mems"] {
                let value = std::fs::read_to_string(dir.join(file)).unwrap();
                assert!(
                    !value.trim().is_empty(),
                    "{} empty",
                    dir.join(file).display()
                );
            }
        }
    }

    let mut child = Sleeper::spawn();
    t.cg.add(child.pid()).unwrap();
    for dir in t.cg.dirs() {
        assert_eq!(
            procs_of(dir).trim(),
            child.pid().to_string(),
            "{}",
            dir.display()
        );
    }

    // A later command finds the cgroup again from state.json.
    let json = serde_json::to_string(&t.cg).unwrap();
    let later: Cgroup = serde_json::from_str(&json).unwrap();
    assert_eq!(later, t.cg);
    assert_eq!(later.pids().unwrap(), [child.pid()]);

    assert!(!later.is_frozen().unwrap());
    later.freeze(true).unwrap();
    assert!(later.is_frozen().unwrap());
    later.freeze(false).unwrap();
    assert!(!later.is_frozen().unwrap());

    later.kill_all(Signal::SIGKILL).unwrap();
    assert_eq!(child.reap(), Some(libc::SIGKILL));
    later.destroy().unwrap();
    for dir in t.cg.dirs() {
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
}

#[test]
fn kill_all_on_a_paused_cgroup_keeps_it_paused_unless_sigkill() {
    let t = TestCgroup::new("paused");
    t.cg.create().unwrap();
    let mut a = Sleeper::spawn();
    let mut b = Sleeper::spawn();
    t.cg.add(a.pid()).unwrap();
    t.cg.add(b.pid()).unwrap();
    let mut want = vec![a.pid(), b.pid()];
    want.sort();
    assert_eq!(t.cg.pids().unwrap(), want);

    // SIGTERM while paused: the container stays paused (on v1 the signal waits for the thaw).
    t.cg.freeze(true).unwrap();
    t.cg.kill_all(Signal::SIGTERM).unwrap();
    assert!(t.cg.is_frozen().unwrap());
    t.cg.freeze(false).unwrap();
    assert_eq!(a.reap(), Some(libc::SIGTERM));
    assert_eq!(b.reap(), Some(libc::SIGTERM));

    // SIGKILL while paused: thawed so that it can die.
    let mut c = Sleeper::spawn();
    t.cg.add(c.pid()).unwrap();
    t.cg.freeze(true).unwrap();
    t.cg.kill_all(Signal::SIGKILL).unwrap();
    assert_eq!(c.reap(), Some(libc::SIGKILL));
    assert!(!t.cg.is_frozen().unwrap());
    t.cg.destroy().unwrap();
}

#[test]
fn kill_all_signals_each_process_of_a_running_cgroup() {
    let t = TestCgroup::new("term");
    t.cg.create().unwrap();
    let mut a = Sleeper::spawn();
    t.cg.add(a.pid()).unwrap();
    t.cg.kill_all(Signal::SIGTERM).unwrap();
    assert_eq!(a.reap(), Some(libc::SIGTERM));
    assert!(!t.cg.is_frozen().unwrap());
    t.cg.destroy().unwrap();
}

/// Create `t` and return its cgroup2 directory if that has `file` (else say the test is skipped).
fn created_cgroup2_dir<'a>(t: &'a TestCgroup, file: &str) -> Option<&'a Path> {
    t.cg.create().unwrap();
    let dir = t.cg.dirs().last().filter(|d| d.join(file).exists());
    if dir.is_none() {
        eprintln!("skipped: no cgroup2 directory with {file}");
    }
    dir
}

/// SIGKILL for every process goes through cgroup.kill where the kernel has it: a process only
/// in the cgroup2 directory (on a hybrid host: in none of the v1 ones, whose pid lists the
/// signal-each path reads) dies too.
#[test]
fn sigkill_for_all_goes_through_cgroup_kill() {
    let t = TestCgroup::new("cgkill");
    let Some(unified) = created_cgroup2_dir(&t, "cgroup.kill") else {
        return;
    };
    let mut child = Sleeper::spawn();
    std::fs::write(unified.join("cgroup.procs"), child.pid().to_string()).unwrap();
    t.cg.kill_all(Signal::SIGKILL).unwrap();
    assert_eq!(child.reap(), Some(libc::SIGKILL));
    t.cg.destroy().unwrap();
}

#[test]
fn sub_cgroups_are_counted_and_removed() {
    let t = TestCgroup::new("nested");
    let sub = Cgroup::resolve(Some(&t.path.join("inner/deeper")), "unused").unwrap();
    sub.create().unwrap();
    let mut child = Sleeper::spawn();
    sub.add(child.pid()).unwrap();
    assert_eq!(t.cg.pids().unwrap(), [child.pid()]);
    assert!(t.cg.pids().unwrap().contains(&child.pid()));

    t.cg.kill_all(Signal::SIGKILL).unwrap();
    assert_eq!(child.reap(), Some(libc::SIGKILL));
    t.cg.destroy().unwrap();
    for dir in t.cg.dirs() {
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
}

#[test]
fn destroy_is_idempotent() {
    let t = TestCgroup::new("twice");
    t.cg.destroy().unwrap(); // never created
    t.cg.create().unwrap();
    t.cg.create().unwrap(); // an existing cgroup is reused
    t.cg.destroy().unwrap();
    t.cg.destroy().unwrap();
    for dir in t.cg.dirs() {
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
}

#[test]
fn failed_create_removes_what_it_made() {
    let t = TestCgroup::new("fail");
    // Make the last hierarchy's directory impossible (below a file), after all the others
    // (and their missing parents) have been made.
    let mut json: serde_json::Value = serde_json::to_value(&t.cg).unwrap();
    let bad = "/dev/null/berth-test";
    match json.get_mut("unified") {
        Some(unified) => *unified = bad.into(),
        None => {
            let v1 = json["v1"].as_array_mut().unwrap();
            v1.last_mut().unwrap()["dir"] = bad.into();
        }
    }
    let broken: Cgroup = serde_json::from_value(json).unwrap();
    let err = broken.create().unwrap_err();
    assert_eq!(err.errno(), Some(nix::Error::ENOTDIR), "{err}");
    assert!(err.to_string().contains(bad), "{err}");
    for dir in t.cg.dirs() {
        assert!(!dir.exists(), "{} left behind", dir.display());
    }

    // A name the kernel refuses fails in the first hierarchy; its new parent goes too.
    let cg = Cgroup::resolve(Some(&t.path.join("bad\nname")), "unused").unwrap();
    let err = cg.create().unwrap_err();
    assert_eq!(err.errno(), Some(nix::Error::EINVAL), "{err}");
    for dir in t.cg.dirs() {
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
}

#[test]
fn relative_and_default_paths_are_below_our_own_cgroup() {
    let rel = Cgroup::resolve(Some(Path::new("foo/bar")), "id").unwrap();
    let default = Cgroup::resolve(None, "id").unwrap();
    let empty = Cgroup::resolve(Some(Path::new("")), "id").unwrap();
    assert_eq!(default, empty);
    let me = std::process::id().to_string();
    for (rel, default) in rel.dirs().zip(default.dirs()) {
        let own = default.parent().unwrap();
        assert_eq!(rel, own.join("foo/bar"));
        assert!(default.ends_with("id"));
        // Read-only check that `own` is where this process is.
        assert!(
            procs_of(own).lines().any(|p| p == me),
            "{} is not our cgroup",
            own.display()
        );
        assert!(!rel.exists() && !default.exists());
    }
}

#[test]
fn bad_paths_are_config_errors() {
    let bad = [
        PathBuf::from("/a/../b"),
        PathBuf::from("../b"),
        PathBuf::from("/"),
        PathBuf::from(std::ffi::OsStr::from_bytes(b"/a\xff")),
    ];
    for path in bad {
        match Cgroup::resolve(Some(&path), "id") {
            Err(Error::Config(msg)) => assert!(msg.contains("linux.cgroupsPath"), "{msg}"),
            other => panic!("{path:?}: {other:?}"),
        }
    }
    assert!(matches!(
        Cgroup::resolve(None, "a/b"),
        Err(Error::InvalidId(..))
    ));
}

#[test]
fn open_for_clone_only_on_pure_v2() {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let has_v1 = mountinfo.lines().any(|l| l.contains(" - cgroup "));
    let t = TestCgroup::new("unified");
    t.cg.create().unwrap();
    assert_eq!(t.cg.open_for_clone(&[]).unwrap().is_some(), !has_v1);
    if !has_v1 {
        let err = t.cg.open_for_clone(&["nosuch".into()]).unwrap_err();
        assert!(err.to_string().contains("nosuch"), "{err}");
    }
}

/// clone3 with CLONE_INTO_CGROUP starts the child in the cgroup: tried on the cgroup2
/// hierarchy of a pure v2 or hybrid host.
#[test]
fn clone_into_a_cgroup_starts_the_child_there() {
    let t = TestCgroup::new("clone3");
    let Some(dir) = created_cgroup2_dir(&t, "cgroup.controllers") else {
        return;
    };
    let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let fd = nix::fcntl::open(dir, flags, Mode::empty()).unwrap();
    let pid = match berth::syscall::clone_fork_into(CloneFlags::empty(), fd.as_fd()) {
        Ok(Some(pid)) => pid,
        Ok(None) => loop {
            // SAFETY: the child only waits to be killed: nothing that could need a lock.
            unsafe { libc::pause() };
        },
        Err(e @ (nix::Error::ENOSYS | nix::Error::E2BIG | nix::Error::EINVAL)) => {
            eprintln!("skipped: no clone3 CLONE_INTO_CGROUP: {e}");
            return;
        }
        Err(e) => panic!("clone3: {e}"),
    };
    let seen = std::fs::read_to_string(format!("/proc/{pid}/cgroup"));
    nix::sys::signal::kill(pid, Signal::SIGKILL).unwrap();
    let status = nix::sys::wait::waitpid(pid, None).unwrap();
    assert!(
        matches!(
            status,
            nix::sys::wait::WaitStatus::Signaled(_, Signal::SIGKILL, _)
        ),
        "{status:?}"
    );
    let want = format!("0::{}", t.path.display());
    assert!(
        seen.unwrap().lines().any(|l| l == want),
        "child not in {want}"
    );
}

/// `cg` as a later command would see it on a host without the v1 `controller` hierarchy
/// (and, if `unified` is false, without a cgroup2 hierarchy either).
fn without(cg: &Cgroup, controller: &str, unified: bool) -> Cgroup {
    let mut json = serde_json::to_value(cg).unwrap();
    if let Some(v1) = json.get_mut("v1").and_then(|v| v.as_array_mut()) {
        v1.retain(|h| {
            !h["controllers"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c == controller)
        });
    }
    if !unified {
        json.as_object_mut().unwrap().remove("unified");
    }
    serde_json::from_value(json).unwrap()
}

#[test]
fn without_a_v1_freezer_the_unified_cgroup_freeze_is_used() {
    let t = TestCgroup::new("v2freeze");
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    if !(mountinfo.contains(" - cgroup ") && mountinfo.contains(" - cgroup2 ")) {
        return; // not a hybrid host
    }
    let unified = t.cg.dirs().last().unwrap();
    t.cg.create().unwrap();
    let mut child = Sleeper::spawn();
    t.cg.add(child.pid()).unwrap();

    let cg = without(&t.cg, "freezer", true);
    cg.freeze(true).unwrap();
    assert!(cg.is_frozen().unwrap());
    assert_eq!(
        std::fs::read_to_string(unified.join("cgroup.freeze"))
            .unwrap()
            .trim(),
        "1"
    );
    assert!(!t.cg.is_frozen().unwrap(), "the v1 freezer was used");
    cg.kill_all(Signal::SIGTERM).unwrap();
    assert!(cg.is_frozen().unwrap());
    cg.freeze(false).unwrap();
    assert!(!cg.is_frozen().unwrap());
    assert_eq!(child.reap(), Some(libc::SIGTERM));

    let none = without(&t.cg, "freezer", false);
    let err = none.freeze(true).unwrap_err();
    assert_eq!(err.errno(), Some(nix::Error::ENOTSUP), "{err}");
    assert!(err.to_string().contains("no cgroup freezer"), "{err}");
    // Signalling still works, just without a freeze around it.
    let mut other = Sleeper::spawn();
    t.cg.add(other.pid()).unwrap();
    none.kill_all(Signal::SIGKILL).unwrap();
    assert_eq!(other.reap(), Some(libc::SIGKILL));
    t.cg.destroy().unwrap();
}

#[test]
fn cpuset_parents_made_by_someone_else_are_filled_in() {
    let t = TestCgroup::new("cpuset");
    let Some(cpuset) =
        t.cg.dirs()
            .find(|d| d.parent().unwrap().join("cpuset.effective_cpus").exists())
    else {
        return; // no v1 cpuset hierarchy
    };
    // A bare mkdir leaves cpuset.cpus and cpuset.mems empty.
    std::fs::create_dir_all(cpuset).unwrap();
    assert_eq!(
        std::fs::read_to_string(cpuset.join("cpuset.cpus"))
            .unwrap()
            .trim(),
        ""
    );
    let leaf = Cgroup::resolve(Some(&t.path.join("leaf")), "unused").unwrap();
    leaf.create().unwrap();
    let mut child = Sleeper::spawn();
    leaf.add(child.pid()).unwrap();
    let parent_cpus = std::fs::read_to_string(cpuset.parent().unwrap().join("cpuset.cpus"));
    assert_eq!(
        std::fs::read_to_string(cpuset.join("cpuset.cpus")).unwrap(),
        parent_cpus.unwrap()
    );
    leaf.kill_all(Signal::SIGKILL).unwrap();
    assert_eq!(child.reap(), Some(libc::SIGKILL));
    t.cg.destroy().unwrap();
}
