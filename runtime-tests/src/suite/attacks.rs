//! The runc CVE classes, each written as the attack itself. A runtime passes when the attack
//! gets nowhere: the operation fails cleanly, or succeeds without the harm.

use super::apparmor::{self, confined_by};
use super::lifecycle::pid_of;
use super::Test;
use crate::harness::Ctx;
use crate::report::Report;
use anyhow::{ensure, Context, Result};
use serde_json::{json, Value};
use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const TESTS: &[Test] = &[
    ("attack/runtime-exe-via-proc", runtime_exe_via_proc),
    ("attack/runtime-exe-via-shebang", runtime_exe_via_shebang),
    ("attack/cwd-through-leaked-fd", cwd_through_leaked_fd),
    ("attack/mount-through-symlink", mount_through_symlink),
    ("attack/mount-symlink-race", mount_symlink_race),
    ("attack/mask-with-fake-dev-null", mask_with_fake_dev_null),
    (
        "attack/no-inheritable-by-default",
        no_inheritable_by_default,
    ),
    ("attack/apparmor-label-on-tmpfs-proc", |c| {
        label_through_fake_proc(c, false)
    }),
    ("attack/apparmor-label-symlinked-proc", |c| {
        label_through_fake_proc(c, true)
    }),
    ("attack/sysctl-over-bind-mount", sysctl_over_bind_mount),
    (
        "attack/sysctl-through-symlinked-proc",
        sysctl_through_symlinked_proc,
    ),
];

/// CVE-2019-5736: while `exec` enters the container, a container process opens the runtime's
/// binary through /proc/PID/exe, to overwrite it once the runtime exits.
fn runtime_exe_via_proc(ctx: &mut Ctx) -> Result<()> {
    let bin = fs::metadata(&ctx.env.runtime.path)?;
    let (dev, ino) = (bin.dev().to_string(), bin.ino().to_string());
    // The attacker stops when told (or at the timeout), so slow hosts get all 20 execs in.
    let seconds = ctx.timeout().as_secs().to_string();
    let b = ctx
        .bundle(|v| v["process"]["args"] = json!(["/checker", "attack-exe", dev, ino, seconds]))?;
    let attacker = ctx.spawn(&["run", "--bundle", b.dir_str(), &b.id])?;
    ctx.wait_status(&b.id, "running")?;
    for _ in 0..20 {
        ctx.rt(&["exec", &b.id, "true"])?.ok()?;
    }
    fs::write(b.rootfs().join("attack-stop"), "")?;
    let out = attacker.wait()?.ok()?;
    let got: Value = serde_json::from_str(out.stdout.trim())
        .with_context(|| format!("attacker said {:?}", out.stdout))?;
    ensure!(
        got["opened"] == json!([]),
        "the container opened the runtime binary through /proc/PID/exe: {got}"
    );
    ensure!(
        got["writable"] == false,
        "the container could open the runtime binary for writing: {got}"
    );
    Ok(())
}

/// CVE-2019-5736 as it was exploited: in a glibc image, `/evil.sh` is `#!/proc/self/exe`, so
/// `exec CID /evil.sh` runs whatever /proc/self/exe is in the process the runtime starts. Were
/// that the runtime's host binary, a container process could hold it through /proc/PID/exe and
/// write to it once no runtime runs it. The runtime here is a copy, which the attacker really
/// tries to overwrite (the container is detached, so only the `exec` runs the copy). The exec'd
/// binary's stdout is a full pipe: it blocks on its first write (`--version`'s) until the
/// attacker has had its chance, however busy the host.
fn runtime_exe_via_shebang(ctx: &mut Ctx) -> Result<()> {
    let name = ctx
        .env
        .runtime
        .path
        .file_name()
        .context("runtime file name")?;
    let copy = ctx.dir.join("runtime-copy").join(name);
    fs::create_dir_all(copy.parent().context("copy dir")?)?;
    fs::copy(&ctx.env.runtime.path, &copy)?;
    let original = fs::read(&copy)?;
    let meta = fs::metadata(&copy)?;
    let (dev, ino) = (meta.dev(), meta.ino());
    let attack = format!(
        "/checker attack-exe {dev} {ino} {} write > /attack-report",
        ctx.timeout().as_secs()
    );
    let b = ctx.bundle(|v| v["process"]["args"] = json!(["sh", "-c", attack]))?;
    glibc_image(&b.rootfs(), &copy)?;
    let evil = b.rootfs().join("evil.sh");
    fs::write(&evil, "#!/proc/self/exe --version\n")?;
    fs::set_permissions(&evil, fs::Permissions::from_mode(0o755))?;
    let detach = ["run", "--detach", "--bundle", b.dir_str(), &b.id];
    ctx.spawn_binary(&copy, &detach, |_| {})?.wait()?.ok()?;
    ctx.wait_status(&b.id, "running")?;

    let (rd, wr) = full_pipe()?;
    let exec = ctx.spawn_binary(&copy, &["exec", &b.id, "/evil.sh"], |cmd| {
        cmd.stdout(wr);
    })?;
    // The attacker needs microseconds once the process is there; a fixed runtime costs the wait.
    let caught = b.rootfs().join("attack-caught");
    let deadline = Instant::now() + ctx.timeout() / 10;
    while !caught.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = std::io::Read::read_to_end(&mut fs::File::from(rd), &mut out);
        String::from_utf8_lossy(&out).to_lowercase()
    });
    exec.wait()?;
    // The script ran a runtime binary (sealed or not) inside the container.
    let ran = reader.join().is_ok_and(|out| out.contains("version"));

    fs::write(b.rootfs().join("attack-stop"), "")?;
    ctx.wait_status(&b.id, "stopped")?;
    let report = fs::read_to_string(b.rootfs().join("attack-report"))?;
    let got: Value =
        serde_json::from_str(report.trim()).with_context(|| format!("attacker said {report:?}"))?;
    ensure!(
        fs::read(&copy)? == original,
        "the container overwrote the runtime binary (a copy) through /proc/PID/exe: {got}"
    );
    ensure!(
        got["opened"] == json!([]),
        "a container process ran the runtime's host binary (a copy), which the container opened through /proc/PID/exe: {got}"
    );
    ensure!(
        ran,
        "`exec /evil.sh` did not run the runtime binary in the glibc image: the test proves nothing"
    );
    Ok(())
}

