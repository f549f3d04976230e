//! Mount option parsing and mounting of one `mounts[]` entry onto an fd inside the rootfs.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};
use nix::sys::stat::{fstat, Mode, SFlag};
use nix::sys::statfs::{fstatfs, PROC_SUPER_MAGIC};
use nix::sys::statvfs::{fstatvfs, FsFlags};
use oci_spec::runtime::{LinuxNamespaceType, Mount, Spec};

use super::paths::{self, Kind};
use super::{cgroup, copyup, idmap, Options};
use crate::{syscall, Context, Error, Result};

// mount_setattr(2) attributes (linux/mount.h).
const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const MOUNT_ATTR_NODEV: u64 = 0x4;
const MOUNT_ATTR_NOEXEC: u64 = 0x8;
const MOUNT_ATTR_ATIME: u64 = 0x70;
const MOUNT_ATTR_RELATIME: u64 = 0x0;
const MOUNT_ATTR_NOATIME: u64 = 0x10;
const MOUNT_ATTR_STRICTATIME: u64 = 0x20;
const MOUNT_ATTR_NODIRATIME: u64 = 0x80;
const MOUNT_ATTR_NOSYMFOLLOW: u64 = 0x0020_0000;
/// Not in libc yet (Linux 5.10).
const MS_NOSYMFOLLOW: libc::c_ulong = 256;

/// Flags that pick an access-time mode; one given explicitly replaces the source's.
const ATIME_FLAGS: MsFlags = MsFlags::MS_NOATIME
    .union(MsFlags::MS_NODIRATIME)
    .union(MsFlags::MS_RELATIME)
    .union(MsFlags::MS_STRICTATIME);

/// The only destinations allowed below /proc (files that lxcfs emulates), as in runc: other
/// mounts there could hide or fake the kernel interfaces that masked paths protect.
const PROC_DESTINATIONS: &[&str] = &[
    "/proc/cpuinfo",
    "/proc/diskstats",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/swaps",
    "/proc/uptime",
    "/proc/loadavg",
    "/proc/slabinfo",
    "/proc/pressure/cpu",
    "/proc/pressure/io",
    "/proc/pressure/memory",
    "/proc/sys/kernel/ns_last_pid",
];

/// Reject a destination below /proc that is not in [`PROC_DESTINATIONS`] (judged lexically,
/// with `..` folded; [`mount_entry`] also checks where it really resolves).
pub(crate) fn check_destination(dest: &Path) -> std::result::Result<(), String> {
    let clean = lexical(dest);
    if clean == Path::new("/") {
        return Err("\"/\" would cover the whole rootfs (root.path is the container's /)".into());
    }
    let proc = Path::new("/proc");
    if clean == proc
        || !clean.starts_with(proc)
        || PROC_DESTINATIONS.iter().any(|p| clean == Path::new(p))
    {
        Ok(())
    } else {
        Err(format!("{} is inside /proc", dest.display()))
    }
}

/// `dest` made absolute with `..` folded, without looking at the filesystem.
fn lexical(dest: &Path) -> PathBuf {
    let mut clean = PathBuf::from("/");
    for c in dest.components() {
        match c {
            std::path::Component::ParentDir => {
                clean.pop();
            }
            std::path::Component::Normal(n) => clean.push(n),
            _ => {}
        }
    }
    clean
}

/// Whether `dest` is /proc itself, where only a procfs may go (as in runc): anything else
/// leaves the container without one, and masked and read-only paths without meaning.
pub(crate) fn is_proc(dest: &Path) -> bool {
    lexical(dest) == Path::new("/proc")
}

/// Parsed `options` of one mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MountOptions {
    /// Flags to set.
    pub flags: MsFlags,
    /// Flags explicitly cleared (rw, suid, ...): never carried over from the source on remount.
    pub cleared: MsFlags,
    /// Propagation changes, applied in order after mounting.
    pub propagation: Vec<MsFlags>,
    /// Recursive attributes for mount_setattr(2): (set, clear).
    pub attr_set: u64,
    pub attr_clr: u64,
    /// Options handed to the filesystem as its data string.
    pub data: Vec<String>,
    /// `tmpcopyup`: a tmpfs starts with a copy of the directory it covers (ignored for other
    /// types, as runc does).
    pub copy_up: bool,
    /// `idmap` / `ridmap` ([`idmap`]).
    pub idmap: Option<idmap::IdmapOption>,
}

