//! Finds the PostgreSQL server binaries (`initdb`, `pg_ctl`) on this machine.

use std::path::{Path, PathBuf};

/// The directory that holds `initdb` and `pg_ctl`: `$RLS_PG_BINDIR`, else the newest
/// `/usr/lib/postgresql/*/bin`, else the first `PATH` entry that has `initdb`.
pub(super) fn find_bindir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("RLS_PG_BINDIR").map(PathBuf::from) {
        return has_server(&dir).then_some(dir);
    }
    let mut versioned: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            has_server(&bin).then_some((version, bin))
        })
        .collect();
    versioned.sort();
    if let Some((_, dir)) = versioned.pop() {
        return Some(dir);
    }
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .find(|dir| has_server(dir))
}

fn has_server(dir: &Path) -> bool {
    dir.join("initdb").is_file() && dir.join("pg_ctl").is_file()
}
