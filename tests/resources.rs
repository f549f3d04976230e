//! linux.resources, update, events, pause/resume and ps on real busybox containers (run as root),
//! each a [`common::Ctr`].

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

mod common;
use common::{wait_until, Ctr};

const MIB: i64 = 1 << 20;

#[test]
fn memory_limit_is_written_and_enforced() {
    if !v1_host() {
        return;
    }
    let limit =
        json!({ "memory": { "limit": 32 * MIB, "reservation": 16 * MIB, "swappiness": 0 } });
    let c = Ctr::new(
        "mem",
        &["cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"],
        |cfg| {
            cfg["linux"]["resources"]["memory"] = limit["memory"].clone();
        },
    );
    let (code, out, err) = c.run();
    assert_eq!((code, out.trim()), (0, "33554432"), "{err}");

    let hog = "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived";
    let c = Ctr::new("oom", &["sh", "-c", hog], |cfg| {
        cfg["linux"]["resources"]["memory"] = limit["memory"].clone()
    });
    let (code, out, err) = c.run();
    assert_eq!(code, 128 + 9, "not OOM-killed: {out} {err}");
    assert!(!out.contains("survived"));

    let c = Ctr::new("memout", &["sleep", "1000"], |cfg| {
        let mut m = limit["memory"].clone();
        m["swap"] = json!(64 * MIB);
        m["disableOOMKiller"] = json!(true);
        cfg["linux"]["resources"]["memory"] = m;
    });
    c.start_detached();
    assert_eq!(c.cg_file("memory", "memory.limit_in_bytes"), "33554432");
    assert_eq!(
        c.cg_file("memory", "memory.soft_limit_in_bytes"),
        "16777216"
    );
    assert_eq!(c.cg_file("memory", "memory.swappiness"), "0");
    assert!(c
        .cg_file("memory", "memory.oom_control")
        .contains("oom_kill_disable 1"));
    if c.cg("memory").join("memory.memsw.limit_in_bytes").exists() {
        assert_eq!(
            c.cg_file("memory", "memory.memsw.limit_in_bytes"),
            "67108864"
        );
    } else {
        eprintln!("memsw skipped: the kernel has no swap accounting");
    }
}

#[test]
fn pids_limit_caps_forks_and_ps_lists_them() {
    if !v1_host() {
        return;
    }
    // A failed fork ends the subshell; the init goes on.
    let script =
        "(for i in 1 2 3 4 5 6 7 8; do sleep 1000 & done) 2>/tmp/err; echo > /tmp/done; sleep 1000";
    let c = Ctr::new("pids", &["sh", "-c", script], |cfg| {
        cfg["linux"]["resources"]["pids"] = json!({ "limit": 4 })
    });
    c.start_detached();
    assert_eq!(c.cg_file("pids", "pids.max"), "4");
    wait_until("the forks", || c.bundle().join("rootfs/tmp/done").exists());
    let err = fs::read_to_string(c.bundle().join("rootfs/tmp/err")).unwrap();
    assert!(err.contains("fork"), "{err}");
    // The limit was hit with sh, the subshell and two sleeps; the subshell is gone and sh has
    // exec'd the last sleep: three remain.
    wait_until("the subshell to exit", || c.pids().len() == 3);
    let pids = c.pids();
    let state: Value = serde_json::from_slice(&c.cmd("state", &[]).stdout).unwrap();
    assert!(
        pids.contains(&state["pid"].as_i64().unwrap()),
        "{pids:?} {state}"
    );

    let out = c.cmd("ps", &[]);
    let table = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].contains("PID"), "{table}");
    assert_eq!(lines.len(), 4, "{table}");
    assert!(
        lines[1..]
            .iter()
            .all(|l| l.contains("sleep") || l.contains("sh -c")),
        "{table}"
    );
    let out = c.cmd("ps", &["--", "-o", "pid,comm"]);
    assert!(String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip(1)
        .all(|l| l.contains("sleep") || l.contains("sh")));
}

