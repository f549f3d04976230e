//! linux.resources as systemd unit properties (systemd.resource-control(5)), converted as
//! runc's systemd driver converts them. Pure, so that it is tested anywhere; `bus.rs` turns the
//! values into D-Bus variants. Whatever has no property here is still written to the cgroup
//! files after the unit starts.

use oci_spec::runtime::{LinuxDevice, LinuxResources};

use crate::cgroups::resources::convert::{blkio_to_io_weight, shares_to_weight, swap_to_v2};
use crate::cgroups::resources::devices::{self, Policy};
use crate::cgroups::resources::validate::throttles;
use crate::{Error, Result};

/// A property value, typed as systemd's D-Bus API wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::cgroups) enum Value {
    Bool(bool),
    /// `t`; u64::MAX is "infinity".
    U64(u64),
    Str(String),
    /// `au`.
    Pids(Vec<u32>),
    /// `ay`: a CPU or NUMA node mask, byte 0 holding CPUs 0-7.
    Mask(Vec<u8>),
    /// `a(ss)`: DeviceAllow's (device, access) pairs.
    DeviceAllow(Vec<(String, String)>),
    /// `a(st)`: IO*Max's (device node, limit) pairs.
    IoLimits(Vec<(String, u64)>),
}

pub(in crate::cgroups) type Property = (&'static str, Value);

const INFINITY: u64 = u64::MAX;
/// The kernel's default cpu.max period, which systemd assumes too.
const DEFAULT_PERIOD: u64 = 100_000;

/// A byte or count limit where a negative value means "no limit".
fn limit(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(INFINITY)
}

/// Memory, CPU, pids and block I/O limits (and the `unified` keys that have a property).
pub(in crate::cgroups) fn limits(r: &LinuxResources) -> Result<Vec<Property>> {
    let mut props = Vec::new();
    if let Some(m) = r.memory() {
        if let Some(l) = m.limit().filter(|l| *l != 0) {
            props.push(("MemoryMax", Value::U64(limit(l))));
        }
        if let Some(l) = m.reservation().filter(|l| *l != 0) {
            props.push(("MemoryLow", Value::U64(limit(l))));
        }
        if let Some(swap) = swap_to_v2(m.swap(), m.limit())? {
            props.push(("MemorySwapMax", Value::U64(limit(swap))));
        }
    }
    if let Some(c) = r.cpu() {
        if let Some(w) = c.shares().map(shares_to_weight).filter(|w| *w != 0) {
            props.push(("CPUWeight", Value::U64(w)));
        }
        cpu_quota(&mut props, c.quota(), c.period());
        for (name, field, list) in [
            ("AllowedCPUs", "cpu.cpus", c.cpus()),
            ("AllowedMemoryNodes", "cpu.mems", c.mems()),
        ] {
            if let Some(list) = list.as_deref().filter(|l| !l.is_empty()) {
                props.push((name, Value::Mask(mask(field, list)?)));
            }
        }
    }
    if let Some(p) = r.pids() {
        // As the cgroupfs code takes it: 0 or less is no limit.
        let max = if p.limit() > 0 {
            p.limit() as u64
        } else {
            INFINITY
        };
        props.push(("TasksMax", Value::U64(max)));
    }
    if let Some(b) = r.block_io() {
        if let Some(w) = b.weight().filter(|w| *w != 0) {
            props.push(("IOWeight", Value::U64(blkio_to_io_weight(w))));
        }
        let names = [
            "IOReadBandwidthMax",
            "IOWriteBandwidthMax",
            "IOReadIOPSMax",
            "IOWriteIOPSMax",
        ];
        for ((_, list), name) in throttles(b).into_iter().zip(names) {
            if list.is_empty() {
                continue;
            }
            let limits = list
                .iter()
                .map(|d| {
                    let rate = if d.rate() == 0 { INFINITY } else { d.rate() };
                    (format!("/dev/block/{}:{}", d.major(), d.minor()), rate)
                })
                .collect();
            props.push((name, Value::IoLimits(limits)));
        }
    }
    for (key, value) in r.unified().iter().flatten() {
        if let Some(p) = unified(key, value.trim())? {
            props.push(p);
        }
    }
    Ok(props)
}

/// CPUQuotaPerSecUSec (and CPUQuotaPeriodUSec when a period is given). systemd keeps the quota
/// as a percentage of a CPU, so it is rounded up to a multiple of 10 ms per second; the exact
/// quota still goes to cpu.max afterwards.
fn cpu_quota(props: &mut Vec<Property>, quota: Option<i64>, period: Option<u64>) {
    let period = period.filter(|p| *p != 0);
    if let Some(p) = period {
        props.push(("CPUQuotaPeriodUSec", Value::U64(p)));
    }
    if quota.is_none() && period.is_none() {
        return;
    }
    let per_sec = match quota {
        Some(q) if q > 0 => {
            let usec = (q as u64).saturating_mul(1_000_000) / period.unwrap_or(DEFAULT_PERIOD);
            usec.div_ceil(10_000) * 10_000
        }
        _ => INFINITY,
    };
    props.push(("CPUQuotaPerSecUSec", Value::U64(per_sec)));
}

/// A cpuset list (`0-2,4`) as the bit mask AllowedCPUs / AllowedMemoryNodes take.
fn mask(field: &str, list: &str) -> Result<Vec<u8>> {
    let bad = || {
        Error::config(format!(
            "linux.resources.{field}: {list:?} is not a list of numbers and ranges"
        ))
    };
    let mut bytes: Vec<u8> = Vec::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (lo, hi) = part.split_once('-').unwrap_or((part, part));
        let (lo, hi): (usize, usize) = (
            lo.trim().parse().map_err(|_| bad())?,
            hi.trim().parse().map_err(|_| bad())?,
        );
        if lo > hi || hi >= 1 << 16 {
            return Err(bad());
        }
        for bit in lo..=hi {
            if bytes.len() <= bit / 8 {
                bytes.resize(bit / 8 + 1, 0);
            }
            bytes[bit / 8] |= 1 << (bit % 8);
        }
    }
    if bytes.is_empty() {
        return Err(bad());
    }
    Ok(bytes)
}

