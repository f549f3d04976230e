//! Per-process and Linux attributes (runtime-spec v1.3): scheduler, I/O priority, exec CPU
//! affinity, personality, memory policy, network devices, and the LSM / Intel RDT fields on a
//! host that cannot honour them. Each is checked from inside; bad values must fail `create`,
//! with an error that names the field, and leave nothing behind.

use super::errors::create_fails_naming;
use super::{skip, Test};
use crate::harness::Ctx;
use crate::report::Report;
use crate::suite::exec::procs;
use crate::suite::lifecycle::running_sleeper;
use anyhow::{ensure, Context, Result};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;

pub const TESTS: &[Test] = &[
    ("attrs/scheduler-batch-nice", scheduler_batch_nice),
    ("attrs/scheduler-bad-nice", |c| {
        create_fails_naming(c, "nice", |v| {
            v["process"]["scheduler"] = json!({ "policy": "SCHED_OTHER", "nice": 40 })
        })
    }),
    // SCHED_ISO is in the spec but not in Linux: the kernel's refusal must fail create.
    ("attrs/scheduler-refused-policy", |c| {
        create_fails_naming(c, "scheduler", |v| {
            v["process"]["scheduler"] = json!({ "policy": "SCHED_ISO" })
        })
    }),
    ("attrs/scheduler-fifo", scheduler_fifo),
    ("attrs/io-priority", io_priority),
    (
        "attrs/exec-scheduler-io-priority",
        exec_scheduler_io_priority,
    ),
    ("attrs/exec-cpu-affinity", exec_cpu_affinity),
    ("attrs/exec-cpu-affinity-offline-cpu", |c| {
        create_fails_naming(c, "execCPUAffinity", |v| {
            v["process"]["execCPUAffinity"] = json!({ "final": "1000" })
        })
    }),
    ("attrs/personality-linux32", personality_linux32),
    ("attrs/memory-policy-bind", memory_policy_bind),
    (
        "attrs/memory-policy-advertised-modes",
        memory_policy_advertised_modes,
    ),
    ("attrs/memory-policy-bad-node", |c| {
        create_fails_naming(c, "memoryPolicy", |v| {
            v["linux"]["memoryPolicy"] = json!({ "mode": "MPOL_BIND", "nodes": "9" })
        })
    }),
    ("attrs/apparmor-unavailable", |c| {
        no_apparmor()?;
        create_fails_naming(c, "apparmor", |v| {
            v["process"]["apparmorProfile"] = json!("runtime-tests")
        })
    }),
    ("attrs/exec-apparmor-unavailable", exec_apparmor_unavailable),
    ("attrs/selinux-unavailable", |c| {
        if Path::new("/sys/fs/selinux/enforce").exists() {
            return Err(skip("the host has SELinux"));
        }
        create_fails_naming(c, "selinux", |v| {
            v["process"]["selinuxLabel"] = json!("system_u:system_r:container_t:s0")
        })
    }),
    ("attrs/intel-rdt-unavailable", |c| {
        if Path::new("/sys/fs/resctrl/schemata").exists() {
            return Err(skip("the host has resctrl mounted"));
        }
        create_fails_naming(c, "intelRdt", |v| {
            v["linux"]["intelRdt"] = json!({ "closID": "runtime-tests" })
        })
    }),
    ("attrs/net-devices", net_devices),
    (
        "attrs/net-devices-time-namespace",
        net_devices_time_namespace,
    ),
    ("attrs/net-devices-before-sysctl", net_devices_before_sysctl),
    ("attrs/net-devices-need-netns", net_devices_need_netns),
    ("attrs/net-devices-missing-device", |c| {
        create_fails_naming(c, "netDevices", |v| {
            v["linux"]["netDevices"] = json!({ "rt-no-such-dev": {} })
        })
    }),
];

fn no_apparmor() -> Result<()> {
    let enabled = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled");
    if enabled.is_ok_and(|s| s.starts_with('Y')) {
        return Err(skip("the host has AppArmor"));
    }
    Ok(())
}

