//! linux.resources.devices: the rule list the container gets (the config's rules in order, then
//! the devices every container may use, as runc adds them), and its v1 file format.

use oci_spec::runtime::{LinuxDevice, LinuxDeviceCgroup, LinuxDeviceType};

use crate::rootfs::DEFAULT_DEVICES;
use crate::{Error, Result};

/// One rule as the v1 devices controller takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Rule {
    pub allow: bool,
    /// `a`, `b` or `c`.
    pub kind: char,
    pub major: Option<i64>,
    pub minor: Option<i64>,
    pub access: String,
}

impl Rule {
    /// The line for devices.allow / devices.deny: `c 1:3 rwm`, `b *:* m`, or `a` for everything.
    pub fn line(&self) -> String {
        if self.kind == 'a' {
            return "a".into();
        }
        let num = |n: Option<i64>| n.map_or("*".to_string(), |n| n.to_string());
        format!(
            "{} {}:{} {}",
            self.kind,
            num(self.major),
            num(self.minor),
            self.access
        )
    }

    /// Whether this is a deny of every device, the way a rule list starts from "nothing".
    pub fn denies_all(&self) -> bool {
        !self.allow && self.kind == 'a'
    }
}

/// Check one config rule; `field` is e.g. `linux.resources.devices[2]`.
pub(super) fn parse(rule: &LinuxDeviceCgroup, field: &str) -> Result<Rule> {
    let bad = |what: &str| Error::config(format!("{field}.{what}"));
    let kind = match rule.typ().unwrap_or(LinuxDeviceType::A) {
        LinuxDeviceType::A => 'a',
        LinuxDeviceType::B => 'b',
        // `u` (unbuffered character device) is a character device to the kernel.
        LinuxDeviceType::C | LinuxDeviceType::U => 'c',
        LinuxDeviceType::P => return Err(bad(
            "type: \"p\": a device cgroup rule applies to char (c), block (b) or all (a) devices",
        )),
    };
    for (name, n) in [("major", rule.major()), ("minor", rule.minor())] {
        if n.is_some_and(|n| n < 0) {
            return Err(bad(&format!(
                "{name}: {}: must not be negative (omit it for any)",
                n.unwrap_or(0)
            )));
        }
    }
    let access = rule.access().clone().unwrap_or_else(|| "rwm".into());
    if access.is_empty() || !access.chars().all(|c| "rwm".contains(c)) {
        return Err(bad(&format!(
            "access: {access:?}: must be made of r, w and m"
        )));
    }
    Ok(Rule {
        allow: rule.allow(),
        kind,
        major: rule.major(),
        minor: rule.minor(),
        access,
    })
}

/// The rules to apply: the config's, then the defaults runc appends for every container (mknod
/// of anything, the standard /dev nodes, ptys, tun). A default node the config also lists in
/// linux.devices is left out: the config's entry for that path decides.
pub(super) fn rules(config: &[LinuxDeviceCgroup], created: &[LinuxDevice]) -> Result<Vec<Rule>> {
    let mut out = config
        .iter()
        .enumerate()
        .map(|(i, r)| parse(r, &format!("linux.resources.devices[{i}]")))
        .collect::<Result<Vec<_>>>()?;
    let allow = |kind, major, minor: Option<i64>, access: &str| Rule {
        allow: true,
        kind,
        major,
        minor,
        access: access.into(),
    };
    out.push(allow('c', None, None, "m"));
    out.push(allow('b', None, None, "m"));
    for (path, major, minor) in DEFAULT_DEVICES {
        if !created.iter().any(|d| d.path().as_os_str() == path) {
            out.push(allow('c', Some(major as i64), Some(minor as i64), "rwm"));
        }
    }
    out.push(allow('c', Some(136), None, "rwm")); // /dev/pts/*
    out.push(allow('c', Some(5), Some(2), "rwm")); // /dev/ptmx
    out.push(allow('c', Some(10), Some(200), "rwm")); // /dev/net/tun
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxDeviceCgroupBuilder;

    fn rule(
        allow: bool,
        typ: LinuxDeviceType,
        major: Option<i64>,
        access: &str,
    ) -> LinuxDeviceCgroup {
        let mut b = LinuxDeviceCgroupBuilder::default()
            .allow(allow)
            .typ(typ)
            .access(access);
        if let Some(m) = major {
            b = b.major(m).minor(7);
        }
        b.build().unwrap()
    }

    #[test]
    fn lines() {
        let r = parse(&rule(true, LinuxDeviceType::C, Some(1), "rw"), "f").unwrap();
        assert_eq!(r.line(), "c 1:7 rw");
        let r = parse(&rule(false, LinuxDeviceType::B, None, "m"), "f").unwrap();
        assert_eq!(r.line(), "b *:* m");
        assert!(parse(&rule(false, LinuxDeviceType::A, None, "rwm"), "f")
            .unwrap()
            .denies_all());
    }

    #[test]
    fn bad_rules_name_the_field() {
        let err = parse(
            &rule(true, LinuxDeviceType::P, None, "rwm"),
            "linux.resources.devices[3]",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("linux.resources.devices[3].type"), "{err}");
        let err = parse(&rule(true, LinuxDeviceType::C, Some(-2), "rwm"), "d")
            .unwrap_err()
            .to_string();
        assert!(err.contains("d.major"), "{err}");
        let err = parse(&rule(true, LinuxDeviceType::C, None, "rx"), "d")
            .unwrap_err()
            .to_string();
        assert!(err.contains("d.access"), "{err}");
    }

    #[test]
    fn defaults_follow_the_config_rules() {
        let deny = rule(false, LinuxDeviceType::A, None, "rwm");
        let all = rules(&[deny], &[]).unwrap();
        assert!(all[0].denies_all());
        assert!(all.iter().any(|r| r.line() == "c 1:3 rwm"));
        assert!(all.iter().any(|r| r.line() == "c 136:* rwm"));
    }
}
