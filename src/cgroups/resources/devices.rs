//! linux.resources.devices: the rule list the container gets (the config's rules in order, then
//! the devices every container may use, as runc adds them), its v1 file format, and the
//! [`Policy`] it amounts to, which cgroup v2 enforces with an eBPF program.

use std::collections::BTreeMap;
use std::fmt;

use oci_spec::runtime::{LinuxDevice, LinuxDeviceCgroup, LinuxDeviceType};

use crate::cgroups::bpf::{self, Insn, ACC_MKNOD, ACC_READ, ACC_WRITE};
use crate::rootfs::DEFAULT_DEVICES;
use crate::{Error, Result};

/// A set of the accesses r, w and m, held as the bits the kernel's eBPF device context uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(in crate::cgroups) struct Access(u8);

const LETTERS: [(char, u8); 3] = [('r', ACC_READ), ('w', ACC_WRITE), ('m', ACC_MKNOD)];

impl Access {
    fn parse(s: &str) -> Option<Access> {
        s.chars().try_fold(Access(0), |a, c| {
            let (_, bit) = LETTERS.iter().find(|(l, _)| *l == c)?;
            Some(Access(a.0 | bit))
        })
    }
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        for (letter, bit) in LETTERS {
            if self.0 & bit != 0 {
                write!(f, "{letter}")?;
            }
        }
        Ok(())
    }
}

/// One rule as the v1 devices controller takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::cgroups) struct Rule {
    pub allow: bool,
    /// `a`, `b` or `c`.
    pub kind: char,
    /// None for any.
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: Access,
    /// Where it comes from, below linux.resources: `devices[2]` or `devices (a default rule)`.
    pub field: String,
}

impl Rule {
    /// The line for devices.allow / devices.deny: `c 1:3 rw`, `b *:* m`, or `a` for everything.
    pub fn line(&self) -> String {
        if self.kind == 'a' {
            return "a".into();
        }
        let num = |n: Option<u32>| n.map_or("*".to_string(), |n| n.to_string());
        format!(
            "{} {}:{} {}",
            self.kind,
            num(self.major),
            num(self.minor),
            self.access
        )
    }
}

/// Check the config's rule number `i`.
fn parse(rule: &LinuxDeviceCgroup, i: usize) -> Result<Rule> {
    let field = format!("devices[{i}]");
    let bad = |what: &str| Error::config(format!("linux.resources.{field}.{what}"));
    let kind = match rule.typ().unwrap_or(LinuxDeviceType::A) {
        LinuxDeviceType::A => 'a',
        LinuxDeviceType::B => 'b',
        // `u` (unbuffered character device) is a character device to the kernel.
        LinuxDeviceType::C | LinuxDeviceType::U => 'c',
        LinuxDeviceType::P => return Err(bad(
            "type: \"p\": a device cgroup rule applies to char (c), block (b) or all (a) devices",
        )),
    };
    // -1 means any, as an absent number does (runc reads them so).
    let number = |name: &str, n: Option<i64>| match n {
        None | Some(-1) => Ok(None),
        Some(n) => u32::try_from(n).map(Some).map_err(|_| {
            bad(&format!(
                "{name}: {n}: must be 0 to 4294967295, or -1 (or absent) for any"
            ))
        }),
    };
    let access = rule.access().clone().unwrap_or_else(|| "rwm".into());
    let parsed = Access::parse(&access).filter(|a| a.0 != 0);
    Ok(Rule {
        allow: rule.allow(),
        kind,
        major: number("major", rule.major())?,
        minor: number("minor", rule.minor())?,
        access: parsed
            .ok_or_else(|| bad(&format!("access: {access:?}: must be made of r, w and m")))?,
        field,
    })
}

/// The rules to apply: the config's, then the defaults runc appends for every container (mknod
/// of anything, the standard /dev nodes, ptys, tun). A default node the config also lists in
/// linux.devices is left out: the config's entry for that path decides.
pub(in crate::cgroups) fn rules(
    config: &[LinuxDeviceCgroup],
    created: &[LinuxDevice],
) -> Result<Vec<Rule>> {
    let mut out = config
        .iter()
        .enumerate()
        .map(|(i, r)| parse(r, i))
        .collect::<Result<Vec<_>>>()?;
    let allow = |kind, major, minor: Option<u32>, access| Rule {
        allow: true,
        kind,
        major,
        minor,
        access: Access(access),
        field: "devices (a default rule)".into(),
    };
    let rwm = ACC_READ | ACC_WRITE | ACC_MKNOD;
    out.push(allow('c', None, None, ACC_MKNOD));
    out.push(allow('b', None, None, ACC_MKNOD));
    for (path, major, minor) in DEFAULT_DEVICES {
        if !created.iter().any(|d| d.path().as_os_str() == path) {
            out.push(allow('c', Some(major as u32), Some(minor as u32), rwm));
        }
    }
    out.push(allow('c', Some(136), None, rwm)); // /dev/pts/*
    out.push(allow('c', Some(5), Some(2), rwm)); // /dev/ptmx
    out.push(allow('c', Some(10), Some(200), rwm)); // /dev/net/tun
    Ok(out)
}

