//! process.terminal with --console-socket, and the JSON error log.

use super::Test;
use crate::harness::{Bundle, Ctx};
use crate::report::Report;
use crate::runtime::Out;
use crate::suite::lifecycle::running_sleeper;
use anyhow::{bail, ensure, Context, Result};
use nix::cmsg_space;
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use serde_json::{json, Value};
use std::fs;
use std::io::{ErrorKind, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::thread::{self, sleep};
use std::time::{Duration, Instant};

pub const TESTS: &[Test] = &[
    ("console/socket-and-size", console_socket),
    ("attack/console-through-symlink", console_through_symlink),
    ("console/exec-tty", exec_tty),
    ("log/json-error", json_error_log),
];

fn console_socket(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.bundle(|v| {
        v["process"]["terminal"] = json!(true);
        v["process"]["consoleSize"] = json!({ "height": 31, "width": 97 });
    })?;
    let (created, receiver, deadline) = create_with_console(ctx, &b)?;
    created.ok()?;
    let (name, master) = receiver.join().expect("receiver thread panicked")?;
    ensure!(
        !name.is_empty(),
        "console socket message carried no pty name"
    );
    ctx.rt(&["start", &b.id])?.ok()?;

    let output = read_until_hangup(&master, deadline)?;
    let r = Report::parse(&output)?;
    ensure!(
        r.get("winsize") == &json!([31, 97]),
        "terminal size {} (want 31x97)",
        r.get("winsize")
    );
    Ok(())
}

/// CVE-2025-52565: the container's /dev (bound from the bundle) has a `console` that is a
/// symlink to a host procfs file; binding the pty "on /dev/console" must not land there.
fn console_through_symlink(ctx: &mut Ctx) -> Result<()> {
    let dev = ctx.dir.join("fake-dev");
    fs::create_dir_all(&dev)?;
    std::os::unix::fs::symlink("/proc/sys/kernel/core_pattern", dev.join("console"))?;
    std::os::unix::fs::symlink("pts/ptmx", dev.join("ptmx"))?;
    let target = "/proc/sys/kernel/core_pattern";
    let b = ctx.bundle(|v| {
        v["process"]["terminal"] = json!(true);
        v["process"]["args"] = json!(["/checker", format!("stat:{target}")]);
        v["linux"]["maskedPaths"] = json!([]);
        for m in v["mounts"].as_array_mut().expect("mounts") {
            if m["destination"] == "/dev" {
                *m = json!({ "destination": "/dev", "type": "bind", "source": dev, "options": ["rbind"] });
            }
        }
    })?;
    let (created, receiver, deadline) = create_with_console(ctx, &b)?;
    if !created.success() {
        // Refusing is safe if it leaves nothing; the receiver gives up at its deadline.
        return ctx.assert_nothing_left(&b.id, &b.cgroup);
    }
    let (_, master) = receiver.join().expect("receiver thread panicked")?;
    ctx.rt(&["start", &b.id])?.ok()?;
    let r = Report::parse(&read_until_hangup(&master, deadline)?)?;
    let st = r.probe(&format!("stat:{target}"))?;
    ensure!(
        st["type"] == "f",
        "{target} is now {st}: the pty was bound over it"
    );
    Ok(())
}

type PtyReceiver = thread::JoinHandle<Result<(String, OwnedFd)>>;

/// A console socket we listen on; the thread receives the pty master sent to it.
fn listen(ctx: &Ctx, name: &str) -> Result<(String, PtyReceiver, Instant)> {
    let sock = ctx.dir.join(name);
    let listener = UnixListener::bind(&sock)?;
    ctx.hand_over(&sock)?;
    let deadline = Instant::now() + ctx.timeout();
    let receiver = thread::spawn(move || receive_fd(listener, deadline));
    Ok((
        sock.to_str().context("utf-8 path")?.to_string(),
        receiver,
        deadline,
    ))
}

/// `create` with a console socket we listen on.
fn create_with_console(ctx: &mut Ctx, b: &Bundle) -> Result<(Out, PtyReceiver, Instant)> {
    let (sock, receiver, deadline) = listen(ctx, "console.sock")?;
    let created = ctx.rt(&[
        "create",
        "--bundle",
        b.dir_str(),
        "--console-socket",
        &sock,
        &b.id,
    ])?;
    Ok((created, receiver, deadline))
}

/// `exec -d -t --console-socket`, as containerd and conmon call it: the exec'd process gets its
/// own pty, sent like the init's.
fn exec_tty(ctx: &mut Ctx) -> Result<()> {
    let (b, _) = running_sleeper(ctx)?;
    let (sock, receiver, deadline) = listen(ctx, "exec-console.sock")?;
    ctx.rt(&[
        "exec",
        "--detach",
        "-t",
        "--console-socket",
        &sock,
        &b.id,
        "/checker",
    ])?
    .ok()?;
    let (_, master) = receiver.join().expect("receiver thread panicked")?;
    let output = read_until_hangup(&master, deadline)?;
    let r = Report::parse(&output)?;
    ensure!(
        !r.get("winsize").is_null(),
        "the exec'd process has no terminal"
    );
    Ok(())
}

/// Accepts the runtime's connection and takes the fd sent with SCM_RIGHTS and its payload: the
/// pty master and its name on a console socket, a pidfd on a pidfd socket.
pub fn receive_fd(listener: UnixListener, deadline: Instant) -> Result<(String, OwnedFd)> {
    listener.set_nonblocking(true)?;
    let stream = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == ErrorKind::WouldBlock && Instant::now() < deadline => {
                sleep(Duration::from_millis(10))
            }
            Err(e) => return Err(e).context("no connection on the console socket"),
        }
    };
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(
        deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1)),
    ))?;
    let mut buf = [0u8; 4096];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut space = cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    let mut fd = None;
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            // SAFETY: the kernel just installed these fds in our table; we own them now.
            fd = fds.first().map(|&f| unsafe { OwnedFd::from_raw_fd(f) });
        }
    }
    let len = msg.bytes;
    let fd = fd.context("the socket's message carried no fd")?;
    Ok((String::from_utf8_lossy(&buf[..len]).into_owned(), fd))
}

