//! linux.resources as the container sees them through its /sys/fs/cgroup (v1 or v2 files,
//! whichever the host has), and enforced where that is quick to show.

use super::lifecycle::WAIT_FOR_GO;
use super::{skip, wait_for, Test};
use crate::harness::{cgroup_dirs, host_cgroup, Bundle, Ctx};
use crate::report::Report;
use crate::runtime::Running;
use anyhow::{bail, ensure, Context, Result};
use serde_json::{json, Value};
use std::fs;

pub const TESTS: &[Test] = &[
    ("cgroups/limits-visible", limits_visible),
    ("cgroups/pids-limit-enforced", pids_limit_enforced),
    ("cgroups/zero-means-unset", zero_means_unset),
    ("cgroups/device-rules-enforced", device_rules_enforced),
    (
        "cgroups/device-rules-allow-all-but-one",
        device_rules_allow_all_but_one,
    ),
    ("cgroups/default-device-rules", default_device_rules),
    ("cgroups/namespace", namespace),
    ("cgroups/update-limits", update_limits),
    ("cgroups/events-stats", events_stats),
    (
        "cgroups/events-end-with-container",
        events_end_with_container,
    ),
    ("cgroups/oom-event", oom_event),
    ("cgroups/blkio-throttle", blkio_throttle),
];

/// Each limit with the files that may show it (v1 layouts, then v2), and what they must read.
const LIMITS: &[(&str, &[&str], &str)] = &[
    (
        "memory",
        &[
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "/sys/fs/cgroup/memory.max",
        ],
        "67108864",
    ),
    (
        "pids",
        &["/sys/fs/cgroup/pids/pids.max", "/sys/fs/cgroup/pids.max"],
        "64",
    ),
    (
        "cpu quota",
        &[
            "/sys/fs/cgroup/cpu/cpu.cfs_quota_us",
            "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us",
            "/sys/fs/cgroup/cpu.max",
        ],
        "50000",
    ),
];

fn limits_visible(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.bundle(|v| {
        v["linux"]["resources"]["memory"] = json!({ "limit": 67108864 });
        v["linux"]["resources"]["pids"] = json!({ "limit": 64 });
        v["linux"]["resources"]["cpu"] = json!({ "quota": 50000, "period": 100000 });
    })?;
    let files: Vec<&[&str]> = LIMITS.iter().map(|(_, f, _)| *f).collect();
    let (r, own) = read_cgroup_files(ctx, &b, &files, &[])?;
    for (what, candidates, want) in LIMITS {
        let seen = first_readable(&r, &own, candidates).ok_or_else(|| {
            anyhow::anyhow!("{what}: none of {candidates:?} is readable in the container")
        })?;
        // v2's cpu.max reads "QUOTA PERIOD"; the v1 files hold the number alone.
        ensure!(
            seen.split_whitespace().next() == Some(want),
            "{what}: container sees {seen:?}, want {want}"
        );
    }
    Ok(())
}

/// Where the container may see cgroup file `f`, given as its v1 or v2 path below
/// /sys/fs/cgroup. Without a cgroup namespace a cgroup2 mount shows the whole hierarchy: the
/// container's v2 files are then under its cgroupsPath `own` too.
fn places(own: &str, f: &str) -> Vec<String> {
    let v2 = f
        .strip_prefix("/sys/fs/cgroup/")
        .filter(|n| !n.contains('/'));
    std::iter::once(f.to_string())
        .chain(v2.map(|n| format!("/sys/fs/cgroup{own}/{n}")))
        .collect()
}

