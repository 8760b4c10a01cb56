//! Registered clients: the store the engine looks them up in.

use std::sync::Arc;

use async_trait::async_trait;

use crate::client::Client;
use crate::error::StoreError;
use crate::types::ClientId;

/// Looks up registered clients.
///
/// Called by: every token-endpoint request (client authentication, RFC 6749 §2.3 and §3.2.1).
#[async_trait]
pub trait ClientStore: Send + Sync {
    /// The client registered as `id`, or `Ok(None)` if there is none.
    ///
    /// A read: nothing here needs to be atomic. Return `Err` only when the lookup itself failed.
    async fn find_client(&self, id: &ClientId) -> Result<Option<Arc<Client>>, StoreError>;
}
