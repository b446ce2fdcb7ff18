//! Wiring one role into a running service: database, engine, HTTP server and
//! relay, with graceful shutdown. Tests start services through this exactly
//! as the binary does, on port 0.

pub use crate::config::ServiceConfig;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::domain::Role;
use crate::domain::role::Command;
use crate::engine::Engine;
use crate::engine::Retention;
use crate::http::{self, AppState};
use crate::storage::Db;
use crate::sync::peers::{Link, Peers};
use crate::sync::reconcile::Reconciler;
use crate::sync::relays::{self, Template};

/// A running service. Dropping it does not stop it; call [`Service::stop`].
pub struct Service {
    addr: SocketAddr,
    engine: Engine,
    peers: Arc<Peers>,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<()>,
    relays: JoinHandle<()>,
    listener: Option<JoinHandle<()>>,
    periodic: Option<JoinHandle<()>>,
    pruner: JoinHandle<()>,
    reconciler: Arc<Reconciler>,
}

impl Service {
    /// Opens (and migrates) the database, then serves on `listener` and
    /// starts the relays (a warehouse's to the store; a store's to each of
    /// its warehouses).
    pub async fn start(cfg: ServiceConfig, listener: TcpListener) -> anyhow::Result<Service> {
        let secrets = cfg.validate()?;
        let db = Db::open(&cfg.database_url, cfg.role, &cfg.db).await?;
        let engine = Engine::with_write_linger(db, cfg.role, cfg.write_linger);
        let peers = Arc::new(Peers::new(cfg.breaker_threshold, cfg.breaker_open_for));
        let template = Template {
            batch_size: cfg.batch_size,
            lease: cfg.relay_lease,
            request_timeout: cfg.request_timeout,
            answer_timeout: cfg.answer_timeout,
            idle_poll: cfg.idle_poll,
            linger: cfg.relay_linger,
            retry_horizon: cfg.retry_horizon,
        };
        let reconciler = Arc::new(Reconciler::new(engine.clone(), peers.clone()));
        let (shutdown, rx) = watch::channel(false);
        let relays = match cfg.role {
            Role::Warehouse => {
                let link = Link {
                    url: cfg.peer_url.clone(),
                    secrets,
                };
                relays::to_store(&engine, &peers, &template, link, rx.clone())?
            }
            Role::Store => {
                // `--peer-url` is the warehouse named `main`.
                if !cfg.peer_url.is_empty() {
                    engine.set_main_warehouse(&cfg.peer_url).await?;
                }
                relays::to_warehouses(engine.clone(), peers.clone(), template, secrets, rx.clone())
                    .await
            }
        };
        // Commits by other processes (replicas, the CLI) wake the relays.
        let watcher = engine.watch_other_processes(rx.clone());

        let addr = listener.local_addr()?;
        let app = http::router(AppState {
            engine: engine.clone(),
            peers: peers.clone(),
            reconciler: reconciler.clone(),
        });
        let server = tokio::spawn(serve(listener, app, rx.clone(), engine.clone()));
        let periodic =
            match cfg.reconcile_interval {
                Some(every) if cfg.role.may(Command::Reconcile) => Some(tokio::spawn(
                    reconcile_every(reconciler.clone(), every, rx.clone()),
                )),
                _ => None,
            };
        let pruner = tokio::spawn(prune_every(
            engine.clone(),
            cfg.retention.clone(),
            cfg.prune_every,
            rx,
        ));
        tracing::info!(role = %cfg.role, %addr, "service listening");
        Ok(Service {
            addr,
            engine,
            peers,
            shutdown,
            server,
            relays,
            listener: watcher,
            periodic,
            pruner,
            reconciler,
        })
    }

