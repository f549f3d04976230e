//! linux.resources on cgroup v1 hierarchies (legacy and hybrid hosts), written as runc's fs
//! driver writes them. What a hybrid host has only in its cgroup2 hierarchy (hugetlb, the
//! `unified` keys) goes there.

use std::path::Path;

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxDevice, LinuxMemory, LinuxResources};

use super::convert::{pids_max, rdma_line};
use super::validate::throttles;
use super::{devices, fs, set, unsupported, v2};
use crate::cgroups::V1Dir;
use crate::{Error, Result};

pub(super) fn apply(
    hierarchies: &[V1Dir],
    unified: Option<&Path>,
    r: &LinuxResources,
    created: &[LinuxDevice],
) -> Result<()> {
    limits(hierarchies, unified, r)?;
    let has_rules = r.devices().as_ref().is_some_and(|d| !d.is_empty());
    match controller_dir(hierarchies, "devices", "devices") {
        Ok(d) => devices_rules(d, r, created),
        // Nothing can enforce device rules then: an error if the config asks for some, but not
        // for the runtime's own defaults alone.
        Err(e) if has_rules => Err(e),
        Err(e) => {
            tracing::debug!("{e}; default device rules not applied");
            Ok(())
        }
    }
}

/// The cgroup's directory of the hierarchy that has `controller`; `field` is what needs it.
fn controller_dir<'a>(hierarchies: &'a [V1Dir], controller: &str, field: &str) -> Result<&'a Path> {
    hierarchies
        .iter()
        .find(|h| h.has(controller))
        .map(|h| h.dir.as_path())
        .ok_or_else(|| {
            unsupported(
                field,
                format!("no {controller} cgroup hierarchy is mounted"),
            )
        })
}

/// Everything but the device rules (which `update` leaves alone, as runc's does).
pub(super) fn limits(
    hierarchies: &[V1Dir],
    unified: Option<&Path>,
    r: &LinuxResources,
) -> Result<()> {
    let dir = |controller: &str, field: &str| controller_dir(hierarchies, controller, field);
    if let Some(m) = r.memory() {
        memory(dir("memory", "memory")?, m)?;
    }
    if let Some(c) = r.cpu() {
        cpu(c, &dir)?;
    }
    if let Some(p) = r.pids() {
        set(
            "pids.limit",
            dir("pids", "pids")?,
            "pids.max",
            pids_max(p.limit()),
        )?;
    }
    if let Some(b) = r.block_io() {
        block_io(dir("blkio", "blockIO")?, b)?;
    }
    hugepages(r, &dir, unified)?;
    network(r, &dir)?;
    if let Some(rdma) = r.rdma().as_ref().filter(|m| !m.is_empty()) {
        let d = dir("rdma", "rdma")?;
        for (dev, l) in rdma {
            let line = rdma_line(dev, l.hca_handles(), l.hca_objects());
            set(&format!("rdma.{dev}"), d, "rdma.max", line)?;
        }
    }
    if let Some(map) = r.unified().as_ref().filter(|m| !m.is_empty()) {
        let d = unified.ok_or_else(|| unsupported("unified", "no cgroup2 hierarchy is mounted"))?;
        v2::unified(d, Some(map))?;
    }
    Ok(())
}

