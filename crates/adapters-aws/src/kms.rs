//! `CheckpointSigner` on AWS KMS: an asymmetric `ECC_NIST_EDWARDS25519` key, signing
//! with `ED25519_SHA_512` over the raw message. That is pure Ed25519 (RFC 8032), so a
//! KMS signature over a note's text is a valid C2SP signed-note signature, and the
//! private key never leaves KMS.

use async_trait::async_trait;
use aws_sdk_kms::Client;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{KeySpec, MessageType, SigningAlgorithmSpec};
use transparency::checkpoint::{CheckpointError, CheckpointSigner};

use crate::classify::describe;

/// DER SubjectPublicKeyInfo of an Ed25519 key (RFC 8410): this prefix, then the key.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

#[derive(Debug, Clone)]
pub struct KmsCheckpointSigner {
    client: Client,
    key_id: String,
    name: String,
    id: u32,
    verifier: String,
}

fn key_error(why: impl Into<String>) -> CheckpointError {
    CheckpointError::Key(why.into())
}

impl KmsCheckpointSigner {
    /// The signer of KMS key `key_id` (id, ARN or alias), named `name` in signatures.
    /// Reads the public key once, and refuses a key that cannot make Ed25519 signatures.
    pub async fn new(
        client: Client,
        key_id: impl Into<String>,
        name: &str,
    ) -> Result<Self, CheckpointError> {
        let key_id = key_id.into();
        if !signed_note::is_key_name_valid(name) {
            return Err(key_error(format!(
                "key name {name:?} must be non-empty, without spaces or '+'"
            )));
        }
        let out = client
            .get_public_key()
            .key_id(&key_id)
            .send()
            .await
            .map_err(|e| key_error(format!("KMS GetPublicKey {key_id}: {}", describe(&e))))?;
        if out.key_spec() != Some(&KeySpec::EccNistEdwards25519) {
            return Err(key_error(format!(
                "KMS key {key_id} is {:?}, not ECC_NIST_EDWARDS25519",
                out.key_spec().map(KeySpec::as_str)
            )));
        }
        if !out
            .signing_algorithms()
            .contains(&SigningAlgorithmSpec::Ed25519Sha512)
        {
            return Err(key_error(format!(
                "KMS key {key_id} does not sign with ED25519_SHA_512"
            )));
        }
        let der = out.public_key().map(Blob::as_ref).unwrap_or_default();
        let raw = der
            .strip_prefix(&ED25519_SPKI_PREFIX[..])
            .and_then(|k| <[u8; 32]>::try_from(k).ok())
            .ok_or_else(|| key_error(format!("KMS key {key_id}: not an Ed25519 public key")))?;
        let public = ed25519_dalek::VerifyingKey::from_bytes(&raw)
            .map_err(|e| key_error(format!("KMS key {key_id}: {e}")))?;
        let verifier = signed_note::new_ed25519_verifier_key(name, &public);
        let id = signed_note::key_id(name, &[&[1u8][..], &raw[..]].concat());
        Ok(KmsCheckpointSigner {
            client,
            key_id,
            name: name.to_owned(),
            id,
            verifier,
        })
    }
}

#[async_trait]
impl CheckpointSigner for KmsCheckpointSigner {
    fn name(&self) -> &str {
        &self.name
    }
    fn key_id(&self) -> u32 {
        self.id
    }
    fn verifier_key(&self) -> &str {
        &self.verifier
    }
    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CheckpointError> {
        let out = self
            .client
            .sign()
            .key_id(&self.key_id)
            .message(Blob::new(message))
            .message_type(MessageType::Raw)
            .signing_algorithm(SigningAlgorithmSpec::Ed25519Sha512)
            .send()
            .await
            .map_err(|e| CheckpointError::Signing(format!("KMS Sign: {}", describe(&e))))?;
        let sig = out.signature().map(Blob::as_ref).unwrap_or_default();
        if sig.len() != ed25519_dalek::SIGNATURE_LENGTH {
            return Err(CheckpointError::Signing(format!(
                "KMS returned a signature of {} bytes, not a 64-byte Ed25519 signature",
                sig.len()
            )));
        }
        Ok(sig.to_vec())
    }
}
