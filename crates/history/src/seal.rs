//! Sealed tokens: cursors, checkpoints and viewer sessions are JSON claims with an
//! HMAC-SHA256 tag, so a client can hold them but not change them. Each kind has its own
//! purpose label inside the MAC, so a cursor can never be replayed as a checkpoint.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::Sha256;

/// Longest sealed text accepted (a cursor holds a time, an id and two digests).
const MAX_SEALED_LEN: usize = 2048;

/// The secret that seals; at least 32 bytes. On AWS it comes from Secrets Manager, on
/// `serve` from a key file created at first start.
#[derive(Clone)]
pub struct SealKey(Vec<u8>);

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealKey(..)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("a sealing key needs at least 32 bytes")]
    ShortKey,
    #[error("not a token this service issued")]
    Malformed,
    #[error("the token was altered or signed with another key")]
    Forged,
}

impl SealKey {
    pub fn new(secret: &[u8]) -> Result<Self, SealError> {
        if secret.len() < 32 {
            return Err(SealError::ShortKey);
        }
        Ok(Self(secret.to_vec()))
    }

    /// A fresh random key (two v4 UUIDs' worth of randomness, 244 bits, hex-encoded).
    pub fn generate() -> Vec<u8> {
        format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        )
        .into_bytes()
    }

    fn mac(&self, purpose: &str, body: &[u8]) -> Hmac<Sha256> {
        // a key of any length is accepted by HMAC
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.0).unwrap_or_else(|_| unreachable_mac());
        mac.update(purpose.as_bytes());
        mac.update(&[0]);
        mac.update(body);
        mac
    }

    /// `<prefix>.<claims>.<tag>`, both base64url.
    pub fn seal<T: Serialize>(&self, purpose: &str, claims: &T) -> String {
        // our claim structs are plain data and always serialise
        let body = serde_json::to_vec(claims).unwrap_or_default();
        let tag = self.mac(purpose, &body).finalize().into_bytes();
        format!(
            "{purpose}.{}.{}",
            URL_SAFE_NO_PAD.encode(&body),
            URL_SAFE_NO_PAD.encode(tag)
        )
    }

    pub fn open<T: DeserializeOwned>(&self, purpose: &str, text: &str) -> Result<T, SealError> {
        let text = text.trim();
        if text.len() > MAX_SEALED_LEN {
            return Err(SealError::Malformed);
        }
        let mut parts = text.split('.');
        let (Some(p), Some(body), Some(tag), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(SealError::Malformed);
        };
        if p != purpose {
            return Err(SealError::Malformed);
        }
        let body = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| SealError::Malformed)?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| SealError::Malformed)?;
        if tag.len() != 32 {
            return Err(SealError::Malformed);
        }
        self.mac(purpose, &body)
            .verify_slice(&tag)
            .map_err(|_| SealError::Forged)?;
        serde_json::from_slice(&body).map_err(|_| SealError::Malformed)
    }
}

// `Hmac::new_from_slice` fails only for fixed-size-key MACs; HMAC takes any length.
fn unreachable_mac() -> Hmac<Sha256> {
    #[allow(clippy::expect_used)]
    <Hmac<Sha256> as Mac>::new_from_slice(&[0u8; 32]).expect("HMAC accepts a 32-byte key")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Claims {
        tenant: String,
        n: u64,
    }

    fn key(b: u8) -> SealKey {
        SealKey::new(&[b; 32]).unwrap()
    }

    #[test]
    fn round_trips_and_refuses_edits() {
        let k = key(1);
        let c = Claims {
            tenant: "acme".into(),
            n: 7,
        };
        let text = k.seal("cur", &c);
        assert_eq!(k.open::<Claims>("cur", &text).unwrap(), c);
        // another purpose, another key, an edited body, a cut tag
        assert_eq!(k.open::<Claims>("chk", &text), Err(SealError::Malformed));
        assert_eq!(key(2).open::<Claims>("cur", &text), Err(SealError::Forged));
        let mut parts: Vec<String> = text.split('.').map(str::to_owned).collect();
        let other = URL_SAFE_NO_PAD.encode(br#"{"tenant":"other","n":7}"#);
        parts[1] = other;
        assert_eq!(
            k.open::<Claims>("cur", &parts.join(".")),
            Err(SealError::Forged)
        );
        assert_eq!(
            k.open::<Claims>("cur", &text[..text.len() - 3]),
            Err(SealError::Malformed)
        );
        for junk in ["", "cur", "cur..", "cur.!!.!!", &"a".repeat(5000)] {
            assert_eq!(k.open::<Claims>("cur", junk), Err(SealError::Malformed));
        }
        assert_eq!(SealKey::new(b"short").unwrap_err(), SealError::ShortKey);
        assert!(SealKey::new(&SealKey::generate()).is_ok());
    }
}