fn memory(dir: &Path, m: &LinuxMemory) -> Result<()> {
    const LIMIT: &str = "memory.limit_in_bytes";
    const MEMSW: &str = "memory.memsw.limit_in_bytes";
    let has_memsw = dir.join(MEMSW).exists();
    let mut swap = m.swap().filter(|s| *s != 0);
    if swap.is_some() && !has_memsw {
        tracing::debug!(
            "linux.resources.memory.swap: the kernel has no {MEMSW} (no swap accounting); ignored"
        );
        swap = None;
    }
    // Unlimited memory with no swap given means unlimited swap too, as in runc.
    if m.limit() == Some(-1) && swap.is_none() && has_memsw {
        swap = Some(-1);
    }
    let write_limit = || {
        m.limit()
            .map_or(Ok(()), |l| set("memory.limit", dir, LIMIT, l))
    };
    let write_swap = || swap.map_or(Ok(()), |s| set("memory.swap", dir, MEMSW, s));
    // memsw may never be below memory: raise memsw first when it is to grow, else memory first.
    let swap_grows = match swap {
        Some(-1) => true,
        Some(s) => current(dir, MEMSW)? < s,
        None => false,
    };
    if swap_grows {
        write_swap()?;
        write_limit()?;
    } else {
        write_limit()?;
        write_swap()?;
    }
    if let Some(v) = m.reservation() {
        set("memory.reservation", dir, "memory.soft_limit_in_bytes", v)?;
    }
    if let Some(v) = m.swappiness() {
        set("memory.swappiness", dir, "memory.swappiness", v)?;
    }
    if m.disable_oom_killer() == Some(true) {
        set("memory.disableOOMKiller", dir, "memory.oom_control", 1)?;
    }
    if m.kernel().is_some() || m.kernel_tcp().is_some() {
        tracing::debug!("linux.resources.memory.kernel/kernelTCP: ignored, as runc does (kernel memory limits are deprecated)");
    }
    Ok(())
}

/// A limit file's value now; the kernel shows "no limit" as a huge number.
fn current(dir: &Path, file: &str) -> Result<i64> {
    Ok(fs::read(&dir.join(file))?
        .trim()
        .parse()
        .unwrap_or(i64::MAX))
}

fn cpu<'a>(c: &LinuxCpu, dir: &impl Fn(&str, &str) -> Result<&'a Path>) -> Result<()> {
    // A share count, period, quota or realtime value of 0 leaves the file alone, as runc takes
    // it: Docker sends `"shares": 0` for a container without --cpu-shares.
    let nonzero_u = |v: Option<u64>| v.filter(|v| *v != 0).map(|v| v.to_string());
    let nonzero_i = |v: Option<i64>| v.filter(|v| *v != 0).map(|v| v.to_string());
    if let Some(shares) = c.shares().filter(|s| *s != 0) {
        let d = dir("cpu", "cpu.shares")?;
        set("cpu.shares", d, "cpu.shares", shares)?;
        // The kernel clamps shares to 2..=262144 without an error; say so instead of running
        // the container with another value than asked.
        let got = current(d, "cpu.shares")?;
        if u64::try_from(got).ok() != Some(shares) {
            let bound = if got > 2 { "maximum" } else { "minimum" };
            return Err(Error::config(format!(
                "linux.resources.cpu.shares: {shares}: the {bound} the kernel allows is {got}"
            )));
        }
    }
    let cpu_fields = [
        // The period first: a quota is checked against the period in force.
        ("cpu.period", "cpu.cfs_period_us", nonzero_u(c.period())),
        ("cpu.quota", "cpu.cfs_quota_us", nonzero_i(c.quota())),
        (
            "cpu.burst",
            "cpu.cfs_burst_us",
            c.burst().map(|v| v.to_string()),
        ),
        // Likewise the realtime period before the runtime.
        (
            "cpu.realtimePeriod",
            "cpu.rt_period_us",
            nonzero_u(c.realtime_period()),
        ),
        (
            "cpu.realtimeRuntime",
            "cpu.rt_runtime_us",
            nonzero_i(c.realtime_runtime()),
        ),
        ("cpu.idle", "cpu.idle", c.idle().map(|v| v.to_string())),
    ];
    for (field, file, value) in cpu_fields {
        if let Some(v) = value {
            set(field, dir("cpu", field)?, file, v)?;
        }
    }
    for (field, file, value) in [
        ("cpu.cpus", "cpuset.cpus", c.cpus()),
        ("cpu.mems", "cpuset.mems", c.mems()),
    ] {
        // Empty means "not set", as in runc: written, it would leave the cpuset unusable.
        if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
            set(field, dir("cpuset", field)?, file, v)?;
        }
    }
    Ok(())
}

