//! `admin keys …` and `admin webhook-secret rotate`: the catalog, straight against Redis. For
//! bootstrap (the first admin key of an installation without `LEADSTREAM_BOOTSTRAP_ADMIN_KEY`)
//! and rotation. A new secret is printed once, on stdout, and nowhere else.

use anyhow::{bail, Context as _};
use clap::{Args, Subcommand, ValueEnum};
use leadstream_shared::catalog::{Catalog, NewApiKey, Scope};
use leadstream_shared::config::{duration, Env};
use leadstream_shared::{DEFAULT_ORG, DEFAULT_OU};

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Create a key; its secret is printed once.
    Create(CreateArgs),
    /// List an organisation's keys (never their secrets).
    List(OrgArg),
    /// Revoke a key by id (the gateway stops accepting it within LEADSTREAM_KEY_CACHE_TTL).
    Revoke(RevokeArgs),
}

#[derive(Subcommand, Debug)]
pub enum SecretCommand {
    /// Make a new signing secret for an OU (printed once); the old one keeps signing beside it
    /// for LEADSTREAM_WEBHOOK_SECRET_GRACE (default 24h).
    Rotate(RotateArgs),
}

#[derive(Args, Debug)]
pub struct OrgArg {
    /// The organisation.
    #[arg(long, default_value = DEFAULT_ORG)]
    org: String,
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    /// A name to recognise the key by.
    #[arg(long)]
    name: String,
    /// Scopes (repeat or comma-separate): ingest, read, admin.
    #[arg(long = "scope", value_enum, value_delimiter = ',', required = true)]
    scopes: Vec<ScopeArg>,
    /// Bind the key to these OUs (repeat or comma-separate); none: every OU of the organisation.
    #[arg(long = "ou", value_delimiter = ',')]
    ou_ids: Vec<String>,
    /// Bind the key to a source (seed 001 source keys).
    #[arg(long)]
    source: Option<String>,
    #[command(flatten)]
    org: OrgArg,
}

#[derive(Args, Debug)]
pub struct RevokeArgs {
    /// The key id (`key_…`), as `keys list` shows it.
    id: String,
    #[command(flatten)]
    org: OrgArg,
}

#[derive(Args, Debug)]
pub struct RotateArgs {
    /// The OU whose secret is rotated.
    #[arg(long, default_value = DEFAULT_OU)]
    ou: String,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum ScopeArg {
    Ingest,
    Read,
    Admin,
}

impl From<ScopeArg> for Scope {
    fn from(s: ScopeArg) -> Scope {
        match s {
            ScopeArg::Ingest => Scope::Ingest,
            ScopeArg::Read => Scope::Read,
            ScopeArg::Admin => Scope::Admin,
        }
    }
}

async fn catalog() -> anyhow::Result<Catalog> {
    let cfg = super::common_without_kafka()?;
    let store = super::redis(&cfg).await?;
    let cat = Catalog::new(store, cfg.keys());
    // The default organisation and OU, as every service makes sure of at start.
    cat.bootstrap(None).await.context("cannot reach Redis")?;
    Ok(cat)
}

/// Fail unless `ou` exists and belongs to `org`.
async fn check_ou(cat: &Catalog, org: &str, ou: &str) -> anyhow::Result<()> {
    match cat.org_unit(ou).await? {
        Some(u) if u.org_id == org => Ok(()),
        Some(_) => bail!("OU {ou:?} belongs to another organisation than {org:?}"),
        None => bail!("no OU {ou:?} (list them with GET /org-units)"),
    }
}

pub async fn run(cmd: KeysCommand) -> anyhow::Result<()> {
    match cmd {
        KeysCommand::Create(a) => {
            let name = a.name.trim();
            if name.is_empty() || name.len() > 200 {
                bail!("--name must be 1 to 200 characters");
            }
            let cat = catalog().await?;
            for ou in &a.ou_ids {
                check_ou(&cat, &a.org.org, ou).await?;
            }
            let mut scopes: Vec<Scope> = a.scopes.into_iter().map(Scope::from).collect();
            scopes.dedup();
            let req = NewApiKey {
                name: name.to_string(),
                scopes,
                ou_ids: a.ou_ids,
                source_id: a.source.filter(|s| !s.trim().is_empty()),
            };
            let (key, secret) = cat.create_api_key(&a.org.org, req).await?;
            println!("id\t{}", key.id);
            println!("scopes\t{}", scope_list(&key.scopes));
            println!("key\t{secret}");
            eprintln!("the key is shown once: store it now");
            Ok(())
        }
        KeysCommand::List(a) => {
            let cat = catalog().await?;
            println!("id\tname\tscopes\tou_ids\tsource\tprefix\tcreated_at");
            for k in cat.list_api_keys(&a.org).await? {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}…\t{}",
                    k.id,
                    k.name,
                    scope_list(&k.scopes),
                    if k.ou_ids.is_empty() {
                        "*".to_string()
                    } else {
                        k.ou_ids.join(",")
                    },
                    k.source_id.as_deref().unwrap_or("-"),
                    k.secret_prefix,
                    k.created_at
                );
            }
            Ok(())
        }
        KeysCommand::Revoke(a) => {
            let cat = catalog().await?;
            if !cat.delete_api_key(&a.org.org, &a.id).await? {
                bail!("no key {:?} in organisation {:?}", a.id, a.org.org);
            }
            println!("revoked\t{}", a.id);
            Ok(())
        }
    }
}

pub async fn secret(cmd: SecretCommand) -> anyhow::Result<()> {
    let SecretCommand::Rotate(a) = cmd;
    let grace = duration(
        &Env,
        "LEADSTREAM_WEBHOOK_SECRET_GRACE",
        std::time::Duration::from_secs(24 * 3600),
    )?;
    let cat = catalog().await?;
    if cat.org_unit(&a.ou).await?.is_none() {
        bail!("no OU {:?} (list them with GET /org-units)", a.ou);
    }
    let grace_ms = i64::try_from(grace.as_millis()).unwrap_or(i64::MAX);
    let fresh = cat.rotate_webhook_secret(&a.ou, grace_ms).await?;
    println!("ou\t{}", a.ou);
    println!("secret\t{fresh}");
    eprintln!(
        "the previous secret keeps signing for {grace:?} (LEADSTREAM_WEBHOOK_SECRET_GRACE); \
         update receivers before then"
    );
    Ok(())
}

fn scope_list(s: &[Scope]) -> String {
    s.iter()
        .map(|s| match s {
            Scope::Ingest => "ingest",
            Scope::Read => "read",
            Scope::Admin => "admin",
        })
        .collect::<Vec<_>>()
        .join(",")
}
