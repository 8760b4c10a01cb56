//! `cargo run --example minimal`: a token endpoint, and a route that needs the scope `read`.
use axum::routing::get;
use grantor::axum::{RequireScope, ScopeRequirement};
use grantor::{AuthorizationServer, Client, GrantType, MemoryClientStore, MemoryTokenStore};
use std::sync::Arc;

struct Read;
impl ScopeRequirement for Read {
    const SCOPE: &'static str = "read";
}

async fn hello(token: RequireScope<Read>) -> String {
    format!("hello, {}\n", token.client_id.as_str())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let secret = grantor::SecretHash::new(&grantor::ClientSecret::new("service-secret"));
    let clients = MemoryClientStore::from_iter([Client::confidential("service", secret)
        .with_grant_types([GrantType::ClientCredentials])
        .with_allowed_scope("read".parse()?)
        .with_default_scope("read".parse()?)]);
    let server = AuthorizationServer::builder(Arc::new(clients), Arc::new(MemoryTokenStore::new()))
        .enable_client_credentials_grant()
        .build()?;
    let app = grantor::axum::router(server.clone()).route("/hello", get(hello));
    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:4000".into());
    let listener = tokio::net::TcpListener::bind(addr).await?;
    Ok(axum::serve(listener, app.with_state(server)).await?)
}
