//! `linux.memoryPolicy`: the init's NUMA memory policy (set_mempolicy(2)), inherited by what it
//! execs. The kernel judges the nodes (online, allowed by the cpuset), so its refusal names the field.

use oci_spec::runtime::{Linux, LinuxMemoryPolicy, MemoryPolicyFlagType, MemoryPolicyModeType};

use super::sched::parse_id_list;
use crate::{Context, Error, Result};

const FIELD: &str = "linux.memoryPolicy";

pub fn validate(linux: &Linux) -> Result<()> {
    let Some(p) = linux.memory_policy() else {
        return Ok(());
    };
    nodemask(p)?;
    let nodes = p.nodes().as_deref().is_some_and(|n| !n.is_empty());
    use MemoryPolicyModeType::*;
    match p.mode() {
        MpolDefault | MpolLocal if nodes => {
            return Err(Error::config(format_args!(
                "{FIELD}.nodes: must be empty for {}",
                p.mode()
            )));
        }
        MpolBind | MpolInterleave | MpolWeightedInterleave | MpolPreferredMany if !nodes => {
            return Err(Error::config(format_args!(
                "{FIELD}.nodes: required for {}",
                p.mode()
            )));
        }
        _ => {}
    }
    let flags = p.flags().as_deref().unwrap_or_default();
    if [
        MemoryPolicyFlagType::MpolFStaticNodes,
        MemoryPolicyFlagType::MpolFRelativeNodes,
    ]
    .iter()
    .all(|f| flags.contains(f))
    {
        return Err(Error::config(format_args!(
            "{FIELD}.flags: MPOL_F_STATIC_NODES and MPOL_F_RELATIVE_NODES exclude each other"
        )));
    }
    Ok(())
}

/// The nodes as the bitmask set_mempolicy takes.
fn nodemask(p: &LinuxMemoryPolicy) -> Result<Vec<libc::c_ulong>> {
    let nodes = match p.nodes().as_deref().filter(|n| !n.is_empty()) {
        Some(list) => parse_id_list(&format!("{FIELD}.nodes"), list)?,
        None => Vec::new(),
    };
    let bits = libc::c_ulong::BITS;
    let max = nodes.iter().max().copied();
    if max.is_some_and(|m| m >= 4096) {
        return Err(Error::config(format_args!(
            "{FIELD}.nodes: node {} is out of range",
            max.unwrap_or_default()
        )));
    }
    let mut mask = vec![0; max.map_or(0, |m| m / bits + 1) as usize];
    for n in nodes {
        mask[(n / bits) as usize] |= 1 << (n % bits);
    }
    Ok(mask)
}

/// For `berth features`: the modes [`apply`] knows that this kernel takes (each tried on this
/// process through `apply` itself, then reset: e.g. 6.1 has no MPOL_WEIGHTED_INTERLEAVE), and
/// every flag.
pub fn features() -> serde_json::Value {
    use MemoryPolicyFlagType::*;
    use MemoryPolicyModeType::*;
    let known = [
        MpolDefault,
        MpolPreferred,
        MpolBind,
        MpolInterleave,
        MpolLocal,
        MpolPreferredMany,
        MpolWeightedInterleave,
    ];
    let takes = |mode: MemoryPolicyModeType| {
        let nodes = (!matches!(mode, MpolDefault | MpolLocal)).then_some("0");
        let policy = serde_json::json!({ "mode": mode.to_string(), "nodes": nodes });
        let mut linux = Linux::default();
        linux.set_memory_policy(serde_json::from_value(policy).ok());
        apply(&linux).is_ok()
    };
    let modes: Vec<String> = known
        .into_iter()
        .filter(|m| takes(*m))
        .map(|m| m.to_string())
        .collect();
    takes(MpolDefault);
    let flags = [MpolFNumaBalancing, MpolFRelativeNodes, MpolFStaticNodes];
    serde_json::json!({ "modes": modes, "flags": flags.map(|f| f.to_string()) })
}

pub fn apply(linux: &Linux) -> Result<()> {
    let Some(p) = linux.memory_policy() else {
        return Ok(());
    };
    use MemoryPolicyModeType::*;
    // Values of linux/mempolicy.h; libc lacks the newer modes.
    let mode = match p.mode() {
        MpolDefault => libc::MPOL_DEFAULT,
        MpolPreferred => libc::MPOL_PREFERRED,
        MpolBind => libc::MPOL_BIND,
        MpolInterleave => libc::MPOL_INTERLEAVE,
        MpolLocal => libc::MPOL_LOCAL,
        MpolPreferredMany => 5,
        MpolWeightedInterleave => 6,
    };
    let flags = p.flags().iter().flatten().fold(0, |acc, f| {
        acc | match f {
            MemoryPolicyFlagType::MpolFNumaBalancing => libc::MPOL_F_NUMA_BALANCING,
            MemoryPolicyFlagType::MpolFRelativeNodes => libc::MPOL_F_RELATIVE_NODES,
            MemoryPolicyFlagType::MpolFStaticNodes => libc::MPOL_F_STATIC_NODES,
        }
    });
    let mask = nodemask(p)?;
    // The kernel reads maxnode - 1 bits: exactly the mask's.
    let maxnode = mask.len() as libc::c_ulong * libc::c_ulong::from(libc::c_ulong::BITS) + 1;
    let ptr = if mask.is_empty() {
        std::ptr::null()
    } else {
        mask.as_ptr()
    };
    // SAFETY: ptr is null or points to mask, which holds maxnode - 1 bits and outlives the call.
    let r = unsafe { libc::syscall(libc::SYS_set_mempolicy, mode | flags, ptr, maxnode) };
    let nodes = p.nodes().as_deref().unwrap_or_default();
    nix::errno::Errno::result(r)
        .map(drop)
        .ctx(|| format!("{FIELD}: set_mempolicy {} nodes {nodes:?}", p.mode()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(v: serde_json::Value) -> LinuxMemoryPolicy {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn masks() {
        let p = policy(serde_json::json!({ "mode": "MPOL_BIND", "nodes": "0,2,64" }));
        assert_eq!(nodemask(&p).unwrap(), [0b101, 1]);
        assert!(
            nodemask(&policy(serde_json::json!({ "mode": "MPOL_LOCAL" })))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn modes_and_nodes() {
        let check = |v| {
            let mut linux = Linux::default();
            linux.set_memory_policy(Some(policy(v)));
            validate(&linux)
        };
        use serde_json::json;
        assert!(check(json!({ "mode": "MPOL_BIND", "nodes": "0" })).is_ok());
        assert!(check(json!({ "mode": "MPOL_PREFERRED" })).is_ok());
        for bad in [
            json!({ "mode": "MPOL_BIND" }),
            json!({ "mode": "MPOL_DEFAULT", "nodes": "0" }),
            json!({ "mode": "MPOL_BIND", "nodes": "0-" }),
            json!({ "mode": "MPOL_INTERLEAVE", "nodes": "0", "flags": ["MPOL_F_STATIC_NODES", "MPOL_F_RELATIVE_NODES"] }),
        ] {
            let e = check(bad.clone()).unwrap_err().to_string();
            assert!(e.contains(FIELD), "{bad}: {e}");
        }
    }
}
