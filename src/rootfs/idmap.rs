//! Idmapped bind mounts: `mounts[].uidMappings`/`gidMappings`, the `idmap` and `ridmap` options
//! (runtime-spec 1.2) and crun's `idmap=uids=...;gids=...` form.
//!
//! Only a process privileged over the source's filesystem (the host's user namespace) may idmap
//! a mount, which the init, in the container's user namespace, is not. So the runtime makes the
//! mounts before the clone, as runc does: a detached copy of the source (open_tree
//! OPEN_TREE_CLONE, with its submounts for `rbind`), MOUNT_ATTR_IDMAP set with a user namespace
//! made for the mapping (on every mount of the copy for `ridmap`). The init inherits the fds and
//! attaches each copy with move_mount where the bind would go. With a user namespace, plain bind
//! sources outside the rootfs are copied the same way, without the idmap (see [`prepare`]).

use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use oci_spec::runtime::{LinuxIdMapping, LinuxIdMappingBuilder, LinuxNamespaceType, Mount, Spec};

use super::mount::{self, MountOptions};
use super::paths;
use crate::{namespaces, syscall, Context, Error, Result};

/// mount_setattr(2)'s attribute (linux/mount.h, Linux 5.12).
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

/// `idmap` / `ridmap` as given in a mount's options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IdmapOption {
    /// `ridmap`: every mount of the tree is idmapped, not only its top.
    pub recursive: bool,
    /// crun's `uids=` / `gids=` ranges; None: the mount's mappings or the container's.
    pub uids: Option<Vec<IdRange>>,
    pub gids: Option<Vec<IdRange>>,
}

/// One range of crun's form, `[@]FS-TARGET-SIZE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IdRange {
    /// The first id on the backing filesystem.
    pub fs: u32,
    /// The id it appears as: on the host, or with `@` in the container's user namespace.
    pub target: u32,
    pub size: u32,
    pub relative: bool,
}

/// Parse `idmap`, `ridmap` and their `=uids=...;gids=...` forms; None for any other option.
pub(crate) fn parse_option(opt: &str) -> Option<std::result::Result<IdmapOption, String>> {
    let (name, value) = opt
        .split_once('=')
        .map_or((opt, None), |(n, v)| (n, Some(v)));
    let recursive = match name {
        "idmap" => false,
        "ridmap" => true,
        _ => return None,
    };
    Some(parse_ranges(opt, value).map(|(uids, gids)| IdmapOption {
        recursive,
        uids,
        gids,
    }))
}

type Ranges = Option<Vec<IdRange>>;

/// `uids=RANGES;gids=RANGES` (either may be absent), ranges separated by `#`.
fn parse_ranges(opt: &str, value: Option<&str>) -> std::result::Result<(Ranges, Ranges), String> {
    let (mut uids, mut gids) = (None, None);
    for part in value.into_iter().flat_map(|v| v.split(';')) {
        let bad = || format!("option {opt:?}: expected uids=RANGES;gids=RANGES, got {part:?}");
        let (which, ranges) = part.split_once('=').ok_or_else(bad)?;
        let slot = match which {
            "uids" => &mut uids,
            "gids" => &mut gids,
            _ => return Err(bad()),
        };
        *slot = Some(
            ranges
                .split('#')
                .map(|r| {
                    parse_range(r).ok_or_else(|| {
                        format!("option {opt:?}: bad range {r:?} (want [@]FS-ID-SIZE)")
                    })
                })
                .collect::<std::result::Result<Vec<_>, _>>()?,
        );
    }
    Ok((uids, gids))
}

fn parse_range(r: &str) -> Option<IdRange> {
    let (relative, r) = r.strip_prefix('@').map_or((false, r), |r| (true, r));
    let mut n = r.split('-').map(|x| x.parse::<u32>().ok());
    let (fs, target, size) = (n.next()??, n.next()??, n.next()??);
    n.next().is_none().then_some(IdRange {
        fs,
        target,
        size,
        relative,
    })
}

/// Where an idmapped mount's mapping comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Maps {
    /// The user namespace the container joins (linux.namespaces path).
    Joined,
    Given {
        uid: Vec<LinuxIdMapping>,
        gid: Vec<LinuxIdMapping>,
    },
}

