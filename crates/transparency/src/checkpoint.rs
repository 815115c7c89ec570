//! Signed checkpoints: C2SP tlog-checkpoint text in a C2SP signed note, so generic
//! transparency-log tools read them. One key signs every tenant's log; each tenant's log
//! has its own origin line (`<log name>/<tenant>`), so a checkpoint of one tenant can
//! never pass for another's.
//!
//! Keys rotate by adding: a verifier trusts a list of verifier keys (`name+id+key`), the
//! new key is added before it signs, and the old one stays listed, so every checkpoint
//! ever signed keeps verifying.

use async_trait::async_trait;
use envelope::TenantId;
pub use signed_note::VerifierList;
use signed_note::{Note, Signature, Signer, StandardSigner, StandardVerifier};
use tlog_tiles::{Checkpoint, Hash};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error("not a signed checkpoint: {0}")]
    Malformed(String),
    #[error("the signature by {name} ({id:08x}) does not verify: the checkpoint was altered")]
    BadSignature { name: String, id: u32 },
    #[error("no signature by a trusted key (signed by: {0})")]
    UntrustedKey(String),
    #[error("checkpoint is for {found:?}, expected {expected:?}")]
    WrongOrigin { expected: String, found: String },
    #[error("invalid key: {0}")]
    Key(String),
    #[error("signing failed: {0}")]
    Signing(String),
}

/// What signs checkpoints: a local Ed25519 key, or a KMS key on AWS.
#[async_trait]
pub trait CheckpointSigner: Send + Sync {
    /// The key's name in signatures.
    fn name(&self) -> &str;
    /// The C2SP key id (the first four bytes of SHA-256 over name, newline, key).
    fn key_id(&self) -> u32;
    /// The verifier key customers pin: `name+id+base64(0x01 || public key)`.
    fn verifier_key(&self) -> &str;
    /// A pure Ed25519 signature (RFC 8032) over `message`.
    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CheckpointError>;
}

/// An Ed25519 key kept in a file on the embedded default, in the signed-note private key
/// format (`PRIVATE+KEY+name+id+base64`), which the Go `note` tools also read.
#[derive(Clone)]
pub struct LocalKey {
    signer: StandardSigner,
    private: String,
    verifier: String,
}

impl std::fmt::Debug for LocalKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // never the private key
        f.debug_struct("LocalKey")
            .field("verifier", &self.verifier)
            .finish()
    }
}

impl LocalKey {
    /// A new random key named `name` (no spaces or `+`).
    pub fn generate(name: &str) -> Result<Self, CheckpointError> {
        if !signed_note::is_key_name_valid(name) {
            return Err(CheckpointError::Key(format!(
                "key name {name:?} must be non-empty, without spaces or '+'"
            )));
        }
        let (private, _) = signed_note::generate_key(&mut rand_core::OsRng, name);
        Self::from_private(&private)
    }

    /// A key from its private form (a key file's contents, surrounding whitespace ignored).
    pub fn from_private(private: &str) -> Result<Self, CheckpointError> {
        let private = private.trim();
        let signer = StandardSigner::new(private)
            .map_err(|e| CheckpointError::Key(format!("not a signed-note private key: {e}")))?;
        // the verifier key is the private key's public half, under the same name and id
        let (_, _, rest) = split3(private)?;
        let key = ed25519_dalek::SigningKey::try_from(decode_key(rest)?.get(1..).unwrap_or(&[]))
            .map_err(|e| CheckpointError::Key(e.to_string()))?;
        let verifier = signed_note::new_ed25519_verifier_key(signer.name(), &key.verifying_key());
        Ok(LocalKey {
            signer,
            private: private.to_owned(),
            verifier,
        })
    }

    /// What to write to the key file (keep it private).
    pub fn private_key(&self) -> &str {
        &self.private
    }
}

/// `PRIVATE+KEY+name+id+key` → (name, id, key)
fn split3(private: &str) -> Result<(&str, &str, &str), CheckpointError> {
    let bad = || CheckpointError::Key("not a signed-note private key".into());
    let rest = private.strip_prefix("PRIVATE+KEY+").ok_or_else(bad)?;
    let (name, rest) = rest.split_once('+').ok_or_else(bad)?;
    let (id, key) = rest.split_once('+').ok_or_else(bad)?;
    Ok((name, id, key))
}

