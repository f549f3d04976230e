//! process.capabilities: the five capability sets. Sets that are absent are empty, so nothing is
//! granted that the config did not ask for (inheritable in particular, CVE-2022-29162).

use std::collections::HashSet;
use std::str::FromStr;

use caps::{CapSet, Capability, CapsHashSet};
use oci_spec::runtime::LinuxCapabilities;

use crate::{Error, Result};

fn convert(set: &Option<oci_spec::runtime::Capabilities>) -> Result<CapsHashSet> {
    set.iter()
        .flatten()
        .map(|c| {
            let name = format!("CAP_{c}");
            Capability::from_str(&name)
                .map_err(|_| Error::config(format_args!("process.capabilities: unknown capability {name}")))
        })
        .collect()
}

fn caps_err(what: &str, e: caps::errors::CapsError) -> Error {
    Error::Init(format!("process.capabilities: {what}: {e}"))
}

/// Drop from the bounding set what the config leaves out; done while we still hold CAP_SETPCAP.
pub fn drop_bounding(caps: Option<&LinuxCapabilities>) -> Result<()> {
    let keep = convert(&caps.and_then(|c| c.bounding().clone()))?;
    for cap in caps::all() {
        if !keep.contains(&cap) && caps::has_cap(None, CapSet::Bounding, cap).unwrap_or(false) {
            caps::drop(None, CapSet::Bounding, cap).map_err(|e| caps_err("drop bounding", e))?;
        }
    }
    Ok(())
}

/// Set effective, permitted, inheritable and ambient, after the switch to the container's user.
pub fn apply(caps: Option<&LinuxCapabilities>) -> Result<()> {
    let get = |f: fn(&LinuxCapabilities) -> &Option<oci_spec::runtime::Capabilities>| {
        convert(caps.map(f).unwrap_or(&None))
    };
    let effective = get(|c| c.effective())?;
    let permitted = get(|c| c.permitted())?;
    let inheritable = get(|c| c.inheritable())?;
    let ambient = get(|c| c.ambient())?;
    // Effective must stay within permitted at every step, so it goes first when shrinking.
    let set = |s, v: &HashSet<Capability>, what| caps::set(None, s, v).map_err(|e| caps_err(what, e));
    set(CapSet::Effective, &effective.intersection(&permitted).copied().collect(), "set effective")?;
    set(CapSet::Permitted, &permitted, "set permitted")?;
    set(CapSet::Effective, &effective, "set effective")?;
    set(CapSet::Inheritable, &inheritable, "set inheritable")?;
    caps::clear(None, CapSet::Ambient).map_err(|e| caps_err("clear ambient", e))?;
    for cap in ambient {
        // Raising an ambient capability not in permitted and inheritable fails; runc ignores it.
        if let Err(e) = caps::raise(None, CapSet::Ambient, cap) {
            tracing::warn!("process.capabilities: raise ambient {cap}: {e}");
        }
    }
    Ok(())
}
