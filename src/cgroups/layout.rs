//! Which cgroup hierarchies this host has mounted and where the calling process sits in each,
//! from /proc/self/mountinfo and /proc/self/cgroup (no mount paths are assumed).

use std::path::PathBuf;

use crate::mountinfo::MountInfo;
use crate::{Context, Error, Result};

/// A mounted cgroup hierarchy.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Hierarchy {
    /// The v1 controllers (or `name=...`) of the hierarchy as /proc/self/cgroup spells them;
    /// empty for the cgroup2 hierarchy.
    pub controllers: Vec<String>,
    pub mountpoint: PathBuf,
    /// The cgroup (from the hierarchy's root) that the mount shows at `mountpoint`.
    root: PathBuf,
    /// The calling process's cgroup (from the hierarchy's root).
    own: PathBuf,
}

impl Hierarchy {
    /// The calling process's own cgroup directory in this hierarchy.
    pub fn own_dir(&self) -> Result<PathBuf> {
        match self.own.strip_prefix(&self.root) {
            Ok(rel) => Ok(self.mountpoint.join(rel)),
            // The mount shows only a subtree that our own cgroup is not in: no way to reach it.
            Err(_) => Err(Error::sys(
                format!(
                    "find own cgroup {} under {} (which shows cgroup {})",
                    self.own.display(),
                    self.mountpoint.display(),
                    self.root.display()
                ),
                nix::Error::ENOENT,
            )),
        }
    }
}

/// The mounted hierarchies of this host, one per line of /proc/self/cgroup that has a mount.
pub(super) fn detect() -> Result<Vec<Hierarchy>> {
    let read = |path: &str| std::fs::read_to_string(path).ctx(|| format!("read {path}"));
    let found = hierarchies(&read("/proc/self/mountinfo")?, &read("/proc/self/cgroup")?);
    if found.is_empty() {
        return Err(Error::sys(
            "find a cgroup mount in /proc/self/mountinfo",
            nix::Error::ENOENT,
        ));
    }
    Ok(found)
}

/// A cgroup or cgroup2 mount.
fn hierarchies(mountinfo: &str, proc_cgroup: &str) -> Vec<Hierarchy> {
    let mounts: Vec<MountInfo> = crate::mountinfo::parse(mountinfo)
        .into_iter()
        .filter(|m| m.fs_type == "cgroup" || m.fs_type == "cgroup2")
        .collect();
    proc_cgroup
        .lines()
        .filter_map(|line| {
            // "hierarchy-id:controller,list:/path"; the cgroup2 line has an empty list.
            let mut fields = line.splitn(3, ':');
            let (_, list, own) = (fields.next()?, fields.next()?, fields.next()?);
            let controllers: Vec<String> = list
                .split(',')
                .filter(|c| !c.is_empty())
                .map(String::from)
                .collect();
            // The first mount wins, as in runc; a hierarchy that is not mounted is skipped.
            let mount = mounts.iter().find(|m| match controllers.first() {
                None => m.fs_type == "cgroup2",
                Some(c) => m.fs_type == "cgroup" && m.super_options.split(',').any(|o| o == c),
            })?;
            Some(Hierarchy {
                controllers,
                mountpoint: mount.mount_point.clone(),
                root: mount.root.clone(),
                own: PathBuf::from(own),
            })
        })
        .collect()
}

/// Parse a mountinfo line if it is a cgroup mount:
/// `id parent maj:min root mountpoint opts [optional...] - fstype source super-opts`.
#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct
36 31 0:33 /sub /sys/fs/cgroup/my\\040devices rw,relatime - cgroup cgroup rw,devices
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
42 31 0:39 / /mnt/again rw,relatime - cgroup cgroup rw,cpu,cpuacct
";

    #[test]
    fn finds_each_mounted_hierarchy() {
        let proc_cgroup =
            "9:name=systemd:/user.slice\n5:devices:/sub/x\n4:memory:/m\n2:cpu,cpuacct:/\n0::/u\n";
        let found = hierarchies(HYBRID, proc_cgroup);
        let summary: Vec<_> = found
            .iter()
            .map(|h| (h.controllers.join(","), h.own_dir().unwrap()))
            .collect();
        assert_eq!(
            summary,
            [
                (
                    "name=systemd".into(),
                    PathBuf::from("/sys/fs/cgroup/systemd/user.slice")
                ),
                ("devices".into(), "/sys/fs/cgroup/my devices/x".into()),
                ("cpu,cpuacct".into(), "/sys/fs/cgroup/cpu,cpuacct".into()),
                (String::new(), "/sys/fs/cgroup/unified/u".into()),
            ]
        );
    }

    #[test]
    fn own_cgroup_outside_the_mount_is_an_error() {
        let found = hierarchies(HYBRID, "5:devices:/elsewhere\n");
        let err = found[0].own_dir().unwrap_err().to_string();
        assert!(
            err.contains("/elsewhere") && err.contains("my devices"),
            "{err}"
        );
    }

    #[test]
    fn pure_v2() {
        let mountinfo =
            "30 23 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n";
        let found = hierarchies(mountinfo, "0::/user.slice/x.scope\n");
        assert_eq!(found.len(), 1);
        assert!(found[0].controllers.is_empty());
        assert_eq!(
            found[0].own_dir().unwrap(),
            Path::new("/sys/fs/cgroup/user.slice/x.scope")
        );
    }
}
