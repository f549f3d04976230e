//! `exec`: a new process in a running container, in all its namespaces and its cgroup, with
//! the flags runc takes; bad input fails and leaves no process behind.

use crate::harness::{cgroup_dirs, cgroup_rel, ns_inode, Bundle, Ctx};
use crate::report::Report;
use crate::suite::lifecycle::{pid_of, running_sleeper};
use crate::suite::{wait_for, Test};
use anyhow::{ensure, Context, Result};
use serde_json::json;
use std::fs;

pub const TESTS: &[Test] = &[
    ("exec/exit-status", exit_status),
    (
        "exec/joins-namespaces-and-cgroup",
        joins_namespaces_and_cgroup,
    ),
    ("exec/env-cwd-user", env_cwd_user),
    ("exec/process-json", process_json),
    ("exec/detach-pid-file", detach_pid_file),
    ("exec/sub-cgroup", sub_cgroup),
    (
        "exec/paused-needs-ignore-paused",
        paused_needs_ignore_paused,
    ),
    (
        "exec/cap-no-new-privs-preserve-fds",
        cap_no_new_privs_preserve_fds,
    ),
    ("exec/bad-input-fails", bad_input_fails),
];

fn exit_status(ctx: &mut Ctx) -> Result<()> {
    let (b, _) = running_sleeper(ctx)?;
    let out = ctx.rt(&["exec", &b.id, "sh", "-c", "exit 7"])?;
    ensure!(
        out.code() == Some(7),
        "exec exit status: {}",
        out.describe()
    );
    Ok(())
}

fn exec_checker(ctx: &mut Ctx, b: &Bundle, flags: &[&str]) -> Result<Report> {
    let mut args = vec!["exec"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&[&b.id, "/checker"]);
    let out = ctx.rt(&args)?.ok()?;
    Report::parse(&out.stdout)
}

fn joins_namespaces_and_cgroup(ctx: &mut Ctx) -> Result<()> {
    let (b, st) = running_sleeper(ctx)?;
    let init = pid_of(&st)?.to_string();
    let r = exec_checker(ctx, &b, &[])?;
    for ns in ["pid", "net", "ipc", "uts", "mnt"] {
        let want = ns_inode(&init, ns)?;
        ensure!(
            r.get("ns")[ns] == want,
            "{ns} namespace {} differs from the init's {want}",
            r.get("ns")[ns]
        );
    }
    let init_cgroup = fs::read_to_string(format!("/proc/{init}/cgroup"))?;
    ensure!(
        r.str("cgroup") == init_cgroup,
        "cgroup {:?}, init's {init_cgroup:?}",
        r.str("cgroup")
    );
    Ok(())
}

fn env_cwd_user(ctx: &mut Ctx) -> Result<()> {
    let (b, _) = running_sleeper(ctx)?;
    let r = exec_checker(
        ctx,
        &b,
        &[
            "--cwd",
            "/etc",
            "-e",
            "RT_X=1",
            "--user",
            "1000:1000",
            "--additional-gids",
            "5",
        ],
    )?;
    ensure!(
        r.get("env")["RT_X"] == "1",
        "env RT_X is {}",
        r.get("env")["RT_X"]
    );
    ensure!(r.str("cwd") == "/etc", "cwd {:?}", r.str("cwd"));
    ensure!(
        r.status("Uid").split_whitespace().all(|u| u == "1000"),
        "Uid: {}",
        r.status("Uid")
    );
    ensure!(
        r.status("Gid").split_whitespace().all(|g| g == "1000"),
        "Gid: {}",
        r.status("Gid")
    );
    ensure!(
        r.status("Groups").split_whitespace().any(|g| g == "5"),
        "Groups: {}",
        r.status("Groups")
    );
    Ok(())
}

