//! `linux.personality`: the execution domain of the init (personality(2)); like runc, the init
//! only, `exec`'d processes keep the runtime's.

use oci_spec::runtime::{Linux, LinuxPersonalityDomain};

use crate::{Context, Error, Result};

/// The spec defines no flags yet: refuse any rather than ignore what we cannot honour.
pub fn validate(linux: &Linux) -> Result<()> {
    match linux
        .personality()
        .as_ref()
        .and_then(|p| p.flags().as_ref())
        .filter(|f| !f.is_empty())
    {
        Some(flags) => Err(Error::config(format_args!(
            "linux.personality.flags {flags:?}: no flags are supported"
        ))),
        None => Ok(()),
    }
}

pub fn apply(linux: &Linux) -> Result<()> {
    let Some(p) = linux.personality() else {
        return Ok(());
    };
    // PER_LINUX and PER_LINUX32 of linux/personality.h.
    let domain: libc::c_ulong = match p.domain() {
        LinuxPersonalityDomain::PerLinux => 0x0000,
        LinuxPersonalityDomain::PerLinux32 => 0x0008,
    };
    // SAFETY: personality takes an integer and touches no memory of ours.
    let r = unsafe { libc::personality(domain) };
    nix::errno::Errno::result(r)
        .map(drop)
        .ctx(|| format!("linux.personality: set {}", p.domain()))
}
