//! The workspace integration tests as one test binary (`autotests = false`, as ripgrep
//! does): the AWS SDKs are linked once instead of once per file, and the tests share
//! one moto_server. Each module is one former test file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod audit_api;
mod audit_lambda;
mod conformance;
mod glue_catalog;
mod idp_replay;
mod kms_signer;
mod operator_cli;
mod packages;
mod pipeline_aws;
mod redrive_aws;
mod scim_api;
mod scim_bulk;
mod scim_lambda;
mod scim_outbox;
mod scim_paging;
mod scim_store_limits;
mod scim_suite;
mod template;
mod viewer_browser;
