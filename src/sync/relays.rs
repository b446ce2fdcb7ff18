//! One relay per peer. A warehouse has one, to the store. A store has one
//! per warehouse, started, restarted (its URL or secret changed) and kept
//! as warehouses are added or changed, in this process (woken at once) or
//! in another (seen within [`REFRESH`]). Each relay has its own outbox
//! rows, backoff, lease, breaker and status, so a warehouse that is down,
//! slow or failing never delays another's deliveries.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::peers::{Link, Peers};
use super::relay::{Relay, RelayConfig};
use super::signature::Secrets;
use crate::domain::warehouse::Warehouse;
use crate::engine::Engine;

/// How often the store looks for warehouses changed by another process.
pub const REFRESH: Duration = Duration::from_secs(5);

/// What every relay of a service shares: all but the peer and how to reach
/// it.
#[derive(Debug, Clone)]
pub struct Template {
    pub batch_size: i64,
    pub lease: Duration,
    pub request_timeout: Duration,
    pub answer_timeout: Duration,
    pub idle_poll: Duration,
    pub linger: Duration,
    pub retry_horizon: Duration,
}

impl Template {
    fn config(&self, peer: &str, link: &Link) -> RelayConfig {
        RelayConfig {
            peer: peer.to_owned(),
            peer_url: link.url.clone(),
            secrets: link.secrets.clone(),
            batch_size: self.batch_size,
            lease: self.lease,
            request_timeout: self.request_timeout,
            answer_timeout: self.answer_timeout,
            idle_poll: self.idle_poll,
            linger: self.linger,
            retry_horizon: self.retry_horizon,
        }
    }
}

/// A relay running for one peer, and what it was started with.
struct Running {
    url: String,
    secret: Option<String>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Running {
    async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

fn start(
    engine: &Engine,
    peers: &Peers,
    template: &Template,
    peer: &str,
    link: &Link,
    secret: Option<String>,
) -> anyhow::Result<Running> {
    let relay = Relay::new(
        engine.clone(),
        template.config(peer, link),
        peers.breaker(peer),
    )?;
    let (stop, rx) = watch::channel(false);
    Ok(Running {
        url: link.url.clone(),
        secret,
        stop,
        task: tokio::spawn(relay.run(rx)),
    })
}

/// The relay of a warehouse: to the store, at `link`, until `shutdown`.
pub fn to_store(
    engine: &Engine,
    peers: &Arc<Peers>,
    template: &Template,
    link: Link,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<JoinHandle<()>> {
    const STORE: &str = "store";
    peers.set_link(STORE, link.clone());
    let running = start(engine, peers, template, STORE, &link, None)?;
    Ok(tokio::spawn(async move {
        let _ = shutdown.wait_for(|s| *s).await;
        running.stop().await;
    }))
}

/// How the store reaches warehouse `w`: its own secret, else
/// `store_secrets` (`--sync-secret`).
fn link_of(w: &Warehouse, secret: Option<&str>, store_secrets: &Secrets) -> Link {
    Link {
        url: w.url.clone(),
        secrets: secret
            .and_then(|s| Secrets::new(&[s]))
            .unwrap_or_else(|| store_secrets.clone()),
    }
}

/// The store's relays, one per warehouse, kept in step with its
/// warehouses until `shutdown`. A warehouse without a secret of its own
/// is signed for with `store_secrets` (`--sync-secret`).
///
/// The warehouses' links are known before this returns: the server checks
/// incoming sync requests against them, and a request that came before
/// they were read (a warehouse's retry just after the store restarted)
/// was refused as unsigned.
pub async fn to_warehouses(
    engine: Engine,
    peers: Arc<Peers>,
    template: Template,
    store_secrets: Secrets,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    // A failure here is retried by the loop below, which reads them again.
    if let Ok(list) = engine.warehouses_with_secrets().await {
        for (w, secret) in &list {
            peers.set_link(
                w.name.as_str(),
                link_of(w, secret.as_deref(), &store_secrets),
            );
        }
    }
    tokio::spawn(async move {
        let mut running: BTreeMap<String, Running> = BTreeMap::new();
        loop {
            match engine.warehouses_with_secrets().await {
                Ok(list) => {
                    for (w, secret) in list {
                        let name = w.name.to_string();
                        let link = link_of(&w, secret.as_deref(), &store_secrets);
                        peers.set_link(&name, link.clone());
                        let same = running
                            .get(&name)
                            .is_some_and(|r| r.url == w.url && r.secret == secret);
                        if same {
                            continue;
                        }
                        if let Some(old) = running.remove(&name) {
                            tracing::info!(warehouse = %name, url = %w.url, "warehouse changed; restarting its relay");
                            old.stop().await;
                        }
                        match start(&engine, &peers, &template, &name, &link, secret) {
                            Ok(r) => {
                                running.insert(name, r);
                            }
                            Err(error) => tracing::error!(
                                warehouse = %name,
                                %error,
                                "cannot start the relay to this warehouse; check its URL"
                            ),
                        }
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot read the warehouses; trying again shortly")
                }
            }
            tokio::select! {
                () = engine.warehouses_change() => {}
                () = tokio::time::sleep(REFRESH) => {}
                _ = shutdown.wait_for(|s| *s) => break,
            }
        }
        for (_, r) in running {
            r.stop().await;
        }
    })
}
