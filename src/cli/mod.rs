//! The `fulfillment` command line: one struct of flags per command (every
//! flag also reads an environment variable), and what each command does.

mod demo;
mod warehouses;

use std::io::{IsTerminal, Read};
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};

use crate::config::{Span, defaults};
use crate::domain::{OrderId, Role};
use crate::engine::ReplaySelection;
use crate::engine::{Engine, EngineError, credentials};
use crate::service::{Service, ServiceConfig, shutdown_signal};
use crate::storage::{Db, DbOptions, SqliteSync, from_micros, now_micros};
use crate::sync::peers::{Link, Peers};
use crate::sync::reconcile::{Progress, Reconciler};
use crate::sync::signature::Secrets;
use crate::telemetry::LogFormat;

#[derive(Debug, Parser)]
#[command(name = "fulfillment", version, about = "Keeps orders in sync, both ways, between a store and a warehouse.", long_about = None)]
pub struct Cli {
    /// Log output: human-readable text or one JSON object per line (stderr).
    #[arg(long, env = "FULFILLMENT_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a store and two warehouses (eu, us) together on SQLite files, with
    /// demo data.
    Demo(demo::DemoArgs),
    /// Run one service (store or warehouse) with its relay.
    Serve(ServeArgs),
    /// Apply pending database migrations (every command does this anyway).
    Migrate(DbArgs),
    /// Manage admin users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Inspect the outbox and replay dead letters.
    #[command(subcommand)]
    Outbox(OutboxCommand),
    /// Compare this side with the peer and repair what differs (anti-entropy).
    Reconcile(ReconcileArgs),
    /// Add, change and list the store's warehouses.
    #[command(subcommand)]
    Warehouse(warehouses::WarehouseCommand),
    /// Measure a store and warehouse pair (started as child processes) and
    /// report throughput, latency, memory, idle CPU and reconciliation time.
    Bench(crate::bench::BenchArgs),
}

#[derive(Debug, Args)]
pub struct ReconcileArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Base URL of the other service, e.g. http://127.0.0.1:8001.
    #[arg(long, env = "FULFILLMENT_PEER_URL")]
    pub peer_url: String,
    /// Shared secret that signs requests to the peer (as for `serve`).
    #[arg(long, env = "FULFILLMENT_SYNC_SECRET", hide_env_values = true)]
    pub sync_secret: String,
    /// The warehouse at --peer-url: the store compares the orders routed
    /// to it.
    #[arg(long, env = "FULFILLMENT_WAREHOUSE", default_value = "main")]
    pub warehouse: String,
}

#[derive(Debug, Args, Clone)]
pub struct DbArgs {
    /// Which service this database belongs to.
    #[arg(long, env = "FULFILLMENT_ROLE", value_enum)]
    pub role: Role,
    /// sqlite://PATH (the file is created) or postgres://USER:PASSWORD@HOST/DB.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: String,
    /// SQLite durability: `full` (default) survives power loss; `normal` is
    /// faster but may lose the last commits on power loss (never on a crash).
    #[arg(long, env = "FULFILLMENT_SQLITE_SYNCHRONOUS", value_enum, default_value_t = SqliteSync::Full)]
    pub sqlite_synchronous: SqliteSync,
    /// Database connections per pool.
    #[arg(long, env = "FULFILLMENT_DB_MAX_CONNECTIONS", default_value_t = defaults::DB_MAX_CONNECTIONS)]
    pub db_max_connections: u32,
}

impl DbArgs {
    fn options(&self) -> DbOptions {
        DbOptions {
            sqlite_synchronous: self.sqlite_synchronous,
            max_connections: self.db_max_connections,
        }
    }