/// `exec --apparmor` must fail, naming AppArmor, and start nothing in the container.
fn exec_apparmor_unavailable(ctx: &mut Ctx) -> Result<()> {
    no_apparmor()?;
    let (b, _) = running_sleeper(ctx)?;
    let before = procs(&b)?;
    let out = ctx
        .rt(&["exec", "--apparmor", "runtime-tests", &b.id, "sleep", "300"])?
        .failed()?;
    ensure!(
        out.stderr.to_lowercase().contains("apparmor"),
        "the error does not name AppArmor: {}",
        out.stderr.trim()
    );
    ensure!(
        procs(&b)? == before,
        "the failed exec left a process: {before:?} -> {:?}",
        procs(&b)?
    );
    Ok(())
}

fn scheduler_batch_nice(ctx: &mut Ctx) -> Result<()> {
    let r = ctx.check(
        |v| v["process"]["scheduler"] = json!({ "policy": "SCHED_BATCH", "nice": 7 }),
        &[],
    )?;
    const SCHED_BATCH: u64 = 3;
    let s = r.get("sched");
    ensure!(
        s["policy"] == SCHED_BATCH && s["nice"] == 7,
        "sched_getattr: {s}, want policy {SCHED_BATCH} nice 7"
    );
    Ok(())
}

/// SCHED_FIFO with a priority, seen from inside. Where the container's cgroup has no real-time
/// budget (RT group scheduling, v1 `cpu.rt_runtime_us`: a new cgroup gets 0) the kernel refuses
/// the policy, and create must fail naming the field instead.
fn scheduler_fifo(ctx: &mut Ctx) -> Result<()> {
    let fifo = json!({ "policy": "SCHED_FIFO", "priority": 10 });
    if crate::harness::hierarchies()
        .iter()
        .any(|h| h.join("cpu.rt_runtime_us").exists())
    {
        return create_fails_naming(ctx, "scheduler", |v| v["process"]["scheduler"] = fifo);
    }
    if let Err(e) = fifo_allowed() {
        return Err(skip(format!(
            "this host refuses SCHED_FIFO to the test itself: {e}"
        )));
    }
    let r = ctx.check(|v| v["process"]["scheduler"] = fifo, &[])?;
    const SCHED_FIFO: u64 = 1;
    let s = r.get("sched");
    ensure!(
        s["policy"] == SCHED_FIFO && s["priority"] == 10,
        "sched_getattr: {s}, want policy {SCHED_FIFO} priority 10"
    );
    Ok(())
}

/// Whether a thread of ours may switch to SCHED_FIFO (it exits right after).
fn fifo_allowed() -> std::io::Result<()> {
    std::thread::spawn(|| {
        let param = libc::sched_param { sched_priority: 10 };
        // SAFETY: pid 0 is the calling thread; param is a valid sched_param.
        if unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) } == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    })
    .join()
    .unwrap_or_else(|_| Err(std::io::Error::other("probe thread panicked")))
}

fn io_priority(ctx: &mut Ctx) -> Result<()> {
    let r = ctx.check(
        |v| v["process"]["ioPriority"] = json!({ "class": "IOPRIO_CLASS_IDLE", "priority": 0 }),
        &[],
    )?;
    // IOPRIO_PRIO_VALUE(IOPRIO_CLASS_IDLE, 0)
    let want = 3 << 13;
    ensure!(
        r.get("ioprio") == want,
        "ioprio_get: {}, want {want}",
        r.get("ioprio")
    );
    Ok(())
}

/// A process `exec` adds gets its own scheduler and I/O priority from its process JSON.
fn exec_scheduler_io_priority(ctx: &mut Ctx) -> Result<()> {
    let (b, _) = running_sleeper(ctx)?;
    let file = ctx.dir.join("process.json");
    let process = json!({
        "terminal": false, "user": { "uid": 0, "gid": 0 }, "args": ["/checker"], "cwd": "/",
        "scheduler": { "policy": "SCHED_BATCH", "nice": 3 },
        "ioPriority": { "class": "IOPRIO_CLASS_BE", "priority": 5 },
    });
    std::fs::write(&file, process.to_string())?;
    let path = file.to_str().context("utf-8 path")?;
    let out = ctx.rt(&["exec", "--process", path, &b.id])?.ok()?;
    let r = Report::parse(&out.stdout)?;
    let s = r.get("sched");
    ensure!(
        s["policy"] == 3 && s["nice"] == 3,
        "sched_getattr: {s}, want SCHED_BATCH nice 3"
    );
    // IOPRIO_PRIO_VALUE(IOPRIO_CLASS_BE, 5)
    let want = (2 << 13) | 5;
    ensure!(
        r.get("ioprio") == want,
        "ioprio_get: {}, want {want}",
        r.get("ioprio")
    );
    Ok(())
}

