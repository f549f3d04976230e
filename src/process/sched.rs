//! How a container process is scheduled: `process.scheduler` (sched_setattr), `process.ioPriority`
//! (ioprio_set) and `process.execCPUAffinity` (sched_setaffinity, for `exec`'d processes only: the
//! spec says it does not apply to the init).

use nix::sched::CpuSet;
use nix::unistd::Pid;
use oci_spec::runtime::{
    IOPriorityClass, LinuxIOPriority, LinuxSchedulerFlag, LinuxSchedulerPolicy, Process, Scheduler,
};

use crate::{Context, Error, Result};

const ONLINE_CPUS: &str = "/sys/devices/system/cpu/online";

/// Checks that need no system call, plus the CPU lists against the host's online CPUs.
pub fn validate(process: &Process) -> Result<()> {
    if let Some(s) = process.scheduler() {
        validate_scheduler(s)?;
    }
    if let Some(io) = process.io_priority() {
        if !(0..=7).contains(&io.priority()) {
            return Err(Error::config(format_args!(
                "process.ioPriority.priority {}: must be 0..7",
                io.priority()
            )));
        }
    }
    if let Some(aff) = process.exec_cpu_affinity() {
        for (field, list) in [
            ("initial", aff.initial()),
            ("final", aff.cpu_affinity_final()),
        ] {
            let Some(list) = list.as_deref().filter(|l| !l.is_empty()) else {
                continue;
            };
            let field = format!("process.execCPUAffinity.{field}");
            if let Some(cpu) = first_missing(&field, list, ONLINE_CPUS)? {
                return Err(Error::config(format_args!(
                    "{field} {list:?}: cpu {cpu} is not online"
                )));
            }
        }
    }
    Ok(())
}

fn validate_scheduler(s: &Scheduler) -> Result<()> {
    use LinuxSchedulerPolicy::*;
    let policy = *s.policy();
    if let Some(nice) = s.nice().filter(|n| !(-20..=19).contains(n)) {
        return Err(Error::config(format_args!(
            "process.scheduler.nice {nice}: must be -20..19"
        )));
    }
    let priority = s.priority().unwrap_or(0);
    let realtime = matches!(policy, SchedFifo | SchedRr);
    if realtime && !(1..=99).contains(&priority) {
        return Err(Error::config(format_args!(
            "process.scheduler.priority {priority}: {policy} needs 1..99"
        )));
    }
    if !realtime && priority != 0 {
        return Err(Error::config(format_args!(
            "process.scheduler.priority {priority}: must be 0 for {policy}"
        )));
    }
    let dl = [s.runtime(), s.deadline(), s.period()].map(|v| v.unwrap_or(0));
    if policy == SchedDeadline {
        let [runtime, deadline, period] = dl;
        let period = if period == 0 { deadline } else { period };
        if runtime == 0 || runtime > deadline || deadline > period {
            return Err(Error::config(format_args!(
                "process.scheduler: {policy} needs 0 < runtime <= deadline <= period (got {runtime}, {deadline}, {period})"
            )));
        }
    } else if dl.iter().any(|v| *v != 0) {
        return Err(Error::config(format_args!("process.scheduler: runtime, deadline and period are for SCHED_DEADLINE only, not {policy}")));
    }
    Ok(())
}

/// Parse a list like "0-3,7" (the format of execCPUAffinity, memoryPolicy.nodes and sysfs).
pub fn parse_id_list(field: &str, list: &str) -> Result<Vec<u32>> {
    Ok(id_ranges(field, list)?
        .into_iter()
        .flat_map(|(lo, hi)| lo..=hi)
        .collect())
}

/// The ranges of a list like "0-3,7".
fn id_ranges(field: &str, list: &str) -> Result<Vec<(u32, u32)>> {
    let bad = || {
        Error::config(format_args!(
            "{field}: {list:?}: expected a list like \"0-3,7\""
        ))
    };
    let mut ranges = Vec::new();
    for part in list.split(',') {
        let (lo, hi) = part.split_once('-').unwrap_or((part, part));
        let (lo, hi): (u32, u32) = (
            lo.parse().map_err(|_| bad())?,
            hi.parse().map_err(|_| bad())?,
        );
        if lo > hi {
            return Err(bad());
        }
        ranges.push((lo, hi));
    }
    Ok(ranges)
}