#[test]
fn cpu_and_cpuset_are_written() {
    if !v1_host() {
        return;
    }
    let cpu = json!({ "shares": 512, "quota": 20000, "period": 100000, "cpus": "0", "mems": "0" });
    let c = Ctr::new(
        "cpu",
        &["grep", "Cpus_allowed_list", "/proc/self/status"],
        |cfg| {
            cfg["linux"]["resources"]["cpu"] = cpu.clone();
        },
    );
    let (code, out, err) = c.run();
    assert_eq!(code, 0, "{err}");
    assert!(
        out.split_whitespace().eq(["Cpus_allowed_list:", "0"]),
        "{out}"
    );

    let c = Ctr::new("cpuout", &["sleep", "1000"], |cfg| {
        cfg["linux"]["resources"]["cpu"] = cpu.clone()
    });
    c.start_detached();
    assert_eq!(c.cg_file("cpu", "cpu.shares"), "512");
    assert_eq!(c.cg_file("cpu", "cpu.cfs_quota_us"), "20000");
    assert_eq!(c.cg_file("cpu", "cpu.cfs_period_us"), "100000");
    assert_eq!(c.cg_file("cpuset", "cpuset.cpus"), "0");
    assert_eq!(c.cg_file("cpuset", "cpuset.mems"), "0");
}

#[test]
fn zero_shares_and_empty_cpu_lists_mean_unset() {
    if !v1_host() {
        return;
    }
    let c = Ctr::new("unset", &["sleep", "1000"], |cfg| {
        cfg["linux"]["resources"]["cpu"] = json!({ "shares": 0, "cpus": "", "mems": "" });
    });
    c.start_detached();
    assert_eq!(c.cg_file("cpu", "cpu.shares"), "1024");
    let parent = |f: &str| {
        fs::read_to_string(c.cg("cpuset").parent().unwrap().join(f))
            .unwrap()
            .trim()
            .to_string()
    };
    assert_eq!(c.cg_file("cpuset", "cpuset.cpus"), parent("cpuset.cpus"));
    assert_eq!(c.cg_file("cpuset", "cpuset.mems"), parent("cpuset.mems"));
}

#[test]
fn blkio_is_written() {
    if !v1_host() {
        return;
    }
    let dev = fs::read_to_string("/sys/block/vda/dev")
        .or_else(|_| fs::read_to_string("/sys/block/loop0/dev"));
    let Ok(dev) = dev else {
        eprintln!("skipped: no block device to throttle");
        return;
    };
    let (major, minor) = dev.trim().split_once(':').unwrap();
    let (major, minor): (i64, i64) = (major.parse().unwrap(), minor.parse().unwrap());
    // The weight files show in child cgroups only: look in a probe of our own.
    let probe =
        Path::new("/sys/fs/cgroup/blkio/berth-test").join(format!("{}-probe", std::process::id()));
    fs::create_dir_all(&probe).unwrap();
    let weight_file = ["blkio.weight", "blkio.bfq.weight"]
        .into_iter()
        .find(|f| probe.join(f).exists());
    fs::remove_dir(&probe).unwrap();
    let c = Ctr::new("blkio", &["sleep", "1000"], |cfg| {
        let mut b = json!({ "throttleReadBpsDevice": [{ "major": major, "minor": minor, "rate": 1048576 }] });
        if weight_file.is_some() {
            b["weight"] = json!(300);
        }
        cfg["linux"]["resources"]["blockIO"] = b;
    });
    c.start_detached();
    assert_eq!(
        c.cg_file("blkio", "blkio.throttle.read_bps_device"),
        format!("{major}:{minor} 1048576")
    );
    if let Some(file) = weight_file {
        assert!(c.cg_file("blkio", file).contains("300"));
    } else {
        eprintln!("blkio weight skipped: the kernel has neither blkio.weight nor blkio.bfq.weight");
    }
}

#[test]
fn hugetlb_limit_goes_through_the_unified_hierarchy() {
    if !v1_host() {
        return;
    }
    let Some(size) = fs::read_dir("/sys/kernel/mm/hugepages")
        .into_iter()
        .flatten()
        .flatten()
        .find_map(|e| {
            let kb: u64 = e
                .file_name()
                .to_str()?
                .strip_prefix("hugepages-")?
                .strip_suffix("kB")?
                .parse()
                .ok()?;
            Some(if kb >= 1 << 20 {
                format!("{}GB", kb >> 20)
            } else if kb >= 1024 {
                format!("{}MB", kb >> 10)
            } else {
                format!("{kb}KB")
            })
        })
    else {
        eprintln!("skipped: no hugepage sizes");
        return;
    };
    let c = Ctr::new("huge", &["sleep", "1000"], |cfg| {
        cfg["linux"]["resources"]["hugepageLimits"] = json!([{ "pageSize": size, "limit": 0 }]);
    });
    c.start_detached();
    let v1 = Path::new("/sys/fs/cgroup/hugetlb").exists();
    let (hierarchy, file) = if v1 {
        ("hugetlb", format!("hugetlb.{size}.limit_in_bytes"))
    } else {
        ("unified", format!("hugetlb.{size}.max"))
    };
    assert_eq!(c.cg_file(hierarchy, &file), "0");
}

