//! linux.seccomp against real containers run by the berth binary (as root).
//!
//! Each container gets its own bundle, `--root` and id under a fresh temp dir, and an absolute
//! cgroup `/berth-test/<unique>` (never one under the test's own cgroup); all of it goes on drop.

use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use serde_json::{json, Value};

const BERTH: &str = env!("CARGO_BIN_EXE_berth");

struct Container {
    dir: PathBuf,
    id: String,
    cgroup: String,
}

impl Container {
    fn new(name: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let unique = format!(
            "{}-{}-{name}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let dir = std::env::temp_dir().join(format!("berth-seccomp-{unique}"));
        let bin = dir.join("bundle/rootfs/bin");
        std::fs::create_dir_all(&bin).unwrap();
        for d in ["proc", "dev", "sys", "tmp"] {
            std::fs::create_dir_all(dir.join("bundle/rootfs").join(d)).unwrap();
        }
        std::fs::copy("/bin/busybox", bin.join("busybox")).unwrap();
        let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
        for applet in String::from_utf8(list.stdout)
            .unwrap()
            .lines()
            .filter(|a| *a != "busybox")
        {
            std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
        }
        std::fs::create_dir_all(dir.join("root")).unwrap();
        let c = Container {
            dir,
            id: format!("sc-{unique}"),
            cgroup: format!("/berth-test/{unique}"),
        };
        let out = Command::new(BERTH)
            .args(["spec", "--bundle"])
            .arg(c.bundle())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "berth spec: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        c
    }

    fn bundle(&self) -> PathBuf {
        self.dir.join("bundle")
    }

    /// config.json from `berth spec`, with `args`, no terminal, our cgroup, and `edit` applied.
    fn configure(&self, args: &[&str], edit: impl FnOnce(&mut Value)) {
        let path = self.bundle().join("config.json");
        let mut cfg: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        cfg["process"]["terminal"] = false.into();
        cfg["process"]["args"] = json!(args);
        cfg["linux"]["cgroupsPath"] = self.cgroup.clone().into();
        edit(&mut cfg);
        std::fs::write(&path, serde_json::to_vec_pretty(&cfg).unwrap()).unwrap();
    }

    fn berth(&self, verb: &str) -> Command {
        let mut cmd = Command::new(BERTH);
        cmd.arg("--root").arg(self.dir.join("root")).arg(verb);
        cmd
    }

    /// `berth run` with `seccomp` as linux.seccomp.
    fn run(&self, args: &[&str], seccomp: Value) -> Output {
        self.run_with(args, |c| c["linux"]["seccomp"] = seccomp)
    }

    fn run_with(&self, args: &[&str], edit: impl FnOnce(&mut Value)) -> Output {
        self.configure(args, edit);
        self.berth("run")
            .arg("--bundle")
            .arg(self.bundle())
            .arg(&self.id)
            .output()
            .unwrap()
    }

    /// Nothing of a failed create is left: no state dir, no cgroup.
    fn assert_nothing_left(&self) {
        assert!(
            !self.dir.join("root").join(&self.id).exists(),
            "state dir left behind"
        );
        for dir in cgroup_roots() {
            let cg = dir.join(self.cgroup.trim_start_matches('/'));
            assert!(!cg.exists(), "cgroup {} left behind", cg.display());
        }
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = self.berth("delete").arg("--force").arg(&self.id).output();
        let _ = std::fs::remove_dir_all(&self.dir);
        for dir in cgroup_roots() {
            // Busy or not empty: another test still uses it.
            let _ = std::fs::remove_dir(dir.join("berth-test"));
        }
    }
}

/// The v2 root, or each v1 hierarchy.
fn cgroup_roots() -> Vec<PathBuf> {
    let root = Path::new("/sys/fs/cgroup");
    let mut dirs = vec![root.to_path_buf()];
    dirs.extend(
        std::fs::read_dir(root)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir()),
    );
    dirs
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn allow_all_but(rules: Value) -> Value {
    json!({ "defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules })
}

#[test]
fn errno_with_and_without_errno_ret() {
    let c = Container::new("errno");
    let out = c.run(
        &["sh", "-c", "mkdir /tmp/a; rmdir /tmp"],
        allow_all_but(json!([
            { "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::ENOSPC },
            { "names": ["rmdir", "unlinkat"], "action": "SCMP_ACT_ERRNO" },
        ])),
    );
    let t = text(&out);
    assert!(t.contains("No space left on device"), "{t}");
    // Without errnoRet the errno is EPERM.
    assert!(t.contains("Operation not permitted"), "{t}");
}

#[test]
fn kill_process_ends_with_sigsys() {
    let c = Container::new("kill");
    let out = c.run(
        &["uname"],
        allow_all_but(json!([{ "names": ["uname"], "action": "SCMP_ACT_KILL_PROCESS" }])),
    );
    assert_eq!(
        out.status.code(),
        Some(128 + libc::SIGSYS),
        "{}",
        text(&out)
    );
}

#[test]
fn argument_filters() {
    let c = Container::new("args");
    // kill(pid > 0, SIGUSR1 or (sig & 0xff) == SIGHUP): the two conditions on arg 1 are ORed,
    // the one on arg 0 is ANDed with each.
    let rules = json!([
        { "names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EXDEV, "args": [
            { "index": 0, "value": 0, "op": "SCMP_CMP_GT" },
            { "index": 1, "value": libc::SIGUSR1, "op": "SCMP_CMP_EQ" },
            { "index": 1, "value": 0xff, "valueTwo": libc::SIGHUP, "op": "SCMP_CMP_MASKED_EQ" },
        ]},
        { "names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EAFNOSUPPORT, "args": [
            { "index": 0, "value": libc::AF_INET, "op": "SCMP_CMP_EQ" },
        ]},
        { "names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EXDEV, "args": [
            { "index": 0, "value": 0, "op": "SCMP_CMP_NE" },
        ]},
    ]);
    let script = "trap '' USR1 HUP; kill -USR1 $$; echo usr1=$?; kill -HUP $$; echo hup=$?; \
                  kill -0 $$; echo zero=$?; kill -USR1 0; echo group=$?; \
                  nc 127.0.0.1 9; linux32 true; echo linux32=$?; linux64 true; echo linux64=$?";
    let out = c.run(&["sh", "-c", script], allow_all_but(rules));
    let t = text(&out);
    for want in [
        "usr1=1",
        "hup=1",
        "zero=0",
        "group=0",
        "Invalid cross-device link",
        "linux32=1",
        "linux64=0",
    ] {
        assert!(t.contains(want), "{want}: {t}");
    }
    assert!(t.contains("socket: Address family not supported"), "{t}");
}

/// What a static busybox and the runtime's last steps need.
const ALLOW: &[&str] = &[
    "execve",
    "capset",
    "brk",
    "arch_prctl",
    "set_tid_address",
    "set_robust_list",
    "rseq",
    "prlimit64",
    "mmap",
    "munmap",
    "mprotect",
    "readlink",
    "readlinkat",
    "uname",
    "getuid",
    "geteuid",
    "getgid",
    "getegid",
    "getpid",
    "getppid",
    "write",
    "writev",
    "read",
    "exit",
    "exit_group",
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "ioctl",
    "fstat",
    "newfstatat",
    "statx",
    "stat",
    "lstat",
    "close",
    "fcntl",
    "open",
    "openat",
    "getcwd",
    "wait4",
    "clone",
    "clone3",
    "vfork",
    "fork",
    "dup2",
    "dup3",
    "getrandom",
    "sigaltstack",
    "futex",
    "access",
    "faccessat",
    "faccessat2",
];

#[test]
fn default_errno_with_an_allow_list() {
    let c = Container::new("allowlist");
    let profile = json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": libc::EACCES,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{ "names": ALLOW, "action": "SCMP_ACT_ALLOW" }],
    });
    let out = c.run(&["sh", "-c", "echo hello; mkdir /tmp/x"], profile);
    let t = text(&out);
    assert!(
        t.contains("hello") && t.contains("Permission denied"),
        "{t}"
    );
}