    async fn open(&self) -> anyhow::Result<Db> {
        Ok(Db::open(&self.database_url, self.role, &self.options()).await?)
    }
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Address to listen on [default: 127.0.0.1:8000 for the store,
    /// 127.0.0.1:8001 for the warehouse].
    #[arg(long, env = "FULFILLMENT_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Base URL of the other service, e.g. http://127.0.0.1:8001. Required
    /// for a warehouse (its store). At a store it is the warehouse named
    /// `main`; a store can also work with warehouses added with
    /// `fulfillment warehouse add`, and without any.
    #[arg(long, env = "FULFILLMENT_PEER_URL")]
    pub peer_url: Option<String>,
    /// Shared secret that signs sync requests; the same on both services.
    /// Its UTF-8 bytes are the HMAC key.
    #[arg(long, env = "FULFILLMENT_SYNC_SECRET", hide_env_values = true)]
    pub sync_secret: String,
    /// Older secrets still accepted while a rotation is under way
    /// (comma-separated). Requests are always signed with --sync-secret.
    #[arg(
        long,
        env = "FULFILLMENT_SYNC_SECRET_PREVIOUS",
        hide_env_values = true,
        value_delimiter = ','
    )]
    pub sync_secret_previous: Vec<String>,
    /// How long a change keeps being retried before it becomes a dead letter
    /// (e.g. 72h, 30m, 90s).
    #[arg(long, env = "FULFILLMENT_RETRY_HORIZON", default_value_t = Span(defaults::RETRY_HORIZON))]
    pub retry_horizon: Span,
    /// How often the store reconciles with the warehouse (e.g. 10m; 0 turns
    /// it off). The warehouse only answers reconciliation.
    #[arg(long, env = "FULFILLMENT_RECONCILE_INTERVAL", default_value_t = Span(defaults::RECONCILE_INTERVAL))]
    pub reconcile_interval: Span,
    /// Most orders the relay sends in one request.
    #[arg(long, env = "FULFILLMENT_RELAY_BATCH_SIZE", default_value_t = defaults::RELAY_BATCH_SIZE, value_parser = clap::value_parser!(i64).range(1..=1000))]
    pub relay_batch_size: i64,
    /// How long the relay, woken by a change, waits for more before it
    /// sends less than a full batch (e.g. 20ms; 0 sends at once). Fewer,
    /// fuller requests and commits at a small cost in propagation latency;
    /// a full batch never waits.
    #[arg(long, env = "FULFILLMENT_RELAY_LINGER", default_value_t = Span(defaults::RELAY_LINGER), value_parser = parse_linger)]
    pub relay_linger: Span,
    /// How long a create (or a staff step at the warehouse) that arrives
    /// while no other is on its way to the database waits for company
    /// before it is written (e.g. 2ms; 0 writes at once). Commands that
    /// arrive together share a commit anyway; this lets ones that arrive a
    /// moment apart share one too, at everyday load, for about this much
    /// latency.
    #[arg(long, env = "FULFILLMENT_WRITE_LINGER", default_value_t = Span(defaults::WRITE_LINGER), value_parser = parse_linger)]
    pub write_linger: Span,
}

