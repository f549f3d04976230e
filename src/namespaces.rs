//! Namespaces: which to create and which to join (by path), uid/gid maps, time offsets.

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::{open, OFlag};
use nix::sched::CloneFlags;
use nix::sys::stat::Mode;
use oci_spec::runtime::{Linux, LinuxIdMapping, LinuxNamespaceType};

use crate::{procfs, Context, Error, Result};

/// The namespaces of a container: created new (`new`) or joined through an open fd (`join`).
#[derive(Debug)]
pub struct Plan {
    pub new: CloneFlags,
    /// Joined namespaces, user first: once in the joined user namespace we hold its capabilities,
    /// which joining the namespaces it owns needs.
    pub join: Vec<(CloneFlags, OwnedFd, PathBuf)>,
}

/// nix has no constant for it.
pub const CLONE_NEWTIME: CloneFlags = CloneFlags::from_bits_retain(libc::CLONE_NEWTIME);

pub fn flag(t: LinuxNamespaceType) -> CloneFlags {
    CloneFlags::from_bits_retain(t as libc::c_int)
}

impl Plan {
    /// Read `linux.namespaces`, opening every path now: a path that is missing or is not a
    /// namespace of the named type is a config error before anything is created.
    pub fn from_linux(linux: &Linux) -> Result<Plan> {
        let mut plan = Plan {
            new: CloneFlags::empty(),
            join: Vec::new(),
        };
        let mut seen = CloneFlags::empty();
        for ns in linux.namespaces().iter().flatten() {
            let f = flag(ns.typ());
            if seen.contains(f) {
                return Err(Error::config(format_args!(
                    "linux.namespaces: {} listed twice",
                    ns.typ()
                )));
            }
            seen |= f;
            match ns.path() {
                Some(path) if !path.as_os_str().is_empty() => {
                    let what = || format!("linux.namespaces: {} path {}", ns.typ(), path.display());
                    let fd = open(path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
                        .map_err(|e| Error::config(format_args!("{}: {e}", what())))?;
                    match ns_type(&fd) {
                        Ok(t) if t == f => {}
                        Ok(_) | Err(_) => {
                            return Err(Error::config(format_args!(
                                "{}: not a {} namespace",
                                what(),
                                ns.typ()
                            )))
                        }
                    }
                    plan.join.push((f, fd, path.clone()));
                }
                _ => plan.new |= f,
            }
        }
        plan.join
            .sort_by_key(|(f, _, _)| *f != CloneFlags::CLONE_NEWUSER);
        let maps = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty());
        if plan.new.contains(CloneFlags::CLONE_NEWUSER) && !maps {
            return Err(Error::config(
                "linux.uidMappings: required with a new user namespace",
            ));
        }
        if !seen.contains(CloneFlags::CLONE_NEWUSER) && maps {
            return Err(Error::config(
                "linux.uidMappings: requires a user namespace",
            ));
        }
        if linux.time_offsets().is_some() && !plan.new.contains(CLONE_NEWTIME) {
            return Err(Error::config(
                "linux.timeOffsets: requires a new time namespace",
            ));
        }
        Ok(plan)
    }

    /// Join every namespace of a running process that differs from ours (for `exec`).
    pub fn of_process(pid: nix::unistd::Pid) -> Result<Plan> {
        use nix::sys::stat::fstat;
        let kinds = [
            ("user", CloneFlags::CLONE_NEWUSER),
            ("mnt", CloneFlags::CLONE_NEWNS),
            ("pid", CloneFlags::CLONE_NEWPID),
            ("net", CloneFlags::CLONE_NEWNET),
            ("ipc", CloneFlags::CLONE_NEWIPC),
            ("uts", CloneFlags::CLONE_NEWUTS),
            ("cgroup", CloneFlags::CLONE_NEWCGROUP),
            ("time", CLONE_NEWTIME),
        ];
        let mut join = Vec::new();
        for (name, f) in kinds {
            let theirs = PathBuf::from(format!("/proc/{pid}/ns/{name}"));
            let ours = format!("/proc/self/ns/{name}");
            let open_ns = |p: &Path| open(p, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty());
            let fd = match open_ns(&theirs) {
                // A kernel without this namespace kind.
                Err(nix::errno::Errno::ENOENT) => continue,
                r => r.ctx(|| format!("open {}", theirs.display()))?,
            };
            let same = match open_ns(Path::new(&ours)) {
                Ok(mine) => {
                    let (a, b) = (
                        fstat(&fd).ctx(|| format!("stat {}", theirs.display()))?,
                        fstat(&mine).ctx(|| format!("stat {ours}"))?,
                    );
                    (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)
                }
                Err(_) => false,
            };
            if !same {
                join.push((f, fd, theirs));
            }
        }
        Ok(Plan {
            new: CloneFlags::empty(),
            join,
        })
    }

