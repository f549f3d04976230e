//! linux.resources as the container sees them through its /sys/fs/cgroup (v1 or v2 files,
//! whichever the host has), and enforced where that is quick to show.

use super::Test;
use crate::harness::Ctx;
use anyhow::{ensure, Result};
use crate::report::Report;
use serde_json::{json, Value};
use std::fs;

pub const TESTS: &[Test] = &[
    ("cgroups/limits-visible", limits_visible),
    ("cgroups/pids-limit-enforced", pids_limit_enforced),
    ("cgroups/zero-means-unset", zero_means_unset),
];

/// Each limit with the files that may show it (v1 layouts, then v2), and what they must read.
const LIMITS: &[(&str, &[&str], &str)] = &[
    ("memory", &["/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory.max"], "67108864"),
    ("pids", &["/sys/fs/cgroup/pids/pids.max", "/sys/fs/cgroup/pids.max"], "64"),
    (
        "cpu quota",
        &["/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu.max"],
        "50000",
    ),
];

fn limits_visible(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.bundle(|v| {
        v["linux"]["resources"]["memory"] = json!({ "limit": 67108864 });
        v["linux"]["resources"]["pids"] = json!({ "limit": 64 });
        v["linux"]["resources"]["cpu"] = json!({ "quota": 50000, "period": 100000 });
    })?;
    // Without a cgroup namespace a cgroup2 mount shows the whole hierarchy: the container's
    // files are then under its cgroupsPath, known once the bundle exists.
    let mut config: Value = serde_json::from_slice(&fs::read(b.config_path())?)?;
    let own = config["linux"]["cgroupsPath"].as_str().unwrap_or_default().to_string();
    let files = |f: &str| {
        let v2 = f.strip_prefix("/sys/fs/cgroup/").filter(|n| !n.contains('/'));
        std::iter::once(f.to_string()).chain(v2.map(|n| format!("/sys/fs/cgroup{own}/{n}")))
    };
    let probes: Vec<String> =
        LIMITS.iter().flat_map(|(_, fs, _)| fs.iter().flat_map(|f| files(f))).map(|f| format!("read:{f}")).collect();
    config["process"]["args"] = json!(std::iter::once("/checker".to_string()).chain(probes).collect::<Vec<_>>());
    fs::write(b.config_path(), serde_json::to_vec(&config)?)?;
    let out = ctx.rt(&["run", "--bundle", b.dir_str(), &b.id])?.ok()?;
    let r = Report::parse(&out.stdout)?;
    for (what, candidates, want) in LIMITS {
        let seen = candidates
            .iter()
            .flat_map(|f| files(f))
            .find_map(|p| r.probe(&format!("read:{p}")).ok().and_then(|v| v.as_str().map(String::from)));
        let seen = seen.ok_or_else(|| anyhow::anyhow!("{what}: none of {candidates:?} is readable in the container"))?;
        // v2's cpu.max reads "QUOTA PERIOD"; the v1 files hold the number alone.
        ensure!(seen.split_whitespace().next() == Some(want), "{what}: container sees {seen:?}, want {want}");
    }
    Ok(())
}

fn pids_limit_enforced(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.bundle(|v| {
        v["linux"]["resources"]["pids"] = json!({ "limit": 4 });
        // More background sleeps than the limit allows; the shell reports the failed forks.
        v["process"]["args"] = json!(["sh", "-c", "for i in 1 2 3 4 5 6; do sleep 5 & done; echo forked"]);
    })?;
    let out = ctx.rt(&["run", "--bundle", b.dir_str(), &b.id])?;
    ensure!(out.stderr.contains("fork") || !out.stdout.contains("forked"), "6 forks under pids.limit 4 all worked: {}", out.describe());
    Ok(())
}

/// What Docker sends for a container without limits: a share count and a blkio weight of 0
/// leave the files alone (the kernel would refuse cpu.shares 0), as runc takes them.
fn zero_means_unset(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.bundle(|v| {
        v["linux"]["resources"]["cpu"] = json!({ "shares": 0 });
        v["linux"]["resources"]["blockIO"] = json!({ "weight": 0 });
        v["linux"]["resources"]["memory"] = json!({ "disableOOMKiller": false });
    })?;
    ctx.rt(&["run", "--bundle", b.dir_str(), &b.id])?.ok()?;
    Ok(())
}
