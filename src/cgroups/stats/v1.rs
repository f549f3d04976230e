//! Stats from the v1 hierarchies, file by file as runc's fs driver reads them.

use std::path::Path;

use super::{keyed, number, optional, parse_error, BlkioEntry, Hugetlb, MemoryEntry, Stats};
use crate::cgroups::{fs, V1Dir};
use crate::Result;

/// cpuacct.stat counts in USER_HZ ticks, which is 100 on Linux.
const NANOS_PER_TICK: u64 = 1_000_000_000 / 100;

pub(super) fn read(hierarchies: &[V1Dir], s: &mut Stats) -> Result<()> {
    let dir = |controller: &str| {
        hierarchies
            .iter()
            .find(|h| h.has(controller))
            .map(|h| h.dir.as_path())
            .filter(|d| d.is_dir())
    };
    if let Some(d) = dir("cpuacct") {
        cpuacct(d, s)?;
    }
    if let Some(d) = dir("cpu") {
        if let Some(stat) = optional(keyed(d, "cpu.stat"))? {
            let t = &mut s.cpu.throttling;
            t.periods = stat.get("nr_periods").copied().unwrap_or(0);
            t.throttled_periods = stat.get("nr_throttled").copied().unwrap_or(0);
            t.throttled_time = stat.get("throttled_time").copied().unwrap_or(0);
        }
    }
    if let Some(d) = dir("cpuset") {
        cpuset(d, s)?;
    }
    if let Some(d) = dir("memory") {
        memory(d, s)?;
    }
    if let Some(d) = dir("pids") {
        super::pids(d, &mut s.pids)?;
    }
    if let Some(d) = dir("blkio") {
        blkio(d, s)?;
    }
    if let Some(d) = dir("hugetlb") {
        for size in super::hugepage_sizes() {
            let file = |f: &str| format!("hugetlb.{size}.{f}");
            let h = Hugetlb {
                usage: number(d, &file("usage_in_bytes"))?,
                max: number(d, &file("max_usage_in_bytes"))?,
                failcnt: number(d, &file("failcnt"))?,
            };
            s.hugetlb.insert(size, h);
        }
    }
    Ok(())
}

fn cpuacct(d: &Path, s: &mut Stats) -> Result<()> {
    let u = &mut s.cpu.usage;
    let ticks = keyed(d, "cpuacct.stat")?;
    u.user = ticks.get("user").copied().unwrap_or(0) * NANOS_PER_TICK;
    u.kernel = ticks.get("system").copied().unwrap_or(0) * NANOS_PER_TICK;
    u.total = number(d, "cpuacct.usage")?;
    let path = d.join("cpuacct.usage_percpu");
    u.percpu = fs::read(&path)?
        .split_whitespace()
        .map(|n| {
            n.parse()
                .map_err(|_| parse_error(&path, &format!("{n:?} is not a number")))
        })
        .collect::<Result<_>>()?;
    // "cpu user system" and one line per CPU; older kernels lack the file.
    let path = d.join("cpuacct.usage_all");
    if let Some(text) = optional(fs::read(&path))? {
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let [_, user, system] = cols[..] else {
                continue;
            };
            let num = |v: &str| {
                v.parse::<u64>()
                    .map_err(|_| parse_error(&path, &format!("bad line {line:?}")))
            };
            u.percpu_user.push(num(user)?);
            u.percpu_kernel.push(num(system)?);
        }
    }
    Ok(())
}

