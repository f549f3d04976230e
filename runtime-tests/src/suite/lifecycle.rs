//! The lifecycle seen from outside: create/start/state/kill/delete/run/list.

use super::console::receive_fd;
use super::{process_gone, wait_file, wait_for, Test};
use crate::harness::{cgroup_dirs, Bundle, Ctx, CGROUP_PARENT};
use anyhow::{ensure, Context, Result};
use serde_json::{json, Value};
use std::fs;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::time::Instant;

pub const TESTS: &[Test] = &[
    (
        "lifecycle/create-start-stop-delete",
        create_start_stop_delete,
    ),
    ("lifecycle/run-exit-status", run_exit_status),
    ("lifecycle/run-killed-status", run_killed_status),
    ("lifecycle/run-detach", run_detach),
    ("lifecycle/kill-default-sigterm", kill_default_sigterm),
    ("lifecycle/kill-sigkill-spellings", kill_sigkill_spellings),
    ("lifecycle/kill-paused-sigkill", kill_paused_sigkill),
    ("lifecycle/pid-file", pid_file),
    ("lifecycle/list", list),
    ("lifecycle/delete-force-running", delete_force_running),
    (
        "lifecycle/delete-force-kills-whole-cgroup",
        delete_force_kills_whole_cgroup,
    ),
    (
        "lifecycle/kill-all-reaches-whole-cgroup",
        kill_all_reaches_whole_cgroup,
    ),
    ("lifecycle/delete-force-nonexistent", |c| {
        c.rt(&["delete", "--force", "no-such-container"])?
            .ok()
            .map(drop)
    }),
    ("lifecycle/kill-stopped-not-running", kill_stopped),
    ("lifecycle/large-annotations", large_annotations),
    (
        "lifecycle/create-refuses-busy-cgroup",
        create_refuses_busy_cgroup,
    ),
    (
        "lifecycle/create-refuses-frozen-cgroup",
        create_refuses_frozen_cgroup,
    ),
    ("lifecycle/pidfd-socket", pidfd_socket),
    ("lifecycle/run-no-subreaper", run_no_subreaper),
    ("lifecycle/start-running-fails", start_running_fails),
    ("lifecycle/delete-running-fails", delete_running_fails),
    ("lifecycle/duplicate-id-fails", duplicate_id_fails),
];

/// Waits for /tmp/go (made from the host) and exits: lets a test see `running`
/// and then `stopped` deterministically.
pub const WAIT_FOR_GO: &str = "while [ ! -e /tmp/go ]; do sleep 0.1; done";

fn shell(script: &str) -> impl FnOnce(&mut Value) + '_ {
    move |v| v["process"]["args"] = json!(["sh", "-c", script])
}

fn create(ctx: &mut Ctx, b: &Bundle) -> Result<()> {
    ctx.rt(&["create", "--bundle", b.dir_str(), &b.id])?
        .ok()
        .map(drop)
}

/// A detached long-running container, already `running`; returns its state.
pub fn running_sleeper(ctx: &mut Ctx) -> Result<(Bundle, Value)> {
    let b = ctx.bundle(|v| v["process"]["args"] = json!(["sleep", "300"]))?;
    ctx.rt(&["run", "--detach", "--bundle", b.dir_str(), &b.id])?
        .ok()?;
    let st = ctx.wait_status(&b.id, "running")?;
    Ok((b, st))
}

pub fn pid_of(st: &Value) -> Result<i64> {
    let pid = st["pid"]
        .as_i64()
        .with_context(|| format!("state has no pid: {st}"))?;
    ensure!(pid > 0, "state pid {pid} is not positive");
    Ok(pid)
}

