//! How long each tenant's audit events are kept: a setting per tenant, 90 days to 10
//! years, in the same directory as its credentials. The log's one writer applies it (an
//! expiry leaf in the tenant's log before any row goes); the deployment's default holds
//! for a tenant without a setting.

use async_trait::async_trait;
use chrono::NaiveDate;
use envelope::TenantId;
use serde::{Deserialize, Serialize};

use crate::DirectoryError;

/// A tenant's retention, in whole days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct Retention(u32);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "a retention of {0} days: it must be from {min} days to 10 years ({max} days)",
    min = Retention::MIN_DAYS,
    max = Retention::MAX_DAYS
)]
pub struct RetentionError(pub u32);

impl Retention {
    pub const MIN_DAYS: u32 = 90;
    /// Ten years of 365.25 days.
    pub const MAX_DAYS: u32 = 3653;

    pub fn days(days: u32) -> Result<Self, RetentionError> {
        if (Self::MIN_DAYS..=Self::MAX_DAYS).contains(&days) {
            Ok(Self(days))
        } else {
            Err(RetentionError(days))
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }

    /// What the tenant's log names as the policy of an expiry (ISO 8601 duration).
    pub fn policy(self) -> String {
        format!("retention:P{}D", self.0)
    }

    /// The first day kept on `today`: compacted days before it go.
    pub fn first_kept(self, today: NaiveDate) -> NaiveDate {
        today - chrono::Days::new(u64::from(self.0))
    }
}

impl TryFrom<u32> for Retention {
    type Error = RetentionError;
    fn try_from(days: u32) -> Result<Self, Self::Error> {
        Self::days(days)
    }
}

impl From<Retention> for u32 {
    fn from(r: Retention) -> u32 {
        r.0
    }
}

#[async_trait]
pub trait RetentionSettings: Send + Sync {
    /// The tenant's own retention; None: the deployment's default applies.
    async fn retention(&self, tenant: &TenantId) -> Result<Option<Retention>, DirectoryError>;
    async fn put_retention(
        &self,
        tenant: &TenantId,
        retention: Retention,
    ) -> Result<(), DirectoryError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_ninety_days_to_ten_years_and_named_as_a_duration() {
        assert!(Retention::days(89).is_err());
        assert!(Retention::days(3654).is_err());
        let r = Retention::days(90).unwrap();
        assert_eq!(r.policy(), "retention:P90D");
        let today = NaiveDate::from_ymd_opt(2026, 12, 2).unwrap();
        assert_eq!(
            r.first_kept(today),
            NaiveDate::from_ymd_opt(2026, 9, 3).unwrap()
        );
        assert_eq!(Retention::days(3653).unwrap().get(), 3653);
        let e = Retention::days(30).unwrap_err().to_string();
        assert!(e.contains("30 days") && e.contains("90 days"), "{e}");
        // deserialising checks the bounds too
        assert!(serde_json::from_str::<Retention>("45").is_err());
        assert_eq!(serde_json::from_str::<Retention>("400").unwrap().get(), 400);
    }
}
