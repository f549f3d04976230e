//! Linux security modules: `process.apparmorProfile`, `process.selinuxLabel` and
//! `linux.mountLabel`. A label the host cannot enforce is an error, as in runc: dropping it would
//! run the container unconfined. The exec label is written through the runtime's own procfs
//! ([`crate::procfs`]), never through the container's /proc (CVE-2019-16884, CVE-2023-28642,
//! CVE-2025-52881).

use std::os::fd::BorrowedFd;

use nix::sys::statfs::{statfs, SELINUX_MAGIC};
use oci_spec::runtime::{Linux, Process};

use crate::{procfs, Error, Result};

fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.starts_with('Y'))
}

fn selinux_enabled() -> bool {
    statfs("/sys/fs/selinux").is_ok_and(|s| s.filesystem_type() == SELINUX_MAGIC)
}

fn apparmor_profile(process: &Process) -> Option<&str> {
    process
        .apparmor_profile()
        .as_deref()
        .filter(|p| !p.is_empty())
}

fn selinux_label(process: &Process) -> Option<&str> {
    process.selinux_label().as_deref().filter(|l| !l.is_empty())
}

/// The labels of a process (`linux` for the init's config, None for an `exec`'d process).
pub fn validate(process: &Process, linux: Option<&Linux>) -> Result<()> {
    if let Some(p) = apparmor_profile(process).filter(|_| !apparmor_enabled()) {
        return Err(Error::config(format_args!(
            "process.apparmorProfile {p:?}: AppArmor is not enabled on this host"
        )));
    }
    if let Some(l) = selinux_label(process).filter(|_| !selinux_enabled()) {
        return Err(Error::config(format_args!(
            "process.selinuxLabel {l:?}: SELinux is not enabled on this host"
        )));
    }
    // Without SELinux, runc still adds context= and the kernel refuses the mount (EINVAL, the
    // error naming the mount's data); crun drops the label. Refusing at once, naming the field,
    // keeps runc's outcome with a clear error. Engines set no mount label on such hosts.
    if let Some(l) = linux.and_then(mount_label) {
        if l.contains('"') {
            return Err(Error::config(format_args!(
                "linux.mountLabel {l:?}: must not contain '\"' (it goes in context=\"...\")"
            )));
        }
        if !selinux_enabled() {
            return Err(Error::config(format_args!(
                "linux.mountLabel {l:?}: SELinux is not enabled on this host"
            )));
        }
    }
    Ok(())
}

/// linux.mountLabel (validated: SELinux is enabled), for [`crate::rootfs`] to apply.
pub fn mount_label(linux: &Linux) -> Option<&str> {
    linux.mount_label().as_deref().filter(|l| !l.is_empty())
}

/// Whether the process has a label to set: then [`apply`] needs the runtime's procfs.
pub fn has_labels(process: &Process) -> bool {
    apparmor_profile(process).is_some() || selinux_label(process).is_some()
}

/// With an SELinux label, the session keyring the init is about to make gets that label too, as
/// in runc (a policy lets the container reach its own keyring). execve resets the
/// key-creation label, so nothing is restored afterwards.
pub fn set_key_label(process: &Process, procfs: BorrowedFd) -> Result<()> {
    let Some(label) = selinux_label(process) else {
        return Ok(());
    };
    procfs::write(procfs, "thread-self/attr/keycreate", label.as_bytes())
        .map_err(|e| Error::Init(format!("process.selinuxLabel {label:?}: {e}")))
}

/// Set the labels the next execve takes on, in the calling process, through `procfs` (see
/// [`crate::procfs`]; present when [`has_labels`]).
pub fn apply(process: &Process, procfs: Option<BorrowedFd>) -> Result<()> {
    if !has_labels(process) {
        return Ok(());
    }
    let procfs = procfs
        .ok_or_else(|| Error::Init("process labels: no procfs to write them through".into()))?;
    let attr = |name: &str, value: &[u8]| {
        procfs::write(procfs, &format!("thread-self/attr/{name}"), value)
    };
    if let Some(profile) = apparmor_profile(process) {
        // attr/apparmor/exec since Linux 5.8 (stackable LSMs); attr/exec before.
        let value = format!("exec {profile}");
        attr("apparmor/exec", value.as_bytes())
            .or_else(|e| {
                if e.errno() == Some(nix::Error::ENOENT) {
                    attr("exec", value.as_bytes())
                } else {
                    Err(e)
                }
            })
            .map_err(|e| Error::Init(format!("process.apparmorProfile {profile:?}: {e}")))?;
    }
    if let Some(label) = selinux_label(process) {
        attr("exec", label.as_bytes())
            .map_err(|e| Error::Init(format!("process.selinuxLabel {label:?}: {e}")))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_label_needs_selinux() {
        let mut linux = Linux::default();
        linux.set_mount_label(Some(String::new()));
        assert!(
            validate(&Process::default(), Some(&linux)).is_ok(),
            "an empty label is no label"
        );
        linux.set_mount_label(Some("system_u:object_r:container_file_t:s0:c1,c2".into()));
        assert_eq!(
            validate(&Process::default(), Some(&linux)).is_ok(),
            selinux_enabled()
        );
        linux.set_mount_label(Some("a\",b".into()));
        let e = validate(&Process::default(), Some(&linux))
            .unwrap_err()
            .to_string();
        assert!(e.contains("linux.mountLabel"), "{e}");
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
