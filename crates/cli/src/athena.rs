//! `auditlog --stack S query NAME`: a compliance query of queries/ through the stack's
//! Athena workgroup, bound exactly as the local runner binds it (what `--show-sql`
//! prints is what Athena runs), with the views of queries/ddl created on first use.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use aws_sdk_athena::Client;
use aws_sdk_athena::types::{QueryExecutionContext, QueryExecutionState};

use crate::stack::{Stack, outputs};

fn athena_error<E: std::error::Error + 'static>(what: &str, e: E) -> anyhow::Error {
    anyhow::anyhow!("{what}: {}", aws_sdk_athena::error::DisplayErrorContext(e))
}

/// The views `sql` reads, in the order they must exist (`audit_events_all` is not read
/// by `audit_events`, so either order works; both are checked).
fn views_read(sql: &str) -> Vec<(&'static str, &'static str)> {
    let words: std::collections::HashSet<&str> = sql
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .collect();
    query::catalog::VIEW_FILES
        .iter()
        .filter(|(name, _)| words.contains(name))
        .copied()
        .collect()
}

/// Runs `sql` and waits for it, with progress on stderr; the execution's id.
async fn execute(athena: &Client, stack: &Stack, sql: &str, what: &str) -> Result<String> {
    let id = athena
        .start_query_execution()
        .query_string(sql.trim().trim_end_matches(';'))
        .work_group(stack.output(outputs::WORKGROUP)?)
        .query_execution_context(
            QueryExecutionContext::builder()
                .database(stack.output(outputs::DATABASE)?)
                .build(),
        )
        .send()
        .await
        .map_err(|e| athena_error(&format!("starting {what}"), e))?
        .query_execution_id()
        .context("Athena gave no query execution id")?
        .to_owned();
    let started = Instant::now();
    let mut wait = Duration::from_millis(200);
    loop {
        let out = athena
            .get_query_execution()
            .query_execution_id(&id)
            .send()
            .await
            .map_err(|e| athena_error(&format!("checking {what}"), e))?;
        let q = out
            .query_execution()
            .context("Athena described no execution")?;
        let status = q.status();
        let scanned = q
            .statistics()
            .and_then(|s| s.data_scanned_in_bytes())
            .unwrap_or(0);
        match status.and_then(|s| s.state()) {
            Some(QueryExecutionState::Succeeded) => {
                eprintln!(
                    "{what}: done in {:.1} s, {:.1} MB scanned (execution {id})",
                    started.elapsed().as_secs_f64(),
                    scanned as f64 / 1e6
                );
                return Ok(id);
            }
            Some(QueryExecutionState::Failed) | Some(QueryExecutionState::Cancelled) => {
                let reason = status
                    .and_then(|s| s.state_change_reason())
                    .unwrap_or("no reason given");
                bail!(
                    "{what} {} in Athena (execution {id}): {reason}",
                    status
                        .and_then(|s| s.state())
                        .map_or("failed", |s| s.as_str())
                );
            }
            state => {
                eprintln!(
                    "{what}: {} for {:.0} s, {:.1} MB scanned...",
                    state.map_or("starting", |s| s.as_str()),
                    started.elapsed().as_secs_f64(),
                    scanned as f64 / 1e6
                );
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Creates the views `sql` reads that the stack's catalog does not have yet.
async fn ensure_views(athena: &Client, stack: &Stack, sql: &str) -> Result<()> {
    let glue = aws_sdk_glue::Client::new(&stack.aws);
    let database = stack.output(outputs::DATABASE)?;
    for (view, ddl) in views_read(sql) {
        match glue
            .get_table()
            .database_name(database)
            .name(view)
            .send()
            .await
        {
            Ok(_) => {}
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_entity_not_found_exception()) =>
            {
                eprintln!(
                    "the view {view} is not in {database} yet: creating it (queries/ddl/{view}.sql)"
                );
                execute(athena, stack, ddl, &format!("CREATE VIEW {view}")).await?;
            }
            Err(e) => {
                return Err(anyhow::anyhow!(
                    "looking up the view {view} in {database}: {}",
                    aws_sdk_glue::error::DisplayErrorContext(&e)
                ));
            }
        }
    }
    Ok(())
}

/// The query's header and rows, as the local runner gives them (`NULL` for nulls).
pub async fn rows(stack: &Stack, sql: &str) -> Result<(Vec<String>, Vec<Vec<String>>)> {
    let athena = Client::new(&stack.aws);
    ensure_views(&athena, stack, sql).await?;
    let id = execute(&athena, stack, sql, "query").await?;
    let (mut header, mut rows) = (Vec::new(), Vec::new());
    let mut token: Option<String> = None;
    let mut first_page = true;
    loop {
        let page = athena
            .get_query_results()
            .query_execution_id(&id)
            .set_next_token(token.take())
            .max_results(1000)
            .send()
            .await
            .map_err(|e| athena_error("reading the results", e))?;
        let Some(set) = page.result_set() else { break };
        if first_page {
            header = set
                .result_set_metadata()
                .map(|m| {
                    m.column_info()
                        .iter()
                        .map(|c| c.name().to_owned())
                        .collect()
                })
                .unwrap_or_default();
        }
        let mut page_rows: Vec<Vec<String>> = set
            .rows()
            .iter()
            .map(|r| {
                r.data()
                    .iter()
                    .map(|d| d.var_char_value().unwrap_or("NULL").to_owned())
                    .collect()
            })
            .collect();
        // a SELECT's first row repeats the column names
        if first_page && !page_rows.is_empty() && page_rows[0] == header {
            page_rows.remove(0);
        }
        first_page = false;
        rows.extend(page_rows);
        match page.next_token() {
            Some(t) => token = Some(t.to_owned()),
            None => break,
        }
    }
    if header.is_empty()
        && let Some(r) = rows.first()
    {
        header = (1..=r.len()).map(|i| format!("_col{i}")).collect();
    }
    Ok((header, rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_needs_the_views_it_names_and_no_others() {
        let names = |sql: &str| -> Vec<&str> { views_read(sql).iter().map(|(n, _)| *n).collect() };
        assert_eq!(
            names("SELECT * FROM audit_events WHERE x"),
            ["audit_events"]
        );
        assert_eq!(names("FROM audit_events_all a"), ["audit_events_all"]);
        assert!(names("SELECT * FROM audit_records_all").is_empty());
        // every query of the catalogue reads a view, or a table directly
        for q in query::catalog().unwrap() {
            assert!(
                !names(&q.sql).is_empty() || q.sql.contains("audit_records"),
                "{}",
                q.name
            );
        }
    }
}
