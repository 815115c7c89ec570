//! `ExportStore` on the local directory: an export streams into a temporary file that
//! is renamed into place when complete, so a half-written export is never downloadable.
//! The API serves these files itself (there is no presigned URL locally).

use std::io::Write;
use std::path::PathBuf;

use async_trait::async_trait;
use auditlog::BlobError;
use bytes::Bytes;
use history::{ExportStore, ExportUpload};

use crate::LocalDirBlobStore;

fn io_err(e: std::io::Error) -> BlobError {
    BlobError::Unavailable(e.to_string())
}

struct LocalUpload {
    tmp: PathBuf,
    file: std::io::BufWriter<std::fs::File>,
    dest: PathBuf,
}

#[async_trait]
impl ExportUpload for LocalUpload {
    async fn write(&mut self, chunk: Bytes) -> Result<(), BlobError> {
        self.file.write_all(&chunk).map_err(io_err)
    }

    async fn finish(self: Box<Self>) -> Result<(), BlobError> {
        let LocalUpload { tmp, file, dest } = *self;
        let file = file.into_inner().map_err(|e| io_err(e.into_error()))?;
        file.sync_all().map_err(io_err)?;
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(io_err)?;
        }
        std::fs::rename(&tmp, &dest).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            io_err(e)
        })
    }

    async fn abort(self: Box<Self>) {
        let _ = std::fs::remove_file(&self.tmp);
    }
}

#[async_trait]
impl ExportStore for LocalDirBlobStore {
    async fn create(&self, key: &str) -> Result<Box<dyn ExportUpload>, BlobError> {
        let dest = self.path_of(key)?;
        let tmp = self.tmp_path();
        let file = std::fs::File::create(&tmp).map_err(io_err)?;
        Ok(Box::new(LocalUpload {
            tmp,
            file: std::io::BufWriter::with_capacity(1 << 20, file),
            dest,
        }))
    }

    async fn download_url(&self, _: &str, _: &str, _: &str) -> Result<Option<String>, BlobError> {
        Ok(None)
    }

    async fn read(&self, key: &str) -> Result<Bytes, BlobError> {
        let path = self.path_of(key)?;
        match std::fs::read(&path) {
            Ok(b) => Ok(b.into()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(BlobError::NotFound(key.to_owned()))
            }
            Err(e) => Err(io_err(e)),
        }
    }
}
