//! linux.seccomp: actions, errnoRet, argument filters, the runtime's own last syscalls, the
//! capabilities left after a load without noNewPrivileges, the notify listener, bad profiles.

use super::errors::create_fails_naming;
use super::Test;
use crate::harness::Ctx;
use crate::runtime::Out;
use anyhow::{ensure, Context, Result};
use serde_json::{json, Value};
use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;

pub const TESTS: &[Test] = &[
    ("seccomp/errno-ret", errno_ret),
    ("seccomp/kill-process", |c| {
        let out = run(
            c,
            &["uname"],
            allow_but(json!([{ "names": ["uname"], "action": "SCMP_ACT_KILL_PROCESS" }])),
            true,
        )?;
        ensure!(
            out.code() == Some(128 + libc::SIGSYS),
            "want exit {}: {}",
            128 + libc::SIGSYS,
            out.describe()
        );
        Ok(())
    }),
    ("seccomp/argument-filter", argument_filter),
    ("seccomp/getcwd-blocked-runtime-works", |c| {
        let profile = allow_but(json!([{ "names": ["getcwd"], "action": "SCMP_ACT_ERRNO" }]));
        run(c, &["true"], profile.clone(), true)?.ok()?;
        run(c, &["true"], profile, false)?.ok().map(drop)
    }),
    // A profile need not allow close_range: the runtime marks its fds close-on-exec before the load.
    ("seccomp/close-range-blocked-runtime-works", |c| {
        let profile = allow_but(json!([{ "names": ["close_range"], "action": "SCMP_ACT_ERRNO" }]));
        run(c, &["true"], profile.clone(), true)?.ok()?;
        run(c, &["true"], profile, false)?.ok().map(drop)
    }),
    ("seccomp/no-cap-sys-admin-left", no_cap_sys_admin_left),
    ("seccomp/exec-gets-the-filter", exec_gets_the_filter),
    ("seccomp/notify-listener", notify_listener),
    ("seccomp/bad-action", |c| {
        bad(
            c,
            json!({ "names": ["uname"], "action": "SCMP_ACT_EXPLODE" }),
        )
    }),
    ("seccomp/errno-ret-out-of-range", |c| {
        bad(
            c,
            json!({ "names": ["uname"], "action": "SCMP_ACT_ERRNO", "errnoRet": 70000 }),
        )
    }),
    ("seccomp/bad-arch", |c| {
        create_fails_naming(
            c,
            "seccomp",
            |v| {
                v["linux"]["seccomp"] =
                    json!({ "defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_VAX"] })
            },
        )
    }),
];

