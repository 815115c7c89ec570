//! Reading the attribute maps DynamoDB stores. Every decoder of this crate reads through
//! `Item`, so a missing or malformed field is treated the same way everywhere: the item
//! is corrupt, and the error names the item and the field (never a silent default).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(crate) fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// A stored item that does not read as its kind: which item, which field, why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} item: {field} {why}")]
pub(crate) struct Corrupt {
    what: &'static str,
    field: String,
    why: String,
}

// Corruption is an outage of the store to its callers: nothing they sent is wrong, and
// retrying will not help until an operator mends the item the message names.
#[cfg(feature = "directory")]
impl From<Corrupt> for tenants::DirectoryError {
    fn from(e: Corrupt) -> Self {
        tenants::DirectoryError::Unavailable(e.to_string())
    }
}

#[cfg(feature = "leaf-index")]
impl From<Corrupt> for transparency::integrate::StoreError {
    fn from(e: Corrupt) -> Self {
        transparency::integrate::StoreError::Unavailable(e.to_string())
    }
}

#[cfg(feature = "scim")]
impl From<Corrupt> for scim::StoreError {
    fn from(e: Corrupt) -> Self {
        scim::StoreError::Unavailable(e.to_string())
    }
}

/// One stored item of a known kind (`what`), read field by field.
pub(crate) struct Item<'a> {
    what: &'static str,
    fields: &'a HashMap<String, AttributeValue>,
}

impl<'a> Item<'a> {
    pub(crate) fn new(what: &'static str, fields: &'a HashMap<String, AttributeValue>) -> Self {
        Self { what, fields }
    }

    /// The error for `field`, for checks the caller makes on a value it read.
    pub(crate) fn corrupt(&self, field: &str, why: impl Into<String>) -> Corrupt {
        Corrupt {
            what: self.what,
            field: field.to_owned(),
            why: why.into(),
        }
    }

    /// A string field every item of this kind has.
    pub(crate) fn text(&self, field: &str) -> Result<&'a str, Corrupt> {
        self.opt_text(field)
            .ok_or_else(|| self.corrupt(field, "is missing or not a string"))
    }

    /// A string field some items have.
    pub(crate) fn opt_text(&self, field: &str) -> Option<&'a str> {
        self.fields
            .get(field)
            .and_then(|v| v.as_s().ok())
            .map(String::as_str)
    }

    pub(crate) fn number(&self, field: &str) -> Result<i64, Corrupt> {
        self.opt_number(field)?
            .ok_or_else(|| self.corrupt(field, "is missing or not an integer"))
    }

    /// A number field some items have; present but not an integer is corrupt.
    pub(crate) fn opt_number(&self, field: &str) -> Result<Option<i64>, Corrupt> {
        match self.fields.get(field) {
            None => Ok(None),
            Some(v) => v
                .as_n()
                .ok()
                .and_then(|v| v.parse::<i64>().ok())
                .map(Some)
                .ok_or_else(|| self.corrupt(field, "is not an integer")),
        }
    }

    // times are the directory's; the leaf index keeps none
    #[cfg_attr(not(feature = "directory"), allow(dead_code))]
    /// Microseconds since the epoch, as every time in the tables is kept.
    pub(crate) fn time(&self, field: &str) -> Result<DateTime<Utc>, Corrupt> {
        self.micros(field, self.number(field)?)
    }

    #[cfg_attr(not(feature = "directory"), allow(dead_code))]
    pub(crate) fn opt_time(&self, field: &str) -> Result<Option<DateTime<Utc>>, Corrupt> {
        self.opt_number(field)?
            .map(|v| self.micros(field, v))
            .transpose()
    }

    #[cfg_attr(not(feature = "directory"), allow(dead_code))]
    fn micros(&self, field: &str, v: i64) -> Result<DateTime<Utc>, Corrupt> {
        DateTime::from_timestamp_micros(v).ok_or_else(|| self.corrupt(field, "is out of range"))
    }

    /// A JSON document kept as a string.
    #[cfg(feature = "scim")]
    pub(crate) fn json<T: serde::de::DeserializeOwned>(&self, field: &str) -> Result<T, Corrupt> {
        serde_json::from_str(self.text(field)?).map_err(|e| self.corrupt(field, e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optional_fields_may_be_absent_but_not_malformed() {
        let fields = HashMap::from([
            ("t".to_owned(), n(1_700_000_000_000_000)),
            ("bad".to_owned(), s("soon")),
        ]);
        let item = Item::new("credential", &fields);
        assert_eq!(item.opt_time("none").unwrap(), None);
        assert!(item.opt_time("t").unwrap().is_some());
        let e = item.opt_time("bad").unwrap_err();
        assert_eq!(e.to_string(), "credential item: bad is not an integer");
        assert!(
            item.time("none")
                .unwrap_err()
                .to_string()
                .contains("none is missing")
        );
        assert!(item.text("t").is_err(), "a number is not a string");
    }
}
