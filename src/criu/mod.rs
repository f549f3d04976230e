//! CRIU through its RPC interface: `criu swrk FD` reads one request (rpc.proto's `criu_req`)
//! from a SOCK_SEQPACKET socket, sends a `criu_resp` per notify script it reaches (answered
//! before it goes on), then the final response. The messages come from rust-criu; the driver is
//! ours so the callbacks can keep state and a restore can put CRIU into the container's cgroup
//! before the request is sent.

use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use nix::sys::socket::{
    recvmsg, send, socketpair, AddressFamily, ControlMessageOwned, MsgFlags, SockFlag, SockType,
};
use nix::unistd::Pid;
use protobuf::Message;
use rust_criu::rust_criu_protobuf::rpc;

use crate::{Context, Error, Result};

pub use rpc::{
    Cgroup_root as CgroupRoot, Criu_cg_mode as CgMode, Criu_opts as Opts,
    Criu_page_server_info as PageServer, Criu_req_type as ReqType, Ext_mount_map as ExtMount,
    Inherit_fd as InheritFd,
};

/// CRIU's fd for the RPC socket in `criu swrk`; fds handed to it for `inherit_fd` follow.
const SWRK_FD: RawFd = 3;

/// Responses are small; a notify may carry one fd (`orphan-pts-master`).
const RESP_MAX: usize = 64 * 1024;

/// One notify script CRIU reached (`setup-namespaces`, `post-restore`, ...).
pub struct Notify<'a> {
    pub script: &'a str,
    pub pid: i32,
    /// An fd that came with the message (the pty master for `orphan-pts-master`).
    pub fd: Option<OwnedFd>,
}

/// A CRIU request about to be sent.
pub struct Request<'a> {
    /// The criu binary (`--criu`, else `criu` in PATH).
    pub criu: &'a Path,
    pub kind: ReqType,
    pub opts: Opts,
    /// Given to CRIU as fds 4, 5, ...: the `inherit_fd` entries of `opts` name those numbers.
    pub pass_fds: Vec<BorrowedFd<'a>>,
    /// CRIU's log (`opts.log_file` in the work dir), whose last error goes into a failure.
    pub log: PathBuf,
}

impl Request<'_> {
    /// Run CRIU: `spawned` gets its pid and the options before the request is sent, `notify` every script
    /// reached (an error there makes CRIU give up). The final response on success.
    pub fn run(
        mut self,
        spawned: impl FnOnce(Pid, &mut Opts) -> Result<()>,
        mut notify: impl FnMut(Notify) -> Result<()>,
    ) -> Result<rpc::Criu_resp> {
        let what = action(self.kind);
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .ctx(|| "create criu socketpair")?;
        let child = spawn(self.criu, &theirs, &self.pass_fds)?;
        drop(theirs);
        let swrk = Swrk {
            sock: Some(ours),
            child,
        };
        let ours = swrk.sock.as_ref().expect("set above");
        spawned(Pid::from_raw(swrk.child.id() as i32), &mut self.opts)?;

        self.opts.set_notify_scripts(true);
        let mut req = rpc::Criu_req::new();
        req.set_type(self.kind);
        req.opts = protobuf::MessageField::some(self.opts);
        send_msg(ours, &req)?;
        let mut failed_callback = None;
        loop {
            let (resp, fd) = recv_msg(ours).map_err(|e| failure(&self.log, what, e.to_string()))?;
            if resp.type_() != ReqType::NOTIFY {
                if let Some(e) = failed_callback {
                    return Err(e);
                }
                if !resp.success() {
                    let mut msg = resp.cr_errmsg().to_string();
                    if msg.is_empty() && resp.cr_errno() != 0 {
                        msg = crate::error::errno_text(nix::Error::from_raw(resp.cr_errno()));
                    }
                    return Err(failure(&self.log, what, msg));
                }
                return Ok(resp);
            }
            let n = resp.notify.get_or_default();
            let result = notify(Notify {
                script: n.script(),
                pid: n.pid(),
                fd,
            });
            let mut ack = rpc::Criu_req::new();
            ack.set_type(ReqType::NOTIFY);
            ack.set_notify_success(result.is_ok());
            if let Err(e) = result {
                failed_callback = Some(e);
            }
            send_msg(ours, &ack)?;
        }
    }
}

/// "criu dump failed: <CRIU's message or the last error of its log> (log: PATH)".
fn failure(log: &Path, what: &str, msg: String) -> Error {
    let mut text = msg;
    if let Some(line) = last_error(log).filter(|l| !text.contains(l.as_str())) {
        text = if text.is_empty() {
            line
        } else {
            format!("{text}: {line}")
        };
    }
    if text.is_empty() {
        text = "no error message".into();
    }
    Error::Criu(format!(
        "criu {what} failed: {text} (log: {})",
        log.display()
    ))
}

fn action(kind: ReqType) -> &'static str {
    match kind {
        ReqType::DUMP => "dump",
        ReqType::PRE_DUMP => "pre-dump",
        ReqType::RESTORE => "restore",
        _ => "request",
    }
}

/// `criu swrk` and our end of its socket. On drop the socket is closed first: after a
/// pre-dump CRIU waits on it for the next request; then CRIU is reaped.
struct Swrk {
    sock: Option<OwnedFd>,
    child: Child,
}

impl Drop for Swrk {
    fn drop(&mut self) {
        drop(self.sock.take());
        let _ = self.child.wait();
    }
}

