//! The container's cgroup, managed through cgroupfs, or made by systemd as a transient scope
//! (the systemd driver, `systemd/`) and then written through cgroupfs like any other.
//!
//! [`Cgroup::resolve`] works out the cgroup's directory in every mounted hierarchy; the value is
//! then stored in the container's state so that later commands act on the same directories
//! even if they run in another cgroup themselves.
//!
//! Hierarchies: on a pure cgroup v2 host, the one unified directory. On a v1 (legacy or hybrid)
//! host, every mounted v1 hierarchy, named ones such as `name=systemd` included (runc's fs
//! driver joins `name=systemd` too, so tools that read it see the container), plus the cgroup2
//! hierarchy if one is mounted as well (runc ignores it; we use it for cgroup.kill and for the
//! controllers, such as hugetlb, that only it carries).
//!
//! linux.resources is checked by [`validate_resources`] and applied by [`Cgroup::apply`] (in
//! `resources/`) right after [`Cgroup::create`]; `update` applies changed ones with
//! [`Cgroup::update`]. [`Cgroup::stats`] and [`Cgroup::watch_oom`] serve `events`.

mod bpf;
mod fs;
mod layout;
mod oom;
mod resources;
mod stats;
mod systemd;
mod v1;
mod v2;

use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::signal::{self, Signal};
use nix::sys::stat::Mode;
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use crate::{Context, Error, Result};

pub use oom::OomWatch;
pub use resources::validate as validate_resources;
pub use stats::Stats;

/// Where a container's cgroup lives; serializable so that later commands find it again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cgroup {
    /// The cgroup in each mounted v1 hierarchy (empty on a pure v2 host).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    v1: Vec<V1Dir>,
    /// The cgroup's directory in the cgroup2 hierarchy, if one is mounted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    unified: Option<PathBuf>,
    /// With the systemd driver, the scope unit whose cgroup `unified` is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    systemd: Option<systemd::Unit>,
}

/// Who makes the container's cgroup.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Driver {
    /// berth itself, with mkdir and rmdir.
    #[default]
    Cgroupfs,
    /// systemd, as a transient scope unit (pure cgroup v2 hosts booted with systemd).
    Systemd,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct V1Dir {
    /// The hierarchy's controllers, e.g. `["cpu", "cpuacct"]` or `["name=systemd"]`.
    controllers: Vec<String>,
    mountpoint: PathBuf,
    dir: PathBuf,
}

impl V1Dir {
    fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }
}

/// Where resources are written and stats read: the v1 hierarchies (with the cgroup2 directory
/// of a hybrid host), or the one directory of a pure v2 host.
enum Hierarchies<'a> {
    V1(&'a [V1Dir], Option<&'a Path>),
    V2(&'a Path),
}

