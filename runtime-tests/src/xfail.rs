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
];

pub fn expected_failure(runtime: &str, test: &str) -> Option<&'static str> {
    EXPECTED_FAILURES
        .iter()
        .find(|(r, t, _)| *r == runtime && *t == test)
        .map(|(_, _, why)| *why)
}
