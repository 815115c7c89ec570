//! `ExportStore` on S3: an export streams into a multipart upload (8 MiB parts; a small
//! one is a single PUT), which becomes visible only when completed; downloads are
//! presigned GETs (15 minutes) that name the file and its type.

use std::time::Duration;

use async_trait::async_trait;
use auditlog::BlobError;
use aws_sdk_s3::Client;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::Bytes;
use history::{CHUNK_BYTES, ExportStore, ExportUpload};

use crate::S3BlobStore;
use crate::s3::map;

/// How long a download link works.
pub const DOWNLOAD_URL_TTL: Duration = Duration::from_secs(900);

struct S3Upload {
    client: Client,
    bucket: String,
    key: String,
    upload_id: Option<String>,
    parts: Vec<CompletedPart>,
    buf: Vec<u8>,
}

impl S3Upload {
    async fn send_part(&mut self) -> Result<(), BlobError> {
        let id = match &self.upload_id {
            Some(id) => id.clone(),
            None => {
                let out = self
                    .client
                    .create_multipart_upload()
                    .bucket(&self.bucket)
                    .key(&self.key)
                    .send()
                    .await
                    .map_err(|e| map(&e, &self.key))?;
                let id = out
                    .upload_id()
                    .ok_or_else(|| BlobError::Unavailable("no upload id".into()))?
                    .to_owned();
                self.upload_id = Some(id.clone());
                id
            }
        };
        let number = i32::try_from(self.parts.len() + 1).unwrap_or(i32::MAX);
        let body = Bytes::from(std::mem::take(&mut self.buf));
        let out = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&id)
            .part_number(number)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| map(&e, &self.key))?;
        self.parts.push(
            CompletedPart::builder()
                .part_number(number)
                .set_e_tag(out.e_tag().map(str::to_owned))
                .build(),
        );
        Ok(())
    }
}

#[async_trait]
impl ExportUpload for S3Upload {
    async fn write(&mut self, chunk: Bytes) -> Result<(), BlobError> {
        self.buf.extend_from_slice(&chunk);
        if self.buf.len() >= CHUNK_BYTES {
            self.send_part().await?;
        }
        Ok(())
    }

    async fn finish(mut self: Box<Self>) -> Result<(), BlobError> {
        if self.upload_id.is_none() {
            let body = Bytes::from(std::mem::take(&mut self.buf));
            self.client
                .put_object()
                .bucket(&self.bucket)
                .key(&self.key)
                .body(ByteStream::from(body))
                .send()
                .await
                .map_err(|e| map(&e, &self.key))?;
            return Ok(());
        }
        if !self.buf.is_empty() {
            self.send_part().await?;
        }
        let parts = std::mem::take(&mut self.parts);
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .set_upload_id(self.upload_id.clone())
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| map(&e, &self.key))?;
        Ok(())
    }

    async fn abort(self: Box<Self>) {
        if let Some(id) = &self.upload_id {
            let _ = self
                .client
                .abort_multipart_upload()
                .bucket(&self.bucket)
                .key(&self.key)
                .upload_id(id)
                .send()
                .await;
        }
    }
}

#[async_trait]
impl ExportStore for S3BlobStore {
    async fn create(&self, key: &str) -> Result<Box<dyn ExportUpload>, BlobError> {
        Ok(Box::new(S3Upload {
            client: self.client.clone(),
            bucket: self.bucket.clone(),
            key: key.to_owned(),
            upload_id: None,
            parts: Vec::new(),
            buf: Vec::new(),
        }))
    }

    async fn download_url(
        &self,
        key: &str,
        file_name: &str,
        content_type: &str,
    ) -> Result<Option<String>, BlobError> {
        let config = PresigningConfig::expires_in(DOWNLOAD_URL_TTL)
            .map_err(|e| BlobError::Unavailable(e.to_string()))?;
        let req = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .response_content_disposition(format!("attachment; filename=\"{file_name}\""))
            .response_content_type(content_type)
            .presigned(config)
            .await
            .map_err(|e| BlobError::Unavailable(e.to_string()))?;
        Ok(Some(req.uri().to_owned()))
    }

    async fn read(&self, key: &str) -> Result<Bytes, BlobError> {
        auditlog::BlobStore::get(self, key).await
    }
}