    /// One clone with every new namespace is enough unless a namespace must be joined first,
    /// or time offsets must be written before any process enters the new time namespace.
    pub fn single_clone(&self) -> bool {
        self.join.is_empty() && !self.new.contains(CLONE_NEWTIME)
    }

    pub fn joins(&self, f: CloneFlags) -> bool {
        self.join.iter().any(|(j, _, _)| *j == f)
    }
}

/// NS_GET_NSTYPE: the CLONE_NEW* type of a namespace fd.
fn ns_type(fd: &OwnedFd) -> nix::Result<CloneFlags> {
    const NS_GET_NSTYPE: libc::c_ulong = 0xb703;
    // SAFETY: NS_GET_NSTYPE takes no argument and only reads the fd.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), NS_GET_NSTYPE) };
    nix::errno::Errno::result(r).map(CloneFlags::from_bits_retain)
}

/// Enter the joined namespaces, in the plan's order.
pub fn join(plan: &Plan) -> Result<()> {
    for (f, fd, path) in &plan.join {
        nix::sched::setns(fd, *f).ctx(|| format!("join namespace {}", path.display()))?;
    }
    Ok(())
}

fn map_text(maps: &[LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

/// Write the uid/gid maps of a process that just made a new user namespace.
///
/// Root (of the initial user namespace, or of the one the runtime runs in) writes them
/// directly. An unprivileged caller may only map its own id, in one line, and for gids only once
/// setgroups is denied (the kernel's rules); anything more goes through the setuid helpers
/// `newuidmap`/`newgidmap` (Debian package uidmap), which allow the ranges of /etc/subuid and
/// /etc/subgid. With setgroups denied the container cannot set additionalGids.
pub fn write_id_maps(pid: nix::unistd::Pid, linux: &Linux, procfs: BorrowedFd) -> Result<()> {
    write_maps(
        pid,
        linux.uid_mappings().as_deref().unwrap_or_default(),
        linux.gid_mappings().as_deref().unwrap_or_default(),
        procfs,
    )
}

fn write_maps(
    pid: nix::unistd::Pid,
    uid: &[LinuxIdMapping],
    gid: &[LinuxIdMapping],
    procfs: BorrowedFd,
) -> Result<()> {
    let root = nix::unistd::geteuid().is_root();
    for (field, file, own, helper, maps) in [
        (
            "linux.uidMappings",
            "uid_map",
            nix::unistd::geteuid().as_raw(),
            "newuidmap",
            uid,
        ),
        (
            "linux.gidMappings",
            "gid_map",
            nix::unistd::getegid().as_raw(),
            "newgidmap",
            gid,
        ),
    ] {
        let own_only = matches!(maps, [m] if m.host_id() == own && m.size() == 1);
        let write = |name: &str, text: &[u8]| {
            procfs::write(procfs, &format!("{pid}/{name}"), text)
                .map_err(|e| Error::Init(format!("{field}: {e}")))
        };
        if root {
            write(file, map_text(maps).as_bytes())?;
        } else if own_only {
            if file == "gid_map" {
                write("setgroups", b"deny")?;
            }
            write(file, map_text(maps).as_bytes())?;
        } else {
            run_map_helper(helper, pid, maps, field, own)?;
        }
    }
    Ok(())
}

/// A process parked in new namespaces (cloned with `flags`) so the runtime can open them. It
/// blocks on a pipe and exits on its EOF, when the holder is dropped, which also reaps it: no
/// process is left, even if the runtime dies.
pub struct Holder {
    pub pid: nix::unistd::Pid,
    pipe: Option<OwnedFd>,
}

impl Holder {
    pub fn spawn(flags: CloneFlags) -> Result<Holder> {
        let (rd, wr) = nix::unistd::pipe2(OFlag::O_CLOEXEC).ctx(|| "pipe")?;
        let Some(pid) =
            crate::syscall::clone_fork(flags).ctx(|| "clone a process into new namespaces")?
        else {
            drop(wr);
            let _ = nix::unistd::read(&rd, &mut [0u8]);
            // SAFETY: _exit ends this forked child at once, running nothing of the parent's.
            unsafe { libc::_exit(0) }
        };
        Ok(Holder {
            pid,
            pipe: Some(wr),
        })
    }

    /// An fd of its namespace `name` (`user`, `mnt`, ...).
    pub fn open(&self, name: &str, procfs: BorrowedFd) -> Result<OwnedFd> {
        let path = format!("{}/ns/{name}", self.pid);
        nix::fcntl::openat(
            procfs,
            path.as_str(),
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .ctx(|| format!("open /proc/{path}"))
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        drop(self.pipe.take());
        let _ = nix::sys::wait::waitpid(self.pid, None);
    }
}

/// An fd of a new user namespace with these maps and no process in it (for MOUNT_ATTR_IDMAP).
pub fn userns_with_maps(
    uid: &[LinuxIdMapping],
    gid: &[LinuxIdMapping],
    procfs: BorrowedFd,
) -> Result<OwnedFd> {
    let holder = Holder::spawn(CloneFlags::CLONE_NEWUSER)?;
    write_maps(holder.pid, uid, gid, procfs)?;
    holder.open("user", procfs)
}

/// `newuidmap PID ID HOSTID SIZE...` (or newgidmap) for an unprivileged caller's ranges.
fn run_map_helper(
    helper: &str,
    pid: nix::unistd::Pid,
    maps: &[LinuxIdMapping],
    field: &str,
    own: u32,
) -> Result<()> {
    let args = maps
        .iter()
        .flat_map(|m| [m.container_id(), m.host_id(), m.size()])
        .map(|n| n.to_string());
    let out = std::process::Command::new(helper)
        .arg(pid.to_string())
        .args(args)
        .stdin(std::process::Stdio::null())
        .output();
    let why = match out {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => format!(
            "{helper} not found: an unprivileged user can map only its own id ({own}) without \
             it (install the uidmap package and give the user ranges in /etc/subuid and \
             /etc/subgid)"
        ),
        Err(e) => format!("run {helper}: {}", crate::error::io_text(&e)),
        Ok(o) if o.status.success() => return Ok(()),
        Ok(o) => format!(
            "{helper} failed ({}): {}",
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        ),
    };
    Err(Error::Init(format!("{field}: {why}")))
}

/// Whether this process is in the initial user namespace: its uid map is the identity over
/// every id (as runc's RunningInUserNS reads /proc/self/uid_map).
pub fn in_initial_user_ns() -> bool {
    match std::fs::read_to_string("/proc/self/uid_map") {
        Ok(text) => {
            let fields: Vec<&str> = text.split_whitespace().collect();
            fields == ["0", "0", "4294967295"]
        }
        // No user namespaces in this kernel.
        Err(_) => true,
    }
}

/// Write linux.timeOffsets for the time namespace this process just unshared (before any
/// process enters it).
pub fn write_time_offsets(linux: &Linux, procfs: BorrowedFd) -> Result<()> {
    let Some(offsets) = linux.time_offsets() else {
        return Ok(());
    };
    let mut text = String::new();
    for (clock, o) in offsets {
        if clock != "monotonic" && clock != "boottime" {
            return Err(Error::config(format_args!(
                "linux.timeOffsets: unknown clock {clock:?}"
            )));
        }
        text += &format!(
            "{clock} {} {}\n",
            o.secs().unwrap_or(0),
            o.nanosecs().unwrap_or(0)
        );
    }
    procfs::write(procfs, "self/timens_offsets", text.as_bytes())
}
