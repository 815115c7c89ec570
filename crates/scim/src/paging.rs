//! Cursor pagination (RFC 9865). A cursor is opaque to clients and stateless here: it
//! names the last item a page returned (its sort key and id), the tenant and the query
//! it belongs to, and when it was issued. Nothing is kept on the server, so a cursor
//! survives a restart or another Lambda instance, and one tenant's cursor, or a cursor
//! of another query, is refused as `invalidCursor` instead of being reinterpreted.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use envelope::TenantId;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{ErrorKind, ScimError};

/// How long a cursor stays valid (advertised as `cursorTimeout`). Positions do not go
/// stale, but a bound keeps a leaked cursor from being a long-lived bookmark.
pub const CURSOR_TIMEOUT_SECS: i64 = 3600;
/// Longest cursor text accepted (a cursor holds one sort key and one id).
const MAX_CURSOR_LEN: usize = 4096;

/// Where the next page starts: after the item with this sort key and id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// Fingerprint of the tenant the cursor was issued to.
    t: String,
    /// Fingerprint of the query (filter, sort, or the group whose members are listed).
    q: String,
    /// Sort key of the last item returned, when the list was sorted by an attribute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Id of the last item returned.
    pub id: String,
    /// Issue time, Unix seconds.
    at: i64,
}

fn fingerprint(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    hex::encode(&h.finalize()[..8])
}

/// What a cursor is bound to: the tenant and a description of the query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CursorScope {
    tenant: String,
    query: String,
}

impl CursorScope {
    pub fn new(tenant: &TenantId, query: &[&str]) -> Self {
        Self {
            tenant: fingerprint(&[tenant.as_str()]),
            query: fingerprint(query),
        }
    }

    /// The cursor that continues after `(key, id)`.
    pub fn issue(&self, key: Option<String>, id: &str, now: i64) -> String {
        let c = Cursor {
            t: self.tenant.clone(),
            q: self.query.clone(),
            key,
            id: id.to_owned(),
            at: now,
        };
        // a plain struct of strings and an integer always serialises
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&c).unwrap_or_default())
    }

    /// Reads a cursor a client sent back. The empty string asks for the first page.
    pub fn read(&self, text: &str, now: i64) -> Result<Option<Cursor>, ScimError> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(None);
        }
        let invalid = |why: &str| {
            ScimError::of(
                ErrorKind::InvalidCursor,
                format!("cursor is not valid for this request: {why}"),
            )
        };
        if text.len() > MAX_CURSOR_LEN {
            return Err(invalid("too long"));
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| invalid("not a cursor this service issued"))?;
        let c: Cursor = serde_json::from_slice(&bytes)
            .map_err(|_| invalid("not a cursor this service issued"))?;
        if c.t != self.tenant {
            return Err(invalid("issued to another tenant"));
        }
        if c.q != self.query {
            return Err(invalid("issued for another query"));
        }
        if now - c.at > CURSOR_TIMEOUT_SECS || c.at > now + 300 {
            return Err(ScimError::of(
                ErrorKind::ExpiredCursor,
                format!(
                    "cursor has expired (cursors are valid for {CURSOR_TIMEOUT_SECS} s); start again without one"
                ),
            ));
        }
        Ok(Some(c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(t: &str) -> TenantId {
        TenantId::parse(t).unwrap()
    }

    #[test]
    fn round_trip() {
        let scope = CursorScope::new(&tenant("acme"), &["Users", "userName sw \"a\""]);
        let text = scope.issue(Some("alice".into()), "id-7", 1_000);
        let c = scope.read(&text, 1_010).unwrap().unwrap();
        assert_eq!((c.key.as_deref(), c.id.as_str()), (Some("alice"), "id-7"));
        assert_eq!(scope.read("", 1_010).unwrap(), None);
    }

    #[test]
    fn refuses_other_tenants_queries_garbage_and_old_cursors() {
        let scope = CursorScope::new(&tenant("acme"), &["Users"]);
        let text = scope.issue(None, "id-7", 1_000);
        let other_tenant = CursorScope::new(&tenant("globex"), &["Users"]);
        let other_query = CursorScope::new(&tenant("acme"), &["Groups"]);
        for (s, t) in [
            (&other_tenant, text.as_str()),
            (&other_query, text.as_str()),
            (&scope, "not-a-cursor!"),
            (&scope, "eyJ4IjoxfQ"),
        ] {
            let e = s.read(t, 1_000).unwrap_err();
            assert_eq!((e.status, e.scim_type), (400, Some("invalidCursor")), "{t}");
        }
        let e = scope
            .read(&text, 1_000 + CURSOR_TIMEOUT_SECS + 1)
            .unwrap_err();
        assert_eq!(e.scim_type, Some("expiredCursor"));
        // a tampered position is still refused: the scope fields must match
        let forged = URL_SAFE_NO_PAD
            .encode(br#"{"t":"0000000000000000","q":"0000000000000000","id":"x","at":1000}"#);
        assert_eq!(
            scope.read(&forged, 1_000).unwrap_err().scim_type,
            Some("invalidCursor")
        );
    }
}
