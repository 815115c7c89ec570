//! PutEvents entry size, computed exactly as AWS documents it ("Calculating Amazon
//! EventBridge PutEvents event entry size"): 14 bytes if `Time` is set, plus the UTF-8
//! byte lengths of `Source`, `DetailType`, `Detail` and every `Resources` entry.

use serde::{Deserialize, Serialize};

/// One PutEvents request entry, as the publisher hands it to an `EventBus`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PutEventsEntry {
    pub source: String,
    pub detail_type: String,
    pub detail: String,
    #[serde(default)]
    pub resources: Vec<String>,
    /// RFC 3339; counted as 14 bytes when present, whatever its text length.
    #[serde(default)]
    pub time: Option<String>,
}

pub fn entry_size(entry: &PutEventsEntry) -> usize {
    let time = if entry.time.is_some() { 14 } else { 0 };
    time + entry.source.len()
        + entry.detail_type.len()
        + entry.detail.len()
        + entry.resources.iter().map(String::len).sum::<usize>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_the_documented_formula() {
        let mut e = PutEventsEntry {
            source: "my.app".into(),                          // 6
            detail_type: "scim.user.created".into(),          // 17
            detail: r#"{"k":"é"}"#.into(),                    // 10 bytes: é is two
            resources: vec!["arn:a".into(), "arn:bc".into()], // 5 + 6
            time: None,
        };
        assert_eq!(entry_size(&e), 6 + 17 + 10 + 11);
        e.time = Some("2026-11-21T10:00:00.000Z".into());
        assert_eq!(entry_size(&e), 6 + 17 + 10 + 11 + 14);
    }
}