/// Reads the pty master until the last slave closes (EIO) or the deadline.
fn read_until_hangup(master: &OwnedFd, deadline: Instant) -> Result<String> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            bail!(
                "no hangup on the console; got {:?}",
                String::from_utf8_lossy(&out)
            );
        }
        let ms = u16::try_from(left.as_millis().min(1000)).unwrap_or(1000);
        let mut fds = [PollFd::new(master.as_fd(), PollFlags::POLLIN)];
        if poll(&mut fds, PollTimeout::from(ms))? == 0 {
            continue;
        }
        match nix::unistd::read(master, &mut buf) {
            Ok(0) | Err(Errno::EIO) => return Ok(String::from_utf8_lossy(&out).into_owned()),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(Errno::EINTR | Errno::EAGAIN) => {}
            Err(e) => return Err(e).context("reading the console"),
        }
    }
}

fn json_error_log(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.bundle(|v| v["root"]["path"] = json!("no-such-rootfs"))?;
    let log = ctx.dir.join("runtime.log");
    let log_arg = log.to_str().context("utf-8 path")?;
    ctx.rt(&[
        "--log",
        log_arg,
        "--log-format",
        "json",
        "create",
        "--bundle",
        b.dir_str(),
        &b.id,
    ])?
    .failed()?;
    let text = fs::read_to_string(&log).context("no log file written")?;
    let errors: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["level"] == "error")
        .collect();
    ensure!(
        !errors.is_empty(),
        "no JSON line with level error in the log:\n{text}"
    );
    ensure!(
        errors
            .iter()
            .all(|e| e["msg"].as_str().is_some_and(|m| !m.is_empty())),
        "error lines lack msg: {errors:?}"
    );
    Ok(())
}
