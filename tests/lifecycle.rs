//! A `create` killed part-way and a `start` that loses a race with `delete`, on real busybox
//! containers (run as root), each a [`common::Ctr`].

use std::fs;
use std::io::Read;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

mod common;
use common::{wait_until, Ctr};

/// A process is gone once it has no /proc entry or is a zombie.
fn gone(pid: i64) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
    }
}

impl Ctr {
    /// `berth create` in the background, its stdout and stderr pipes ours: whoever still holds
    /// them keeps them from reaching end of file.
    fn spawn_create(&self) -> Child {
        self.berth(&["create", "-b"])
            .arg(self.bundle())
            .arg(&self.id)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// The cgroupsPath's directory in every hierarchy, existing or not.
    fn cgroup_dirs(&self) -> Vec<std::path::PathBuf> {
        let rel = self.cgroup.trim_start_matches('/');
        let root = std::path::Path::new("/sys/fs/cgroup");
        // Pure v2: one hierarchy at the root (its subdirectories are cgroups). v1 and hybrid:
        // one per directory (or symlink to one) below it.
        if root.join("cgroup.controllers").exists() {
            return vec![root.join(rel)];
        }
        fs::read_dir(root)
            .unwrap()
            .flatten()
            .filter(|h| h.path().is_dir())
            .map(|h| h.path().join(rel))
            .collect()
    }

    /// After `delete --force`: no state dir, no cgroup, no process of the cgroup.
    fn force_delete_leaves_nothing(&self) {
        let out = self.cmd("delete", &["--force"]);
        assert!(
            out.status.success(),
            "delete --force: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!self.state_dir().exists(), "state dir left");
        let left: Vec<_> = self
            .cgroup_dirs()
            .into_iter()
            .filter(|d| d.exists())
            .collect();
        assert!(left.is_empty(), "cgroup left: {left:?}");
    }
}

/// SIGKILL `create` and wait for it.
fn kill9(create: &mut Child) {
    let _ = create.kill();
    let _ = create.wait();
}

/// Whether both of the killed create's output pipes reach end of file within 10 s, i.e. no
/// process (an orphaned init) still holds them.
fn outputs_closed(create: &mut Child) -> bool {
    let (tx, rx) = mpsc::channel();
    for mut pipe in [
        Box::new(create.stdout.take().unwrap()) as Box<dyn Read + Send>,
        Box::new(create.stderr.take().unwrap()),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut pipe, &mut std::io::sink());
            let _ = tx.send(());
        });
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    (0..2).all(|_| {
        rx.recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .is_ok()
    })
}

/// A hook that saves its stdin (the state, with the init's pid) to `DIR/state-NAME.json`, then
/// waits for `DIR/go` and leaves `DIR/gone`.
fn blocking_hook(c: &Ctr, name: &str) -> Value {
    let d = c.dir.display();
    json!({ "path": "/bin/sh", "args": ["sh", "-c", format!(
        "cat > {d}/state-{name}.json.tmp && mv {d}/state-{name}.json.tmp {d}/state-{name}.json; \
         while [ ! -e {d}/go ]; do sleep 0.05; done; touch {d}/gone"
    )] })
}

