//! Known spec deviations of real runtimes. The tests stay strict; a failure
//! listed here is reported as `xfail` with the reason instead of `not ok`.

/// (runtime name, test name, reason)
pub const EXPECTED_FAILURES: &[(&str, &str, &str)] = &[
    (
        "runc",
        "create-error/unsupported-major-version",
        "runc 1.1 does not validate ociVersion and accepts a config for spec 2.0.0",
    ),
    ("runc", "inside/hostname-domainname", "runc 1.1 ignores the domainname field (support arrived in runc 1.2)"),
    (
        "runc",
        "hooks/create-runs-create-hooks",
        "runc 1.1 runs poststart hooks at the end of create, before start",
    ),
    (
        "runc",
        "features/mount-options",
        "runc 1.1 advertises `defaults` but passes it to the filesystem as mount data (tmpfs: EINVAL)",
    ),
    (
        "runc",
        "attack/mask-with-fake-dev-null",
        "runc 1.1 masks with whatever the container's /dev/null is (CVE-2025-31133, fixed in runc 1.2.8)",
    ),
    ("runc", "inside/time-offsets", "runc 1.1 does not know the time namespace (support arrived in runc 1.2)"),
    (
        "runc",
        "inside/rootfs-propagation",
        "runc 1.1 leaves the container's / private when rootfsPropagation is rshared",
    ),
    (
        "runc",
        "features/seccomp",
        "runc 1.1 advertises seccomp architectures its libseccomp cannot add to a filter",
    ),
    ("runc", "hooks/start-runs-start-hooks", "runc 1.1 runs poststart hooks during create, not during start"),
    (
        "runc",
        "hooks/state-on-stdin",
        "runc 1.1 runs poststart hooks during create, so they get status created instead of running",
    ),
    (
        "runc",
        "seccomp/argument-filter",
        "runc turns every condition of a rule into its own ORed rule once an argument index repeats, so the condition on another argument is not ANDed",
    ),
    (
        "runc",
        "seccomp/getcwd-blocked-runtime-works",
        "runc 1.1.5 checks its cwd with getcwd after loading the filter, so a profile blocking getcwd breaks start",
    ),
    (
        "runc",
        "attrs/scheduler-batch-nice",
        "runc 1.1.5 predates process.scheduler (runtime-spec 1.2) and ignores it",
    ),
    (
        "runc",
        "attrs/scheduler-bad-nice",
        "runc 1.1.5 predates process.scheduler (runtime-spec 1.2) and does not validate it",
    ),
    (
        "runc",
        "attrs/scheduler-refused-policy",
        "runc 1.1.5 predates process.scheduler (runtime-spec 1.2) and ignores it",
    ),
    (
        "runc",
        "attrs/exec-scheduler-io-priority",
        "runc 1.1.5 predates process.scheduler and process.ioPriority (runtime-spec 1.2) and ignores them",
    ),
    (
        "runc",
        "attrs/io-priority",
        "runc 1.1.5 predates process.ioPriority (runtime-spec 1.2) and ignores it",
    ),
    (
        "runc",
        "attrs/exec-cpu-affinity",
        "runc 1.1.5 predates process.execCPUAffinity (runtime-spec 1.2) and ignores it",
    ),
    (
        "runc",
        "attrs/exec-cpu-affinity-offline-cpu",
        "runc 1.1.5 predates process.execCPUAffinity (runtime-spec 1.2) and does not validate it",
    ),
    (
        "runc",
        "attrs/personality-linux32",
        "runc 1.1.5 predates linux.personality (runc 1.2) and ignores it",
    ),
    (
        "runc",
        "attrs/memory-policy-bind",
        "runc 1.1.5 predates linux.memoryPolicy (runtime-spec 1.3) and ignores it",
    ),
    (
        "runc",
        "attrs/memory-policy-bad-node",
        "runc 1.1.5 predates linux.memoryPolicy (runtime-spec 1.3) and does not validate it",
    ),
    (
        "runc",
        "attrs/intel-rdt-unavailable",
        "runc 1.1.5 accepts a linux.intelRdt with only closID on a host without resctrl",
    ),
    (
        "runc",
        "attrs/net-devices",
        "runc 1.1.5 predates linux.netDevices (runtime-spec 1.3) and ignores it",
    ),
    (
        "runc",
        "attrs/net-devices-time-namespace",
        "runc 1.1.5 knows neither time namespaces (runc 1.2) nor linux.netDevices (runtime-spec 1.3)",
    ),
    (
        "runc",
        "attrs/net-devices-before-sysctl",
        "runc 1.1.5 predates linux.netDevices (runtime-spec 1.3), so the sysctl names a device that is not there",
    ),
    (
        "runc",
        "attrs/net-devices-need-netns",
        "runc 1.1.5 predates linux.netDevices (runtime-spec 1.3) and does not validate it",
    ),
    (
        "runc",
        "attrs/net-devices-missing-device",
        "runc 1.1.5 predates linux.netDevices (runtime-spec 1.3) and ignores it",
    ),
    (
        "runc",
        "attrs/scheduler-fifo",
        "runc 1.1.5 predates process.scheduler (runtime-spec 1.2) and ignores it",
    ),
    (
        "runc",
        "create-error/unknown-capability",
        "runc 1.1 ignores a capability name it does not know (a warning), where the spec says it MUST error",
    ),
    (
        "runc",
        "attack/sysctl-through-symlinked-proc",
        "runc 1.1.5 writes sysctls through the container's /proc/sys, following its symlinks (CVE-2025-52881, fixed in runc 1.2.8)",
    ),
    (
        "runc",
        "selinux/mount-label-without-selinux",
        "runc 1.1.5 passes context= to the kernel without SELinux: the mount fails (EINVAL) with an error naming the mount's data, not the field",
    ),
    (
        "runc",
        "selinux/invalid-label",
        "runc 1.1.5 refuses a label the policy does not know, but its error names /proc/self/attr/keycreate, not the field",
    ),
    (
        "runc",
        "lifecycle/delete-force-kills-whole-cgroup",
        "runc 1.1 delete --force kills only the init of a container with its own pid namespace: a process that joined its cgroup from outside survives, and so does the cgroup",
    ),
    // crun 1.8.1, measured in the cgroup v2 VM (it refuses hybrid hosts): make vm-conformance RUNTIME=crun.
    ("crun", "features/namespaces", "crun 1.8 has no features command"),
    ("crun", "cgroups/events-stats", "crun 1.8 has no events command"),
    ("crun", "cgroups/events-end-with-container", "crun 1.8 has no events command"),
    ("crun", "cgroups/oom-event", "crun 1.8 has no events command"),
    ("crun", "features/mount-options", "crun 1.8 has no features command"),
    ("crun", "features/seccomp", "crun 1.8 has no features command"),
    ("crun", "features/capabilities", "crun 1.8 has no features command"),
    ("crun", "exec/env-cwd-user", "crun 1.8 exec has no --additional-gids"),
    ("crun", "hooks/start-runs-start-hooks", "crun 1.8 does not run startContainer hooks during start"),
    ("crun", "hooks/delete-runs-poststop", "crun 1.8 runs the startContainer hooks it skipped at start during delete"),
    ("crun", "hooks/state-on-stdin", "crun 1.8 gives prestart hooks status created instead of creating"),
    (
        "crun",
        "hooks/failing-poststart-stops-container",
        "crun 1.8 ignores a failing poststart hook: start succeeds and the container runs on (seen in the VM)",
    ),
    ("crun", "seccomp/argument-filter", "crun 1.8 does not AND conditions on different syscall arguments"),
    (
        "crun",
        "create-error/invalid-namespace-path",
        "crun 1.8 leaves the container's cgroup behind when a namespace path is invalid",
    ),
    ("crun", "inside/time-offsets", "crun 1.8 fails to start with linux.timeOffsets (its sync socket is reset), seen in the VM"),
    ("crun", "exec/paused-needs-ignore-paused", "crun 1.8 exec has no --ignore-paused (exit 64, usage error)"),
    ("crun", "exec/sub-cgroup", "crun 1.8's container cgroup refused the test's sub-cgroup setup with EACCES in the VM"),
    ("crun", "attrs/scheduler-batch-nice", "crun 1.8 predates process.scheduler (runtime-spec 1.2)"),
    ("crun", "attrs/scheduler-bad-nice", "crun 1.8 predates process.scheduler (runtime-spec 1.2)"),
    ("crun", "attrs/scheduler-refused-policy", "crun 1.8 predates process.scheduler (runtime-spec 1.2)"),
    ("crun", "attrs/exec-scheduler-io-priority", "crun 1.8 predates process.scheduler and ioPriority (runtime-spec 1.2)"),
    ("crun", "attrs/io-priority", "crun 1.8 predates process.ioPriority (runtime-spec 1.2)"),
    ("crun", "attrs/exec-cpu-affinity", "crun 1.8 predates process.execCPUAffinity (runtime-spec 1.2)"),
    ("crun", "attrs/exec-cpu-affinity-offline-cpu", "crun 1.8 predates process.execCPUAffinity (runtime-spec 1.2)"),
    ("crun", "attrs/memory-policy-bind", "crun 1.8 predates linux.memoryPolicy (runtime-spec 1.3)"),
    ("crun", "attrs/memory-policy-advertised-modes", "crun 1.8 has no features command"),
    ("crun", "attrs/memory-policy-bad-node", "crun 1.8 predates linux.memoryPolicy (runtime-spec 1.3)"),
    ("crun", "attrs/selinux-unavailable", "crun 1.8 refuses the label, but its error names /proc/self/attr/keycreate, not the field"),
    ("crun", "attrs/scheduler-fifo", "crun 1.8 predates process.scheduler (runtime-spec 1.2)"),
    ("crun", "create-error/unknown-capability", "crun 1.8 ignores a capability name it does not know, where the spec says it MUST error"),
    (
        "crun",
        "apparmor/exec",
        "crun 1.8 refuses a profile that is not loaded, but its error names /proc/thread-self/attr/exec, not AppArmor",
    ),
    (
        "crun",
        "apparmor/missing-profile",
        "crun 1.8 refuses a profile that is not loaded, but its error names /proc/thread-self/attr/exec, not the field",
    ),
    (
        "crun",
        "selinux/invalid-label",
        "crun 1.8 refuses a label the policy does not know, but its error names /proc/self/attr/keycreate, not the field",
    ),
    (
        "crun",
        "selinux/empty-mount-label",
        "crun 1.8 turns an empty linux.mountLabel into context=\"\" where SELinux is enabled: the kernel refuses the mount",
    ),
    ("crun", "selinux/mount-label-without-selinux", "crun 1.8 drops linux.mountLabel where SELinux is not enabled"),
    ("crun", "attrs/intel-rdt-unavailable", "crun 1.8 accepts linux.intelRdt on a host without resctrl"),
    ("crun", "attrs/net-devices-missing-device", "crun 1.8 predates linux.netDevices (runtime-spec 1.3)"),
    (
        "crun",
        "cgroups/default-device-rules",
        "crun 1.8 applies no device rules at all, not even its defaults, when linux.resources.devices is empty: a node the container mknods opens (seen in the VM)",
    ),
    ("crun", "create-error/negative-memory-limit", "crun 1.8 leaves the container's cgroup behind when the kernel refuses a linux.resources value"),
    ("crun", "create-error/cpus-not-on-host", "crun 1.8 leaves the container's cgroup behind when the kernel refuses a linux.resources value"),
    ("crun", "create-error/unknown-unified-key", "crun 1.8 leaves the container's cgroup behind when a linux.resources.unified file does not exist"),
    ("crun", "create-error/device-rule-bad-type", "crun 1.8 accepts a device rule of type \"x\""),
    (
        "runc",
        "checkpoint/tcp-established",
        "runc 1.5.3's restore fails under CRIU 3.17 in the VM: the loopback TCP sockets cannot connect back (soccr: network is unreachable)",
    ),
];

pub fn expected_failure(runtime: &str, test: &str) -> Option<&'static str> {
    EXPECTED_FAILURES
        .iter()
        .find(|(r, t, _)| *r == runtime && *t == test)
        .map(|(_, _, why)| *why)
}