/// A pipe whose buffer is full, so the first write to its (blocking) write end blocks until
/// the read end is read.
fn full_pipe() -> Result<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let (rd, wr) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    fcntl(&wr, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
    while nix::unistd::write(&wr, &[0u8; 4096]).is_ok() {}
    while nix::unistd::write(&wr, &[0u8]).is_ok() {}
    fcntl(&wr, FcntlArg::F_SETFL(OFlag::empty()))?;
    Ok((rd, wr))
}

/// Make `rootfs` a glibc image that can run `binary`: its dynamic loader and libraries, copied
/// from the host to the same paths, as `ldd` lists them (or the loader itself, where there is
/// no ldd, as in the test VM).
fn glibc_image(rootfs: &Path, binary: &Path) -> Result<()> {
    let out = match std::process::Command::new("ldd").arg(binary).output() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::process::Command::new("/lib64/ld-linux-x86-64.so.2")
                .arg("--list")
                .arg(binary)
                .output()?
        }
        r => r?,
    };
    // A static runtime needs nothing (ldd then fails).
    let text = String::from_utf8_lossy(&out.stdout);
    for lib in text.lines().filter_map(|l| {
        let path = l.split("=>").last()?.split_whitespace().next()?;
        path.starts_with('/').then_some(path)
    }) {
        let to = rootfs.join(lib.trim_start_matches('/'));
        fs::create_dir_all(to.parent().context("library dir")?)?;
        fs::copy(lib, &to).with_context(|| format!("copying {lib}"))?;
    }
    Ok(())
}

/// CVE-2024-21626: process.cwd names an fd the runtime leaked (a host directory), so the
/// container process would start outside its root.
fn cwd_through_leaked_fd(ctx: &mut Ctx) -> Result<()> {
    for fd in 3..=12 {
        let b = ctx.bundle(|v| {
            v["process"]["args"] = json!(["/checker"]);
            v["process"]["cwd"] = json!(format!("/proc/self/fd/{fd}"));
        })?;
        let out = ctx.rt(&["run", "--bundle", b.dir_str(), &b.id])?;
        if !out.success() {
            continue;
        }
        let r = Report::parse(&out.stdout)?;
        ensure!(
            !r.str("cwd").contains("unreachable"),
            "cwd /proc/self/fd/{fd} put the process outside its root: {:?}",
            r.str("cwd")
        );
    }
    Ok(())
}

/// CVE-2019-19921 and kin: a mount destination that is a symlink in the rootfs, absolute or
/// climbing with `..`, pointing at a host directory. The mount must land inside the rootfs.
fn mount_through_symlink(ctx: &mut Ctx) -> Result<()> {
    let host = ctx.dir.join("host-target");
    fs::create_dir_all(&host)?;
    let b = ctx.bundle(|v| {
        let mounts = v["mounts"].as_array_mut().expect("mounts");
        for link in ["evil-abs", "evil-rel"] {
            mounts.push(json!({ "destination": format!("/{link}/sub"), "type": "tmpfs", "source": "tmpfs" }));
        }
    })?;
    let climb = format!(
        "{}{}",
        "../".repeat(16),
        host.to_str().context("utf-8 path")?.trim_start_matches('/')
    );
    symlink(&host, b.rootfs().join("evil-abs"))?;
    symlink(climb, b.rootfs().join("evil-rel"))?;
    // Either outcome is safe as long as the host directory is untouched.
    let _ = ctx.rt(&["run", "--bundle", b.dir_str(), &b.id])?;
    host_untouched(&host)
}

