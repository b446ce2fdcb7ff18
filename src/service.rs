//! Wiring one role into a running service: database, engine, HTTP server and
//! relay, with graceful shutdown. Tests start services through this exactly
//! as the binary does, on port 0.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::domain::Role;
use crate::engine::Engine;
use crate::http::{self, AppState};
use crate::storage::prune::{Retention, prune};
use crate::storage::{Db, DbOptions};
use crate::sync::breaker::Breaker;
use crate::sync::reconcile::Reconciler;
use crate::sync::relay::{self, Relay, RelayConfig};
use crate::sync::signature::Secrets;

/// Everything one service needs to run.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    pub role: Role,
    pub database_url: String,
    pub db: DbOptions,
    /// Base URL of the other service.
    pub peer_url: String,
    /// The first signs; all are accepted (secret rotation).
    pub sync_secrets: Vec<String>,
    pub retry_horizon: Duration,
    pub batch_size: i64,
    /// Failures in a row that open the circuit breaker.
    pub breaker_threshold: u32,
    /// How long the breaker stays open before a probe.
    pub breaker_open_for: Duration,
    /// How often the store reconciles with the warehouse (`None`: never).
    pub reconcile_interval: Option<Duration>,
    /// Longest the relay sleeps when nothing wakes it (commits do).
    pub idle_poll: Duration,
    /// How long the relay reserves the rows of a round (its requests end
    /// before), and how long one request to the peer may take.
    pub relay_lease: Duration,
    pub request_timeout: Duration,
    /// How long old records are kept, and how often they are pruned.
    pub retention: Retention,
    pub prune_every: Duration,
}

impl ServiceConfig {
    pub fn new(
        role: Role,
        database_url: impl Into<String>,
        peer_url: impl Into<String>,
        secret: impl Into<String>,
    ) -> Self {
        Self {
            role,
            database_url: database_url.into(),
            db: DbOptions::default(),
            peer_url: peer_url.into(),
            sync_secrets: vec![secret.into()],
            retry_horizon: Duration::from_secs(72 * 3600),
            batch_size: 256,
            breaker_threshold: 5,
            breaker_open_for: Duration::from_secs(5),
            reconcile_interval: Some(Duration::from_secs(600)),
            idle_poll: Duration::from_secs(5),
            relay_lease: relay::LEASE,
            request_timeout: relay::REQUEST_TIMEOUT,
            retention: Retention::default(),
            prune_every: Duration::from_secs(300),
        }
    }

    /// Checks what can be checked before opening anything.
    pub fn validate(&self) -> anyhow::Result<Secrets> {
        let url = reqwest::Url::parse(&self.peer_url)
            .map_err(|e| anyhow::anyhow!("--peer-url {:?} is not a URL ({e}); give the other service's base URL, e.g. http://127.0.0.1:8001", self.peer_url))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            anyhow::bail!(
                "--peer-url must be an http:// or https:// URL with a host, e.g. http://127.0.0.1:8001"
            );
        }
        if self.sync_secrets.first().is_none_or(|s| s.is_empty()) {
            anyhow::bail!(
                "a sync secret is required: set --sync-secret (FULFILLMENT_SYNC_SECRET) to the same value on both services"
            );
        }
        Secrets::new(&self.sync_secrets)
            .ok_or_else(|| anyhow::anyhow!("a sync secret is required: set --sync-secret (FULFILLMENT_SYNC_SECRET) to the same value on both services"))
    }
}

/// A running service. Dropping it does not stop it; call [`Service::stop`].
pub struct Service {
    addr: SocketAddr,
    engine: Engine,
    breaker: Arc<Breaker>,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<()>,
    relay: JoinHandle<()>,
    periodic: Option<JoinHandle<()>>,
    pruner: JoinHandle<()>,
    reconciler: Arc<Reconciler>,
}

