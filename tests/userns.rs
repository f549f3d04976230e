//! The user namespace made for an idmapped mount's mapping: a namespace fd, and no process left.

use std::os::fd::{AsFd, AsRawFd};

use berth::namespaces::userns_with_maps;
use oci_spec::runtime::{LinuxIdMapping, LinuxIdMappingBuilder};

fn map(c: u32, h: u32, s: u32) -> LinuxIdMapping {
    LinuxIdMappingBuilder::default()
        .container_id(c)
        .host_id(h)
        .size(s)
        .build()
        .unwrap()
}

#[test]
fn userns_for_a_mapping_leaves_no_process() {
    let procfs = berth::procfs::open_private().unwrap();
    let maps = [map(0, 100000, 65536)];
    let ns = userns_with_maps(&maps, &maps, procfs.as_fd()).unwrap();
    const NS_GET_NSTYPE: libc::c_ulong = 0xb703;
    // SAFETY: NS_GET_NSTYPE takes no argument and only reads the fd.
    let typ = unsafe { libc::ioctl(ns.as_raw_fd(), NS_GET_NSTYPE) };
    assert_eq!(typ, libc::CLONE_NEWUSER);
    // The helper child was reaped: this test process has no child left.
    assert_eq!(
        nix::sys::wait::waitpid(None, Some(nix::sys::wait::WaitPidFlag::WNOHANG)),
        Err(nix::errno::Errno::ECHILD)
    );
    // A map the kernel refuses (overlapping ranges) is an error naming the file.
    let bad = [map(0, 100000, 10), map(5, 200000, 10)];
    let e = userns_with_maps(&bad, &bad, procfs.as_fd()).unwrap_err();
    assert!(e.to_string().contains("uid_map"), "{e}");
}