/// The first id of `list` (config field `field`) that the sysfs id list `file` (such as the
/// online CPUs) lacks; ranges are compared as ranges, so a huge one costs nothing.
pub fn first_missing(field: &str, list: &str, file: &str) -> Result<Option<u32>> {
    let have = std::fs::read_to_string(file).ctx(|| format!("read {file}"))?;
    let have = id_ranges(file, have.trim())?;
    for (lo, hi) in id_ranges(field, list)? {
        let mut id = lo;
        loop {
            match have.iter().find(|(a, b)| (*a..=*b).contains(&id)) {
                None => return Ok(Some(id)),
                Some(&(_, b)) if b >= hi => break,
                Some(&(_, b)) => id = b + 1,
            }
        }
    }
    Ok(None)
}

/// Scheduler and I/O priority of the calling process; before capabilities are dropped, as the
/// real-time classes need CAP_SYS_NICE / CAP_SYS_ADMIN.
pub fn apply(process: &Process) -> Result<()> {
    if let Some(s) = process.scheduler() {
        set_scheduler(s)?;
    }
    if let Some(io) = process.io_priority() {
        set_io_priority(io)?;
    }
    Ok(())
}

/// The kernel's `struct sched_attr` (SCHED_ATTR_SIZE_VER1).
#[repr(C)]
#[derive(Default)]
struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
    util_min: u32,
    util_max: u32,
}

fn set_scheduler(s: &Scheduler) -> Result<()> {
    use LinuxSchedulerPolicy::*;
    // Values of linux/sched.h; SCHED_ISO was never merged, so the kernel refuses it.
    let policy = match s.policy() {
        SchedOther => 0,
        SchedFifo => 1,
        SchedRr => 2,
        SchedBatch => 3,
        SchedIso => 4,
        SchedIdle => 5,
        SchedDeadline => 6,
    };
    let flags = s.flags().iter().flatten().fold(0, |acc, f| {
        acc | match f {
            LinuxSchedulerFlag::SchedResetOnFork => 0x01,
            LinuxSchedulerFlag::SchedFlagReclaim => 0x02,
            LinuxSchedulerFlag::SchedFlagDLOverrun => 0x04,
            LinuxSchedulerFlag::SchedFlagKeepPolicy => 0x08,
            LinuxSchedulerFlag::SchedFlagKeepParams => 0x10,
            LinuxSchedulerFlag::SchedFlagUtilClampMin => 0x20,
            LinuxSchedulerFlag::SchedFlagUtilClampMax => 0x40,
        }
    });
    let attr = SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        policy,
        flags,
        nice: s.nice().unwrap_or(0),
        priority: s.priority().unwrap_or(0) as u32,
        runtime: s.runtime().unwrap_or(0),
        deadline: s.deadline().unwrap_or(0),
        period: s.period().unwrap_or(0),
        ..Default::default()
    };
    // SAFETY: attr is a live, fully initialised struct sched_attr whose size field is its size.
    let r = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) };
    nix::errno::Errno::result(r)
        .map(drop)
        .ctx(|| format!("process.scheduler: sched_setattr {}", s.policy()))
}

fn set_io_priority(io: &LinuxIOPriority) -> Result<()> {
    const IOPRIO_WHO_PROCESS: libc::c_int = 1;
    const IOPRIO_CLASS_SHIFT: i64 = 13;
    let class = match io.class() {
        IOPriorityClass::IoprioClassRt => 1,
        IOPriorityClass::IoprioClassBe => 2,
        IOPriorityClass::IoprioClassIdle => 3,
    };
    let prio = (class << IOPRIO_CLASS_SHIFT) | io.priority();
    // SAFETY: ioprio_set takes only integers.
    let r = unsafe {
        libc::syscall(
            libc::SYS_ioprio_set,
            IOPRIO_WHO_PROCESS,
            0,
            prio as libc::c_int,
        )
    };
    nix::errno::Errno::result(r).map(drop).ctx(|| {
        format!(
            "process.ioPriority: ioprio_set {} {}",
            io.class(),
            io.priority()
        )
    })
}

/// `execCPUAffinity.initial`, set by the runtime on the new process before it joins the cgroup.
pub fn set_initial_affinity(process: &Process, pid: Pid) -> Result<()> {
    let aff = process.exec_cpu_affinity().as_ref();
    set_affinity("initial", aff.and_then(|a| a.initial().as_deref()), pid)
}