/// CVE-2021-30465 and kin: while the runtime mounts at /race/sub, `/race` keeps flipping
/// between a directory and a symlink to a host directory. No mount and no file may land there.
fn mount_symlink_race(ctx: &mut Ctx) -> Result<()> {
    let host = ctx.dir.join("race-target");
    fs::create_dir_all(&host)?;
    for _ in 0..10 {
        let b = ctx.bundle(|v| {
            let mounts = v["mounts"].as_array_mut().expect("mounts");
            mounts.push(json!({ "destination": "/race/sub", "type": "tmpfs", "source": "tmpfs" }));
            v["process"]["args"] = json!(["true"]);
        })?;
        let race = b.rootfs().join("race");
        let stop = Arc::new(AtomicBool::new(false));
        let flipper = {
            let (stop, host, race) = (stop.clone(), host.clone(), race.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let _ = fs::remove_dir(&race).or_else(|_| fs::remove_file(&race));
                    let _ = fs::create_dir(&race);
                    let _ = fs::remove_dir(&race);
                    let _ = symlink(&host, &race);
                }
            })
        };
        let _ = ctx.rt(&["run", "--bundle", b.dir_str(), &b.id]);
        stop.store(true, Ordering::Relaxed);
        let _ = flipper.join();
        host_untouched(&host)?;
    }
    Ok(())
}

/// Nothing created in, and nothing mounted on, a host directory a container aimed at.
fn host_untouched(host: &Path) -> Result<()> {
    let entries: Vec<_> = fs::read_dir(host)?
        .flatten()
        .map(|e| e.file_name())
        .collect();
    ensure!(
        entries.is_empty(),
        "the runtime created {entries:?} in the host directory {}",
        host.display()
    );
    let mountinfo = fs::read_to_string("/proc/self/mountinfo")?;
    ensure!(
        !mountinfo.contains(host.to_str().unwrap_or_default()),
        "a mount landed on the host directory"
    );
    Ok(())
}

/// CVE-2025-31133: the container's /dev (bind-mounted from the bundle) has a `null` that is a
/// symlink to a host procfs file. Masking with it would expose that file where a masked path was.
fn mask_with_fake_dev_null(ctx: &mut Ctx) -> Result<()> {
    let dev = ctx.dir.join("fake-dev");
    fs::create_dir_all(&dev)?;
    let _ = fs::remove_file(dev.join("null"));
    symlink("/proc/sys/kernel/core_pattern", dev.join("null"))?;
    let b = ctx.bundle(|v| {
        let mounts = v["mounts"].as_array_mut().expect("mounts");
        mounts.retain(|m| {
            !m["destination"]
                .as_str()
                .unwrap_or_default()
                .starts_with("/dev")
        });
        mounts.push(
            json!({ "destination": "/dev", "type": "bind", "source": dev, "options": ["rbind"] }),
        );
        v["process"]["args"] = json!(["/checker", "read:/proc/keys", "stat:/proc/keys"]);
        v["linux"]["maskedPaths"] = json!(["/proc/keys"]);
    })?;
    let out = ctx.rt(&["run", "--bundle", b.dir_str(), &b.id])?;
    if !out.success() {
        return Ok(());
    }
    let r = Report::parse(&out.stdout)?;
    let read = &r.get("probes")["read:/proc/keys"];
    ensure!(
        read.get("errno").is_some() || read["ok"] == "",
        "masked /proc/keys reads {read}: the mask was not the null device"
    );
    Ok(())
}

/// CVE-2022-29162: with no inheritable set in the config, the process has none.
fn no_inheritable_by_default(ctx: &mut Ctx) -> Result<()> {
    let r = ctx.check(
        |v| {
            let caps = &mut v["process"]["capabilities"];
            caps.as_object_mut()
                .expect("capabilities")
                .remove("inheritable");
        },
        &[],
    )?;
    ensure!(
        u64::from_str_radix(r.status("CapInh"), 16)? == 0,
        "CapInh {}",
        r.status("CapInh")
    );
    Ok(())
}

