//! Integration tests for `berth::rootfs`: each case forks a child that unshares its mount
//! namespace (made rprivate first, so nothing propagates to the host), runs prepare, pivot and
//! finalize on a busybox rootfs in a unique temp dir, checks the result from inside and reports
//! failures through a pipe. The namespace dies with the child; the parent removes the temp dir.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use berth::rootfs::{self, Options};
use nix::mount::{mount, MsFlags};
use nix::sched::{unshare, CloneFlags};
use nix::sys::stat::{major, minor};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, pipe, ForkResult};
use oci_spec::runtime::Spec;
use serde_json::{json, Value};

type Check = Result<(), String>;

/// A bundle under /tmp: `rootfs/` with busybox, `host/` for bind sources.
struct Bundle {
    dir: PathBuf,
}

impl Bundle {
    fn new(name: &str) -> Bundle {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "berth-rootfs-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let rootfs = dir.join("rootfs");
        for d in ["bin", "proc", "sys", "dev", "etc", "tmp", "host"] {
            let base = if d == "host" { &dir } else { &rootfs };
            fs::create_dir_all(base.join(d)).unwrap();
        }
        fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
        for applet in ["sh", "ls", "cat", "test"] {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
        }
        Bundle {
            dir: fs::canonicalize(&dir).unwrap(),
        }
    }
    fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }
    fn host(&self) -> PathBuf {
        self.dir.join("host")
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn spec(b: &Bundle, mounts: Value, linux: Value, readonly: bool) -> Spec {
    serde_json::from_value(json!({
        "ociVersion": "1.3.0",
        "root": {"path": b.rootfs(), "readonly": readonly},
        "mounts": mounts,
        "linux": linux,
    }))
    .unwrap()
}

/// Run `before` (still on the host view, new mount ns), then prepare/pivot/finalize, then `check`
/// inside the container, all in a forked child. Returns the child's failure text, if any.
fn run(
    b: &Bundle,
    spec: &Spec,
    no_pivot: bool,
    new_userns: bool,
    before: impl Fn() -> Check,
    check: impl Fn() -> Check,
) -> Check {
    let (rd, wr) = pipe().unwrap();
    // SAFETY: the child only runs this test's code and leaves with _exit, never returning into
    // the test harness.
    match unsafe { fork() }.unwrap() {
        ForkResult::Child => {
            drop(rd);
            let res = (|| -> Check {
                unshare(CloneFlags::CLONE_NEWNS).map_err(|e| format!("unshare: {e}"))?;
                mount(
                    None::<&str>,
                    "/",
                    None::<&str>,
                    MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                    None::<&str>,
                )
                .map_err(|e| format!("make / rprivate: {e}"))?;
                before()?;
                let rootfs = b.rootfs();
                let opts = Options {
                    spec,
                    rootfs: &rootfs,
                    bundle: &b.dir,
                    no_pivot,
                    new_userns,
                    mount_ns: true,
                    mount_label: None,
                    detached: &Default::default(),
                };
                rootfs::prepare(&opts).map_err(|e| format!("prepare: {e}"))?;
                rootfs::pivot(&opts).map_err(|e| format!("pivot: {e}"))?;
                rootfs::finalize(&opts).map_err(|e| format!("finalize: {e}"))?;
                check()
            })();
            let mut wr = fs::File::from(wr);
            let code = match res {
                Ok(()) => 0,
                Err(e) => {
                    let _ = wr.write_all(e.as_bytes());
                    1
                }
            };
            // SAFETY: _exit ends the child without running the parent's atexit handlers.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => {
            drop(wr);
            let mut msg = String::new();
            fs::File::from(rd).read_to_string(&mut msg).unwrap();
            match waitpid(child, None).unwrap() {
                WaitStatus::Exited(_, 0) => Ok(()),
                status => Err(format!("child {status:?}: {msg}")),
            }
        }
    }
}

fn ensure(ok: bool, what: impl std::fmt::Display) -> Check {
    if ok {
        Ok(())
    } else {
        Err(what.to_string())
    }
}

/// The /proc/self/mountinfo line of the topmost mount at `point`.
fn mount_line(point: &str) -> Result<String, String> {
    let info = fs::read_to_string("/proc/self/mountinfo").map_err(|e| e.to_string())?;
    let line = info.lines().rfind(|l| l.split(' ').nth(4) == Some(point));
    line.map(str::to_string)
        .ok_or_else(|| format!("{point} is not a mount point"))
}

/// (mount options, fs type, super options) of the topmost mount at `point`.
fn mount_at(point: &str) -> Result<(String, String, String), String> {
    let line = mount_line(point)?;
    let (left, right) = line.split_once(" - ").ok_or("bad mountinfo line")?;
    let r: Vec<&str> = right.split(' ').collect();
    let opts = left.split(' ').nth(5).unwrap_or_default();
    Ok((
        opts.to_string(),
        r[0].to_string(),
        r.get(2).unwrap_or(&"").to_string(),
    ))
}

/// Whether the topmost mount at `point` has shared propagation.
fn shared(point: &str) -> Result<bool, String> {
    Ok(mount_line(point)?
        .split(" - ")
        .next()
        .unwrap_or_default()
        .contains(" shared:"))
}

fn has_opt(opts: &str, o: &str) -> bool {
    opts.split(',').any(|x| x == o)
}

fn char_dev(path: &str, maj: u64, min: u64, mode: u32) -> Check {
    let m = fs::symlink_metadata(path).map_err(|e| format!("stat {path}: {e}"))?;
    ensure(
        m.file_type().is_char_device(),
        format!("{path} is not a char device"),
    )?;
    ensure(
        (major(m.rdev()), minor(m.rdev())) == (maj, min),
        format!("{path} is {}:{}", major(m.rdev()), minor(m.rdev())),
    )?;
    ensure(
        m.permissions().mode() & 0o7777 == mode,
        format!("{path} mode {:o}", m.permissions().mode()),
    )
}

fn link(path: &str, target: &str) -> Check {
    let t = fs::read_link(path).map_err(|e| format!("readlink {path}: {e}"))?;
    ensure(
        t == Path::new(target),
        format!("{path} -> {t:?}, want {target}"),
    )
}

fn erofs(path: &str) -> Check {
    match fs::write(path, "x") {
        Err(e) if e.raw_os_error() == Some(libc::EROFS) => Ok(()),
        r => Err(format!("write {path}: {r:?}, want EROFS")),
    }
}

#[test]
fn full_flow_with_pivot() {
    let b = Bundle::new("full");
    let host = b.host();
    fs::create_dir_all(host.join("data/sub")).unwrap();
    fs::write(host.join("data/hello"), "hi").unwrap();
    fs::write(host.join("file"), "host file").unwrap();
    fs::write(b.dir.join("relative"), "from bundle").unwrap();
    // /var/run -> /run, with /run missing: the mount must land on <rootfs>/run.
    fs::create_dir_all(b.rootfs().join("var")).unwrap();
    std::os::unix::fs::symlink("/run", b.rootfs().join("var/run")).unwrap();
    fs::create_dir(b.rootfs().join("sticky")).unwrap();
    fs::set_permissions(
        b.rootfs().join("sticky"),
        fs::Permissions::from_mode(0o1777),
    )
    .unwrap();
    let spec = spec(
        &b,
        json!([
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
            {"destination": "/mnt/small", "type": "tmpfs", "source": "tmpfs", "options": ["ro", "nosuid", "size=65536k"]},
            {"destination": "/data", "type": "bind", "source": host.join("data"), "options": ["bind", "ro", "nosuid"]},
            {"destination": "/rdata", "source": host.join("data"), "options": ["rbind", "rro"]},
            {"destination": "/etc/hostfile", "type": "bind", "source": host.join("file"), "options": ["bind"]},
            {"destination": "/etc/relative", "source": "relative", "options": ["bind", "ro"]},
            {"destination": "/var/run", "type": "tmpfs", "source": "tmpfs", "options": ["nodev"]},
            {"destination": "/sticky", "type": "tmpfs", "source": "tmpfs"},
            {"destination": "/mnt/etc", "type": "tmpfs", "source": "tmpfs", "options": ["mode=700"]},
            {"destination": "/mnt/shared", "type": "tmpfs", "source": "tmpfs", "options": ["shared"]},
        ]),
        json!({
            "devices": [
                {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o600, "uid": 1000, "gid": 1000},
                {"path": "/dev/sub/fifo", "type": "p", "fileMode": 0o640},
            ],
            "maskedPaths": ["/proc/kcore", "/proc/timer_list", "/sys/firmware", "/proc/does-not-exist"],
            "readonlyPaths": ["/proc/sys", "/proc/sysrq-trigger", "/proc/fs", "/nope"],
        }),
        true,
    );
    let sub = host.join("data/sub");
    let before = || {
        // A submount in the bind source: rro must reach it, ro must not.
        mount(
            Some("tmpfs"),
            &sub,
            Some("tmpfs"),
            MsFlags::empty(),
            None::<&str>,
        )
        .map_err(|e| format!("mount sub: {e}"))
    };
    run(&b, &spec, false, false, before, || {
        ensure(
            std::env::current_dir().map_err(|e| e.to_string())? == Path::new("/"),
            "cwd is not /",
        )?;
        let (o, t, s) = mount_at("/mnt/small")?;
        ensure(
            has_opt(&o, "ro")
                && has_opt(&o, "nosuid")
                && t == "tmpfs"
                && has_opt(&s, "size=65536k"),
            format!("/mnt/small: {o} {t} {s}"),
        )?;
        ensure(
            shared("/mnt/shared")? && !shared("/mnt/small")?,
            "propagation option not applied",
        )?;
        let (o, ..) = mount_at("/data")?;
        ensure(
            has_opt(&o, "ro") && has_opt(&o, "nosuid"),
            format!("/data: {o}"),
        )?;
        ensure(
            fs::read_to_string("/data/hello").map_err(|e| e.to_string())? == "hi",
            "/data/hello",
        )?;
        erofs("/data/new")?;
        // A plain bind leaves the submount out; rbind takes it, and rro makes it read-only too.
        ensure(mount_at("/data/sub").is_err(), "/data/sub is a mount point")?;
        ensure(
            has_opt(&mount_at("/rdata/sub")?.0, "ro"),
            "/rdata/sub is not ro",
        )?;
        ensure(
            fs::read_to_string("/etc/hostfile").map_err(|e| e.to_string())? == "host file",
            "/etc/hostfile",
        )?;
        ensure(
            fs::read_to_string("/etc/relative").map_err(|e| e.to_string())? == "from bundle",
            "/etc/relative",
        )?;
        ensure(has_opt(&mount_at("/run")?.0, "nodev"), "/run")?;
        ensure(
            mount_at("/var/run").is_err(),
            "/var/run mounted on the symlink",
        )?;
        let mode = fs::metadata("/sticky")
            .map_err(|e| e.to_string())?
            .permissions()
            .mode()
            & 0o7777;
        ensure(
            mount_at("/sticky")?.1 == "tmpfs" && mode == 0o1777,
            format!("/sticky mode {mode:o}"),
        )?;
        let (o, t, s) = mount_at("/dev/pts")?;
        ensure(
            t == "devpts" && has_opt(&o, "noexec") && has_opt(&s, "ptmxmode=666"),
            format!("/dev/pts: {o} {t} {s}"),
        )?;
        // sysfs and the cgroup tree (v2 mount or v1 tmpfs + binds, depending on the host).
        ensure(has_opt(&mount_at("/sys")?.0, "ro"), "/sys not ro")?;
        let (o, t, _) = mount_at("/sys/fs/cgroup")?;
        ensure(
            has_opt(&o, "ro") && (t == "cgroup2" || t == "tmpfs"),
            format!("/sys/fs/cgroup: {o} {t}"),
        )?;
        if t == "tmpfs" {
            // v1/hybrid host: each hierarchy is bound under the tmpfs, read-only.
            let (o, t, _) = mount_at("/sys/fs/cgroup/memory")?;
            ensure(
                t == "cgroup" && has_opt(&o, "ro"),
                format!("/sys/fs/cgroup/memory: {o} {t}"),
            )?;
        }
        // /dev
        for (p, maj, min) in [
            ("/dev/null", 1, 3),
            ("/dev/zero", 1, 5),
            ("/dev/full", 1, 7),
            ("/dev/random", 1, 8),
            ("/dev/urandom", 1, 9),
            ("/dev/tty", 5, 0),
        ] {
            char_dev(p, maj, min, 0o666)?;
        }
        char_dev("/dev/fuse", 10, 229, 0o600)?;
        let m = fs::metadata("/dev/fuse").map_err(|e| e.to_string())?;
        ensure((m.uid(), m.gid()) == (1000, 1000), "/dev/fuse owner")?;
        let m = fs::metadata("/dev/sub/fifo").map_err(|e| e.to_string())?;
        ensure(
            m.file_type().is_fifo() && m.permissions().mode() & 0o777 == 0o640,
            "/dev/sub/fifo",
        )?;
        link("/dev/fd", "/proc/self/fd")?;
        link("/dev/stdin", "/proc/self/fd/0")?;
        link("/dev/stdout", "/proc/self/fd/1")?;
        link("/dev/stderr", "/proc/self/fd/2")?;
        link("/dev/core", "/proc/kcore")?;
        link("/dev/ptmx", "pts/ptmx")?;
        // masked and read-only paths
        char_dev("/proc/timer_list", 1, 3, 0o666)
            .map_err(|e| format!("/proc/timer_list not masked: {e}"))?;
        let (o, t, _) = mount_at("/sys/firmware")?;
        ensure(
            t == "tmpfs" && has_opt(&o, "ro"),
            format!("/sys/firmware: {o} {t}"),
        )?;
        ensure(
            fs::read_dir("/sys/firmware")
                .map_err(|e| e.to_string())?
                .next()
                .is_none(),
            "/sys/firmware not empty",
        )?;
        // /proc/sysrq-trigger and /nope do not exist here: skipped.
        for p in ["/proc/sys", "/proc/fs"] {
            let (o, ..) = mount_at(p)?;
            ensure(
                ["ro", "nosuid", "nodev", "noexec"]
                    .iter()
                    .all(|f| has_opt(&o, f)),
                format!("{p}: {o}"),
            )?;
        }
        // read-only root, and busybox runs in it
        ensure(has_opt(&mount_at("/")?.0, "ro"), "/ is not ro")?;
        erofs("/newfile")?;
        let out = std::process::Command::new("/bin/sh")
            .args(["-c", "test -c /dev/null && ls /data"])
            .output()
            .map_err(|e| format!("run sh: {e}"))?;
        ensure(
            String::from_utf8_lossy(&out.stdout).contains("hello"),
            format!("sh: {out:?}"),
        )
    })
    .unwrap();
}

#[test]
fn symlinks_out_of_the_rootfs_stay_inside() {
    let b = Bundle::new("escape");
    let tag = b.dir.file_name().unwrap().to_string_lossy().to_string();
    let rel_out = format!("/tmp/{tag}-rel");
    let abs_out = format!("/tmp/{tag}-abs");
    std::os::unix::fs::symlink(
        format!("../../../../../../..{rel_out}"),
        b.rootfs().join("rel"),
    )
    .unwrap();
    std::os::unix::fs::symlink(&abs_out, b.rootfs().join("abs")).unwrap();
    fs::write(b.host().join("file"), "f").unwrap();
    let spec = spec(
        &b,
        json!([
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/rel/sub", "type": "tmpfs", "source": "tmpfs"},
            {"destination": "/abs/file", "source": b.host().join("file"), "options": ["bind"]},
        ]),
        json!({}),
        false,
    );
    let (rel_in, abs_in) = (format!("{rel_out}/sub"), format!("{abs_out}/file"));
    run(
        &b,
        &spec,
        false,
        false,
        || Ok(()),
        || {
            // Both resolved inside the rootfs.
            ensure(
                mount_at(&rel_in)?.1 == "tmpfs",
                format!("{rel_in} is not tmpfs"),
            )?;
            ensure(
                fs::read_to_string(&abs_in).map_err(|e| format!("{abs_in}: {e}"))? == "f",
                "bind content",
            )
        },
    )
    .unwrap();
    assert!(
        !Path::new(&rel_out).exists(),
        "{rel_out} created on the host"
    );
    assert!(
        !Path::new(&abs_out).exists(),
        "{abs_out} created on the host"
    );
    assert!(b
        .rootfs()
        .join(rel_out.trim_start_matches('/'))
        .join("sub")
        .is_dir());
    assert!(b
        .rootfs()
        .join(abs_out.trim_start_matches('/'))
        .join("file")
        .is_file());
}

#[test]
fn no_pivot_and_user_namespace_fallbacks() {
    let b = Bundle::new("nopivot");
    let spec = spec(
        &b,
        json!([
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "ro"]},
        ]),
        json!({"rootfsPropagation": "private", "maskedPaths": ["/proc/keys"]}),
        false,
    );
    // new_userns without a network namespace: devices are bind mounts and sysfs is the host's /sys.
    run(
        &b,
        &spec,
        true,
        true,
        || Ok(()),
        || {
            ensure(
                std::env::current_dir().map_err(|e| e.to_string())? == Path::new("/"),
                "cwd is not /",
            )?;
            ensure(Path::new("/bin/busybox").is_file(), "no /bin/busybox")?;
            char_dev("/dev/null", 1, 3, 0o666)?;
            mount_at("/dev/null")?;
            mount_at("/dev/tty")?;
            let (o, t, _) = mount_at("/sys")?;
            ensure(
                t == "sysfs" && has_opt(&o, "ro") && has_opt(&o, "nosuid"),
                format!("/sys: {o} {t}"),
            )?;
            ensure(
                Path::new("/sys/fs/cgroup").is_dir(),
                "/sys is not recursively bound",
            )?;
            char_dev("/proc/keys", 1, 3, 0o666)?;
            link("/dev/ptmx", "pts/ptmx")?;
            ensure(
                fs::symlink_metadata("/dev/core").is_ok(),
                "/dev/core missing",
            )
        },
    )
    .unwrap();
}

