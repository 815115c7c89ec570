//! The start of every Lambda main in functions/: JSON logs for CloudWatch (the metric
//! filters in template.yaml read their fields) and configuration read from the
//! environment with errors that name the variable.

use anyhow::Context;

/// JSON log lines without timestamps (CloudWatch adds them) or targets.
pub fn init_logs() {
    tracing_subscriber::fmt()
        .json()
        .with_target(false)
        .without_time()
        .init();
}

/// A required variable.
pub fn var(name: &str) -> anyhow::Result<String> {
    std::env::var(name).with_context(|| format!("environment variable {name} is not set"))
}

/// An optional variable, parsed, or the default when unset.
pub fn var_or<T: std::str::FromStr>(name: &str, default: T) -> anyhow::Result<T> {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .map_err(|_| anyhow::anyhow!("{name}={v:?} is not valid")),
        Err(_) => Ok(default),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_variable() {
        let e = var("AUDITLOG_SURELY_UNSET_VARIABLE").unwrap_err();
        assert!(e.to_string().contains("AUDITLOG_SURELY_UNSET_VARIABLE"));
        assert_eq!(var_or("AUDITLOG_SURELY_UNSET_VARIABLE", 7u32).unwrap(), 7);
        // PATH is set in any test environment and is not a number
        let e = var_or::<u32>("PATH", 1).unwrap_err();
        assert!(e.to_string().starts_with("PATH="));
    }
}