fn spawn(criu: &Path, sock: &OwnedFd, pass: &[BorrowedFd]) -> Result<Child> {
    let mut fds = vec![sock.as_raw_fd()];
    fds.extend(pass.iter().map(|f| f.as_raw_fd()));
    let mut cmd = Command::new(criu);
    // CRIU shares our stdio: a restore hands pipes of ours to the restored init (inherit_fd).
    cmd.arg("swrk").arg(SWRK_FD.to_string());
    // SAFETY: the closure only calls dup2/fcntl (async-signal-safe) on fds the parent holds
    // open, and allocates nothing: `fds` was built before the fork.
    unsafe {
        cmd.pre_exec(move || {
            // A foreground restore blocks the signals it forwards; CRIU needs its SIGCHLD.
            // SAFETY (of the zeroed value): an all-zero sigset_t is the empty set on Linux.
            let empty: libc::sigset_t = std::mem::zeroed();
            if libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut()) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // Move every source above the targets first, so no dup2 overwrites a later source.
            let high = SWRK_FD + fds.len() as RawFd + 100;
            let mut moved = [0 as RawFd; 64];
            for (i, fd) in fds.iter().enumerate().take(moved.len()) {
                moved[i] = libc::fcntl(*fd, libc::F_DUPFD_CLOEXEC, high);
                if moved[i] < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            for (i, fd) in moved.iter().take(fds.len()).enumerate() {
                // dup2 leaves the new fd without FD_CLOEXEC: CRIU inherits it.
                if libc::dup2(*fd, SWRK_FD + i as RawFd) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    cmd.spawn().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::Criu(format!(
                "criu not found ({}): checkpoint and restore need CRIU installed (or --criu PATH)",
                criu.display()
            ))
        } else {
            Error::io(format!("start {} swrk", criu.display()), e)
        }
    })
}

fn send_msg(sock: &OwnedFd, msg: &rpc::Criu_req) -> Result<()> {
    let bytes = msg
        .write_to_bytes()
        .map_err(|e| Error::Criu(format!("encode criu request: {e}")))?;
    send(sock.as_raw_fd(), &bytes, MsgFlags::MSG_NOSIGNAL).ctx(|| "send criu request")?;
    Ok(())
}

fn recv_msg(sock: &OwnedFd) -> Result<(rpc::Criu_resp, Option<OwnedFd>)> {
    let mut buf = vec![0u8; RESP_MAX];
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let (len, fd) = {
        let mut iov = [IoSliceMut::new(&mut buf)];
        let msg = recvmsg::<()>(
            sock.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .ctx(|| "receive criu response")?;
        let mut fd = None;
        for c in msg.cmsgs().ctx(|| "receive criu response")? {
            if let ControlMessageOwned::ScmRights(fds) = c {
                for raw in fds {
                    // SAFETY: SCM_RIGHTS just installed this fd in our table; nobody else owns it.
                    let owned = unsafe { OwnedFd::from_raw_fd(raw) };
                    fd.get_or_insert(owned);
                }
            }
        }
        (msg.bytes, fd)
    };
    if len == 0 {
        return Err(Error::Criu("criu exited without a response".into()));
    }
    let resp = rpc::Criu_resp::parse_from_bytes(&buf[..len])
        .map_err(|e| Error::Criu(format!("decode criu response: {e}")))?;
    Ok((resp, fd))
}

/// The last line of CRIU's log that reports an error, without its timestamp.
fn last_error(log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    let line = text.lines().rev().find(|l| l.contains("Error ("))?;
    let line = line.trim();
    // "(00.123456) Error (criu/mount.c:123): ..." -> "Error (criu/mount.c:123): ..."
    let start = line.find("Error (").unwrap_or(0);
    Some(line[start..].to_string())
}

/// Namespace names as runc's `--empty-ns` takes them, and their clone flags.
pub fn namespace_flag(name: &str) -> Option<u32> {
    let flag = match name {
        "network" => libc::CLONE_NEWNET,
        "mount" => libc::CLONE_NEWNS,
        "ipc" => libc::CLONE_NEWIPC,
        "uts" => libc::CLONE_NEWUTS,
        "pid" => libc::CLONE_NEWPID,
        "user" => libc::CLONE_NEWUSER,
        "cgroup" => libc::CLONE_NEWCGROUP,
        _ => return None,
    };
    Some(flag as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_error_of_a_log() {
        let dir = std::env::temp_dir().join(format!("berth-criu-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("dump.log");
        std::fs::write(
            &log,
            "(00.001) Error (criu/a.c:1): first\n(00.002) info\n(00.003) Error (criu/b.c:2): last one\n(00.004) done\n",
        )
        .unwrap();
        assert_eq!(
            last_error(&log).as_deref(),
            Some("Error (criu/b.c:2): last one")
        );
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(last_error(&log), None);
    }

    #[test]
    fn missing_criu_is_one_clear_error() {
        let req = Request {
            criu: Path::new("/nonexistent/criu"),
            kind: ReqType::DUMP,
            opts: Opts::new(),
            pass_fds: vec![],
            log: PathBuf::from("/nonexistent/dump.log"),
        };
        let err = req.run(|_, _| Ok(()), |_| Ok(())).unwrap_err().to_string();
        assert!(
            err.starts_with("criu not found (/nonexistent/criu)"),
            "{err}"
        );
    }
}
