//! `update`: change the resource limits of a live container. As runc does, the change is merged
//! onto the container's current resources (kept in its state) and the whole set, device rules
//! aside, is applied again through the create path; if the kernel refuses a value, the previous
//! set is applied back, so a refused update leaves the limits as they were.

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxPids, LinuxResources};

use super::wrong;
use crate::cgroups::{validate_resources, Cgroup};
use crate::state::{Status, Store};
use crate::{Error, Result};

/// Apply `change` (the fields runc's update takes; see [`merge`]) to container `id`.
pub fn update(store: &Store, id: &str, change: &LinuxResources) -> Result<()> {
    let dir = store.open(id, true)?;
    let mut state = dir
        .load()?
        .ok_or_else(|| wrong(id, "update", Status::Creating))?;
    let status = dir.status(&state);
    if status == Status::Stopped {
        return Err(wrong(id, "update", status));
    }
    let old = state.resources.clone().unwrap_or_default();
    let new = merge(&old, change);
    validate_resources(&new)?;
    check_before_update(&state.cgroup, &new)?;
    if let Err(e) = state.cgroup.update(&new) {
        if let Err(undo) = state.cgroup.update(&old) {
            tracing::warn!(
                "restore the resources of container {id:?} after a failed update: {undo}"
            );
        }
        return Err(e);
    }
    state.resources = Some(new);
    dir.save(&state)
}

/// The fields runc's update merges, onto `old`: memory limit, reservation, swap and
/// checkBeforeUpdate; every cpu field; the blockIO weight; pids.limit (0 keeps it); and the
/// unified map, which replaces the old one (so an update does not write stale unified values
/// over the fields it changes). A limit of -1 without a swap value makes swap unlimited too.
/// Whatever else `change` holds is ignored, as runc ignores it.
fn merge(old: &LinuxResources, change: &LinuxResources) -> LinuxResources {
    let mut r = old.clone();
    if let Some(m) = change.memory() {
        let mut mem = r.memory().unwrap_or_default();
        let swap = m.swap().or(m.limit().filter(|l| *l == -1));
        set(&mut mem, m.limit(), LinuxMemory::set_limit);
        set(&mut mem, m.reservation(), LinuxMemory::set_reservation);
        set(&mut mem, swap, LinuxMemory::set_swap);
        set(
            &mut mem,
            m.check_before_update(),
            LinuxMemory::set_check_before_update,
        );
        r.set_memory(Some(mem));
    }
    if let Some(c) = change.cpu() {
        let mut cpu = r.cpu().clone().unwrap_or_default();
        set(&mut cpu, c.shares(), LinuxCpu::set_shares);
        set(&mut cpu, c.quota(), LinuxCpu::set_quota);
        set(&mut cpu, c.period(), LinuxCpu::set_period);
        set(&mut cpu, c.burst(), LinuxCpu::set_burst);
        set(
            &mut cpu,
            c.realtime_runtime(),
            LinuxCpu::set_realtime_runtime,
        );
        set(&mut cpu, c.realtime_period(), LinuxCpu::set_realtime_period);
        set(&mut cpu, c.idle(), LinuxCpu::set_idle);
        set(
            &mut cpu,
            c.cpus().clone().filter(|s| !s.is_empty()),
            LinuxCpu::set_cpus,
        );
        set(
            &mut cpu,
            c.mems().clone().filter(|s| !s.is_empty()),
            LinuxCpu::set_mems,
        );
        r.set_cpu(Some(cpu));
    }
    if let Some(w) = change
        .block_io()
        .as_ref()
        .and_then(|b| b.weight())
        .filter(|w| *w != 0)
    {
        let mut b = r.block_io().clone().unwrap_or_default();
        b.set_weight(Some(w));
        r.set_block_io(Some(b));
    }
    if let Some(p) = change.pids().filter(|p| p.limit() != 0) {
        let mut pids = LinuxPids::default();
        pids.set_limit(p.limit());
        r.set_pids(Some(pids));
    }
    r.set_unified(change.unified().clone());
    let ignored = ignored(change);
    if !ignored.is_empty() {
        tracing::debug!(
            "update ignores linux.resources {}, as runc does",
            ignored.join(", ")
        );
    }
    r
}

