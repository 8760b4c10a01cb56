//! The implicit grant (RFC 6749 §4.2): an access token straight in the redirect's fragment.
//!
//! ```text
//! +----------+
//! | Resource |
//! |  Owner   |
//! +----------+
//!      ^
//!      |
//!     (B)
//! +----|-----+          Client Identifier     +---------------+
//! |         -+----(A)-- & Redirection URI --->|               |
//! |  User-   |                                | Authorization |
//! |  Agent  -|----(B)-- User authenticates -->|     Server    |
//! |          |                                |               |
//! |          |<---(C)--- Redirection URI ----<|               |
//! |          |          with Access Token     +---------------+
//! |          |            in Fragment
//! +----------+
//! ```
//!
//! Off unless the builder enables it and the client is registered for it: RFC 9700 §2.1.2 says
//! clients "SHOULD NOT use the implicit grant" (the token travels through the browser, with no
//! sender check). No refresh token is ever issued here (§4.2.2).

use crate::authorize::{redirect, Redirect};
use crate::builder::{AuthorizationServerBuilder, BuildError, Setups};
use crate::client::Client;
use crate::error::OAuthError;
use crate::grant::context::{Context, Grant, Shared};
use crate::resource;
use crate::scope::Scope;
use crate::store::PendingAuthorization;
use crate::types::{FamilyId, ResourceOwner};

/// The implicit grant's settings.
#[derive(Clone, Default)]
pub(crate) struct Setup {
    pub(crate) enabled: bool,
}

impl AuthorizationServerBuilder {
    /// Enables the implicit grant (RFC 6749 §4.2) for clients registered for it. Off by
    /// default: RFC 9700 §2.1.2 says clients SHOULD NOT use it. Needs the authorization
    /// endpoint ([`enable_authorization_code_grant`](Self::enable_authorization_code_grant)).
    pub fn enable_implicit_grant(mut self) -> Self {
        self.setup::<Setup>().enabled = true;
        self
    }
}

/// Makes the grant if the builder enabled it. (The authorization code grant's `build` checks
/// that the authorization endpoint it needs is there.)
pub(crate) fn build(setups: &Setups, _: &Shared<'_>) -> Result<Option<ImplicitGrant>, BuildError> {
    Ok(setups.read::<Setup>().enabled.then_some(ImplicitGrant))
}

/// The implicit grant: issues an access token when a `response_type=token` request is approved.
pub(crate) struct ImplicitGrant;

impl ImplicitGrant {
    /// Step (C): RFC 6749 §4.2.2, the token in the fragment, with `state` and `iss` (RFC 9207).
    pub(crate) async fn issue(
        &self,
        ctx: &Context<'_>,
        client: &Client,
        request: PendingAuthorization,
        owner: ResourceOwner,
        scope: Scope,
        issuer: &str,
    ) -> Result<Redirect, OAuthError> {
        // The resources asked for, as far as the client may still name them (its list may
        // have changed while the user decided): none left, no token.
        let audience = resource::narrowed(
            Vec::new(),
            &request.resources,
            client.own_resources(),
            &ctx.settings.resources,
        )?;
        let minted = ctx
            .mint(
                Grant {
                    client,
                    owner: Some(owner),
                    refresh_scope: scope.clone(),
                    scope,
                    family_id: Some(FamilyId::generate()),
                    show_scope: true,
                    audience,
                    resources: Vec::new(),
                },
                false,
            )
            .await?;
        let response = ctx.save_fresh(minted).await?;
        let expires_in = response.expires_in.to_string();
        let scope = response
            .scope
            .as_ref()
            .map(Scope::to_string)
            .unwrap_or_default();
        let mut params = vec![
            ("access_token", response.access_token.secret()),
            ("token_type", "Bearer"),
            ("expires_in", expires_in.as_str()),
            ("scope", scope.as_str()),
        ];
        if let Some(state) = request.state.as_deref() {
            params.push(("state", state));
        }
        params.push(("iss", issuer));
        Ok(redirect(&request.redirect_uri, true, &params))
    }
}
