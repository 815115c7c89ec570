//! What a customer asks of their history: a time range and filters, parsed from the
//! query string with a clear error per bad parameter, and matched against records.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use auditlog::RecordRef;

/// Most rows one page returns.
pub const MAX_LIMIT: usize = 1000;
pub const DEFAULT_LIMIT: usize = 50;
/// Longest filter value accepted: filters name ids and words, not documents.
const MAX_VALUE_LEN: usize = 512;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("query parameter `{param}`: {reason}")]
pub struct QueryError {
    pub param: String,
    pub reason: String,
}

fn bad(param: &str, reason: impl Into<String>) -> QueryError {
    QueryError {
        param: param.to_owned(),
        reason: reason.into(),
    }
}

/// An exact value, or a prefix written `scim.group.*`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Match {
    Exact(String),
    Prefix(String),
}

impl Match {
    fn parse(param: &str, s: &str) -> Result<Self, QueryError> {
        let s = value(param, s)?;
        match s.strip_suffix('*') {
            Some(p) if p.contains('*') => Err(bad(param, "only a trailing `*` is allowed")),
            Some(p) => Ok(Match::Prefix(p.to_owned())),
            None if s.contains('*') => Err(bad(param, "only a trailing `*` is allowed")),
            None => Ok(Match::Exact(s.to_owned())),
        }
    }

    pub fn matches(&self, v: &str) -> bool {
        match self {
            Match::Exact(e) => v == e,
            Match::Prefix(p) => v.starts_with(p.as_str()),
        }
    }

    fn text(&self) -> String {
        match self {
            Match::Exact(e) => e.clone(),
            Match::Prefix(p) => format!("{p}*"),
        }
    }
}

/// The actor types of the envelope: `actor=user:u-1` names type and id, `actor=u-1`
/// the id alone.
const ACTOR_TYPES: [&str; 4] = ["idp", "user", "service", "system"];

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventQuery {
    /// occurred_at at or after.
    pub from: Option<DateTime<Utc>>,
    /// occurred_at before.
    pub to: Option<DateTime<Utc>>,
    pub actor_type: Option<String>,
    pub actor_id: Option<String>,
    pub action: Option<Match>,
    pub event_type: Option<Match>,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub outcome: Option<String>,
    /// Lowercased words, each of which must appear in the actor's or target's id or name.
    pub text: Vec<String>,
}

fn value<'a>(param: &str, s: &'a str) -> Result<&'a str, QueryError> {
    let s = s.trim();
    if s.is_empty() {
        return Err(bad(param, "is empty"));
    }
    if s.len() > MAX_VALUE_LEN {
        return Err(bad(param, format!("is over {MAX_VALUE_LEN} bytes")));
    }
    if s.chars().any(char::is_control) {
        return Err(bad(param, "contains control characters"));
    }
    Ok(s)
}

/// RFC 3339 (`2026-11-21T10:00:00Z`) or a day (`2026-11-21`, meaning its midnight UTC).
pub fn parse_time(param: &str, s: &str) -> Result<DateTime<Utc>, QueryError> {
    let s = value(param, s)?;
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d.and_time(chrono::NaiveTime::MIN).and_utc());
    }
    Err(bad(
        param,
        format!("{s:?} is not an RFC 3339 time (2026-11-21T10:00:00Z) or a day (2026-11-21)"),
    ))
}