fn decode_key(b64: &str) -> Result<Vec<u8>, CheckpointError> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| CheckpointError::Key("key is not base64".into()))
}

#[async_trait]
impl CheckpointSigner for LocalKey {
    fn name(&self) -> &str {
        self.signer.name()
    }
    fn key_id(&self) -> u32 {
        self.signer.key_id()
    }
    fn verifier_key(&self) -> &str {
        &self.verifier
    }
    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CheckpointError> {
        self.signer
            .sign(message)
            .map_err(|e| CheckpointError::Signing(e.to_string()))
    }
}

/// The origin line of a tenant's log.
pub fn origin(log_name: &str, tenant: &TenantId) -> String {
    format!("{log_name}/{tenant}")
}

/// A checkpoint whose signature verified against a trusted key.
#[derive(Debug, Clone, PartialEq)]
pub struct SignedCheckpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
    /// The trusted keys whose signatures verified, as `name+id`.
    pub signed_by: Vec<String>,
    /// The note as published.
    pub note: Vec<u8>,
}

/// Signs the checkpoint of a tree of `size` leaves with `root`.
pub async fn sign(
    signer: &dyn CheckpointSigner,
    origin: &str,
    size: u64,
    root: Hash,
) -> Result<Vec<u8>, CheckpointError> {
    let text = Checkpoint::new(origin, size, root, "")
        .map_err(|e| CheckpointError::Malformed(e.to_string()))?
        .to_bytes();
    let sig = signer.sign(&text).await?;
    let sig = Signature::new(signer.name().to_owned(), signer.key_id(), sig)
        .map_err(|e| CheckpointError::Signing(e.to_string()))?;
    let note = Note::new(&text, &[sig]).map_err(|e| CheckpointError::Malformed(e.to_string()))?;
    Ok(note.to_bytes())
}

/// Parses `verifier_keys` (one `name+id+key` each).
pub fn trusted(verifier_keys: &[String]) -> Result<VerifierList, CheckpointError> {
    let mut list: Vec<Box<dyn signed_note::Verifier>> = Vec::new();
    for k in verifier_keys {
        let v = StandardVerifier::new(k.trim())
            .map_err(|e| CheckpointError::Key(format!("{:?}: {e}", k.trim())))?;
        list.push(Box::new(v));
    }
    Ok(VerifierList::new(list))
}

/// The size and root a checkpoint states, its signature not checked: for the log's own
/// server, which serves proofs against the checkpoint it published (clients verify).
pub fn parse_unverified(note: &[u8]) -> Result<(String, u64, Hash), CheckpointError> {
    let parsed = Note::from_bytes(note).map_err(|e| CheckpointError::Malformed(e.to_string()))?;
    let cp = Checkpoint::from_bytes(parsed.text())
        .map_err(|e| CheckpointError::Malformed(e.to_string()))?;
    Ok((cp.origin().to_owned(), cp.size(), *cp.hash()))
}