#[test]
fn blocking_getcwd_does_not_break_the_runtime() {
    let c = Container::new("getcwd");
    // Without noNewPrivileges too: the filter is loaded with the CAP_SYS_ADMIN kept for it.
    for nnp in [true, false] {
        let out = c.run_with(&["true"], |cfg| {
            cfg["process"]["noNewPrivileges"] = nnp.into();
            cfg["linux"]["seccomp"] =
                allow_all_but(json!([{ "names": ["getcwd"], "action": "SCMP_ACT_ERRNO" }]));
        });
        assert!(
            out.status.success(),
            "noNewPrivileges {nnp}: {}",
            text(&out)
        );
    }
}

#[test]
fn log_action_and_flags() {
    let c = Container::new("log");
    let out = c.run(
        &["uname"],
        json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
            "syscalls": [{ "names": ["uname"], "action": "SCMP_ACT_LOG" }],
        }),
    );
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("Linux"),
        "{}",
        text(&out)
    );
}

/// The Cap* lines of the container process's status, without noNewPrivileges.
fn caps_of(c: &Container, seccomp: Value) -> String {
    let out = c.run_with(&["grep", "^Cap", "/proc/self/status"], |cfg| {
        cfg["process"]["noNewPrivileges"] = false.into();
        cfg["linux"]["seccomp"] = seccomp;
    });
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn cap_sys_admin_kept_for_the_load_is_dropped() {
    let c = Container::new("caps");
    let without = caps_of(&c, Value::Null);
    let with = caps_of(
        &c,
        allow_all_but(json!([{ "names": ["getcwd"], "action": "SCMP_ACT_ERRNO" }])),
    );
    assert_eq!(with, without);
    let eff = with
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .unwrap()
        .trim();
    let eff = u64::from_str_radix(eff, 16).unwrap();
    assert_eq!(eff & caps::Capability::CAP_SYS_ADMIN.bitmask(), 0, "{with}");
}

/// A listener that takes the notify fd, checks the message, and makes the first notified syscall
/// fail with EDQUOT.
fn listen(path: &Path, id: String) -> std::thread::JoinHandle<Value> {
    let listener = UnixListener::bind(path).unwrap();
    std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        let mut buf = vec![0u8; 1 << 16];
        let mut iov = [IoSliceMut::new(&mut buf)];
        let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let msg = recvmsg::<()>(
            conn.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .unwrap();
        let fd = match msg.cmsgs().unwrap().next() {
            Some(ControlMessageOwned::ScmRights(fds)) => fds[0],
            m => panic!("no fd: {m:?}"),
        };
        let len = msg.bytes;
        // SAFETY: the fd came with the message and is ours.
        let notify = unsafe { OwnedFd::from_raw_fd(fd) };
        let payload: Value = serde_json::from_slice(&buf[..len]).unwrap();
        assert_eq!(payload["state"]["id"], id.as_str());
        let req = libseccomp::ScmpNotifReq::receive(notify.as_raw_fd()).unwrap();
        libseccomp::ScmpNotifResp::new_error(
            req.id,
            -libc::EDQUOT,
            libseccomp::ScmpNotifRespFlags::empty(),
        )
        .respond(notify.as_raw_fd())
        .unwrap();
        payload
    })
}

