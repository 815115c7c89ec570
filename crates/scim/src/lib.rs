//! The SCIM 2.0 domain (RFC 7643, RFC 7644): what the SCIM service understands,
//! independent of HTTP and storage.
//!
//! So far: the filter and PATCH path language (`filter`), parsed with positions in its
//! errors and bounded against hostile input, and evaluated with SCIM's case rules.
//! Resources, the PATCH engine, the IdP compatibility policy and the router follow.

pub mod filter;

pub use filter::{
    AttrPath, CaseExact, CompValue, CompareOp, CoreSchemas, Filter, FilterError, PatchPath,
};
