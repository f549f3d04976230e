//! `linux.netDevices`: host interfaces moved (and renamed) into the container's new network
//! namespace by the runtime, with one rtnetlink RTM_NEWLINK request each. They leave with the
//! namespace: when the container is gone the kernel moves physical devices back to the host and
//! destroys virtual ones.

use std::collections::HashSet;

use nix::sys::socket::{socket, AddressFamily, SockFlag, SockProtocol, SockType};
use nix::unistd::Pid;
use oci_spec::runtime::{Linux, LinuxNamespaceType};

use crate::{Context, Error, Result};

const FIELD: &str = "linux.netDevices";

pub fn validate(linux: &Linux) -> Result<()> {
    let Some(devices) = linux.net_devices().as_ref().filter(|d| !d.is_empty()) else {
        return Ok(());
    };
    let new_netns = linux
        .namespaces()
        .iter()
        .flatten()
        .any(|n| n.typ() == LinuxNamespaceType::Network && n.path().is_none());
    if !new_netns {
        return Err(Error::config(format_args!(
            "{FIELD}: requires a new network namespace"
        )));
    }
    let mut names = HashSet::new();
    for (host, dev) in devices {
        let name = target(host, dev.name().as_deref());
        for n in [host.as_str(), name] {
            check_name(host, n)?;
        }
        if !names.insert(name) {
            return Err(Error::config(format_args!(
                "{FIELD}[{host:?}]: name {name:?} is given to two devices"
            )));
        }
    }
    Ok(())
}

/// The name inside the container: the host's unless one is given.
fn target<'a>(host: &'a str, name: Option<&'a str>) -> &'a str {
    name.filter(|n| !n.is_empty()).unwrap_or(host)
}

/// What the kernel takes as an interface name (dev_valid_name).
fn check_name(host: &str, name: &str) -> Result<()> {
    let bad = name.is_empty()
        || name.len() >= libc::IFNAMSIZ
        || name == "."
        || name == ".."
        || name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace());
    if bad {
        return Err(Error::config(format_args!(
            "{FIELD}[{host:?}]: invalid interface name {name:?}"
        )));
    }
    Ok(())
}

/// Move every device into the network namespace of `pid`.
pub fn move_into(linux: &Linux, pid: Pid) -> Result<()> {
    let Some(devices) = linux.net_devices().as_ref().filter(|d| !d.is_empty()) else {
        return Ok(());
    };
    let sock = socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkRoute,
    )
    .ctx(|| "open rtnetlink socket")?;
    for (host, dev) in devices {
        let name = target(host, dev.name().as_deref());
        let what = || format!("{FIELD}: move {host:?} into the container as {name:?}");
        let cname = std::ffi::CString::new(host.as_str())
            .map_err(|_| Error::config(format_args!("{FIELD}[{host:?}]: contains NUL")))?;
        // SAFETY: cname is a valid NUL-terminated string that outlives the call.
        let index = unsafe { libc::if_nametoindex(cname.as_ptr()) };
        if index == 0 {
            return Err(Error::sys(what(), nix::Error::last()));
        }
        nix::unistd::write(&sock, &newlink(index, pid, name)).ctx(what)?;
        let mut buf = [0u8; 1024];
        let n = nix::unistd::read(&sock, &mut buf).ctx(what)?;
        ack(&buf[..n]).ctx(what)?;
    }
    Ok(())
}

