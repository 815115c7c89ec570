//! The compliance queries, embedded from `queries/*.sql`. Each file starts with header
//! comments: `-- @question <text>` (may continue on following `--` lines) and one
//! `-- @param <name> <type>: <description>` per parameter.

/// A parameter's type: how a value is checked and written as a literal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    /// Any text, written as a quoted SQL string.
    String,
    /// `YYYY-MM-DD[ HH:MM:SS[.ffffff]]` (UTC), written as a quoted string that the SQL
    /// casts with `CAST(? AS TIMESTAMP)`.
    Timestamp,
    /// `YYYY-MM-DD`, written as a quoted string (the `dt` partition values).
    Date,
    /// A whole number, written as is.
    Integer,
}

impl ParamType {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "string" => Some(Self::String),
            "timestamp" => Some(Self::Timestamp),
            "date" => Some(Self::Date),
            "integer" => Some(Self::Integer),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Timestamp => "timestamp",
            Self::Date => "date",
            Self::Integer => "integer",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    pub name: String,
    pub kind: ParamType,
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryFile {
    pub name: String,
    pub question: String,
    pub params: Vec<Param>,
    pub sql: String,
}

macro_rules! queries {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../../../queries/", $name, ".sql")))),*]
    };
}

/// Every query file in `queries/` (a test checks that none is missing here).
pub const QUERY_FILES: &[(&str, &str)] = queries![
    "who_did_what",
    "user_history",
    "group_membership_changes",
    "group_members_as_of",
    "deprovisioning_timeliness",
    "activity_after_deactivation",
    "privileged_actions",
    "failed_actions",
    "event_volume",
    "duplicates_and_conflicts",
];

/// The DDL the local engine runs: the views (the tables are registered in code).
pub const VIEW_FILES: &[(&str, &str)] = &[
    (
        "audit_events",
        include_str!("../../../queries/ddl/audit_events.sql"),
    ),
    (
        "audit_events_all",
        include_str!("../../../queries/ddl/audit_events_all.sql"),
    ),
];

/// The Athena table DDL, for the test that keeps it in step with the Parquet schema.
pub const TABLE_FILES: &[(&str, &str)] = &[
    (
        "audit_records",
        include_str!("../../../queries/ddl/audit_records.sql"),
    ),
    (
        "audit_records_all",
        include_str!("../../../queries/ddl/audit_records_all.sql"),
    ),
    (
        "audit_ingest",
        include_str!("../../../queries/ddl/audit_ingest.sql"),
    ),
];

/// Reads a query file's header. A malformed header is a bug in this repository, and
/// the catalog test catches it; here it is reported as text.
pub fn parse(name: &str, text: &str) -> Result<QueryFile, String> {
    let mut question: Vec<String> = Vec::new();
    let mut params = Vec::new();
    let mut in_question = false;
    for line in text.lines() {
        let Some(comment) = line.trim().strip_prefix("--") else {
            break;
        };
        let comment = comment.trim();
        if let Some(q) = comment.strip_prefix("@question") {
            question.push(q.trim().to_owned());
            in_question = true;
        } else if let Some(p) = comment.strip_prefix("@param") {
            in_question = false;
            let (head, description) = p
                .split_once(':')
                .ok_or_else(|| format!("{name}: @param needs `name type: description`: {line}"))?;
            let mut words = head.split_whitespace();
            let (Some(pname), Some(ptype), None) = (words.next(), words.next(), words.next())
            else {
                return Err(format!(
                    "{name}: @param needs `name type: description`: {line}"
                ));
            };
            let kind = ParamType::parse(ptype)
                .ok_or_else(|| format!("{name}: unknown parameter type {ptype:?}"))?;
            params.push(Param {
                name: pname.to_owned(),
                kind,
                description: description.trim().to_owned(),
            });
        } else if in_question && !comment.is_empty() && !comment.starts_with('@') {
            question.push(comment.to_owned());
        } else {
            in_question = false;
        }
    }
    if question.is_empty() {
        return Err(format!("{name}: no -- @question header"));
    }
    Ok(QueryFile {
        name: name.to_owned(),
        question: question.join(" "),
        params,
        sql: text.to_owned(),
    })
}

/// Every query, parsed.
pub fn catalog() -> Result<Vec<QueryFile>, String> {
    QUERY_FILES.iter().map(|(n, t)| parse(n, t)).collect()
}

/// One query by name.
pub fn find(name: &str) -> Result<QueryFile, String> {
    let (n, t) = QUERY_FILES
        .iter()
        .find(|(n, _)| *n == name)
        .ok_or_else(|| {
            let names: Vec<&str> = QUERY_FILES.iter().map(|(n, _)| *n).collect();
            format!("no query {name:?}; the queries are: {}", names.join(", "))
        })?;
    parse(n, t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_in_queries_is_in_the_catalog_with_a_question() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../queries");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| {
                let p = e.unwrap().path();
                (p.extension()? == "sql")
                    .then(|| p.file_stem().unwrap().to_string_lossy().into_owned())
            })
            .collect();
        on_disk.sort();
        let mut listed: Vec<String> = QUERY_FILES.iter().map(|(n, _)| (*n).to_owned()).collect();
        listed.sort();
        assert_eq!(on_disk, listed);
        for q in catalog().unwrap() {
            assert!(q.question.len() > 20, "{}: {}", q.name, q.question);
        }
    }

    #[test]
    fn headers_parse() {
        let q = parse(
            "x",
            "-- @question Who did it\n-- and when?\n-- @param tenant_id string: the tenant\n-- @param n integer: how many\nSELECT 1",
        )
        .unwrap();
        assert_eq!(q.question, "Who did it and when?");
        assert_eq!(q.params.len(), 2);
        assert_eq!(q.params[1].kind, ParamType::Integer);
        assert!(parse("y", "SELECT 1").is_err());
        assert!(parse("z", "-- @question q\n-- @param a blob: no").is_err());
        assert!(find("nope").unwrap_err().contains("who_did_what"));
    }
}