/// The property for a linux.resources.unified key, where systemd has one; None for the others
/// (written to their files only).
fn unified(key: &str, value: &str) -> Result<Option<Property>> {
    let name = match key {
        "memory.high" => "MemoryHigh",
        "memory.low" => "MemoryLow",
        "memory.min" => "MemoryMin",
        "memory.max" => "MemoryMax",
        "memory.swap.max" => "MemorySwapMax",
        "pids.max" => "TasksMax",
        "cpu.weight" => "CPUWeight",
        _ => return Ok(None),
    };
    let n = match value {
        "max" if key != "cpu.weight" => INFINITY,
        v => v.parse().map_err(|_| {
            Error::config(format!(
                "linux.resources.unified.{key}: {value:?} is not a number{}",
                if key == "cpu.weight" {
                    ""
                } else {
                    " or \"max\""
                }
            ))
        })?,
    };
    // systemd refuses TasksMax=0; one task is as close as it gets (the file says 0 after).
    let n = if key == "pids.max" { n.max(1) } else { n };
    Ok(Some((name, Value::U64(n))))
}

/// DevicePolicy and DeviceAllow for the device rules (with the defaults every container gets).
/// A deny-by-default policy is `strict` with its exceptions listed; one systemd cannot spell
/// (allow by default with exceptions, or a `*:N` pattern) is `auto` with no list, i.e. systemd
/// filters nothing, and berth's own eBPF filter, attached next to systemd's, enforces it.
pub(in crate::cgroups) fn devices(
    r: &LinuxResources,
    created: &[LinuxDevice],
) -> Result<Vec<Property>> {
    let rules = devices::rules(r.devices().as_deref().unwrap_or_default(), created)?;
    let policy = Policy::new(&rules)?;
    // An empty DeviceAllow first clears the list a unit may have had.
    let clear = ("DeviceAllow", Value::DeviceAllow(Vec::new()));
    let auto = || vec![clear.clone(), ("DevicePolicy", Value::Str("auto".into()))];
    if policy.default_allow() {
        return Ok(auto());
    }
    let mut allow = Vec::new();
    for ((kind, major, minor), access) in policy.exceptions() {
        let group = if *kind == 'b' { "block" } else { "char" };
        let device = match (major, minor) {
            (Some(major), Some(minor)) => format!("/dev/{group}/{major}:{minor}"),
            (Some(major), None) => format!("{group}-{major}"),
            (None, None) => format!("{group}-*"),
            (None, Some(_)) => return Ok(auto()),
        };
        allow.push((device, access.to_string()));
    }
    Ok(vec![
        clear,
        ("DevicePolicy", Value::Str("strict".into())),
        ("DeviceAllow", Value::DeviceAllow(allow)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resources(json: &str) -> LinuxResources {
        serde_json::from_str(json).unwrap()
    }

    fn find<'a>(props: &'a [Property], name: &str) -> Vec<&'a Value> {
        props
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, v)| v)
            .collect()
    }

    #[test]
    fn limits_become_properties() {
        let r = resources(
            r#"{"memory": {"limit": 268435456, "reservation": 1048576, "swap": 536870912},
                "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0-2,9", "mems": "0"},
                "pids": {"limit": 42},
                "blockIO": {"weight": 500, "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}]},
                "unified": {"memory.high": "max", "pids.max": "0", "io.max": "x"}}"#,
        );
        let p = limits(&r).unwrap();
        let u = Value::U64;
        assert_eq!(find(&p, "MemoryMax"), [&u(268435456)]);
        assert_eq!(find(&p, "MemoryLow"), [&u(1048576)]);
        assert_eq!(find(&p, "MemorySwapMax"), [&u(268435456)]);
        assert_eq!(find(&p, "CPUWeight"), [&u(100)]);
        assert_eq!(find(&p, "CPUQuotaPeriodUSec"), [&u(100000)]);
        assert_eq!(find(&p, "CPUQuotaPerSecUSec"), [&u(500000)]);
        assert_eq!(find(&p, "AllowedCPUs"), [&Value::Mask(vec![0b111, 0b10])]);
        assert_eq!(find(&p, "AllowedMemoryNodes"), [&Value::Mask(vec![1])]);
        assert_eq!(find(&p, "TasksMax"), [&u(42), &u(1)]);
        assert_eq!(find(&p, "IOWeight"), [&u(4950)]);
        assert_eq!(
            find(&p, "IOReadBandwidthMax"),
            [&Value::IoLimits(vec![("/dev/block/8:0".into(), 1048576)])]
        );
        assert_eq!(find(&p, "MemoryHigh"), [&u(INFINITY)]);
        assert!(find(&p, "IOWriteBandwidthMax").is_empty());
    }

    #[test]
    fn quota_rounds_up_to_whole_percents() {
        let mut p = Vec::new();
        cpu_quota(&mut p, Some(12345), None);
        assert_eq!(p, [("CPUQuotaPerSecUSec", Value::U64(130000))]);
        let mut p = Vec::new();
        cpu_quota(&mut p, Some(-1), Some(50000));
        assert_eq!(
            p,
            [
                ("CPUQuotaPeriodUSec", Value::U64(50000)),
                ("CPUQuotaPerSecUSec", Value::U64(INFINITY))
            ]
        );
        let mut p = Vec::new();
        cpu_quota(&mut p, None, None);
        assert!(p.is_empty());
    }

    #[test]
    fn bad_values_name_the_field() {
        let r = resources(r#"{"cpu": {"cpus": "3-1"}}"#);
        assert!(limits(&r)
            .unwrap_err()
            .to_string()
            .contains("linux.resources.cpu.cpus"));
        let r = resources(r#"{"unified": {"cpu.weight": "max"}}"#);
        assert!(limits(&r)
            .unwrap_err()
            .to_string()
            .contains("linux.resources.unified.cpu.weight"));
    }

    #[test]
    fn device_rules_become_a_strict_allow_list() {
        let r = resources(
            r#"{"devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "b", "major": 8, "access": "r"}]}"#,
        );
        let p = devices(&r, &[]).unwrap();
        assert_eq!(p[1], ("DevicePolicy", Value::Str("strict".into())));
        let Value::DeviceAllow(list) = &p[2].1 else {
            panic!("{p:?}")
        };
        let has = |d: &str, a: &str| list.contains(&(d.to_string(), a.to_string()));
        assert!(has("block-8", "r"), "{list:?}");
        assert!(has("char-*", "m") && has("block-*", "m"), "{list:?}");
        assert!(
            has("/dev/char/1:3", "rwm") && has("char-136", "rwm"),
            "{list:?}"
        );
    }

    #[test]
    fn policies_systemd_cannot_spell_are_left_to_the_bpf_filter() {
        let auto = [
            ("DeviceAllow", Value::DeviceAllow(Vec::new())),
            ("DevicePolicy", Value::Str("auto".into())),
        ];
        let r = resources(
            r#"{"devices": [{"allow": true, "access": "rwm"}, {"allow": false, "type": "c", "major": 1, "minor": 3, "access": "w"}]}"#,
        );
        assert_eq!(devices(&r, &[]).unwrap(), auto);
        let r = resources(
            r#"{"devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "minor": 3, "access": "r"}]}"#,
        );
        assert_eq!(devices(&r, &[]).unwrap(), auto);
    }
}