fn cpuset(d: &Path, s: &mut Stats) -> Result<()> {
    let c = &mut s.cpuset;
    c.cpus = id_list(d, "cpuset.cpus")?;
    c.mems = id_list(d, "cpuset.mems")?;
    for (file, field) in [
        ("cpuset.cpu_exclusive", &mut c.cpu_exclusive),
        ("cpuset.mem_hardwall", &mut c.mem_hardwall),
        ("cpuset.mem_exclusive", &mut c.mem_exclusive),
        ("cpuset.memory_migrate", &mut c.memory_migrate),
        ("cpuset.memory_spread_page", &mut c.memory_spread_page),
        ("cpuset.memory_spread_slab", &mut c.memory_spread_slab),
        ("cpuset.memory_pressure", &mut c.memory_pressure),
        ("cpuset.sched_load_balance", &mut c.sched_load_balance),
    ] {
        *field = number(d, file)?;
    }
    let path = d.join("cpuset.sched_relax_domain_level");
    let level = fs::read(&path)?;
    c.sched_relax_domain_level = level
        .trim()
        .parse()
        .map_err(|_| parse_error(&path, &format!("{:?} is not a number", level.trim())))?;
    Ok(())
}

/// `0-2,4` as `[0, 1, 2, 4]`.
fn id_list(d: &Path, file: &str) -> Result<Vec<u16>> {
    let path = d.join(file);
    let text = fs::read(&path)?;
    let bad = || {
        parse_error(
            &path,
            &format!("{:?} is not a list such as 0-2,4", text.trim()),
        )
    };
    let mut out = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b): (u16, u16) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
        out.extend(a..=b);
    }
    Ok(out)
}

fn memory(d: &Path, s: &mut Stats) -> Result<()> {
    let m = &mut s.memory;
    if !super::memory_stat(d, "cache", m)? {
        return Ok(());
    }
    m.usage = memory_entry(d, "memory")?;
    // Swap and kernel memory accounting are optional in the kernel: zero when absent.
    m.swap = optional(memory_entry(d, "memory.memsw"))?.unwrap_or_default();
    m.kernel = optional(memory_entry(d, "memory.kmem"))?.unwrap_or_default();
    m.kernel_tcp = optional(memory_entry(d, "memory.kmem.tcp"))?.unwrap_or_default();
    Ok(())
}

fn memory_entry(d: &Path, prefix: &str) -> Result<MemoryEntry> {
    let file = |f: &str| format!("{prefix}.{f}");
    Ok(MemoryEntry {
        usage: number(d, &file("usage_in_bytes"))?,
        max: number(d, &file("max_usage_in_bytes"))?,
        failcnt: number(d, &file("failcnt"))?,
        limit: number(d, &file("limit_in_bytes"))?,
    })
}

/// The blkio files runc reads, best source first: BFQ's with debug statistics, BFQ's, CFQ's,
/// the throttle layer's recursive, then its local ones. The first set whose first file has
/// entries is used, each of its files filling one list until one is missing or empty.
/// Where one blkio file's entries go in the stats.
type BlkioField = fn(&mut Stats) -> &mut Vec<BlkioEntry>;

