//! Runs the compliance queries of `queries/` (Athena engine v3 SQL) locally with
//! DataFusion, over the same Parquet layout the pipeline writes: the file that is tested
//! is the file that is deployed as an Athena named query.
//!
//! - `catalog`: the queries, embedded at build time, with their question and parameters
//!   read from the header comments.
//! - `params`: binds values to the `?` placeholders the way Athena's execution
//!   parameters do (each `?` names its parameter in a trailing `/* name */` comment).
//! - `engine`: a DataFusion session with the Glue tables registered as Hive-partitioned
//!   listing tables (so `tenant_id` / `dt` predicates prune directories), the views of
//!   `queries/ddl`, and `json_extract_scalar` with Athena's meaning.
//!
//! DataFusion is heavy: only the CLI links this crate, never a Lambda function.

pub mod catalog;
pub mod engine;
mod json;
pub mod params;

pub use catalog::{Param, ParamType, QueryFile, catalog, find};
pub use engine::{Engine, QueryError, Table, to_rows};
pub use params::{BindError, bind};