/// The checked idmapping of one mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    /// Idmap every mount of the copy (`ridmap`).
    pub recursive: bool,
    pub maps: Maps,
}

/// The idmapping `m` asks for, None if none; the error says what is wrong (the caller names the
/// mount). What runc 1.5 refuses is refused with the same meaning: idmapping anything but a bind
/// mount, and a mapping with only uids or only gids.
pub(crate) fn plan(
    spec: &Spec,
    m: &Mount,
    o: &MountOptions,
) -> std::result::Result<Option<Plan>, String> {
    // runtime-spec 1.2: empty mappings with [r]idmap mean the container's.
    let uid = m.uid_mappings().as_ref().filter(|v| !v.is_empty());
    let gid = m.gid_mappings().as_ref().filter(|v| !v.is_empty());
    let option = o.idmap.as_ref();
    if option.is_none() && m.uid_mappings().is_none() && m.gid_mappings().is_none() {
        return Ok(None);
    }
    if !(o.is_bind() || m.typ().as_deref() == Some("bind")) {
        return Err("id-mapped mounts are only supported for bind mounts".into());
    }
    let crun = option.is_some_and(|i| i.uids.is_some() || i.gids.is_some());
    if crun && (uid.is_some() || gid.is_some()) {
        return Err("uidMappings/gidMappings and idmap=uids=...;gids=... both given".into());
    }
    let container = container_maps(spec);
    let maps = match (uid, gid) {
        (Some(u), Some(g)) => Maps::Given {
            uid: u.clone(),
            gid: g.clone(),
        },
        (Some(_), None) | (None, Some(_)) => {
            return Err("id-mapped mounts must have both uidMappings and gidMappings".into())
        }
        (None, None) if crun => {
            let i = option.expect("crun form");
            let (cu, cg) = match &container {
                Some(Maps::Given { uid, gid }) => (Some(uid.as_slice()), Some(gid.as_slice())),
                _ => (None, None),
            };
            let side = |ranges: &Option<Vec<IdRange>>, own: Option<&[LinuxIdMapping]>, what| {
                match ranges {
                    Some(r) => to_mappings(r, own, what),
                    None => own.map(<[_]>::to_vec).ok_or_else(|| {
                        format!("idmap: no {what}s= given and no linux.{what}Mappings to take them from")
                    }),
                }
            };
            Maps::Given {
                uid: side(&i.uids, cu, "uid")?,
                gid: side(&i.gids, cg, "gid")?,
            }
        }
        (None, None) => container.ok_or(
            "id-mapped mounts must have both uid and gid mappings specified \
             (no mapping given and no user namespace to take it from)",
        )?,
    };
    Ok(Some(Plan {
        recursive: option.is_some_and(|i| i.recursive),
        maps,
    }))
}

/// The container's own user namespace mapping: the namespace joined by path, else linux.*Mappings.
fn container_maps(spec: &Spec) -> Option<Maps> {
    let linux = spec.linux().as_ref()?;
    let userns = linux
        .namespaces()
        .iter()
        .flatten()
        .find(|n| n.typ() == LinuxNamespaceType::User)?;
    if userns
        .path()
        .as_ref()
        .is_some_and(|p| !p.as_os_str().is_empty())
    {
        return Some(Maps::Joined);
    }
    Some(Maps::Given {
        uid: linux.uid_mappings().clone().unwrap_or_default(),
        gid: linux.gid_mappings().clone().unwrap_or_default(),
    })
}

