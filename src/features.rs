//! `features`: the runtime-spec features document. It reports only what berth really
//! supports; lists come from the code that implements them, so they cannot drift.

use serde_json::{json, Value};

use crate::hooks::HookKind;

/// The spec versions we accept in config.json (see [`crate::spec::load`]).
const OCI_VERSION_MIN: &str = "1.0.0";

pub fn features() -> Value {
    let hooks: Vec<&str> = HookKind::ALL.iter().map(|k| k.name()).collect();
    let mut caps: Vec<String> = caps::all().iter().map(|c| c.to_string()).collect();
    caps.sort();
    json!({
        "ociVersionMin": OCI_VERSION_MIN,
        "ociVersionMax": crate::state::OCI_VERSION,
        "hooks": hooks,
        "mountOptions": crate::rootfs::mount_options().collect::<Vec<_>>(),
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": caps,
            "cgroup": { "v1": true, "v2": true, "systemd": true, "systemdUser": false, "rdma": false },
            "seccomp": crate::security::seccomp::features(),
            // Per the spec, "enabled" says whether the runtime supports it, not the host: a label
            // the host cannot enforce is refused at create (see security::lsm).
            "apparmor": { "enabled": true },
            "selinux": { "enabled": true },
            // Only refused with a clear error (see intel_rdt).
            "intelRdt": { "enabled": false },
            "memoryPolicy": crate::process::mempolicy::features(),
            "mountExtensions": { "idmap": { "enabled": crate::rootfs::idmap_supported() } },
            "netDevices": { "enabled": true }
        },
        "annotations": { "io.github.berth.version": env!("CARGO_PKG_VERSION") },
        "potentiallyUnsafeConfigAnnotations": []
    })
}