/// `execCPUAffinity.final`, set by the process itself right before it execs.
pub fn set_final_affinity(process: &Process) -> Result<()> {
    let aff = process.exec_cpu_affinity().as_ref();
    set_affinity(
        "final",
        aff.and_then(|a| a.cpu_affinity_final().as_deref()),
        Pid::from_raw(0),
    )
}

fn set_affinity(which: &str, list: Option<&str>, pid: Pid) -> Result<()> {
    let Some(list) = list.filter(|l| !l.is_empty()) else {
        return Ok(());
    };
    let field = format!("process.execCPUAffinity.{which}");
    let mut set = CpuSet::new();
    for cpu in parse_id_list(&field, list)? {
        set.set(cpu as usize)
            .ctx(|| format!("{field}: cpu {cpu}"))?;
    }
    nix::sched::sched_setaffinity(pid, &set).ctx(|| format!("{field}: sched_setaffinity {list:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_ids() {
        let dir = std::env::temp_dir().join(format!("berth-ids-{}", std::process::id()));
        std::fs::write(&dir, "0-3,8-9\n").unwrap();
        let file = dir.to_str().unwrap();
        assert_eq!(first_missing("f", "0-3,9", file).unwrap(), None);
        assert_eq!(first_missing("f", "2-8", file).unwrap(), Some(4));
        assert_eq!(first_missing("f", "9-4294967295", file).unwrap(), Some(10));
        assert!(first_missing("f", "x", file)
            .unwrap_err()
            .to_string()
            .contains("f: \"x\""));
        std::fs::remove_file(&dir).unwrap();
    }

    #[test]
    fn id_lists() {
        assert_eq!(parse_id_list("f", "0-2,5").unwrap(), [0, 1, 2, 5]);
        assert_eq!(parse_id_list("f", "3").unwrap(), [3]);
        for bad in ["", "1-", "2-1", "a", "1,,2", "-1"] {
            let e = parse_id_list("process.execCPUAffinity.final", bad)
                .unwrap_err()
                .to_string();
            assert!(e.contains("process.execCPUAffinity.final"), "{bad:?}: {e}");
        }
    }

    /// A process with `extra` fields.
    fn process(extra: serde_json::Value) -> Process {
        let mut v = serde_json::json!({ "cwd": "/", "user": { "uid": 0, "gid": 0 } });
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn affinity_and_io_priority() {
        use serde_json::json;
        assert!(validate(&process(
            json!({ "execCPUAffinity": { "initial": "0", "final": "0" } })
        ))
        .is_ok());
        let e = validate(&process(
            json!({ "execCPUAffinity": { "final": "0,99999" } }),
        ))
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("process.execCPUAffinity.final") && e.contains("99999"),
            "{e}"
        );
        let e = validate(&process(
            json!({ "ioPriority": { "class": "IOPRIO_CLASS_BE", "priority": 8 } }),
        ))
        .unwrap_err();
        assert!(e.to_string().contains("process.ioPriority"), "{e}");
    }

    fn sched(v: serde_json::Value) -> Result<()> {
        validate_scheduler(&serde_json::from_value(v).unwrap())
    }

    #[test]
    fn scheduler_ranges() {
        use serde_json::json;
        assert!(sched(json!({ "policy": "SCHED_BATCH", "nice": 19 })).is_ok());
        assert!(sched(json!({ "policy": "SCHED_FIFO", "priority": 99 })).is_ok());
        assert!(sched(
            json!({ "policy": "SCHED_DEADLINE", "runtime": 10, "deadline": 20, "period": 30 })
        )
        .is_ok());
        for bad in [
            json!({ "policy": "SCHED_OTHER", "nice": 20 }),
            json!({ "policy": "SCHED_OTHER", "nice": -21 }),
            json!({ "policy": "SCHED_FIFO" }),
            json!({ "policy": "SCHED_RR", "priority": 100 }),
            json!({ "policy": "SCHED_OTHER", "priority": 1 }),
            json!({ "policy": "SCHED_DEADLINE", "runtime": 30, "deadline": 20 }),
            json!({ "policy": "SCHED_BATCH", "runtime": 1 }),
        ] {
            let e = sched(bad.clone()).unwrap_err().to_string();
            assert!(e.contains("process.scheduler"), "{bad}: {e}");
        }
    }
}