impl MountOptions {
    pub fn is_bind(&self) -> bool {
        self.flags.contains(MsFlags::MS_BIND)
    }
}

/// Filesystem-specific options without `=` that are passed through as data; anything else
/// unknown is rejected so typos don't silently turn into data.
const DATA_WORDS: &[&str] = &[
    "newinstance",
    "inode64",
    "inode32",
    "noswap",
    "nsdelegate",
    "memory_recursiveprot",
    "memory_localevents",
    "favordynmods",
    "userxattr",
    "user_xattr",
    "nouser_xattr",
    "acl",
    "noacl",
    "nouuid",
    "quota",
    "usrquota",
    "grpquota",
    "noquota",
    "discard",
    "nodiscard",
];

const fn ms(bits: libc::c_ulong) -> MsFlags {
    MsFlags::from_bits_retain(bits)
}

/// Propagation options (and `linux.rootfsPropagation` values) and their flags.
const PROPAGATIONS: &[(&str, MsFlags)] = &[
    ("private", ms(libc::MS_PRIVATE)),
    ("rprivate", ms(libc::MS_PRIVATE | libc::MS_REC)),
    ("shared", ms(libc::MS_SHARED)),
    ("rshared", ms(libc::MS_SHARED | libc::MS_REC)),
    ("slave", ms(libc::MS_SLAVE)),
    ("rslave", ms(libc::MS_SLAVE | libc::MS_REC)),
    ("unbindable", ms(libc::MS_UNBINDABLE)),
    ("runbindable", ms(libc::MS_UNBINDABLE | libc::MS_REC)),
];

/// Classic mount(2) flag options: (name, clears?, flag).
const FLAGS: &[(&str, bool, MsFlags)] = &[
    ("defaults", false, MsFlags::empty()),
    ("bind", false, ms(libc::MS_BIND)),
    ("rbind", false, ms(libc::MS_BIND | libc::MS_REC)),
    ("ro", false, ms(libc::MS_RDONLY)),
    ("rw", true, ms(libc::MS_RDONLY)),
    ("nosuid", false, ms(libc::MS_NOSUID)),
    ("suid", true, ms(libc::MS_NOSUID)),
    ("nodev", false, ms(libc::MS_NODEV)),
    ("dev", true, ms(libc::MS_NODEV)),
    ("noexec", false, ms(libc::MS_NOEXEC)),
    ("exec", true, ms(libc::MS_NOEXEC)),
    ("sync", false, ms(libc::MS_SYNCHRONOUS)),
    ("async", true, ms(libc::MS_SYNCHRONOUS)),
    ("dirsync", false, ms(libc::MS_DIRSYNC)),
    ("remount", false, ms(libc::MS_REMOUNT)),
    ("mand", false, ms(libc::MS_MANDLOCK)),
    ("nomand", true, ms(libc::MS_MANDLOCK)),
    ("noatime", false, ms(libc::MS_NOATIME)),
    ("atime", true, ms(libc::MS_NOATIME)),
    ("nodiratime", false, ms(libc::MS_NODIRATIME)),
    ("diratime", true, ms(libc::MS_NODIRATIME)),
    ("relatime", false, ms(libc::MS_RELATIME)),
    ("norelatime", true, ms(libc::MS_RELATIME)),
    ("strictatime", false, ms(libc::MS_STRICTATIME)),
    ("nostrictatime", true, ms(libc::MS_STRICTATIME)),
    ("lazytime", false, ms(libc::MS_LAZYTIME)),
    ("nolazytime", true, ms(libc::MS_LAZYTIME)),
    ("silent", false, ms(libc::MS_SILENT)),
    ("loud", true, ms(libc::MS_SILENT)),
    ("iversion", false, ms(libc::MS_I_VERSION)),
    ("noiversion", true, ms(libc::MS_I_VERSION)),
    ("nosymfollow", false, ms(MS_NOSYMFOLLOW)),
    ("symfollow", true, ms(MS_NOSYMFOLLOW)),
];

