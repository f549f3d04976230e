//! Running the checker in a container and reading its JSON report.

use crate::harness::Ctx;
use anyhow::{bail, ensure, Context, Result};
use serde_json::Value;

pub struct Report(pub Value);

/// One line of /proc/self/mountinfo.
#[derive(Debug)]
pub struct Mount {
    pub options: Vec<String>,
    pub fstype: String,
    pub super_options: Vec<String>,
}

impl Mount {
    pub fn has(&self, opt: &str) -> bool {
        self.options
            .iter()
            .chain(&self.super_options)
            .any(|o| o == opt)
    }
}

impl Report {
    pub fn parse(stdout: &str) -> Result<Report> {
        // A terminal may add carriage returns and echo; the report is the last JSON line.
        let line = stdout
            .lines()
            .rev()
            .map(str::trim)
            .find(|l| l.starts_with('{'));
        let line = line.with_context(|| format!("no checker report in output: {stdout:?}"))?;
        Ok(Report(serde_json::from_str(line)?))
    }

    pub fn get(&self, key: &str) -> &Value {
        &self.0[key]
    }

    pub fn str(&self, key: &str) -> &str {
        self.0[key].as_str().unwrap_or_default()
    }

    pub fn status(&self, field: &str) -> &str {
        self.0["status"][field].as_str().unwrap_or_default()
    }

    /// Value of a probe that must have succeeded.
    pub fn probe(&self, probe: &str) -> Result<&Value> {
        let p = &self.0["probes"][probe];
        match p.get("ok") {
            Some(v) => Ok(v),
            None => bail!("probe {probe} failed inside the container: {p}"),
        }
    }

    /// The errno of a probe that must have failed.
    pub fn probe_errno(&self, probe: &str) -> Result<i64> {
        let p = &self.0["probes"][probe];
        p["errno"]
            .as_i64()
            .with_context(|| format!("probe {probe} should have failed, got {p}"))
    }

    /// The mount at `path` that is visible (the last one mounted there).
    pub fn mount(&self, path: &str) -> Result<Mount> {
        let line = self.mount_line(path)?;
        let parse = || {
            let (left, right) = line.split_once(" - ")?;
            let f: Vec<&str> = left.split(' ').collect();
            let r: Vec<&str> = right.split(' ').collect();
            Some(Mount {
                options: f.get(5)?.split(',').map(String::from).collect(),
                fstype: r.first()?.to_string(),
                super_options: r.get(2)?.split(',').map(String::from).collect(),
            })
        };
        parse().with_context(|| format!("malformed mountinfo line {line:?}"))
    }

    /// The mountinfo line of the visible mount at `path`.
    pub fn mount_line(&self, path: &str) -> Result<&str> {
        let lines = self.0["mountinfo"]
            .as_array()
            .context("no mountinfo in report")?;
        lines
            .iter()
            .rev()
            .filter_map(Value::as_str)
            .find(|l| l.split(' ').nth(4) == Some(path))
            .with_context(|| format!("nothing mounted at {path}"))
    }
}

impl Ctx<'_> {
    /// Runs the checker with `probes` in a container from the base config edited
    /// by `edit`, in the foreground, and returns its report.
    pub fn check(&mut self, edit: impl FnOnce(&mut Value), probes: &[&str]) -> Result<Report> {
        let b = self.bundle(|v| {
            let mut args = vec!["/checker"];
            args.extend_from_slice(probes);
            v["process"]["args"] = serde_json::json!(args);
            edit(v);
        })?;
        let out = self.rt(&["run", "--bundle", b.dir_str(), &b.id])?.ok()?;
        let report = Report::parse(&out.stdout)?;
        ensure!(report.0.is_object(), "checker report is not an object");
        Ok(report)
    }
}