/// MAJOR.MINOR.PATCH with an optional -suffix, as spec versions are written.
fn is_semver(v: &str) -> bool {
    let core = v.split_once('-').map_or(v, |(core, _)| core);
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

fn create_start_stop_delete(ctx: &mut Ctx) -> Result<()> {
    let annotations = json!({ "org.example.runtime-tests": "yes" });
    let b = ctx.bundle(|v| {
        shell(WAIT_FOR_GO)(v);
        v["annotations"] = annotations.clone();
    })?;
    create(ctx, &b)?;
    let st = ctx.state(&b.id)?;
    ensure!(
        st["status"] == "created",
        "status after create: {}",
        st["status"]
    );
    ensure!(st["id"] == b.id.as_str(), "state id: {}", st["id"]);
    ensure!(
        st["bundle"] == b.dir_str(),
        "state bundle: {} (want {})",
        st["bundle"],
        b.dir_str()
    );
    ensure!(
        st["ociVersion"].as_str().is_some_and(is_semver),
        "state ociVersion: {}",
        st["ociVersion"]
    );
    ensure!(
        st["annotations"] == annotations,
        "state annotations: {}",
        st["annotations"]
    );
    let pid = pid_of(&st)?;
    ensure!(
        !process_gone(pid),
        "created container's pid {pid} does not exist"
    );

    ctx.rt(&["start", &b.id])?.ok()?;
    let st = ctx.state(&b.id)?;
    ensure!(
        st["status"] == "running",
        "status after start: {}",
        st["status"]
    );
    ensure!(pid_of(&st)? == pid, "pid changed across start");

    fs::write(b.rootfs().join("tmp/go"), "")?;
    ctx.wait_status(&b.id, "stopped")?;
    ctx.rt(&["delete", &b.id])?.ok()?;
    ctx.assert_nothing_left(&b.id, &b.cgroup)
}

fn run_exit_status(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.bundle(shell("exit 3"))?;
    let out = ctx.rt(&["run", "--bundle", b.dir_str(), &b.id])?;
    ensure!(
        out.code() == Some(3),
        "run of `exit 3` returned {}",
        out.describe()
    );
    Ok(())
}

fn run_killed_status(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.bundle(|v| v["process"]["args"] = json!(["sleep", "300"]))?;
    let run = ctx.spawn(&["run", "--bundle", b.dir_str(), &b.id])?;
    ctx.wait_status(&b.id, "running")?;
    ctx.rt(&["kill", &b.id, "KILL"])?.ok()?;
    let out = run.wait()?;
    ensure!(
        out.code() == Some(128 + 9),
        "run of a SIGKILLed process returned {}",
        out.describe()
    );
    Ok(())
}

fn run_detach(ctx: &mut Ctx) -> Result<()> {
    let (b, _) = running_sleeper(ctx)?;
    ctx.rt(&["kill", &b.id, "KILL"])?.ok()?;
    ctx.wait_status(&b.id, "stopped")?;
    ctx.rt(&["delete", &b.id])?.ok()?;
    ctx.assert_nothing_left(&b.id, &b.cgroup)
}

fn kill_default_sigterm(ctx: &mut Ctx) -> Result<()> {
    // The init of a pid namespace only gets signals it has a handler for.
    let b = ctx.bundle(shell(
        "trap 'echo TERM > /tmp/sig; exit 0' TERM; touch /tmp/ready; while true; do sleep 0.1; done",
    ))?;
    create(ctx, &b)?;
    ctx.rt(&["start", &b.id])?.ok()?;
    wait_file(ctx, &b.rootfs().join("tmp/ready"))?;
    ctx.rt(&["kill", &b.id])?.ok()?;
    ctx.wait_status(&b.id, "stopped")?;
    let got = fs::read_to_string(b.rootfs().join("tmp/sig")).unwrap_or_default();
    ensure!(
        got.trim() == "TERM",
        "the process did not get SIGTERM (marker {got:?})"
    );
    Ok(())
}

fn kill_sigkill_spellings(ctx: &mut Ctx) -> Result<()> {
    for sig in ["KILL", "SIGKILL", "9"] {
        let (b, _) = running_sleeper(ctx)?;
        ctx.rt(&["kill", &b.id, sig])?.ok()?;
        ctx.wait_status(&b.id, "stopped")
            .with_context(|| format!("after kill {sig}"))?;
    }
    Ok(())
}

/// SIGKILL to a paused container's init must stop it: on cgroup v1 a frozen process does not
/// die until thawed, so the runtime thaws it (runc does; Podman's `kill` of a paused
/// container waits for the exit).
fn kill_paused_sigkill(ctx: &mut Ctx) -> Result<()> {
    let (b, _) = running_sleeper(ctx)?;
    ctx.rt(&["pause", &b.id])?.ok()?;
    ctx.wait_status(&b.id, "paused")?;
    ctx.rt(&["kill", &b.id, "KILL"])?.ok()?;
    ctx.wait_status(&b.id, "stopped")
        .context("after kill KILL of the paused container")?;
    Ok(())
}

fn pid_file(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.bundle(shell(WAIT_FOR_GO))?;
    let pid_file = ctx.dir.join("init.pid");
    let pid_arg = pid_file.to_str().context("utf-8 path")?;
    ctx.rt(&[
        "create",
        "--bundle",
        b.dir_str(),
        "--pid-file",
        pid_arg,
        &b.id,
    ])?
    .ok()?;
    let st = ctx.state(&b.id)?;
    let written = fs::read_to_string(&pid_file).context("pid file not written")?;
    ensure!(
        written.trim().parse::<i64>().ok() == Some(pid_of(&st)?),
        "pid file {written:?}, state pid {}",
        st["pid"]
    );
    Ok(())
}

fn list(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.bundle(shell(WAIT_FOR_GO))?;
    create(ctx, &b)?;
    let text = ctx.rt(&["list"])?.ok()?.stdout;
    ensure!(
        text.lines()
            .any(|l| l.split_whitespace().next() == Some(&b.id) && l.contains("created")),
        "`list` does not show {} as created:\n{text}",
        b.id
    );
    let out = ctx.rt(&["list", "-f", "json"])?.ok()?;
    let all: Vec<Value> =
        serde_json::from_str(&out.stdout).with_context(|| format!("list json: {}", out.stdout))?;
    let me = all
        .iter()
        .find(|c| c["id"] == b.id.as_str())
        .with_context(|| format!("`list -f json` lacks {}", b.id))?;
    ensure!(me["status"] == "created", "listed status {}", me["status"]);
    pid_of(me).map(drop)
}

fn delete_force_running(ctx: &mut Ctx) -> Result<()> {
    let (b, st) = running_sleeper(ctx)?;
    let pid = pid_of(&st)?;
    ctx.rt(&["delete", "--force", &b.id])?.ok()?;
    wait_for(ctx, "the container process to die", || process_gone(pid))?;
    ctx.assert_nothing_left(&b.id, &b.cgroup)
}

/// A `sleep` of the runner's, moved into the container's cgroup in every hierarchy: a process
/// of the cgroup that the container's pid namespace does not hold (so the init's death does
/// not end it). Returns its pid. Rootless, it is the runtime's user's, as the runtime may only
/// signal those.
fn join_from_outside(ctx: &mut Ctx, b: &Bundle) -> Result<i64> {
    let mut sleep = std::process::Command::new("sleep");
    sleep.arg("300");
    if let Some((uid, gid)) = ctx.env.runtime.user {
        sleep.uid(uid).gid(gid);
    }
    let pid = ctx.child(&mut sleep)?;
    let dirs = cgroup_dirs(&b.cgroup);
    ensure!(!dirs.is_empty(), "the container has no cgroup directory");
    for dir in dirs {
        let procs = dir.join("cgroup.procs");
        fs::write(&procs, pid.to_string())
            .with_context(|| format!("write {pid} to {}", procs.display()))?;
    }
    Ok(i64::from(pid))
}

/// `delete --force` kills every process of the cgroup, not only the init's pid namespace, and
/// removes the cgroup in every hierarchy.
fn delete_force_kills_whole_cgroup(ctx: &mut Ctx) -> Result<()> {
    let (b, _) = running_sleeper(ctx)?;
    let outsider = join_from_outside(ctx, &b)?;
    ctx.rt(&["delete", "--force", &b.id])?.ok()?;
    wait_for(ctx, "the process added to the cgroup to die", || {
        process_gone(outsider)
    })?;
    ctx.assert_nothing_left(&b.id, &b.cgroup)
}

/// `kill --all` signals every process of the cgroup: TERM (which a pid namespace's init
/// without a handler ignores) and KILL, which also ends the container.
fn kill_all_reaches_whole_cgroup(ctx: &mut Ctx) -> Result<()> {
    let (b, st) = running_sleeper(ctx)?;
    for sig in ["TERM", "KILL"] {
        let outsider = join_from_outside(ctx, &b)?;
        ctx.rt(&["kill", "--all", &b.id, sig])?.ok()?;
        wait_for(
            ctx,
            &format!("the process added to the cgroup to die of {sig}"),
            || process_gone(outsider),
        )?;
    }
    ctx.wait_status(&b.id, "stopped")?;
    ensure!(
        process_gone(pid_of(&st)?),
        "the init survived kill --all KILL"
    );
    Ok(())
}

fn start_running_fails(ctx: &mut Ctx) -> Result<()> {
    let (b, st) = running_sleeper(ctx)?;
    ctx.rt(&["start", &b.id])?.failed()?;
    let after = ctx.state(&b.id)?;
    ensure!(
        after["status"] == "running" && after["pid"] == st["pid"],
        "second start changed the container: {after}"
    );
    Ok(())
}

fn delete_running_fails(ctx: &mut Ctx) -> Result<()> {
    let (b, st) = running_sleeper(ctx)?;
    ctx.rt(&["delete", &b.id])?.failed()?;
    let after = ctx.state(&b.id)?;
    ensure!(
        after["status"] == "running" && after["pid"] == st["pid"],
        "delete without --force changed it: {after}"
    );
    Ok(())
}

fn duplicate_id_fails(ctx: &mut Ctx) -> Result<()> {
    let first = ctx.bundle(shell(WAIT_FOR_GO))?;
    create(ctx, &first)?;
    let before = ctx.state(&first.id)?;
    let second = ctx.bundle(shell(WAIT_FOR_GO))?;
    ctx.rt(&["create", "--bundle", second.dir_str(), &first.id])?
        .failed()?;
    let after = ctx.state(&first.id)?;
    ensure!(
        before == after,
        "the existing container changed: {before} -> {after}"
    );
    Ok(())
}

/// `kill` of a container whose process has exited fails with runc's words, which containerd's
/// shim matches; `kill --all` of it succeeds, as in runc.
fn kill_stopped(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.bundle(shell("true"))?;
    ctx.rt(&["run", "--detach", "--bundle", b.dir_str(), &b.id])?
        .ok()?;
    ctx.wait_status(&b.id, "stopped")?;
    let out = ctx.rt(&["kill", &b.id, "KILL"])?.failed()?;
    ensure!(
        out.stderr.contains("container not running"),
        "kill of a stopped container says: {}",
        out.stderr.trim()
    );
    ctx.rt(&["kill", "--all", &b.id, "KILL"])?.ok()?;
    ctx.rt(&["delete", &b.id])?.ok()?;
    ctx.assert_nothing_left(&b.id, &b.cgroup)
}

/// 1 MiB of annotations: they reach `state` and the container runs (runc runs them; the state
/// also crosses the runtime's channel to its init for the container's own hooks).
fn large_annotations(ctx: &mut Ctx) -> Result<()> {
    let annotations: serde_json::Map<String, Value> = (0..16)
        .map(|i| (format!("org.example.big{i}"), json!("x".repeat(64 << 10))))
        .collect();
    let b = ctx.bundle(|v| {
        shell(WAIT_FOR_GO)(v);
        v["annotations"] = Value::Object(annotations.clone());
    })?;
    create(ctx, &b)?;
    let st = ctx.state(&b.id)?;
    ensure!(
        st["annotations"] == Value::Object(annotations),
        "state annotations differ ({} bytes)",
        st["annotations"].to_string().len()
    );
    ctx.rt(&["start", &b.id])?.ok()?;
    fs::write(b.rootfs().join("tmp/go"), "")?;
    ctx.wait_status(&b.id, "stopped")?;
    ctx.rt(&["delete", &b.id])?.ok()?;
    ctx.assert_nothing_left(&b.id, &b.cgroup)
}

/// A second container in the cgroup of a running one is refused (runc: "container's cgroup is
/// not empty"), and its failed create leaves the first one and the cgroup alone.
fn create_refuses_busy_cgroup(ctx: &mut Ctx) -> Result<()> {
    let (first, st) = running_sleeper(ctx)?;
    let cgroup = first.cgroup.clone();
    let second = ctx.bundle(|v| {
        v["linux"]["cgroupsPath"] = json!(format!("/{CGROUP_PARENT}/{cgroup}"));
    })?;
    ctx.track(&second.id);
    let out = ctx
        .rt(&["create", "--bundle", second.dir_str(), &second.id])?
        .failed()?;
    ensure!(
        out.stderr.contains("not empty"),
        "create in a busy cgroup says: {}",
        out.stderr.trim()
    );
    ctx.rt(&["state", &second.id])?.failed()?;
    let after = ctx.state(&first.id)?;
    ensure!(
        after["status"] == "running" && after["pid"] == st["pid"],
        "the failed create changed the first container: {after}"
    );
    ensure!(
        !cgroup_dirs(&cgroup).is_empty(),
        "the failed create removed the cgroup"
    );
    ctx.rt(&["delete", "--force", &first.id])?.ok()?;
    ctx.assert_nothing_left(&first.id, &first.cgroup)
}

/// An empty cgroup that is frozen is refused: the container would start frozen (runc says
/// "container's cgroup unexpectedly frozen"). The cgroup is not ours: it stays.
fn create_refuses_frozen_cgroup(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.bundle(shell("true"))?;
    let v1 = Path::new("/sys/fs/cgroup/freezer");
    let (dir, file, frozen) = if v1.is_dir() {
        (
            v1.join(CGROUP_PARENT).join(&b.cgroup),
            "freezer.state",
            "FROZEN",
        )
    } else {
        let dir = Path::new("/sys/fs/cgroup")
            .join(CGROUP_PARENT)
            .join(&b.cgroup);
        (dir, "cgroup.freeze", "1")
    };
    fs::create_dir_all(&dir).with_context(|| format!("mkdir {}", dir.display()))?;
    fs::write(dir.join(file), frozen).with_context(|| format!("freeze {}", dir.display()))?;
    ctx.track(&b.id);
    let out = ctx
        .rt(&["create", "--bundle", b.dir_str(), &b.id])?
        .failed();
    let thawed = if file == "freezer.state" {
        "THAWED"
    } else {
        "0"
    };
    fs::write(dir.join(file), thawed)?;
    let out = out?;
    ensure!(
        out.stderr.contains("frozen"),
        "create in a frozen cgroup says: {}",
        out.stderr.trim()
    );
    ensure!(dir.is_dir(), "the failed create removed the frozen cgroup");
    Ok(())
}

/// The pid a pidfd refers to, from its fdinfo.
fn pidfd_pid(fd: &OwnedFd) -> Result<i64> {
    let info = fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd()))?;
    info.lines()
        .find_map(|l| l.strip_prefix("Pid:"))
        .and_then(|p| p.trim().parse().ok())
        .with_context(|| format!("not a pidfd: {info}"))
}

