//! Populating the container's /dev: device nodes (or bind mounts of the host's in a user
//! namespace, where mknod is not allowed) and the standard symlinks.

use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::sys::stat::{makedev, mknodat, umask, Mode, SFlag};
use nix::unistd::{fchownat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};
use oci_spec::runtime::{LinuxDeviceType, Spec};

use super::mount::bind_fd;
use super::paths::{self, Kind};
use super::Options;
use crate::{Context, Result};

/// Devices every container gets (runc's defaults): path, major, minor; all 0666 char devices.
pub(crate) const DEFAULT_DEVICES: [(&str, u64, u64); 6] = [
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

struct Device {
    path: PathBuf,
    kind: SFlag,
    major: u64,
    minor: u64,
    mode: Mode,
    uid: u32,
    gid: u32,
}

/// Whether /dev must be populated: not when the config bind-mounts a ready-made /dev.
pub(crate) fn needs_setup(spec: &Spec) -> bool {
    !spec.mounts().iter().flatten().any(|m| {
        let bind = m.typ().as_deref() == Some("bind")
            || m.options()
                .iter()
                .flatten()
                .any(|o| o == "bind" || o == "rbind");
        bind && m
            .destination()
            .components()
            .eq(Path::new("/dev").components())
    })
}

/// Create the devices and symlinks in the rootfs open at `root`. umask is 0 meanwhile so
/// device modes are exactly as configured.
pub(crate) fn setup(opts: &Options, root: BorrowedFd) -> Result<()> {
    let old = umask(Mode::empty());
    let res = populate(opts, root);
    umask(old);
    res
}

fn populate(opts: &Options, root: BorrowedFd) -> Result<()> {
    let configured = opts
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().as_ref());
    let configured = configured.map(Vec::as_slice).unwrap_or_default();
    let defaults = DEFAULT_DEVICES
        .iter()
        .filter(|(path, ..)| !configured.iter().any(|d| d.path() == Path::new(path)))
        .map(|&(path, major, minor)| Device {
            path: path.into(),
            kind: SFlag::S_IFCHR,
            major,
            minor,
            mode: Mode::from_bits_truncate(0o666),
            uid: 0,
            gid: 0,
        });
    let listed = configured.iter().map(|d| Device {
        path: d.path().clone(),
        kind: match d.typ() {
            LinuxDeviceType::B => SFlag::S_IFBLK,
            LinuxDeviceType::P => SFlag::S_IFIFO,
            // `a` is rejected by validate().
            _ => SFlag::S_IFCHR,
        },
        major: d.major() as u64,
        minor: d.minor() as u64,
        mode: Mode::from_bits_truncate(d.file_mode().unwrap_or(0o666)),
        uid: d.uid().unwrap_or(0),
        gid: d.gid().unwrap_or(0),
    });
    for dev in defaults.chain(listed) {
        create_device(opts, root, &dev)?;
    }
    symlinks(opts.spec, root)
}

fn create_device(opts: &Options, root: BorrowedFd, dev: &Device) -> Result<()> {
    let what = || format!("create device {}", dev.path.display());
    let (Some(parent), Some(name)) = (dev.path.parent(), dev.path.file_name()) else {
        return Err(Errno::EINVAL).ctx(what);
    };
    if !opts.new_userns {
        let dir = paths::create(root, parent, Kind::Dir).ctx(what)?;
        match mknodat(
            &dir,
            name,
            dev.kind,
            dev.mode,
            makedev(dev.major, dev.minor),
        ) {
            Ok(()) => {
                return fchownat(
                    &dir,
                    name,
                    Some(Uid::from_raw(dev.uid)),
                    Some(Gid::from_raw(dev.gid)),
                    AtFlags::AT_SYMLINK_NOFOLLOW,
                )
                .ctx(what)
            }
            // Already provided by the rootfs or an earlier mount: keep it, as runc does.
            Err(Errno::EEXIST) => return Ok(()),
            // Not allowed to mknod (e.g. no CAP_MKNOD): bind the host's instead.
            Err(Errno::EPERM) => {}
            Err(e) => return Err(e).ctx(what),
        }
    }
    let host = nix::fcntl::open(
        &dev.path,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| format!("open host device {}", dev.path.display()))?;
    let target: OwnedFd = paths::create(root, &dev.path, Kind::File).ctx(what)?;
    bind_fd(&host, &target, nix::mount::MsFlags::empty()).ctx(what)
}

fn symlinks(spec: &Spec, root: BorrowedFd) -> Result<()> {
    let dev = paths::create(root, Path::new("/dev"), Kind::Dir).ctx(|| "create /dev in rootfs")?;
    let mut links = vec![
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ];
    let has_proc = spec.mounts().iter().flatten().any(|m| {
        m.typ().as_deref() == Some("proc")
            && m.destination()
                .components()
                .eq(Path::new("/proc").components())
    });
    if has_proc {
        links.push(("/proc/kcore", "core"));
    }
    // /dev/ptmx must be the devpts instance's; replace whatever the rootfs shipped.
    match unlinkat(&dev, "ptmx", UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => {}
        Err(e) => return Err(e).ctx(|| "remove /dev/ptmx"),
    }
    links.push(("pts/ptmx", "ptmx"));
    for (target, name) in links {
        match symlinkat(target, &dev, name) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(e).ctx(|| format!("symlink /dev/{name} -> {target}")),
        }
    }
    Ok(())
}