/// Recursive `r*` options, applied with mount_setattr(2): (name, clears?, attribute).
const RECURSIVE: &[(&str, bool, u64)] = &[
    ("rro", false, MOUNT_ATTR_RDONLY),
    ("rrw", true, MOUNT_ATTR_RDONLY),
    ("rnosuid", false, MOUNT_ATTR_NOSUID),
    ("rsuid", true, MOUNT_ATTR_NOSUID),
    ("rnodev", false, MOUNT_ATTR_NODEV),
    ("rdev", true, MOUNT_ATTR_NODEV),
    ("rnoexec", false, MOUNT_ATTR_NOEXEC),
    ("rexec", true, MOUNT_ATTR_NOEXEC),
    ("rnodiratime", false, MOUNT_ATTR_NODIRATIME),
    ("rdiratime", true, MOUNT_ATTR_NODIRATIME),
    ("rrelatime", false, MOUNT_ATTR_RELATIME),
    ("rnorelatime", true, MOUNT_ATTR_RELATIME),
    ("rnoatime", false, MOUNT_ATTR_NOATIME),
    ("ratime", true, MOUNT_ATTR_NOATIME),
    ("rstrictatime", false, MOUNT_ATTR_STRICTATIME),
    ("rnostrictatime", true, MOUNT_ATTR_STRICTATIME),
    ("rnosymfollow", false, MOUNT_ATTR_NOSYMFOLLOW),
    ("rsymfollow", true, MOUNT_ATTR_NOSYMFOLLOW),
];

/// The propagation flags a name stands for, as used by `options` and `linux.rootfsPropagation`.
pub(crate) fn propagation(name: &str) -> Option<MsFlags> {
    PROPAGATIONS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, f)| *f)
}

/// Every mount option this parser understands (for `features`).
pub fn option_names() -> impl Iterator<Item = &'static str> {
    FLAGS
        .iter()
        .map(|(n, ..)| *n)
        .chain(RECURSIVE.iter().map(|(n, ..)| *n))
        .chain(PROPAGATIONS.iter().map(|(n, _)| *n))
        .chain(["tmpcopyup", "idmap", "ridmap"])
}

/// Parse fstab-style options; the error names the offending option.
pub(crate) fn parse(options: &[String]) -> std::result::Result<MountOptions, String> {
    let mut o = MountOptions {
        flags: MsFlags::empty(),
        cleared: MsFlags::empty(),
        propagation: Vec::new(),
        attr_set: 0,
        attr_clr: 0,
        data: Vec::new(),
        copy_up: false,
        idmap: None,
    };
    for opt in options {
        let opt = opt.as_str();
        if let Some((clear, flag)) = flag(opt) {
            if clear {
                o.flags.remove(flag);
                o.cleared.insert(flag);
            } else {
                o.flags.insert(flag);
                o.cleared.remove(flag);
            }
        } else if let Some(p) = propagation(opt) {
            o.propagation.push(p);
        } else if let Some((clear, attr)) = recursive_attr(opt) {
            // Access-time modes are one field, which mount_setattr(2) changes only as a whole:
            // clearing a mode means going back to the default (relatime), or, for
            // rnorelatime, to strictatime.
            let atime_mode =
                attr & MOUNT_ATTR_ATIME != 0 || matches!(opt, "rrelatime" | "rnorelatime");
            let (field, value) = match (atime_mode, clear) {
                (true, false) => (MOUNT_ATTR_ATIME, attr),
                (true, true) if opt == "rnorelatime" => (MOUNT_ATTR_ATIME, MOUNT_ATTR_STRICTATIME),
                (true, true) => (MOUNT_ATTR_ATIME, MOUNT_ATTR_RELATIME),
                (false, false) => (attr, attr),
                (false, true) => (attr, 0),
            };
            o.attr_clr |= field;
            o.attr_set = (o.attr_set & !field) | value;
        } else if opt == "tmpcopyup" {
            o.copy_up = true;
        } else if let Some(i) = idmap::parse_option(opt) {
            o.idmap = Some(i?);
        } else if opt.contains('=') || DATA_WORDS.contains(&opt) {
            o.data.push(opt.to_string());
        } else {
            return Err(format!("unknown option {opt:?}"));
        }
    }
    Ok(o)
}

