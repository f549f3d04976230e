//! What a container's cgroup has used, in the shape `runc events` prints it: containerd and
//! Docker decode these field names. Zero counters that runc leaves out (Go's `omitempty`) are
//! left out too; on cgroup v2 the fields runc fills from the v2 files are filled, the v1-only
//! ones (kernel memory, cpuset flags, per-CPU usage) stay zero.

mod v1;
mod v2;

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Serialize, Serializer};

use super::{fs, Cgroup, Hierarchies};
use crate::{Error, Result};

#[derive(Debug, Default, Serialize)]
pub struct Stats {
    pub cpu: Cpu,
    pub cpuset: CpuSet,
    pub memory: Memory,
    pub pids: Pids,
    pub blkio: Blkio,
    /// By page size (`2MB`, `1GB`).
    pub hugetlb: BTreeMap<String, Hugetlb>,
    /// berth does not drive resctrl: always empty.
    pub intel_rdt: IntelRdt,
    /// runc fills it only for networks it set up itself, never for an OCI bundle: null.
    pub network_interfaces: (),
}

#[derive(Debug, Default, Serialize)]
pub struct Cpu {
    pub usage: CpuUsage,
    pub throttling: Throttling,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub psi: Option<Psi>,
}

/// Nanoseconds.
#[derive(Debug, Default, Serialize)]
pub struct CpuUsage {
    #[serde(skip_serializing_if = "is_zero")]
    pub total: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_kernel: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_user: Vec<u64>,
    pub kernel: u64,
    pub user: u64,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Throttling {
    #[serde(skip_serializing_if = "is_zero")]
    pub periods: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub throttled_periods: u64,
    /// Nanoseconds.
    #[serde(skip_serializing_if = "is_zero")]
    pub throttled_time: u64,
}

/// Pressure stall information (`*.pressure`, cgroup v2).
#[derive(Debug, Default, Serialize)]
pub struct Psi {
    pub some: PsiData,
    pub full: PsiData,
}

#[derive(Debug, Default, Serialize)]
pub struct PsiData {
    #[serde(serialize_with = "go_float")]
    pub avg10: f64,
    #[serde(serialize_with = "go_float")]
    pub avg60: f64,
    #[serde(serialize_with = "go_float")]
    pub avg300: f64,
    pub total: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct CpuSet {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cpus: Vec<u16>,
    pub cpu_exclusive: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mems: Vec<u16>,
    pub mem_hardwall: u64,
    pub mem_exclusive: u64,
    pub memory_migrate: u64,
    pub memory_spread_page: u64,
    pub memory_spread_slab: u64,
    pub memory_pressure: u64,
    pub sched_load_balance: u64,
    pub sched_relax_domain_level: i64,
}

#[derive(Debug, Default, Serialize)]
pub struct Memory {
    #[serde(skip_serializing_if = "is_zero")]
    pub cache: u64,
    pub usage: MemoryEntry,
    /// Memory plus swap, as v1's memsw counts it (v2's swap-only figures are added to memory's).
    pub swap: MemoryEntry,
    pub kernel: MemoryEntry,
    #[serde(rename = "kernelTCP")]
    pub kernel_tcp: MemoryEntry,
    /// memory.stat as the kernel writes it.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub raw: BTreeMap<String, u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub psi: Option<Psi>,
}

/// Bytes; "no limit" reads as the kernel's huge number (v1) or u64::MAX (v2's `max`).
#[derive(Debug, Default, Serialize)]
pub struct MemoryEntry {
    pub limit: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    pub failcnt: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct Pids {
    #[serde(skip_serializing_if = "is_zero")]
    pub current: u64,
    /// 0: no limit.
    #[serde(skip_serializing_if = "is_zero")]
    pub limit: u64,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Blkio {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_serviced_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty", rename = "ioQueueRecursive")]
    pub io_queued_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_service_time_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_wait_time_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_merged_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_time_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sectors_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub psi: Option<Psi>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct BlkioEntry {
    #[serde(skip_serializing_if = "is_zero")]
    pub major: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub minor: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub op: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub value: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct Hugetlb {
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    pub failcnt: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct IntelRdt {}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// A float as Go's encoding/json writes it: integral values without a fraction (`0`, not `0.0`).
fn go_float<S: Serializer>(v: &f64, s: S) -> std::result::Result<S::Ok, S::Error> {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        s.serialize_i64(*v as i64)
    } else {
        s.serialize_f64(*v)
    }
}

impl Cgroup {
    /// The cgroup's usage counters and limits now.
    pub fn stats(&self) -> Result<Stats> {
        let mut stats = Stats::default();
        match self.hierarchies()? {
            Hierarchies::V2(dir) => v2::read(dir, &mut stats)?,
            Hierarchies::V1(dirs, unified) => {
                v1::read(dirs, &mut stats)?;
                // A hybrid host keeps hugetlb in its cgroup2 hierarchy only.
                if let Some(dir) = unified.filter(|_| stats.hugetlb.is_empty()) {
                    v2::hugetlb(dir, &mut stats)?;
                }
            }
        }
        Ok(stats)
    }
}

/// A file that may be missing (a controller not mounted or not enabled, a kernel without it).
pub(super) fn optional<T>(r: Result<T>) -> Result<Option<T>> {
    match r {
        Err(e) if e.errno() == Some(nix::Error::ENOENT) => Ok(None),
        r => r.map(Some),
    }
}

fn parse_error(path: &Path, what: &str) -> Error {
    Error::io(
        format!("parse {}: {what}", path.display()),
        std::io::ErrorKind::InvalidData.into(),
    )
}

/// A file holding one number; `max` (v2's "no limit") reads as u64::MAX.
fn number(dir: &Path, file: &str) -> Result<u64> {
    let path = dir.join(file);
    let text = fs::read(&path)?;
    match text.trim() {
        "max" => Ok(u64::MAX),
        t => t
            .parse()
            .map_err(|_| parse_error(&path, &format!("{t:?} is not a number"))),
    }
}

/// A file of `key value` lines (memory.stat, cpu.stat, memory.events, ...).
pub(super) fn keyed(dir: &Path, file: &str) -> Result<BTreeMap<String, u64>> {
    let path = dir.join(file);
    let mut out = BTreeMap::new();
    for line in fs::read(&path)?.lines().filter(|l| !l.trim().is_empty()) {
        let parsed = line
            .split_once(' ')
            .and_then(|(k, v)| Some((k, v.trim().parse().ok()?)));
        let (key, value) =
            parsed.ok_or_else(|| parse_error(&path, &format!("bad line {line:?}")))?;
        out.insert(key.to_string(), value);
    }
    Ok(out)
}

/// memory.stat as `raw`, `cache` taken from its `cache_key` (v1 `cache`, v2 `file`); false if
/// the cgroup has no memory controller.
fn memory_stat(d: &Path, cache_key: &str, m: &mut Memory) -> Result<bool> {
    let Some(raw) = optional(keyed(d, "memory.stat"))? else {
        return Ok(false);
    };
    m.cache = raw.get(cache_key).copied().unwrap_or(0);
    m.raw = raw;
    Ok(true)
}

/// pids.current and pids.max, whose `max` (no limit) runc reports as 0.
fn pids(d: &Path, p: &mut Pids) -> Result<()> {
    p.current = number(d, "pids.current")?;
    p.limit = number(d, "pids.max")?;
    if p.limit == u64::MAX {
        p.limit = 0;
    }
    Ok(())
}

/// The hugepage sizes this kernel has, named as the hugetlb controller names its files.
fn hugepage_sizes() -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/sys/kernel/mm/hugepages") else {
        return Vec::new();
    };
    let mut sizes: Vec<u64> = entries
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_prefix("hugepages-")?
                .strip_suffix("kB")?
                .parse()
                .ok()
        })
        .collect();
    sizes.sort();
    sizes.into_iter().map(page_size_name).collect()
}

fn page_size_name(kb: u64) -> String {
    match kb {
        kb if kb >= 1 << 20 && kb % (1 << 20) == 0 => format!("{}GB", kb >> 20),
        kb if kb >= 1 << 10 && kb % (1 << 10) == 0 => format!("{}MB", kb >> 10),
        kb => format!("{kb}KB"),
    }
}

/// `*.pressure` (v2): None where the kernel does not track pressure.
fn psi(dir: &Path, file: &str) -> Result<Option<Psi>> {
    let path = dir.join(file);
    let text = match fs::read(&path) {
        Err(e) if matches!(e.errno(), Some(nix::Error::ENOENT | nix::Error::ENOTSUP)) => {
            return Ok(None)
        }
        r => r?,
    };
    let mut psi = Psi::default();
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let data = match fields.next() {
            Some("some") => &mut psi.some,
            Some("full") => &mut psi.full,
            _ => continue,
        };
        for field in fields {
            let (key, value) = field
                .split_once('=')
                .ok_or_else(|| parse_error(&path, &format!("bad field {field:?}")))?;
            let bad = || parse_error(&path, &format!("bad value {field:?}"));
            match key {
                "avg10" => data.avg10 = value.parse().map_err(|_| bad())?,
                "avg60" => data.avg60 = value.parse().map_err(|_| bad())?,
                "avg300" => data.avg300 = value.parse().map_err(|_| bad())?,
                "total" => data.total = value.parse().map_err(|_| bad())?,
                _ => {}
            }
        }
    }
    Ok(Some(psi))
}

/// A directory of fake cgroup files, so that parsing is checked on any host.
#[cfg(test)]
fn fake_cgroup(name: &str, files: &[(&str, &str)]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("berth-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (file, text) in files {
        std::fs::write(dir.join(file), text).unwrap();
    }
    dir
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_fields_are_left_out_as_runc_does() {
        let json = serde_json::to_value(Stats::default()).unwrap();
        assert_eq!(
            json["cpu"],
            serde_json::json!({ "usage": { "kernel": 0, "user": 0 }, "throttling": {} })
        );
        assert_eq!(
            json["memory"]["usage"],
            serde_json::json!({ "limit": 0, "failcnt": 0 })
        );
        assert_eq!(json["pids"], serde_json::json!({}));
        assert_eq!(json["intel_rdt"], serde_json::json!({}));
        assert!(json["network_interfaces"].is_null());
        assert_eq!(json["cpuset"]["sched_relax_domain_level"], 0);
        assert!(json["memory"].get("psi").is_none());
    }

    #[test]
    fn psi_floats_are_written_as_go_writes_them() {
        let data = PsiData {
            avg10: 0.0,
            avg60: 1.25,
            avg300: 3.0,
            total: 7,
        };
        assert_eq!(
            serde_json::to_string(&data).unwrap(),
            r#"{"avg10":0,"avg60":1.25,"avg300":3,"total":7}"#
        );
    }

    #[test]
    fn page_size_names() {
        assert_eq!(page_size_name(2048), "2MB");
        assert_eq!(page_size_name(1 << 20), "1GB");
        assert_eq!(page_size_name(64), "64KB");
    }
}
