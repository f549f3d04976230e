//! Pure conversions from linux.resources values to what the cgroup files take, kept apart from
//! any file access so that the v2 ones can be tested on a v1 host.

use crate::{Error, Result};

/// A byte or count limit where -1 means "no limit": v1 files take `-1`, v2 files `max`.
pub(super) fn v2_limit(value: i64) -> String {
    if value < 0 {
        "max".into()
    } else {
        value.to_string()
    }
}

/// pids.max / pids.limit: a limit of 0 or less is "no limit", as runc takes it.
pub(super) fn pids_max(limit: i64) -> String {
    if limit > 0 {
        limit.to_string()
    } else {
        "max".into()
    }
}

/// cpu.shares (2..=262144, default 1024) to cpu.weight (1..=10000, default 100), as runc does:
/// a curve through the three points (2,1), (1024,100) and (262144,10000) in log space, so that
/// the defaults map onto each other (a straight line would make 1024 shares weight 39).
pub(in crate::cgroups) fn shares_to_weight(shares: u64) -> u64 {
    match shares {
        0 => 0,
        1..=2 => 1,
        262_144.. => 10_000,
        _ => {
            let l = (shares as f64).log2();
            let exponent = (l * l + 125.0 * l) / 612.0 - 7.0 / 34.0;
            10f64.powf(exponent).ceil() as u64
        }
    }
}

/// v1 blkio.weight (10..=1000) to v2 io.weight (1..=10000).
pub(in crate::cgroups) fn blkio_to_io_weight(weight: u16) -> u64 {
    if weight == 0 {
        return 0;
    }
    1 + (u64::from(weight).saturating_sub(10)) * 9999 / 990
}

/// linux.resources.memory.swap is v1's memory+swap total; v2's memory.swap.max is swap alone.
/// Returns the memory.swap.max value to write (-1 = max), or None to leave it alone.
/// A memory limit of -1 with no swap given means both unlimited, as on v1.
pub(in crate::cgroups) fn swap_to_v2(
    swap: Option<i64>,
    memory: Option<i64>,
) -> Result<Option<i64>> {
    let bad = |why: &str| Error::config(format!("linux.resources.memory.swap: {why}"));
    match (swap, memory) {
        (None | Some(0), Some(-1)) => Ok(Some(-1)),
        (None | Some(0), _) => Ok(None),
        (Some(-1), _) => Ok(Some(-1)),
        (Some(_), None | Some(0)) => Err(bad("a swap limit needs a memory limit")),
        (Some(_), Some(m)) if m < 0 => Err(bad("the memory limit is not a byte count")),
        (Some(s), Some(m)) if s < m => {
            Err(bad("memory+swap must not be less than the memory limit"))
        }
        (Some(s), Some(m)) => Ok(Some(s - m)),
    }
}

/// One io.max line, e.g. `8:0 rbps=1048576`; a rate of 0 lifts the limit (as 0 does on v1).
pub(super) fn io_max_line(major: i64, minor: i64, key: &str, rate: u64) -> String {
    let rate = if rate == 0 {
        "max".to_string()
    } else {
        rate.to_string()
    };
    format!("{major}:{minor} {key}={rate}")
}

/// cpu.max: `$QUOTA $PERIOD`, where a quota that is absent or negative is `max`. None if
/// neither is set.
pub(super) fn cpu_max(quota: Option<i64>, period: Option<u64>) -> Option<String> {
    if quota.is_none() && period.is_none() {
        return None;
    }
    let quota = match quota {
        Some(q) if q > 0 => q.to_string(),
        _ => "max".into(),
    };
    Some(match period {
        Some(p) if p > 0 => format!("{quota} {p}"),
        _ => quota,
    })
}

/// rdma.max for one device: `mlx4_0 hca_handle=2 hca_object=max`.
pub(super) fn rdma_line(device: &str, handles: Option<u32>, objects: Option<u32>) -> String {
    let value = |v: Option<u32>| v.map_or("max".to_string(), |n| n.to_string());
    format!(
        "{device} hca_handle={} hca_object={}",
        value(handles),
        value(objects)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_to_weight_keeps_defaults_and_bounds() {
        assert_eq!(shares_to_weight(0), 0);
        assert_eq!(shares_to_weight(1), 1);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 100);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(1_000_000), 10_000);
        let w512 = shares_to_weight(512);
        let w2048 = shares_to_weight(2048);
        assert!(w512 < 100 && 100 < w2048, "{w512} {w2048}");
    }

    #[test]
    fn blkio_weight_maps_ends() {
        assert_eq!(blkio_to_io_weight(10), 1);
        assert_eq!(blkio_to_io_weight(1000), 10_000);
        assert_eq!(blkio_to_io_weight(500), 1 + 490 * 9999 / 990);
    }

    #[test]
    fn swap_conversion() {
        assert_eq!(swap_to_v2(None, None).unwrap(), None);
        assert_eq!(swap_to_v2(None, Some(-1)).unwrap(), Some(-1));
        assert_eq!(swap_to_v2(Some(0), Some(100)).unwrap(), None);
        assert_eq!(swap_to_v2(Some(-1), Some(100)).unwrap(), Some(-1));
        assert_eq!(swap_to_v2(Some(300), Some(100)).unwrap(), Some(200));
        assert_eq!(swap_to_v2(Some(100), Some(100)).unwrap(), Some(0));
        for (swap, mem) in [
            (Some(50), Some(100)),
            (Some(50), None),
            (Some(50), Some(-1)),
        ] {
            let err = swap_to_v2(swap, mem).unwrap_err().to_string();
            assert!(err.contains("linux.resources.memory.swap"), "{err}");
        }
    }

    #[test]
    fn io_max_lines() {
        assert_eq!(io_max_line(8, 0, "rbps", 1_048_576), "8:0 rbps=1048576");
        assert_eq!(io_max_line(253, 1, "wiops", 0), "253:1 wiops=max");
    }

    #[test]
    fn cpu_max_values() {
        assert_eq!(cpu_max(None, None), None);
        assert_eq!(
            cpu_max(Some(50_000), Some(100_000)).unwrap(),
            "50000 100000"
        );
        assert_eq!(cpu_max(Some(-1), Some(100_000)).unwrap(), "max 100000");
        assert_eq!(cpu_max(None, Some(20_000)).unwrap(), "max 20000");
        assert_eq!(cpu_max(Some(30_000), None).unwrap(), "30000");
    }

    #[test]
    fn limits_and_rdma() {
        assert_eq!(v2_limit(-1), "max");
        assert_eq!(v2_limit(4096), "4096");
        assert_eq!(pids_max(10), "10");
        assert_eq!(pids_max(-1), "max");
        assert_eq!(pids_max(0), "max");
        assert_eq!(
            rdma_line("mlx4_0", Some(2), None),
            "mlx4_0 hca_handle=2 hca_object=max"
        );
    }
}
