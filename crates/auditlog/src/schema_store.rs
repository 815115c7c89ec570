//! Deployment schemas kept in object storage (the Lambdas' `SCHEMAS_PREFIX` in the
//! audit bucket), added to the built-in ones at start-up, so teams add event types
//! without rebuilding the functions.

use envelope::{SchemaError, SchemaRegistry};

use crate::ports::{BlobError, BlobStore};

#[derive(Debug, thiserror::Error)]
pub enum SchemaLoadError {
    #[error(transparent)]
    Blob(#[from] BlobError),
    #[error(transparent)]
    Schema(#[from] SchemaError),
}

/// Adds every `<event_type>.v<version>.json` directly under `prefix`; anything else
/// there is an error (a typo in a file name must not silently drop a schema).
pub async fn load_schemas<B: BlobStore>(
    blobs: &B,
    prefix: &str,
    registry: &mut SchemaRegistry,
) -> Result<Vec<(String, u32)>, SchemaLoadError> {
    let mut added = Vec::new();
    for o in blobs.list(prefix).await? {
        let name = o.key.strip_prefix(prefix).unwrap_or(&o.key);
        let bytes = blobs.get(&o.key).await?;
        let text = String::from_utf8_lossy(&bytes);
        added.push(registry.add_file(name, &text)?);
    }
    Ok(added)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryBlobStore;
    use bytes::Bytes;

    #[tokio::test]
    async fn schemas_under_a_prefix_join_the_built_in_ones() {
        let blobs = MemoryBlobStore::default();
        blobs
            .put(
                "schemas/billing.invoice.paid.v1.json",
                Bytes::from_static(br#"{"type": "object", "required": ["amount"]}"#),
            )
            .await
            .unwrap();
        let mut r = SchemaRegistry::builtin().unwrap();
        let added = load_schemas(&blobs, "schemas/", &mut r).await.unwrap();
        assert_eq!(added, vec![("billing.invoice.paid".to_owned(), 1)]);
        assert!(r.knows("billing.invoice.paid", 1));
        blobs
            .put("schemas/notes.txt", Bytes::from_static(b"hello"))
            .await
            .unwrap();
        let err = load_schemas(&blobs, "schemas/", &mut SchemaRegistry::builtin().unwrap())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("notes.txt"), "{err}");
    }
}
