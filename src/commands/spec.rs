//! `spec`: write a default config.json into the bundle directory.

use anyhow::{bail, Context, Result};

use crate::cli::SpecArgs;

pub fn spec(a: &SpecArgs) -> Result<i32> {
    let path = a.bundle.join("config.json");
    if path.exists() {
        bail!("{}: file exists; remove it first", path.display());
    }
    let text = serde_json::to_string_pretty(&berth::spec::example(a.rootless))?;
    std::fs::write(&path, text + "\n").with_context(|| format!("write {}", path.display()))?;
    Ok(0)
}
