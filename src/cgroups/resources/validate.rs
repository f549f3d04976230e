//! Checks of linux.resources, run by `create` before it changes anything: the values alone,
//! and CPU and memory node ids against the host's. (A config that does not even parse is
//! named by field in `spec::load`.)

use std::path::Path;

use oci_spec::runtime::{LinuxBlockIo, LinuxResources, LinuxThrottleDevice};

use super::devices;
use crate::process::sched::{first_missing, parse_id_list};
use crate::{Error, Result};

const POSSIBLE_CPUS: &str = "/sys/devices/system/cpu/possible";
const POSSIBLE_NODES: &str = "/sys/devices/system/node/possible";

fn bad(field: &str, why: impl std::fmt::Display) -> Error {
    Error::config(format!("linux.resources.{field}: {why}"))
}

/// A byte count or limit where -1 means unlimited.
fn limit(field: &str, v: Option<i64>) -> Result<()> {
    match v {
        Some(n) if n < -1 => Err(bad(field, format!("{n}: must be -1 (unlimited) or more"))),
        _ => Ok(()),
    }
}

pub fn validate(r: &LinuxResources) -> Result<()> {
    if let Some(m) = r.memory() {
        limit("memory.limit", m.limit())?;
        limit("memory.reservation", m.reservation())?;
        limit("memory.swap", m.swap())?;
        if let Some(s) = m.swappiness().filter(|s| *s > 100) {
            return Err(bad("memory.swappiness", format!("{s}: must be 0 to 100")));
        }
    }
    if let Some(c) = r.cpu() {
        limit("cpu.quota", c.quota())?;
        limit("cpu.realtimeRuntime", c.realtime_runtime())?;
        if let Some(i) = c.idle().filter(|i| !matches!(i, 0 | 1)) {
            return Err(bad("cpu.idle", format!("{i}: must be 0 or 1")));
        }
        // Ids the kernel can never take (it judges the parent's cpuset itself). No NUMA: node 0.
        let nodes = Path::new(POSSIBLE_NODES).exists().then_some(POSSIBLE_NODES);
        for (field, list, possible, what) in [
            ("cpu.cpus", c.cpus(), Some(POSSIBLE_CPUS), "cpu"),
            ("cpu.mems", c.mems(), nodes, "memory node"),
        ] {
            let Some(list) = list.as_deref().filter(|l| !l.is_empty()) else {
                continue;
            };
            let full = format!("linux.resources.{field}");
            let missing = match possible {
                Some(file) => first_missing(&full, list, file)?,
                None => parse_id_list(&full, list)?.into_iter().find(|n| *n != 0),
            };
            if let Some(id) = missing {
                return Err(bad(
                    field,
                    format!("{list:?}: {what} {id} does not exist on this host"),
                ));
            }
        }
    }
    if let Some(b) = r.block_io() {
        weight("blockIO.weight", b.weight())?;
        weight("blockIO.leafWeight", b.leaf_weight())?;
        for (i, d) in b.weight_device().iter().flatten().enumerate() {
            let f = format!("blockIO.weightDevice[{i}]");
            device_number(&f, d.major(), d.minor())?;
            weight(&format!("{f}.weight"), d.weight())?;
            weight(&format!("{f}.leafWeight"), d.leaf_weight())?;
        }
        for (name, list) in throttles(b) {
            for (i, d) in list.iter().enumerate() {
                device_number(&format!("blockIO.{name}[{i}]"), d.major(), d.minor())?;
            }
        }
    }
    for (i, h) in r.hugepage_limits().iter().flatten().enumerate() {
        if !is_page_size(h.page_size()) {
            let why = format!("{:?}: not a size such as \"2MB\" or \"1GB\"", h.page_size());
            return Err(bad(&format!("hugepageLimits[{i}].pageSize"), why));
        }
        limit(&format!("hugepageLimits[{i}].limit"), Some(h.limit()))?;
    }
    for (i, p) in r
        .network()
        .iter()
        .flat_map(|n| n.priorities().iter().flatten())
        .enumerate()
    {
        if !is_name(p.name()) {
            return Err(bad(
                &format!("network.priorities[{i}].name"),
                format!("{:?}: not an interface name", p.name()),
            ));
        }
    }
    for name in r.rdma().iter().flat_map(|m| m.keys()) {
        if !is_name(name) {
            return Err(bad("rdma", format!("{name:?}: not a device name")));
        }
    }
    for key in r.unified().iter().flat_map(|m| m.keys()) {
        unified_key(key)?;
    }
    // The config's rules (which come first) must amount to a policy; the defaults appended to
    // them are checked when applied, as they depend on linux.devices.
    let config = r.devices().as_deref().unwrap_or_default();
    devices::Policy::new(&devices::rules(config, &[])?[..config.len()])?;
    Ok(())
}

