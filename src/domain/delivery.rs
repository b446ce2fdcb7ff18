//! An order's delivery state towards the peer: what the API, the admin
//! pages and the order lists call `pending`, `synced`, `failing` and `dead`.
/// An order's delivery state towards the peer, as the API shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SyncState {
    /// Waiting for its first delivery attempt.
    Pending,
    /// The peer holds the latest version.
    Synced,
    /// Delivery failed at least once; retrying with backoff.
    Failing,
    /// Given up (rejected by the peer, or past the retry horizon); needs a replay.
    Dead,
}

impl SyncState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Synced => "synced",
            Self::Failing => "failing",
            Self::Dead => "dead",
        }
    }

    pub const ALL: [SyncState; 4] = [Self::Pending, Self::Synced, Self::Failing, Self::Dead];
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncInfo {
    pub state: SyncState,
    pub last_error: Option<String>,
}

impl SyncInfo {
    pub const SYNCED: SyncInfo = SyncInfo {
        state: SyncState::Synced,
        last_error: None,
    };

    /// The worst of several (an order's, over its parts): dead, then
    /// failing, then pending, then synced; the first such one's error.
    pub fn worst<'a>(all: impl IntoIterator<Item = &'a SyncInfo>) -> SyncInfo {
        let rank = |s: SyncState| match s {
            SyncState::Synced => 0,
            SyncState::Pending => 1,
            SyncState::Failing => 2,
            SyncState::Dead => 3,
        };
        let mut worst = Self::SYNCED;
        for s in all {
            if rank(s.state) > rank(worst.state) {
                worst = s.clone();
            }
        }
        worst
    }
}
