//! The SCIM 2.0 domain (RFC 7643, RFC 7644): what the SCIM service understands,
//! independent of HTTP and storage.
//!
//! So far: the filter and PATCH path language (`filter`), parsed with positions in its
//! errors and bounded against hostile input, and evaluated with SCIM's case rules.
//! And the PATCH engine (`patch`), which turns operations on a group's `members` into
//! membership changes instead of touching a member list. Resources, the IdP
//! compatibility policy, storage ports and the router follow.

pub mod filter;

pub use filter::{
    AttrPath, CaseExact, CompValue, CompareOp, CoreSchemas, Filter, FilterError, PatchPath,
};
pub mod patch;

pub use patch::{MemberChange, PatchError, PatchOperation, PatchRequest, Patched, ResourceKind};