/// The freezer this host offers for the cgroup.
enum Freezer<'a> {
    V1(&'a Path),
    V2(&'a Path),
}

impl Cgroup {
    /// Work out where the container's cgroup lives, without touching the system.
    ///
    /// `cgroups_path` is linux.cgroupsPath. Absolute: used as is from the root of each
    /// hierarchy. Relative: below the caller's own cgroup in each hierarchy (from
    /// /proc/self/cgroup), as runc's fs driver does. None or empty: `<own cgroup>/<id>`.
    pub fn resolve(cgroups_path: Option<&Path>, id: &str) -> Result<Cgroup> {
        let (inner, absolute) = match cgroups_path.filter(|p| !p.as_os_str().is_empty()) {
            Some(path) => (clean(path)?, path.is_absolute()),
            None => {
                if id.is_empty() || id == "." || id == ".." || id.contains('/') {
                    return Err(Error::InvalidId(id.into(), "it cannot name a cgroup"));
                }
                (PathBuf::from(id), false)
            }
        };
        let mut cgroup = Cgroup {
            v1: Vec::new(),
            unified: None,
            systemd: None,
        };
        for h in layout::detect()? {
            let base = if absolute {
                h.mountpoint.clone()
            } else {
                h.own_dir()?
            };
            let dir = base.join(&inner);
            if h.controllers.is_empty() {
                cgroup.unified = Some(dir);
            } else {
                cgroup.v1.push(V1Dir {
                    controllers: h.controllers,
                    mountpoint: h.mountpoint,
                    dir,
                });
            }
        }
        Ok(cgroup)
    }

    /// No cgroup at all: what a rootless container gets when it may not create its cgroup (see
    /// [`may_skip`]). Nothing is created, joined or removed; pause and ps say why they cannot
    /// work; the container is never frozen.
    pub fn none() -> Cgroup {
        Cgroup {
            v1: Vec::new(),
            unified: None,
            systemd: None,
        }
    }

    pub fn is_none(&self) -> bool {
        self.v1.is_empty() && self.unified.is_none()
    }

    /// The error of an operation that needs the cgroup a [`Cgroup::none`] does not have.
    fn missing(&self) -> Error {
        Error::Usage(
            "the container has no cgroup (it was created rootless, without a cgroup it could write)"
                .into(),
        )
    }

    /// [`Cgroup::resolve`] for either driver. With systemd's, linux.cgroupsPath is
    /// `slice:prefix:name` (see `systemd/`); fails unless systemd runs this (pure v2) host.
    pub fn resolve_with(driver: Driver, cgroups_path: Option<&Path>, id: &str) -> Result<Cgroup> {
        if driver == Driver::Cgroupfs {
            return Cgroup::resolve(cgroups_path, id);
        }
        systemd::check_running()?;
        let (unit, dir) = systemd::unit(cgroups_path, id)?;
        let unified = match &layout::detect()?[..] {
            [h] if h.controllers.is_empty() => h.mountpoint.join(dir),
            _ => {
                return Err(Error::Systemd(
                    "the systemd cgroup driver supports pure cgroup v2 hosts only (this one has v1 hierarchies)".into(),
                ))
            }
        };
        Ok(Cgroup {
            v1: Vec::new(),
            unified: Some(unified),
            systemd: Some(unit),
        })
    }

    /// Whether systemd makes the cgroup: then [`Cgroup::start_unit`] takes the place of
    /// [`Cgroup::create`] and [`Cgroup::apply`], once the container's first process exists.
    pub fn is_systemd(&self) -> bool {
        self.systemd.is_some()
    }

    /// The systemd driver's create: start the unit with `pid` in it and the resources systemd
    /// has properties for, then write every resource to the cgroup files as
    /// [`Cgroup::apply`] does. Opens a D-Bus connection, which runs a thread: only where no
    /// fork follows.
    pub fn start_unit(
        &self,
        pid: Pid,
        resources: &oci_spec::runtime::LinuxResources,
        created: &[oci_spec::runtime::LinuxDevice],
    ) -> Result<()> {
        let unit = self
            .systemd
            .as_ref()
            .ok_or_else(|| Error::config("cgroup is not a systemd unit"))?;
        systemd::start(unit, pid, resources, created)?;
        self.apply(resources, created)
    }

    /// The cgroup's directory in every hierarchy (v1 ones first, then the unified one).
    pub fn dirs(&self) -> impl Iterator<Item = &Path> {
        self.v1
            .iter()
            .map(|h| h.dir.as_path())
            .chain(self.unified.as_deref())
    }

    fn hierarchies(&self) -> Result<Hierarchies<'_>> {
        match (self.v1.is_empty(), self.unified.as_deref()) {
            (false, unified) => Ok(Hierarchies::V1(&self.v1, unified)),
            (true, Some(dir)) => Ok(Hierarchies::V2(dir)),
            (true, None) => Err(self.missing()),
        }
    }

    /// On a pure v2 host, the cgroup's directory (`subs` as for [`Cgroup::add_to`]) opened for
    /// clone3's CLONE_INTO_CGROUP. None on v1 and hybrid hosts: their v1 hierarchies need a
    /// cgroup.procs write anyway, so the process joins every hierarchy that way.
    pub fn open_for_clone(&self, subs: &[String]) -> Result<Option<OwnedFd>> {
        if !self.v1.is_empty() {
            return Ok(None);
        }
        let Some(dir) = self.targets(subs)?.pop() else {
            return Ok(None);
        };
        let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let fd = nix::fcntl::open(&dir, flags, Mode::empty())
            .ctx(|| format!("open cgroup {}", dir.display()))?;
        Ok(Some(fd))
    }

    /// Refuse a cgroup that exists and holds processes or is frozen, as runc does: it is not
    /// ours (a create that adopted it would list, and on failure kill, processes it never
    /// started), and a container would start frozen in it.
    pub fn check_unused(&self) -> Result<()> {
        for dir in self.dirs().filter(|d| d.is_dir()) {
            let mut pids = Vec::new();
            match fs::procs_tree(dir, &mut pids) {
                Err(e) if e.errno() == Some(nix::Error::ENOENT) => continue,
                r => r?,
            }
            if !pids.is_empty() {
                return Err(Error::InUse(format!(
                    "container's cgroup is not empty: {} process(es) found in {}",
                    pids.len(),
                    dir.display()
                )));
            }
        }
        let frozen = match self.freezer() {
            Some(Freezer::V1(dir) | Freezer::V2(dir)) if !dir.is_dir() => false,
            Some(f) => f.is_frozen()?,
            None => false,
        };
        if frozen {
            return Err(Error::InUse("container's cgroup is frozen".into()));
        }
        Ok(())
    }

    /// mkdir the cgroup (and missing parents) in every hierarchy; returns what this call made,
    /// for [`Made::remove`]. If a step fails, what this call created is removed again before
    /// the error is returned. An existing cgroup is reused.
    pub fn create(&self) -> Result<Made> {
        let mut created = Vec::new();
        let made = self.v1.iter().try_for_each(|h| {
            fs::mkdir_all(&h.dir, &mut created)?;
            if h.has("cpuset") {
                v1::init_cpuset(&h.mountpoint, &h.dir)?;
            }
            Ok(())
        });
        let made = made.and_then(|()| {
            self.unified
                .iter()
                .try_for_each(|d| fs::mkdir_all(d, &mut created))
        });
        match made {
            Ok(()) => Ok(Made(created)),
            Err(e) => {
                for dir in created.iter().rev() {
                    if let Err(e) = std::fs::remove_dir(dir) {
                        tracing::warn!("undo failed cgroup create: remove {}: {e}", dir.display());
                    }
                }
                Err(e)
            }
        }
    }

    /// Move `pid` into the cgroup in every hierarchy.
    pub fn add(&self, pid: Pid) -> Result<()> {
        self.add_to(pid, &[])
    }

    /// Move pid into existing sub-cgroups of the container (`exec --cgroup`): see
    /// [`Cgroup::targets`]. Every target is checked before the first write.
    pub fn add_to(&self, pid: Pid, subs: &[String]) -> Result<()> {
        for dir in self.targets(subs)? {
            fs::write(&dir.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    /// The directory to join in each hierarchy (v1 ones first): each entry of `subs` is `path`
    /// (every hierarchy) or `controller:path` (the v1 hierarchy with that controller), below
    /// the container's cgroup; hierarchies no entry names get the container's cgroup itself.
    fn targets(&self, subs: &[String]) -> Result<Vec<PathBuf>> {
        let mut any: Option<&Path> = None;
        let mut named: Vec<(&str, &Path)> = Vec::new();
        for sub in subs {
            let (controller, path) = match sub.split_once(':') {
                Some((c, p)) => (Some(c), Path::new(p)),
                None => (None, Path::new(sub.as_str())),
            };
            let escapes = path
                .components()
                .any(|c| !matches!(c, std::path::Component::Normal(_)));
            if escapes || path.as_os_str().is_empty() {
                return Err(Error::Usage(format!(
                    "--cgroup {sub:?}: must be a relative path below the container's cgroup"
                )));
            }
            match controller {
                Some(c) if !self.v1.iter().any(|h| h.has(c)) => {
                    return Err(Error::Usage(format!(
                        "--cgroup {sub:?}: no {c} hierarchy on this host"
                    )))
                }
                Some(c) => named.push((c, path)),
                None => any = Some(path),
            }
        }
        let v1 = self.v1.iter().map(|h| {
            (
                h.dir.as_path(),
                named.iter().find(|(c, _)| h.has(c)).map(|(_, p)| *p),
            )
        });
        let mut targets = Vec::new();
        for (dir, sub) in v1.chain(self.unified.as_deref().map(|d| (d, None))) {
            let target = match sub.or(any) {
                Some(p) => dir.join(p),
                None => dir.to_path_buf(),
            };
            if !target.is_dir() {
                return Err(Error::Usage(format!(
                    "--cgroup: {} does not exist",
                    target.display()
                )));
            }
            targets.push(target);
        }
        Ok(targets)
    }

    /// The pids in the cgroup and in any cgroups below it, sorted. Read from one hierarchy:
    /// every process is in every hierarchy, so any will do; the v1 ones are preferred on a v1
    /// host, as those are what runc reads.
    pub fn pids(&self) -> Result<Vec<Pid>> {
        let v1 = ["pids", "devices", "freezer", "cpu"]
            .iter()
            .find_map(|c| self.v1.iter().find(|h| h.has(c)))
            .or(self.v1.first())
            .map(|h| h.dir.as_path());
        let dir = v1
            .or(self.unified.as_deref())
            .ok_or_else(|| self.missing())?;
        // systemd removes a scope's cgroup once it is empty: no directory, no process.
        if self.systemd.is_some() && !dir.exists() {
            return Ok(Vec::new());
        }
        let mut pids = Vec::new();
        fs::procs_tree(dir, &mut pids)?;
        pids.sort();
        pids.dedup();
        Ok(pids)
    }

    /// Send `sig` to every process of the cgroup.
    ///
    /// SIGKILL goes through cgroup.kill where the kernel has it, which no fork can escape.
    /// Otherwise the cgroup is frozen (if it can be) while its pids are listed and signalled,
    /// so that none forks in between, and then thawed, unless it was frozen before and the
    /// signal is not SIGKILL: a paused container stays paused (a killed one must be thawed to
    /// die).
    pub fn kill_all(&self, sig: Signal) -> Result<()> {
        // A create killed before it made the cgroup left nothing to signal.
        if !self.dirs().any(Path::is_dir) {
            return Ok(());
        }
        let freezer = self.freezer();
        let was_frozen = match &freezer {
            Some(f) => f.is_frozen()?,
            None => false,
        };
        let cgroup_kill = self.unified.as_deref().filter(|d| v2::can_kill(d));
        let sent = match cgroup_kill {
            Some(dir) if sig == Signal::SIGKILL => v2::kill(dir),
            _ => {
                if let (Some(f), false) = (&freezer, was_frozen) {
                    if let Err(e) = f.set(true) {
                        tracing::warn!("signal all processes without freezing them first: {e}");
                    }
                }
                self.signal_each(sig)
            }
        };
        let thawed = match freezer {
            Some(f) if sig == Signal::SIGKILL || !was_frozen => f.set(false),
            _ => Ok(()),
        };
        sent.and(thawed)
    }

    fn signal_each(&self, sig: Signal) -> Result<()> {
        for pid in self.pids()? {
            match signal::kill(pid, sig) {
                // It exited since the list was read.
                Ok(()) | Err(nix::Error::ESRCH) => {}
                Err(e) => return Err(Error::sys(format!("send {sig} to pid {pid}"), e)),
            }
        }
        Ok(())
    }

    /// Freeze (`true`) or thaw (`false`) every process of the cgroup; a freeze returns once
    /// all of them are frozen.
    pub fn freeze(&self, frozen: bool) -> Result<()> {
        self.freezer().ok_or_else(|| self.no_freezer())?.set(frozen)
    }

    /// Whether the cgroup is frozen now.
    pub fn is_frozen(&self) -> Result<bool> {
        if self.is_none() {
            return Ok(false);
        }
        self.freezer().ok_or_else(|| self.no_freezer())?.is_frozen()
    }

    /// The directory whose freezer [`Cgroup::freeze`] uses (CRIU freezes the container there).
    pub fn freezer_dir(&self) -> Option<&Path> {
        self.freezer().map(|f| match f {
            Freezer::V1(d) | Freezer::V2(d) => d,
        })
    }

    /// The v1 freezer hierarchy if mounted, else cgroup.freeze of the unified hierarchy.
    fn freezer(&self) -> Option<Freezer<'_>> {
        match self.v1.iter().find(|h| h.has("freezer")) {
            Some(h) => Some(Freezer::V1(&h.dir)),
            None => self
                .unified
                .as_deref()
                .filter(|d| v2::can_freeze(d))
                .map(Freezer::V2),
        }
    }

    fn no_freezer(&self) -> Error {
        if self.is_none() {
            return self.missing();
        }
        let unified = match &self.unified {
            Some(dir) => format!("{} has no cgroup.freeze", dir.display()),
            None => "no cgroup2 hierarchy is mounted".into(),
        };
        Error::sys(
            format!("no cgroup freezer: no v1 freezer hierarchy is mounted and {unified}"),
            nix::Error::ENOTSUP,
        )
    }

    /// rmdir the cgroup in every hierarchy, sub-cgroups first. A cgroup that is already gone is
    /// fine. Every hierarchy is tried; the first error is returned. A systemd unit is stopped
    /// first (systemd removes its cgroup; what the container made below it may be left).
    pub fn destroy(&self) -> Result<()> {
        let stopped = self.systemd.as_ref().map_or(Ok(()), systemd::stop);
        self.dirs().map(fs::remove_tree).fold(stopped, Result::and)
    }
}

/// The cgroup directories one [`Cgroup::create`] made (outermost first in each hierarchy): a
/// failed create removes these and nothing that existed before it.
#[derive(Debug, Default)]
pub struct Made(Vec<PathBuf>);

impl Made {
    /// Remove the directories made, with any cgroups below them, innermost first; every one is
    /// tried and the first error is returned.
    pub fn remove(&self) -> Result<()> {
        self.0
            .iter()
            .rev()
            .map(|d| fs::remove_tree(d))
            .fold(Ok(()), Result::and)
    }
}

impl Freezer<'_> {
    fn set(&self, frozen: bool) -> Result<()> {
        match (self, frozen) {
            (Freezer::V1(dir), true) => v1::freeze(dir),
            (Freezer::V1(dir), false) => v1::thaw(dir),
            (Freezer::V2(dir), _) => v2::freeze(dir, frozen),
        }
    }

    fn is_frozen(&self) -> Result<bool> {
        match self {
            Freezer::V1(dir) => v1::is_frozen(dir),
            Freezer::V2(dir) => v2::is_frozen(dir),
        }
    }
}

/// Whether a rootless container may run without its cgroup after [`Cgroup::create`] failed
/// with `err`, as runc's rootless cgroup manager decides: only for a permission error, when the
/// config named no cgroupsPath (a path it names must be made) and sets no limit that needs a
/// controller (device rules are not enforced rootless anyway).
pub fn may_skip(
    err: &Error,
    cgroups_path: Option<&Path>,
    resources: &oci_spec::runtime::LinuxResources,
) -> bool {
    let no_path = cgroups_path.is_none_or(|p| p.as_os_str().is_empty());
    denied(err) && no_path && !resources::needs_controllers(resources)
}

/// Whether a cgroup operation failed for lack of permission.
pub fn denied(err: &Error) -> bool {
    matches!(
        err.errno(),
        Some(nix::Error::EACCES | nix::Error::EPERM | nix::Error::EROFS)
    )
}

/// linux.cgroupsPath as a relative path of plain names; `..`, non-UTF-8 and paths that name the
/// hierarchy root or the caller's own cgroup (which destroy would then remove) are refused.
fn clean(path: &Path) -> Result<PathBuf> {
    let bad = |why: &str| Error::config(format!("linux.cgroupsPath {path:?} {why}"));
    if path.to_str().is_none() {
        return Err(bad("is not valid UTF-8"));
    }
    let mut inner = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(name) => inner.push(name),
            Component::ParentDir => return Err(bad("must not contain \"..\"")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    if inner.as_os_str().is_empty() {
        return Err(bad("names no cgroup below its parent"));
    }
    Ok(inner)
}
