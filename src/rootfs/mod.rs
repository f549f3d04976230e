//! The container's root filesystem, set up by the container init in its new mount namespace:
//! [`prepare`] (mounts and /dev, still seeing the host), [`pivot`] (into the rootfs) and
//! [`finalize`] (masked/read-only paths, read-only root, final propagation).

mod cgroup;
mod copyup;
mod dev;
mod idmap;
mod masked;
pub(crate) mod mount;
pub(crate) mod paths;
mod pivot;

pub(crate) use dev::DEFAULT_DEVICES;
pub use idmap::{prepare as prepare_detached, supported as idmap_supported, DetachedMounts};

use std::os::fd::AsFd;
use std::path::Path;

use nix::mount::MsFlags;
use oci_spec::runtime::{LinuxDeviceType, Spec};

use crate::{Context, Error, Result};

/// What the rootfs steps need from the config and the command line.
pub struct Options<'a> {
    pub spec: &'a Spec,
    /// Absolute, canonical host path of `root.path`.
    pub rootfs: &'a Path,
    /// Absolute bundle directory; relative bind sources resolve against it.
    pub bundle: &'a Path,
    /// runc --no-pivot: MS_MOVE + chroot instead of pivot_root.
    pub no_pivot: bool,
    /// In a new user namespace: devices are bind-mounted from the host instead of created.
    pub new_userns: bool,
    /// In a mount namespace of its own (new or joined). Without one (the runtime's is shared,
    /// and create refused everything that mounts) the rootfs is only chrooted into.
    pub mount_ns: bool,
    /// linux.mountLabel ([`crate::security::lsm::mount_label`]; create refuses it without
    /// SELinux). As in runc: the `context=` option of every new filesystem mount but proc, sysfs
    /// and cgroup2 (bind mounts keep their labels), and the label of the mqueue mount's root.
    pub mount_label: Option<&'a str>,
    /// Bind mounts the runtime made ([`prepare_detached`]), attached in place of binds.
    pub detached: &'a DetachedMounts,
}

/// Reject what can be seen to be wrong in the config without touching the system.
pub fn validate(spec: &Spec) -> Result<()> {
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        if !m.destination().is_absolute() {
            return Err(Error::config(format!(
                "mounts[{i}].destination: {:?} is not absolute",
                m.destination()
            )));
        }
        mount::check_destination(m.destination())
            .map_err(|e| Error::config(format!("mounts[{i}].destination: {e}")))?;
        let o = mount::parse(m.options().as_deref().unwrap_or_default())
            .map_err(|e| Error::config(format!("mounts[{i}].options: {e}")))?;
        let typ = m.typ().as_deref().unwrap_or_default();
        // A bind is checked once its source is open (it may be a procfs).
        if mount::is_proc(m.destination()) && typ != "proc" && !o.is_bind() && typ != "bind" {
            return Err(Error::config(format!(
                "mounts[{i}]: {typ:?} at /proc: only a procfs (type proc, or a bind of one) may be mounted there"
            )));
        }
        if (o.is_bind() || m.typ().as_deref() == Some("bind")) && m.source().is_none() {
            return Err(Error::config(format!(
                "mounts[{i}].source: required for a bind mount"
            )));
        }
        idmap::plan(spec, m, &o).map_err(|e| {
            Error::config(format!("mounts[{i}] ({}): {e}", m.destination().display()))
        })?;
    }
    let Some(linux) = spec.linux() else {
        return Ok(());
    };
    if let Some(p) = linux.rootfs_propagation() {
        if mount::propagation(p).is_none() {
            return Err(Error::config(format!(
                "linux.rootfsPropagation: unknown propagation {p:?}"
            )));
        }
    }
    for (i, d) in linux.devices().iter().flatten().enumerate() {
        if !d.path().is_absolute() {
            return Err(Error::config(format!(
                "linux.devices[{i}].path: {:?} is not absolute",
                d.path()
            )));
        }
        if d.typ() == LinuxDeviceType::A {
            return Err(Error::config(format!(
                "linux.devices[{i}].type: must be c, b, u or p"
            )));
        }
    }
    for (field, paths) in [
        ("maskedPaths", linux.masked_paths()),
        ("readonlyPaths", linux.readonly_paths()),
    ] {
        for (i, p) in paths.iter().flatten().enumerate() {
            if !Path::new(p).is_absolute() {
                return Err(Error::config(format!(
                    "linux.{field}[{i}]: {p:?} is not absolute"
                )));
            }
        }
    }
    Ok(())
}