/// `--relay-linger`: a duration of at most a second (longer would only
/// delay every lone change).
fn parse_linger(s: &str) -> Result<Span, String> {
    let span: Span = s.parse()?;
    if span.0 > std::time::Duration::from_secs(1) {
        return Err(format!(
            "{s:?} is too long for a linger; give at most 1s (e.g. 20ms), or 0 not to wait"
        ));
    }
    Ok(span)
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an admin user; the password is read from standard input.
    Create {
        #[command(flatten)]
        db: DbArgs,
        #[arg(long, env = "FULFILLMENT_USERNAME")]
        username: String,
        /// Read the password from stdin (one trailing newline is ignored).
        /// Required: a password is never taken from the command line.
        #[arg(long, required = true, env = "FULFILLMENT_PASSWORD_STDIN")]
        password_stdin: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an API token and print it (only the token, on stdout).
    Create {
        #[command(flatten)]
        db: DbArgs,
        /// A name for the token, shown in the audit trail of what it changes.
        #[arg(long, env = "FULFILLMENT_TOKEN_NAME")]
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// Show pending and dead deliveries (at the store: in all, and per
    /// warehouse).
    Status {
        #[command(flatten)]
        db: DbArgs,
        /// The store only: the outbox to this warehouse alone.
        #[arg(long, env = "FULFILLMENT_WAREHOUSE")]
        warehouse: Option<String>,
    },
    /// Send dead letters again (moves them back to pending).
    Replay {
        #[command(flatten)]
        db: DbArgs,
        /// Replay the dead letters of these orders: repeat the flag
        /// (--id A --id B) or give a comma-separated list (--id A,B; also
        /// in the environment variable).
        #[arg(
            long = "id",
            value_name = "ORDER_ID",
            env = "FULFILLMENT_REPLAY_ID",
            value_delimiter = ',',
            conflicts_with_all = ["all", "since"]
        )]
        ids: Vec<String>,
        /// Replay every dead letter.
        #[arg(long, env = "FULFILLMENT_REPLAY_ALL", conflicts_with = "since")]
        all: bool,
        /// Replay dead letters first queued at or after this RFC 3339 time.
        #[arg(long, env = "FULFILLMENT_REPLAY_SINCE")]
        since: Option<String>,
        /// Only count what would be replayed.
        #[arg(long, env = "FULFILLMENT_REPLAY_DRY_RUN")]
        dry_run: bool,
        /// The store only: only the dead letters to this warehouse.
        #[arg(long, env = "FULFILLMENT_WAREHOUSE")]
        warehouse: Option<String>,
    },
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Demo(args) => demo::run(args).await,
        Command::Serve(args) => serve(args).await,
        Command::Migrate(db) => {
            db.open().await?;
            println!("{} database is up to date", db.role);
            Ok(())
        }
        Command::User(UserCommand::Create { db, username, .. }) => {
            let mut password = String::new();
            std::io::stdin()
                .read_to_string(&mut password)
                .context("cannot read the password from standard input")?;
            let password = password
                .strip_suffix('\n')
                .map(|p| p.strip_suffix('\r').unwrap_or(p))
                .unwrap_or(&password);
            let handle = db.open().await?;
            credentials::create_user(&handle, &username, password)
                .await
                .map_err(explain)?;
            eprintln!("created {} admin user {username:?}", db.role);
            Ok(())
        }
        Command::Token(TokenCommand::Create { db, name }) => {
            let handle = db.open().await?;
            let token = credentials::create_token(&handle, db.role, &name)
                .await
                .map_err(explain)?;
            println!("{token}");
            Ok(())
        }
        Command::Outbox(OutboxCommand::Status { db, warehouse }) => {
            outbox_status(db, warehouse).await
        }
        Command::Reconcile(args) => reconcile(args).await,
        Command::Warehouse(command) => warehouses::run(command).await,
        Command::Bench(args) => crate::bench::run(args).await,
        Command::Outbox(OutboxCommand::Replay {
            db,
            ids,
            all,
            since,
            dry_run,
            warehouse,
        }) => {
            // `--id A,,B` or a trailing comma leaves empty items: ignore them.
            let ids: Vec<&str> = ids
                .iter()
                .map(|i| i.trim())
                .filter(|i| !i.is_empty())
                .collect();
            let which = match (ids.is_empty(), all, since) {
                (false, false, None) => ReplaySelection::Ids(
                    ids.iter()
                        .map(|id| {
                            OrderId::parse(id).ok_or_else(|| {
                                anyhow::anyhow!("--id {id:?} is not an order id (a UUID)")
                            })
                        })
                        .collect::<anyhow::Result<_>>()?,
                ),
                (true, true, None) => ReplaySelection::All,
                (true, false, Some(t)) => ReplaySelection::Since(
                    chrono::DateTime::parse_from_rfc3339(&t)
                        .map_err(|_| {
                            anyhow::anyhow!(
                                "--since {t:?} is not an RFC 3339 time like 2026-11-25T10:00:00Z"
                            )
                        })?
                        .timestamp_micros(),
                ),
                _ => {
                    bail!(
                        "say which dead letters to replay: --id ORDER_ID (repeated or comma-separated), --all or --since TIME"
                    )
                }
            };
            let engine = Engine::new(db.open().await?, db.role);
            let to = warehouse_flag(&engine, warehouse).await?;
            let n = engine
                .replay_dead_letters_to(to, which, dry_run)
                .await
                .map_err(explain)?;
            if dry_run {
                println!("{n} dead letter(s) would be replayed");
            } else {
                println!(
                    "{n} dead letter(s) replayed; a running service's relay picks them up within seconds"
                );
            }
            Ok(())
        }
    }
}

