//! Flag values written the way runc's Go libraries read them.

use std::time::Duration;

/// A byte size as Docker's `units.RAMInBytes` reads it: a decimal number, an optional space,
/// an optional binary unit (k, m, g, t, p; any case, 1024-based), optional `i` and `b`:
/// `512`, `100M`, `1.5g`, `64 MiB`. `-1` (no limit) is passed through, as runc does.
pub fn ram_in_bytes(s: &str) -> Result<i64, String> {
    if s == "-1" {
        return Ok(-1);
    }
    let bad = || format!("invalid size: '{s}'");
    let end = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, rest) = s.split_at(end);
    if num.is_empty() || num.starts_with('.') || num.ends_with('.') {
        return Err(bad());
    }
    let num: f64 = num.parse().map_err(|_| bad())?;
    let rest = rest.strip_prefix(' ').unwrap_or(rest).to_ascii_lowercase();
    let (unit, suffix) = match rest.chars().next() {
        Some(c) if "kmgtp".contains(c) => (c, &rest[1..]),
        _ => (' ', rest.as_str()),
    };
    if !matches!(suffix, "" | "b" | "i" | "ib") {
        return Err(bad());
    }
    let power = " kmgtp".find(unit).expect("unit from the list") as i32;
    let bytes = num * 1024f64.powi(power);
    if bytes >= i64::MAX as f64 {
        return Err(bad());
    }
    Ok(bytes as i64)
}

/// A bool or `auto` (None).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BoolOrAuto(pub Option<bool>);

/// `--rootless`: `auto` (or empty) is None, otherwise a bool as Go's `strconv.ParseBool` reads it
/// (1, t, T, TRUE, true, True and the 0/f/false counterparts), as runc's parseBoolOrAuto.
pub fn bool_or_auto(s: &str) -> Result<BoolOrAuto, String> {
    match s {
        "" | "auto" => Ok(BoolOrAuto(None)),
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(BoolOrAuto(Some(true))),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(BoolOrAuto(Some(false))),
        _ => Err(format!("invalid value {s:?}: want auto, true or false")),
    }
}

/// A duration as Go's `time.ParseDuration` reads it: numbers (with an optional fraction) each
/// followed by a unit (ns, us, µs, ms, s, m, h): `5s`, `500ms`, `1m30s`, `1.5h`; or a bare `0`.
pub fn go_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration {s:?} (examples: 5s, 500ms, 1m30s)");
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let end = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        let num: f64 = rest[..end].parse().map_err(|_| bad())?;
        rest = &rest[end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let nanos = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        rest = &rest[unit_end..];
        total += num * nanos;
    }
    Ok(Duration::from_nanos(total as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_as_docker_reads_them() {
        assert_eq!(ram_in_bytes("512"), Ok(512));
        assert_eq!(ram_in_bytes("100M"), Ok(100 << 20));
        assert_eq!(ram_in_bytes("100m"), Ok(100 << 20));
        assert_eq!(ram_in_bytes("64 MiB"), Ok(64 << 20));
        assert_eq!(ram_in_bytes("1.5g"), Ok(3 << 29));
        assert_eq!(ram_in_bytes("2kb"), Ok(2048));
        assert_eq!(ram_in_bytes("-1"), Ok(-1));
        for bad in ["", "M", "-5", "1.5.5m", "12x", "10 M B", "1e3", ".5m"] {
            assert!(ram_in_bytes(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn rootless_as_runc_reads_it() {
        assert_eq!(bool_or_auto("auto"), Ok(BoolOrAuto(None)));
        assert_eq!(bool_or_auto(""), Ok(BoolOrAuto(None)));
        assert_eq!(bool_or_auto("True"), Ok(BoolOrAuto(Some(true))));
        assert_eq!(bool_or_auto("0"), Ok(BoolOrAuto(Some(false))));
        assert!(bool_or_auto("yes").is_err());
    }

    #[test]
    fn durations_as_go_reads_them() {
        assert_eq!(go_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(go_duration("100ms"), Ok(Duration::from_millis(100)));
        assert_eq!(go_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(go_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(go_duration("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(go_duration("0"), Ok(Duration::ZERO));
        for bad in ["", "5", "5x", "s", "-1s"] {
            assert!(go_duration(bad).is_err(), "{bad:?} accepted");
        }
    }
}