impl EventQuery {
    /// The filters of a query string. `cursor`, `limit` and `format` are the caller's to
    /// read; any other unknown parameter is an error, so a typo never widens a search.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
        others: &[&str],
    ) -> Result<Self, QueryError> {
        let mut q = EventQuery::default();
        let mut seen = std::collections::HashSet::new();
        for (k, v) in pairs {
            if !seen.insert(k) {
                return Err(bad(k, "is given more than once"));
            }
            match k {
                "from" => q.from = Some(parse_time(k, v)?),
                "to" => q.to = Some(parse_time(k, v)?),
                "actor" => {
                    let v = value(k, v)?;
                    match v.split_once(':') {
                        Some((t, id)) if ACTOR_TYPES.contains(&t) => {
                            q.actor_type = Some(t.to_owned());
                            q.actor_id = Some(value(k, id)?.to_owned());
                        }
                        _ => q.actor_id = Some(v.to_owned()),
                    }
                }
                "action" => q.action = Some(Match::parse(k, v)?),
                "event_type" => q.event_type = Some(Match::parse(k, v)?),
                "target" => {
                    let v = value(k, v)?;
                    let (t, id) = v
                        .split_once(':')
                        .ok_or_else(|| bad(k, "takes type:id, e.g. user:u-123"))?;
                    q.target_type = Some(value(k, t)?.to_owned());
                    q.target_id = Some(value(k, id)?.to_owned());
                }
                "outcome" => q.outcome = Some(value(k, v)?.to_owned()),
                "q" => {
                    q.text = value(k, v)?
                        .split_whitespace()
                        .map(str::to_lowercase)
                        .collect();
                }
                _ if others.contains(&k) => {}
                _ => return Err(bad(k, "is not a parameter of this endpoint")),
            }
        }
        if let (Some(f), Some(t)) = (q.from, q.to)
            && f >= t
        {
            return Err(bad("from", "must be before `to`"));
        }
        Ok(q)
    }

    pub fn has_filters(&self) -> bool {
        self != &EventQuery::default()
    }

    pub fn in_range(&self, at: DateTime<Utc>) -> bool {
        self.from.is_none_or(|f| at >= f) && self.to.is_none_or(|t| at < t)
    }

    pub fn matches<'a>(&self, r: impl Into<RecordRef<'a>>) -> bool {
        let r = r.into();
        let eq = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        let eq_opt = |want: &Option<String>, have: Option<&str>| {
            want.as_deref().is_none_or(|w| have == Some(w))
        };
        self.in_range(r.occurred_at)
            && eq(&self.actor_type, r.actor_type)
            && eq(&self.actor_id, r.actor_id)
            && self.action.as_ref().is_none_or(|m| m.matches(r.action))
            && self
                .event_type
                .as_ref()
                .is_none_or(|m| m.matches(r.event_type))
            && eq_opt(&self.target_type, r.target_type)
            && eq_opt(&self.target_id, r.target_id)
            && eq(&self.outcome, r.outcome)
            && self.text_matches(&r)
    }

    fn text_matches(&self, r: &RecordRef<'_>) -> bool {
        if self.text.is_empty() {
            return true;
        }
        let fields = [Some(r.actor_id), r.actor_name, r.target_id, r.target_name];
        let hay: Vec<String> = fields.iter().flatten().map(|f| f.to_lowercase()).collect();
        self.text
            .iter()
            .all(|w| hay.iter().any(|h| h.contains(w.as_str())))
    }

    /// The query as its parameters, for the audit event a search publishes and for a
    /// `Link` header.
    pub fn to_pairs(&self) -> Vec<(&'static str, String)> {
        let time = |t: &DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
        let mut out = Vec::new();
        if let Some(f) = &self.from {
            out.push(("from", time(f)));
        }
        if let Some(t) = &self.to {
            out.push(("to", time(t)));
        }
        if let Some(id) = &self.actor_id {
            out.push((
                "actor",
                match &self.actor_type {
                    Some(t) => format!("{t}:{id}"),
                    None => id.clone(),
                },
            ));
        }
        if let Some(m) = &self.action {
            out.push(("action", m.text()));
        }
        if let Some(m) = &self.event_type {
            out.push(("event_type", m.text()));
        }
        if let (Some(t), Some(id)) = (&self.target_type, &self.target_id) {
            out.push(("target", format!("{t}:{id}")));
        }
        if let Some(o) = &self.outcome {
            out.push(("outcome", o.clone()));
        }
        if !self.text.is_empty() {
            out.push(("q", self.text.join(" ")));
        }
        out
    }

    /// A short digest of the query, which a cursor carries so it cannot continue
    /// another query.
    pub fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        // a struct of strings and times always serialises
        h.update(serde_json::to_vec(self).unwrap_or_default());
        hex::encode(&h.finalize()[..12])
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<EventQuery, QueryError> {
        EventQuery::from_pairs(pairs.iter().copied(), &["limit", "cursor"])
    }

    #[test]
    fn parses_every_filter() {
        let q = parse(&[
            ("from", "2026-11-01"),
            ("to", "2026-11-21T10:00:00Z"),
            ("actor", "user:u-1"),
            ("action", "member_*"),
            ("event_type", "scim.group.*"),
            ("target", "user:u:9"),
            ("outcome", "failure"),
            ("q", "Ada  LOVELACE"),
            ("limit", "10"),
        ])
        .unwrap();
        assert_eq!(
            (q.actor_type.as_deref(), q.actor_id.as_deref()),
            (Some("user"), Some("u-1"))
        );
        assert_eq!(q.event_type, Some(Match::Prefix("scim.group.".into())));
        assert_eq!(
            (q.target_type.as_deref(), q.target_id.as_deref()),
            (Some("user"), Some("u:9"))
        );
        assert_eq!(q.text, vec!["ada", "lovelace"]);
        // an id with a colon that is not an actor type stays an id
        let q = parse(&[("actor", "okta:abc")]).unwrap();
        assert_eq!(
            (q.actor_type, q.actor_id.as_deref()),
            (None, Some("okta:abc"))
        );
        // the pairs parse back to the same query
        let again: Vec<(&str, String)> =
            parse(&[("from", "2026-11-01"), ("actor", "idp:okta"), ("q", "x y")])
                .unwrap()
                .to_pairs();
        let back = parse(
            &again
                .iter()
                .map(|(k, v)| (*k, v.as_str()))
                .collect::<Vec<_>>(),
        )
        .unwrap();
        assert_eq!(back.to_pairs(), again);
    }

    #[test]
    fn bad_parameters_name_themselves() {
        for (pairs, param) in [
            (vec![("from", "yesterday")], "from"),
            (vec![("from", "2026-11-02"), ("to", "2026-11-01")], "from"),
            (vec![("target", "u-1")], "target"),
            (vec![("action", "a*b*")], "action"),
            (vec![("event_type", "*.created")], "event_type"),
            (vec![("actor", "")], "actor"),
            (vec![("tenant", "other")], "tenant"),
            (vec![("outcome", "a"), ("outcome", "b")], "outcome"),
            (vec![("q", "a\u{7}")], "q"),
        ] {
            let e = parse(&pairs).unwrap_err();
            assert_eq!(e.param, param, "{pairs:?}: {e}");
        }
        let long = "x".repeat(MAX_VALUE_LEN + 1);
        assert_eq!(parse(&[("q", &long)]).unwrap_err().param, "q");
    }

    #[test]
    fn fingerprints_differ_by_query() {
        let a = parse(&[("actor", "u-1")]).unwrap();
        let b = parse(&[("actor", "u-2")]).unwrap();
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert_eq!(
            a.fingerprint(),
            parse(&[("actor", "u-1")]).unwrap().fingerprint()
        );
    }
}