/// Run the checker in `b`, reading every place of each file of `files` (see [`places`]), with
/// the `extra` probes after them; returns its report and the bundle's cgroupsPath.
fn read_cgroup_files(
    ctx: &mut Ctx,
    b: &Bundle,
    files: &[&[&str]],
    extra: &[String],
) -> Result<(Report, String)> {
    let mut config: Value = serde_json::from_slice(&fs::read(b.config_path())?)?;
    let own = host_cgroup(config["linux"]["cgroupsPath"].as_str().unwrap_or_default());
    let reads = files
        .iter()
        .flat_map(|c| c.iter())
        .flat_map(|f| places(&own, f))
        .map(|p| format!("read:{p}"));
    let args: Vec<String> = std::iter::once("/checker".to_string())
        .chain(reads)
        .chain(extra.iter().cloned())
        .collect();
    config["process"]["args"] = json!(args);
    fs::write(b.config_path(), serde_json::to_vec(&config)?)?;
    let out = ctx.rt(&["run", "--bundle", b.dir_str(), &b.id])?.ok()?;
    Ok((Report::parse(&out.stdout)?, own))
}

/// The content of the first of `candidates` the container could read.
fn first_readable(r: &Report, own: &str, candidates: &[&str]) -> Option<String> {
    candidates
        .iter()
        .flat_map(|f| places(own, f))
        .find_map(|p| {
            r.probe(&format!("read:{p}"))
                .ok()
                .and_then(|v| v.as_str().map(String::from))
        })
}

