//! The integrator's marker of one ingest file (`trust/_integrated/<ingest key>`): that
//! the file's events are in their tenants' logs, and at which leaf index each one is.
//! The compactor reads it to write each row's `leaf_index`, so that it needs no access
//! to the leaf index store and the index in a row is the one the integrator assigned.
//!
//! Text, one line per row of the file: `<tenant> <event id> <index>` after a first line
//! `auditlog-leaf-marker v1`. Tenant and event ids hold no spaces (their grammar). An
//! empty marker (written before indices were recorded) says "integrated" and gives no
//! index.

use std::collections::HashMap;

use envelope::{EventId, TenantId};

const HEADER: &str = "auditlog-leaf-marker v1";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("leaf marker {key}, line {line}: {reason}")]
pub struct MarkerError {
    pub key: String,
    pub line: usize,
    pub reason: String,
}

/// The leaf index of each (tenant, event id) of one ingest file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeafMarker {
    indexes: HashMap<(TenantId, EventId), u64>,
}

impl LeafMarker {
    pub fn insert(&mut self, tenant: TenantId, event: EventId, index: u64) {
        self.indexes.insert((tenant, event), index);
    }

    pub fn get(&self, tenant: &TenantId, event: &EventId) -> Option<u64> {
        // a lookup by borrowed pair would need a custom key type; rows are few per file
        self.indexes.get(&(tenant.clone(), event.clone())).copied()
    }

    pub fn len(&self) -> usize {
        self.indexes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.indexes.is_empty()
    }

    /// The marker's bytes, lines sorted so that the same file always gets the same marker.
    pub fn encode(&self) -> Vec<u8> {
        let mut lines: Vec<(&TenantId, &EventId, u64)> =
            self.indexes.iter().map(|((t, e), i)| (t, e, *i)).collect();
        lines.sort_unstable();
        let mut out = String::with_capacity(HEADER.len() + 1 + lines.len() * 64);
        out.push_str(HEADER);
        out.push('\n');
        for (t, e, i) in lines {
            out.push_str(&format!("{t} {e} {i}\n"));
        }
        out.into_bytes()
    }

    pub fn parse(key: &str, bytes: &[u8]) -> Result<Self, MarkerError> {
        let err = |line: usize, reason: String| MarkerError {
            key: key.to_owned(),
            line,
            reason,
        };
        let mut marker = LeafMarker::default();
        if bytes.is_empty() {
            return Ok(marker);
        }
        let text = std::str::from_utf8(bytes).map_err(|e| err(1, e.to_string()))?;
        let mut lines = text.lines();
        if lines.next() != Some(HEADER) {
            return Err(err(1, format!("expected `{HEADER}`")));
        }
        for (n, line) in lines.enumerate() {
            let n = n + 2;
            let mut fields = line.split(' ');
            let (Some(t), Some(e), Some(i), None) =
                (fields.next(), fields.next(), fields.next(), fields.next())
            else {
                return Err(err(n, "expected `<tenant> <event id> <index>`".into()));
            };
            let t = TenantId::parse(t).map_err(|e| err(n, e.to_string()))?;
            let e = EventId::parse(e).map_err(|e| err(n, e.to_string()))?;
            let i: u64 = i.parse().map_err(|_| err(n, format!("bad index {i:?}")))?;
            marker.insert(t, e, i);
        }
        Ok(marker)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> TenantId {
        TenantId::parse(s).unwrap()
    }
    fn e(s: &str) -> EventId {
        EventId::parse(s).unwrap()
    }

    #[test]
    fn round_trips_and_is_the_same_whatever_the_insertion_order() {
        let mut a = LeafMarker::default();
        a.insert(t("acme"), e("0192f4a0-7b3c-7d4e-8f00-000000000002"), 7);
        a.insert(t("acme"), e("0192f4a0-7b3c-7d4e-8f00-000000000001"), 3);
        a.insert(t("globex"), e("0192f4a0-7b3c-7d4e-8f00-000000000001"), 0);
        let mut b = LeafMarker::default();
        b.insert(t("globex"), e("0192f4a0-7b3c-7d4e-8f00-000000000001"), 0);
        b.insert(t("acme"), e("0192f4a0-7b3c-7d4e-8f00-000000000001"), 3);
        b.insert(t("acme"), e("0192f4a0-7b3c-7d4e-8f00-000000000002"), 7);
        assert_eq!(a.encode(), b.encode());
        let back = LeafMarker::parse("k", &a.encode()).unwrap();
        assert_eq!(back, a);
        assert_eq!(
            back.get(&t("acme"), &e("0192f4a0-7b3c-7d4e-8f00-000000000001")),
            Some(3)
        );
        // the same event id of another tenant is another event
        assert_eq!(
            back.get(&t("globex"), &e("0192f4a0-7b3c-7d4e-8f00-000000000001")),
            Some(0)
        );
        assert_eq!(
            back.get(&t("globex"), &e("0192f4a0-7b3c-7d4e-8f00-000000000002")),
            None
        );
    }

    #[test]
    fn an_empty_marker_says_integrated_and_gives_no_index() {
        let m = LeafMarker::parse("k", b"").unwrap();
        assert!(m.is_empty());
    }

    #[test]
    fn damage_is_an_error_that_names_the_line() {
        for (bytes, line) in [
            (&b"something else\n"[..], 1),
            (b"auditlog-leaf-marker v1\nacme 0192f4a0-7b3c-7d4e-8f00-000000000001\n", 2),
            (b"auditlog-leaf-marker v1\nacme 0192f4a0-7b3c-7d4e-8f00-000000000001 1\nacme 0192f4a0-7b3c-7d4e-8f00-000000000002 -4\n", 3),
            (b"auditlog-leaf-marker v1\nacme 0192f4a0-7b3c-7d4e-8f00-000000000001 1 extra\n", 2),
            (b"auditlog-leaf-marker v1\nacme 0192f4a0-7b3c-7d4e-8f00-000000000001 x\n", 2),
            (b"\xff\xfe", 1),
        ] {
            let err = LeafMarker::parse("trust/_integrated/x", bytes).unwrap_err();
            assert_eq!(err.line, line, "{err}");
            assert!(err.to_string().contains("trust/_integrated/x"));
        }
    }
}
