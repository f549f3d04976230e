//! What the container process sees, reported by the checker from inside.

use super::{skip, wait_for, Test};
use crate::harness::{cgroup_parent, hierarchies, host_cgroup, ns_inode, Ctx};
use crate::report::Report;
use anyhow::{ensure, Context, Result};
use serde_json::{json, Value};
use std::fs;
use std::io::ErrorKind;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

pub const TESTS: &[Test] = &[
    ("inside/namespaces-new", namespaces_new),
    ("inside/namespace-join-path", namespace_join_path),
    ("inside/user-namespace-maps", user_namespace_maps),
    ("inside/mount-tmpfs-options", mount_tmpfs_options),
    ("inside/mount-tmpfs-copyup", mount_tmpfs_copyup),
    ("inside/mount-readonly-bind", mount_readonly_bind),
    ("inside/masked-paths", masked_paths),
    ("inside/readonly-paths", readonly_paths),
    ("inside/root-readonly", root_readonly),
    ("inside/default-devices", default_devices),
    ("inside/linux-devices", linux_devices),
    ("inside/hostname-domainname", hostname_domainname),
    ("inside/sysctl", sysctl),
    ("inside/env-cwd", env_cwd),
    ("inside/user-groups-umask", user_groups_umask),
    ("inside/rlimits", rlimits),
    ("inside/oom-score-adj", oom_score_adj),
    ("inside/fds-only-stdio", |c| {
        expect_fds(c.check(|_| {}, &[])?, &[0, 1, 2])
    }),
    ("inside/preserve-fds", preserve_fds),
    ("inside/time-offsets", time_offsets),
    ("inside/no-pivot", no_pivot),
    ("inside/rootfs-propagation", rootfs_propagation),
    ("inside/capabilities-root", capabilities_root),
    (
        "inside/capabilities-ambient-nonroot",
        capabilities_ambient_nonroot,
    ),
    ("inside/no-new-privileges", no_new_privileges),
    ("inside/cgroup-path", cgroup_path),
    ("inside/cgroup-namespace-root", cgroup_namespace_root),
    ("inside/no-mount-namespace", no_mount_namespace),
];

const EROFS: i64 = libc::EROFS as i64;

fn namespaces_new(ctx: &mut Ctx) -> Result<()> {
    let r = ctx.check(|_| {}, &[])?;
    // Configured kinds must be new; the rest must stay the host's.
    for (ns, new) in [
        ("pid", true),
        ("net", true),
        ("ipc", true),
        ("uts", true),
        ("mnt", true),
        ("user", false),
    ] {
        let host = ns_inode("self", ns)?;
        let inner = r.get("ns")[ns]
            .as_u64()
            .with_context(|| format!("no {ns} namespace reported"))?;
        ensure!(
            (inner != host) == new,
            "{ns} namespace: container {inner}, host {host}, expected new: {new}"
        );
    }
    Ok(())
}

fn namespace_join_path(ctx: &mut Ctx) -> Result<()> {
    let pid = match ctx.child(Command::new("unshare").args(["--net", "sleep", "300"])) {
        Ok(pid) => pid.to_string(),
        Err(e)
            if e.root_cause()
                .downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == ErrorKind::NotFound) =>
        {
            return Err(skip("unshare(1) is not installed"));
        }
        Err(e) => return Err(e),
    };
    let host = ns_inode("self", "net")?;
    wait_for(ctx, "unshare to enter its network namespace", || {
        ns_inode(&pid, "net").is_ok_and(|i| i != host)
    })?;
    let target = ns_inode(&pid, "net")?;
    let path = format!("/proc/{pid}/ns/net");
    let r = ctx.check(
        |v| v["linux"]["namespaces"][1] = json!({ "type": "network", "path": path }),
        &[],
    )?;
    ensure!(
        r.get("ns")["net"] == target,
        "joined net namespace {}, expected {target}",
        r.get("ns")["net"]
    );
    Ok(())
}