/// Verifies a published checkpoint against the trusted keys and the expected origin.
pub fn open(
    note: &[u8],
    trusted: &VerifierList,
    expected_origin: &str,
) -> Result<SignedCheckpoint, CheckpointError> {
    let parsed = Note::from_bytes(note).map_err(|e| CheckpointError::Malformed(e.to_string()))?;
    let (verified, unverified) = match parsed.verify(trusted) {
        Ok(v) => v,
        Err(signed_note::NoteError::InvalidSignature { name, id }) => {
            return Err(CheckpointError::BadSignature { name, id });
        }
        Err(signed_note::NoteError::UnverifiedNote) => {
            let by = String::from_utf8_lossy(note)
                .lines()
                .filter_map(|l| l.strip_prefix("— "))
                .filter_map(|l| l.split(' ').next())
                .collect::<Vec<_>>()
                .join(", ");
            return Err(CheckpointError::UntrustedKey(by));
        }
        Err(e) => return Err(CheckpointError::Malformed(e.to_string())),
    };
    let _ = unverified;
    let cp = Checkpoint::from_bytes(parsed.text())
        .map_err(|e| CheckpointError::Malformed(e.to_string()))?;
    if cp.origin() != expected_origin {
        return Err(CheckpointError::WrongOrigin {
            expected: expected_origin.to_owned(),
            found: cp.origin().to_owned(),
        });
    }
    Ok(SignedCheckpoint {
        origin: cp.origin().to_owned(),
        size: cp.size(),
        root: *cp.hash(),
        signed_by: verified
            .iter()
            .map(|s| format!("{}+{:08x}", s.name(), s.id()))
            .collect(),
        note: note.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::Verifier as _;

    fn acme() -> TenantId {
        TenantId::parse("acme").unwrap()
    }

    #[tokio::test]
    async fn a_signed_checkpoint_opens_with_the_key_and_is_c2sp_text() {
        let key = LocalKey::generate("audit.example").unwrap();
        let o = origin("audit.example", &acme());
        let root = Hash([7u8; 32]);
        let note = sign(&key, &o, 42, root).await.unwrap();
        let text = String::from_utf8(note.clone()).unwrap();
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("audit.example/acme"));
        assert_eq!(lines.next(), Some("42"));
        assert_eq!(
            lines.next(),
            Some("BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=")
        );
        assert_eq!(lines.next(), Some(""));
        assert!(lines.next().unwrap().starts_with("— audit.example "));
        let keys = trusted(&[key.verifier_key().to_owned()]).unwrap();
        let cp = open(&note, &keys, &o).unwrap();
        assert_eq!((cp.size, cp.root), (42, root));
        assert_eq!(
            cp.signed_by,
            vec![format!("audit.example+{:08x}", key.key_id())]
        );
    }

    #[tokio::test]
    async fn an_altered_wrong_tenant_or_untrusted_checkpoint_does_not_open() {
        let key = LocalKey::generate("audit.example").unwrap();
        let other = LocalKey::generate("audit.example").unwrap();
        let o = origin("audit.example", &acme());
        let note = sign(&key, &o, 42, Hash([7u8; 32])).await.unwrap();
        let keys = trusted(&[key.verifier_key().to_owned()]).unwrap();
        let altered = String::from_utf8(note.clone())
            .unwrap()
            .replacen("\n42\n", "\n41\n", 1);
        assert!(matches!(
            open(altered.as_bytes(), &keys, &o),
            Err(CheckpointError::BadSignature { .. })
        ));
        assert!(matches!(
            open(&note, &keys, "audit.example/globex"),
            Err(CheckpointError::WrongOrigin { .. })
        ));
        let theirs = trusted(&[other.verifier_key().to_owned()]).unwrap();
        assert!(matches!(
            open(&note, &theirs, &o),
            Err(CheckpointError::UntrustedKey(by)) if by == "audit.example"
        ));
        assert!(matches!(
            open(b"junk", &keys, &o),
            Err(CheckpointError::Malformed(_))
        ));
    }

    #[tokio::test]
    async fn after_rotation_old_and_new_checkpoints_both_verify() {
        let old = LocalKey::generate("audit.example").unwrap();
        let new = LocalKey::generate("audit.example").unwrap();
        let o = origin("audit.example", &acme());
        let before = sign(&old, &o, 10, Hash([1u8; 32])).await.unwrap();
        let after = sign(&new, &o, 20, Hash([2u8; 32])).await.unwrap();
        let keys =
            trusted(&[old.verifier_key().to_owned(), new.verifier_key().to_owned()]).unwrap();
        assert_eq!(open(&before, &keys, &o).unwrap().size, 10);
        assert_eq!(open(&after, &keys, &o).unwrap().size, 20);
    }

    #[tokio::test]
    async fn the_key_file_round_trips_and_its_signatures_verify_with_dalek() {
        let key = LocalKey::generate("audit.example").unwrap();
        let again = LocalKey::from_private(&format!("{}\n", key.private_key())).unwrap();
        assert_eq!(again.verifier_key(), key.verifier_key());
        assert!(!format!("{key:?}").contains("PRIVATE"));
        // the verifier key's last field is base64(0x01 || 32-byte public key)
        let b64 = key.verifier_key().splitn(3, '+').nth(2).unwrap();
        let raw = decode_key(b64).unwrap();
        assert_eq!((raw.len(), raw[0]), (33, 1));
        let vk = ed25519_dalek::VerifyingKey::from_bytes(raw[1..].try_into().unwrap()).unwrap();
        let sig = key.sign(b"message").await.unwrap();
        let sig = ed25519_dalek::Signature::from_slice(&sig).unwrap();
        assert!(vk.verify(b"message", &sig).is_ok());
        assert!(LocalKey::from_private("PRIVATE+KEY+x+0000+AAAA").is_err());
        assert!(LocalKey::generate("two words").is_err());
    }
}
