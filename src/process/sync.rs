//! The channel between the runtime and the container init: a SOCK_SEQPACKET socketpair carrying
//! one JSON message per packet, so message boundaries come for free.

use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::socket::{recv, send, socketpair, AddressFamily, MsgFlags, SockFlag, SockType};
use serde::{Deserialize, Serialize};

use crate::{Context, Error, Result};

#[derive(Debug, Serialize, Deserialize)]
pub enum Msg {
    /// child -> parent: I made a new user namespace; write my uid/gid maps.
    WriteMaps,
    /// parent -> child: you are in your cgroup (and maps are written); go on.
    Go,
    /// child -> parent: the pid (in the runtime's pid namespace) of the init forked below me.
    InitPid(i32),
    /// child -> parent: mounts done, before pivot_root: run prestart + createRuntime hooks now.
    Mounted,
    /// parent -> child: the hooks ran; here is the state JSON for the hooks the init runs itself.
    Continue { state: String },
    /// child -> parent: ready; about to wait for `start`.
    Ready,
    /// child -> parent: failed, with the whole context.
    Error(String),
}

pub struct Channel(OwnedFd);

pub fn pair() -> Result<(Channel, Channel)> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .ctx(|| "create sync socketpair")?;
    Ok((Channel(a), Channel(b)))
}

impl Channel {
    pub fn send(&self, msg: &Msg) -> Result<()> {
        let bytes = serde_json::to_vec(msg).expect("sync message serialises");
        send(self.0.as_raw_fd(), &bytes, MsgFlags::MSG_NOSIGNAL).ctx(|| "write to sync channel")?;
        Ok(())
    }

    /// The next message; the other side closing the channel is an error naming what we waited for.
    pub fn recv(&self) -> Result<Msg> {
        let mut buf = vec![0u8; 1 << 16];
        let n = loop {
            match recv(self.0.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Err(nix::errno::Errno::EINTR) => continue,
                r => break r.ctx(|| "read from sync channel")?,
            }
        };
        if n == 0 {
            return Err(Error::Init(
                "container init exited without reporting".into(),
            ));
        }
        serde_json::from_slice(&buf[..n]).map_err(|e| Error::Init(format!("bad sync message: {e}")))
    }

    /// Receive, turning a reported failure into an error.
    pub fn expect(&self) -> Result<Msg> {
        match self.recv()? {
            Msg::Error(e) => Err(Error::Init(e)),
            m => Ok(m),
        }
    }

    pub fn raw(&self) -> i32 {
        self.0.as_raw_fd()
    }
}
