//! The services this one syncs with, as they are at run time, by name: how
//! to reach each (its URL and the secrets its requests are signed and
//! checked with) and its circuit breaker (with the last error). A warehouse
//! has one peer, the store; a store has one per warehouse, kept up to date
//! as warehouses are added or changed. The relays and the reconciler read
//! the links and report to the breakers; signed requests are checked
//! against every peer's secrets, which tells who sent them; the status
//! routes, the metrics and the admin pages read the breakers.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use super::breaker::{Breaker, BreakerState};
use super::signature::{Secrets, SignatureError};

/// How to reach a peer.
#[derive(Debug, Clone)]
pub struct Link {
    /// Its base URL.
    pub url: String,
    /// The first signs what is sent to it; all are accepted from it.
    pub secrets: Secrets,
}

pub struct Peers {
    breakers: RwLock<BTreeMap<String, Arc<Breaker>>>,
    links: RwLock<BTreeMap<String, Link>>,
    threshold: u32,
    open_for: Duration,
}

impl Peers {
    /// Breakers that open after `threshold` failures in a row and stay open
    /// `open_for` before their probe.
    pub fn new(threshold: u32, open_for: Duration) -> Self {
        Self {
            breakers: RwLock::default(),
            links: RwLock::default(),
            threshold,
            open_for,
        }
    }

    /// The breaker of `peer`, made on first use.
    pub fn breaker(&self, peer: &str) -> Arc<Breaker> {
        if let Some(b) = self.get(peer) {
            return b;
        }
        let mut all = self.breakers.write().unwrap_or_else(|p| p.into_inner());
        all.entry(peer.to_owned())
            .or_insert_with(|| Arc::new(Breaker::new(self.threshold, self.open_for)))
            .clone()
    }

    /// The breaker of `peer`, if it has one.
    pub fn get(&self, peer: &str) -> Option<Arc<Breaker>> {
        self.breakers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(peer)
            .cloned()
    }

    /// The state of `peer`'s breaker (closed when it has none yet).
    pub fn state(&self, peer: &str) -> BreakerState {
        self.get(peer).map_or(BreakerState::Closed, |b| b.state())
    }

    /// The worst state of all breakers: open, else half-open, else closed.
    pub fn worst(&self) -> BreakerState {
        self.breakers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .map(|b| b.state())
            .max_by_key(|s| s.as_gauge())
            .unwrap_or(BreakerState::Closed)
    }

    /// Sets how to reach `peer`.
    pub fn set_link(&self, peer: &str, link: Link) {
        self.links
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(peer.to_owned(), link);
    }

    /// Every peer and how to reach it, by name.
    pub fn links(&self) -> Vec<(String, Link)> {
        self.links
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(n, l)| (n.clone(), l.clone()))
            .collect()
    }

    /// Who signed a request: the peers whose secrets verify its signature
    /// (several when peers share a secret), or why nobody did (the most
    /// telling reason: a stale timestamp over a bad signature).
    pub fn signers(
        &self,
        id: Option<&str>,
        ts: Option<&str>,
        sig: Option<&str>,
        body: &[u8],
        now: i64,
    ) -> Result<Vec<String>, SignatureError> {
        let links = self.links.read().unwrap_or_else(|p| p.into_inner());
        let mut why = SignatureError::Mismatch;
        let mut signers = Vec::new();
        for (name, link) in links.iter() {
            match link.secrets.verify(id, ts, sig, body, now) {
                Ok(()) => signers.push(name.clone()),
                Err(SignatureError::Mismatch) => {}
                Err(e) => why = e,
            }
        }
        if signers.is_empty() {
            Err(why)
        } else {
            Ok(signers)
        }
    }

    /// The latest failed delivery to any peer: when (microseconds), which
    /// peer, and why.
    pub fn last_error(&self) -> Option<(i64, String, String)> {
        self.breakers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter_map(|(name, b)| b.last_error().map(|(at, why)| (at, name.clone(), why)))
            .max_by_key(|(at, _, _)| *at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_breaker_per_peer_and_the_worst_wins() {
        let peers = Peers::new(1, Duration::from_secs(60));
        assert_eq!(peers.worst(), BreakerState::Closed);
        let eu = peers.breaker("eu");
        assert!(Arc::ptr_eq(&eu, &peers.breaker("eu")));
        peers.breaker("us").failure();
        assert_eq!(peers.state("us"), BreakerState::Open);
        assert_eq!(peers.state("eu"), BreakerState::Closed);
        assert_eq!(peers.worst(), BreakerState::Open);
        eu.note_error(5, "peer answered 503");
        peers.breaker("us").note_error(9, "cannot connect");
        assert_eq!(
            peers.last_error(),
            Some((9, "us".into(), "cannot connect".into()))
        );
    }

    #[test]
    fn the_signature_tells_who_sent_a_request() {
        let peers = Peers::new(5, Duration::from_secs(5));
        let link = |s: &str| Link {
            url: "http://x".into(),
            secrets: Secrets::new(&[s]).expect("secret"),
        };
        peers.set_link("eu", link("eu-secret"));
        peers.set_link("us", link("us-secret"));
        peers.set_link("main", link("us-secret"));
        let signed = |s: &str| Secrets::new(&[s]).expect("secret").sign("i", 100, b"x");
        let who = |sig: &str| peers.signers(Some("i"), Some("100"), Some(sig), b"x", 100);
        assert_eq!(who(&signed("eu-secret")), Ok(vec!["eu".to_owned()]));
        assert_eq!(
            who(&signed("us-secret")),
            Ok(vec!["main".to_owned(), "us".to_owned()]),
            "peers sharing a secret cannot be told apart"
        );
        assert_eq!(who(&signed("other")), Err(SignatureError::Mismatch));
        assert_eq!(
            peers.signers(Some("i"), Some("1"), Some(&signed("eu-secret")), b"x", 1000),
            Err(SignatureError::OutsideTolerance)
        );
    }
}