fn block_io(dir: &Path, b: &LinuxBlockIo) -> Result<()> {
    // With the BFQ scheduler the weights live in blkio.bfq.*; CFQ's blkio.weight is gone since 5.0.
    let weight_file = if dir.join("blkio.weight").exists() || !dir.join("blkio.bfq.weight").exists()
    {
        "blkio.weight"
    } else {
        "blkio.bfq.weight"
    };
    if let Some(w) = b.weight().filter(|w| *w != 0) {
        set("blockIO.weight", dir, weight_file, w)?;
    }
    if let Some(w) = b.leaf_weight().filter(|w| *w != 0) {
        set("blockIO.leafWeight", dir, "blkio.leaf_weight", w)?;
    }
    for (i, d) in b.weight_device().iter().flatten().enumerate() {
        let field = format!("blockIO.weightDevice[{i}]");
        if let Some(w) = d.weight() {
            set(
                &field,
                dir,
                &format!("{weight_file}_device"),
                format!("{}:{} {w}", d.major(), d.minor()),
            )?;
        }
        if let Some(w) = d.leaf_weight() {
            set(
                &field,
                dir,
                "blkio.leaf_weight_device",
                format!("{}:{} {w}", d.major(), d.minor()),
            )?;
        }
    }
    let files = [
        "read_bps_device",
        "write_bps_device",
        "read_iops_device",
        "write_iops_device",
    ];
    for ((name, list), file) in throttles(b).into_iter().zip(files) {
        for (i, d) in list.iter().enumerate() {
            let line = format!("{}:{} {}", d.major(), d.minor(), d.rate());
            set(
                &format!("blockIO.{name}[{i}]"),
                dir,
                &format!("blkio.throttle.{file}"),
                line,
            )?;
        }
    }
    Ok(())
}

/// The v1 hugetlb controller if mounted, else the cgroup2 hierarchy's (a hybrid host).
fn hugepages<'a>(
    r: &LinuxResources,
    dir: &impl Fn(&str, &str) -> Result<&'a Path>,
    unified: Option<&Path>,
) -> Result<()> {
    let Some(limits) = r.hugepage_limits().as_deref().filter(|l| !l.is_empty()) else {
        return Ok(());
    };
    match (dir("hugetlb", "hugepageLimits"), unified) {
        (Ok(d), _) => v2::hugetlb(d, limits, "limit_in_bytes"),
        (Err(_), Some(d)) => {
            v2::enable(d, &["hugetlb".into()])?;
            v2::hugetlb(d, limits, "max")
        }
        (Err(e), None) => Err(e),
    }
}

/// net_cls and net_prio; without their hierarchy the setting is refused, not dropped (runc
/// drops it): a class id other rules rely on would silently not be there.
fn network<'a>(r: &LinuxResources, dir: &impl Fn(&str, &str) -> Result<&'a Path>) -> Result<()> {
    let Some(n) = r.network() else { return Ok(()) };
    if let Some(id) = n.class_id() {
        set(
            "network.classID",
            dir("net_cls", "network.classID")?,
            "net_cls.classid",
            id,
        )?;
    }
    for (i, p) in n.priorities().iter().flatten().enumerate() {
        let field = format!("network.priorities[{i}]");
        set(
            &field,
            dir("net_prio", &field)?,
            "net_prio.ifpriomap",
            format!("{} {}", p.name(), p.priority()),
        )?;
    }
    Ok(())
}

/// Start from "nothing allowed", then apply each rule in order; a deny rule after an allow
/// takes that allow back. A list v2 refuses is refused here too, though v1 would silently
/// ignore the offending rule.
fn devices_rules(dir: &Path, r: &LinuxResources, created: &[LinuxDevice]) -> Result<()> {
    let rules = devices::rules(r.devices().as_deref().unwrap_or_default(), created)?;
    devices::Policy::new(&rules)?;
    set("devices", dir, "devices.deny", "a")?;
    for rule in &rules {
        let file = if rule.allow {
            "devices.allow"
        } else {
            "devices.deny"
        };
        set(&rule.field, dir, file, rule.line())?;
    }
    Ok(())
}