/// crun's ranges as mappings (containerID: the filesystem's id, hostID: the id it appears as);
/// an `@` range's target is translated through the container's mapping, which must hold it.
fn to_mappings(
    ranges: &[IdRange],
    container: Option<&[LinuxIdMapping]>,
    what: &str,
) -> std::result::Result<Vec<LinuxIdMapping>, String> {
    ranges
        .iter()
        .map(|r| {
            let host = if r.relative {
                let end = u64::from(r.target) + u64::from(r.size);
                container
                    .into_iter()
                    .flatten()
                    .find(|c| {
                        c.container_id() <= r.target
                            && end <= u64::from(c.container_id()) + u64::from(c.size())
                    })
                    .map(|c| c.host_id() + (r.target - c.container_id()))
                    .ok_or_else(|| {
                        format!(
                            "idmap {what}s range @{}-{}-{}: container {what}s {}-{} are not all in linux.{what}Mappings",
                            r.fs,
                            r.target,
                            r.size,
                            r.target,
                            end.saturating_sub(1)
                        )
                    })?
            } else {
                r.target
            };
            LinuxIdMappingBuilder::default()
                .container_id(r.fs)
                .host_id(host)
                .size(r.size)
                .build()
                .map_err(|e| e.to_string())
        })
        .collect()
}

/// Detached copies of the sources of `mounts[]` (idmapped ones, ...), by index, for the init to
/// attach.
#[derive(Default)]
pub struct DetachedMounts(Vec<(usize, OwnedFd)>);

impl DetachedMounts {
    pub(crate) fn get(&self, index: usize) -> Option<BorrowedFd<'_>> {
        self.0
            .iter()
            .find(|(i, _)| *i == index)
            .map(|(_, fd)| fd.as_fd())
    }
}

/// Make every idmapped mount of `spec` (see the module doc), and with a user namespace and a
/// mount namespace of the container's own, a copy of every other bind source outside the
/// rootfs: the init, root of the user namespace only, cannot reach a source below a directory
/// only host root may search (containerd's sandbox shm), and runc fetches such sources from its
/// host side too. `joined_userns` is the user namespace the container joins by path, if any;
/// `procfs` the runtime's private one.
pub fn prepare(
    spec: &Spec,
    rootfs: &Path,
    bundle: &Path,
    joined_userns: Option<BorrowedFd>,
    procfs: BorrowedFd,
) -> Result<DetachedMounts> {
    let userns = container_maps(spec).is_some();
    let own_mntns = spec.linux().as_ref().is_some_and(|l| {
        l.namespaces().iter().flatten().any(|n| {
            n.typ() == LinuxNamespaceType::Mount
                && n.path().as_ref().is_none_or(|p| p.as_os_str().is_empty())
        })
    });
    // An unprivileged runtime cannot enter the locked view (nor idmap), and its init, of the
    // same user, reaches whatever the runtime could.
    let copy_outside = userns && own_mntns && nix::unistd::geteuid().is_root();
    let mut wanted = Vec::new();
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        let name = mount_name(i, m);
        let o = mount::parse(m.options().as_deref().unwrap_or_default())
            .map_err(|e| Error::config(format!("{name}.options: {e}")))?;
        let plan = plan(spec, m, &o).map_err(|e| Error::config(format!("{name}: {e}")))?;
        let bind = o.is_bind() || m.typ().as_deref() == Some("bind");
        let Some(source) = m.source().as_deref().filter(|_| bind) else {
            continue;
        };
        let outside = !bundle.join(source).starts_with(rootfs);
        if plan.is_some() || (copy_outside && outside) {
            let tree = o.flags.contains(nix::mount::MsFlags::MS_REC);
            wanted.push((i, name, tree, source, plan));
        }
    }
    if wanted.is_empty() {
        return Ok(DetachedMounts::default());
    }
    let clone_all = || {
        let root = paths::open_root(rootfs)?;
        wanted
            .iter()
            .map(|(_, name, tree, source, _)| {
                let src = mount::open_source(rootfs, bundle, root.as_fd(), source)
                    .ctx(|| format!("{name}: open {}", source.display()))?;
                syscall::clone_tree_fd(src.as_fd(), *tree)
                    .ctx(|| format!("{name}: open_tree {}", source.display()))
            })
            .collect::<Result<Vec<_>>>()
    };
    // Without a user namespace the container's root may change any mount: nothing to keep.
    let trees = if userns {
        in_locked_view(procfs, clone_all)?
    } else {
        clone_all()?
    };
    let mut made = DetachedMounts::default();
    let mut userns: HashMap<String, OwnedFd> = HashMap::new();
    for ((i, name, _, source, plan), tree) in wanted.into_iter().zip(trees) {
        let Some(plan) = plan else {
            made.0.push((i, tree));
            continue;
        };
        let ns = match &plan.maps {
            Maps::Joined => joined_userns
                .ok_or_else(|| Error::config(format!("{name}: no user namespace joined")))?,
            Maps::Given { uid, gid } => {
                let key = format!("{uid:?}{gid:?}");
                if !userns.contains_key(&key) {
                    let fd =
                        namespaces::userns_with_maps(uid, gid, procfs).map_err(|e| match e {
                            Error::Sys { what, errno } => Error::sys(
                                format!("{name}: user namespace for the mapping: {what}"),
                                errno,
                            ),
                            e => e,
                        })?;
                    userns.insert(key.clone(), fd);
                }
                userns[&key].as_fd()
            }
        };
        let attr = syscall::MountAttr {
            attr_set: MOUNT_ATTR_IDMAP,
            attr_clr: 0,
            propagation: 0,
            userns_fd: ns.as_raw_fd() as u64,
        };
        syscall::mount_setattr(tree.as_raw_fd(), plan.recursive, &attr).map_err(|e| {
            let hint = if e == Errno::EINVAL {
                " (can this kernel idmap its filesystem?)"
            } else {
                ""
            };
            let what = format!("{name}: set MOUNT_ATTR_IDMAP on {}{hint}", source.display());
            Error::sys(what, e)
        })?;
        made.0.push((i, tree));
    }
    Ok(made)
}