fn online_cpus() -> Result<usize> {
    Ok(std::thread::available_parallelism()?.get())
}

/// Applies to processes `exec` adds (the spec exempts the init): the final set must hold.
fn exec_cpu_affinity(ctx: &mut Ctx) -> Result<()> {
    if online_cpus()? < 2 {
        return Err(skip("needs two CPUs"));
    }
    let b = ctx.bundle(|v| {
        v["process"]["args"] = json!(["sleep", "300"]);
        v["process"]["execCPUAffinity"] = json!({ "initial": "0", "final": "1" });
    })?;
    ctx.rt(&["run", "--detach", "--bundle", b.dir_str(), &b.id])?
        .ok()?;
    ctx.wait_status(&b.id, "running")?;
    let out = ctx.rt(&["exec", &b.id, "/checker"])?.ok()?;
    let r = Report::parse(&out.stdout)?;
    ensure!(
        r.get("affinity") == &json!([1]),
        "exec'd process runs on cpus {}, want [1]",
        r.get("affinity")
    );
    Ok(())
}

fn personality_linux32(ctx: &mut Ctx) -> Result<()> {
    let r = ctx.check(
        |v| v["linux"]["personality"] = json!({ "domain": "LINUX32" }),
        &[],
    )?;
    const PER_LINUX32: i64 = 0x0008;
    let got = r
        .get("personality")
        .as_i64()
        .context("no personality reported")?;
    ensure!(
        got & 0xff == PER_LINUX32,
        "personality {got:#x}, want domain {PER_LINUX32:#x}"
    );
    Ok(())
}

fn memory_policy_bind(ctx: &mut Ctx) -> Result<()> {
    let r = ctx.check(
        |v| v["linux"]["memoryPolicy"] = json!({ "mode": "MPOL_BIND", "nodes": "0" }),
        &[],
    )?;
    const MPOL_BIND: i64 = 2;
    let m = r.get("mempolicy");
    ensure!(
        m["mode"] == MPOL_BIND && m["nodes"] == json!([0]),
        "get_mempolicy: {m}, want MPOL_BIND on node 0"
    );
    Ok(())
}

/// Every mode `features` lists must take effect (nodes "0" where the mode takes nodes).
fn memory_policy_advertised_modes(ctx: &mut Ctx) -> Result<()> {
    let out = ctx.rt(&["features"])?.ok()?;
    let f: Value = serde_json::from_str(&out.stdout).context("features output")?;
    let modes = f["linux"]["memoryPolicy"]["modes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for mode in modes.iter().filter_map(Value::as_str) {
        // Values of linux/mempolicy.h.
        let (number, nodes) = match mode {
            "MPOL_DEFAULT" => (0, None),
            "MPOL_PREFERRED" => (1, Some("0")),
            "MPOL_BIND" => (2, Some("0")),
            "MPOL_INTERLEAVE" => (3, Some("0")),
            "MPOL_LOCAL" => (4, None),
            "MPOL_PREFERRED_MANY" => (5, Some("0")),
            "MPOL_WEIGHTED_INTERLEAVE" => (6, Some("0")),
            m => anyhow::bail!("features lists an unknown memory policy mode {m}"),
        };
        let r = ctx
            .check(
                |v| v["linux"]["memoryPolicy"] = json!({ "mode": mode, "nodes": nodes }),
                &[],
            )
            .with_context(|| format!("advertised mode {mode}"))?;
        let got = &r.get("mempolicy")["mode"];
        ensure!(
            got == number,
            "{mode}: get_mempolicy mode {got}, want {number}"
        );
    }
    Ok(())
}

