//! linux.resources on the cgroup v2 (unified) hierarchy, mapped as runc maps them; also used on
//! a hybrid host for what only the unified hierarchy carries there (hugetlb, `unified` keys).

use std::collections::HashMap;
use std::path::Path;

use oci_spec::runtime::{LinuxDevice, LinuxHugepageLimit, LinuxResources};

use super::convert::{
    blkio_to_io_weight, cpu_max, io_max_line, pids_max, rdma_line, shares_to_weight, swap_to_v2,
    v2_limit,
};
use super::validate::throttles;
use super::{devices, for_field, fs, set, unsupported};
use crate::cgroups::{bpf, layout};
use crate::{Error, Result};

pub(super) fn apply(dir: &Path, r: &LinuxResources, created: &[LinuxDevice]) -> Result<()> {
    devices(dir, r, created)?;
    limits(dir, r)
}

/// Everything but the device rules (which `update` leaves alone, as runc's does).
pub(super) fn limits(dir: &Path, r: &LinuxResources) -> Result<()> {
    enable(dir, &controllers(r))?;
    if let Some(m) = r.memory() {
        if let Some(swap) = swap_to_v2(m.swap(), m.limit())? {
            set("memory.swap", dir, "memory.swap.max", v2_limit(swap))?;
        }
        if let Some(l) = m.limit() {
            set("memory.limit", dir, "memory.max", v2_limit(l))?;
        }
        if let Some(l) = m.reservation() {
            set("memory.reservation", dir, "memory.low", v2_limit(l))?;
        }
        if m.swappiness().is_some() || m.disable_oom_killer() == Some(true) {
            tracing::warn!("linux.resources.memory: swappiness and disableOOMKiller have no cgroup v2 equivalent; ignored");
        }
    }
    if let Some(c) = r.cpu() {
        if c.realtime_runtime().is_some() || c.realtime_period().is_some() {
            return Err(unsupported(
                "cpu.realtimeRuntime",
                "realtime scheduling limits do not exist on cgroup v2",
            ));
        }
        if let Some(w) = c.shares().map(shares_to_weight).filter(|w| *w != 0) {
            set("cpu.shares", dir, "cpu.weight", w)?;
        }
        if let Some(max) = cpu_max(c.quota(), c.period()) {
            set("cpu.quota", dir, "cpu.max", max)?;
        }
        if let Some(b) = c.burst() {
            set("cpu.burst", dir, "cpu.max.burst", b)?;
        }
        if let Some(i) = c.idle() {
            set("cpu.idle", dir, "cpu.idle", i)?;
        }
        // Empty means "not set", as in runc.
        for (field, file, list) in [
            ("cpu.cpus", "cpuset.cpus", c.cpus()),
            ("cpu.mems", "cpuset.mems", c.mems()),
        ] {
            if let Some(list) = list.as_deref().filter(|l| !l.is_empty()) {
                set(field, dir, file, list)?;
            }
        }
    }
    if let Some(p) = r.pids() {
        set("pids.limit", dir, "pids.max", pids_max(p.limit()))?;
    }
    if let Some(b) = r.block_io() {
        let bfq = dir.join("io.bfq.weight").exists();
        // BFQ takes blkio weights as they are; the default io.weight has its own range.
        match b.weight().filter(|w| *w != 0) {
            Some(w) if bfq => set("blockIO.weight", dir, "io.bfq.weight", w)?,
            Some(w) => set("blockIO.weight", dir, "io.weight", blkio_to_io_weight(w))?,
            None => {}
        }
        for (i, d) in b.weight_device().iter().flatten().enumerate() {
            if let Some(w) = d.weight() {
                let line = format!("{}:{} {w}", d.major(), d.minor());
                set(
                    &format!("blockIO.weightDevice[{i}]"),
                    dir,
                    "io.bfq.weight",
                    line,
                )?;
            }
        }
        for ((name, list), key) in throttles(b)
            .into_iter()
            .zip(["rbps", "wbps", "riops", "wiops"])
        {
            for (i, d) in list.iter().enumerate() {
                let line = io_max_line(d.major(), d.minor(), key, d.rate());
                set(&format!("blockIO.{name}[{i}]"), dir, "io.max", line)?;
            }
        }
    }
    hugetlb(
        dir,
        r.hugepage_limits().as_deref().unwrap_or_default(),
        "max",
    )?;
    for (dev, limit) in r.rdma().iter().flatten() {
        set(
            &format!("rdma.{dev}"),
            dir,
            "rdma.max",
            rdma_line(dev, limit.hca_handles(), limit.hca_objects()),
        )?;
    }
    // Refused rather than dropped as runc does: a class id other rules rely on would be missing.
    if let Some(n) = r.network() {
        if n.class_id().is_some() {
            return Err(unsupported(
                "network.classID",
                "cgroup v2 has no net_cls controller",
            ));
        }
        if n.priorities().as_ref().is_some_and(|p| !p.is_empty()) {
            return Err(unsupported(
                "network.priorities",
                "cgroup v2 has no net_prio controller",
            ));
        }
    }
    unified(dir, r.unified().as_ref())
}

/// linux.resources.devices with the default rules: v2 has no devices controller, the rules are
/// enforced by an eBPF program attached to the cgroup (replacing the one of an earlier apply).
/// The kernel lets only the initial user namespace attach one: inside another, a failure is a
/// warning, as in runc and crun (such a container cannot mknod: it can only open the device
/// nodes bound into it, as their owners and modes allow).
fn devices(dir: &Path, r: &LinuxResources, created: &[LinuxDevice]) -> Result<()> {
    let rules = devices::rules(r.devices().as_deref().unwrap_or_default(), created)?;
    let program = devices::Policy::new(&rules)?.program();
    match bpf::set_device_filter(dir, &program) {
        Err(e) if in_user_namespace() => {
            tracing::warn!("linux.resources.devices: not enforced in a user namespace: {e}");
            Ok(())
        }
        r => r.map_err(|e| for_field("devices", e)),
    }
}

