//! Runs inside a container and reports, as one JSON object on stdout, what the
//! process observes about its own environment. It judges nothing itself: the
//! runner compares the report with the config it generated, so the expectations
//! live in one place. Must be linked statically (the rootfs has no libc).
//!
//! Usage: /checker [KIND:PATH ...] where KIND is stat, readlink, read, write, ls, selinux (the
//! path's security.selinux attribute), or open-r, open-w, open-rw (open and close, nothing
//! more: for device nodes), directread (read DIRECT_READ bytes with O_DIRECT and report how
//! long it took), or mknod:TYPE:MAJOR:MINOR:PATH (TYPE c or b); or
//! /checker attack-exe DEV INO SECONDS [write] (see `attack`).

mod attack;

use serde_json::{json, Map, Value};
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};

const NAMESPACES: &[&str] = &["cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"];
const STATUS_FIELDS: &[&str] = &[
    "Uid",
    "Gid",
    "Groups",
    "CapInh",
    "CapPrm",
    "CapEff",
    "CapBnd",
    "CapAmb",
    "NoNewPrivs",
];
const RLIMITS: &[(&str, libc::__rlimit_resource_t)] = &[
    ("RLIMIT_NOFILE", libc::RLIMIT_NOFILE),
    ("RLIMIT_NPROC", libc::RLIMIT_NPROC),
    ("RLIMIT_CORE", libc::RLIMIT_CORE),
];

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("attack-exe") {
        let num = |i: usize| {
            args.get(i)
                .and_then(|a| a.parse().ok())
                .expect("attack-exe DEV INO SECONDS [write]")
        };
        let write = args.get(5).is_some_and(|a| a == "write");
        println!("{}", attack::runtime_exe(num(2), num(3), num(4), write));
        return;
    }
    let probes: Map<String, Value> = std::env::args()
        .skip(1)
        .map(|arg| {
            let result = probe(&arg);
            (arg, result)
        })
        .collect();
    let report = json!({
        "ns": namespaces(),
        "uid_map": read_string("/proc/self/uid_map"),
        "gid_map": read_string("/proc/self/gid_map"),
        "status": status(),
        "umask": umask(),
        "rlimits": rlimits(),
        "oom_score_adj": read_string("/proc/self/oom_score_adj").map(|s| s.trim().to_string()),
        "fds": open_fds(),
        "cgroup": read_string("/proc/self/cgroup"),
        "hostname": read_string("/proc/sys/kernel/hostname").map(|s| s.trim().to_string()),
        "domainname": read_string("/proc/sys/kernel/domainname").map(|s| s.trim().to_string()),
        "cwd": std::env::current_dir().ok(),
        "env": std::env::vars().collect::<std::collections::BTreeMap<_, _>>(),
        "mountinfo": read_string("/proc/self/mountinfo").map(|s| s.lines().map(String::from).collect::<Vec<_>>()),
        "winsize": winsize(),
        "sched": sched(),
        "ioprio": syscall_value(libc::SYS_ioprio_get, 1, 0),
        "personality": syscall_value(libc::SYS_personality, 0xffff_ffff, 0),
        "affinity": affinity(),
        "mempolicy": mempolicy(),
        "keyring_label": keyring_label(),
        "probes": probes,
    });
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{report}");
}

fn read_string(path: &str) -> Option<String> {
    fs::read_to_string(path).ok()
}

/// `{"ok": value}` or `{"errno": n}`, so the runner can assert on exact errors (EROFS...).
fn outcome(r: io::Result<Value>) -> Value {
    match r {
        Ok(v) => json!({ "ok": v }),
        Err(e) => json!({ "errno": e.raw_os_error().unwrap_or(-1) }),
    }
}

