//! [`MemoryClientStore`]: clients kept in a map.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use async_trait::async_trait;

use crate::client::Client;
use crate::error::StoreError;
use crate::store::ClientStore;
use crate::types::ClientId;

/// Clients kept in a map.
///
/// ```
/// use grantor::{Client, MemoryClientStore};
///
/// let clients = MemoryClientStore::new();
/// clients.insert(Client::public("spa"));
/// ```
#[derive(Default)]
pub struct MemoryClientStore {
    clients: RwLock<HashMap<ClientId, Arc<Client>>>,
}

impl MemoryClientStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a client.
    pub fn insert(&self, client: Client) {
        self.clients
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(client.id.clone(), Arc::new(client));
    }

    /// Removes a client.
    pub fn remove(&self, id: &ClientId) -> Option<Client> {
        self.clients
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id)
            .map(Arc::unwrap_or_clone)
    }
}

impl FromIterator<Client> for MemoryClientStore {
    fn from_iter<I: IntoIterator<Item = Client>>(iter: I) -> Self {
        let store = Self::new();
        for c in iter {
            store.insert(c);
        }
        store
    }
}

impl fmt::Debug for MemoryClientStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self
            .clients
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        f.debug_struct("MemoryClientStore")
            .field("clients", &n)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl ClientStore for MemoryClientStore {
    async fn find_client(&self, id: &ClientId) -> Result<Option<Arc<Client>>, StoreError> {
        Ok(self
            .clients
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .cloned())
    }
}