/// Kill `create` while its hook `kind` blocks: the init dies (at once, or as soon as the hook
/// lets it go on), nothing holds the caller's output, and `delete --force` finds and removes
/// what create made.
fn killed_during_hook(kind: &str) {
    let c = Ctr::new("kill9", &["sleep", "100"], |_| {});
    let hook = blocking_hook(&c, kind);
    let path = c.bundle().join("config.json");
    let mut config: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    config["hooks"] = json!({ kind: [hook] });
    fs::write(&path, serde_json::to_vec(&config).unwrap()).unwrap();

    let mut create = c.spawn_create();
    let state = c.dir.join(format!("state-{kind}.json"));
    wait_until("the hook to run", || state.exists());
    let st: Value = serde_json::from_slice(&fs::read(&state).unwrap()).unwrap();
    kill9(&mut create);
    fs::write(c.dir.join("go"), "").unwrap();
    wait_until("the hook to end", || c.dir.join("gone").exists());
    assert!(
        outputs_closed(&mut create),
        "something still holds the killed create's stdout/stderr (an orphaned init)"
    );
    // A hook in the container's namespaces sees the init as pid 1; its closed output is proof.
    if let Some(pid) = st["pid"].as_i64().filter(|_| kind != "createContainer") {
        wait_until("the init to die", || gone(pid));
    }
    let listed = c.berth(&["list", "-q"]).output().unwrap();
    assert!(
        String::from_utf8_lossy(&listed.stdout).contains(&c.id),
        "list does not show the half-created container"
    );
    c.force_delete_leaves_nothing();
}

#[test]
fn create_killed_in_a_create_runtime_hook() {
    killed_during_hook("createRuntime");
}

#[test]
fn create_killed_in_a_create_container_hook() {
    killed_during_hook("createContainer");
}

/// `create` killed at many points: its init never outlives it unless the container was
/// created (it then waits for `start`), and `delete --force` always leaves nothing.
#[test]
fn create_killed_at_any_point() {
    for delay in (0..=200).step_by(10) {
        let c = Ctr::new("kill9any", &["sleep", "100"], |_| {});
        let mut create = c.spawn_create();
        std::thread::sleep(Duration::from_millis(delay));
        kill9(&mut create);
        let out = c.cmd("state", &[]);
        let created = out.status.success()
            && serde_json::from_slice::<Value>(&out.stdout).is_ok_and(|s| s["status"] == "created");
        if !created {
            assert!(
                outputs_closed(&mut create),
                "killed after {delay} ms: something still holds create's stdout/stderr; state: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        c.force_delete_leaves_nothing();
    }
}

/// `start` waiting for the container's lock while `delete` removes the container says it does
/// not exist (not that it is still being created).
#[test]
fn start_that_loses_to_delete_says_the_container_does_not_exist() {
    let c = Ctr::new("race", &["sleep", "100"], |_| {});
    // The init inherits create's stdio: no pipe, or reading it would wait for the container.
    let status = c
        .berth(&["create", "-b"])
        .arg(c.bundle())
        .arg(&c.id)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "create failed");
    // Hold the container's lock as a `delete` does, so that `start` waits for it.
    let store = berth::state::Store::new(&c.dir.join("root"));
    let dir = store.open(&c.id, true).unwrap();
    let start = c
        .berth(&["start", &c.id])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let state = dir.load().unwrap().unwrap();
    nix::sys::signal::kill(state.init_pid(), nix::sys::signal::Signal::SIGKILL).unwrap();
    wait_until("the init to die", || !state.init_alive());
    state.cgroup.destroy().unwrap();
    dir.remove().unwrap();
    let out = start.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("does not exist"),
        "start after delete: {err}"
    );
}

/// A failed `create` in a cgroup that existed (empty) before it kills what it started there but
/// leaves the cgroup: it removes only the directories it made.
#[test]
fn failed_create_leaves_a_cgroup_it_did_not_make() {
    let c = Ctr::new("adopt", &["sleep", "100"], |cfg| {
        cfg["hooks"] =
            json!({ "createRuntime": [{ "path": "/bin/sh", "args": ["sh", "-c", "exit 1"] }] });
    });
    let dirs = c.cgroup_dirs();
    for d in &dirs {
        fs::create_dir_all(d).unwrap();
    }
    let err = c.create_fails();
    let left: Vec<_> = dirs.iter().filter(|d| !d.exists()).collect();
    for d in &dirs {
        let _ = fs::remove_dir(d);
    }
    assert!(
        err.contains("createRuntime"),
        "create failed otherwise: {err}"
    );
    assert!(left.is_empty(), "the failed create removed {left:?}");
}