/// (clears?, flag) for a classic mount(2) flag option.
fn flag(opt: &str) -> Option<(bool, MsFlags)> {
    FLAGS
        .iter()
        .find(|(n, ..)| *n == opt)
        .map(|(_, c, f)| (*c, *f))
}

/// (clears?, attribute) for a recursive `r*` option.
fn recursive_attr(opt: &str) -> Option<(bool, u64)> {
    RECURSIVE
        .iter()
        .find(|(n, ..)| *n == opt)
        .map(|(_, c, a)| (*c, *a))
}

/// Mount `mounts[index]` inside the rootfs open at `root`.
pub(crate) fn mount_entry(opts: &Options, root: BorrowedFd, index: usize, m: &Mount) -> Result<()> {
    let o = parse(m.options().as_deref().unwrap_or_default())
        .map_err(|e| Error::config(format!("mounts[{index}].options: {e}")))?;
    let typ = m.typ().as_deref().unwrap_or("");
    let dest = m.destination();
    let source = m.source().as_deref();
    let what = || {
        format!(
            "mount {} on {}",
            source.map_or(typ.into(), |s| s.display().to_string()),
            dest.display()
        )
    };

    // A destination that reaches into a procfs through symlinks gets the same check as a literal
    // /proc path.
    let existing = paths::open(root, dest).ok();
    if let Some(existing) = &existing {
        let on_proc = fstatfs(existing).ctx(what)?.filesystem_type() == PROC_SUPER_MAGIC;
        if on_proc
            && dest.components().ne(Path::new("/proc").components())
            && !PROC_DESTINATIONS.iter().any(|p| dest == Path::new(p))
        {
            return Err(Error::config(format!(
                "mounts[{index}].destination: {} is inside /proc",
                dest.display()
            )));
        }
    }
    let target = if typ == "cgroup" {
        let cgroupns = has_namespace(opts.spec, LinuxNamespaceType::Cgroup);
        cgroup::mount_cgroup(root, dest, &o, cgroupns, opts.mount_label).ctx(what)?
    } else if o.is_bind() || typ == "bind" {
        let source = source.ok_or_else(|| {
            Error::config(format!("mounts[{index}].source: required for a bind mount"))
        })?;
        let detached = match opts.detached.get(index) {
            Some(tree) => Source::Detached(tree),
            None => Source::Path(source),
        };
        let target = bind(opts, root, detached, dest, o.flags, o.cleared).ctx(what)?;
        if is_proc(dest) && fstatfs(&target).ctx(what)?.filesystem_type() != PROC_SUPER_MAGIC {
            return Err(Error::config(format!(
                "mounts[{index}]: {} bound at /proc is not a procfs",
                source.display()
            )));
        }
        target
    } else if typ == "sysfs"
        && opts.new_userns
        && !has_namespace(opts.spec, LinuxNamespaceType::Network)
    {
        // A new user namespace without its own network namespace may not mount sysfs.
        bind(
            opts,
            root,
            Source::Path(Path::new("/sys")),
            dest,
            o.flags | MsFlags::MS_BIND | MsFlags::MS_REC,
            o.cleared,
        )
        .ctx(what)?
    } else {
        let target = paths::create(root, dest, Kind::Dir).ctx(what)?;
        let mut data = o.data.clone();
        if let (Some(covered), "tmpfs") = (&existing, typ) {
            // Like runc, a tmpfs keeps the mode of the directory it covers unless mode= says
            // otherwise (a later option wins); a freshly made one keeps tmpfs's default.
            let mode = fstat(covered).ctx(what)?.st_mode & 0o7777;
            data.insert(0, format!("mode={mode:04o}"));
        }
        // proc and sysfs have labels of their own; mqueue takes its label as an attribute.
        let label = opts
            .mount_label
            .filter(|_| !matches!(typ, "proc" | "sysfs"));
        let context = label.filter(|_| typ != "mqueue").map(context_option);
        data.extend(context);
        // Opened before the tmpfs hides it.
        let covered_dir = match (&existing, typ) {
            (Some(covered), "tmpfs") if o.copy_up => {
                Some(copyup::open_dir(covered.as_fd(), c".").ctx(what)?)
            }
            _ => None,
        };
        let src = source.unwrap_or(Path::new(typ));
        mount(
            Some(src),
            paths::fd_path(&target).as_str(),
            Some(typ),
            o.flags,
            data_string(&data).as_deref(),
        )
        .ctx(what)?;
        let mounted = paths::open(root, dest).ctx(what)?;
        if let Some(label) = label.filter(|_| typ == "mqueue") {
            set_selinux_label(&mounted, label).ctx(what)?;
        }
        if let Some(covered) = covered_dir {
            copyup::copy_tree(
                covered,
                copyup::open_dir(mounted.as_fd(), c".").ctx(what)?.as_fd(),
                dest,
            )?;
        }
        mounted
    };
    apply_propagation_and_attrs(&target, &o).ctx(what)
}