/// A device pattern: type, major and minor (None for any).
pub(in crate::cgroups) type Pattern = (char, Option<u32>, Option<u32>);

/// What a rule list lets through, worked out as runc's emulator of the v1 devices controller
/// does, so that cgroup v2 enforces what v1 would: a rule of type `a` starts over from "allow
/// everything" or "deny everything"; any other rule either adds its access to the exceptions
/// to that default, or takes it back from the exception with exactly its pattern. The list
/// starts from "deny everything".
#[derive(Debug, PartialEq, Eq)]
pub(in crate::cgroups) struct Policy {
    default_allow: bool,
    /// The access each pattern gets the other verdict for.
    exceptions: BTreeMap<Pattern, Access>,
}

impl Policy {
    pub fn new(rules: &[Rule]) -> Result<Policy> {
        let mut p = Policy {
            default_allow: false,
            exceptions: BTreeMap::new(),
        };
        for rule in rules {
            p.apply(rule)?;
        }
        Ok(p)
    }

    fn apply(&mut self, rule: &Rule) -> Result<()> {
        if rule.kind == 'a' {
            self.default_allow = rule.allow;
            self.exceptions.clear();
            return Ok(());
        }
        let key = (rule.kind, rule.major, rule.minor);
        let access = rule.access.0;
        if rule.allow != self.default_allow {
            self.exceptions.entry(key).or_default().0 |= access;
            return Ok(());
        }
        // The kernel only takes access back from the exception with the very same pattern: one
        // on a wider pattern would silently stay. Refused, as runc does, rather than leaving a
        // device reachable that the config meant to take away.
        let (kind, major, minor) = key;
        for wider in [(kind, None, minor), (kind, major, None), (kind, None, None)] {
            let overlap = self.exceptions.get(&wider).map_or(0, |a| a.0 & access);
            if wider != key && overlap != 0 {
                let verdict = |allow| if allow { "allow" } else { "deny" };
                let wide = Rule {
                    allow: !self.default_allow,
                    kind,
                    major: wider.1,
                    minor: wider.2,
                    access: self.exceptions[&wider],
                    field: String::new(),
                };
                return Err(Error::config(format!(
                    "linux.resources.{}: {} {} cannot take back part of the wider {} {} before it (only a rule with the same pattern can)",
                    rule.field,
                    verdict(rule.allow),
                    rule.line(),
                    verdict(wide.allow),
                    wide.line()
                )));
            }
        }
        if let Some(a) = self.exceptions.get_mut(&key) {
            a.0 &= !access;
            if a.0 == 0 {
                self.exceptions.remove(&key);
            }
        }
        Ok(())
    }

    /// Whether what no exception names is allowed.
    pub fn default_allow(&self) -> bool {
        self.default_allow
    }

    /// The patterns that get the other verdict, with the accesses they get it for.
    pub fn exceptions(&self) -> impl Iterator<Item = (&Pattern, &Access)> {
        self.exceptions.iter()
    }

    /// The eBPF program that enforces the policy.
    pub fn program(&self) -> Vec<Insn> {
        let patterns: Vec<bpf::Pattern> = self
            .exceptions
            .iter()
            .map(|(&(kind, major, minor), access)| bpf::Pattern {
                dev_type: if kind == 'b' {
                    bpf::DEV_BLOCK
                } else {
                    bpf::DEV_CHAR
                },
                major,
                minor,
                access: access.0,
            })
            .collect();
        bpf::device_program(self.default_allow, &patterns)
    }
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

    fn config(json: &str) -> Vec<LinuxDeviceCgroup> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn lines() {
        let r = parse(&rule(true, LinuxDeviceType::C, Some(1), "wr"), 0).unwrap();
        assert_eq!(r.line(), "c 1:7 rw");
        let r = parse(&rule(false, LinuxDeviceType::B, None, "m"), 0).unwrap();
        assert_eq!(r.line(), "b *:* m");
        let r = parse(&rule(false, LinuxDeviceType::C, Some(-1), "m"), 0).unwrap();
        assert_eq!(r.line(), "c *:7 m");
        assert_eq!(
            parse(&rule(false, LinuxDeviceType::A, None, "rwm"), 0)
                .unwrap()
                .line(),
            "a"
        );
    }

    #[test]
    fn bad_rules_name_the_field() {
        let err = |r| parse(&r, 3).unwrap_err().to_string();
        let e = err(rule(true, LinuxDeviceType::P, None, "rwm"));
        assert!(e.contains("linux.resources.devices[3].type"), "{e}");
        let e = err(rule(true, LinuxDeviceType::C, Some(-2), "rwm"));
        assert!(e.contains("devices[3].major: -2"), "{e}");
        let e = err(rule(true, LinuxDeviceType::C, Some(1 << 32), "rwm"));
        assert!(e.contains("devices[3].major"), "{e}");
        let e = err(rule(true, LinuxDeviceType::C, None, "rx"));
        assert!(e.contains("devices[3].access"), "{e}");
        let e = err(rule(true, LinuxDeviceType::C, None, ""));
        assert!(e.contains("devices[3].access"), "{e}");
    }