fn allow_but(rules: Value) -> Value {
    json!({ "defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules })
}

/// A foreground `run` of `args` under `profile`.
fn run(ctx: &mut Ctx, args: &[&str], profile: Value, nnp: bool) -> Result<Out> {
    let b = ctx.bundle(|v| {
        v["process"]["args"] = json!(args);
        v["process"]["noNewPrivileges"] = nnp.into();
        v["linux"]["seccomp"] = profile;
    })?;
    ctx.rt(&["run", "--bundle", b.dir_str(), &b.id])
}

fn errno_ret(ctx: &mut Ctx) -> Result<()> {
    let rules = json!([
        { "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::ENOSPC },
        { "names": ["rmdir", "unlinkat"], "action": "SCMP_ACT_ERRNO" },
    ]);
    let out = run(
        ctx,
        &["sh", "-c", "mkdir /tmp/a; rmdir /tmp"],
        allow_but(rules),
        true,
    )?;
    ensure!(
        out.stderr.contains("No space left on device"),
        "ENOSPC expected: {}",
        out.describe()
    );
    ensure!(
        out.stderr.contains("Operation not permitted"),
        "EPERM (no errnoRet) expected: {}",
        out.describe()
    );
    Ok(())
}

fn argument_filter(ctx: &mut Ctx) -> Result<()> {
    // kill(pid > 0, SIGUSR1 or (sig & 0xff) == SIGHUP): ORed on arg 1, ANDed with arg 0.
    let rules = json!([{ "names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EXDEV, "args": [
        { "index": 0, "value": 0, "op": "SCMP_CMP_GT" },
        { "index": 1, "value": libc::SIGUSR1, "op": "SCMP_CMP_EQ" },
        { "index": 1, "value": 0xff, "valueTwo": libc::SIGHUP, "op": "SCMP_CMP_MASKED_EQ" },
    ]}]);
    let script = "trap '' USR1 HUP; kill -USR1 $$; echo usr1=$?; kill -HUP $$; echo hup=$?; \
                  kill -0 $$; echo zero=$?; kill -USR1 0; echo group=$?";
    let out = run(ctx, &["sh", "-c", script], allow_but(rules), true)?.ok()?;
    for want in ["usr1=1", "hup=1", "zero=0", "group=0"] {
        ensure!(
            out.stdout.contains(want),
            "{want} expected: {}",
            out.describe()
        );
    }
    Ok(())
}

/// Without noNewPrivileges the runtime needs CAP_SYS_ADMIN to load the filter; the process
/// must not keep it.
fn no_cap_sys_admin_left(ctx: &mut Ctx) -> Result<()> {
    let profile = allow_but(json!([{ "names": ["uname"], "action": "SCMP_ACT_ERRNO" }]));
    let out = run(
        ctx,
        &["grep", "^CapEff", "/proc/self/status"],
        profile,
        false,
    )?
    .ok()?;
    let eff = out.stdout.trim().trim_start_matches("CapEff:").trim();
    let eff =
        u64::from_str_radix(eff, 16).with_context(|| format!("CapEff in {:?}", out.stdout))?;
    ensure!(
        eff & (1 << 21) == 0,
        "CAP_SYS_ADMIN left in CapEff {eff:#x}"
    );
    Ok(())
}

/// The listener gets the notify fd with the runc-style JSON message, and answers `mkdir`.
fn notify_listener(ctx: &mut Ctx) -> Result<()> {
    let socket = ctx.dir.join("agent.sock");
    let listener = UnixListener::bind(&socket)?;
    ctx.hand_over(&socket)?;
    let agent = std::thread::spawn(move || -> Result<Value> {
        let (conn, _) = listener.accept()?;
        let mut buf = vec![0u8; 1 << 16];
        let mut iov = [IoSliceMut::new(&mut buf)];
        let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let msg = nix::sys::socket::recvmsg::<()>(
            conn.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            nix::sys::socket::MsgFlags::MSG_CMSG_CLOEXEC,
        )?;
        let Some(nix::sys::socket::ControlMessageOwned::ScmRights(fds)) = msg.cmsgs()?.next()
        else {
            anyhow::bail!("no fd with the listener message");
        };
        let len = msg.bytes;
        // SAFETY: the fd came with the message; nothing else owns it.
        let notify = unsafe { OwnedFd::from_raw_fd(fds[0]) };
        // SAFETY: zeroed seccomp_notif/seccomp_notif_resp are valid; the ioctls fill/read them.
        let mut req: libc::seccomp_notif = unsafe { std::mem::zeroed() };
        // SAFETY: req is a live seccomp_notif the RECV ioctl fills.
        nix::errno::Errno::result(unsafe {
            libc::ioctl(notify.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_RECV, &mut req)
        })?;
        // SAFETY: as above.
        let mut resp: libc::seccomp_notif_resp = unsafe { std::mem::zeroed() };
        resp.id = req.id;
        resp.error = -libc::EDQUOT;
        // SAFETY: as above.
        nix::errno::Errno::result(unsafe {
            libc::ioctl(
                notify.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_SEND,
                &mut resp,
            )
        })?;
        Ok(serde_json::from_slice(&buf[..len])?)
    });
    let profile = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": socket,
        "listenerMetadata": "hello agent",
        "syscalls": [{ "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY" }],
    });
    let out = run(ctx, &["mkdir", "/tmp/x"], profile, true)?;
    let msg = agent
        .join()
        .map_err(|_| anyhow::anyhow!("listener panicked"))??;
    ensure!(
        out.stderr.contains("Disk quota exceeded"),
        "EDQUOT from the listener expected: {}",
        out.describe()
    );
    ensure!(
        msg["fds"] == json!(["seccompFd"]) && msg["metadata"] == "hello agent",
        "message {msg}"
    );
    ensure!(
        msg["state"]["id"].is_string() && msg["pid"].as_i64().is_some_and(|p| p > 0),
        "message {msg}"
    );
    Ok(())
}

/// A process added by `exec` runs under the container's profile too.
fn exec_gets_the_filter(ctx: &mut Ctx) -> Result<()> {
    let rules = json!([{ "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::ENOSPC }]);
    let b = ctx.bundle(|v| {
        v["process"]["args"] = json!(["sleep", "300"]);
        v["linux"]["seccomp"] = allow_but(rules);
    })?;
    ctx.rt(&["run", "--detach", "--bundle", b.dir_str(), &b.id])?
        .ok()?;
    let out = ctx.rt(&["exec", &b.id, "mkdir", "/tmp/x"])?;
    ensure!(
        out.stderr.contains("No space left on device"),
        "ENOSPC expected: {}",
        out.describe()
    );
    Ok(())
}

/// A profile with `rule` must fail create, naming seccomp, and leave nothing behind.
fn bad(ctx: &mut Ctx, rule: Value) -> Result<()> {
    create_fails_naming(ctx, "seccomp", |v| {
        v["linux"]["seccomp"] = allow_but(json!([rule]))
    })
}
