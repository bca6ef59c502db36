//! The data directory is private to the service user: every directory the
//! service creates in it is 0700 and every file 0600 (the log and its
//! derived files, checkpoints, ledger keys and their public halves, key
//! material, import tokens, dev-mode files), whatever the process umask.
//! `keyledger serve` refuses to start on an existing data directory in
//! which group or others have any permission (see
//! `docs/STORE-EMBEDDED.md`, "Permissions").

use std::fs::{self, DirBuilder, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Mode of every directory the service creates.
pub const DIR_MODE: u32 = 0o700;
/// Mode of every file the service creates.
pub const FILE_MODE: u32 = 0o600;

/// Creates `path` and its missing parents, each 0700 (existing ones are
/// left as they are).
pub fn create_dir_all(path: &Path) -> io::Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(path)
}

/// Creates the directory `path` (0700); its parent must exist.
pub fn create_dir(path: &Path) -> io::Result<()> {
    DirBuilder::new().mode(DIR_MODE).create(path)
}

/// `OpenOptions` whose created files are 0600.
pub fn file_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.mode(FILE_MODE);
    options
}

/// Replaces `dir/name` with `bytes` atomically and durably: write a 0600
/// temp file, fsync it, rename it over the target, fsync the directory.
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let tmp = dir.join(format!("{name}.tmp"));
    {
        let mut file = file_options()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    fs::rename(&tmp, dir.join(name))?;
    fs::File::open(dir)?.sync_all()
}

/// An entry of the data directory that group or others may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LooseEntry {
    pub path: PathBuf,
    pub mode: u32,
}

impl std::fmt::Display for LooseEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} is mode {:o}: group or others may use it",
            self.path.display(),
            self.mode
        )
    }
}

/// Checks that no entry under `root` (nor `root` itself) grants group or
/// others any permission; returns the first that does. Read only: a
/// missing `root` passes (it is created 0700 when first needed). Symbolic
/// links are not followed (what one points to is the operator's to
/// protect); `root` itself is.
pub fn find_loose(root: &Path) -> io::Result<Option<LooseEntry>> {
    let meta = match fs::metadata(root) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut stack = vec![(root.to_path_buf(), meta)];
    while let Some((path, meta)) = stack.pop() {
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Ok(Some(LooseEntry { path, mode }));
        }
        if meta.is_dir() {
            for entry in fs::read_dir(&path)? {
                let entry = entry?;
                let meta = fs::symlink_metadata(entry.path())?;
                if !meta.file_type().is_symlink() {
                    stack.push((entry.path(), meta));
                }
            }
        }
    }
    Ok(None)
}

/// [`find_loose`] as a start-up check: the refusal names the entry and
/// the fix.
pub fn check_private(root: &Path) -> Result<(), String> {
    match find_loose(root) {
        Ok(None) => Ok(()),
        Ok(Some(loose)) => Err(format!(
            "the data directory must be private to the service user: {loose}; \
             check who could read it, then `chmod -R go-rwx {}`",
            root.display()
        )),
        Err(e) => Err(format!("{}: {e}", root.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn created_entries_are_private_whatever_the_umask_leaves() {
        let tmp = tempfile::tempdir().unwrap();
        let deep = tmp.path().join("a/b/c");
        create_dir_all(&deep).unwrap();
        for dir in ["a", "a/b", "a/b/c"] {
            assert_eq!(mode(&tmp.path().join(dir)), 0o700, "{dir}");
        }
        create_dir(&deep.join("d")).unwrap();
        assert_eq!(mode(&deep.join("d")), 0o700);
        file_options()
            .write(true)
            .create_new(true)
            .open(deep.join("f"))
            .unwrap();
        assert_eq!(mode(&deep.join("f")), 0o600);
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(find_loose(tmp.path()).unwrap(), None);
    }

    #[test]
    fn the_first_loose_entry_is_named_and_nothing_is_changed() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("data");
        assert_eq!(find_loose(&root).unwrap(), None, "missing is fine");
        create_dir_all(&root.join("instances/acme")).unwrap();
        let file = root.join("instances/acme/records.log");
        file_options().write(true).create(true).open(&file).unwrap();
        check_private(&root).unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o640)).unwrap();
        assert_eq!(
            find_loose(&root).unwrap(),
            Some(LooseEntry {
                path: file.clone(),
                mode: 0o640
            })
        );
        let err = check_private(&root).unwrap_err();
        assert!(err.contains("records.log is mode 640"), "{err}");
        assert!(err.contains("chmod -R go-rwx"), "{err}");
        assert_eq!(mode(&file), 0o640, "a check changes nothing");
        fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
        fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(find_loose(&root).unwrap().unwrap().path, root);
        // A symbolic link is not followed.
        fs::set_permissions(&root, fs::Permissions::from_mode(0o700)).unwrap();
        std::os::unix::fs::symlink(tmp.path(), root.join("elsewhere")).unwrap();
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(find_loose(&root).unwrap(), None);
    }
}
