//! `list`: a table like runc's, JSON, or only the ids.

use anyhow::Result;
use berth::state::Store;

use crate::cli::{ListArgs, ListFormat};

pub fn list(store: &Store, a: &ListArgs) -> Result<i32> {
    let all = berth::container::list(store)?;
    if a.quiet {
        let ids: Vec<&str> = all.iter().map(|(s, _)| s.id.as_str()).collect();
        return if ids.is_empty() {
            Ok(0)
        } else {
            super::emit(&ids.join("\n"))
        };
    }
    match a.format {
        ListFormat::Json => {
            let docs: Vec<_> = all.iter().map(|(s, st)| s.oci(*st)).collect();
            super::emit(&serde_json::to_string(&docs)?)
        }
        ListFormat::Table => {
            let rows: Vec<[String; 6]> = all
                .iter()
                .map(|(s, st)| {
                    let pid = s.oci(*st).pid;
                    [
                        s.id.clone(),
                        pid.to_string(),
                        st.to_string(),
                        s.bundle.display().to_string(),
                        s.created.clone(),
                        s.owner.clone(),
                    ]
                })
                .collect();
            let header = ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from);
            let mut widths = [0usize; 6];
            for row in std::iter::once(&header).chain(&rows) {
                for (w, cell) in widths.iter_mut().zip(row) {
                    *w = (*w).max(cell.len());
                }
            }
            let lines: Vec<String> = std::iter::once(&header)
                .chain(&rows)
                .map(|row| {
                    let cells: Vec<String> = row
                        .iter()
                        .zip(widths)
                        .map(|(c, w)| format!("{c:<w$}"))
                        .collect();
                    cells.join("   ").trim_end().to_string()
                })
                .collect();
            super::emit(&lines.join("\n"))
        }
    }
}