    #[test]
    fn defaults_follow_the_config_rules() {
        let deny = rule(false, LinuxDeviceType::A, None, "rwm");
        let all = rules(&[deny], &[]).unwrap();
        assert_eq!(all[0].line(), "a");
        assert!(all.iter().any(|r| r.line() == "c 1:3 rwm"));
        assert!(all.iter().any(|r| r.line() == "c 136:* rwm"));
        assert_eq!(all[1].field, "devices (a default rule)");
    }

    fn policy(json: &str) -> Result<Policy> {
        Policy::new(&rules(&config(json), &[])?)
    }

    fn exceptions(p: &Policy) -> Vec<String> {
        p.exceptions
            .iter()
            .map(|(&(kind, major, minor), &access)| {
                let r = Rule {
                    allow: true,
                    kind,
                    major,
                    minor,
                    access,
                    field: String::new(),
                };
                r.line()
            })
            .collect()
    }

    #[test]
    fn emulates_the_v1_controller() {
        // Deny all, allow two devices, take one back: the defaults stay.
        let p = policy(
            r#"[{"allow":false,"access":"rwm"},
                {"allow":true,"type":"c","major":1,"minor":11,"access":"rw"},
                {"allow":true,"type":"c","major":4,"minor":1,"access":"rwm"},
                {"allow":false,"type":"c","major":4,"minor":1,"access":"w"}]"#,
        )
        .unwrap();
        assert!(!p.default_allow);
        let seen = exceptions(&p);
        for want in [
            "c *:* m",
            "b *:* m",
            "c 1:3 rwm",
            "c 1:11 rw",
            "c 4:1 rm",
            "c 136:* rwm",
        ] {
            assert!(
                seen.iter().any(|s| s == want),
                "{want} missing from {seen:?}"
            );
        }
        // A later "a" starts over: allow all but one device.
        let p = policy(
            r#"[{"allow":true,"type":"c","major":1,"minor":11,"access":"rw"},
                {"allow":true,"access":"rwm"},
                {"allow":false,"type":"b","major":8,"access":"rw"}]"#,
        )
        .unwrap();
        assert!(p.default_allow);
        assert_eq!(exceptions(&p), ["b 8:* rw"]);
        // No rules at all: deny all, then the defaults.
        assert_eq!(
            policy("[]").unwrap(),
            policy(r#"[{"allow":false,"access":"rwm"}]"#).unwrap()
        );
    }

    #[test]
    fn taking_back_part_of_a_wider_rule_is_refused() {
        let err = policy(
            r#"[{"allow":true,"type":"c","major":4,"access":"rw"},
                {"allow":false,"type":"c","major":4,"minor":7,"access":"w"}]"#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("devices[1]: deny c 4:7 w") && err.contains("allow c 4:* rw"),
            "{err}"
        );
        // In allow-all mode, a default rule can hit a wider deny of the config.
        let err =
            policy(r#"[{"allow":true,"access":"rwm"},{"allow":false,"type":"c","access":"rwm"}]"#)
                .unwrap_err()
                .to_string();
        assert!(err.contains("(a default rule): allow c 1:3"), "{err}");
    }

    #[test]
    fn program_enforces_the_policy() {
        let p = policy(
            r#"[{"allow":false,"access":"rwm"},
                {"allow":true,"type":"c","major":1,"minor":11,"access":"w"},
                {"allow":true,"type":"b","access":"r"}]"#,
        )
        .unwrap()
        .program();
        let (c, b) = (bpf::DEV_CHAR, bpf::DEV_BLOCK);
        let (r, w, m) = (ACC_READ, ACC_WRITE, ACC_MKNOD);
        for (dev_type, access, major, minor, want) in [
            (c, r | w, 1, 3, 1), // /dev/null, a default
            (c, r, 1, 11, 0),    // only w allowed
            (c, w, 1, 11, 1),
            (c, m, 1, 11, 1),      // mknod of any char device
            (c, r, 1, 1, 0),       // /dev/mem: denied
            (c, r | w, 136, 9, 1), // a pty
            (b, r, 8, 0, 1),
            (b, r | w, 8, 0, 0),
        ] {
            assert_eq!(
                bpf::run(&p, dev_type, access, major, minor),
                want,
                "type {dev_type} access {access} {major}:{minor}"
            );
        }
        let p = policy(r#"[{"allow":true,"access":"rwm"},{"allow":false,"type":"c","major":1,"minor":200,"access":"w"}]"#)
            .unwrap()
            .program();
        assert_eq!(
            bpf::run(&p, c, r | w, 1, 200),
            0,
            "a denied access fails the open that asks for it"
        );
        assert_eq!(bpf::run(&p, c, r, 1, 200), 1);
        assert_eq!(bpf::run(&p, b, r | w | m, 7, 1), 1);
    }
}
