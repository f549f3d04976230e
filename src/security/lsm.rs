//! Linux security modules: `process.apparmorProfile`, `process.selinuxLabel` and
//! `linux.mountLabel`. A label the host cannot enforce is an error, as in runc: dropping it would
//! run the container unconfined. The exec label is written through the runtime's own procfs,
//! opened before the process enters the container and checked to be procfs (CVE-2019-16884,
//! CVE-2023-28642).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::fcntl::{open, openat, OFlag};
use nix::sys::stat::Mode;
use nix::sys::statfs::{fstatfs, statfs, PROC_SUPER_MAGIC, SELINUX_MAGIC};
use oci_spec::runtime::{Linux, Process};

use crate::{Context, Error, Result};

fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled").is_ok_and(|s| s.starts_with('Y'))
}

fn selinux_enabled() -> bool {
    statfs("/sys/fs/selinux").is_ok_and(|s| s.filesystem_type() == SELINUX_MAGIC)
}

fn apparmor_profile(process: &Process) -> Option<&str> {
    process.apparmor_profile().as_deref().filter(|p| !p.is_empty())
}

fn selinux_label(process: &Process) -> Option<&str> {
    process.selinux_label().as_deref().filter(|l| !l.is_empty())
}

/// The labels of a process (`linux` for the init's config, None for an `exec`'d process).
pub fn validate(process: &Process, linux: Option<&Linux>) -> Result<()> {
    if let Some(p) = apparmor_profile(process).filter(|_| !apparmor_enabled()) {
        return Err(Error::config(format_args!("process.apparmorProfile {p:?}: AppArmor is not enabled on this host")));
    }
    if let Some(l) = selinux_label(process).filter(|_| !selinux_enabled()) {
        return Err(Error::config(format_args!("process.selinuxLabel {l:?}: SELinux is not enabled on this host")));
    }
    if let Some(l) = linux.and_then(|l| l.mount_label().as_deref()).filter(|l| !l.is_empty()) {
        let why = if selinux_enabled() { "mount labels are not supported yet" } else { "SELinux is not enabled on this host" };
        return Err(Error::config(format_args!("linux.mountLabel {l:?}: {why}")));
    }
    Ok(())
}

/// The runtime's /proc, opened before the process is created, when it has a label to set.
pub fn open_procfs(process: &Process) -> Result<Option<OwnedFd>> {
    if apparmor_profile(process).is_none() && selinux_label(process).is_none() {
        return Ok(None);
    }
    let fd = open("/proc", OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty()).ctx(|| "open /proc")?;
    verify_procfs(fd.as_fd(), "/proc")?;
    Ok(Some(fd))
}

fn verify_procfs(fd: BorrowedFd, what: &str) -> Result<()> {
    let fs = fstatfs(fd).ctx(|| format!("statfs {what}"))?;
    if fs.filesystem_type() != PROC_SUPER_MAGIC {
        return Err(Error::Init(format!("{what}: not on procfs (type {:#x})", fs.filesystem_type().0)));
    }
    Ok(())
}

/// Set the labels the next execve takes on, in the calling process.
pub fn apply(process: &Process, procfs: Option<BorrowedFd>) -> Result<()> {
    let Some(procfs) = procfs else { return Ok(()) };
    if let Some(profile) = apparmor_profile(process) {
        // attr/apparmor/exec since Linux 5.8 (stackable LSMs); attr/exec before.
        let write = |attr| write_attr(procfs, attr, format!("exec {profile}").as_bytes());
        write("apparmor/exec").or_else(|e| if e.errno() == Some(nix::Error::ENOENT) { write("exec") } else { Err(e) })
            .map_err(|e| Error::Init(format!("process.apparmorProfile {profile:?}: {e}")))?;
    }
    if let Some(label) = selinux_label(process) {
        write_attr(procfs, "exec", label.as_bytes()).map_err(|e| Error::Init(format!("process.selinuxLabel {label:?}: {e}")))?;
    }
    Ok(())
}

fn write_attr(procfs: BorrowedFd, attr: &str, value: &[u8]) -> Result<()> {
    let path = format!("thread-self/attr/{attr}");
    let fd = openat(procfs, path.as_str(), OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC, Mode::empty())
        .ctx(|| format!("open /proc/{path}"))?;
    verify_procfs(fd.as_fd(), &path)?;
    nix::unistd::write(&fd, value).map(drop).ctx(|| format!("write /proc/{path}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn procfs_is_verified() {
        let proc_file = open("/proc/self/stat", OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty()).unwrap();
        verify_procfs(proc_file.as_fd(), "/proc/self/stat").unwrap();
        let other = open("/", OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty()).unwrap();
        let e = verify_procfs(other.as_fd(), "/").unwrap_err().to_string();
        assert!(e.contains("not on procfs"), "{e}");
    }

    #[test]
    fn labels_need_the_lsm() {
        let mut p = Process::default();
        p.set_apparmor_profile(Some(String::new()));
        assert!(validate(&p, None).is_ok(), "an empty profile is no profile");
        p.set_apparmor_profile(Some("berth-test".into()));
        assert_eq!(validate(&p, None).is_ok(), apparmor_enabled());
        p.set_apparmor_profile(None);
        p.set_selinux_label(Some("system_u:system_r:container_t:s0".into()));
        let r = validate(&p, None);
        assert_eq!(r.is_ok(), selinux_enabled());
        if let Err(e) = r {
            assert!(e.to_string().contains("process.selinuxLabel"), "{e}");
        }
    }
}
