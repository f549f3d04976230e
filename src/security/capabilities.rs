//! process.capabilities: the five capability sets. Sets that are absent are empty, so nothing is
//! granted that the config did not ask for (inheritable in particular, CVE-2022-29162).

use std::str::FromStr;

use caps::{CapSet, Capability, CapsHashSet};
use oci_spec::runtime::LinuxCapabilities;

use crate::{Context, Error, Result};

fn convert(set: &Option<oci_spec::runtime::Capabilities>) -> Result<CapsHashSet> {
    set.iter()
        .flatten()
        .map(|c| {
            let name = format!("CAP_{c}");
            Capability::from_str(&name).map_err(|_| {
                Error::config(format_args!(
                    "process.capabilities: unknown capability {name}"
                ))
            })
        })
        .collect()
}

fn caps_err(what: &str, e: caps::errors::CapsError) -> Error {
    Error::Init(format!("process.capabilities: {what}: {e}"))
}

/// Drop from the bounding set what the config leaves out; done while we still hold CAP_SETPCAP.
pub fn drop_bounding(caps: Option<&LinuxCapabilities>) -> Result<()> {
    let keep = convert(&caps.and_then(|c| c.bounding().clone()))?;
    // One PR_CAPBSET_DROP per capability, without reading it first: dropping one already
    // absent succeeds, and EINVAL means this kernel predates it (caps::all() knows newer ones).
    for cap in caps::all().into_iter().filter(|c| !keep.contains(c)) {
        // SAFETY: prctl with integer arguments only; no memory is passed.
        let ret = unsafe {
            libc::prctl(
                libc::PR_CAPBSET_DROP,
                libc::c_ulong::from(cap.index()),
                0,
                0,
                0,
            )
        };
        match nix::errno::Errno::result(ret) {
            Ok(_) | Err(nix::errno::Errno::EINVAL) => {}
            Err(e) => {
                return Err(Error::Init(format!(
                    "process.capabilities: drop {cap} from the bounding set: {e}"
                )))
            }
        }
    }
    Ok(())
}

/// The effective, permitted and inheritable sets, as bitmasks.
#[derive(Clone, Copy)]
pub struct Sets {
    effective: u64,
    permitted: u64,
    inheritable: u64,
}

impl Sets {
    /// All three with one capset(2): no step in between can be refused for effective ⊄ permitted.
    pub fn set(&self) -> Result<()> {
        // _LINUX_CAPABILITY_VERSION_3: two 32-bit words per set.
        #[repr(C)]
        struct Header {
            version: u32,
            pid: i32,
        }
        #[repr(C)]
        struct Data {
            effective: u32,
            permitted: u32,
            inheritable: u32,
        }
        let header = Header {
            version: 0x2008_0522,
            pid: 0,
        };
        let word = |m: u64, w: u32| (m >> (32 * w)) as u32;
        let data = [0, 1].map(|w| Data {
            effective: word(self.effective, w),
            permitted: word(self.permitted, w),
            inheritable: word(self.inheritable, w),
        });
        // SAFETY: a v3 header and the two data structs it calls for, live for the call.
        let r = unsafe { libc::syscall(libc::SYS_capset, &header, data.as_ptr()) };
        nix::errno::Errno::result(r)
            .map(drop)
            .ctx(|| "process.capabilities: capset")
    }
}

/// Set effective, permitted, inheritable and ambient, after the switch to the container's user.
/// With `keep`, CAP_SYS_ADMIN stays in effective and permitted on top of the config (to load a
/// seccomp filter without no_new_privs); the returned config's [`Sets`] then drop it.
pub fn apply(caps: Option<&LinuxCapabilities>, keep_sys_admin: bool) -> Result<Sets> {
    let get = |f: fn(&LinuxCapabilities) -> &Option<oci_spec::runtime::Capabilities>| {
        convert(caps.map(f).unwrap_or(&None))
    };
    let mask = |s: &CapsHashSet| s.iter().fold(0, |m, c| m | c.bitmask());
    let sets = Sets {
        effective: mask(&get(|c| c.effective())?),
        permitted: mask(&get(|c| c.permitted())?),
        inheritable: mask(&get(|c| c.inheritable())?),
    };
    let ambient = get(|c| c.ambient())?;
    let admin = Capability::CAP_SYS_ADMIN.bitmask();
    // Without CAP_SYS_ADMIN to keep, the load fails later with its own error (EACCES).
    let keep = keep_sys_admin
        && caps::has_cap(None, CapSet::Permitted, Capability::CAP_SYS_ADMIN).unwrap_or(false);
    let now = if keep {
        Sets {
            effective: sets.effective | admin,
            permitted: sets.permitted | admin,
            ..sets
        }
    } else {
        sets
    };
    now.set()?;
    caps::clear(None, CapSet::Ambient).map_err(|e| caps_err("clear ambient", e))?;
    for cap in ambient {
        // Raising an ambient capability not in permitted and inheritable fails; runc ignores it.
        if let Err(e) = caps::raise(None, CapSet::Ambient, cap) {
            tracing::warn!("process.capabilities: raise ambient {cap}: {e}");
        }
    }
    Ok(sets)
}
