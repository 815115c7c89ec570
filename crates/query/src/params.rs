//! Parameter binding. Athena runs a named query with `ExecutionParameters`, applied in
//! order to the `?` placeholders; our files write each placeholder as `? /* name */`,
//! so that the same text is both a valid Athena query and self-describing here. Values
//! are checked against the declared type and written as literals (strings quoted, quotes
//! doubled), never spliced in raw.

use std::collections::HashMap;

use crate::catalog::{ParamType, QueryFile};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BindError {
    #[error("missing parameter {name} ({kind}): {description}")]
    Missing {
        name: String,
        kind: &'static str,
        description: String,
    },
    #[error("parameter {name}: {value:?} is not a valid {kind} ({hint})")]
    Invalid {
        name: String,
        value: String,
        kind: &'static str,
        hint: &'static str,
    },
    #[error("query {query} has no parameter {name}; its parameters are: {known}")]
    Unknown {
        query: String,
        name: String,
        known: String,
    },
    #[error("query {query}: placeholder at byte {at} does not name a declared parameter")]
    Placeholder { query: String, at: usize },
}

fn literal(name: &str, kind: ParamType, value: &str) -> Result<String, BindError> {
    let invalid = |hint| BindError::Invalid {
        name: name.to_owned(),
        value: value.to_owned(),
        kind: kind.as_str(),
        hint,
    };
    let quoted = || format!("'{}'", value.replace('\'', "''"));
    match kind {
        ParamType::String => Ok(quoted()),
        ParamType::Integer => value
            .trim()
            .parse::<i64>()
            .map(|n| n.to_string())
            .map_err(|_| invalid("a whole number")),
        ParamType::Date => chrono_like_date(value)
            .then(quoted)
            .ok_or_else(|| invalid("YYYY-MM-DD")),
        ParamType::Timestamp => {
            let (date, time) = value.split_once(' ').unwrap_or((value, ""));
            let time_ok = time.is_empty() || time_of_day(time);
            if chrono_like_date(date) && time_ok {
                // a bare date means its midnight, as Athena reads it
                Ok(if time.is_empty() {
                    format!("'{date} 00:00:00'")
                } else {
                    quoted()
                })
            } else {
                Err(invalid("YYYY-MM-DD or YYYY-MM-DD HH:MM:SS, UTC"))
            }
        }
    }
}

fn digits(s: &str, n: usize) -> bool {
    s.len() == n && s.bytes().all(|b| b.is_ascii_digit())
}

fn chrono_like_date(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    matches!(parts.as_slice(), [y, m, d] if digits(y, 4) && digits(m, 2) && digits(d, 2)
        && (1..=12).contains(&m.parse::<u32>().unwrap_or(0))
        && (1..=31).contains(&d.parse::<u32>().unwrap_or(0)))
}

fn time_of_day(s: &str) -> bool {
    let (hms, frac) = s.split_once('.').unwrap_or((s, ""));
    let parts: Vec<&str> = hms.split(':').collect();
    matches!(parts.as_slice(), [h, m, sec] if digits(h, 2) && digits(m, 2) && digits(sec, 2)
        && h.parse::<u32>().unwrap_or(99) < 24 && m.parse::<u32>().unwrap_or(99) < 60
        && sec.parse::<u32>().unwrap_or(99) < 60)
        && (frac.is_empty() || (frac.len() <= 6 && frac.bytes().all(|b| b.is_ascii_digit())))
}

