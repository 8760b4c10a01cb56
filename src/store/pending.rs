//! Bounds on requests that anyone may make without credentials, and the answer of a save
//! bounded by them.

/// Bounds on requests that anyone may make without credentials (pending authorization
/// requests, device authorization requests), so that a flood cannot grow a store without limit.
///
/// # Security
///
/// A bound is also a lever: anyone who knows a public client's id can fill its bound (1,000
/// requests per 10 minutes by default, under two a second) and keep new sign-ins to that client
/// waiting until the oldest request expires. The per-client bound keeps such a flood from
/// reaching other clients; limit the rate of these endpoints per caller address in front of
/// grantor (a reverse proxy) so that one caller cannot fill it, and watch the `tracing` warnings
/// ("too many are waiting").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PendingLimits {
    /// Unexpired requests one client may have waiting.
    pub per_client: u32,
    /// Unexpired requests waiting in all.
    pub total: u32,
}

impl Default for PendingLimits {
    /// 1,000 per client and 10,000 in all.
    fn default() -> Self {
        Self {
            per_client: 1_000,
            total: 10_000,
        }
    }
}

/// The answer of a save bounded by [`PendingLimits`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Admission {
    /// Saved.
    Admitted,
    /// A limit is reached: nothing was saved.
    Full {
        /// How long until the oldest request counted against the limit expires.
        retry_after: std::time::Duration,
    },
}
