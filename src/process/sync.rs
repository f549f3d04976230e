//! The channel between the runtime and the container init: a SOCK_SEQPACKET socketpair carrying
//! JSON messages. A packet must fit the socket's send buffer (~200 KiB), and a message (the
//! state JSON with its annotations, an init error) may be bigger: each message is its length
//! (8 bytes, little endian) and its bytes, cut into packets of at most [`CHUNK`] bytes.

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
    /// parent -> init: the state is saved; wait for `start`. Until then the init exits if the
    /// channel closes: a runtime killed before it saved the state leaves no init behind.
    Saved,
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

/// The most bytes in one packet: far below any send buffer.
const CHUNK: usize = 32 << 10;
/// A message longer than this is refused: no state or error of ours comes near it.
const MAX_MSG: usize = 64 << 20;

impl Channel {
    pub fn send(&self, msg: &Msg) -> Result<()> {
        let bytes = serde_json::to_vec(msg).expect("sync message serialises");
        let mut framed = (bytes.len() as u64).to_le_bytes().to_vec();
        framed.extend_from_slice(&bytes);
        for packet in framed.chunks(CHUNK) {
            send(self.0.as_raw_fd(), packet, MsgFlags::MSG_NOSIGNAL)
                .ctx(|| "write to sync channel")?;
        }
        Ok(())
    }

    /// The next message; the other side closing the channel is an error naming what we waited for.
    pub fn recv(&self) -> Result<Msg> {
        let mut packet = vec![0u8; CHUNK];
        let n = self.recv_packet(&mut packet)?;
        let (len, first) = packet[..n]
            .split_at_checked(8)
            .ok_or_else(|| Error::Init(format!("bad sync message: a first packet of {n} bytes")))?;
        let len = u64::from_le_bytes(len.try_into().expect("8 bytes")) as usize;
        if len > MAX_MSG || first.len() > len {
            return Err(Error::Init(format!("bad sync message: length {len}")));
        }
        let mut bytes = Vec::with_capacity(len);
        bytes.extend_from_slice(first);
        while bytes.len() < len {
            let n = self.recv_packet(&mut packet)?;
            if bytes.len() + n > len {
                return Err(Error::Init(format!(
                    "bad sync message: over its length {len}"
                )));
            }
            bytes.extend_from_slice(&packet[..n]);
        }
        serde_json::from_slice(&bytes).map_err(|e| Error::Init(format!("bad sync message: {e}")))
    }

    /// One packet into `buf`; end of file (the other side is gone) is an error.
    fn recv_packet(&self, buf: &mut [u8]) -> Result<usize> {
        let n = loop {
            match recv(self.0.as_raw_fd(), buf, MsgFlags::empty()) {
                Err(nix::errno::Errno::EINTR) => continue,
                r => break r.ctx(|| "read from sync channel")?,
            }
        };
        if n == 0 {
            return Err(Error::Init(
                "container init exited without reporting".into(),
            ));
        }
        Ok(n)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Bigger than a packet can be (the send buffer): a state with 1 MiB of annotations, or a
    /// long init error, still crosses whole.
    #[test]
    fn a_message_bigger_than_a_packet_crosses() {
        let (a, b) = pair().unwrap();
        let text = "e".repeat(1 << 20);
        let sender = std::thread::spawn(move || a.send(&Msg::Error(text)).unwrap());
        match b.recv().unwrap() {
            Msg::Error(got) => assert_eq!(got.len(), 1 << 20),
            m => panic!("got {m:?}"),
        }
        sender.join().unwrap();
    }
}