/// Filesystem data options as mount(2)'s data string, None if there are none.
pub(crate) fn data_string(data: &[String]) -> Option<String> {
    (!data.is_empty()).then(|| data.join(","))
}

/// The mount option that labels every file of a new mount with linux.mountLabel (quoted: an
/// MLS label has commas).
pub(crate) fn context_option(label: &str) -> String {
    format!("context=\"{label}\"")
}

/// Label the file behind `fd` (an O_PATH fd, so through its /proc/self/fd link).
fn set_selinux_label(fd: &OwnedFd, label: &str) -> nix::Result<()> {
    let path = std::ffi::CString::new(paths::fd_path(fd)).map_err(|_| nix::Error::EINVAL)?;
    // SAFETY: both strings are NUL-terminated and outlive the call; the value's length is its own.
    let r = unsafe {
        libc::setxattr(
            path.as_ptr(),
            c"security.selinux".as_ptr(),
            label.as_ptr().cast(),
            label.len(),
            0,
        )
    };
    nix::Error::result(r).map(drop)
}

/// Apply the propagation changes and recursive attributes of `o` to the mount at `target`.
fn apply_propagation_and_attrs(target: &OwnedFd, o: &MountOptions) -> nix::Result<()> {
    for p in &o.propagation {
        mount(
            None::<&str>,
            paths::fd_path(target).as_str(),
            None::<&str>,
            *p,
            None::<&str>,
        )?;
    }
    if o.attr_set != 0 || o.attr_clr != 0 {
        mount_setattr_recursive(target.as_fd(), o.attr_set, o.attr_clr)?;
    }
    Ok(())
}