#[test]
fn notify_goes_to_the_listener() {
    let c = Container::new("notify");
    let socket = c.dir.join("agent.sock");
    let agent = listen(&socket, c.id.clone());
    let out = c.run(
        &["mkdir", "/tmp/x"],
        json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": socket,
            "listenerMetadata": "hello agent",
            "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
            "syscalls": [{ "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY" }],
        }),
    );
    let t = text(&out);
    assert!(t.contains("Disk quota exceeded"), "{t}");
    let payload = agent.join().unwrap();
    assert_eq!(payload["fds"], json!(["seccompFd"]));
    assert_eq!(payload["metadata"], "hello agent");
    assert!(
        payload["ociVersion"].is_string() && payload["pid"].as_i64().unwrap() > 0,
        "{payload}"
    );
    assert_eq!(payload["pid"], payload["state"]["pid"]);
}

/// `create` with a bad profile fails, names the field, and leaves nothing behind.
fn refused(name: &str, seccomp: Value, field: &str) {
    let c = Container::new(name);
    c.configure(&["true"], |cfg| cfg["linux"]["seccomp"] = seccomp);
    let out = c
        .berth("create")
        .arg("--bundle")
        .arg(c.bundle())
        .arg(&c.id)
        .output()
        .unwrap();
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(field),
        "{field} not named: {t}"
    );
    c.assert_nothing_left();
}

#[test]
fn bad_profiles_are_refused() {
    let rule =
        |r: Value| allow_all_but(json!([{ "names": ["mkdir"], "action": "SCMP_ACT_ERRNO" }, r]));
    refused(
        "action",
        rule(json!({ "names": ["uname"], "action": "SCMP_ACT_EXPLODE" })),
        "linux.seccomp.syscalls[1].action",
    );
    refused(
        "errno",
        rule(json!({ "names": ["uname"], "action": "SCMP_ACT_ERRNO", "errnoRet": 70000 })),
        "linux.seccomp.syscalls[1].errnoRet",
    );
    refused(
        "defaulterrno",
        json!({ "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 5000 }),
        "linux.seccomp.defaultErrnoRet",
    );
    refused(
        "arch",
        json!({ "defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_VAX"] }),
        "linux.seccomp.architectures[0]",
    );
    refused(
        "op",
        rule(
            json!({ "names": ["uname"], "action": "SCMP_ACT_ERRNO", "args": [{ "index": 0, "value": 1, "op": "SCMP_CMP_ABOUT" }] }),
        ),
        "linux.seccomp.syscalls[1].args[0].op",
    );
    refused(
        "index",
        rule(
            json!({ "names": ["uname"], "action": "SCMP_ACT_ERRNO", "args": [{ "index": 6, "value": 1, "op": "SCMP_CMP_EQ" }] }),
        ),
        "linux.seccomp.syscalls[1].args[0].index",
    );
    refused(
        "nolistener",
        rule(json!({ "names": ["uname"], "action": "SCMP_ACT_NOTIFY" })),
        "linux.seccomp.listenerPath",
    );
    refused(
        "notifydefault",
        json!({ "defaultAction": "SCMP_ACT_NOTIFY" }),
        "linux.seccomp.defaultAction",
    );
}