/// Turns an engine error into a one-line message for the terminal.
fn explain(e: EngineError) -> anyhow::Error {
    match e {
        EngineError::Invalid(errors) => {
            anyhow::anyhow!(
                errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        }
        other => anyhow::anyhow!(other.to_string()),
    }
}

/// `--warehouse N` of the outbox commands, checked: the store only, and a
/// warehouse it has.
async fn warehouse_flag(engine: &Engine, name: Option<String>) -> anyhow::Result<Option<String>> {
    let Some(name) = name else {
        return Ok(None);
    };
    match engine.warehouse(&name).await {
        Ok(w) => Ok(Some(w.name.to_string())),
        Err(EngineError::UnknownWarehouse(_)) => bail!(
            "--warehouse: no warehouse is named {name:?}; `fulfillment warehouse list` shows them"
        ),
        Err(EngineError::WrongRole(e)) => bail!("--warehouse: {e}; leave it out here"),
        Err(e) => Err(explain(e)),
    }
}

async fn outbox_status(db: DbArgs, warehouse: Option<String>) -> anyhow::Result<()> {
    let engine = Engine::new(db.open().await?, db.role);
    let only = warehouse_flag(&engine, warehouse).await?;
    let s = match &only {
        Some(name) => engine.outbox_status_of(name).await?,
        None => engine.outbox_status().await?,
    };
    let now = now_micros();
    let age = |t: Option<i64>| {
        t.map_or("-".to_owned(), |t| {
            format!("{:.1} s", (now - t) as f64 / 1e6)
        })
    };
    let when = |t: Option<i64>| t.map_or("never".to_owned(), |t| from_micros(t).to_rfc3339());
    match &only {
        Some(name) => println!("{} → warehouse {name}", db.role),
        None => println!("{} → {}", db.role, db.role.peer()),
    }
    println!("  pending:        {}", s.pending);
    println!("  dead letters:   {}", s.dead);
    println!("  oldest pending: {}", age(s.oldest_pending_at));
    println!("  last delivered: {}", when(s.last_delivered_at));
    if only.is_none() && db.role.may(crate::domain::role::Command::ManageWarehouses) {
        let mut by = engine.outbox_status_by_peer().await?;
        let list = engine.warehouses().await?;
        if !list.is_empty() {
            println!("  by warehouse:");
        }
        for w in list {
            let o = by.remove(w.name.as_str()).unwrap_or_default();
            println!(
                "    {}: pending {}, dead {}, oldest pending {}, last delivered {}",
                w.name,
                o.pending,
                o.dead,
                age(o.oldest_pending_at),
                when(o.last_delivered_at)
            );
        }
    }
    println!("  (the circuit breaker lives in the running service: GET /api/v1/sync/status)");
    if s.dead > 0 {
        println!(
            "replay with: fulfillment outbox replay --role {} --database-url … --all{}",
            db.role,
            only.map(|w| format!(" --warehouse {w}"))
                .unwrap_or_default()
        );
    }
    Ok(())
}

async fn reconcile(args: ReconcileArgs) -> anyhow::Result<()> {
    let secrets = Secrets::new(&[args.sync_secret.as_str()]).ok_or_else(|| {
        anyhow::anyhow!(
            "a sync secret is required: set --sync-secret (FULFILLMENT_SYNC_SECRET) as for serve"
        )
    })?;
    let mut probe = ServiceConfig::new(
        args.db.role,
        args.db.database_url.clone(),
        args.peer_url.clone(),
        args.sync_secret,
    );
    probe.db = args.db.options();
    probe.validate()?;
    let db = args.db.open().await?;
    let engine = Engine::new(db, args.db.role);
    if args.db.role == Role::Store {
        // The store compares the orders routed to this warehouse: one it
        // does not have would compare none and call every order there an
        // orphan.
        warehouse_flag(&engine, Some(args.warehouse.clone())).await?;
    }
    let peers = Arc::new(Peers::new(
        defaults::BREAKER_THRESHOLD,
        defaults::BREAKER_OPEN_FOR,
    ));
    peers.set_link(
        &args.warehouse,
        Link {
            url: args.peer_url.clone(),
            secrets,
        },
    );
    let reconciler = Reconciler::new(engine, peers);
    let on_terminal = std::io::stderr().is_terminal();
    let bar = |p: Progress| {
        if on_terminal && p.total > 0 {
            let done = (p.settled.min(p.total) * 30 / p.total) as usize;
            eprint!(
                "\r[{}{}] {:>3}%  {} / {} orders",
                "#".repeat(done),
                ".".repeat(30 - done),
                p.settled.min(p.total) * 100 / p.total,
                p.settled.min(p.total),
                p.total
            );
        }
    };
    eprintln!("reconciling the {} with {} …", args.db.role, args.peer_url);
    let started = std::time::Instant::now();
    let result = reconciler.run(&bar).await;
    if on_terminal {
        eprintln!();
    }
    let report = result.map_err(|e| anyhow::anyhow!("reconciliation failed: {e}"))?;
    println!("{report}");
    println!(
        "took {:.2} s; repairs travel through the outbox (a running service's relay sends them within seconds)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let stop = shutdown_signal();
    let mut secrets = vec![args.sync_secret.clone()];
    secrets.extend(
        args.sync_secret_previous
            .iter()
            .filter(|s| !s.is_empty())
            .cloned(),
    );
    let peer_url = args.peer_url.clone().unwrap_or_default();
    let mut cfg = ServiceConfig::new(
        args.db.role,
        args.db.database_url.clone(),
        peer_url.clone(),
        String::new(),
    );
    cfg.sync_secrets = secrets;
    cfg.db = args.db.options();
    cfg.retry_horizon = args.retry_horizon.0;
    cfg.batch_size = args.relay_batch_size;
    cfg.relay_linger = args.relay_linger.0;
    cfg.write_linger = args.write_linger.0;
    cfg.reconcile_interval = Some(args.reconcile_interval.0).filter(|d| !d.is_zero());
    let listen = args.listen.unwrap_or_else(|| match args.db.role {
        Role::Store => SocketAddr::from(([127, 0, 0, 1], 8000)),
        Role::Warehouse => SocketAddr::from(([127, 0, 0, 1], 8001)),
    });
    let service = Service::bind(cfg, listen).await?;
    match peer_url.as_str() {
        "" => eprintln!(
            "{} listening on {} (warehouses as added with `fulfillment warehouse add`)",
            args.db.role,
            service.url()
        ),
        peer => eprintln!(
            "{} listening on {} (peer {peer})",
            args.db.role,
            service.url()
        ),
    }
    stop.await;
    eprintln!("shutting down: finishing in-flight requests and the current relay batch");
    service.stop().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn role_for_warehouse_is_parsed() {
        let cli = Cli::try_parse_from([
            "fulfillment",
            "serve",
            "--role",
            "warehouse",
            "--database-url",
            "sqlite://w.db",
            "--peer-url",
            "http://127.0.0.1:1",
            "--sync-secret",
            "s",
        ]);
        assert!(matches!(
            cli.map(|c| c.command),
            Ok(Command::Serve(ServeArgs {
                db: DbArgs {
                    role: Role::Warehouse,
                    ..
                },
                ..
            }))
        ));
    }
}
