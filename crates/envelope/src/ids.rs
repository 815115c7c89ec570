//! Identifiers that end up in storage keys and object paths, validated once at the edge.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("tenant_id is empty")]
    EmptyTenant,
    #[error("tenant_id is {len} characters, longer than {max}")]
    TenantTooLong { len: usize, max: usize },
    #[error(
        "tenant_id {value:?} may only hold lowercase letters, digits, '-' and '_', starting with a letter or digit"
    )]
    TenantCharacters { value: String },
    #[error("event_id {value:?} is neither a UUID nor a ULID")]
    EventIdFormat { value: String },
}

/// A tenant identifier. It becomes a path segment (`tenant_id=<t>/`) and a key prefix,
/// so the alphabet is deliberately narrow: nothing that could escape a partition
/// (`/`, `..`, `=`, `%`) or collide under case folding.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct TenantId(String);

impl TenantId {
    pub const MAX_LEN: usize = 64;

    pub fn parse(value: &str) -> Result<Self, IdError> {
        if value.is_empty() {
            return Err(IdError::EmptyTenant);
        }
        if value.len() > Self::MAX_LEN {
            return Err(IdError::TenantTooLong {
                len: value.len(),
                max: Self::MAX_LEN,
            });
        }
        let mut chars = value.bytes();
        let first_ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        let rest_ok = value
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'_');
        if !first_ok || !rest_ok {
            return Err(IdError::TenantCharacters {
                value: value.chars().take(80).collect(),
            });
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for TenantId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        TenantId::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// The producer's event identifier: a UUID (v7 recommended) or a ULID, assigned once and
/// reused on every retry. Stored normalised (UUID lowercase hyphenated, ULID uppercase)
/// so the same id spelt two ways is still one event.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct EventId(String);

const CROCKFORD: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

impl EventId {
    pub fn parse(value: &str) -> Result<Self, IdError> {
        if let Ok(uuid) = uuid::Uuid::try_parse(value) {
            // Accept only the canonical 36-character form: braces and urn: prefixes would
            // let one id have several spellings in the raw payload.
            if value.len() == 36 {
                let mut buf = uuid::Uuid::encode_buffer();
                return Ok(Self(uuid.hyphenated().encode_lower(&mut buf).to_owned()));
            }
        }
        if value.len() == 26 {
            let upper = value.to_ascii_uppercase();
            // A ULID's first character encodes the top 3 bits of a 48-bit time: at most '7'.
            let valid = upper.bytes().all(|c| CROCKFORD.contains(&c))
                && upper.as_bytes().first().is_some_and(|c| *c <= b'7');
            if valid {
                return Ok(Self(upper));
            }
        }
        Err(IdError::EventIdFormat {
            value: value.chars().take(80).collect(),
        })
    }

    /// A fresh UUIDv7: time-ordered, so ids of one producer sort by creation.
    pub fn new_v7() -> Self {
        Self(uuid::Uuid::now_v7().hyphenated().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for EventId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        EventId::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn tenant_accepts_plain_slugs() {
        for ok in ["acme-corp", "t1", "a", "tenant_42", "0abc"] {
            assert_eq!(TenantId::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn tenant_rejects_path_tricks() {
        for bad in [
            "",
            "../etc",
            "a/b",
            "a=b",
            "tenant_id=x",
            ".hidden",
            "-lead",
            "Acme",
            "a b",
            "a%2fb",
            "a\\b",
            "ü",
            "a\0",
        ] {
            assert!(TenantId::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(matches!(
            TenantId::parse(&"a".repeat(65)),
            Err(IdError::TenantTooLong { len: 65, .. })
        ));
    }

    #[test]
    fn event_id_normalises_uuid_and_ulid() {
        let u = EventId::parse("0192F4A0-7B3C-7D4E-8F00-112233445566").unwrap();
        assert_eq!(u.as_str(), "0192f4a0-7b3c-7d4e-8f00-112233445566");
        let l = EventId::parse("01jd5x7k9m2n3p4q5r6s7t8v9w").unwrap();
        assert_eq!(l.as_str(), "01JD5X7K9M2N3P4Q5R6S7T8V9W");
        for bad in [
            "",
            "not-an-id",
            "{0192f4a0-7b3c-7d4e-8f00-112233445566}",
            "81JD5X7K9M2N3P4Q5R6S7T8V9W",
            "01JD5X7K9M2N3P4Q5R6S7T8V9U",
        ] {
            assert!(EventId::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    /// The rule, written independently of `TenantId::parse`.
    fn is_safe_segment(s: &str) -> bool {
        let b = s.as_bytes();
        (1..=TenantId::MAX_LEN).contains(&b.len())
            && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
            && b.iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-' || *c == b'_')
    }

    /// Mostly plausible ids (so most cases are accepted and reach the assertions on
    /// accepted ids), with hostile characters, lengths and case mixed in.
    fn tenant_like() -> impl Strategy<Value = String> {
        prop_oneof![
            6 => "[a-z0-9][a-z0-9_-]{0,63}",
            2 => "[a-z0-9][a-z0-9_-]{0,20}[/=.%A-Z \\\\\u{0}ü][a-z0-9_-]{0,20}",
            1 => "[a-z0-9_-]{60,70}",
            1 => "\\PC{0,70}",
        ]
    }

    #[test]
    fn tenant_ids_are_accepted_exactly_when_they_are_safe_path_segments() {
        let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(3000));
        let accepted = std::cell::Cell::new(0usize);
        runner
            .run(&tenant_like(), |s| {
                let parsed = TenantId::parse(&s);
                prop_assert_eq!(parsed.is_ok(), is_safe_segment(&s), "{:?}", s);
                if let Ok(t) = parsed {
                    accepted.set(accepted.get() + 1);
                    // as a path segment it cannot climb out of or into another partition
                    let segment = format!("tenant_id={t}");
                    prop_assert_eq!(segment.split('/').count(), 1);
                    prop_assert_eq!(segment.matches('=').count(), 1);
                    prop_assert!(!t.as_str().contains(".."));
                    prop_assert_eq!(t.as_str(), s.as_str());
                }
                Ok(())
            })
            .unwrap();
        // the property is only worth something if it is exercised on accepted ids
        assert!(accepted.get() > 1500, "{} of 3000 accepted", accepted.get());
    }
}