/// `--pidfd-socket` (runc 1.2+): `create` sends a pidfd of the init to the socket, `exec` one
/// of the process it adds; the pidfd signals the process.
fn pidfd_socket(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.bundle(|v| v["process"]["args"] = json!(["sleep", "300"]))?;
    let receive = |ctx: &mut Ctx, args: &[&str], name: &str| -> Result<OwnedFd> {
        let sock = ctx.dir.join(name);
        let listener = UnixListener::bind(&sock)?;
        ctx.hand_over(&sock)?;
        let sock = sock.to_str().context("utf-8 path")?;
        let mut full = args.to_vec();
        full.splice(1..1, ["--pidfd-socket", sock]);
        ctx.rt(&full)?.ok()?;
        Ok(receive_fd(listener, Instant::now() + ctx.timeout())?.1)
    };
    let init_fd = receive(
        ctx,
        &["create", "--bundle", b.dir_str(), &b.id],
        "init.sock",
    )?;
    let init = pid_of(&ctx.state(&b.id)?)?;
    ensure!(
        pidfd_pid(&init_fd)? == init,
        "create's pidfd is of pid {}, the init is {init}",
        pidfd_pid(&init_fd)?
    );
    ctx.rt(&["start", &b.id])?.ok()?;
    let exec_fd = receive(
        ctx,
        &["exec", "--detach", &b.id, "sleep", "301"],
        "exec.sock",
    )?;
    let pid = pidfd_pid(&exec_fd)?;
    let cmdline = fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    ensure!(
        cmdline == "sleep\x00301\x00",
        "exec's pidfd is of pid {pid} ({cmdline:?}), not the exec'd sleep"
    );
    // SAFETY: pidfd_send_signal takes a pidfd we own, a signal, no siginfo and no flags.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            init_fd.as_raw_fd(),
            libc::SIGKILL,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    ensure!(
        r == 0,
        "pidfd_send_signal: {}",
        std::io::Error::last_os_error()
    );
    ctx.wait_status(&b.id, "stopped")?;
    Ok(())
}

/// `run --no-subreaper` still waits for the container and returns its exit status, also when
/// its init is forked by an intermediate process (a namespace joined by path).
fn run_no_subreaper(ctx: &mut Ctx) -> Result<()> {
    // The runner's own: any namespace will do.
    let ipc = format!("/proc/{}/ns/ipc", std::process::id());
    for join in [false, true] {
        let b = ctx.bundle(|v| {
            shell("exit 3")(v);
            if join {
                v["linux"]["namespaces"]
                    .as_array_mut()
                    .expect("namespaces")
                    .retain(|n| n["type"] != "ipc");
                v["linux"]["namespaces"]
                    .as_array_mut()
                    .expect("namespaces")
                    .push(json!({ "type": "ipc", "path": ipc }));
            }
        })?;
        let out = ctx.rt(&["run", "--no-subreaper", "--bundle", b.dir_str(), &b.id])?;
        ensure!(
            out.code() == Some(3),
            "run --no-subreaper of `exit 3` (ipc joined by path: {join}) returned {}: {}",
            out.describe(),
            out.stderr.trim()
        );
    }
    Ok(())
}