/// What a bind mount attaches.
enum Source<'a> {
    /// A host path, bundle-relative if relative, resolved in-root if it lies inside the rootfs.
    Path(&'a Path),
    /// A detached mount made by the runtime (an idmapped copy, [`idmap`]), moved into place.
    Detached(BorrowedFd<'a>),
}

/// Open a bind source given as a host path (bundle-relative if relative); inside the rootfs
/// (open at `root`) it is resolved in-root.
pub(crate) fn open_source(
    rootfs: &Path,
    bundle: &Path,
    root: BorrowedFd,
    source: &Path,
) -> nix::Result<OwnedFd> {
    let host: PathBuf = if source.is_absolute() {
        source.to_path_buf()
    } else {
        bundle.join(source)
    };
    match host.strip_prefix(rootfs) {
        Ok(inner) => paths::open(root, inner),
        Err(_) => nix::fcntl::open(
            &host,
            nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
            Mode::empty(),
        ),
    }
}

/// Bind `source` onto `dest` inside the rootfs, then remount with `flags` if it asks for more
/// than a plain bind. Returns an fd of the new mount.
fn bind(
    opts: &Options,
    root: BorrowedFd,
    source: Source,
    dest: &Path,
    flags: MsFlags,
    cleared: MsFlags,
) -> nix::Result<OwnedFd> {
    let opened;
    let src = match source {
        Source::Path(p) => {
            opened = open_source(opts.rootfs, opts.bundle, root, p)?;
            opened.as_fd()
        }
        Source::Detached(fd) => fd,
    };
    let kind = if SFlag::from_bits_truncate(fstat(src)?.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR {
        Kind::Dir
    } else {
        Kind::File
    };
    let target = paths::create(root, dest, kind)?;
    match source {
        Source::Path(_) => bind_fd(&src, &target, flags & MsFlags::MS_REC)?,
        Source::Detached(tree) => syscall::move_mount(tree, target.as_fd())?,
    }
    let target = paths::open(root, dest)?;
    let extra = flags - (MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
    if !extra.is_empty() {
        remount_bind(&target, extra, cleared)?;
    }
    // `rbind,ro` makes only the top mount read-only. In a new user namespace (rootless) the
    // submounts are made read-only too: a `/sys` bind would otherwise carry the host's writable
    // cgroup mounts, and the user's delegated cgroups with them (CVE-2023-25809).
    if opts.new_userns && flags.contains(MsFlags::MS_REC | MsFlags::MS_RDONLY) {
        mount_setattr_recursive(target.as_fd(), MOUNT_ATTR_RDONLY, 0)?;
    }
    Ok(target)
}

/// Bind-mount the object behind `src` onto the one behind `target` (`rec`: MS_REC or empty).
pub(crate) fn bind_fd(src: &impl AsFd, target: &OwnedFd, rec: MsFlags) -> nix::Result<()> {
    mount(
        Some(paths::fd_path(src).as_str()),
        paths::fd_path(target).as_str(),
        None::<&str>,
        MsFlags::MS_BIND | rec,
        None::<&str>,
    )
}

/// Remount the bind mount at `target` with `flags`, keeping the flags it already has that the
/// caller did not explicitly clear: in a user namespace nosuid/nodev/noexec/ro/atime flags
/// inherited from the host are locked, and dropping them would fail with EPERM.
pub(crate) fn remount_bind(target: &OwnedFd, flags: MsFlags, cleared: MsFlags) -> nix::Result<()> {
    let st = fstatvfs(target)?.flags();
    let mut keep = MsFlags::empty();
    for (st_flag, ms) in [
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if st.contains(st_flag) {
            keep |= ms;
        }
    }
    if (flags | cleared).intersects(ATIME_FLAGS) {
        keep -= ATIME_FLAGS;
    }
    let flags = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | flags | (keep - cleared);
    mount(
        None::<&str>,
        paths::fd_path(target).as_str(),
        None::<&str>,
        flags,
        None::<&str>,
    )
}

/// Whether the spec asks for a namespace of `typ` (new or joined by path).
fn has_namespace(spec: &Spec, typ: LinuxNamespaceType) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| ns.iter().any(|n| n.typ() == typ))
}

/// mount_setattr(2) on every mount of the tree at `fd`.
fn mount_setattr_recursive(fd: BorrowedFd, set: u64, clr: u64) -> nix::Result<()> {
    let attr = syscall::MountAttr {
        attr_set: set,
        attr_clr: clr,
        propagation: 0,
        userns_fd: 0,
    };
    syscall::mount_setattr(fd.as_raw_fd(), true, &attr)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(opts: &[&str]) -> std::result::Result<MountOptions, String> {
        parse(&opts.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn flags_data_and_errors() {
        let o = p(&[
            "rbind",
            "ro",
            "nosuid",
            "rw",
            "mode=755",
            "newinstance",
            "rslave",
        ])
        .unwrap();
        assert_eq!(
            o.flags,
            MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_NOSUID
        );
        assert_eq!(o.cleared, MsFlags::MS_RDONLY);
        assert_eq!(o.data, ["mode=755", "newinstance"]);
        assert_eq!(o.propagation, [MsFlags::MS_SLAVE | MsFlags::MS_REC]);
        assert_eq!(p(&["foo"]).unwrap_err(), "unknown option \"foo\"");
        assert!(p(&["tmpcopyup"]).unwrap().copy_up);
    }

    #[test]
    fn recursive_attrs() {
        let o = p(&["rro", "rnoatime", "rexec"]).unwrap();
        assert_eq!(o.attr_set, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOATIME);
        assert_eq!(
            o.attr_clr,
            MOUNT_ATTR_RDONLY | MOUNT_ATTR_ATIME | MOUNT_ATTR_NOEXEC
        );
        let o = p(&["rrelatime"]).unwrap();
        assert_eq!((o.attr_set, o.attr_clr), (0, MOUNT_ATTR_ATIME));
    }
}
