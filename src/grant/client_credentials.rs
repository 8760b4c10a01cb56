//! The client credentials grant (RFC 6749 §4.4): a confidential client gets a token for itself.
//!
//! ```text
//! +---------+                                  +---------------+
//! |         |                                  |               |
//! |         |>--(A)- Client Authentication --->| Authorization |
//! | Client  |                                  |     Server    |
//! |         |<--(B)---- Access Token ---------<|               |
//! |         |                                  |               |
//! +---------+                                  +---------------+
//! ```
//!
//! (A) is `grant_type=client_credentials[&scope=…]` with the client's own credentials
//! ([§4.4.2](https://www.rfc-editor.org/rfc/rfc6749#section-4.4.2)); (B) is an access token and
//! never a refresh token (§4.4.3).

use crate::builder::{AuthorizationServerBuilder, BuildError, Setups};
use crate::client::grant_scope;
use crate::client::Client;
use crate::error::OAuthError;
use crate::grant::context::{ensure_allowed, Context, Grant, Shared};
use crate::reason::Reason;
use crate::request::Params;
use crate::response::TokenResponse;
use crate::types::GrantType;

/// The client credentials grant's settings.
#[derive(Clone, Default)]
pub(crate) struct Setup {
    enabled: bool,
}

impl AuthorizationServerBuilder {
    /// Enables the client credentials grant (RFC 6749 §4.4) for confidential clients
    /// registered for it.
    pub fn enable_client_credentials_grant(mut self) -> Self {
        self.setup::<Setup>().enabled = true;
        self
    }
}

/// Makes the grant if the builder enabled it.
pub(crate) fn build(
    setups: &Setups,
    _: &Shared<'_>,
) -> Result<Option<ClientCredentialsGrant>, BuildError> {
    Ok(setups
        .read::<Setup>()
        .enabled
        .then_some(ClientCredentialsGrant))
}

/// The client credentials grant's handler: it needs nothing but the token store.
pub(crate) struct ClientCredentialsGrant;

impl ClientCredentialsGrant {
    /// Handles `grant_type=client_credentials` (RFC 6749 §4.4.2).
    pub(crate) async fn handle(
        &self,
        ctx: &Context<'_>,
        client: &Client,
        params: &Params<'_>,
    ) -> Result<TokenResponse, OAuthError> {
        // RFC 6749 §4.4: "The client credentials grant type MUST only be used by confidential
        // clients."
        if client.is_public() {
            return Err(OAuthError::unauthorized_client(
                "public clients cannot use the client_credentials grant",
            )
            .with_reason(Reason::PublicClientCredentials));
        }
        ensure_allowed(client, GrantType::ClientCredentials)?;
        let granted = grant_scope(client, params.get("scope"))?;
        let audience = ctx.audience(params, &[], client)?;
        let minted = ctx
            .mint(
                Grant {
                    client,
                    owner: None,
                    refresh_scope: granted.scope.clone(),
                    scope: granted.scope,
                    // Never refreshed, from no code: nothing to revoke it with but itself.
                    family_id: None,
                    show_scope: granted.differs_from_request,
                    audience,
                    resources: Vec::new(),
                },
                // RFC 6749 §4.4.3: "A refresh token SHOULD NOT be included."
                false,
            )
            .await?;
        ctx.save_fresh(minted).await
    }
}