fn probe(arg: &str) -> Value {
    let Some((kind, path)) = arg.split_once(':') else {
        return json!({ "error": "expected KIND:PATH" });
    };
    outcome(match kind {
        "stat" => fs::symlink_metadata(path).map(|m| {
            let ft = m.file_type();
            let kind = if ft.is_char_device() {
                "c"
            } else if ft.is_block_device() {
                "b"
            } else if ft.is_dir() {
                "d"
            } else if ft.is_symlink() {
                "l"
            } else {
                "f"
            };
            let rdev = m.rdev();
            json!({
                "type": kind, "mode": m.mode() & 0o7777, "uid": m.uid(), "gid": m.gid(),
                "major": libc::major(rdev), "minor": libc::minor(rdev),
            })
        }),
        "readlink" => fs::read_link(path).map(|t| json!(t)),
        "read" => fs::read(path).map(|d| json!(String::from_utf8_lossy(&d))),
        "write" => fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .and_then(|mut f| f.write_all(b"1\n"))
            .map(|()| Value::Null),
        "open-r" | "open-w" | "open-rw" => fs::OpenOptions::new()
            .read(kind != "open-w")
            .write(kind != "open-r")
            .open(path)
            .map(|_| Value::Null),
        "mknod" => mknod(path),
        "ls" => fs::read_dir(path).and_then(|d| {
            let mut names = d
                .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
                .collect::<io::Result<Vec<_>>>()?;
            names.sort();
            Ok(json!(names))
        }),
        "selinux" => selinux_label(path).map(|l| json!(l)),
        "directread" => direct_read(path),
        _ => return json!({ "error": format!("unknown probe kind {kind}") }),
    })
}

/// The LSM label of the session keyring (keyctl KEYCTL_GET_SECURITY), null when unreadable.
fn keyring_label() -> Option<String> {
    const KEYCTL_GET_SECURITY: libc::c_long = 17;
    const KEY_SPEC_SESSION_KEYRING: libc::c_long = -3;
    let mut buf = [0u8; 256];
    // SAFETY: buf is writable for the length passed.
    let n = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_GET_SECURITY,
            KEY_SPEC_SESSION_KEYRING,
            buf.as_mut_ptr(),
            buf.len(),
        )
    };
    (n > 0).then(|| {
        String::from_utf8_lossy(&buf[..(n as usize).min(buf.len())])
            .trim_end_matches('\0')
            .to_string()
    })
}

/// lgetxattr(path, "security.selinux"), without the trailing NUL.
fn selinux_label(path: &str) -> io::Result<String> {
    let path =
        std::ffi::CString::new(path).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let mut buf = [0u8; 256];
    // SAFETY: both names are NUL-terminated; buf is writable for the length passed.
    let n = unsafe {
        libc::lgetxattr(
            path.as_ptr(),
            c"security.selinux".as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(String::from_utf8_lossy(&buf[..n as usize])
        .trim_end_matches('\0')
        .to_string())
}

/// `TYPE:MAJOR:MINOR:PATH`: a device node with mode 0666.
fn mknod(spec: &str) -> io::Result<Value> {
    let bad = || io::Error::from_raw_os_error(libc::EINVAL);
    let mut parts = spec.splitn(4, ':');
    let (Some(kind), Some(major), Some(minor), Some(path)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let kind = match kind {
        "c" => libc::S_IFCHR,
        "b" => libc::S_IFBLK,
        _ => return Err(bad()),
    };
    let (major, minor) = (
        major.parse().map_err(|_| bad())?,
        minor.parse().map_err(|_| bad())?,
    );
    let path = std::ffi::CString::new(path).map_err(|_| bad())?;
    // SAFETY: path is a NUL-terminated string that outlives the call.
    let r = unsafe { libc::mknod(path.as_ptr(), kind | 0o666, libc::makedev(major, minor)) };
    if r == 0 {
        Ok(Value::Null)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// What `directread` reads.
const DIRECT_READ: usize = 3 << 20;

/// O_DIRECT wants a buffer aligned to the device's block size; a page is enough.
#[repr(C, align(4096))]
struct DirectBuf([u8; 64 << 10]);

/// Read the start of `path` past the page cache, so that a block I/O limit shows in the time
/// taken: `{"bytes": n, "ms": elapsed}`.
fn direct_read(path: &str) -> io::Result<Value> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)?;
    let mut buf = Box::new(DirectBuf([0; 64 << 10]));
    let start = std::time::Instant::now();
    let mut total = 0;
    while total < DIRECT_READ {
        match f.read(&mut buf.0)? {
            0 => break,
            n => total += n,
        }
    }
    Ok(json!({ "bytes": total, "ms": start.elapsed().as_millis() as u64 }))
}

/// Inode of each namespace: equal inodes (on the same nsfs) mean the same namespace.
fn namespaces() -> Map<String, Value> {
    NAMESPACES
        .iter()
        .filter_map(|ns| {
            let m = fs::metadata(format!("/proc/self/ns/{ns}")).ok()?;
            Some((ns.to_string(), json!(m.ino())))
        })
        .collect()
}

fn status() -> Map<String, Value> {
    let text = read_string("/proc/self/status").unwrap_or_default();
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| STATUS_FIELDS.contains(k))
        .map(|(k, v)| (k.to_string(), json!(v.trim())))
        .collect()
}

fn umask() -> u32 {
    // umask can only be read by setting it; restore it at once.
    // SAFETY: umask(2) touches no memory.
    let old = unsafe { libc::umask(0) };
    // SAFETY: as above.
    unsafe { libc::umask(old) };
    old
}

fn rlimits() -> Map<String, Value> {
    RLIMITS
        .iter()
        .map(|(name, res)| {
            let mut lim = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: lim is a live rlimit that getrlimit fills.
            let rc = unsafe { libc::getrlimit(*res, &mut lim) };
            let v = if rc == 0 {
                json!([lim.rlim_cur, lim.rlim_max])
            } else {
                Value::Null
            };
            (name.to_string(), v)
        })
        .collect()
}

/// Open fds, not counting the one read_dir itself used (its link is gone once
/// the directory is closed).
fn open_fds() -> Vec<u32> {
    let names: Vec<String> = fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    let mut fds: Vec<u32> = names
        .iter()
        .filter(|n| fs::read_link(format!("/proc/self/fd/{n}")).is_ok())
        .filter_map(|n| n.parse().ok())
        .collect();
    fds.sort();
    fds
}

fn winsize() -> Option<[u16; 2]> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: ws is a live winsize that TIOCGWINSZ fills.
    let rc = unsafe { libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) };
    (rc == 0).then_some([ws.ws_row, ws.ws_col])
}

