//! Known spec deviations of real runtimes. The tests stay strict; a failure
//! listed here is reported as `xfail` with the reason instead of `not ok`.

/// (runtime name, test name, reason)
pub const EXPECTED_FAILURES: &[(&str, &str, &str)] = &[];

pub fn expected_failure(runtime: &str, test: &str) -> Option<&'static str> {
    EXPECTED_FAILURES.iter().find(|(r, t, _)| *r == runtime && *t == test).map(|(_, _, why)| *why)
}