fn mount_name(i: usize, m: &Mount) -> String {
    format!("mounts[{i}] ({})", m.destination().display())
}

/// Run `f` in a copy of the runtime's mount namespace owned by a new user namespace, then come
/// back (and to the same cwd). The kernel locks the mounts of such a copy: their read-only,
/// nosuid, nodev, noexec and atime flags cannot be cleared, and submounts not be unmounted.
/// Trees cloned there keep those locks in the container, as they would through its own copy
/// of the namespace (and, as there, a non-recursive bind of a directory with mounts below it
/// is refused); cloned from the runtime's own namespace, the root of a container with a user
/// namespace could remount a read-only source read-write.
fn in_locked_view<T>(procfs: BorrowedFd, f: impl FnOnce() -> Result<T>) -> Result<T> {
    use nix::sched::{setns, CloneFlags};
    let view = namespaces::Holder::spawn(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS)?;
    let theirs = view.open("mnt", procfs)?;
    let ours = nix::fcntl::openat(
        procfs,
        "thread-self/ns/mnt",
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| "open /proc/thread-self/ns/mnt")?;
    let cwd = nix::fcntl::open(
        ".",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| "open the working directory")?;
    setns(&theirs, CloneFlags::CLONE_NEWNS).ctx(|| "enter a locked copy of the mount namespace")?;
    let result = f();
    setns(&ours, CloneFlags::CLONE_NEWNS).ctx(|| "return to the runtime's mount namespace")?;
    nix::unistd::fchdir(&cwd).ctx(|| "return to the working directory")?;
    result
}

