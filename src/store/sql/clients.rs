//! [`ClientStore`] in SQL: `grantor_clients`, which [`SqlStore::save_client`] and
//! [`SqlStore::remove_client`] keep.

use std::sync::Arc;

use async_trait::async_trait;

use super::{Arg, SqlStore};
use crate::client::{AccessTokenFormat, Client, ClientKind};
use crate::error::StoreError;
use crate::resource::Resource;
use crate::scope::Scope;
use crate::store::client::ClientStore;
use crate::token::SecretHash;
use crate::types::{ClientId, GrantType, RedirectUri};

impl SqlStore {
    /// Registers `client`, or replaces the registration under its id. Only its secret's hash is
    /// stored (a [`SecretHash`] is all a [`Client`] holds).
    ///
    /// # Errors
    ///
    /// A [`StoreError`] if the database refuses.
    pub async fn save_client(&self, client: &Client) -> Result<(), StoreError> {
        let secret = match &client.kind {
            ClientKind::Confidential { secret } => Some(secret.as_str()),
            ClientKind::Public => None,
        };
        let grants: Vec<&str> = client.grant_types.iter().map(|g| g.as_str()).collect();
        let uris: Vec<&str> = client
            .redirect_uris
            .iter()
            .map(RedirectUri::as_str)
            .collect();
        let uris = serde_json::to_string(&uris).map_err(StoreError::backend)?;
        let resources = client
            .allowed_resources
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(StoreError::backend)?;
        self.db
            .execute(
                "INSERT INTO grantor_clients
                     (client_id, secret_hash, grant_types, allowed_scope, default_scope,
                      redirect_uris, access_token_format, allowed_resources)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (client_id) DO UPDATE SET secret_hash = excluded.secret_hash,
                     grant_types = excluded.grant_types,
                     allowed_scope = excluded.allowed_scope,
                     default_scope = excluded.default_scope,
                     redirect_uris = excluded.redirect_uris,
                     access_token_format = excluded.access_token_format,
                     allowed_resources = excluded.allowed_resources",
                &[
                    Arg::Text(client.id.as_str()),
                    Arg::OptText(secret),
                    Arg::Text(&grants.join(" ")),
                    Arg::Text(client.allowed_scope.as_str()),
                    Arg::Text(client.default_scope.as_str()),
                    Arg::Text(&uris),
                    Arg::OptText(client.access_token_format.map(format_name)),
                    Arg::OptText(resources.as_deref()),
                ],
            )
            .await?;
        Ok(())
    }

    /// Removes the client registered under `id`, answering whether there was one. Its tokens
    /// stay until they expire or are revoked, but none of them is refreshed, introspected or
    /// revoked by it any more (the engine reads the client on every request).
    ///
    /// # Errors
    ///
    /// A [`StoreError`] if the database refuses.
    pub async fn remove_client(&self, id: &ClientId) -> Result<bool, StoreError> {
        let gone = self
            .db
            .execute(
                "DELETE FROM grantor_clients WHERE client_id = $1",
                &[Arg::Text(id.as_str())],
            )
            .await?;
        Ok(gone > 0)
    }
}

/// An access token format as the table keeps it.
fn format_name(format: AccessTokenFormat) -> &'static str {
    match format {
        AccessTokenFormat::Jwt => "jwt",
        _ => "opaque",
    }
}

/// A scope read back from its column.
fn scope(stored: &str) -> Result<Scope, StoreError> {
    Scope::parse(stored).map_err(|e| StoreError::backend(format!("a stored scope: {e}")))
}

#[async_trait]
impl ClientStore for SqlStore {
    async fn find_client(&self, id: &ClientId) -> Result<Option<Arc<Client>>, StoreError> {
        let Some(row) = self
            .db
            .fetch_optional(
                "SELECT secret_hash, grant_types, allowed_scope, default_scope, redirect_uris,
                     access_token_format, allowed_resources
                 FROM grantor_clients WHERE client_id = $1",
                &[Arg::Text(id.as_str())],
            )
            .await?
        else {
            return Ok(None);
        };
        let kind = match row.opt_text(0)? {
            Some(stored) => ClientKind::Confidential {
                secret: SecretHash::parse(&stored)
                    .ok_or_else(|| StoreError::backend("a stored client secret hash"))?,
            },
            None => ClientKind::Public,
        };
        let grants = row
            .text(1)?
            .split(' ')
            .filter(|g| !g.is_empty())
            .map(|g| {
                GrantType::parse(g)
                    .ok_or_else(|| StoreError::backend(format!("a stored grant type {g:?}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let uris: Vec<String> = serde_json::from_str(&row.text(4)?).map_err(StoreError::backend)?;
        let mut client = match kind {
            ClientKind::Confidential { secret } => Client::confidential(id.clone(), secret),
            _ => Client::public(id.clone()),
        };
        client = client
            .with_grant_types(grants)
            .with_allowed_scope(scope(&row.text(2)?)?)
            .with_default_scope(scope(&row.text(3)?)?)
            .with_redirect_uris(uris);
        match row.opt_text(5)?.as_deref() {
            None => {}
            Some("jwt") => client = client.with_access_token_format(AccessTokenFormat::Jwt),
            Some("opaque") => client = client.with_access_token_format(AccessTokenFormat::Opaque),
            Some(other) => {
                return Err(StoreError::backend(format!(
                    "a stored access token format {other:?}"
                )))
            }
        }
        if let Some(stored) = row.opt_text(6)? {
            let resources: Vec<Resource> =
                serde_json::from_str(&stored).map_err(StoreError::backend)?;
            client = client.with_resources(resources);
        }
        Ok(Some(Arc::new(client)))
    }
}