/// The four throttle lists with their config names.
pub(in crate::cgroups) fn throttles(
    b: &LinuxBlockIo,
) -> [(&'static str, &[LinuxThrottleDevice]); 4] {
    fn list(l: &Option<Vec<LinuxThrottleDevice>>) -> &[LinuxThrottleDevice] {
        l.as_deref().unwrap_or_default()
    }
    [
        ("throttleReadBpsDevice", list(b.throttle_read_bps_device())),
        (
            "throttleWriteBpsDevice",
            list(b.throttle_write_bps_device()),
        ),
        (
            "throttleReadIOPSDevice",
            list(b.throttle_read_iops_device()),
        ),
        (
            "throttleWriteIOPSDevice",
            list(b.throttle_write_iops_device()),
        ),
    ]
}

/// blkio weights are 10 to 1000; 0 means "not set", as in runc.
fn weight(field: &str, w: Option<u16>) -> Result<()> {
    match w {
        Some(w) if w != 0 && !(10..=1000).contains(&w) => {
            Err(bad(field, format!("{w}: must be 10 to 1000")))
        }
        _ => Ok(()),
    }
}

fn device_number(field: &str, major: i64, minor: i64) -> Result<()> {
    if major < 0 || minor < 0 {
        return Err(bad(field, format!("{major}:{minor}: not a device number")));
    }
    Ok(())
}

/// A unified key names a file of a controller: `<controller>.<name>`, no path, and not one of
/// the core `cgroup.*` files the runtime itself manages.
fn unified_key(key: &str) -> Result<()> {
    let field = format!("unified.{key}");
    let valid = key.split_once('.').is_some_and(|(ctl, rest)| {
        is_word(ctl) && !rest.is_empty() && rest.split('.').all(is_word)
    });
    if !valid {
        return Err(bad(
            &field,
            "not a cgroup file name of the form <controller>.<file>",
        ));
    }
    if key.starts_with("cgroup.") {
        return Err(bad(&field, "core cgroup files are managed by the runtime"));
    }
    Ok(())
}

fn is_word(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn is_name(s: &str) -> bool {
    !s.is_empty() && !s.contains(|c: char| c.is_whitespace() || c == '/')
}

/// `64KB`, `2MB`, `1GB`: the names the kernel gives its hugetlb files.
fn is_page_size(s: &str) -> bool {
    let Some(num) = s
        .strip_suffix("KB")
        .or(s.strip_suffix("MB"))
        .or(s.strip_suffix("GB"))
    else {
        return false;
    };
    !num.is_empty() && num.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resources(json: &str) -> LinuxResources {
        serde_json::from_str(json).unwrap()
    }

    fn err(json: &str) -> String {
        validate(&resources(json)).unwrap_err().to_string()
    }

    #[test]
    fn accepts_a_full_set() {
        let r = resources(
            r#"{"memory":{"limit":-1,"swap":1000,"swappiness":60},"cpu":{"quota":-1,"cpus":"0","mems":"0"},
            "blockIO":{"weight":500,"throttleReadBpsDevice":[{"major":8,"minor":0,"rate":10}]},
            "hugepageLimits":[{"pageSize":"2MB","limit":4194304}],"unified":{"memory.high":"max","io.bfq.weight":"100"},
            "devices":[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":1,"minor":3,"access":"rw"}]}"#,
        );
        validate(&r).unwrap();
    }

    #[test]
    fn names_the_bad_field() {
        assert!(err(r#"{"memory":{"limit":-5}}"#).contains("linux.resources.memory.limit"));
        assert!(err(r#"{"memory":{"swappiness":101}}"#).contains("memory.swappiness"));
        assert!(err(r#"{"cpu":{"cpus":"0-"}}"#).contains("linux.resources.cpu.cpus"));
        assert!(err(r#"{"cpu":{"cpus":"0-4095"}}"#)
            .contains("linux.resources.cpu.cpus: \"0-4095\": cpu "));
        assert!(err(r#"{"cpu":{"mems":"4095"}}"#)
            .contains("linux.resources.cpu.mems: \"4095\": memory node 4095"));
        assert!(err(r#"{"cpu":{"idle":2}}"#).contains("cpu.idle"));
        assert!(err(r#"{"blockIO":{"weight":5}}"#).contains("blockIO.weight"));
        assert!(err(r#"{"hugepageLimits":[{"pageSize":"2M","limit":1}]}"#)
            .contains("hugepageLimits[0].pageSize"));
        assert!(err(r#"{"unified":{"memorymax":"1"}}"#).contains("unified.memorymax"));
        assert!(err(r#"{"unified":{"../x.y":"1"}}"#).contains("unified"));
        assert!(err(r#"{"unified":{"cgroup.procs":"1"}}"#).contains("unified.cgroup.procs"));
        assert!(err(r#"{"devices":[{"allow":true,"type":"p"}]}"#)
            .contains("linux.resources.devices[0].type"));
    }
}
