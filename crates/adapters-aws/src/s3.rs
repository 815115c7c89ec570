//! `BlobStore` on S3.

use async_trait::async_trait;
use auditlog::{BlobError, BlobStore, ObjectInfo};
use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ObjectLockMode;
use bytes::Bytes;
use chrono::{DateTime, Utc};

use crate::classify::{AwsError, Kind, OperationError, classify, describe};

#[derive(Debug, Clone)]
pub struct S3BlobStore {
    pub(crate) client: Client,
    pub(crate) bucket: String,
    /// The Object Lock mode of `put_retained` (None: the bucket has no Object Lock).
    lock_mode: Option<ObjectLockMode>,
}

impl S3BlobStore {
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
            lock_mode: None,
        }
    }

    /// `put_retained` locks each object until its date in this mode (`GOVERNANCE` or
    /// `COMPLIANCE`, as the bucket's Object Lock); `NONE` or empty: no lock.
    pub fn with_object_lock(mut self, mode: &str) -> Result<Self, BlobError> {
        self.lock_mode = match mode {
            "" | "NONE" => None,
            "GOVERNANCE" => Some(ObjectLockMode::Governance),
            "COMPLIANCE" => Some(ObjectLockMode::Compliance),
            other => {
                return Err(BlobError::Unavailable(format!(
                    "Object Lock mode {other:?}: GOVERNANCE, COMPLIANCE or NONE"
                )));
            }
        };
        Ok(self)
    }
}

fn object_info(o: &aws_sdk_s3::types::Object) -> Option<ObjectInfo> {
    Some(ObjectInfo {
        key: o.key()?.to_owned(),
        size: o.size().unwrap_or(0).max(0) as u64,
        modified: o
            .last_modified()
            .and_then(|t| chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos())),
    })
}

pub(crate) fn map<E: OperationError>(e: &AwsError<E>, key: &str) -> BlobError {
    match classify(e) {
        Kind::NotFound => BlobError::NotFound(key.to_owned()),
        Kind::Throttled => BlobError::Throttled(describe(e)),
        _ => BlobError::Unavailable(describe(e)),
    }
}

#[async_trait]
impl BlobStore for S3BlobStore {
    async fn put(&self, key: &str, body: Bytes) -> Result<(), BlobError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| map(&e, key))?;
        Ok(())
    }

    async fn put_retained(
        &self,
        key: &str,
        body: Bytes,
        retain_until: DateTime<Utc>,
    ) -> Result<(), BlobError> {
        let Some(mode) = &self.lock_mode else {
            return self.put(key, body).await;
        };
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(body))
            .object_lock_mode(mode.clone())
            .object_lock_retain_until_date(aws_sdk_s3::primitives::DateTime::from_secs(
                retain_until.timestamp(),
            ))
            .send()
            .await
            .map_err(|e| map(&e, key))?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Bytes, BlobError> {
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| map(&e, key))?;
        let body = out
            .body
            .collect()
            .await
            .map_err(|e| BlobError::Unavailable(e.to_string()))?;
        Ok(body.into_bytes())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, BlobError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| map(&e, prefix))?;
            out.extend(page.contents().iter().filter_map(object_info));
            match page.next_continuation_token() {
                Some(t) if page.is_truncated().unwrap_or(false) => token = Some(t.to_owned()),
                _ => break,
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn list_first(&self, prefix: &str, max: usize) -> Result<Vec<ObjectInfo>, BlobError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        while out.len() < max {
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .max_keys(i32::try_from((max - out.len()).min(1000)).unwrap_or(1000))
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| map(&e, prefix))?;
            out.extend(page.contents().iter().filter_map(object_info));
            match page.next_continuation_token() {
                Some(t) if page.is_truncated().unwrap_or(false) => token = Some(t.to_owned()),
                _ => break,
            }
        }
        out.truncate(max);
        Ok(out)
    }

    async fn list_prefixes(&self, prefix: &str) -> Result<Vec<String>, BlobError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .delimiter("/")
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| map(&e, prefix))?;
            out.extend(
                page.common_prefixes()
                    .iter()
                    .filter_map(|p| p.prefix().map(str::to_owned)),
            );
            match page.next_continuation_token() {
                Some(t) if page.is_truncated().unwrap_or(false) => token = Some(t.to_owned()),
                _ => break,
            }
        }
        out.sort();
        Ok(out)
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        match self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if classify(&e) == Kind::NotFound => Ok(()),
            Err(e) => Err(map(&e, key)),
        }
    }
}