/// RTM_NEWLINK for interface `index` with IFLA_NET_NS_PID and IFLA_IFNAME, asking for an ack.
fn newlink(index: u32, pid: Pid, name: &str) -> Vec<u8> {
    const RTM_NEWLINK: u16 = 16;
    const IFLA_IFNAME: u16 = 3;
    const IFLA_NET_NS_PID: u16 = 19;
    let mut msg = Vec::with_capacity(64);
    // nlmsghdr: length (patched below), type, flags, sequence, port id.
    msg.extend_from_slice(&0u32.to_ne_bytes());
    msg.extend_from_slice(&RTM_NEWLINK.to_ne_bytes());
    msg.extend_from_slice(&((libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16).to_ne_bytes());
    msg.extend_from_slice(&1u32.to_ne_bytes());
    msg.extend_from_slice(&0u32.to_ne_bytes());
    // ifinfomsg: family, padding, type, index, flags, change.
    msg.extend_from_slice(&[libc::AF_UNSPEC as u8, 0, 0, 0]);
    msg.extend_from_slice(&index.to_ne_bytes());
    msg.extend_from_slice(&[0; 8]);
    let mut attr = |kind: u16, data: &[u8]| {
        msg.extend_from_slice(&(4 + data.len() as u16).to_ne_bytes());
        msg.extend_from_slice(&kind.to_ne_bytes());
        msg.extend_from_slice(data);
        msg.resize(msg.len().next_multiple_of(4), 0);
    };
    attr(IFLA_NET_NS_PID, &(pid.as_raw() as u32).to_ne_bytes());
    attr(IFLA_IFNAME, format!("{name}\0").as_bytes());
    let len = msg.len() as u32;
    msg[..4].copy_from_slice(&len.to_ne_bytes());
    msg
}

/// The kernel's answer: an NLMSG_ERROR whose error is 0 on success, -errno on failure.
fn ack(reply: &[u8]) -> nix::Result<()> {
    let field = |at: usize| {
        reply
            .get(at..at + 4)
            .map(|b| i32::from_ne_bytes(b.try_into().expect("4 bytes")))
    };
    let kind = reply.get(4..6).map(|b| u16::from_ne_bytes([b[0], b[1]]));
    match (kind, field(16)) {
        (Some(t), Some(0)) if t == libc::NLMSG_ERROR as u16 => Ok(()),
        (Some(t), Some(e)) if t == libc::NLMSG_ERROR as u16 => Err(nix::Error::from_raw(-e)),
        _ => Err(nix::Error::EPROTO),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn linux(v: serde_json::Value) -> Linux {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn needs_a_new_netns_and_valid_names() {
        let devs = json!({ "eth1": { "name": "ctr0" } });
        assert!(validate(&linux(
            json!({ "namespaces": [{ "type": "network" }], "netDevices": devs })
        ))
        .is_ok());
        for bad in [
            json!({ "namespaces": [], "netDevices": devs }),
            json!({ "namespaces": [{ "type": "network", "path": "/proc/1/ns/net" }], "netDevices": devs }),
            json!({ "namespaces": [{ "type": "network" }], "netDevices": { "eth1": { "name": "a/b" } } }),
            json!({ "namespaces": [{ "type": "network" }], "netDevices": { "a-very-long-name0": {} } }),
            json!({ "namespaces": [{ "type": "network" }], "netDevices": { "eth1": { "name": "x" }, "eth2": { "name": "x" } } }),
        ] {
            let e = validate(&linux(bad.clone())).unwrap_err().to_string();
            assert!(e.contains(FIELD), "{bad}: {e}");
        }
    }

    #[test]
    fn message_layout() {
        let m = newlink(7, Pid::from_raw(42), "ctr0");
        assert_eq!(m.len(), 16 + 16 + 8 + 12);
        assert_eq!(
            u32::from_ne_bytes(m[..4].try_into().unwrap()) as usize,
            m.len()
        );
        assert_eq!(i32::from_ne_bytes(m[20..24].try_into().unwrap()), 7);
        assert_eq!(&m[44..49], b"ctr0\0");
        let mut reply = vec![0u8; 36];
        reply[4..6].copy_from_slice(&(libc::NLMSG_ERROR as u16).to_ne_bytes());
        assert_eq!(ack(&reply), Ok(()));
        reply[16..20].copy_from_slice(&(-libc::ENODEV).to_ne_bytes());
        assert_eq!(ack(&reply), Err(nix::Error::ENODEV));
    }
}