impl Service {
    /// Opens (and migrates) the database, then serves on `listener` and
    /// starts the relay.
    pub async fn start(cfg: ServiceConfig, listener: TcpListener) -> anyhow::Result<Service> {
        let secrets = cfg.validate()?;
        let db = Db::open(&cfg.database_url, cfg.role, &cfg.db).await?;
        let engine = Engine::new(db, cfg.role);
        let breaker = Arc::new(Breaker::new(cfg.breaker_threshold, cfg.breaker_open_for));
        let mut relay_cfg = RelayConfig::new(cfg.peer_url.clone(), secrets.clone());
        relay_cfg.retry_horizon = cfg.retry_horizon;
        relay_cfg.batch_size = cfg.batch_size;
        relay_cfg.idle_poll = cfg.idle_poll;
        relay_cfg.lease = cfg.relay_lease;
        relay_cfg.request_timeout = cfg.request_timeout;
        let relay = Relay::new(engine.clone(), relay_cfg, breaker.clone())?;
        let reconciler = Arc::new(Reconciler::new(
            engine.clone(),
            &cfg.peer_url,
            secrets.clone(),
        )?);

        let (shutdown, rx) = watch::channel(false);
        let addr = listener.local_addr()?;
        let app = http::router(AppState {
            engine: engine.clone(),
            secrets,
            breaker: breaker.clone(),
            reconciler: reconciler.clone(),
        });
        let server = tokio::spawn(serve(listener, app, rx.clone(), cfg.role));
        let periodic = match (cfg.role, cfg.reconcile_interval) {
            (Role::Store, Some(every)) => Some(tokio::spawn(reconcile_every(
                reconciler.clone(),
                every,
                rx.clone(),
            ))),
            _ => None,
        };
        let pruner = tokio::spawn(prune_every(
            engine.db().clone(),
            cfg.retention.clone(),
            cfg.prune_every,
            rx.clone(),
        ));
        let relay = tokio::spawn(relay.run(rx));
        tracing::info!(role = %cfg.role, %addr, "service listening");
        Ok(Service {
            addr,
            engine,
            breaker,
            shutdown,
            server,
            relay,
            periodic,
            pruner,
            reconciler,
        })
    }

    /// Binds `listen` and starts.
    pub async fn bind(cfg: ServiceConfig, listen: SocketAddr) -> anyhow::Result<Service> {
        let listener = TcpListener::bind(listen).await.map_err(|e| {
            anyhow::anyhow!("cannot listen on {listen}: {e}; is another process using it?")
        })?;
        Self::start(cfg, listener).await
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn breaker(&self) -> &Breaker {
        &self.breaker
    }

    /// Stops accepting, finishes in-flight requests and the relay's current
    /// batch, then closes the database.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        let _ = self.server.await;
        let _ = self.relay.await;
        if let Some(p) = self.periodic {
            let _ = p.await;
        }
        let _ = self.pruner.await;
        self.reconciler.stop();
        self.engine.db().close().await;
        tracing::info!(role = %self.engine.role(), "service stopped");
    }
}

/// Longest a client may take to send a request's headers. (The whole
/// request is bounded separately, see `http::REQUEST_TIMEOUT`.) Also closes
/// idle keep-alive connections after this long.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a stopping service waits for in-flight requests.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves HTTP/1.1 until `stop`, then lets in-flight requests finish.
///
/// Not `axum::serve`: it sets no timer, so hyper's header-read timeout never
/// fires and a client that sends its headers one byte a second (or never
/// finishes them) would hold a connection forever.
async fn serve(
    listener: TcpListener,
    app: axum::Router,
    mut stop: watch::Receiver<bool>,
    role: Role,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::server::graceful::GracefulShutdown;
    use hyper_util::service::TowerToHyperService;
    use tower::ServiceExt;

    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let graceful = GracefulShutdown::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, client) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors, say: back off a little.
                        tracing::warn!(%role, error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                // Every request knows the address it came from (the admin
                // sign-in counts failures per address).
                let service = TowerToHyperService::new(app.clone().map_request(
                    move |mut req: hyper::Request<hyper::body::Incoming>| {
                        req.extensions_mut().insert(axum::extract::ConnectInfo(client));
                        req
                    },
                ));
                let conn = http.serve_connection(TokioIo::new(stream), service);
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
            // The guard `wait_for` returns is not Send: drop it inside.
            () = async { let _ = stop.wait_for(|s| *s).await; } => break,
        }
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(%role, "some requests were still running after 30 s; stopping anyway");
    }
}

/// Prunes old records every `every`, starting shortly after start-up.
async fn prune_every(
    db: Db,
    retention: Retention,
    every: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut wait = Duration::from_secs(10).min(every);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
        wait = every;
        match prune(&db, &retention).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(rows = n, "pruned old records"),
            Err(e) => tracing::warn!(error = %e, "pruning failed; will retry"),
        }
    }
}

/// Reconciles every `every` (the first pass one interval after start).
async fn reconcile_every(
    reconciler: Arc<Reconciler>,
    every: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
        // Errors are recorded with the run and logged; the next pass retries.
        let _ = reconciler.run(&|_| {}).await;
    }
}

/// A future that resolves on Ctrl-C or SIGTERM. The handlers are registered
/// when this is called, not when it is first awaited, so call it early: a
/// signal that arrives during start-up is not lost (nor does it kill the
/// process with work half done).
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        async move {
            match (term, int) {
                (Ok(mut term), Ok(mut int)) => {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = int.recv() => {}
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