    /// Binds `listen` and starts.
    pub async fn bind(cfg: ServiceConfig, listen: SocketAddr) -> anyhow::Result<Service> {
        let listener = listen_on(listen).map_err(|e| {
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

    /// The peers this service syncs with, and their breakers.
    pub fn peers(&self) -> &Peers {
        &self.peers
    }

    /// Stops accepting, finishes in-flight requests and the relay's current
    /// batch, then closes the database.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        let _ = self.server.await;
        let _ = self.relays.await;
        if let Some(l) = self.listener {
            let _ = l.await;
        }
        if let Some(p) = self.periodic {
            let _ = p.await;
        }
        let _ = self.pruner.await;
        self.reconciler.stop();
        self.engine.db().close().await;
        tracing::info!(role = %self.engine.role(), "service stopped");
    }
}

/// Connections the kernel completes and queues for `accept` (capped by
/// `net.core.somaxconn`). Tokio, like the standard library, asks for 128:
/// past that, a burst of clients (or a pause in accepting, out of file
/// descriptors) leaves new clients retrying their SYN for seconds.
const LISTEN_BACKLOG: u32 = 1024;

/// Binds `addr` with [`LISTEN_BACKLOG`], as [`Service::bind`] does: for a
/// caller that binds every address before it creates anything (the demo),
/// then hands the listener to [`Service::start`].
pub fn listen_on(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    // As tokio's own bind: a restarted service can take its port back
    // while old connections linger in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Longest a client may take to send a request's headers. (The whole
/// request is bounded separately, see `http::REQUEST_TIMEOUT`.) Also closes
/// idle keep-alive connections after this long.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a stopping service waits for in-flight requests.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Longest the accept loop pauses after a failed accept (the pause doubles
/// from 10 ms while accepts keep failing).
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Serves HTTP/1.1 until `stop`, then lets in-flight requests finish.
///
/// Not `axum::serve`: it sets no timer, so hyper's header-read timeout never
/// fires and a client that sends its headers one byte a second (or never
/// finishes them) would hold a connection forever.
///
/// When accept fails (no file descriptor left: EMFILE/ENFILE), the loop
/// backs off, up to [`ACCEPT_BACKOFF_MAX`], so it does not spin; waiting
/// clients stay in the listen backlog and are taken once descriptors are
/// free. The failures are counted in `fulfillment_accept_failures_total`
/// and logged once per interval, not once each.
///
/// Opening and closing a connection count as activity for
/// [`crate::memory`], so the memory of a burst of connections (idle ones
/// included) is given back once they are gone.
async fn serve(
    listener: TcpListener,
    app: axum::Router,
    mut stop: watch::Receiver<bool>,
    engine: Engine,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::server::graceful::GracefulShutdown;
    use hyper_util::service::TowerToHyperService;
    use tower::ServiceExt;

    let role = engine.role();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let graceful = GracefulShutdown::new();
    let mut backoff = Duration::ZERO;
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, client) = match accepted {
                    Ok(accepted) => {
                        backoff = Duration::ZERO;
                        accepted
                    }
                    Err(e) => {
                        accept_failed(&engine, &e);
                        backoff = (backoff * 2).clamp(Duration::from_millis(10), ACCEPT_BACKOFF_MAX);
                        tokio::time::sleep(backoff).await;
                        continue;
                    }
                };
                crate::memory::busy();
                let _ = stream.set_nodelay(true);
                let (http, app, watcher) = (http.clone(), app.clone(), graceful.watcher());
                let mut stop = stop.clone();
                tokio::spawn(async move {
                    // hyper gives every connection its read and write
                    // buffers (8 KiB each) at once: wait for the first
                    // byte, so an idle connection costs only its socket
                    // and this small task (the connection is boxed).
                    // One that sends nothing is closed after the header
                    // timeout (as hyper would), or when the service stops.
                    // (`readable()` may wake spuriously; `peek` waits
                    // for a byte, or the end, without taking it.)
                    let mut one = [0u8; 1];
                    let first = tokio::select! {
                        r = tokio::time::timeout(HEADER_READ_TIMEOUT, stream.peek(&mut one)) => {
                            matches!(r, Ok(Ok(1..)))
                        }
                        () = async { let _ = stop.wait_for(|s| *s).await; } => false,
                    };
                    if first {
                        // Every request knows the address it came from
                        // (the admin sign-in counts failures per address).
                        let service = TowerToHyperService::new(app.map_request(
                            move |mut req: hyper::Request<hyper::body::Incoming>| {
                                req.extensions_mut().insert(axum::extract::ConnectInfo(client));
                                req
                            },
                        ));
                        let conn = http.serve_connection(TokioIo::new(stream), service);
                        let _ = Box::pin(watcher.watch(conn)).await;
                    } else {
                        drop((stream, watcher));
                    }
                    crate::memory::busy();
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

/// Counts and (throttled) logs a failed accept.
fn accept_failed(engine: &Engine, e: &std::io::Error) {
    let out_of_fds = matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE));
    let reason = if out_of_fds {
        "no_file_descriptors"
    } else {
        "other"
    };
    let m = engine.metrics();
    const WHAT: &str = "accept failed";
    if m.warnings.note(reason, &m.accept_failures(reason), WHAT) {
        let role = engine.role();
        if out_of_fds {
            tracing::warn!(%role, error = %e,
                "accept failed: no file descriptor left; backing off. Raise the open-file limit (ulimit -n, LimitNOFILE=) or reduce idle client connections (repeats are counted in fulfillment_accept_failures_total and summarised every 10 s)");
        } else {
            tracing::warn!(%role, error = %e,
                "accept failed; backing off (repeats are counted in fulfillment_accept_failures_total and summarised every 10 s)");
        }
    }
}

/// Prunes old records every `every`, starting shortly after start-up.
async fn prune_every(
    engine: Engine,
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
        match engine.prune(&retention).await {
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

/// Raises this process's soft limit on open files to its hard limit.
///
/// Each connection, each SQLite connection and the WAL's files take a file
/// descriptor, and many systems start processes with a soft limit of 1024:
/// about a thousand idle connections would then make accept fail, and the
/// database pools fail to open connections. The hard limit is what an
/// administrator allows, so take all of it. Logs the old and new values.
pub fn raise_open_file_limit() {
    #[cfg(unix)]
    {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes into the struct we pass, nothing else.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
            let e = std::io::Error::last_os_error();
            tracing::warn!(error = %e, "cannot read the open-file limit; keeping it");
            return;
        }
        let old = lim.rlim_cur;
        if old >= lim.rlim_max {
            tracing::debug!(
                soft = old,
                hard = lim.rlim_max,
                "open-file limit already at its maximum"
            );
            return;
        }
        // An unlimited hard limit is not a value the kernel takes for
        // files (it caps at fs.nr_open): try it, then that cap.
        let mut candidates = vec![lim.rlim_max];
        if lim.rlim_max == libc::RLIM_INFINITY {
            let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open")
                .ok()
                .and_then(|s| s.trim().parse::<libc::rlim_t>().ok())
                .unwrap_or(1 << 20);
            candidates.push(nr_open);
        }
        for new in candidates {
            let want = libc::rlimit {
                rlim_cur: new,
                rlim_max: lim.rlim_max,
            };
            // SAFETY: setrlimit reads the struct we pass, nothing else.
            if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &want) } == 0 {
                tracing::info!(
                    old_soft = old,
                    new_soft = new,
                    hard = lim.rlim_max,
                    "raised the open-file limit (soft) to the hard limit"
                );
                return;
            }
        }
        let e = std::io::Error::last_os_error();
        tracing::warn!(soft = old, hard = lim.rlim_max, error = %e,
            "cannot raise the open-file limit; each connection takes a file descriptor, so raise it before starting (ulimit -n, LimitNOFILE=)");
    }
}
