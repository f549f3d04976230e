//! `cgroup` mounts. On a pure cgroup v2 host: a cgroup2 mount. On a v1 or hybrid host, as runc
//! does: a tmpfs at the destination with, under it, named like the host mount point, each host
//! hierarchy: the container's own directory bind-mounted, or with a cgroup namespace, the
//! hierarchy mounted anew (rooted at the namespace's root, the container's cgroup).

use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{mount, MsFlags};
use nix::sys::statfs::{statfs, CGROUP2_SUPER_MAGIC};

use super::mount::{bind_fd, context_option, data_string, remount_bind, MountOptions};
use super::paths::{self, Kind};
use crate::mountinfo;

const HOST_CGROUP: &str = "/sys/fs/cgroup";

/// Mount a cgroup filesystem at `dest` inside `root` (`cgroupns`: the container has its own
/// cgroup namespace, which this process is in); returns an fd of the new mount.
pub(crate) fn mount_cgroup(
    root: BorrowedFd,
    dest: &Path,
    o: &MountOptions,
    cgroupns: bool,
    label: Option<&str>,
) -> nix::Result<OwnedFd> {
    let target = paths::create(root, dest, Kind::Dir)?;
    if statfs(HOST_CGROUP)?.filesystem_type() == CGROUP2_SUPER_MAGIC {
        let done = mount(
            Some("cgroup"),
            paths::fd_path(&target).as_str(),
            Some("cgroup2"),
            o.flags,
            data_string(&o.data).as_deref(),
        );
        match done {
            // A user namespace without a cgroup namespace of its own may not mount cgroup2:
            // bind the container's own cgroup directory instead, as runc does.
            Err(Errno::EPERM | Errno::EBUSY) => {
                let own = own_cgroups()?;
                let hierarchies = mountinfo::read().map_err(|e| e.errno().unwrap_or(Errno::EIO))?;
                let h = hierarchies
                    .iter()
                    .find(|h| h.fs_type == "cgroup2" && h.mount_point == Path::new(HOST_CGROUP))
                    .ok_or(Errno::ENOENT)?;
                bind_hierarchy(root, &own_dir(h, &own).ok_or(Errno::ENOENT)?, dest, o)?;
            }
            r => r?,
        }
        return paths::open(root, dest);
    }
    // Writable until the hierarchies are in; made read-only at the end if asked.
    let flags = o.flags - MsFlags::MS_RDONLY;
    let data = std::iter::once("mode=755".to_string())
        .chain(label.map(context_option))
        .collect::<Vec<_>>();
    mount(
        Some("tmpfs"),
        paths::fd_path(&target).as_str(),
        Some("tmpfs"),
        flags,
        data_string(&data).as_deref(),
    )?;
    let own = own_cgroups()?;
    let hierarchies = mountinfo::read().map_err(|e| e.errno().unwrap_or(Errno::EIO))?;
    for h in hierarchies
        .iter()
        .filter(|h| h.mount_point.parent() == Some(Path::new(HOST_CGROUP)))
    {
        let Some(name) = h.mount_point.file_name() else {
            continue;
        };
        let sub = dest.join(name);
        if cgroupns {
            let data = match h.fs_type.as_str() {
                "cgroup" => Some(controllers(&h.super_options)),
                "cgroup2" => None,
                _ => continue,
            };
            let target = paths::create(root, &sub, Kind::Dir)?;
            let flags = o.flags | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
            mount(
                Some(h.fs_type.as_str()),
                paths::fd_path(&target).as_str(),
                Some(h.fs_type.as_str()),
                flags,
                data.as_deref(),
            )?;
        } else {
            let Some(host) = own_dir(h, &own) else {
                continue;
            };
            paths::create(root, &sub, Kind::Dir)?;
            bind_hierarchy(root, &host, &sub, o)?;
        }
        // Co-mounted controllers (cpu,cpuacct) are also reachable under each controller's name.
        let name = name.to_string_lossy();
        if name.contains(',') {
            let dir = paths::open(root, dest)?;
            for c in name.split(',') {
                match nix::unistd::symlinkat(name.as_ref(), &dir, c) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
    let target = paths::open(root, dest)?;
    if o.flags.contains(MsFlags::MS_RDONLY) {
        mount(
            None::<&str>,
            paths::fd_path(&target).as_str(),
            None::<&str>,
            MsFlags::MS_REMOUNT | o.flags,
            None::<&str>,
        )?;
    }
    Ok(target)
}

/// The host directory of this process's own cgroup in hierarchy `h` (a cgroup or cgroup2 mount).
fn own_dir(h: &mountinfo::MountInfo, own: &[(String, PathBuf)]) -> Option<PathBuf> {
    let key = match h.fs_type.as_str() {
        "cgroup2" => String::new(),
        "cgroup" => controllers(&h.super_options),
        _ => return None,
    };
    let (_, path) = own.iter().find(|(c, _)| *c == key)?;
    // The hierarchy may be mounted from a sub-directory (e.g. inside a cgroup namespace).
    let rel = path.strip_prefix(&h.root).unwrap_or(path.as_path());
    Some(h.mount_point.join(rel.strip_prefix("/").unwrap_or(rel)))
}

/// Bind a host cgroup directory on `dest` (which exists) with the mount's flags, never
/// letting the container create devices, setuid files or executables there.
fn bind_hierarchy(root: BorrowedFd, host: &Path, dest: &Path, o: &MountOptions) -> nix::Result<()> {
    let src = nix::fcntl::open(
        host,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    bind_fd(&src, &paths::open(root, dest)?, MsFlags::MS_REC)?;
    remount_bind(
        &paths::open(root, dest)?,
        o.flags | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        o.cleared,
    )
}

/// The controller list of a v1 hierarchy from its super options, as /proc/self/cgroup spells it.
fn controllers(super_options: &str) -> String {
    const NOT_CONTROLLERS: &[&str] = &[
        "rw",
        "ro",
        "xattr",
        "noprefix",
        "clone_children",
        "cpuset_v2_mode",
    ];
    super_options
        .split(',')
        .filter(|o| !NOT_CONTROLLERS.contains(o) && !o.starts_with("release_agent="))
        .collect::<Vec<_>>()
        .join(",")
}

/// (controllers, path) of this process in each hierarchy, from /proc/self/cgroup.
fn own_cgroups() -> nix::Result<Vec<(String, PathBuf)>> {
    let text = std::fs::read_to_string("/proc/self/cgroup")
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
    Ok(text
        .lines()
        .filter_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, c, p) = (f.next()?, f.next()?, f.next()?);
            Some((c.to_string(), PathBuf::from(p)))
        })
        .collect())
}