fn process_json(ctx: &mut Ctx) -> Result<()> {
    let (b, _) = running_sleeper(ctx)?;
    let file = ctx.dir.join("process.json");
    let process = json!({
        "terminal": false, "user": { "uid": 0, "gid": 0 }, "args": ["/checker"],
        "env": ["PATH=/bin", "RT_P=yes"], "cwd": "/tmp",
    });
    fs::write(&file, process.to_string())?;
    let out = ctx
        .rt(&[
            "exec",
            "--process",
            file.to_str().context("utf-8 path")?,
            &b.id,
        ])?
        .ok()?;
    let r = Report::parse(&out.stdout)?;
    ensure!(
        r.get("env")["RT_P"] == "yes",
        "env RT_P is {}",
        r.get("env")["RT_P"]
    );
    ensure!(r.str("cwd") == "/tmp", "cwd {:?}", r.str("cwd"));
    Ok(())
}

fn detach_pid_file(ctx: &mut Ctx) -> Result<()> {
    let (b, st) = running_sleeper(ctx)?;
    let init = pid_of(&st)?.to_string();
    let pid_file = ctx.dir.join("exec.pid");
    let arg = pid_file.to_str().context("utf-8 path")?;
    ctx.rt(&["exec", "--detach", "--pid-file", arg, &b.id, "sleep", "300"])?
        .ok()?;
    let pid = fs::read_to_string(&pid_file)
        .context("pid file not written")?
        .trim()
        .to_string();
    ensure!(
        ns_inode(&pid, "pid")? == ns_inode(&init, "pid")?,
        "exec'd process {pid} is not in the container's pid namespace"
    );
    ensure!(
        procs(&b)?.contains(&pid),
        "exec'd process {pid} is not in the container's cgroup"
    );
    Ok(())
}

/// The pids in the container's cgroup (from the first hierarchy that has it).
pub fn procs(b: &Bundle) -> Result<Vec<String>> {
    let dir = cgroup_dirs(&b.cgroup)
        .into_iter()
        .find(|d| d.join("cgroup.procs").exists())
        .context("no cgroup dir")?;
    Ok(fs::read_to_string(dir.join("cgroup.procs"))?
        .lines()
        .map(String::from)
        .collect())
}

fn bad_input_fails(ctx: &mut Ctx) -> Result<()> {
    let (b, _) = running_sleeper(ctx)?;
    let before = procs(&b)?;
    ctx.rt(&["exec", "no-such-container", "true"])?.failed()?;
    ctx.rt(&["exec", "--cwd", "/no/such/dir", &b.id, "true"])?
        .failed()?;
    ctx.rt(&["exec", &b.id, "/no/such/program"])?.failed()?;
    for (name, text) in [
        ("malformed.json", "{\"args\": ["),
        (
            "noargs.json",
            "{\"cwd\": \"/\", \"user\": {\"uid\": 0, \"gid\": 0}}",
        ),
    ] {
        let file = ctx.dir.join(name);
        fs::write(&file, text)?;
        ctx.rt(&[
            "exec",
            "--process",
            file.to_str().context("utf-8 path")?,
            &b.id,
        ])?
        .failed()?;
    }
    ensure!(
        procs(&b)? == before,
        "a failed exec left a process: {:?} -> {:?}",
        before,
        procs(&b)?
    );
    ctx.rt(&["kill", &b.id, "KILL"])?.ok()?;
    ctx.wait_status(&b.id, "stopped")?;
    ctx.rt(&["exec", &b.id, "true"])?.failed()?;
    Ok(())
}

/// `exec --cgroup sub` runs the process in an existing sub-cgroup of the container.
fn sub_cgroup(ctx: &mut Ctx) -> Result<()> {
    let (b, _) = running_sleeper(ctx)?;
    for dir in cgroup_dirs(&b.cgroup).into_iter().filter(|d| d.is_dir()) {
        let sub = dir.join("sub");
        fs::create_dir_all(&sub)?;
        // A v1 cpuset cgroup takes no process until it has cpus and mems. (On v2 the sub-cgroup
        // has no cpuset files unless the container's cgroup enables the controller for it.)
        for file in ["cpuset.cpus", "cpuset.mems"] {
            if !sub.join(file).exists() {
                continue;
            }
            if let Ok(v) = fs::read_to_string(dir.join(file)) {
                fs::write(sub.join(file), v)?;
            }
        }
        ctx.hand_over(&sub)?;
    }
    let r = exec_checker(ctx, &b, &["--cgroup", "sub"])?;
    let cgroup = r.str("cgroup");
    // The pids hierarchy on v1 hosts, the unified one on v2 hosts.
    let line = cgroup
        .lines()
        .find(|l| l.contains(":pids:"))
        .or(cgroup.lines().find(|l| l.starts_with("0::")))
        .context("no cgroup line")?;
    ensure!(
        line.ends_with(&format!("{}/sub", cgroup_rel(&b.cgroup))),
        "exec --cgroup sub ran in {line:?}"
    );
    Ok(())
}

