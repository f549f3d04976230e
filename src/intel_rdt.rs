//! `linux.intelRdt`: berth does not drive resctrl. A config asking for it fails at once, saying
//! whether the host could have honoured it (resctrl mounted at /sys/fs/resctrl) at all.

use nix::sys::statfs::{statfs, FsType};
use oci_spec::runtime::Linux;

use crate::{Error, Result};

/// RDTGROUP_SUPER_MAGIC of linux/magic.h.
const RESCTRL_MAGIC: FsType = FsType(0x7655821);

fn resctrl_mounted() -> bool {
    statfs("/sys/fs/resctrl").is_ok_and(|s| s.filesystem_type() == RESCTRL_MAGIC)
}

/// Why Intel RDT cannot be used (by config.json or by `update`'s schema flags).
pub fn unavailable() -> &'static str {
    if resctrl_mounted() {
        "not supported by berth yet"
    } else {
        "the host has no resctrl filesystem mounted"
    }
}

pub fn validate(linux: &Linux) -> Result<()> {
    if linux.intel_rdt().is_none() {
        return Ok(());
    }
    Err(Error::config(format_args!(
        "linux.intelRdt: {}",
        unavailable()
    )))
}
