//! The database holds the registry's token signing key and the users'
//! password hashes, so only berthd may read it. Its directory is made 0700
//! before sled creates anything in it (sled takes no file modes, and makes
//! its files as the umask says); what sled made is tightened to 0600 right
//! after opening, which also repairs a database an older berth left open.

use std::fs::{DirBuilder, Permissions};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

use crate::StateError;

const DIR_MODE: u32 = 0o700;
const FILE_MODE: u32 = 0o600;

/// Create `dir` (and missing parents) as 0700, or make an existing one so.
pub(crate) fn prepare_dir(dir: &Path) -> Result<(), StateError> {
    let err = |source| StateError::Private {
        path: dir.to_path_buf(),
        source,
    };
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
        .map_err(err)?;
    set_mode(dir, DIR_MODE).map_err(err)
}

/// Files in `dir` and one level below (sled's `blobs/`) to 0600, their
/// directories to 0700.
pub(crate) fn tighten(dir: &Path) -> Result<(), StateError> {
    tighten_level(dir, 1)
}

fn tighten_level(dir: &Path, depth: u32) -> Result<(), StateError> {
    let err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| StateError::Private { path, source }
    };
    for entry in std::fs::read_dir(dir).map_err(err(dir))? {
        let entry = entry.map_err(err(dir))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(err(&path))?;
        if kind.is_dir() {
            set_mode(&path, DIR_MODE).map_err(err(&path))?;
            if depth > 0 {
                tighten_level(&path, depth - 1)?;
            }
        } else if kind.is_file() {
            set_mode(&path, FILE_MODE).map_err(err(&path))?;
        }
    }
    Ok(())
}

/// chmod, only when the mode differs (a start-up on a large store stays
/// cheap, and no change time is touched for nothing).
fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    let now = std::fs::symlink_metadata(path)?.permissions().mode() & 0o7777;
    if now == mode {
        return Ok(());
    }
    std::fs::set_permissions(path, Permissions::from_mode(mode))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "a test fails loudly")]

    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_database_is_private_and_an_open_one_is_repaired() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("state");
        let state = crate::State::open(&dir).unwrap();
        state.flush().unwrap();
        drop(state);
        assert_eq!(mode(&dir), 0o700);
        for f in ["db", "conf"] {
            assert_eq!(mode(&dir.join(f)), 0o600, "{f}");
        }
        // What an older berth left: everything readable by all.
        std::fs::set_permissions(&dir, Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(dir.join("db"), Permissions::from_mode(0o644)).unwrap();
        let _state = crate::State::open(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("db")), 0o600);
    }
}