#[test]
fn shared_root_propagation() {
    let b = Bundle::new("shared");
    let spec = spec(
        &b,
        json!([
            {"destination": "/proc", "type": "proc", "source": "proc"},
        ]),
        json!({"rootfsPropagation": "rshared"}),
        false,
    );
    run(
        &b,
        &spec,
        false,
        false,
        || Ok(()),
        || {
            // pivot_root worked despite the shared root, and / ends up shared as configured.
            ensure(shared("/")?, "/ is not shared")
        },
    )
    .unwrap();
}

#[test]
fn symlink_loop_is_an_error() {
    let b = Bundle::new("loop");
    std::os::unix::fs::symlink("/loop", b.rootfs().join("loop")).unwrap();
    let spec = spec(
        &b,
        json!([{"destination": "/loop/x", "type": "tmpfs", "source": "tmpfs"}]),
        json!({}),
        false,
    );
    let err = run(&b, &spec, false, false, || Ok(()), || Ok(())).unwrap_err();
    assert!(
        err.contains("prepare: mount tmpfs on /loop/x: ELOOP"),
        "{err}"
    );
}

#[test]
fn symlink_into_proc_is_rejected() {
    let b = Bundle::new("procdest");
    std::os::unix::fs::symlink("/proc/sys", b.rootfs().join("sneaky")).unwrap();
    let spec = spec(
        &b,
        json!([
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/sneaky", "type": "tmpfs", "source": "tmpfs"},
        ]),
        json!({}),
        false,
    );
    let err = run(&b, &spec, false, false, || Ok(()), || Ok(())).unwrap_err();
    assert!(
        err.ends_with(
            "prepare: invalid configuration: mounts[1].destination: /sneaky is inside /proc"
        ),
        "{err}"
    );
}