/// A veth pair on the host (kernels often lack the dummy driver; veth is as virtual: it dies
/// with the namespace it was moved to). Deleted at the end if still there.
struct Veth(&'static str, &'static str);

impl Veth {
    fn add(name: &'static str, peer: &'static str) -> Result<Veth> {
        let args = ["link", "add", name, "type", "veth", "peer", "name", peer];
        match Command::new("ip").args(args).status() {
            Ok(s) if s.success() => Ok(Veth(name, peer)),
            Ok(s) => Err(skip(format!("`ip {}` failed: {s}", args.join(" ")))),
            Err(e) => Err(skip(format!("ip(8): {e}"))),
        }
    }

    fn on_host(&self) -> bool {
        Path::new("/sys/class/net").join(self.0).exists()
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        // Deleting either end deletes the pair.
        for end in [self.0, self.1] {
            if Path::new("/sys/class/net").join(end).exists() {
                let _ = Command::new("ip").args(["link", "del", end]).status();
                return;
            }
        }
    }
}

fn net_devices(ctx: &mut Ctx) -> Result<()> {
    net_devices_with(ctx, "rt-veth0", "rt-veth0p", |_| {})
}

/// With a time namespace too (a runtime may then set up its namespaces in more steps).
fn net_devices_time_namespace(ctx: &mut Ctx) -> Result<()> {
    if !Path::new("/proc/self/ns/time").exists() {
        return Err(skip("kernel without time namespaces"));
    }
    net_devices_with(ctx, "rt-veth3", "rt-veth3p", |v| {
        let ns = v["linux"]["namespaces"].as_array_mut().expect("namespaces");
        ns.push(json!({ "type": "time" }));
        v["linux"]["timeOffsets"] = json!({ "monotonic": { "secs": 100, "nanosecs": 0 } });
    })
}

/// Host device `host` (a veth with `peer`) must be `ctr0` in the container and gone from the
/// host once the container is.
fn net_devices_with(
    ctx: &mut Ctx,
    host: &'static str,
    peer: &'static str,
    edit: impl FnOnce(&mut Value),
) -> Result<()> {
    let dev = Veth::add(host, peer)?;
    let r = ctx.check(
        |v| {
            v["linux"]["netDevices"] = json!({ host: { "name": "ctr0" } });
            edit(v);
        },
        &["ls:/sys/class/net"],
    )?;
    let inside = r.probe("ls:/sys/class/net")?;
    ensure!(
        inside
            .as_array()
            .is_some_and(|l| l.contains(&json!("ctr0"))),
        "no ctr0 in the container: {inside}"
    );
    // A virtual device dies with the container's network namespace.
    ensure!(!dev.on_host(), "{host} is back on the host");
    Ok(())
}

/// The device is in the namespace before the init's setup: a sysctl of its own applies.
fn net_devices_before_sysctl(ctx: &mut Ctx) -> Result<()> {
    let _dev = Veth::add("rt-veth2", "rt-veth2p")?;
    let file = "/proc/sys/net/ipv4/conf/ctr2/forwarding";
    let probe = format!("read:{file}");
    let r = ctx.check(
        |v| {
            v["linux"]["netDevices"] = json!({ "rt-veth2": { "name": "ctr2" } });
            v["linux"]["sysctl"] = json!({ "net.ipv4.conf.ctr2.forwarding": "1" });
        },
        &[&probe],
    )?;
    let got = r.probe(&probe)?;
    ensure!(
        got.as_str().map(str::trim) == Some("1"),
        "{file} is {got}, want 1"
    );
    Ok(())
}

fn net_devices_need_netns(ctx: &mut Ctx) -> Result<()> {
    let dev = Veth::add("rt-veth1", "rt-veth1p")?;
    create_fails_naming(ctx, "netDevices", |v| {
        v["linux"]["netDevices"] = json!({ "rt-veth1": {} });
        let ns = v["linux"]["namespaces"].as_array_mut().expect("namespaces");
        ns.retain(|n| n["type"] != "network");
    })?;
    ensure!(dev.on_host(), "rt-veth1 left the host");
    Ok(())
}