fn user_namespace_maps(ctx: &mut Ctx) -> Result<()> {
    if !Path::new("/proc/self/ns/user").exists() {
        return Err(skip("kernel without user namespaces"));
    }
    let map = json!([{ "containerID": 0, "hostID": 100000, "size": 65536 }]);
    let r = ctx.check(
        |v| {
            v["linux"]["namespaces"]
                .as_array_mut()
                .expect("namespaces")
                .push(json!({ "type": "user" }));
            v["linux"]["uidMappings"] = map.clone();
            v["linux"]["gidMappings"] = map.clone();
        },
        &[],
    )?;
    for key in ["uid_map", "gid_map"] {
        let got: Vec<&str> = r.str(key).split_whitespace().collect();
        ensure!(got == ["0", "100000", "65536"], "{key} is {:?}", r.str(key));
    }
    ensure!(
        r.get("ns")["user"] != ns_inode("self", "user")?,
        "no new user namespace"
    );
    Ok(())
}

fn mount_tmpfs_options(ctx: &mut Ctx) -> Result<()> {
    let r = ctx.check(
        |v| {
            push_mount(
                v,
                json!({ "destination": "/mnt/t", "type": "tmpfs", "source": "tmpfs",
                                   "options": ["nosuid", "noexec", "size=64k"] }),
            )
        },
        &[],
    )?;
    let m = r.mount("/mnt/t")?;
    ensure!(m.fstype == "tmpfs", "/mnt/t is {}", m.fstype);
    for opt in ["nosuid", "noexec", "size=64k"] {
        ensure!(m.has(opt), "/mnt/t lacks {opt}: {m:?}");
    }
    Ok(())
}

