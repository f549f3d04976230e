//! `features` must advertise only what the runtime really does: every namespace it lists is
//! created, every mount option it lists is accepted and, where mountinfo shows it, applied.

use crate::harness::{ns_inode, Ctx};
use crate::suite::Test;
use anyhow::{ensure, Context, Result};
use serde_json::{json, Value};

pub const TESTS: &[Test] = &[
    ("features/namespaces", namespaces),
    ("features/mount-options", mount_options),
];

fn features(ctx: &mut Ctx) -> Result<Value> {
    let out = ctx.rt(&["features"])?.ok()?;
    serde_json::from_str(&out.stdout).with_context(|| format!("features output: {}", out.stdout))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().into_iter().flatten().filter_map(|s| s.as_str().map(String::from)).collect()
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
        let r = ctx.check(
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
        let inner = r.get("ns")[proc_name].as_u64().with_context(|| format!("no {proc_name} namespace reported"))?;
        ensure!(inner != ns_inode("self", proc_name)?, "advertised namespace {ns} was not created");
    }
    Ok(())
}

/// Options whose effect shows in /proc/self/mountinfo, as the word shown there.
fn visible(opt: &str) -> Option<&str> {
    let plain = opt.strip_prefix('r').filter(|o| ["ro", "nosuid", "nodev", "noexec", "noatime", "nodiratime", "nosymfollow"].contains(o));
    match opt {
        "ro" | "nosuid" | "nodev" | "noexec" | "noatime" | "nodiratime" | "nosymfollow" => Some(opt),
        _ => plain,
    }
}

fn mount_options(ctx: &mut Ctx) -> Result<()> {
    let f = features(ctx)?;
    // `remount` changes an existing mount: there is none at a fresh destination to change.
    let opts: Vec<String> = strings(&f["mountOptions"]).into_iter().filter(|o| o != "remount").collect();
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