const BLKIO_SOURCES: &[&[(&str, BlkioField)]] = &[
    &[
        ("blkio.bfq.sectors_recursive", |s| {
            &mut s.blkio.sectors_recursive
        }),
        ("blkio.bfq.io_service_time_recursive", |s| {
            &mut s.blkio.io_service_time_recursive
        }),
        ("blkio.bfq.io_wait_time_recursive", |s| {
            &mut s.blkio.io_wait_time_recursive
        }),
        ("blkio.bfq.io_merged_recursive", |s| {
            &mut s.blkio.io_merged_recursive
        }),
        ("blkio.bfq.io_queued_recursive", |s| {
            &mut s.blkio.io_queued_recursive
        }),
        ("blkio.bfq.time_recursive", |s| {
            &mut s.blkio.io_time_recursive
        }),
        ("blkio.bfq.io_serviced_recursive", |s| {
            &mut s.blkio.io_serviced_recursive
        }),
        ("blkio.bfq.io_service_bytes_recursive", |s| {
            &mut s.blkio.io_service_bytes_recursive
        }),
    ],
    &[
        ("blkio.bfq.io_serviced_recursive", |s| {
            &mut s.blkio.io_serviced_recursive
        }),
        ("blkio.bfq.io_service_bytes_recursive", |s| {
            &mut s.blkio.io_service_bytes_recursive
        }),
    ],
    &[
        ("blkio.sectors_recursive", |s| {
            &mut s.blkio.sectors_recursive
        }),
        ("blkio.io_service_time_recursive", |s| {
            &mut s.blkio.io_service_time_recursive
        }),
        ("blkio.io_wait_time_recursive", |s| {
            &mut s.blkio.io_wait_time_recursive
        }),
        ("blkio.io_merged_recursive", |s| {
            &mut s.blkio.io_merged_recursive
        }),
        ("blkio.io_queued_recursive", |s| {
            &mut s.blkio.io_queued_recursive
        }),
        ("blkio.time_recursive", |s| &mut s.blkio.io_time_recursive),
        ("blkio.io_serviced_recursive", |s| {
            &mut s.blkio.io_serviced_recursive
        }),
        ("blkio.io_service_bytes_recursive", |s| {
            &mut s.blkio.io_service_bytes_recursive
        }),
    ],
    &[
        ("blkio.throttle.io_serviced_recursive", |s| {
            &mut s.blkio.io_serviced_recursive
        }),
        ("blkio.throttle.io_service_bytes_recursive", |s| {
            &mut s.blkio.io_service_bytes_recursive
        }),
    ],
    &[
        ("blkio.throttle.io_serviced", |s| {
            &mut s.blkio.io_serviced_recursive
        }),
        ("blkio.throttle.io_service_bytes", |s| {
            &mut s.blkio.io_service_bytes_recursive
        }),
    ],
];

fn blkio(d: &Path, s: &mut Stats) -> Result<()> {
    for source in BLKIO_SOURCES {
        for (i, (file, list)) in source.iter().enumerate() {
            let entries = optional(blkio_file(d, file))?.unwrap_or_default();
            if entries.is_empty() {
                if i == 0 {
                    break;
                }
                return Ok(());
            }
            *list(s) = entries;
            if i == source.len() - 1 {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// Lines `8:0 Read 1282048` (or `8:0 6792` without an operation); the `Total` line is skipped.
fn blkio_file(d: &Path, file: &str) -> Result<Vec<BlkioEntry>> {
    let path = d.join(file);
    let mut out = Vec::new();
    for line in fs::read(&path)?.lines().filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split([' ', ':']).filter(|f| !f.is_empty()).collect();
        let bad = || parse_error(&path, &format!("bad line {line:?}"));
        let (major, minor, op, value) = match fields[..] {
            ["Total", _] => continue,
            [major, minor, value] => (major, minor, "", value),
            [major, minor, op, value] => (major, minor, op, value),
            _ => return Err(bad()),
        };
        out.push(BlkioEntry {
            major: major.parse().map_err(|_| bad())?,
            minor: minor.parse().map_err(|_| bad())?,
            op: op.to_string(),
            value: value.parse().map_err(|_| bad())?,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blkio_lines() {
        let dir = super::super::fake_cgroup(
            "blkio",
            &[
                (
                    "blkio.throttle.io_serviced",
                    "8:0 Read 3\n8:0 Write 4\nTotal 7\n",
                ),
                ("blkio.throttle.io_service_bytes", "8:0 Read 4096\n"),
                ("blkio.bfq.io_serviced_recursive", ""),
            ],
        );
        let mut s = Stats::default();
        blkio(&dir, &mut s).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let read = |value| BlkioEntry {
            major: 8,
            minor: 0,
            op: "Read".into(),
            value,
        };
        assert_eq!(
            s.blkio.io_serviced_recursive,
            [
                read(3),
                BlkioEntry {
                    op: "Write".into(),
                    ..read(4)
                }
            ]
        );
        assert_eq!(s.blkio.io_service_bytes_recursive, [read(4096)]);
    }
}
