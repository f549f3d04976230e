//! Stats from the cgroup v2 files, mapped onto the v1-shaped fields as runc maps them.

use std::path::Path;

use super::{keyed, number, optional, parse_error, psi, BlkioEntry, Hugetlb, MemoryEntry, Stats};
use crate::cgroups::fs;
use crate::Result;

pub(super) fn read(d: &Path, s: &mut Stats) -> Result<()> {
    pids(d, s)?;
    memory(d, s)?;
    s.memory.psi = psi(d, "memory.pressure")?;
    if let Some(stat) = optional(io_stat(d))? {
        s.blkio.io_service_bytes_recursive = stat.0;
        s.blkio.io_serviced_recursive = stat.1;
    }
    s.blkio.psi = psi(d, "io.pressure")?;
    // cpu.stat is there even without the cpu controller (usage only, no throttling).
    if let Some(stat) = optional(keyed(d, "cpu.stat"))? {
        let get = |k: &str| stat.get(k).copied().unwrap_or(0);
        let u = &mut s.cpu.usage;
        u.total = get("usage_usec") * 1000;
        u.user = get("user_usec") * 1000;
        u.kernel = get("system_usec") * 1000;
        let t = &mut s.cpu.throttling;
        t.periods = get("nr_periods");
        t.throttled_periods = get("nr_throttled");
        t.throttled_time = get("throttled_usec") * 1000;
    }
    s.cpu.psi = psi(d, "cpu.pressure")?;
    hugetlb(d, s)
}

/// Without the pids controller, the processes are counted (as runc does).
fn pids(d: &Path, s: &mut Stats) -> Result<()> {
    if optional(super::pids(d, &mut s.pids))?.is_none() {
        s.pids.current = fs::read(&d.join("cgroup.procs"))?.lines().count() as u64;
    }
    Ok(())
}

fn memory(d: &Path, s: &mut Stats) -> Result<()> {
    let m = &mut s.memory;
    if !super::memory_stat(d, "file", m)? {
        return Ok(());
    }
    m.usage = memory_entry(d, "memory")?;
    // v1 reports memory+swap; v2 counts swap alone. No swap accounting: zero.
    if let Some(swap) = optional(memory_entry(d, "memory.swap"))? {
        m.swap = MemoryEntry {
            usage: swap.usage + m.usage.usage,
            limit: if swap.limit == u64::MAX {
                swap.limit
            } else {
                swap.limit.saturating_add(m.usage.limit)
            },
            // A peak of the sum cannot be derived from the two peaks.
            max: 0,
            failcnt: 0,
        };
    }
    Ok(())
}

/// `<prefix>.current`, `.max` and `.peak` (5.19+; 0 where missing).
fn memory_entry(d: &Path, prefix: &str) -> Result<MemoryEntry> {
    Ok(MemoryEntry {
        usage: number(d, &format!("{prefix}.current"))?,
        limit: number(d, &format!("{prefix}.max"))?,
        max: optional(number(d, &format!("{prefix}.peak")))?.unwrap_or(0),
        failcnt: 0,
    })
}

/// io.stat (`8:0 rbytes=1 wbytes=2 rios=3 wios=4 ...`) as v1's bytes and operations, read and
/// write; the other keys have no v1 counterpart.
fn io_stat(d: &Path) -> Result<(Vec<BlkioEntry>, Vec<BlkioEntry>)> {
    let path = d.join("io.stat");
    let (mut bytes, mut ios) = (Vec::new(), Vec::new());
    for line in fs::read(&path)?.lines() {
        let mut fields = line.split_whitespace();
        let Some((major, minor)) = fields.next().and_then(|dev| dev.split_once(':')) else {
            continue;
        };
        let bad = || parse_error(&path, &format!("bad line {line:?}"));
        let (major, minor) = (
            major.parse().map_err(|_| bad())?,
            minor.parse().map_err(|_| bad())?,
        );
        for field in fields {
            let Some((key, value)) = field.split_once('=') else {
                continue;
            };
            let (list, op) = match key {
                "rbytes" => (&mut bytes, "Read"),
                "wbytes" => (&mut bytes, "Write"),
                "rios" => (&mut ios, "Read"),
                "wios" => (&mut ios, "Write"),
                _ => continue,
            };
            list.push(BlkioEntry {
                major,
                minor,
                op: op.into(),
                value: value.parse().map_err(|_| bad())?,
            });
        }
    }
    Ok((bytes, ios))
}

/// hugetlb.<size>.current and the `max` count of hugetlb.<size>.events (allocations refused).
pub(super) fn hugetlb(d: &Path, s: &mut Stats) -> Result<()> {
    for size in super::hugepage_sizes() {
        let Some(usage) = optional(number(d, &format!("hugetlb.{size}.current")))? else {
            continue;
        };
        let events = keyed(d, &format!("hugetlb.{size}.events"))?;
        let failcnt = events.get("max").copied().unwrap_or(0);
        s.hugetlb.insert(
            size,
            Hugetlb {
                usage,
                max: 0,
                failcnt,
            },
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_v2_files_as_runc_does() {
        let files = [
            ("cgroup.procs", "1\n2\n"),
            ("pids.current", "3\n"),
            ("pids.max", "max\n"),
            ("memory.stat", "anon 4096\nfile 8192\n"),
            ("memory.current", "12288\n"),
            ("memory.max", "1048576\n"),
            ("memory.swap.current", "100\n"),
            ("memory.swap.max", "max\n"),
            ("memory.pressure", "some avg10=0.50 avg60=0.00 avg300=0.00 total=12\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=3\n"),
            ("io.stat", "8:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n"),
            ("cpu.stat", "usage_usec 7\nuser_usec 5\nsystem_usec 2\nnr_periods 4\nnr_throttled 1\nthrottled_usec 9\n"),
        ];
        let dir = super::super::fake_cgroup("v2stats", &files);
        let mut s = Stats::default();
        read(&dir, &mut s).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["pids"], serde_json::json!({ "current": 3 }));
        assert_eq!(json["memory"]["cache"], 8192);
        assert_eq!(
            json["memory"]["usage"],
            serde_json::json!({ "limit": 1048576, "usage": 12288, "failcnt": 0 })
        );
        assert_eq!(
            json["memory"]["swap"],
            serde_json::json!({ "limit": u64::MAX, "usage": 12388, "failcnt": 0 })
        );
        assert_eq!(json["memory"]["raw"]["anon"], 4096);
        assert_eq!(
            json["memory"]["psi"]["some"],
            serde_json::json!({ "avg10": 0.5, "avg60": 0, "avg300": 0, "total": 12 })
        );
        assert_eq!(
            json["blkio"]["ioServiceBytesRecursive"],
            serde_json::json!([{ "major": 8, "op": "Read", "value": 10 }, { "major": 8, "op": "Write", "value": 20 }])
        );
        assert_eq!(
            json["cpu"]["usage"],
            serde_json::json!({ "total": 7000, "kernel": 2000, "user": 5000 })
        );
        assert_eq!(
            json["cpu"]["throttling"],
            serde_json::json!({ "periods": 4, "throttledPeriods": 1, "throttledTime": 9000 })
        );
        assert!(json["cpu"].get("psi").is_none());
    }
}