#[test]
fn device_rules_deny_a_listed_device() {
    if !v1_host() {
        return;
    }
    let script = "echo x > /dev/null && echo null-ok; (exec 3</dev/fuse) 2>&1; echo done";
    let c = Ctr::new("dev", &["sh", "-c", script], |cfg| {
        cfg["linux"]["devices"] = json!([{ "path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 438 }]);
        cfg["linux"]["resources"]["devices"] = json!([
            { "allow": false, "access": "rwm" },
            { "allow": true, "type": "c", "major": 10, "minor": 229, "access": "rwm" },
            { "allow": false, "type": "c", "major": 10, "minor": 229, "access": "rw" },
        ]);
    });
    let (code, out, err) = c.run();
    assert_eq!(code, 0, "{out} {err}");
    assert!(out.contains("null-ok"), "{out}");
    assert!(out.contains("Operation not permitted"), "{out}");

    let c = Ctr::new("devout", &["sleep", "1000"], |cfg| {
        cfg["linux"]["resources"]["devices"] = json!([{ "allow": false, "access": "rwm" }]);
    });
    c.start_detached();
    let list = c.cg_file("devices", "devices.list");
    assert!(
        list.lines().any(|l| l == "c 1:3 rwm") && !list.contains("a *:*"),
        "{list}"
    );
}

#[test]
fn pause_freezes_and_resume_thaws() {
    if !v1_host() {
        return;
    }
    let counter = "i=0; while true; do i=$((i+1)); echo $i > /tmp/count; done";
    let c = Ctr::new("pause", &["sh", "-c", counter], |_| {});
    c.start_detached();
    let count_file = c.bundle().join("rootfs/tmp/count");
    let count = || {
        fs::read_to_string(&count_file)
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
    };
    wait_until("the counter", || count().is_some());
    let out = c.cmd("resume", &[]);
    assert!(
        !out.status.success(),
        "resume of a running container succeeded"
    );

    assert!(c.cmd("pause", &[]).status.success());
    assert_eq!(c.status(), "paused");
    assert_eq!(c.cg_file("freezer", "freezer.state"), "FROZEN");
    let frozen_at = count();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(count(), frozen_at, "the counter moved while paused");
    assert!(
        !c.cmd("pause", &[]).status.success(),
        "pause of a paused container succeeded"
    );

    assert!(c.cmd("resume", &[]).status.success());
    assert_eq!(c.status(), "running");
    wait_until("the counter to move again", || count() > frozen_at);

    // delete --force of a paused container kills it and removes its cgroup everywhere.
    assert!(c.cmd("pause", &[]).status.success());
    let out = c.cmd("delete", &["--force"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(c.cgroup_left(), Vec::<PathBuf>::new());
    assert!(!c.state_dir().exists());
}

#[test]
fn pause_of_a_stopped_container_fails() {
    let c = Ctr::new("stopped", &["true"], |_| {});
    c.start_detached();
    wait_until("the container to stop", || c.status() == "stopped");
    let out = c.cmd("pause", &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("stopped"));
}

/// These tests read the v1 files of a hybrid or v1 host like ours. On a pure v2 host (the VM)
/// they are skipped: there the suite's `cgroups/` tests check the limits from inside.
fn v1_host() -> bool {
    let v1 = v1_memory();
    if !v1 {
        eprintln!("skipped: no v1 memory hierarchy (pure cgroup v2 host)");
    }
    v1
}

/// A bad resources value fails create naming the field, leaving no state dir and no cgroup.
fn refused(name: &str, resources: Value, field: &str) {
    let c = Ctr::new(name, &["true"], |cfg| cfg["linux"]["resources"] = resources);
    let err = c.create_fails();
    assert!(err.contains(field), "{field} not in {err:?}");
    assert!(!c.state_dir().exists(), "state dir left behind");
    assert_eq!(c.cgroup_left(), Vec::<PathBuf>::new());
}

#[test]
fn bad_resources_are_refused_before_anything_is_made() {
    refused(
        "shares",
        json!({ "cpu": { "shares": -2 } }),
        "linux.resources.cpu.shares",
    );
    refused(
        "devtype",
        json!({ "devices": [{ "allow": true, "type": "x" }] }),
        "linux.resources.devices[0].type",
    );
    refused(
        "devpipe",
        json!({ "devices": [{ "allow": false }, { "allow": true, "type": "p" }] }),
        "linux.resources.devices[1].type",
    );
    refused(
        "unified",
        json!({ "unified": { "bogus": "1" } }),
        "linux.resources.unified.bogus",
    );
    refused(
        "memneg",
        json!({ "memory": { "limit": -7 } }),
        "linux.resources.memory.limit",
    );
}

#[test]
fn a_value_the_kernel_refuses_is_undone() {
    if !v1_host() {
        return;
    }
    // A child may not get realtime time its parent does not have (a fresh parent has none).
    refused(
        "rt",
        json!({ "cpu": { "realtimePeriod": 1000000, "realtimeRuntime": 5000 } }),
        "linux.resources.cpu.realtimeRuntime: write 5000 to",
    );
    refused(
        "maxshares",
        json!({ "cpu": { "shares": 1_000_000 } }),
        "linux.resources.cpu.shares: 1000000: the maximum",
    );
    if Path::new("/sys/fs/cgroup/unified").is_dir() && Path::new("/sys/fs/cgroup/memory").is_dir() {
        // A hybrid host: the cgroup2 hierarchy has no memory controller.
        refused(
            "unifiedmem",
            json!({ "unified": { "memory.high": "1000000" } }),
            "linux.resources.unified.memory.high",
        );
    }
    refused(
        "nohuge",
        json!({ "hugepageLimits": [{ "pageSize": "3MB", "limit": 1 }] }),
        "linux.resources.hugepageLimits[0]",
    );
}

impl Ctr {
    /// A limit file of the container's cgroup: `v1` = (hierarchy, file) on a v1 host, else the
    /// `v2` file of the unified hierarchy.
    fn limit(&self, v1: (&str, &str), v2: &str) -> String {
        if v1_memory() {
            self.cg_file(v1.0, v1.1)
        } else {
            self.cg_file("", v2)
        }
    }

    /// `berth update ARGS ID` (stdin from `input`); (success, stderr).
    fn update(&self, args: &[&str], input: &str) -> (bool, String) {
        use std::io::Write;
        let mut all = vec!["update"];
        all.extend_from_slice(args);
        all.push(&self.id);
        let mut child = self
            .berth(&all)
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `berth events ARGS ID` in the background, its stdout piped.
    fn events(&self, args: &[&str]) -> std::process::Child {
        let mut all = vec!["events"];
        all.extend_from_slice(args);
        all.push(&self.id);
        self.berth(&all)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }
}

/// Whether the host has the v1 memory hierarchy (a v1 or hybrid host).
fn v1_memory() -> bool {
    Path::new("/sys/fs/cgroup/memory").is_dir()
}

/// Waits (at most 10 s) for `child` to exit; its status and stderr.
fn exit_of(child: &mut std::process::Child) -> (std::process::ExitStatus, String) {
    use std::io::Read;
    let mut status = None;
    wait_until("events to exit", || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (status.unwrap(), err)
}

#[test]
fn update_raises_and_lowers_limits_and_a_refused_value_changes_nothing() {
    let c = Ctr::new("upd", &["sleep", "1000"], |cfg| {
        cfg["linux"]["resources"]["memory"] = json!({ "limit": 64 * MIB });
        cfg["linux"]["resources"]["pids"] = json!({ "limit": 10 });
        cfg["linux"]["resources"]["cpu"] = json!({ "shares": 1024 });
    });
    c.start_detached();
    let memory = || c.limit(("memory", "memory.limit_in_bytes"), "memory.max");
    let pids = || c.limit(("pids", "pids.max"), "pids.max");
    let v1_swap = c.cg("memory").join("memory.memsw.limit_in_bytes").exists();
    // memory+swap on v1, swap alone on v2.
    let swap = || v1_swap.then(|| c.cg_file("memory", "memory.memsw.limit_in_bytes"));
    let raise = [
        "--memory",
        "128M",
        "--memory-swap",
        "256M",
        "--pids-limit",
        "100",
        "--cpu-period",
        "100000",
        "--cpu-quota",
        "20000",
        "--cpu-share",
        "512",
        "--cpuset-cpus",
        "0",
    ];
    let (ok, err) = c.update(&raise, "");
    assert!(ok, "{err}");
    assert_eq!(memory(), (128 * MIB).to_string());
    assert_eq!(pids(), "100");
    assert_eq!(
        c.limit(("cpu", "cpu.cfs_quota_us"), "cpu.max"),
        if v1_memory() { "20000" } else { "20000 100000" }
    );
    assert_eq!(c.limit(("cpuset", "cpuset.cpus"), "cpuset.cpus"), "0");
    if v1_memory() {
        assert_eq!(c.cg_file("cpu", "cpu.shares"), "512");
    }
    // Lowering memory and swap together needs memory first on v1.
    let (ok, err) = c.update(&["--memory", "32M", "--memory-swap", "48M"], "");
    assert!(ok, "{err}");
    assert_eq!(memory(), (32 * MIB).to_string());
    if let Some(s) = swap() {
        assert_eq!(s, (48 * MIB).to_string());
    }

    // Refused values name their flag and leave every limit as it was.
    let refused: &[(&[&str], &str)] = &[
        (&["--memory-swap", "16M"], "--memory-swap"),
        (
            &["--cpuset-cpus", "0-", "--pids-limit", "7"],
            "--cpuset-cpus",
        ),
        (&["--memory", "12x"], "--memory"),
        (
            &["--pids-limit", "5", "--cpu-share", "1000000"],
            "--cpu-share",
        ),
    ];
    for (args, flag) in refused {
        if !v1_memory() && args.contains(&"--cpu-share") {
            continue; // v2 clamps the weight instead of refusing it
        }
        let (ok, err) = c.update(args, "");
        assert!(!ok && err.contains(flag), "{args:?}: {err}");
        assert_eq!(
            (memory(), pids()),
            ((32 * MIB).to_string(), "100".into()),
            "{args:?} changed a limit"
        );
        if v1_memory() {
            assert_eq!(
                c.cg_file("cpu", "cpu.shares"),
                "512",
                "{args:?} left the shares changed"
            );
        }
    }

    // A linux.resources document on stdin; what it does not name stays, swap included.
    let (ok, err) = c.update(&["-r", "-"], r#"{"pids":{"limit":42}}"#);
    assert!(ok, "{err}");
    assert_eq!((memory(), pids()), ((32 * MIB).to_string(), "42".into()));
    if let Some(s) = swap() {
        assert_eq!(s, (48 * MIB).to_string());
    }

    assert!(c.cmd("kill", &["KILL"]).status.success());
    wait_until("the container to stop", || c.status() == "stopped");
    let (ok, err) = c.update(&["--pids-limit", "9"], "");
    assert!(!ok && err.contains("stopped"), "{err}");
}

#[test]
fn events_stats_is_one_runc_shaped_document() {
    let c = Ctr::new("evstats", &["sleep", "1000"], |cfg| {
        cfg["linux"]["resources"]["memory"] = json!({ "limit": 64 * MIB });
        cfg["linux"]["resources"]["pids"] = json!({ "limit": 10 });
    });
    c.start_detached();
    let out = c.cmd("events", &["--stats"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    let ev: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (ev["type"].as_str(), ev["id"].as_str()),
        (Some("stats"), Some(c.id.as_str()))
    );
    let data = &ev["data"];
    assert_eq!(data["memory"]["usage"]["limit"], 64 * MIB, "{data}");
    assert!(
        data["memory"]["raw"]
            .as_object()
            .is_some_and(|r| !r.is_empty()),
        "{data}"
    );
    assert_eq!(data["pids"], json!({ "current": 1, "limit": 10 }));
    assert!(
        data["cpu"]["usage"]["kernel"].is_u64() && data["cpu"]["usage"]["user"].is_u64(),
        "{data}"
    );
    assert!(
        data["intel_rdt"].is_object() && data["network_interfaces"].is_null(),
        "{data}"
    );

    let out = c.cmd("events", &["--interval", "0s"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("interval must be greater than 0"));
}

#[test]
fn events_stream_ends_with_the_reader_or_the_container() {
    use std::io::{BufRead, BufReader};
    let c = Ctr::new("evstream", &["sleep", "1000"], |_| {});
    c.start_detached();
    let mut events = c.events(&["--interval", "50ms"]);
    let mut lines = BufReader::new(events.stdout.take().unwrap()).lines();
    for _ in 0..2 {
        let ev: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
        assert_eq!(ev["type"], "stats");
    }
    drop(lines);
    let (status, err) = exit_of(&mut events);
    assert!(status.success() && err.is_empty(), "{status}: {err}");

    let mut events = c.events(&["--interval", "10s"]);
    std::thread::sleep(Duration::from_millis(200));
    assert!(c.cmd("kill", &["KILL"]).status.success());
    let (status, err) = exit_of(&mut events);
    assert!(status.success() && err.is_empty(), "{status}: {err}");
    let out = c.cmd("events", &["--stats"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("stopped"));
}

#[test]
fn events_reports_an_oom_kill() {
    use std::io::{BufRead, BufReader};
    let hog = "while [ ! -e /tmp/go ]; do sleep 0.05; done; x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived";
    let c = Ctr::new("evoom", &["sh", "-c", hog], |cfg| {
        cfg["linux"]["resources"]["memory"] = json!({ "limit": 32 * MIB, "swap": 32 * MIB });
    });
    c.start_detached();
    let mut events = c.events(&["--interval", "50ms"]);
    let mut lines = BufReader::new(events.stdout.take().unwrap()).lines();
    // The first stats event: the OOM watch is in place.
    assert!(lines.next().unwrap().unwrap().contains("\"stats\""));
    fs::write(c.bundle().join("rootfs/tmp/go"), "").unwrap();
    let oom = format!(r#"{{"type":"oom","id":"{}"}}"#, c.id);
    // Stats events until the OOM; then the container is gone and the stream ends.
    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    assert!(rest.contains(&oom), "{rest:?}");
    let (status, err) = exit_of(&mut events);
    assert!(status.success() && err.is_empty(), "{status}: {err}");
}

#[test]
fn a_failed_exec_into_a_paused_container_does_not_wait_for_its_frozen_process() {
    if !v1_host() {
        return;
    }
    // exec joins the hierarchies in /proc/self/cgroup's order: the frozen freezer cgroup must
    // come before the cpuset one that refuses the process.
    let order = fs::read_to_string("/proc/self/cgroup").unwrap();
    let at = |c: &str| {
        order.lines().position(|l| {
            l.split(':')
                .nth(1)
                .is_some_and(|l| l.split(',').any(|x| x == c))
        })
    };
    if !matches!((at("freezer"), at("cpuset")), (Some(f), Some(c)) if f < c) {
        eprintln!("skipped: the freezer hierarchy does not come before cpuset");
        return;
    }
    let c = Ctr::new("frozenexec", &["sleep", "1000"], |_| {});
    c.start_detached();
    // A v1 cpuset cgroup takes no process until it has cpus: joining this one fails.
    fs::create_dir(c.cg("cpuset").join("empty")).unwrap();
    assert!(c.cmd("pause", &[]).status.success());
    let mut exec = c
        .berth(&[
            "exec",
            "--ignore-paused",
            "--cgroup",
            "cpuset:empty",
            &c.id,
            "true",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(c.dir.join("exec.stderr")).unwrap())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = exec.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > Duration::from_secs(10) {
            let _ = exec.kill();
            let _ = exec.wait();
            panic!("exec still waits for its frozen process after 10 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let err = fs::read_to_string(c.dir.join("exec.stderr")).unwrap();
    assert!(
        !status.success() && err.contains("cpuset"),
        "{status:?}: {err}"
    );
    // The killed process was left in the frozen cgroup: it dies once the container resumes.
    assert!(c.cmd("resume", &[]).status.success());
    wait_until("the killed exec process to go", || c.pids().len() == 1);
}
