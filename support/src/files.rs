//! Files written whole or not at all, and paths as the user should see them.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Writes `contents` to `path` through a temporary file beside it and a rename, so a reader
/// (or a process that dies mid-write) never sees half a file; creates the parent directory.
/// `private` files are readable by their owner only (0600: kubeconfigs hold tokens). No
/// fsync: the simulator rewrites its state file from async tasks, where a slow disk must not
/// stall the runtime.
pub fn write_atomic(path: &Path, contents: &[u8], private: bool) -> std::io::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    let temporary = path.with_file_name(name);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    if private {
        options.mode(0o600);
    }
    let mut file = options.open(&temporary)?;
    file.write_all(contents)?;
    std::fs::rename(&temporary, path)
}

/// A path as the user should see it: relative to the working directory when possible.
pub fn display_path(path: &Path) -> String {
    let shown = std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(&cwd).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| path.to_path_buf());
    let shown = shown
        .strip_prefix(".")
        .map(Path::to_path_buf)
        .unwrap_or(shown);
    shown.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn writes_whole_files_with_the_asked_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/config");
        write_atomic(&path, b"first", true).unwrap();
        write_atomic(&path, b"second", true).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "second");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(!dir.path().join("nested/config.tmp").exists());
    }
}