/// CVE-2019-16884 (tmpfs at /proc) and CVE-2023-28642 (the same with /proc a symlink in the
/// rootfs, which hid it from runc's check): the container's /proc is not procfs, so a label
/// written through it would go nowhere and the process would run unconfined. Safe outcomes: the
/// runtime refuses, or the process runs confined (read by us, through the real /proc). No masked
/// or read-only paths: a runtime that reaches mounts through /proc/self/fd would fail on them
/// before it gets to the label.
fn label_through_fake_proc(ctx: &mut Ctx, symlinked: bool) -> Result<()> {
    let profile = apparmor::profile(ctx)?;
    let b = ctx.bundle(|v| {
        v["process"]["args"] = json!(["sleep", "300"]);
        v["process"]["apparmorProfile"] = json!(profile);
        no_masked_or_readonly_paths(v);
        let mounts = v["mounts"].as_array_mut().expect("mounts");
        for m in mounts.iter_mut().filter(|m| m["destination"] == "/proc") {
            *m = json!({ "destination": "/proc", "type": "tmpfs", "source": "tmpfs" });
        }
    })?;
    if symlinked {
        fake_proc_link(&b.rootfs())?;
    }
    if !ctx
        .rt(&["run", "--detach", "--bundle", b.dir_str(), &b.id])?
        .success()
    {
        return Ok(());
    }
    let pid = pid_of(&ctx.wait_status(&b.id, "running")?)?;
    let label = ["apparmor/current", "current"]
        .iter()
        .find_map(|a| fs::read_to_string(format!("/proc/{pid}/attr/{a}")).ok())
        .context("reading the container process's label")?;
    let label = label.trim_end_matches(['\n', '\0']);
    ensure!(
        confined_by(label, profile),
        "the container runs as {label:?}, not confined by {profile}"
    );
    Ok(())
}

/// Replace the rootfs's /proc with a symlink to a directory `/fakeproc` (returned).
fn fake_proc_link(rootfs: &Path) -> Result<std::path::PathBuf> {
    fs::remove_dir(rootfs.join("proc"))?;
    symlink("/fakeproc", rootfs.join("proc"))?;
    let fake = rootfs.join("fakeproc");
    fs::create_dir_all(&fake)?;
    Ok(fake)
}

/// The sysctl of the next two tests (IPC-namespaced, so every runtime accepts it).
const SYSCTL: (&str, &str) = ("fs.mqueue.msg_max", "13");

/// CVE-2025-52881, bind-mount form: a file of the container's choosing bound over the sysctl's
/// /proc/sys file. The runtime may refuse the mount or write the real sysctl; the bound file
/// must not change.
fn sysctl_over_bind_mount(ctx: &mut Ctx) -> Result<()> {
    let decoy = ctx.dir.join("decoy");
    fs::write(&decoy, "untouched\n")?;
    let b = ctx.bundle(|v| {
        v["process"]["args"] = json!(["true"]);
        v["linux"]["sysctl"] = json!({ SYSCTL.0: SYSCTL.1 });
        let dest = format!("/proc/sys/{}", SYSCTL.0.replace('.', "/"));
        let mounts = v["mounts"].as_array_mut().expect("mounts");
        mounts.push(
            json!({ "destination": dest, "type": "bind", "source": decoy, "options": ["bind"] }),
        );
    })?;
    let _ = ctx.rt(&["run", "--bundle", b.dir_str(), &b.id])?;
    untouched(&decoy)
}

/// CVE-2025-52881, symlink form: the rootfs's /proc is a symlink to a directory whose
/// `sys/fs/mqueue/msg_max` is a symlink to a file of the container's, and the config mounts no
/// procfs there. A runtime writing the sysctl through the container's /proc writes that file.
fn sysctl_through_symlinked_proc(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.bundle(|v| {
        v["process"]["args"] = json!(["true"]);
        v["linux"]["sysctl"] = json!({ SYSCTL.0: SYSCTL.1 });
        v["mounts"]
            .as_array_mut()
            .expect("mounts")
            .retain(|m| m["destination"] != "/proc");
        no_masked_or_readonly_paths(v);
    })?;
    let fake = fake_proc_link(&b.rootfs())?;
    let key = fake.join("sys").join(SYSCTL.0.replace('.', "/"));
    fs::create_dir_all(key.parent().context("sysctl path")?)?;
    symlink("/victim", &key)?;
    let victim = b.rootfs().join("victim");
    fs::write(&victim, "untouched\n")?;
    let _ = ctx.rt(&["run", "--bundle", b.dir_str(), &b.id])?;
    untouched(&victim)
}

fn no_masked_or_readonly_paths(config: &mut Value) {
    for paths in ["maskedPaths", "readonlyPaths"] {
        config["linux"][paths] = json!([]);
    }
}

fn untouched(file: &Path) -> Result<()> {
    let now = fs::read_to_string(file)?;
    ensure!(
        now == "untouched\n",
        "the sysctl's value went to {}: it now holds {now:?}",
        file.display()
    );
    Ok(())
}