/// `tmpcopyup` (runc's extension, Podman's --tmpfs): the tmpfs starts with a copy of the
/// directory it covers: files with their content, directories with their owner, symlinks as
/// links. Writes then stay in the tmpfs.
fn mount_tmpfs_copyup(ctx: &mut Ctx) -> Result<()> {
    let r = ctx.check(
        |v| {
            for dest in ["/etc", "/home", "/usr"] {
                push_mount(v, json!({ "destination": dest, "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "tmpcopyup"] }));
            }
        },
        &["read:/etc/passwd", "stat:/home/tester", "readlink:/usr/bin", "write:/etc/new"],
    )?;
    for dest in ["/etc", "/home", "/usr"] {
        ensure!(r.mount(dest)?.fstype == "tmpfs", "{dest} is not a tmpfs");
    }
    let passwd = r.probe("read:/etc/passwd")?.as_str().unwrap_or_default();
    ensure!(
        passwd.contains("tester:x:1000"),
        "/etc/passwd not copied up: {passwd:?}"
    );
    let home = r.probe("stat:/home/tester")?;
    ensure!(
        home["type"] == "d" && home["uid"] == 1000 && home["gid"] == 1000,
        "/home/tester copied as {home}"
    );
    ensure!(
        r.probe("readlink:/usr/bin")? == "../bin",
        "/usr/bin is not the symlink ../bin"
    );
    r.probe("write:/etc/new")?;
    Ok(())
}

fn mount_readonly_bind(ctx: &mut Ctx) -> Result<()> {
    let data = ctx.dir.join("data");
    fs::create_dir_all(&data)?;
    fs::write(data.join("hello"), "hi")?;
    // One absolute source, and one relative source that must resolve against the bundle.
    let r = ctx.check(
        |v| {
            for (dest, source) in [("/data", json!(data)), ("/bundle-etc", json!("rootfs/etc"))] {
                push_mount(v, json!({ "destination": dest, "type": "bind", "source": source, "options": ["rbind", "ro"] }));
            }
        },
        &["read:/data/hello", "write:/data/new", "read:/bundle-etc/passwd", "write:/bundle-etc/new"],
    )?;
    ensure!(
        r.probe("read:/data/hello")? == "hi",
        "/data content differs from its source"
    );
    let passwd = r
        .probe("read:/bundle-etc/passwd")?
        .as_str()
        .unwrap_or_default();
    ensure!(
        passwd.contains("tester"),
        "/bundle-etc is not the bundle's rootfs/etc"
    );
    for dest in ["/data", "/bundle-etc"] {
        ensure!(
            r.probe_errno(&format!("write:{dest}/new"))? == EROFS,
            "write to ro bind {dest} did not fail with EROFS"
        );
        ensure!(
            r.mount(dest)?.options.iter().any(|o| o == "ro"),
            "{dest} not mounted ro"
        );
    }
    Ok(())
}

fn masked_paths(ctx: &mut Ctx) -> Result<()> {
    // Masked /proc files that the kernel may lack (kcore is often compiled out).
    let proc_file = ["/proc/kcore", "/proc/keys", "/proc/timer_list"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .ok_or_else(|| skip("host has none of /proc/kcore, /proc/keys, /proc/timer_list"))?;
    let (stat, read) = (format!("stat:{proc_file}"), format!("read:{proc_file}"));
    let r = ctx.check(
        |v| {
            let masked = v["linux"]["maskedPaths"]
                .as_array_mut()
                .expect("maskedPaths");
            masked.extend([json!(proc_file), json!("/home"), json!("/etc/group")]);
        },
        &[&stat, &read, "ls:/home", "read:/etc/group"],
    )?;
    let st = r.probe(&stat)?;
    ensure!(
        st["type"] == "c" && st["major"] == 1 && st["minor"] == 3,
        "{proc_file} is not /dev/null: {st}"
    );
    ensure!(r.probe(&read)? == "", "{proc_file} readable");
    ensure!(
        r.probe("ls:/home")? == &json!([]),
        "masked dir /home not empty"
    );
    ensure!(
        r.probe("read:/etc/group")? == "",
        "masked file /etc/group readable"
    );
    Ok(())
}

fn readonly_paths(ctx: &mut Ctx) -> Result<()> {
    let r = ctx.check(
        |v| {
            v["linux"]["readonlyPaths"]
                .as_array_mut()
                .expect("readonlyPaths")
                .push(json!("/etc"))
        },
        &[
            "write:/proc/sys/kernel/hostname",
            "write:/etc/new",
            "read:/etc/passwd",
        ],
    )?;
    ensure!(
        r.probe_errno("write:/proc/sys/kernel/hostname")? == EROFS,
        "/proc/sys writable"
    );
    ensure!(r.probe_errno("write:/etc/new")? == EROFS, "/etc writable");
    r.probe("read:/etc/passwd").map(drop)
}

fn root_readonly(ctx: &mut Ctx) -> Result<()> {
    let r = ctx.check(
        |v| v["root"]["readonly"] = json!(true),
        &["write:/new", "write:/dev/shm/new"],
    )?;
    ensure!(
        r.probe_errno("write:/new")? == EROFS,
        "readonly root is writable"
    );
    r.probe("write:/dev/shm/new")
        .map(drop)
        .context("mounts over a readonly root must stay writable")
}

fn default_devices(ctx: &mut Ctx) -> Result<()> {
    const DEVICES: &[(&str, u64, u64)] = &[
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ];
    const LINKS: &[(&str, &str)] = &[
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
    ];
    let probes: Vec<String> = DEVICES
        .iter()
        .map(|(d, ..)| format!("stat:/dev/{d}"))
        .chain(LINKS.iter().map(|(l, _)| format!("readlink:/dev/{l}")))
        .collect();
    let r = ctx.check(
        |_| {},
        &probes.iter().map(String::as_str).collect::<Vec<_>>(),
    )?;
    for (dev, major, minor) in DEVICES {
        let st = r.probe(&format!("stat:/dev/{dev}"))?;
        ensure!(
            st["type"] == "c"
                && st["major"] == *major
                && st["minor"] == *minor
                && st["mode"] == 0o666,
            "/dev/{dev}: {st}, want char {major}:{minor} mode 0666"
        );
    }
    for (link, target) in LINKS {
        let got = r.probe(&format!("readlink:/dev/{link}"))?;
        ensure!(got == target, "/dev/{link} -> {got}, want {target}");
    }
    for (path, fstype) in [("/dev/pts", "devpts"), ("/dev/shm", "tmpfs")] {
        let m = r.mount(path)?;
        ensure!(m.fstype == fstype, "{path} is {}, want {fstype}", m.fstype);
    }
    Ok(())
}

fn linux_devices(ctx: &mut Ctx) -> Result<()> {
    let r = ctx.check(
        |v| {
            v["linux"]["devices"] = json!([{ "path": "/dev/rt-null", "type": "c", "major": 1, "minor": 3,
                                             "fileMode": 0o640, "uid": 0, "gid": 0 }]);
        },
        &["stat:/dev/rt-null"],
    )?;
    let st = r.probe("stat:/dev/rt-null")?;
    ensure!(
        st["type"] == "c" && st["major"] == 1 && st["minor"] == 3 && st["mode"] == 0o640,
        "/dev/rt-null: {st}"
    );
    Ok(())
}

fn hostname_domainname(ctx: &mut Ctx) -> Result<()> {
    let r = ctx.check(
        |v| {
            v["hostname"] = json!("rt-host");
            v["domainname"] = json!("rt.example");
        },
        &[],
    )?;
    ensure!(
        r.str("hostname") == "rt-host",
        "hostname {:?}",
        r.str("hostname")
    );
    ensure!(
        r.str("domainname") == "rt.example",
        "domainname {:?}",
        r.str("domainname")
    );
    Ok(())
}

fn sysctl(ctx: &mut Ctx) -> Result<()> {
    const SYSCTLS: &[(&str, &str)] = &[
        ("net.ipv4.ip_forward", "net/ipv4/ip_forward"),
        ("kernel.shm_rmid_forced", "kernel/shm_rmid_forced"),
    ];
    let host =
        |file: &str| fs::read_to_string(format!("/proc/sys/{file}")).map(|s| s.trim().to_string());
    let before: Vec<String> = SYSCTLS
        .iter()
        .map(|(_, f)| host(f))
        .collect::<Result<_, _>>()?;
    let want = |h: &str| if h == "1" { "0" } else { "1" };
    let probes: Vec<String> = SYSCTLS
        .iter()
        .map(|(_, f)| format!("read:/proc/sys/{f}"))
        .collect();
    let r = ctx.check(
        |v| {
            v["linux"]["sysctl"] = SYSCTLS
                .iter()
                .zip(&before)
                .map(|((k, _), h)| (k.to_string(), json!(want(h))))
                .collect();
        },
        &probes.iter().map(String::as_str).collect::<Vec<_>>(),
    )?;
    for (((key, file), probe), h) in SYSCTLS.iter().zip(&probes).zip(&before) {
        let got = r
            .probe(probe)?
            .as_str()
            .unwrap_or_default()
            .trim()
            .to_string();
        ensure!(got == want(h), "{key} inside is {got}, want {}", want(h));
        ensure!(host(file)? == *h, "{key} changed on the host");
    }
    Ok(())
}

fn env_cwd(ctx: &mut Ctx) -> Result<()> {
    let env = [
        "PATH=/bin",
        "RT_SPACES=a b  c",
        "RT_EMPTY=",
        "RT_EQUALS=x=y",
    ];
    let r = ctx.check(
        |v| {
            v["process"]["env"] = json!(env);
            v["process"]["cwd"] = json!("/etc");
        },
        &[],
    )?;
    for kv in env {
        let (k, val) = kv.split_once('=').expect("KEY=VALUE");
        ensure!(
            r.get("env")[k] == val,
            "env {k} is {}, want {val:?}",
            r.get("env")[k]
        );
    }
    ensure!(r.str("cwd") == "/etc", "cwd {:?}", r.str("cwd"));
    Ok(())
}

fn user_groups_umask(ctx: &mut Ctx) -> Result<()> {
    let r = ctx.check(
        |v| {
            v["process"]["user"] =
                json!({ "uid": 1000, "gid": 1000, "additionalGids": [1001, 4242], "umask": 0o027 })
        },
        &[],
    )?;
    let ids = |f| {
        r.status(f)
            .split_whitespace()
            .map(String::from)
            .collect::<Vec<_>>()
    };
    ensure!(ids("Uid") == ["1000"; 4], "Uid: {:?}", r.status("Uid"));
    ensure!(ids("Gid") == ["1000"; 4], "Gid: {:?}", r.status("Gid"));
    let mut groups = ids("Groups");
    groups.retain(|g| g != "1000");
    groups.sort();
    ensure!(
        groups == ["1001", "4242"],
        "supplementary groups: {:?}",
        r.status("Groups")
    );
    ensure!(
        r.get("umask") == 0o027,
        "umask {:o}",
        r.get("umask").as_u64().unwrap_or(0)
    );
    Ok(())
}

fn rlimits(ctx: &mut Ctx) -> Result<()> {
    // Only lowered: raising a hard limit needs CAP_SYS_RESOURCE, which hosts may lack.
    let limits = [("RLIMIT_NOFILE", 1024, 4096), ("RLIMIT_CORE", 0, 0)];
    let r = ctx.check(
        |v| {
            v["process"]["rlimits"] = limits
                .iter()
                .map(|(t, soft, hard)| json!({ "type": t, "soft": soft, "hard": hard }))
                .collect();
        },
        &[],
    )?;
    for (t, soft, hard) in limits {
        ensure!(
            r.get("rlimits")[t] == json!([soft, hard]),
            "{t} is {}, want [{soft}, {hard}]",
            r.get("rlimits")[t]
        );
    }
    Ok(())
}

fn oom_score_adj(ctx: &mut Ctx) -> Result<()> {
    let r = ctx.check(|v| v["process"]["oomScoreAdj"] = json!(100), &[])?;
    ensure!(
        r.str("oom_score_adj") == "100",
        "oom_score_adj {:?}",
        r.str("oom_score_adj")
    );
    Ok(())
}

fn expect_fds(r: Report, want: &[u64]) -> Result<()> {
    ensure!(
        r.get("fds") == &json!(want),
        "open fds {}, want {want:?}",
        r.get("fds")
    );
    Ok(())
}

fn preserve_fds(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.bundle(|_| {})?;
    let extra = fs::File::open(b.config_path())?;
    let raw = extra.as_raw_fd();
    let run = ctx.spawn_with(
        &["run", "--preserve-fds", "1", "--bundle", b.dir_str(), &b.id],
        |cmd| {
            // SAFETY: dup2 and fcntl are async-signal-safe. They put the file at fd 3 without
            // CLOEXEC; the fcntl matters when the file already is fd 3 (dup2 is then a no-op).
            unsafe {
                cmd.pre_exec(move || {
                    if libc::dup2(raw, 3) == -1 || libc::fcntl(3, libc::F_SETFD, 0) == -1 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        },
    )?;
    let out = run.wait()?.ok()?;
    expect_fds(Report::parse(&out.stdout)?, &[0, 1, 2, 3])
}

pub const CAPS: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

pub fn cap_mask(v: &Value) -> u64 {
    let names = v.as_array().map(Vec::as_slice).unwrap_or_default();
    names
        .iter()
        .filter_map(|n| n.as_str()?.strip_prefix("CAP_"))
        .filter_map(|n| CAPS.iter().position(|c| *c == n))
        .fold(0, |m, bit| m | 1 << bit)
}

/// Compares /proc/self/status with the sets the config asks for, as transformed
/// by execve(2) of a file without file capabilities: for uid 0 the permitted and
/// effective sets become bounding|inheritable and ambient is cleared; for other
/// uids permitted and effective become the ambient set.
fn check_caps(ctx: &mut Ctx, caps: Value, uid: u32) -> Result<()> {
    let r = ctx.check(
        |v| {
            v["process"]["capabilities"] = caps.clone();
            v["process"]["user"] = json!({ "uid": uid, "gid": uid });
        },
        &[],
    )?;
    let [bnd, inh, amb] = ["bounding", "inheritable", "ambient"].map(|k| cap_mask(&caps[k]));
    let (prm, amb) = if uid == 0 { (bnd | inh, 0) } else { (amb, amb) };
    for (field, want) in [
        ("CapBnd", bnd),
        ("CapInh", inh),
        ("CapPrm", prm),
        ("CapEff", prm),
        ("CapAmb", amb),
    ] {
        let got = u64::from_str_radix(r.status(field), 16)
            .with_context(|| format!("no {field} in status"))?;
        ensure!(got == want, "{field} is {got:#x}, want {want:#x}");
    }
    Ok(())
}

fn capabilities_root(ctx: &mut Ctx) -> Result<()> {
    let caps = json!(["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    check_caps(
        ctx,
        json!({ "bounding": caps, "effective": caps, "permitted": caps }),
        0,
    )
}

fn capabilities_ambient_nonroot(ctx: &mut Ctx) -> Result<()> {
    let kept = json!(["CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    let caps = json!({
        "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_AUDIT_WRITE"],
        "effective": kept, "permitted": kept, "inheritable": kept,
        "ambient": ["CAP_NET_BIND_SERVICE"],
    });
    check_caps(ctx, caps, 1000)
}

fn no_new_privileges(ctx: &mut Ctx) -> Result<()> {
    for (set, want) in [(true, "1"), (false, "0")] {
        let r = ctx.check(|v| v["process"]["noNewPrivileges"] = json!(set), &[])?;
        ensure!(
            r.status("NoNewPrivs") == want,
            "noNewPrivileges {set}: NoNewPrivs is {:?}",
            r.status("NoNewPrivs")
        );
    }
    Ok(())
}

fn cgroup_path(ctx: &mut Ctx) -> Result<()> {
    let mut want = String::new();
    let r = ctx.check(
        |v| want = host_cgroup(v["linux"]["cgroupsPath"].as_str().unwrap_or_default()),
        &[],
    )?;
    let text = r.str("cgroup");
    ensure!(!text.is_empty(), "no /proc/self/cgroup");
    for line in text.lines() {
        let path = line.splitn(3, ':').nth(2).unwrap_or_default();
        ensure!(path == want, "cgroup line {line:?} is not in {want}");
    }
    Ok(())
}

/// In a cgroup namespace of its own the container's cgroup is the root of every hierarchy, and
/// its `cgroup` mount shows that cgroup, not the host's whole hierarchy (whose top holds the
/// suite's own parent cgroup). Also with a namespace joined by path (the runner's network
/// namespace), for which a runtime may set its namespaces up in more steps.
fn cgroup_namespace_root(ctx: &mut Ctx) -> Result<()> {
    if !Path::new("/proc/self/ns/cgroup").exists() {
        return Err(skip("kernel without cgroup namespaces"));
    }
    let dirs: Vec<String> = std::iter::once("/sys/fs/cgroup".to_string())
        .chain(
            hierarchies()
                .iter()
                .filter_map(|h| Some(format!("/sys/fs/cgroup/{}", h.file_name()?.to_str()?))),
        )
        .map(|d| format!("ls:{d}"))
        .collect();
    let probes: Vec<&str> = dirs.iter().map(String::as_str).collect();
    let our_netns = format!("/proc/{}/ns/net", std::process::id());
    for join in [false, true] {
        let r = ctx.check(
            |v| {
                let ns = v["linux"]["namespaces"].as_array_mut().expect("namespaces");
                ns.push(json!({ "type": "cgroup" }));
                if join {
                    ns.retain(|n| n["type"] != "network");
                    ns.push(json!({ "type": "network", "path": our_netns }));
                }
            },
            &probes,
        )?;
        let text = r.str("cgroup");
        ensure!(!text.is_empty(), "no /proc/self/cgroup");
        for line in text.lines() {
            ensure!(
                line.splitn(3, ':').nth(2) == Some("/"),
                "cgroup line {line:?} is not at the namespace's root (joined netns: {join})"
            );
        }
        for probe in &probes {
            let Ok(names) = r.probe(probe) else { continue };
            ensure!(
                !names
                    .as_array()
                    .is_some_and(|n| n.iter().any(|n| n == cgroup_parent())),
                "{probe} shows the host's hierarchy (joined netns: {join}): {names}"
            );
        }
    }
    Ok(())
}

fn push_mount(v: &mut Value, mount: Value) {
    v["mounts"].as_array_mut().expect("mounts").push(mount);
}

/// linux.timeOffsets in a new time namespace: the offsets are in place before the process runs.
fn time_offsets(ctx: &mut Ctx) -> Result<()> {
    if !Path::new("/proc/self/ns/time").exists() {
        return Err(skip("kernel without time namespaces"));
    }
    let r = ctx.check(
        |v| {
            v["linux"]["namespaces"].as_array_mut().expect("namespaces").push(json!({ "type": "time" }));
            v["linux"]["timeOffsets"] = json!({ "boottime": { "secs": 1000000, "nanosecs": 0 }, "monotonic": { "secs": 86400 } });
        },
        &["read:/proc/self/timens_offsets", "read:/proc/uptime"],
    )?;
    let offsets = r
        .probe("read:/proc/self/timens_offsets")?
        .as_str()
        .unwrap_or_default()
        .to_string();
    ensure!(
        offsets
            .lines()
            .any(|l| l.split_whitespace().eq(["monotonic", "86400", "0"])),
        "offsets {offsets:?}"
    );
    let uptime: f64 = r
        .probe("read:/proc/uptime")?
        .as_str()
        .and_then(|u| u.split_whitespace().next()?.parse().ok())
        .context("uptime")?;
    ensure!(
        uptime >= 1_000_000.0,
        "boottime offset not applied: uptime {uptime}"
    );
    Ok(())
}

/// `create --no-pivot` (MS_MOVE + chroot, for a rootfs on ramfs) still gives the container its root.
fn no_pivot(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.bundle(|v| v["process"]["args"] = json!(["/checker", "stat:/checker"]))?;
    let out = ctx
        .rt(&["run", "--no-pivot", "--bundle", b.dir_str(), &b.id])?
        .ok()?;
    let r = Report::parse(&out.stdout)?;
    r.probe("stat:/checker")
        .context("the container's root is not its rootfs")?;
    Ok(())
}

/// linux.rootfsPropagation: the container's `/` has the configured propagation.
fn rootfs_propagation(ctx: &mut Ctx) -> Result<()> {
    // Optional fields (between the mount options and " - ") carry "shared:N" for a shared mount
    // and "unbindable" for an unbindable one.
    for (prop, field, has) in [
        ("rshared", "shared:", true),
        ("rprivate", "shared:", false),
        ("unbindable", "unbindable", true),
    ] {
        let r = ctx.check(|v| v["linux"]["rootfsPropagation"] = json!(prop), &[])?;
        let root = r
            .get("mountinfo")
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|l| l.as_str())
            .rfind(|l| l.split_whitespace().nth(4) == Some("/"))
            .context("no / in mountinfo")?
            .to_string();
        let optional = root.split(" - ").next().unwrap_or_default();
        ensure!(
            optional.contains(field) == has,
            "rootfsPropagation {prop}: / is {root:?}"
        );
    }
    Ok(())
}

/// Without a mount namespace in the config the container inherits the runtime's (the spec),
/// rooted in its rootfs, and so does a process `exec` adds. The runtime runs in a throwaway mount
/// namespace here, so that nothing it may do to its own (runc makes / rslave and binds the
/// rootfs onto itself there) reaches the host's.
fn no_mount_namespace(ctx: &mut Ctx) -> Result<()> {
    let holder = ctx
        .child(Command::new("unshare").args([
            "--mount",
            "--propagation",
            "private",
            "sleep",
            "300",
        ]))?
        .to_string();
    let host = ns_inode("self", "mnt")?;
    wait_for(ctx, "unshare to enter its mount namespace", || {
        ns_inode(&holder, "mnt").is_ok_and(|i| i != host)
    })?;
    let throwaway = ns_inode(&holder, "mnt")?;
    let ns = fs::File::open(format!("/proc/{holder}/ns/mnt"))?;
    let in_throwaway = |cmd: &mut Command| {
        let fd = ns.as_raw_fd();
        // SAFETY: setns(2) is async-signal-safe and only reads the fd, which outlives the spawn.
        unsafe {
            cmd.pre_exec(move || match libc::setns(fd, libc::CLONE_NEWNS) {
                0 => Ok(()),
                _ => Err(std::io::Error::last_os_error()),
            });
        }
    };
    let b = ctx.bundle(|v| {
        v["process"]["args"] = json!(["sleep", "300"]);
        v["mounts"] = json!([]);
        for paths in ["maskedPaths", "readonlyPaths"] {
            v["linux"][paths] = json!([]);
        }
        v["linux"]["namespaces"]
            .as_array_mut()
            .expect("namespaces")
            .retain(|n| n["type"] != "mount");
    })?;
    let run = ["run", "--detach", "--bundle", b.dir_str(), &b.id];
    ctx.spawn_with(&run, in_throwaway)?.wait()?.ok()?;
    let pid = super::lifecycle::pid_of(&ctx.wait_status(&b.id, "running")?)?;
    let inner = ns_inode(&pid.to_string(), "mnt")?;
    ensure!(
        inner == throwaway,
        "the container's mount namespace {inner} is not the runtime's {throwaway}"
    );
    let root = fs::read_link(format!("/proc/{pid}/root"))?;
    ensure!(
        root == b.rootfs().canonicalize()?,
        "the container's root is {}",
        root.display()
    );
    // /checker exists only in the rootfs.
    let exec = ["exec", &b.id, "/checker"];
    ctx.spawn_with(&exec, in_throwaway)?.wait()?.ok()?;
    Ok(())
}
