//! The range of `occurred_at` the log accepts. An event outside it would be stored in a
//! `dt=` partition that some reader never looks at (Athena's partition projection only
//! generates days inside its range; the scheduled compactor folds closed days only), so
//! it is quarantined instead, with its own reason. The Glue tables' projection range is
//! derived from the same window (`projection_range`) and a test keeps template.yaml and
//! the DDL in step with it.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};

/// Accepted: `earliest` (a UTC day, inclusive) up to `now + future_skew`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AcceptedWindow {
    /// The first accepted day. Wide by default so a customer can backfill decades of
    /// history; a later start only narrows what Athena has to enumerate.
    pub earliest: NaiveDate,
    /// How far ahead of our clock a producer's clock may be. At most a day, because
    /// the projection range ends at `NOW+1DAYS`.
    pub future_skew: Duration,
}

/// Default first accepted day, also the start of the Glue projection range.
pub const DEFAULT_EARLIEST: NaiveDate = match NaiveDate::from_ymd_opt(2000, 1, 1) {
    Some(d) => d,
    None => NaiveDate::MIN,
};

/// Longest skew the projection range (`NOW+1DAYS`) covers.
pub const MAX_FUTURE_SKEW: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    #[error("future skew {0:?} is more than the projection's one day")]
    SkewTooLarge(Duration),
    #[error("earliest day {0} is not a YYYY-MM-DD date after 1970-01-01")]
    BadEarliest(String),
}

impl Default for AcceptedWindow {
    fn default() -> Self {
        Self {
            earliest: DEFAULT_EARLIEST,
            future_skew: Duration::from_secs(15 * 60),
        }
    }
}

impl AcceptedWindow {
    pub fn new(earliest: NaiveDate, future_skew: Duration) -> Result<Self, WindowError> {
        if future_skew > MAX_FUTURE_SKEW {
            return Err(WindowError::SkewTooLarge(future_skew));
        }
        if earliest < NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or(NaiveDate::MIN) {
            return Err(WindowError::BadEarliest(earliest.to_string()));
        }
        Ok(Self {
            earliest,
            future_skew,
        })
    }

    /// Parses the `YYYY-MM-DD` of a setting (an environment variable, a flag).
    pub fn parse_earliest(text: &str) -> Result<NaiveDate, WindowError> {
        NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
            .map_err(|_| WindowError::BadEarliest(text.to_owned()))
    }

    /// Why `occurred_at` is outside the window at `now`, or `None` when inside.
    pub fn check(&self, occurred_at: DateTime<Utc>, now: DateTime<Utc>) -> Option<String> {
        if occurred_at.date_naive() < self.earliest {
            return Some(format!(
                "occurred_at {occurred_at} is before the first accepted day {}",
                self.earliest
            ));
        }
        let latest = now + chrono::Duration::from_std(self.future_skew).unwrap_or_default();
        if occurred_at > latest {
            return Some(format!(
                "occurred_at {occurred_at} is more than {}s ahead of the log's clock ({now})",
                self.future_skew.as_secs()
            ));
        }
        None
    }

    /// The Glue `projection.dt.range` that shows every accepted day.
    pub fn projection_range(&self) -> String {
        format!("{},NOW+1DAYS", self.earliest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn inside_and_outside() {
        let w = AcceptedWindow::default();
        let now = Utc.with_ymd_and_hms(2026, 11, 21, 12, 0, 0).unwrap();
        assert_eq!(w.check(now, now), None);
        assert_eq!(
            w.check(Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).unwrap(), now),
            None,
            "the first day is inside"
        );
        assert!(
            w.check(Utc.with_ymd_and_hms(1999, 12, 31, 23, 59, 59).unwrap(), now)
                .unwrap()
                .contains("before the first accepted day 2000-01-01")
        );
        assert!(
            w.check(Utc.with_ymd_and_hms(1970, 1, 1, 0, 0, 0).unwrap(), now)
                .is_some()
        );
        assert_eq!(w.check(now + chrono::Duration::minutes(15), now), None);
        assert!(
            w.check(now + chrono::Duration::minutes(16), now)
                .unwrap()
                .contains("ahead of the log's clock")
        );
        assert!(
            w.check(Utc.with_ymd_and_hms(2099, 1, 1, 0, 0, 0).unwrap(), now)
                .is_some()
        );
    }

    #[test]
    fn settings_are_checked() {
        let d = AcceptedWindow::parse_earliest("2015-06-01").unwrap();
        assert!(AcceptedWindow::new(d, Duration::from_secs(60)).is_ok());
        assert!(AcceptedWindow::new(d, Duration::from_secs(2 * 86_400)).is_err());
        assert!(AcceptedWindow::parse_earliest("June 2015").is_err());
        assert_eq!(
            AcceptedWindow::new(d, Duration::from_secs(60))
                .unwrap()
                .projection_range(),
            "2015-06-01,NOW+1DAYS"
        );
    }
}
