//! `delete [--force] ID`.

use anyhow::Result;
use berth::state::Store;

use crate::cli::DeleteArgs;

pub fn delete(store: &Store, a: &DeleteArgs) -> Result<i32> {
    berth::container::delete(store, &a.id, a.force)?;
    Ok(0)
}
