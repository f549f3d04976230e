//! Reading /proc/self/mountinfo (proc(5)).

use std::path::PathBuf;

use crate::{Context, Result};

pub(crate) struct MountInfo {
    /// Root of the mount within its filesystem.
    pub root: PathBuf,
    pub mount_point: PathBuf,
    /// Optional fields such as `shared:3` or `master:1`.
    pub optional: Vec<String>,
    pub fs_type: String,
    pub super_options: String,
}

pub(crate) fn read() -> Result<Vec<MountInfo>> {
    let text =
        std::fs::read_to_string("/proc/self/mountinfo").ctx(|| "read /proc/self/mountinfo")?;
    Ok(parse(&text))
}

pub(crate) fn parse(text: &str) -> Vec<MountInfo> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<MountInfo> {
    let (left, right) = line.split_once(" - ")?;
    let mut l = left.split(' ');
    let root = unescape(l.nth(3)?);
    let mount_point = unescape(l.next()?);
    let optional = l.skip(1).map(str::to_string).collect();
    let mut r = right.split(' ');
    let fs_type = r.next()?.to_string();
    let super_options = r.nth(1).unwrap_or_default().to_string();
    Some(MountInfo {
        root,
        mount_point,
        optional,
        fs_type,
        super_options,
    })
}

/// Undo the kernel's octal escaping of space, tab, newline and backslash (`\040`).
fn unescape(s: &str) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let oct = b
            .get(i + 1..i + 4)
            .filter(|d| b[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match oct {
            Some(d) => {
                out.push(d.iter().fold(0u8, |v, c| v.wrapping_mul(8) + (c - b'0')));
                i += 4;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    PathBuf::from(std::ffi::OsString::from_vec(out))
}

#[cfg(test)]
mod tests {
    #[test]
    fn unescapes_octal_and_keeps_other_backslashes() {
        assert_eq!(
            super::unescape("/a\\040b\\134c\\x"),
            std::path::Path::new("/a b\\c\\x")
        );
    }

    #[test]
    fn parses_escaped_line() {
        let m = super::parse_line("36 35 98:0 /mnt1 /mnt\\0402 rw,noatime master:1 shared:2 - ext3 /dev/root rw,errors=continue").unwrap();
        assert_eq!(m.root, std::path::Path::new("/mnt1"));
        assert_eq!(m.mount_point, std::path::Path::new("/mnt 2"));
        assert_eq!(m.optional, ["master:1", "shared:2"]);
        assert_eq!(
            (m.fs_type.as_str(), m.super_options.as_str()),
            ("ext3", "rw,errors=continue")
        );
    }
}