/// Whether we run in a user namespace other than the initial one, whose uid_map maps every id.
fn in_user_namespace() -> bool {
    std::fs::read_to_string("/proc/self/uid_map")
        .is_ok_and(|m| m.split_whitespace().collect::<Vec<_>>() != ["0", "0", "4294967295"])
}

/// hugetlb.<size>.max (and .rsvd.max where the kernel has it, so reservations are capped too).
pub(super) fn hugetlb(dir: &Path, limits: &[LinuxHugepageLimit], suffix: &str) -> Result<()> {
    for (i, h) in limits.iter().enumerate() {
        let field = format!("hugepageLimits[{i}]");
        let value = v2_limit(h.limit());
        set(
            &field,
            dir,
            &format!("hugetlb.{}.{suffix}", h.page_size()),
            &value,
        )?;
        let rsvd = format!("hugetlb.{}.rsvd.{suffix}", h.page_size());
        if dir.join(&rsvd).exists() {
            set(&field, dir, &rsvd, &value)?;
        }
    }
    Ok(())
}

/// linux.resources.unified: each value written as is, once the file is known to exist (a
/// missing file would otherwise read as a plain ENOENT on write).
pub(super) fn unified(dir: &Path, map: Option<&HashMap<String, String>>) -> Result<()> {
    let mut wanted: Vec<String> = map
        .into_iter()
        .flatten()
        .filter_map(|(k, _)| Some(k.split_once('.')?.0.to_string()))
        .collect();
    wanted.sort();
    wanted.dedup();
    enable(dir, &wanted)?;
    for (key, value) in map.into_iter().flatten() {
        let field = format!("unified.{key}");
        if !dir.join(key).exists() {
            // What the kernel offers here (a hybrid host's cgroup2 hierarchy has hugetlb at most).
            let here = fs::read(&dir.join("cgroup.controllers")).unwrap_or_default();
            let here = if here.trim().is_empty() {
                "none"
            } else {
                here.trim()
            };
            return Err(unsupported(
                &field,
                format!(
                    "{} does not exist (controllers in this cgroup: {here})",
                    dir.join(key).display()
                ),
            ));
        }
        set(&field, dir, key, value)?;
    }
    Ok(())
}

/// The controllers the config needs, by the files it will write.
pub(super) fn controllers(r: &LinuxResources) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut need = |c: &str| {
        if !out.iter().any(|o| o == c) {
            out.push(c.into());
        }
    };
    if r.memory().is_some() {
        need("memory");
    }
    if let Some(c) = r.cpu() {
        if c.shares().is_some()
            || c.quota().is_some()
            || c.period().is_some()
            || c.burst().is_some()
            || c.idle().is_some()
        {
            need("cpu");
        }
        if c.cpus().is_some() || c.mems().is_some() {
            need("cpuset");
        }
    }
    if r.pids().is_some() {
        need("pids");
    }
    if r.block_io().is_some() {
        need("io");
    }
    if r.hugepage_limits().as_ref().is_some_and(|l| !l.is_empty()) {
        need("hugetlb");
    }
    if r.rdma().as_ref().is_some_and(|m| !m.is_empty()) {
        need("rdma");
    }
    out
}

/// Enable `wanted` in cgroup.subtree_control of every ancestor of `dir` below the hierarchy's
/// root, top down, so that their files appear in `dir`. A controller the ancestor does not
/// offer is left out (the write of its file then fails, naming it).
///
/// The caller's own cgroup and its descendants are never touched: a non-root cgroup with
/// processes cannot enable controllers for its children, and those cgroups belong to whoever
/// runs us. The exception is a caller in the root cgroup (as on a hybrid host where nothing
/// manages cgroup2): every cgroup is below it, and the root is not bound by the
/// no-internal-processes rule, so the path from the root down to `dir` is written.
pub(super) fn enable(dir: &Path, wanted: &[String]) -> Result<()> {
    if wanted.is_empty() {
        return Ok(());
    }
    let h = layout::detect()?
        .into_iter()
        .find(|h| h.controllers.is_empty())
        .ok_or_else(|| Error::sys("find the cgroup2 hierarchy", nix::Error::ENOENT))?;
    let own = h.own_dir()?;
    let own = (own != h.mountpoint).then_some(own);
    let Ok(below) = dir.strip_prefix(&h.mountpoint) else {
        return Ok(());
    };
    let mut parent = h.mountpoint.clone();
    for name in below {
        if own.as_ref().is_some_and(|o| parent.starts_with(o)) {
            break;
        }
        let offered = fs::read(&parent.join("cgroup.controllers"))?;
        let enabled = fs::read(&parent.join("cgroup.subtree_control"))?;
        let has = |list: &str, c: &str| list.split_whitespace().any(|x| x == c);
        let add: Vec<String> = wanted
            .iter()
            .filter(|c| has(&offered, c) && !has(&enabled, c))
            .map(|c| format!("+{c}"))
            .collect();
        if !add.is_empty() {
            fs::write(&parent.join("cgroup.subtree_control"), &add.join(" "))?;
        }
        parent.push(name);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controllers_follow_the_fields() {
        let r: LinuxResources = serde_json::from_str(
            r#"{"memory":{"limit":1},"cpu":{"cpus":"0"},"hugepageLimits":[{"pageSize":"2MB","limit":1}],"pids":{"limit":3}}"#,
        )
        .unwrap();
        assert_eq!(controllers(&r), ["memory", "cpuset", "pids", "hugetlb"]);
    }
}