fn set<T, V>(target: &mut T, value: Option<V>, setter: fn(&mut T, Option<V>) -> &mut T) {
    if value.is_some() {
        setter(target, value);
    }
}

/// The fields of `change` that an update does not apply.
fn ignored(change: &LinuxResources) -> Vec<&'static str> {
    let mem = change.memory().unwrap_or_default();
    let bio = change.block_io().clone().unwrap_or_default();
    let bio_rest = LinuxBlockIo::default().set_weight(bio.weight()).clone() != bio;
    [
        ("devices", change.devices().is_some()),
        ("memory.kernel", mem.kernel().is_some()),
        ("memory.kernelTCP", mem.kernel_tcp().is_some()),
        ("memory.swappiness", mem.swappiness().is_some()),
        (
            "memory.disableOOMKiller",
            mem.disable_oom_killer().is_some(),
        ),
        ("memory.useHierarchy", mem.use_hierarchy().is_some()),
        ("blockIO (but its weight)", bio_rest),
        ("hugepageLimits", change.hugepage_limits().is_some()),
        ("network", change.network().is_some()),
        ("rdma", change.rdma().is_some()),
    ]
    .into_iter()
    .filter_map(|(name, set)| set.then_some(name))
    .collect()
}

/// memory.checkBeforeUpdate: refuse a memory (or memory+swap) limit at or below what the
/// container uses now, instead of letting the kernel reclaim or OOM-kill to get under it.
fn check_before_update(cgroup: &Cgroup, r: &LinuxResources) -> Result<()> {
    let Some(m) = r.memory().filter(|m| m.check_before_update() == Some(true)) else {
        return Ok(());
    };
    let limits = [("limit", m.limit()), ("swap", m.swap())];
    if !limits.iter().any(|(_, l)| l.is_some_and(|l| l > 0)) {
        return Ok(());
    }
    let usage = cgroup.stats()?.memory.usage.usage;
    for (field, limit) in limits {
        if let Some(l) = limit.filter(|l| *l > 0 && (*l as u64) <= usage) {
            return Err(Error::config(format_args!(
                "linux.resources.memory.{field}: {l} is not above the current usage {usage} (checkBeforeUpdate)"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resources(json: &str) -> LinuxResources {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn merges_onto_the_current_resources() {
        let old = resources(
            r#"{"memory":{"limit":100,"swap":200},"cpu":{"shares":512,"cpus":"0"},"pids":{"limit":5},
               "hugepageLimits":[{"pageSize":"2MB","limit":0}],"unified":{"memory.high":"9"}}"#,
        );
        let change = resources(
            r#"{"memory":{"limit":300,"swap":600},"cpu":{"quota":2000,"cpus":""},"pids":{"limit":0}}"#,
        );
        let new = merge(&old, &change);
        let json = serde_json::to_value(&new).unwrap();
        assert_eq!(
            json["memory"],
            serde_json::json!({ "limit": 300, "swap": 600 })
        );
        assert_eq!(
            json["cpu"],
            serde_json::json!({ "shares": 512, "quota": 2000, "cpus": "0" })
        );
        assert_eq!(json["pids"]["limit"], 5);
        assert_eq!(json["hugepageLimits"], old_json(&old)["hugepageLimits"]);
        assert!(json.get("unified").is_none(), "{json}");
    }

    fn old_json(r: &LinuxResources) -> serde_json::Value {
        serde_json::to_value(r).unwrap()
    }

    #[test]
    fn unlimited_memory_means_unlimited_swap() {
        let old = resources(r#"{"memory":{"limit":100,"swap":200}}"#);
        let new = merge(&old, &resources(r#"{"memory":{"limit":-1}}"#));
        assert_eq!(
            (new.memory().unwrap().limit(), new.memory().unwrap().swap()),
            (Some(-1), Some(-1))
        );
    }

    #[test]
    fn ignored_fields_are_named() {
        let change = resources(
            r#"{"devices":[],"blockIO":{"weight":10,"leafWeight":20},"memory":{"kernel":1}}"#,
        );
        assert_eq!(
            ignored(&change),
            ["devices", "memory.kernel", "blockIO (but its weight)"]
        );
        assert!(ignored(&resources(r#"{"blockIO":{"weight":10}}"#)).is_empty());
    }
}
