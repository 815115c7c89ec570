//! `auditlog query`: runs a compliance query of queries/ on the local data with
//! DataFusion, or with `--stack` through the stack's Athena workgroup: exactly the SQL
//! deployed as an Athena named query, printed the same way from either.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write as _;

use anyhow::{Context, Result, bail};
use query::{Engine, catalog, find, to_rows};

use crate::stack::Target;

#[derive(clap::Args, Debug)]
pub struct QueryArgs {
    /// The query's name (a file in queries/ without .sql); omit to list them.
    name: Option<String>,
    /// A parameter as NAME=VALUE; repeat for each one the query declares.
    #[arg(long = "param", short = 'p')]
    params: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Print the SQL with the parameters bound instead of running it.
    #[arg(long)]
    show_sql: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Table,
    Csv,
    Json,
}

/// Writes everything at once; a closed pipe (`| head`) is not an error.
fn emit(text: &str) -> Result<()> {
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

fn list() -> Result<()> {
    let mut out = String::new();
    for q in catalog().map_err(anyhow::Error::msg)? {
        writeln!(out, "{}\n  {}", q.name, q.question)?;
        for p in &q.params {
            writeln!(
                out,
                "  --param {}=<{}>  {}",
                p.name,
                p.kind.as_str(),
                p.description
            )?;
        }
        writeln!(out)?;
    }
    emit(&out)
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

pub async fn run(target: &Target<'_>, args: QueryArgs) -> Result<()> {
    let Some(name) = args.name else {
        return list();
    };
    let q = find(&name).map_err(anyhow::Error::msg)?;
    let mut values = HashMap::new();
    for p in &args.params {
        let (k, v) = p
            .split_once('=')
            .with_context(|| format!("--param {p:?}: expected NAME=VALUE"))?;
        if values.insert(k.trim().to_owned(), v.to_owned()).is_some() {
            bail!("--param {k} given twice");
        }
    }
    if args.show_sql {
        return emit(&format!("{}\n", query::bind(&q, &values)?));
    }
    let (header, rows) = match target {
        Target::Embedded { data, .. } => {
            let engine = Engine::open(&data.join("blobs")).await?;
            to_rows(&engine.run(&q, &values).await?)?
        }
        Target::Stack { stack, .. } => {
            crate::athena::rows(stack, &query::bind(&q, &values)?).await?
        }
    };
    let mut out = String::new();
    match args.format {
        Format::Csv => {
            writeln!(out, "{}", header.join(","))?;
            for r in &rows {
                writeln!(
                    out,
                    "{}",
                    r.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(",")
                )?;
            }
        }
        Format::Json => {
            for r in &rows {
                let obj: serde_json::Map<String, serde_json::Value> = header
                    .iter()
                    .zip(r)
                    .map(|(h, v)| {
                        let v = if v == "NULL" {
                            serde_json::Value::Null
                        } else {
                            serde_json::Value::String(v.clone())
                        };
                        (h.clone(), v)
                    })
                    .collect();
                writeln!(out, "{}", serde_json::Value::Object(obj))?;
            }
        }
        Format::Table => {
            let widths: Vec<usize> = header
                .iter()
                .enumerate()
                .map(|(i, h)| {
                    rows.iter()
                        .map(|r| r[i].chars().count())
                        .chain([h.len()])
                        .max()
                        .unwrap_or(0)
                        .min(60)
                })
                .collect();
            let line = |cells: &[String]| {
                cells
                    .iter()
                    .zip(&widths)
                    .map(|(c, w)| {
                        let c: String = c.chars().take(*w).collect();
                        format!("{c:<w$}")
                    })
                    .collect::<Vec<_>>()
                    .join("  ")
                    .trim_end()
                    .to_owned()
            };
            writeln!(out, "{}", line(&header))?;
            writeln!(
                out,
                "{}",
                line(&widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>())
            )?;
            for r in &rows {
                writeln!(out, "{}", line(r))?;
            }
            eprintln!("({} rows)", rows.len());
        }
    }
    emit(&out)
}