#[test]
fn validate_rejects_bad_config() {
    let b = Bundle::new("validate");
    let err = |mounts: Value, linux: Value| {
        rootfs::validate(&spec(&b, mounts, linux, false))
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        err(
            json!([{"destination": "/a", "type": "tmpfs"}, {"destination": "/b", "type": "tmpfs", "options": ["ro", "foo"]}]),
            json!({})
        ),
        "invalid configuration: mounts[1].options: unknown option \"foo\""
    );
    assert_eq!(
        err(json!([{"destination": "rel", "type": "tmpfs"}]), json!({})),
        "invalid configuration: mounts[0].destination: \"rel\" is not absolute"
    );
    assert_eq!(
        err(
            json!([{"destination": "/x", "options": ["bind"]}]),
            json!({})
        ),
        "invalid configuration: mounts[0].source: required for a bind mount"
    );
    assert_eq!(
        err(json!([]), json!({"rootfsPropagation": "sideways"})),
        "invalid configuration: linux.rootfsPropagation: unknown propagation \"sideways\""
    );
    assert_eq!(
        err(json!([]), json!({"maskedPaths": ["proc/kcore"]})),
        "invalid configuration: linux.maskedPaths[0]: \"proc/kcore\" is not absolute"
    );
    assert_eq!(
        err(
            json!([{"destination": "/proc/x/../kcore", "type": "tmpfs"}]),
            json!({})
        ),
        "invalid configuration: mounts[0].destination: /proc/x/../kcore is inside /proc"
    );
    let ok = spec(
        &b,
        json!([{"destination": "/t", "type": "tmpfs", "options": ["mode=755", "size=1m", "rnoexec", "rslave"]}]),
        json!({}),
        false,
    );
    rootfs::validate(&ok).unwrap();
}
