//! `update [FLAGS] ID` or `update -r FILE|- ID`: the flags (or the linux.resources JSON) become
//! a resources change that the library merges onto the container's current resources.

use std::io::Read;

use anyhow::{bail, Context, Result};
use berth::state::Store;
use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxPids, LinuxResources};

use crate::cli::UpdateArgs;

pub fn update(store: &Store, a: &UpdateArgs) -> Result<i32> {
    let change = match &a.resources {
        Some(path) => read_resources(path)?,
        None => from_flags(a)?,
    };
    berth::container::update(store, &a.id, &change).map_err(|e| name_the_flag(a, e))?;
    Ok(0)
}

fn read_resources(path: &std::path::Path) -> Result<LinuxResources> {
    let mut text = Vec::new();
    if path.as_os_str() == "-" {
        std::io::stdin()
            .read_to_end(&mut text)
            .context("read resources from stdin")?;
    } else {
        text = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
    }
    let mut json = serde_json::Deserializer::from_slice(&text);
    serde_path_to_error::deserialize(&mut json).map_err(|e| {
        let field = e.path().to_string();
        anyhow::anyhow!(
            "--resources {}: linux.resources.{field}: {}",
            path.display(),
            e.into_inner()
        )
    })
}

fn from_flags(a: &UpdateArgs) -> Result<LinuxResources> {
    for (flag, value) in [
        ("--l3-cache-schema", &a.l3_cache_schema),
        ("--mem-bw-schema", &a.mem_bw_schema),
    ] {
        if value.is_some() {
            bail!("{flag}: intel rdt: {}", berth::intel_rdt::unavailable());
        }
    }
    for (flag, value) in [
        ("--kernel-memory", &a.kernel_memory),
        ("--kernel-memory-tcp", &a.kernel_memory_tcp),
    ] {
        if value.is_some() {
            tracing::warn!("setting {flag} is ignored: kernel memory limits are obsolete");
        }
    }
    let mut memory = LinuxMemory::default();
    memory
        .set_limit(a.memory)
        .set_reservation(a.memory_reservation)
        .set_swap(a.memory_swap);
    let mut cpu = LinuxCpu::default();
    cpu.set_shares(a.cpu_share)
        .set_quota(a.cpu_quota)
        .set_period(a.cpu_period)
        .set_burst(a.cpu_burst)
        .set_realtime_runtime(a.cpu_rt_runtime)
        .set_realtime_period(a.cpu_rt_period)
        .set_idle(a.cpu_idle)
        .set_cpus(a.cpuset_cpus.clone())
        .set_mems(a.cpuset_mems.clone());
    let mut block_io = LinuxBlockIo::default();
    block_io.set_weight(a.blkio_weight);
    let mut r = LinuxResources::default();
    r.set_memory(Some(memory))
        .set_cpu(Some(cpu))
        .set_block_io(Some(block_io));
    if let Some(limit) = a.pids_limit {
        let mut pids = LinuxPids::default();
        pids.set_limit(limit);
        r.set_pids(Some(pids));
    }
    Ok(r)
}

/// Each flag, the linux.resources field it sets, and whether it was given.
fn flags(a: &UpdateArgs) -> [(&'static str, &'static str, bool); 14] {
    [
        ("--blkio-weight", "blockIO.weight", a.blkio_weight.is_some()),
        ("--cpu-period", "cpu.period", a.cpu_period.is_some()),
        ("--cpu-quota", "cpu.quota", a.cpu_quota.is_some()),
        ("--cpu-burst", "cpu.burst", a.cpu_burst.is_some()),
        ("--cpu-share", "cpu.shares", a.cpu_share.is_some()),
        (
            "--cpu-rt-period",
            "cpu.realtimePeriod",
            a.cpu_rt_period.is_some(),
        ),
        (
            "--cpu-rt-runtime",
            "cpu.realtimeRuntime",
            a.cpu_rt_runtime.is_some(),
        ),
        ("--cpu-idle", "cpu.idle", a.cpu_idle.is_some()),
        ("--cpuset-cpus", "cpu.cpus", a.cpuset_cpus.is_some()),
        ("--cpuset-mems", "cpu.mems", a.cpuset_mems.is_some()),
        ("--memory", "memory.limit", a.memory.is_some()),
        (
            "--memory-reservation",
            "memory.reservation",
            a.memory_reservation.is_some(),
        ),
        ("--memory-swap", "memory.swap", a.memory_swap.is_some()),
        ("--pids-limit", "pids.limit", a.pids_limit.is_some()),
    ]
}

/// The library names the linux.resources field that failed; say which flag set it.
fn name_the_flag(a: &UpdateArgs, e: berth::Error) -> anyhow::Error {
    let msg = e.to_string();
    let flag = flags(a).into_iter().find(|(_, field, given)| {
        *given && a.resources.is_none() && msg.contains(&format!("linux.resources.{field}:"))
    });
    match flag {
        Some((flag, _, _)) => anyhow::Error::new(e).context(format!("update {flag}")),
        None => e.into(),
    }
}
