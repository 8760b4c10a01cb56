//! The resource owner password credentials grant (RFC 6749 §4.3).
//!
//! ```text
//! +----------+
//! | Resource |
//! |  Owner   |
//! +----------+
//!      v
//!      |    Resource Owner
//!     (A) Password Credentials
//!      |
//!      v
//! +---------+                                  +---------------+
//! |         |>--(B)---- Resource Owner ------->|               |
//! |         |         Password Credentials     | Authorization |
//! | Client  |                                  |     Server    |
//! |         |<--(C)---- Access Token ---------<|               |
//! |         |    (w/ Optional Refresh Token)   |               |
//! +---------+                                  +---------------+
//! ```
//!
//! (B) is `grant_type=password&username=…&password=…[&scope=…]` at the token endpoint
//! ([§4.3.2](https://www.rfc-editor.org/rfc/rfc6749#section-4.3.2)); (C) is the access token
//! response ([§5.1](https://www.rfc-editor.org/rfc/rfc6749#section-5.1)).
//!
//! RFC 9700 §2.4 says this grant "MUST NOT be used": the client sees the user's password, and
//! there is no room for a second factor or a consent screen. It exists for first-party apps
//! migrating from a login form; prefer the authorization code grant with PKCE.

use std::sync::Arc;
use std::time::Duration;

use crate::store::UserVerifier;

use crate::builder::{AuthorizationServerBuilder, BuildError, Setups};
use crate::client::grant_scope;
use crate::client::Client;
use crate::error::OAuthError;
use crate::grant::context::{ensure_allowed, nonzero, Context, Grant, Shared};
use crate::grant::mfa_otp;
use crate::request::Params;
use crate::response::TokenOutcome;
use crate::store::MfaChallenge;
use crate::token::MfaTokenHash;
use crate::types::{FamilyId, GrantType, MfaToken, Password, Username};
use crate::user_auth::{Asker, SignIn, UserAuthenticator};

/// The password grant's settings.
#[derive(Clone)]
pub(crate) struct Setup {
    enabled: bool,
    mfa_ttl: Duration,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            enabled: false,
            mfa_ttl: Duration::from_secs(300),
        }
    }
}

impl AuthorizationServerBuilder {
    /// Enables the password grant (RFC 6749 §4.3), checking credentials with `verifier`, and
    /// with it the `mfa-otp` grant that finishes a sign-in owing a second factor.
    ///
    /// Brute-force protection is on unless [`disable_login_limits`](Self::disable_login_limits)
    /// is called.
    pub fn enable_password_grant(mut self, verifier: Arc<dyn UserVerifier>) -> Self {
        self.verifier = Some(verifier);
        self.setup::<Setup>().enabled = true;
        self.setup::<mfa_otp::Setup>().enabled = true;
        self
    }

    /// How long an `mfa_token` lives. Default 5 minutes.
    pub fn mfa_token_lifetime(mut self, lifetime: Duration) -> Self {
        self.setup::<Setup>().mfa_ttl = lifetime;
        self
    }
}

/// Makes the grant if the builder enabled it.
pub(crate) fn build(
    setups: &Setups,
    shared: &Shared<'_>,
) -> Result<Option<PasswordGrant>, BuildError> {
    let setup = setups.read::<Setup>();
    let mfa_ttl = nonzero(setup.mfa_ttl)?;
    Ok(match shared.users {
        Some(users) if setup.enabled => Some(PasswordGrant {
            users: users.clone(),
            mfa_ttl,
        }),
        _ => None,
    })
}

/// The password grant's handler: it checks credentials through the shared authenticator.
pub(crate) struct PasswordGrant {
    pub(crate) users: Arc<UserAuthenticator>,
    /// How long an `mfa_token` lives.
    pub(crate) mfa_ttl: time::Duration,
}

impl PasswordGrant {
    /// Handles `grant_type=password` (RFC 6749 §4.3.2).
    pub(crate) async fn handle(
        &self,
        ctx: &Context<'_>,
        client: &Client,
        params: &Params<'_>,
    ) -> Result<TokenOutcome, OAuthError> {
        ensure_allowed(client, GrantType::Password)?;
        // RFC 6749 §4.3.2: username REQUIRED, password REQUIRED, scope OPTIONAL.
        let username = Username::new(params.require("username")?);
        let password = Password::new(params.require("password")?);
        let granted = grant_scope(client, params.get("scope"))?;
        let resources = ctx.audience(params, &[], client)?;
        let asker = Asker {
            client: &client.id,
            authenticated: true,
            caller: ctx.caller,
        };
        let owner = match self.users.authenticate(asker, &username, password).await? {
            SignIn::Complete(owner) => owner,
            SignIn::SecondFactorRequired(owner) => {
                // The password was right: the client gets an mfa_token bound to the user, itself
                // and the scope, to finish with the mfa-otp grant (grant/mfa_otp.rs).
                let token = MfaToken::generate();
                let challenge = MfaChallenge {
                    client_id: client.id.clone(),
                    user_id: owner.id,
                    username: owner.username,
                    scope: granted.scope,
                    show_scope: granted.differs_from_request,
                    resources,
                    // Whole seconds, as every record keeps, so all stores agree on the instant.
                    expires_at: ctx
                        .now
                        .replace_nanosecond(0)
                        .unwrap_or(ctx.now)
                        .saturating_add(self.mfa_ttl),
                };
                self.users
                    .mfa
                    .save_mfa_token(&MfaTokenHash::of(&token), &challenge, ctx.now)
                    .await?;
                return Ok(TokenOutcome::MfaRequired(token));
            }
        };

        let with_refresh = ctx.issues_refresh_token(client);
        let minted = ctx
            .mint(
                Grant {
                    client,
                    owner: Some(owner),
                    refresh_scope: granted.scope.clone(),
                    scope: granted.scope,
                    family_id: Some(FamilyId::generate()),
                    show_scope: granted.differs_from_request,
                    audience: resources.clone(),
                    resources,
                },
                with_refresh,
            )
            .await?;
        Ok(ctx.save_fresh(minted).await?.into())
    }
}
