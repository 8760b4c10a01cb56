//! [`MemoryClientStore`]: clients kept in a map, a copy of it per stripe of threads.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use async_trait::async_trait;

use crate::client::Client;
use crate::error::StoreError;
use crate::store::ClientStore;
use crate::types::ClientId;

type ClientMap = HashMap<ClientId, Arc<Client>>;

/// One copy of the clients, on cache lines of its own.
#[derive(Default)]
#[repr(align(128))]
struct Stripe(RwLock<ClientMap>);

impl Stripe {
    fn read(&self) -> RwLockReadGuard<'_, ClientMap> {
        self.0.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, ClientMap> {
        self.0.write().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Clients kept in a map.
///
/// Every token request looks its client up, and each token issued copies the client's id and
/// scope (shared strings). With one copy of the clients, threads on different cores would take
/// turns writing the same reference counts (the map's lock, the client's, its strings'). So the
/// store keeps a few copies of every client, each with strings of its own, and each thread reads
/// the copy of its stripe. Clients are few; the copies cost little.
///
/// ```
/// use grantor::{Client, MemoryClientStore};
///
/// let clients = MemoryClientStore::new();
/// clients.insert(Client::public("spa"));
/// ```
pub struct MemoryClientStore {
    stripes: Box<[Stripe]>,
    /// Serializes changes (see [`MemoryClientStore::writer`]); reads never take it.
    writing: Mutex<()>,
}

impl Default for MemoryClientStore {
    fn default() -> Self {
        Self::new()
    }
}

/// The stripe of the calling thread among `n` (a power of two): threads take stripes in turn as
/// they first ask, so the first `n` threads each have one of their own.
fn stripe_of_this_thread(n: usize) -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static STRIPE: usize = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    STRIPE.with(|stripe| *stripe) & n.saturating_sub(1)
}

impl MemoryClientStore {
    /// An empty store.
    pub fn new() -> Self {
        // Two stripes a thread: threads that first ask at once still seldom share one.
        let n = super::parts_per_thread(2, 2, 64);
        Self {
            stripes: (0..n).map(|_| Stripe::default()).collect(),
            writing: Mutex::new(()),
        }
    }

    /// Adds or replaces a client.
    pub fn insert(&self, client: Client) {
        let _writing = self.writer();
        for stripe in self.stripes.iter() {
            let copy = client.unshared_copy();
            stripe.write().insert(copy.id.clone(), Arc::new(copy));
        }
    }

    /// Removes a client.
    pub fn remove(&self, id: &ClientId) -> Option<Client> {
        let _writing = self.writer();
        let mut removed = None;
        for stripe in self.stripes.iter() {
            removed = stripe.write().remove(id).or(removed);
        }
        removed.map(Arc::unwrap_or_clone)
    }

    /// Held through a change to every stripe, so that two changes to one client are made in
    /// the same order in each copy (interleaved, they could leave the copies disagreeing).
    fn writer(&self) -> std::sync::MutexGuard<'_, ()> {
        self.writing.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn stripe(&self) -> Option<&Stripe> {
        self.stripes
            .get(stripe_of_this_thread(self.stripes.len()))
            .or_else(|| self.stripes.first())
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
        let n = self.stripes.first().map_or(0, |s| s.read().len());
        f.debug_struct("MemoryClientStore")
            .field("clients", &n)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl ClientStore for MemoryClientStore {
    async fn find_client(&self, id: &ClientId) -> Result<Option<Arc<Client>>, StoreError> {
        Ok(self.stripe().and_then(|s| s.read().get(id).cloned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn racing_changes_to_one_client_leave_every_copy_alike() {
        let store = MemoryClientStore::new();
        let start = std::sync::Barrier::new(2);
        for round in 0..6_000 {
            std::thread::scope(|s| {
                for uri in ["https://a.example/cb", "https://b.example/cb"] {
                    let (store, start) = (&store, &start);
                    s.spawn(move || {
                        let client = Client::public("spa").with_redirect_uris([uri]);
                        start.wait();
                        store.insert(client);
                    });
                }
            });
            let seen: Vec<_> = store
                .stripes
                .iter()
                .map(|stripe| {
                    stripe
                        .read()
                        .get(&ClientId::new("spa"))
                        .map(|c| c.redirect_uris.clone())
                })
                .collect();
            assert!(
                seen.windows(2).all(|w| w[0] == w[1]),
                "round {round}: {seen:?}"
            );
        }
    }

    /// Whether `check` holds on each of eight threads at once.
    fn on_eight_threads(
        store: &Arc<MemoryClientStore>,
        check: fn(&MemoryClientStore) -> bool,
    ) -> bool {
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let store = store.clone();
                std::thread::spawn(move || check(&store))
            })
            .collect();
        threads.into_iter().all(|t| t.join().unwrap_or(false))
    }

    #[test]
    fn every_thread_finds_every_client_and_its_changes() {
        let store = Arc::new(MemoryClientStore::new());
        store.insert(Client::public("spa"));
        fn find(store: &MemoryClientStore) -> Option<Arc<Client>> {
            run_to_completion(store.find_client(&ClientId::new("spa"))).unwrap_or(None)
        }
        assert!(on_eight_threads(&store, |store| find(store).is_some()));
        assert!(store.remove(&ClientId::new("spa")).is_some());
        assert!(on_eight_threads(&store, |store| find(store).is_none()));
    }

    #[test]
    fn each_stripe_has_strings_of_its_own() {
        let store = MemoryClientStore::new();
        let scope = |s: &str| s.parse::<crate::scope::Scope>().unwrap_or_default();
        store.insert(
            Client::public("spa")
                .with_redirect_uris(["https://spa.example/cb"])
                .with_allowed_scope(scope("read write"))
                .with_default_scope(scope("read")),
        );
        // Where each stripe's copy keeps each of its strings.
        type Pick = fn(&Client) -> Option<&str>;
        let strings = |pick: Pick| -> Vec<*const u8> {
            store
                .stripes
                .iter()
                .filter_map(|s| {
                    s.read()
                        .get(&ClientId::new("spa"))
                        .and_then(|c| pick(c))
                        .map(str::as_ptr)
                })
                .collect()
        };
        let kinds: [(&str, Pick); 4] = [
            ("an id", |c| Some(c.id.as_str())),
            ("a redirect URI", |c| {
                c.redirect_uris.first().map(|u| u.as_str())
            }),
            ("an allowed scope", |c| Some(c.allowed_scope.as_str())),
            ("a default scope", |c| Some(c.default_scope.as_str())),
        ];
        for (what, pick) in kinds {
            let ptrs = strings(pick);
            assert_eq!(ptrs.len(), store.stripes.len(), "{what}");
            for (i, a) in ptrs.iter().enumerate() {
                assert!(
                    ptrs.iter().skip(i + 1).all(|b| b != a),
                    "a stripe shares {what}"
                );
            }
        }
    }

    /// Runs a future that never waits (the memory store's) to completion.
    fn run_to_completion<F: std::future::Future>(f: F) -> F::Output {
        let mut f = std::pin::pin!(f);
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        loop {
            if let std::task::Poll::Ready(out) = f.as_mut().poll(&mut cx) {
                return out;
            }
        }
    }
}
