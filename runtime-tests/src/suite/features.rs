//! `features` must advertise only what the runtime really does: every namespace it lists is
//! created, every mount option it lists is accepted and, where mountinfo shows it, applied.

use crate::harness::{ns_inode, Ctx};
use crate::suite::inside::cap_mask;
use crate::suite::Test;
use anyhow::{ensure, Context, Result};
use serde_json::{json, Value};

pub const TESTS: &[Test] = &[
    ("features/namespaces", namespaces),
    ("features/mount-options", mount_options),
    ("features/seccomp", seccomp),
    ("features/capabilities", capabilities),
];

/// Syscalls a container never makes while starting or running `true`, one per rule.
const RARE: &[&str] = &[
    "acct",
    "swapon",
    "swapoff",
    "kexec_load",
    "init_module",
    "delete_module",
    "quotactl",
    "syslog",
];

/// Every advertised seccomp action, operator, architecture and supported flag is accepted in a
/// profile that still lets the container run (NOTIFY needs a listener: seccomp/notify-listener).
fn seccomp(ctx: &mut Ctx) -> Result<()> {
    let f = features(ctx)?;
    let sc = &f["linux"]["seccomp"];
    if sc["enabled"] != true {
        return Ok(());
    }
    let actions: Vec<String> = strings(&sc["actions"])
        .into_iter()
        .filter(|a| a != "SCMP_ACT_NOTIFY")
        .collect();
    let operators = strings(&sc["operators"]);
    ensure!(
        actions.len() <= RARE.len() && operators.len() <= RARE.len(),
        "more items than test syscalls"
    );
    let rules = |items: &[String], rule: &dyn Fn(&str, &str) -> Value| -> Vec<Value> {
        items
            .iter()
            .zip(RARE)
            .map(|(item, sys)| rule(item, sys))
            .collect()
    };
    let profiles = [
        (
            "actions",
            json!({ "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": rules(&actions, &|a, s| json!({ "names": [s], "action": a })) }),
        ),
        (
            "operators",
            json!({ "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": rules(&operators, &|op, s| json!({ "names": [s], "action": "SCMP_ACT_ERRNO",
                "args": [{ "index": 0, "value": 1, "valueTwo": 1, "op": op }] })) }),
        ),
        (
            "architectures",
            json!({ "defaultAction": "SCMP_ACT_ALLOW", "architectures": sc["archs"] }),
        ),
        (
            "flags",
            json!({ "defaultAction": "SCMP_ACT_ALLOW", "flags": sc["supportedFlags"],
            "syscalls": [{ "names": ["acct"], "action": "SCMP_ACT_ERRNO" }] }),
        ),
    ];
    for (what, profile) in profiles {
        let b = ctx.bundle(|v| {
            v["process"]["args"] = json!(["true"]);
            v["linux"]["seccomp"] = profile;
        })?;
        ctx.rt(&["run", "--bundle", b.dir_str(), &b.id])?
            .ok()
            .with_context(|| format!("advertised seccomp {what}"))?;
    }
    Ok(())
}

/// Every advertised capability that this host lets anyone have (our own bounding set: a
/// runtime can't grant more than its caller holds) can be granted to the container.
fn capabilities(ctx: &mut Ctx) -> Result<()> {
    let f = features(ctx)?;
    let status = std::fs::read_to_string("/proc/self/status")?;
    let ours = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .context("no CapBnd")?
        .trim();
    let ours = u64::from_str_radix(ours, 16)?;
    let caps: Vec<Value> = f["linux"]["capabilities"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| cap_mask(&json!([c])) & ours != 0)
        .cloned()
        .collect();
    let caps = Value::from(caps);
    let want = cap_mask(&caps);
    let r = ctx.check(
        |v| {
            for set in ["bounding", "effective", "permitted"] {
                v["process"]["capabilities"][set] = caps.clone();
            }
        },
        &[],
    )?;
    let bnd = u64::from_str_radix(r.status("CapBnd"), 16)?;
    ensure!(
        bnd & want == want,
        "advertised capabilities missing from CapBnd: {:#x}",
        want & !bnd
    );
    Ok(())
}

fn features(ctx: &mut Ctx) -> Result<Value> {
    let out = ctx.rt(&["features"])?.ok()?;
    serde_json::from_str(&out.stdout).with_context(|| format!("features output: {}", out.stdout))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(String::from))
        .collect()
}

fn namespaces(ctx: &mut Ctx) -> Result<()> {
    let f = features(ctx)?;
    for ns in strings(&f["linux"]["namespaces"]) {
        // The spec's names and the /proc/self/ns names differ for two kinds.
        let proc_name = match ns.as_str() {
            "mount" => "mnt",
            "network" => "net",
            n => n,
        };
        let r = ctx
            .check(
                |v| {
                    let list = v["linux"]["namespaces"].as_array_mut().expect("namespaces");
                    if !list.iter().any(|n| n["type"] == ns.as_str()) {
                        list.push(json!({ "type": ns }));
                    }
                    if ns == "user" {
                        let map = json!([{ "containerID": 0, "hostID": 100000, "size": 65536 }]);
                        v["linux"]["uidMappings"] = map.clone();
                        v["linux"]["gidMappings"] = map;
                    }
                },
                &[],
            )
            .with_context(|| format!("advertised namespace {ns}"))?;
        let inner = r.get("ns")[proc_name]
            .as_u64()
            .with_context(|| format!("no {proc_name} namespace reported"))?;
        ensure!(
            inner != ns_inode("self", proc_name)?,
            "advertised namespace {ns} was not created"
        );
    }
    Ok(())
}

/// Options whose effect shows in /proc/self/mountinfo, as the word shown there.
fn visible(opt: &str) -> Option<&str> {
    let plain = opt.strip_prefix('r').filter(|o| {
        [
            "ro",
            "nosuid",
            "nodev",
            "noexec",
            "noatime",
            "nodiratime",
            "nosymfollow",
        ]
        .contains(o)
    });
    match opt {
        "ro" | "nosuid" | "nodev" | "noexec" | "noatime" | "nodiratime" | "nosymfollow" => {
            Some(opt)
        }
        _ => plain,
    }
}

fn mount_options(ctx: &mut Ctx) -> Result<()> {
    let f = features(ctx)?;
    // `remount` changes an existing mount: there is none at a fresh destination to change.
    // `idmap`/`ridmap` need a bind mount, a mapping and a filesystem the kernel can idmap:
    // inside/idmap-* test them.
    let opts: Vec<String> = strings(&f["mountOptions"])
        .into_iter()
        .filter(|o| !matches!(o.as_str(), "remount" | "idmap" | "ridmap"))
        .collect();
    let r = ctx.check(
        |v| {
            let mounts = v["mounts"].as_array_mut().expect("mounts");
            for (i, opt) in opts.iter().enumerate() {
                let dest = format!("/mnt/o{i}");
                mounts.push(if opt == "bind" || opt == "rbind" {
                    json!({ "destination": dest, "type": "bind", "source": "rootfs/etc", "options": [opt] })
                } else {
                    json!({ "destination": dest, "type": "tmpfs", "source": "tmpfs", "options": [opt] })
                });
            }
        },
        &[],
    )
    .context("a container with one mount per advertised option")?;
    for (i, opt) in opts.iter().enumerate() {
        if let Some(word) = visible(opt) {
            let m = r.mount(&format!("/mnt/o{i}"))?;
            ensure!(m.has(word), "advertised option {opt} not applied: {m:?}");
        }
    }
    Ok(())
}