/// Whether this kernel has idmapped mounts (mount_setattr, Linux 5.12): a call on a bad fd says
/// EBADF where it exists, ENOSYS (or a seccomp filter's EPERM) where it does not.
pub fn supported() -> bool {
    let attr = syscall::MountAttr {
        attr_set: MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: u64::MAX,
    };
    !matches!(
        syscall::mount_setattr(-1, false, &attr),
        Err(Errno::ENOSYS | Errno::EPERM)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crun_form() {
        let o = parse_option("ridmap=uids=0-1-10#@10-11-10;gids=0-100-10")
            .unwrap()
            .unwrap();
        assert!(o.recursive);
        let r = |fs, target, size, relative| IdRange {
            fs,
            target,
            size,
            relative,
        };
        assert_eq!(o.uids.unwrap(), [r(0, 1, 10, false), r(10, 11, 10, true)]);
        assert_eq!(o.gids.unwrap(), [r(0, 100, 10, false)]);
        assert_eq!(
            parse_option("idmap").unwrap().unwrap(),
            IdmapOption {
                recursive: false,
                uids: None,
                gids: None
            }
        );
        assert!(parse_option("idmap=uids=0-1").unwrap().is_err());
        assert!(parse_option("idmap=foo=0-1-1").unwrap().is_err());
        assert!(parse_option("mode=755").is_none());
    }

    fn map(c: u32, h: u32, s: u32) -> LinuxIdMapping {
        LinuxIdMappingBuilder::default()
            .container_id(c)
            .host_id(h)
            .size(s)
            .build()
            .unwrap()
    }

    fn spec(extra: serde_json::Value) -> Spec {
        let mut v = serde_json::json!({
            "ociVersion": "1.0.2",
            "root": { "path": "rootfs" },
            "linux": { "namespaces": [{ "type": "mount" }] }
        });
        if let Some(linux) = extra.get("linux") {
            v["linux"] = linux.clone();
        }
        v["mounts"] = extra["mounts"].clone();
        serde_json::from_value(v).unwrap()
    }

    fn plans(s: &Spec) -> Vec<std::result::Result<Option<Plan>, String>> {
        s.mounts()
            .iter()
            .flatten()
            .map(|m| {
                let o = mount::parse(m.options().as_deref().unwrap_or_default()).unwrap();
                plan(s, m, &o)
            })
            .collect()
    }

    #[test]
    fn plans_follow_runc() {
        let own = serde_json::json!([{ "containerID": 0, "hostID": 100000, "size": 65536 }]);
        let bind = |opts: &[&str]| serde_json::json!({ "source": "/x", "destination": "/x", "type": "bind", "options": opts });
        let userns = serde_json::json!({
            "namespaces": [{ "type": "mount" }, { "type": "user" }],
            "uidMappings": own, "gidMappings": own
        });
        let mut only_uids = bind(&["bind"]);
        only_uids["uidMappings"] = own.clone();
        let s = spec(serde_json::json!({ "linux": userns, "mounts": [
            bind(&["rbind", "ridmap"]),
            bind(&["bind"]),
            { "source": "tmpfs", "destination": "/t", "type": "tmpfs", "options": ["idmap"] },
            only_uids,
        ]}));
        let p = plans(&s);
        let container = Maps::Given {
            uid: vec![map(0, 100000, 65536)],
            gid: vec![map(0, 100000, 65536)],
        };
        assert_eq!(
            p[0],
            Ok(Some(Plan {
                recursive: true,
                maps: container
            }))
        );
        assert_eq!(p[1], Ok(None));
        assert!(p[2]
            .as_ref()
            .unwrap_err()
            .contains("only supported for bind mounts"));
        assert!(p[3]
            .as_ref()
            .unwrap_err()
            .contains("both uidMappings and gidMappings"));

        // Without a user namespace only explicit mappings will do; one joined by path is used.
        let s = spec(serde_json::json!({ "mounts": [bind(&["bind", "idmap"])] }));
        assert!(plans(&s)[0]
            .as_ref()
            .unwrap_err()
            .contains("no user namespace"));
        let joined = serde_json::json!({
            "namespaces": [{ "type": "mount" }, { "type": "user", "path": "/proc/1/ns/user" }]
        });
        let s = spec(serde_json::json!({ "linux": joined, "mounts": [bind(&["bind", "idmap"])] }));
        assert_eq!(
            plans(&s)[0].as_ref().unwrap().as_ref().unwrap().maps,
            Maps::Joined
        );
    }

    #[test]
    fn relative_ranges() {
        let own = [map(0, 100000, 65536)];
        let rel = |target, size| IdRange {
            fs: 1000,
            target,
            size,
            relative: true,
        };
        assert_eq!(
            to_mappings(&[rel(5, 1)], Some(&own), "uid").unwrap(),
            [map(1000, 100005, 1)]
        );
        let e = to_mappings(&[rel(65535, 2)], Some(&own), "uid").unwrap_err();
        assert!(e.contains("not all in linux.uidMappings"), "{e}");
        assert!(to_mappings(&[rel(0, 1)], None, "uid").is_err());
    }
}
