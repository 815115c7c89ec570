//! `BlobStore` on a local directory. Keys map to relative paths; a key that could leave
//! the root (absolute, `..`, backslashes, empty segments) is refused. Writes go to a
//! temporary file first and are renamed into place, so readers never see half an object.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use auditlog::{BlobError, BlobStore, ObjectInfo};
use bytes::Bytes;

#[derive(Debug, Clone)]
pub struct LocalDirBlobStore {
    root: PathBuf,
}

const TMP_DIR: &str = ".tmp";

fn io_err(e: std::io::Error) -> BlobError {
    BlobError::Unavailable(e.to_string())
}

impl LocalDirBlobStore {
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, BlobError> {
        let root = root.into();
        std::fs::create_dir_all(root.join(TMP_DIR)).map_err(io_err)?;
        Ok(Self { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A fresh path in the temporary directory (same file system: renames are atomic).
    pub(crate) fn tmp_path(&self) -> PathBuf {
        self.root
            .join(TMP_DIR)
            .join(uuid::Uuid::new_v4().to_string())
    }

    pub(crate) fn path_of(&self, key: &str) -> Result<PathBuf, BlobError> {
        let bad = key.is_empty()
            || key.starts_with('/')
            || key.contains('\\')
            || key.contains('\0')
            || key
                .split('/')
                .any(|s| s.is_empty() || s == "." || s == ".." || s == TMP_DIR);
        if bad {
            return Err(BlobError::InvalidKey(key.to_owned()));
        }
        Ok(self.root.join(key))
    }
}

fn walk(dir: &Path, root: &Path, prefix: &str, out: &mut Vec<ObjectInfo>) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        let Ok(rel) = path.strip_prefix(root) else {
            continue;
        };
        let Some(rel) = rel.to_str() else { continue };
        let rel = rel.replace(std::path::MAIN_SEPARATOR, "/");
        if rel == TMP_DIR {
            continue;
        }
        let ty = entry.file_type()?;
        if ty.is_dir() {
            // descend only where keys under the prefix can be
            let dir_key = format!("{rel}/");
            if dir_key.starts_with(prefix) || prefix.starts_with(&dir_key) {
                walk(&path, root, prefix, out)?;
            }
        } else if ty.is_file() && rel.starts_with(prefix) {
            let meta = entry.metadata()?;
            out.push(ObjectInfo {
                key: rel,
                size: meta.len(),
                modified: meta
                    .modified()
                    .ok()
                    .map(chrono::DateTime::<chrono::Utc>::from),
            });
        }
    }
    Ok(())
}

#[async_trait]
impl BlobStore for LocalDirBlobStore {
    async fn put(&self, key: &str, body: Bytes) -> Result<(), BlobError> {
        let path = self.path_of(key)?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io_err)?;
        }
        let tmp = self
            .root
            .join(TMP_DIR)
            .join(uuid::Uuid::new_v4().to_string());
        std::fs::write(&tmp, &body).map_err(io_err)?;
        std::fs::rename(&tmp, &path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            io_err(e)
        })
    }

    async fn get(&self, key: &str) -> Result<Bytes, BlobError> {
        match std::fs::read(self.path_of(key)?) {
            Ok(b) => Ok(Bytes::from(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(BlobError::NotFound(key.to_owned()))
            }
            Err(e) => Err(io_err(e)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, BlobError> {
        let mut out = Vec::new();
        walk(&self.root, &self.root, prefix, &mut out).map_err(io_err)?;
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        match std::fs::remove_file(self.path_of(key)?) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(e)),
        }
    }
}