/// The query's SQL with every placeholder replaced by its value's literal.
pub fn bind(query: &QueryFile, values: &HashMap<String, String>) -> Result<String, BindError> {
    for name in values.keys() {
        if !query.params.iter().any(|p| &p.name == name) {
            return Err(BindError::Unknown {
                query: query.name.clone(),
                name: name.clone(),
                known: query
                    .params
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
    }
    let sql = &query.sql;
    let bytes = sql.as_bytes();
    let mut out = String::with_capacity(sql.len() + 64);
    let mut i = 0;
    let mut copied = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\'' => {
                // a string literal, '' escapes included
                i += 1;
                while i < bytes.len() {
                    if bytes[i] == b'\'' {
                        if bytes.get(i + 1) == Some(&b'\'') {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                i += 1;
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'?' => {
                let placeholder = || BindError::Placeholder {
                    query: query.name.clone(),
                    at: i,
                };
                let rest = &sql[i + 1..];
                let trimmed = rest.trim_start();
                let comment = trimmed.strip_prefix("/*").ok_or_else(placeholder)?;
                let end = comment.find("*/").ok_or_else(placeholder)?;
                let name = comment[..end].trim();
                let param = query
                    .params
                    .iter()
                    .find(|p| p.name == name)
                    .ok_or_else(placeholder)?;
                let value = values.get(name).ok_or_else(|| BindError::Missing {
                    name: name.to_owned(),
                    kind: param.kind.as_str(),
                    description: param.description.clone(),
                })?;
                out.push_str(&sql[copied..i]);
                out.push_str(&literal(name, param.kind, value)?);
                // keep the comment: the bound text still says what each value is
                let after = i + 1 + (rest.len() - trimmed.len()) + 2 + end + 2;
                out.push_str(" /* ");
                out.push_str(name);
                out.push_str(" */");
                copied = after;
                i = after;
            }
            _ => i += 1,
        }
    }
    out.push_str(&sql[copied..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::parse;

    fn q(sql: &str) -> QueryFile {
        parse(
            "t",
            &format!(
                "-- @question test query for binding\n-- @param tenant_id string: the tenant\n-- @param from timestamp: start\n-- @param n integer: count\n{sql}"
            ),
        )
        .unwrap()
    }

    fn values(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn binds_literals_and_leaves_strings_and_comments_alone() {
        let query = q(
            "SELECT '?' AS q -- what?\nFROM t WHERE tenant_id = ? /* tenant_id */ AND ts >= CAST(? /* from */ AS TIMESTAMP) AND n > ?/*n*/ AND again = ? /* tenant_id */",
        );
        let sql = bind(
            &query,
            &values(&[("tenant_id", "o'brien"), ("from", "2026-11-21"), ("n", "5")]),
        )
        .unwrap();
        assert!(sql.contains("SELECT '?' AS q -- what?"));
        assert!(sql.contains("tenant_id = 'o''brien' /* tenant_id */"));
        assert!(sql.contains("CAST('2026-11-21 00:00:00' /* from */ AS TIMESTAMP)"));
        assert!(sql.contains("n > 5 /* n */"));
        assert!(sql.ends_with("again = 'o''brien' /* tenant_id */"));
    }

    #[test]
    fn bad_values_get_clear_errors() {
        let query = q("SELECT ? /* tenant_id */, ? /* from */, ? /* n */");
        let ok = [
            ("tenant_id", "acme"),
            ("from", "2026-11-21 10:00:00"),
            ("n", "1"),
        ];
        assert!(bind(&query, &values(&ok)).is_ok());
        for (k, v) in [
            ("from", "yesterday"),
            ("from", "2026-13-01"),
            ("from", "2026-11-21 25:00:00"),
            ("n", "1; DROP"),
        ] {
            let mut vals = values(&ok);
            vals.insert(k.into(), v.into());
            assert!(
                matches!(bind(&query, &vals), Err(BindError::Invalid { .. })),
                "{k}={v}"
            );
        }
        let missing = bind(&query, &values(&ok[..2])).unwrap_err();
        assert!(
            missing
                .to_string()
                .contains("missing parameter n (integer): count")
        );
        let mut extra = values(&ok);
        extra.insert("tenant".into(), "x".into());
        assert!(matches!(
            bind(&query, &extra),
            Err(BindError::Unknown { .. })
        ));
        let unnamed = q("SELECT ?");
        assert!(matches!(
            bind(&unnamed, &values(&ok)),
            Err(BindError::Placeholder { .. })
        ));
    }
}