/// A raw syscall's return value, or null when it failed.
fn syscall_value(nr: libc::c_long, a: libc::c_long, b: libc::c_long) -> Option<i64> {
    // SAFETY: used only for syscalls that take integers.
    let r = unsafe { libc::syscall(nr, a, b) };
    (r >= 0).then_some(r as i64)
}

/// sched_getattr(2): the fields of struct sched_attr the runner checks.
fn sched() -> Option<Value> {
    // size, policy, flags, nice, priority, runtime, deadline, period, util_min, util_max
    let mut attr = [0u32; 14];
    let size = std::mem::size_of_val(&attr) as libc::c_long;
    // SAFETY: attr is a writable buffer of the size passed.
    let r = unsafe { libc::syscall(libc::SYS_sched_getattr, 0, attr.as_mut_ptr(), size, 0) };
    (r == 0).then(|| {
        let flags = u64::from(attr[2]) | u64::from(attr[3]) << 32;
        json!({ "policy": attr[1], "flags": flags, "nice": attr[4] as i32, "priority": attr[5] })
    })
}

/// The CPUs this process may run on.
fn affinity() -> Option<Vec<usize>> {
    // SAFETY: cpu_set_t is plain bits, valid when zeroed.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: set is writable and of the size passed.
    let r = unsafe { libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) };
    // SAFETY: CPU_ISSET reads set within CPU_SETSIZE.
    (r == 0).then(|| {
        (0..libc::CPU_SETSIZE as usize)
            // SAFETY: CPU_ISSET only reads the set, and c is below CPU_SETSIZE.
            .filter(|c| unsafe { libc::CPU_ISSET(*c, &set) })
            .collect()
    })
}

/// get_mempolicy(2): the mode and the nodes (of the first 64).
fn mempolicy() -> Option<Value> {
    let (mut mode, mut mask): (libc::c_int, libc::c_ulong) = (0, 0);
    // SAFETY: mode and mask are writable; mask holds the 64 bits maxnode - 1 asks for.
    let r = unsafe { libc::syscall(libc::SYS_get_mempolicy, &mut mode, &mut mask, 65, 0usize, 0) };
    (r == 0).then(|| json!({ "mode": mode, "nodes": (0..64).filter(|n| mask & (1 << n) != 0).collect::<Vec<u32>>() }))
}
