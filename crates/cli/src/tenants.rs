//! `auditlog tokens` and `auditlog policy`: the tenant directory (the bearer tokens the
//! SCIM and audit APIs authenticate against: the IdPs' SCIM tokens and the audit API's
//! tokens, in one directory) and the SCIM compatibility policies, on the embedded store
//! or in a deployed stack's SCIM table, with the same records either way.

use std::path::Path;

use adapters_local::SqliteScimStore;
use anyhow::{Context, Result, bail};
use chrono::Utc;
use envelope::TenantId;
use scim::tenants::token_hash;
use scim::{CompatPolicy, Credential, PolicyStore, Scope, TenantDirectory};

use crate::stack::{Target, outputs};

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
    /// Mint a viewer token for a signed-in user, as the SaaS backend does (HS256 JWT
    /// with the viewer secret in DATA/viewer-token.secret), for trying the viewer.
    Viewer {
        #[arg(long)]
        tenant: String,
        /// The viewing user's id (the actor of the views they cause).
        #[arg(long)]
        user: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long, default_value = "audit:read,audit:export")]
        scope: String,
        /// Seconds the token is valid for exchange (at most 300).
        #[arg(long, default_value_t = 300)]
        lifetime: i64,
    },
}

/// A secret kept in a file of the data directory, made on first use (readable by the
/// owner only): the audit API's sealing key, the viewer-token secret.
pub(crate) fn secret_file(data: &Path, name: &str) -> Result<Vec<u8>> {
    let path = data.join(name);
    if let Ok(s) = std::fs::read(&path) {
        if s.len() >= 32 {
            return Ok(s);
        }
        bail!(
            "{} holds under 32 bytes; delete it to make a new one",
            path.display()
        );
    }
    std::fs::create_dir_all(data).with_context(|| format!("creating {}", data.display()))?;
    let secret = history::SealKey::generate();
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    use std::io::Write;
    opts.open(&path)
        .and_then(|mut f| f.write_all(&secret))
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(secret)
}

pub(crate) const SEAL_KEY_FILE: &str = "audit-api.key";
pub(crate) const VIEWER_SECRET_FILE: &str = "viewer-token.secret";

/// The actor of what the CLI does: the operator at this machine.
fn operator() -> envelope::Actor {
    envelope::Actor {
        kind: envelope::ActorType::Service,
        id: "auditlog-cli".into(),
        name: std::env::var("USER").ok().filter(|u| !u.is_empty()),
    }
}

fn token_event(c: &Credential, event_type: &str, action: &str) -> envelope::OutgoingEvent {
    let kind = if c.allows(Scope::Scim) {
        "scim_token"
    } else {
        "audit_token"
    };
    let mut payload = serde_json::json!({
        "action": action,
        "target": {"type": kind, "id": &c.token_hash[..16], "name": c.idp},
        "scopes": c.scopes,
    });
    if action == "created" {
        payload["expires_at"] = serde_json::json!(c.expires_at.map(|e| e.to_rfc3339()));
    }
    audit_api::trail::audit_event(
        &c.tenant,
        &operator(),
        event_type,
        payload,
        Utc::now(),
        (None, None),
    )
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

/// The tenant directory and the policies: one store on either target.
pub(crate) trait OperatorStore: TenantDirectory + PolicyStore {}
impl<T: TenantDirectory + PolicyStore> OperatorStore for T {}

fn store(target: &Target<'_>) -> Result<Box<dyn OperatorStore>> {
    Ok(match target {
        Target::Embedded { data, .. } => {
            std::fs::create_dir_all(data)
                .with_context(|| format!("creating {}", data.display()))?;
            Box::new(SqliteScimStore::open(&data.join("scim.sqlite"))?)
        }
        Target::Stack { stack, .. } => Box::new(stack.scim_store()?),
    })
}

/// Records the CLI's own audit event: into the local log before returning, or onto the
/// stack's bus (schema-checked, as every producer's), whence the audit rule takes it.
async fn record(target: &Target<'_>, event: envelope::OutgoingEvent) -> Result<()> {
    match target {
        Target::Embedded { data, schemas } => {
            crate::trail::LocalTrail::open(data, *schemas)?
                .record(event)
                .await
        }
        Target::Stack { stack, schemas } => {
            let bus = adapters_aws::EventBridgeBus::new(
                aws_sdk_eventbridge::Client::new(&stack.aws),
                stack.output(outputs::EVENT_BUS)?,
            );
            let publisher = envelope::Publisher::new(
                bus,
                crate::pipeline::registry(*schemas)?,
                envelope::PublisherConfig::default(),
            );
            let text = event.to_entry().detail;
            audit_api::AuditTrail::record(&publisher, event)
                .await
                .map_err(|e| anyhow::anyhow!("publishing {text}: {e}"))
        }
    }
}

pub async fn tokens(target: &Target<'_>, cmd: TokensCommand) -> Result<()> {
    let store = store(target)?;
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
            if c.allows(Scope::Scim) {
                eprintln!("{}", crate::idp::guide(&idp, &target.scim_url()?, &token));
            }
            record(
                target,
                token_event(&c, audit_api::trail::TOKEN_CREATED, "created"),
            )
            .await
            .context("the token works, but its audit event is not in the log")?;
        }
        TokensCommand::Revoke { tenant: t, token } => {
            let hash = if token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit()) {
                token.to_ascii_lowercase()
            } else {
                token_hash(&token)
            };
            let tenant = tenant(&t)?;
            let Some(c) = store
                .credential(&hash)
                .await?
                .filter(|c| c.tenant == tenant)
            else {
                bail!("tenant {t} has no token {hash}");
            };
            if !store.revoke_credential(&tenant, &hash).await? {
                bail!("tenant {t} has no token {hash}");
            }
            println!("revoked {hash}");
            record(
                target,
                token_event(&c, audit_api::trail::TOKEN_REVOKED, "revoked"),
            )
            .await
            .context("the token is revoked, but its audit event is not in the log")?;
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
        TokensCommand::Viewer {
            tenant: t,
            user,
            name,
            scope,
            lifetime,
        } => {
            let Target::Embedded { data, .. } = target else {
                return Err(crate::stack::only_embedded(
                    "tokens viewer",
                    "the SaaS backend mints viewer tokens with the secret in the stack's ViewerTokenSecretArn (README, \"Embed the viewer\")",
                ));
            };
            let tenant = tenant(&t)?;
            let scopes = Scope::parse_list(&scope).map_err(|e| anyhow::anyhow!("--scope: {e}"))?;
            if !(1..=audit_api::auth::VIEWER_TOKEN_MAX_SECS).contains(&lifetime) {
                bail!(
                    "--lifetime: 1 to {} seconds",
                    audit_api::auth::VIEWER_TOKEN_MAX_SECS
                );
            }
            let now = Utc::now().timestamp();
            let token = audit_api::mint_viewer_token(
                &secret_file(data, VIEWER_SECRET_FILE)?,
                &audit_api::ViewerClaims {
                    tid: tenant.as_str().to_owned(),
                    sub: user,
                    name,
                    scope: scopes
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(" "),
                    aud: audit_api::auth::VIEWER_AUDIENCE.to_owned(),
                    iat: now,
                    exp: now + lifetime,
                    jti: uuid::Uuid::new_v4().to_string(),
                },
            )
            .map_err(|e| anyhow::anyhow!("minting: {e}"))?;
            println!("{token}");
        }
    }
    Ok(())
}

pub async fn policy(target: &Target<'_>, cmd: PolicyCommand) -> Result<()> {
    let store = store(target)?;
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