fn pids_limit_enforced(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.bundle(|v| {
        v["linux"]["resources"]["pids"] = json!({ "limit": 4 });
        // More background sleeps than the limit allows; the shell reports the failed forks.
        v["process"]["args"] = json!([
            "sh",
            "-c",
            "for i in 1 2 3 4 5 6; do sleep 5 & done; echo forked"
        ]);
    })?;
    let out = ctx.rt(&["run", "--bundle", b.dir_str(), &b.id])?;
    ensure!(
        out.stderr.contains("fork") || !out.stdout.contains("forked"),
        "6 forks under pids.limit 4 all worked: {}",
        out.describe()
    );
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
const EPERM: i64 = 1;
const ENXIO: i64 = 6;

/// A node of the mem driver (major 1) at a minor with no device behind it: an open the device
/// cgroup lets through fails with ENXIO, so EPERM can only come from the device rules. No
/// runtime's default rules allow such a minor.
fn mem_node(name: &str, minor: u32) -> Value {
    json!({ "path": format!("/dev/rt-{name}"), "type": "c", "major": 1, "minor": minor, "fileMode": 0o666, "uid": 0, "gid": 0 })
}

/// Run the checker with `probes` and check each one's errno (None: it must have worked).
fn expect_errnos(
    ctx: &mut Ctx,
    edit: impl FnOnce(&mut Value),
    probes: &[(&str, Option<i64>)],
) -> Result<()> {
    let names: Vec<&str> = probes.iter().map(|(p, _)| *p).collect();
    let r = ctx.check(edit, &names)?;
    for (probe, want) in probes {
        match want {
            None => drop(r.probe(probe)?),
            Some(errno) => {
                let got = r.probe_errno(probe)?;
                ensure!(got == *errno, "{probe}: errno {got}, want {errno}");
            }
        }
    }
    Ok(())
}

/// Deny all, then allow some nodes: the last rule that names a device decides for it, access
/// letters included; the default rules still allow /dev/null.
fn device_rules_enforced(ctx: &mut Ctx) -> Result<()> {
    let nodes = [
        ("denied", 200),
        ("allowed", 201),
        ("read-only", 202),
        ("taken-back", 203),
    ];
    expect_errnos(
        ctx,
        |v| {
            v["linux"]["devices"] = nodes.iter().map(|(n, m)| mem_node(n, *m)).collect();
            v["linux"]["resources"]["devices"] = json!([
                { "allow": false, "access": "rwm" },
                { "allow": true, "type": "c", "major": 1, "minor": 201, "access": "rwm" },
                { "allow": true, "type": "c", "major": 1, "minor": 202, "access": "r" },
                { "allow": true, "type": "c", "major": 1, "minor": 203, "access": "rwm" },
                { "allow": false, "type": "c", "major": 1, "minor": 203, "access": "rwm" },
            ]);
        },
        &[
            ("open-rw:/dev/null", None),
            ("open-r:/dev/rt-denied", Some(EPERM)),
            ("open-rw:/dev/rt-allowed", Some(ENXIO)),
            ("open-r:/dev/rt-read-only", Some(ENXIO)),
            ("open-w:/dev/rt-read-only", Some(EPERM)),
            ("open-r:/dev/rt-taken-back", Some(EPERM)),
        ],
    )
}

/// A first rule allowing everything makes "allow" the default; a later rule denies one device.
fn device_rules_allow_all_but_one(ctx: &mut Ctx) -> Result<()> {
    expect_errnos(
        ctx,
        |v| {
            v["linux"]["devices"] = json!([mem_node("denied", 200), mem_node("other", 201)]);
            v["linux"]["resources"]["devices"] = json!([
                { "allow": true, "access": "rwm" },
                // Not m: the runtime makes the node inside the container's cgroup.
                { "allow": false, "type": "c", "major": 1, "minor": 200, "access": "rw" },
            ]);
        },
        &[
            ("open-r:/dev/rt-denied", Some(EPERM)),
            ("open-rw:/dev/rt-other", Some(ENXIO)),
            ("open-rw:/dev/null", None),
        ],
    )
}

/// No device rules at all: a container that may mknod can make any node, but open only the
/// standard ones. /dev/kmsg (1:11) would open for writing without a capability.
fn default_device_rules(ctx: &mut Ctx) -> Result<()> {
    expect_errnos(
        ctx,
        |v| {
            v["linux"]["resources"]
                .as_object_mut()
                .map(|r| r.remove("devices"));
            for set in ["bounding", "effective", "permitted"] {
                if let Some(caps) = v["process"]["capabilities"][set].as_array_mut() {
                    caps.push(json!("CAP_MKNOD"));
                }
            }
        },
        &[
            ("mknod:c:1:11:/dev/rt-kmsg", None),
            ("open-w:/dev/rt-kmsg", Some(EPERM)),
            ("mknod:c:1:3:/dev/rt-null", None),
            ("open-rw:/dev/rt-null", None),
        ],
    )
}

/// A new cgroup namespace is rooted at the container's cgroup: /proc/self/cgroup reads `/` in
/// every hierarchy, and /sys/fs/cgroup shows the container's own files (its pids limit).
fn namespace(ctx: &mut Ctx) -> Result<()> {
    let r = ctx.check(
        |v| {
            v["linux"]["namespaces"]
                .as_array_mut()
                .expect("namespaces")
                .push(json!({ "type": "cgroup" }));
            v["linux"]["resources"]["pids"] = json!({ "limit": 64 });
        },
        &[
            "read:/sys/fs/cgroup/pids/pids.max",
            "read:/sys/fs/cgroup/pids.max",
        ],
    )?;
    let text = r.str("cgroup");
    ensure!(!text.is_empty(), "no /proc/self/cgroup");
    for line in text.lines() {
        ensure!(
            line.splitn(3, ':').nth(2) == Some("/"),
            "cgroup line {line:?} is not the namespace's root"
        );
    }
    let limit = [
        "read:/sys/fs/cgroup/pids/pids.max",
        "read:/sys/fs/cgroup/pids.max",
    ]
    .iter()
    .find_map(|p| {
        r.probe(p)
            .ok()
            .and_then(Value::as_str)
            .map(str::trim)
            .map(String::from)
    });
    ensure!(
        limit.as_deref() == Some("64"),
        "/sys/fs/cgroup shows pids.max {limit:?}, want the container's 64"
    );
    Ok(())
}
const MIB: i64 = 1 << 20;

/// A detached `sleep` with `resources`, already running.
fn limited_sleeper(ctx: &mut Ctx, resources: Value) -> Result<Bundle> {
    let b = ctx.bundle(|v| {
        v["process"]["args"] = json!(["sleep", "300"]);
        v["linux"]["resources"]["memory"] = resources["memory"].clone();
        v["linux"]["resources"]["pids"] = resources["pids"].clone();
    })?;
    ctx.rt(&["run", "--detach", "--bundle", b.dir_str(), &b.id])?
        .ok()?;
    ctx.wait_status(&b.id, "running")?;
    Ok(b)
}

/// The first of `files` (v1 names, then v2 ones) in any hierarchy of the test's cgroup, read on
/// the host, trimmed.
fn host_cgroup_file(b: &Bundle, files: &[&str]) -> Result<String> {
    let dirs = cgroup_dirs(&b.cgroup);
    let found = files
        .iter()
        .flat_map(|f| dirs.iter().map(move |d| d.join(f)))
        .find(|p| p.exists());
    let path = found.with_context(|| format!("none of {files:?} in {dirs:?}"))?;
    Ok(fs::read_to_string(&path)?.trim().to_string())
}

fn update_limits(ctx: &mut Ctx) -> Result<()> {
    let b = limited_sleeper(
        ctx,
        json!({ "memory": { "limit": 64 * MIB }, "pids": { "limit": 64 } }),
    )?;
    let memory = |b: &Bundle| host_cgroup_file(b, &["memory.limit_in_bytes", "memory.max"]);
    let pids = |b: &Bundle| host_cgroup_file(b, &["pids.max"]);
    let quota = |b: &Bundle| host_cgroup_file(b, &["cpu.cfs_quota_us", "cpu.max"]);
    let (raised, lowered) = ((128 * MIB).to_string(), (32 * MIB).to_string());
    let args = [
        "--memory",
        &raised,
        "--pids-limit",
        "100",
        "--cpu-period",
        "100000",
        "--cpu-quota",
        "20000",
    ];
    ctx.rt(&[&["update"], &args[..], &[&b.id]].concat())?.ok()?;
    ensure!(
        memory(&b)? == raised,
        "memory after raising it: {}",
        memory(&b)?
    );
    ensure!(pids(&b)? == "100", "pids.max: {}", pids(&b)?);
    ensure!(
        quota(&b)?.split_whitespace().next() == Some("20000"),
        "cpu quota: {}",
        quota(&b)?
    );
    ctx.rt(&["update", "--memory", &lowered, &b.id])?.ok()?;
    ensure!(
        memory(&b)? == lowered,
        "memory after lowering it: {}",
        memory(&b)?
    );
    // A linux.resources file; the limits it does not name stay.
    let file = ctx.dir.join("resources.json");
    fs::write(&file, json!({ "pids": { "limit": 42 } }).to_string())?;
    ctx.rt(&[
        "update",
        "--resources",
        file.to_str().context("utf-8 path")?,
        &b.id,
    ])?
    .ok()?;
    ensure!(
        pids(&b)? == "42",
        "pids.max after --resources: {}",
        pids(&b)?
    );
    ensure!(
        memory(&b)? == lowered,
        "memory after a pids-only update: {}",
        memory(&b)?
    );
    Ok(())
}

/// The runc event document: `{"type":"stats","id":ID,"data":{...}}`.
fn stats_event(line: &str, id: &str) -> Result<Value> {
    let ev: Value =
        serde_json::from_str(line).with_context(|| format!("event is not JSON: {line:?}"))?;
    ensure!(
        ev["type"] == "stats" && ev["id"] == id,
        "not a stats event of {id}: {line}"
    );
    Ok(ev["data"].clone())
}

fn events_stats(ctx: &mut Ctx) -> Result<()> {
    let b = limited_sleeper(
        ctx,
        json!({ "memory": { "limit": 64 * MIB }, "pids": { "limit": 64 } }),
    )?;
    let out = ctx.rt(&["events", "--stats", &b.id])?.ok()?;
    let lines: Vec<&str> = out.stdout.lines().collect();
    ensure!(
        lines.len() == 1,
        "events --stats printed {} lines: {}",
        lines.len(),
        out.stdout
    );
    let data = stats_event(lines[0], &b.id)?;
    ensure!(
        data["memory"]["usage"]["limit"] == 64 * MIB,
        "memory.usage.limit: {}",
        data["memory"]["usage"]
    );
    ensure!(
        data["memory"]["usage"]["usage"]
            .as_u64()
            .is_some_and(|u| u > 0),
        "memory.usage.usage: {}",
        data["memory"]["usage"]
    );
    ensure!(data["pids"]["limit"] == 64, "pids: {}", data["pids"]);
    ensure!(
        data["pids"]["current"].as_u64().is_some_and(|n| n >= 1),
        "pids: {}",
        data["pids"]
    );
    let usage = &data["cpu"]["usage"];
    ensure!(
        usage["kernel"].is_u64() && usage["user"].is_u64(),
        "cpu.usage: {usage}"
    );
    for key in ["cpuset", "blkio", "hugetlb"] {
        ensure!(data[key].is_object(), "data.{key} missing: {data}");
    }
    Ok(())
}

/// Waits until the output of `events` satisfies `done`; fails at once if the runtime exits
/// first (one without an events command).
fn wait_stream(
    ctx: &Ctx,
    events: Running,
    what: &str,
    done: impl Fn(&str) -> bool,
) -> Result<Running> {
    let mut events = events;
    wait_for(ctx, what, || {
        done(&events.stdout_so_far()) || events.has_exited()
    })?;
    if !done(&events.stdout_so_far()) {
        let out = events.wait()?;
        bail!(
            "`{}` exited ({}) before {what}: {}",
            out.what,
            out.describe(),
            out.stderr.trim()
        );
    }
    Ok(events)
}

/// Streaming ends by itself, status 0, once the container is gone (runc stops when its cgroup
/// is removed, berth already when the container stops).
fn events_end_with_container(ctx: &mut Ctx) -> Result<()> {
    let b = limited_sleeper(ctx, json!({ "pids": { "limit": 64 } }))?;
    let events = ctx.spawn(&["events", "--interval", "100ms", &b.id])?;
    let events = wait_stream(ctx, events, "two stats events", |out| {
        out.lines().count() >= 2
    })?;
    for line in events.stdout_so_far().lines() {
        stats_event(line, &b.id)?;
    }
    ctx.rt(&["kill", &b.id, "KILL"])?.ok()?;
    ctx.wait_status(&b.id, "stopped")?;
    ctx.rt(&["delete", &b.id])?.ok()?;
    let out = events.wait()?;
    ensure!(
        out.success(),
        "events after the container ended: {}: {}",
        out.describe(),
        out.stderr.trim()
    );
    Ok(())
}

fn oom_event(ctx: &mut Ctx) -> Result<()> {
    // Waits for /tmp/go, then holds ever more memory in a shell variable, well past the limit.
    let hog =
        format!("{WAIT_FOR_GO}; x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived");
    let b = ctx.bundle(|v| {
        v["process"]["args"] = json!(["sh", "-c", hog]);
        // No swap either, so the limit is hit at once.
        v["linux"]["resources"]["memory"] = json!({ "limit": 32 * MIB, "swap": 32 * MIB });
    })?;
    ctx.rt(&["run", "--detach", "--bundle", b.dir_str(), &b.id])?
        .ok()?;
    ctx.wait_status(&b.id, "running")?;
    let events = ctx.spawn(&["events", "--interval", "100ms", &b.id])?;
    // A first event shows the runtime is watching.
    let events = wait_stream(ctx, events, "a first stats event", |out| {
        out.lines().next().is_some()
    })?;
    fs::write(b.rootfs().join("tmp/go"), "")?;
    let is_oom = |l: &str| {
        serde_json::from_str::<Value>(l)
            .is_ok_and(|e| e["type"] == "oom" && e["id"] == b.id.as_str())
    };
    wait_stream(ctx, events, "an oom event", |out| out.lines().any(is_oom)).map(drop)
}

/// A whole disk of this host with something on it (no loop, ram or zram device):
/// (name, major, minor) from /sys/block.
fn block_device() -> Option<(String, u64, u64)> {
    let mut names: Vec<String> = fs::read_dir("/sys/block")
        .ok()?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
        .into_iter()
        .filter(|n| !["loop", "ram", "zram"].iter().any(|p| n.starts_with(p)))
        .find_map(|n| {
            let size: u64 = fs::read_to_string(format!("/sys/block/{n}/size"))
                .ok()?
                .trim()
                .parse()
                .ok()?;
            let dev = fs::read_to_string(format!("/sys/block/{n}/dev")).ok()?;
            let (major, minor) = dev.trim().split_once(':')?;
            let number = (major.parse().ok()?, minor.parse().ok()?);
            (size > 0).then_some((n, number.0, number.1))
        })
}

/// 1 MiB/s.
const RATE: u64 = 1 << 20;

/// blockIO throttles for a disk of the host show in the container's blkio.throttle.* (v1) or
/// io.max (v2) file. The read limit is also enforced: the checker reads the disk (never
/// writes: on a real host it is the system's disk) past the page cache, 3 MiB at 1 MiB/s,
/// where the runner can read the disk itself fast enough for that to show.
fn blkio_throttle(ctx: &mut Ctx) -> Result<()> {
    let Some((name, major, minor)) = block_device() else {
        return Err(skip("no block device in /sys/block"));
    };
    let unthrottled = unthrottled_read_ms(ctx, &name);
    let node = "/dev/rt-disk";
    let limit = json!([{ "major": major, "minor": minor, "rate": RATE }]);
    let b = ctx.bundle(|v| {
        v["linux"]["resources"]["blockIO"] = json!({ "throttleWriteBpsDevice": limit, "throttleReadBpsDevice": limit });
        v["linux"]["devices"] = json!([{ "path": node, "type": "b", "major": major, "minor": minor, "fileMode": 0o440 }]);
        let rules = v["linux"]["resources"]["devices"].as_array_mut().expect("base config has device rules");
        rules.push(json!({ "allow": true, "type": "b", "major": major, "minor": minor, "access": "r" }));
    })?;
    let files = [
        "/sys/fs/cgroup/blkio/blkio.throttle.write_bps_device",
        "/sys/fs/cgroup/io.max",
    ];
    let read = format!("directread:{node}");
    let reads: &[String] = if unthrottled.is_ok() {
        std::slice::from_ref(&read)
    } else {
        &[]
    };
    let (r, own) = read_cgroup_files(ctx, &b, &[&files], reads)?;
    let seen = first_readable(&r, &own, &files)
        .ok_or_else(|| anyhow::anyhow!("none of {files:?} is readable in the container"))?;
    // v1: "MAJ:MIN RATE"; v2: "MAJ:MIN rbps=RATE wbps=RATE riops=max wiops=max".
    let line = seen
        .lines()
        .find(|l| l.starts_with(&format!("{major}:{minor} ")));
    ensure!(
        line.is_some_and(|l| l.ends_with(&format!(" {RATE}"))
            || l.split_whitespace().any(|w| w == format!("wbps={RATE}"))),
        "write limit for {name} ({major}:{minor}) not in the container's cgroup: {seen:?}"
    );
    let unthrottled = match unthrottled {
        Ok(ms) => ms,
        Err(why) => {
            eprintln!("blkio-throttle: limit not enforced here: {why}");
            return Ok(());
        }
    };
    let limited = r.probe(&read)?;
    ensure!(
        limited["bytes"] == json!(3 << 20),
        "the container read {} bytes of {name}",
        limited["bytes"]
    );
    let ms = limited["ms"].as_u64().unwrap_or(0);
    ensure!(
        ms >= 1500,
        "3 MiB read at 1 MiB/s took {ms} ms in the container ({unthrottled} ms unthrottled)"
    );
    Ok(())
}

/// How long the checker, run by the runner itself, takes to read disk `name` (see
/// [`blkio_throttle`]); Err says why the disk can't show a limit.
fn unthrottled_read_ms(ctx: &Ctx, name: &str) -> Result<u64, String> {
    let probe = format!("directread:/dev/{name}");
    let out = std::process::Command::new(&ctx.env.checker)
        .arg(&probe)
        .output()
        .map_err(|e| e.to_string())?;
    let report = Report::parse(&String::from_utf8_lossy(&out.stdout)).map_err(|e| e.to_string())?;
    let result = report.probe(&probe).map_err(|_| {
        format!(
            "the runner cannot read /dev/{name}: {}",
            report.get("probes")[&probe]
        )
    })?;
    match result["ms"].as_u64() {
        Some(ms) if ms <= 500 && result["bytes"] == json!(3 << 20) => Ok(ms),
        _ => Err(format!("/dev/{name} is too small or slow: {result}")),
    }
}