/// The configured `linux.rootfsPropagation`, if any.
fn root_propagation(spec: &Spec) -> Result<Option<MsFlags>> {
    let Some(name) = spec
        .linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().as_deref())
    else {
        return Ok(None);
    };
    mount::propagation(name).map(Some).ok_or_else(|| {
        Error::config(format!(
            "linux.rootfsPropagation: unknown propagation {name:?}"
        ))
    })
}

/// Set propagation `flags` on the mount at `path`.
fn set_propagation(path: &Path, flags: MsFlags) -> Result<()> {
    nix::mount::mount(None::<&str>, path, None::<&str>, flags, None::<&str>)
        .ctx(|| format!("set propagation of {}", path.display()))
}

/// Step 1, before pivot: root propagation, the rootfs as a mount point, `mounts`, /dev.
pub fn prepare(opts: &Options) -> Result<()> {
    validate(opts.spec)?;
    if !opts.mount_ns {
        return Ok(());
    }
    let propagation = root_propagation(opts.spec)?.unwrap_or(MsFlags::MS_SLAVE | MsFlags::MS_REC);
    set_propagation(Path::new("/"), propagation)?;
    make_parent_private(opts.rootfs)?;
    nix::mount::mount(
        Some(opts.rootfs),
        opts.rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .ctx(|| format!("bind {} onto itself", opts.rootfs.display()))?;
    // Opened after the self-bind so lookups start on the new mount.
    let root = paths::open_root(opts.rootfs)?;
    for (i, m) in opts.spec.mounts().iter().flatten().enumerate() {
        mount::mount_entry(opts, root.as_fd(), i, m)?;
    }
    if dev::needs_setup(opts.spec) {
        dev::setup(opts, root.as_fd())?;
    }
    Ok(())
}

/// pivot_root refuses a new root whose parent mount is shared (possible with a shared
/// rootfsPropagation), and nothing on an unbindable mount can be bound (an unbindable one):
/// make the mount holding the rootfs private in those cases. The final propagation is set on
/// the new root after pivot ([`finalize`]).
fn make_parent_private(rootfs: &Path) -> Result<()> {
    let mounts = crate::mountinfo::read()?;
    let parent = mounts
        .iter()
        .filter(|m| rootfs.starts_with(&m.mount_point))
        .max_by_key(|m| m.mount_point.components().count());
    match parent {
        Some(m)
            if m.optional
                .iter()
                .any(|o| o.starts_with("shared:") || o == "unbindable") =>
        {
            set_propagation(&m.mount_point, MsFlags::MS_PRIVATE)
        }
        _ => Ok(()),
    }
}

/// Step 3: make the rootfs the process's root; cwd ends at `/`.
pub fn pivot(opts: &Options) -> Result<()> {
    if !opts.mount_ns {
        pivot::chroot_to(opts.rootfs)
    } else if opts.no_pivot {
        pivot::move_root_to(opts.rootfs)
    } else {
        pivot::pivot_root_to(opts.rootfs)
    }
}

/// Step 5, after pivot: final root propagation, read-only root, read-only and masked paths.
pub fn finalize(opts: &Options) -> Result<()> {
    if !opts.mount_ns {
        return Ok(());
    }
    if let Some(p) = root_propagation(opts.spec)? {
        set_propagation(Path::new("/"), p)?;
    }
    let root = paths::open_root(Path::new("/"))?;
    if opts
        .spec
        .root()
        .as_ref()
        .is_some_and(|r| r.readonly() == Some(true))
    {
        masked::root_readonly(&root)?;
    }
    let Some(linux) = opts.spec.linux() else {
        return Ok(());
    };
    masked::make_readonly(
        root.as_fd(),
        linux.readonly_paths().as_deref().unwrap_or_default(),
    )?;
    masked::mask(
        root.as_fd(),
        linux.masked_paths().as_deref().unwrap_or_default(),
        opts.mount_label,
    )
}

pub use mount::option_names as mount_options;
pub(crate) use paths::fd_path;
pub use paths::resolve_fd_links_in;