/// Exec into a paused container is refused, unless --ignore-paused: the process then joins
/// the frozen cgroup and runs once the container resumes.
fn paused_needs_ignore_paused(ctx: &mut Ctx) -> Result<()> {
    let (b, _) = running_sleeper(ctx)?;
    ctx.rt(&["pause", &b.id])?.ok()?;
    let before = procs(&b)?;
    ctx.rt(&["exec", &b.id, "true"])?.failed()?;
    ensure!(procs(&b)? == before, "a refused exec left a process");
    let exec = ctx.spawn(&["exec", "--ignore-paused", &b.id, "sh", "-c", "exit 4"])?;
    // Resume only once the new process is in the frozen cgroup: `resume` must not wait on it.
    wait_for(ctx, "the exec'd process in the cgroup", || {
        procs(&b).is_ok_and(|p| p.len() > before.len())
    })?;
    ctx.rt(&["resume", &b.id])?.ok()?;
    let out = exec.wait()?;
    ensure!(
        out.code() == Some(4),
        "exec --ignore-paused after resume: {}",
        out.describe()
    );
    Ok(())
}

/// `--cap` adds to the process's capabilities, `--no-new-privs` sets it, `--preserve-fds N`
/// passes fds 3.. on. The base config sets noNewPrivileges, so the sleeper here clears it.
fn cap_no_new_privs_preserve_fds(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.bundle(|v| {
        v["process"]["args"] = json!(["sleep", "300"]);
        v["process"]["noNewPrivileges"] = json!(false);
    })?;
    ctx.rt(&["run", "--detach", "--bundle", b.dir_str(), &b.id])?
        .ok()?;
    ctx.wait_status(&b.id, "running")?;
    let plain = exec_checker(ctx, &b, &[])?;
    ensure!(
        plain.status("NoNewPrivs") == "0",
        "NoNewPrivs without the flag: {}",
        plain.status("NoNewPrivs")
    );
    let r = exec_checker(ctx, &b, &["--cap", "CAP_SYS_CHROOT", "--no-new-privs"])?;
    let eff = u64::from_str_radix(r.status("CapEff"), 16)?;
    let chroot = crate::suite::inside::cap_mask(&json!(["CAP_SYS_CHROOT"]));
    ensure!(
        eff & chroot != 0,
        "CAP_SYS_CHROOT not added: CapEff {eff:#x}"
    );
    ensure!(
        r.status("NoNewPrivs") == "1",
        "NoNewPrivs: {}",
        r.status("NoNewPrivs")
    );
    let extra = fs::File::open(b.config_path())?;
    let raw = std::os::fd::AsRawFd::as_raw_fd(&extra);
    let out = ctx
        .spawn_with(&["exec", "--preserve-fds", "1", &b.id, "/checker"], |cmd| {
            // SAFETY: dup2 and fcntl are async-signal-safe; fd 3 is the file, without CLOEXEC.
            unsafe {
                std::os::unix::process::CommandExt::pre_exec(cmd, move || {
                    if libc::dup2(raw, 3) == -1 || libc::fcntl(3, libc::F_SETFD, 0) == -1 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        })?
        .wait()?
        .ok()?;
    let fds = Report::parse(&out.stdout)?.get("fds").clone();
    ensure!(
        fds == json!([0, 1, 2, 3]),
        "exec --preserve-fds 1: open fds {fds}"
    );
    Ok(())
}
