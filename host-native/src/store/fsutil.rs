//! Private files: created 0600 in a 0700 directory, replaced atomically, read with a limit.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::path::{Path, PathBuf};

use super::crypto::random_hex;
use super::error::StoreError;

/// Creates `dir` (and missing parents) readable only by the user. An existing directory is
/// left as it is: it may be shared configuration the user set up on purpose.
pub(crate) fn ensure_dir(dir: &Path) -> Result<(), StoreError> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(|err| StoreError::io("create the directory", dir, err))
}

/// Options for a new file only the user may read.
fn private(options: &mut OpenOptions) -> &mut OpenOptions {
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(options, 0o600);
    options
}

/// Opens (creating 0600 if needed) a file for locking.
pub(crate) fn open_lock_file(path: &Path) -> Result<File, StoreError> {
    if let Some(dir) = path.parent() {
        ensure_dir(dir)?;
    }
    private(OpenOptions::new().read(true).write(true).create(true))
        .truncate(false)
        .open(path)
        .map_err(|err| StoreError::io("open the lock file", path, err))
}

/// Reads a whole file of at most `limit` bytes; `Ok(None)` when it does not exist.
pub(crate) fn read_limited(path: &Path, limit: u64) -> Result<Option<Vec<u8>>, StoreError> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(StoreError::io("read", path, err)),
    };
    let meta = file
        .metadata()
        .map_err(|err| StoreError::io("read", path, err))?;
    let location = path.display().to_string();
    if !meta.is_file() {
        return Err(StoreError::corrupt(location, "not a regular file"));
    }
    let too_large = |size: u64| StoreError::TooLarge {
        location: path.display().to_string(),
        size,
        limit,
    };
    if meta.len() > limit {
        return Err(too_large(meta.len()));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(
                path = %path.display(),
                "the session file can be read by other users; tessera creates it with mode 0600"
            );
        }
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|err| StoreError::io("read", path, err))?;
    if bytes.len() as u64 > limit {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(Some(bytes))
}

/// Replaces `path` with `bytes` so that readers see the old or the new content, never a
/// mix, even after a crash: a 0600 temporary file in the same directory is written and
/// fsynced, renamed over `path`, then the directory is fsynced so the rename is durable.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let dir = parent(path);
    ensure_dir(&dir)?;
    let name = path
        .file_name()
        .ok_or_else(|| StoreError::internal(format!("{} has no file name", path.display())))?;
    let temp = dir.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        random_hex(6)?
    ));
    let written = private(OpenOptions::new().write(true).create_new(true))
        .open(&temp)
        .and_then(|mut file| {
            file.write_all(bytes)?;
            file.sync_all()
        });
    if let Err(err) = written {
        let _ = fs::remove_file(&temp);
        return Err(StoreError::io("write", temp, err));
    }
    if let Err(err) = fs::rename(&temp, path) {
        let _ = fs::remove_file(&temp);
        return Err(StoreError::io("replace", path, err));
    }
    sync_dir(&dir);
    Ok(())
}

/// Removes `path`; `Ok(false)` when it was already absent.
pub(crate) fn remove(path: &Path) -> Result<bool, StoreError> {
    match fs::remove_file(path) {
        Ok(()) => {
            sync_dir(&parent(path));
            Ok(true)
        }
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(err) => Err(StoreError::io("delete", path, err)),
    }
}

fn parent(path: &Path) -> PathBuf {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// Makes a rename or removal in `dir` durable. The file's content is already safe when this
/// runs, so a failure (some file systems refuse to fsync directories) is only logged.
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Err(err) = File::open(dir).and_then(|d| d.sync_all()) {
        tracing::warn!(dir = %dir.display(), %err, "could not fsync the directory");
    }
    #[cfg(not(unix))]
    let _ = dir;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt as _;
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temporary_files() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("config/tessera");
        let path = dir.join("default.session");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(read_limited(&path, 10).unwrap().unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["default.session"]);
        #[cfg(unix)]
        {
            assert_eq!(mode(&path), 0o600);
            assert_eq!(mode(&dir), 0o700);
            assert_eq!(mode(dir.parent().unwrap()), 0o700);
        }
    }

    #[test]
    fn a_failed_write_keeps_the_old_file() {
        let tmp = tempfile::tempdir().unwrap();
        // A directory where the file should be: the rename fails after the temporary file
        // was written; nothing is left behind and the directory is untouched.
        let path = tmp.path().join("default.session");
        fs::create_dir(&path).unwrap();
        fs::write(path.join("keep"), b"old").unwrap();
        let err = write_atomic(&path, b"new").unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::Io {
                    action: "replace",
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(fs::read(path.join("keep")).unwrap(), b"old");
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 1);
    }

    #[test]
    fn reads_are_limited() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("big");
        fs::write(&path, vec![b'x'; 11]).unwrap();
        assert!(matches!(
            read_limited(&path, 10),
            Err(StoreError::TooLarge { size: 11, .. })
        ));
        assert!(
            read_limited(&tmp.path().join("absent"), 10)
                .unwrap()
                .is_none()
        );
        assert!(matches!(
            read_limited(tmp.path(), 10),
            Err(StoreError::Corrupt { .. })
        ));
    }

    #[test]
    fn remove_is_idempotent() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("f");
        fs::write(&path, b"x").unwrap();
        assert!(remove(&path).unwrap());
        assert!(!remove(&path).unwrap());
    }
}
