//! `auditlog tokens` and `auditlog policy`: the SCIM credentials and compatibility
//! policies of the embedded store (what `serve` authenticates against).

use std::path::Path;

use adapters_local::SqliteScimStore;
use anyhow::{Context, Result, bail};
use chrono::Utc;
use envelope::TenantId;
use scim::tenants::{new_token, token_hash};
use scim::{CompatPolicy, Credential, TenantDirectory};

#[derive(clap::Subcommand, Debug)]
pub enum TokensCommand {
    /// Issue a new bearer token for a tenant's IdP (printed once; only its hash is kept).
    Issue {
        #[arg(long)]
        tenant: String,
        /// The IdP the token is for: the actor of the events its requests cause.
        #[arg(long, default_value = "idp")]
        idp: String,
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
            expires_days,
        } => {
            let token = new_token();
            let now = Utc::now();
            let mut c = Credential::new(&token, tenant(&t)?, &idp, now);
            c.expires_at = expires_days.map(|d| now + chrono::Duration::days(i64::from(d)));
            store.put_credential(&c).await?;
            println!("{token}");
            eprintln!(
                "token for tenant {t} (IdP {idp}) stored as {}; it is not shown again",
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
                    "{}  idp={}  created={}  expires={expires}",
                    c.token_hash,
                    c.idp,
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
