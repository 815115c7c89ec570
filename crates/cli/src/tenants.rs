//! `auditlog tokens` and `auditlog policy`: the tenant directory of the embedded store
//! (the bearer tokens `serve` authenticates against: the IdPs' SCIM tokens and the audit
//! API's tokens, in one directory) and the SCIM compatibility policies.

use std::path::Path;

use adapters_local::SqliteScimStore;
use anyhow::{Context, Result, bail};
use chrono::Utc;
use envelope::TenantId;
use scim::tenants::token_hash;
use scim::{CompatPolicy, Credential, PolicyStore, Scope, TenantDirectory};

#[derive(clap::Subcommand, Debug)]
pub enum TokensCommand {
    /// Issue a new bearer token (printed once; only its hash is kept): for an IdP's SCIM
    /// requests by default, or for the audit API with `--scope audit:read[,audit:export]`.
    Issue {
        #[arg(long)]
        tenant: String,
        /// Who holds the token: the IdP for a SCIM token (the actor of the events its
        /// requests cause), a label such as "splunk" for an audit API token.
        #[arg(long, default_value = "idp")]
        idp: String,
        /// What the token may do: scim, or audit:read and/or audit:export (comma-separated).
        #[arg(long, default_value = "scim")]
        scope: String,
        /// Days until the token stops working; default: no expiry.
        #[arg(long)]
        expires_days: Option<u32>,
    },
    /// Revoke a tenant's token (the token itself, or its SHA-256 as `tokens list` shows).
    Revoke {
        #[arg(long)]
        tenant: String,
        token: String,
    },
    /// List a tenant's tokens by hash.
    List {
        #[arg(long)]
        tenant: String,
    },
}

#[derive(clap::Subcommand, Debug)]
pub enum PolicyCommand {
    /// Print a tenant's compatibility policy (the defaults when none was set).
    Show {
        #[arg(long)]
        tenant: String,
    },
    /// Set a tenant's policy from JSON; fields left out keep their defaults, e.g.
    /// '{"unknown_members": "skip"}' or '{"string_booleans": false}'.
    Set {
        #[arg(long)]
        tenant: String,
        json: String,
    },
}

fn tenant(t: &str) -> Result<TenantId> {
    TenantId::parse(t).map_err(|e| anyhow::anyhow!("--tenant: {e}"))
}

fn store(data: &Path) -> Result<SqliteScimStore> {
    std::fs::create_dir_all(data).with_context(|| format!("creating {}", data.display()))?;
    Ok(SqliteScimStore::open(&data.join("scim.sqlite"))?)
}

pub async fn tokens(data: &Path, cmd: TokensCommand) -> Result<()> {
    let store = store(data)?;
    match cmd {
        TokensCommand::Issue {
            tenant: t,
            idp,
            scope,
            expires_days,
        } => {
            let scopes = Scope::parse_list(&scope).map_err(|e| anyhow::anyhow!("--scope: {e}"))?;
            if scopes.is_empty() {
                bail!("--scope: name at least one of scim, audit:read, audit:export");
            }
            if scopes.contains(&Scope::Scim) && scopes.len() > 1 {
                bail!("--scope: a SCIM token is for an IdP only; issue audit tokens apart");
            }
            let token = tenants::new_token(if scopes.contains(&Scope::Scim) {
                "scim"
            } else {
                "audit"
            });
            let now = Utc::now();
            let mut c = Credential::with_scopes(&token, tenant(&t)?, &idp, scopes, now);
            c.expires_at = expires_days.map(|d| now + chrono::Duration::days(i64::from(d)));
            store.put_credential(&c).await?;
            println!("{token}");
            eprintln!(
                "token for tenant {t} ({idp}, {}) stored as {}; it is not shown again",
                Scope::list(&c.scopes),
                c.token_hash
            );
        }
        TokensCommand::Revoke { tenant: t, token } => {
            let hash = if token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit()) {
                token.to_ascii_lowercase()
            } else {
                token_hash(&token)
            };
            if !store.revoke_credential(&tenant(&t)?, &hash).await? {
                bail!("tenant {t} has no token {hash}");
            }
            println!("revoked {hash}");
        }
        TokensCommand::List { tenant: t } => {
            for c in store.credentials(&tenant(&t)?).await? {
                let expires = c
                    .expires_at
                    .map_or_else(|| "never".to_owned(), |e| e.to_rfc3339());
                println!(
                    "{}  holder={}  scopes={}  created={}  expires={expires}",
                    c.token_hash,
                    c.idp,
                    Scope::list(&c.scopes),
                    c.created_at.to_rfc3339()
                );
            }
        }
    }
    Ok(())
}

pub async fn policy(data: &Path, cmd: PolicyCommand) -> Result<()> {
    let store = store(data)?;
    match cmd {
        PolicyCommand::Show { tenant: t } => {
            let p = store.policy(&tenant(&t)?).await?;
            println!("{}", serde_json::to_string_pretty(&p)?);
        }
        PolicyCommand::Set { tenant: t, json } => {
            let p: CompatPolicy =
                serde_json::from_str(&json).context("policy JSON (see `policy show`)")?;
            store.put_policy(&tenant(&t)?, &p).await?;
            println!("{}", serde_json::to_string_pretty(&p)?);
        }
    }
    Ok(())
}
