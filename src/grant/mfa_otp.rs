//! The second step of a password sign-in with a second factor: the `mfa-otp` grant, as in
//! Auth0's "Resource Owner Password Flow with MFA".
//!
//! ```text
//! Client                                               Authorization server
//!   |--(1) grant_type=password&username=…&password=… ---------->|
//!   |<-(2) 403 {"error":"mfa_required","mfa_token":"…"} --------|  password right, 2nd factor owed
//!   |--(3) grant_type=http://auth0.com/oauth/grant-type/mfa-otp |
//!   |        &mfa_token=…&otp=123456 ---------------------------->|
//!   |<-(4) 200 the tokens the password grant would have issued -|
//! ```
//!
//! The `mfa_token` is 256 random bits, stored only as a hash, bound to the user, the client and
//! the scope of step (1), lives 5 minutes by default, and yields tokens once. A wrong one-time code
//! leaves it usable but counts against the username's sign-in limit; a code accepted once is
//! refused for the rest of its validity (RFC 6238 §5.2).

use std::sync::Arc;

use crate::builder::{BuildError, Setups};
use crate::client::Client;
use crate::error::OAuthError;
use crate::grant::context::{ensure_allowed, fresh_family_refused, Context, Grant, Shared};
use crate::reason::Reason;
use crate::request::Params;
use crate::response::TokenResponse;
use crate::token::MfaTokenHash;
use crate::types::{FamilyId, GrantType, MfaToken, OneTimeCode, ResourceOwner};
use crate::user_auth::{Asker, UserAuthenticator};

/// The `mfa-otp` grant's settings: it is enabled with the password grant
/// ([`enable_password_grant`](crate::AuthorizationServerBuilder::enable_password_grant)).
#[derive(Clone, Default)]
pub(crate) struct Setup {
    pub(crate) enabled: bool,
}

/// Makes the grant if the builder enabled it.
pub(crate) fn build(
    setups: &Setups,
    shared: &Shared<'_>,
) -> Result<Option<MfaOtpGrant>, BuildError> {
    Ok(match shared.users {
        // Without a verifier that checks codes, no mfa_token could ever be finished.
        Some(users) if setups.read::<Setup>().enabled && users.verifier.checks_one_time_codes() => {
            Some(MfaOtpGrant {
                users: users.clone(),
            })
        }
        _ => None,
    })
}

/// The `mfa-otp` grant's handler.
pub(crate) struct MfaOtpGrant {
    pub(crate) users: Arc<UserAuthenticator>,
}

fn unknown_token() -> OAuthError {
    OAuthError::invalid_grant("the mfa_token is unknown, expired or already used")
        .with_reason(Reason::MfaTokenUnknown)
}

impl MfaOtpGrant {
    /// Handles `grant_type=http://auth0.com/oauth/grant-type/mfa-otp`: `mfa_token` and `otp`,
    /// both required.
    pub(crate) async fn handle(
        &self,
        ctx: &Context<'_>,
        client: &Client,
        params: &Params<'_>,
    ) -> Result<TokenResponse, OAuthError> {
        // The second step of the password grant: the same clients may take it.
        ensure_allowed(client, GrantType::Password)?;
        let raw_token = params.require("mfa_token")?;
        let otp = OneTimeCode::new(params.require("otp")?);
        let hash = MfaTokenHash::of(&MfaToken::new(raw_token));
        let mfa = &self.users.mfa;

        // Validate first, spend last: a wrong code leaves the mfa_token for another try.
        let challenge = mfa
            .find_mfa_token(&hash, ctx.now)
            .await?
            .ok_or_else(unknown_token)?;
        if challenge.client_id != client.id {
            return Err(
                OAuthError::invalid_grant("the mfa_token was issued to another client")
                    .with_reason(Reason::MfaTokenOtherClient),
            );
        }
        // RFC 8707 §2.2: the sign-in's tokens are for the resources the password request named,
        // which this request may narrow.
        let audience = ctx.audience(params, &challenge.resources, client)?;
        let asker = Asker {
            client: &client.id,
            authenticated: true,
            caller: ctx.caller,
        };
        self.users
            .check_otp(asker, &challenge.user_id, otp, ctx.now)
            .await?;
        // Single use: of concurrent requests with one mfa_token, one gets here with it.
        let challenge = mfa
            .take_mfa_token(&hash, ctx.now)
            .await?
            .ok_or_else(unknown_token)?;

        let with_refresh = ctx.issues_refresh_token(client);
        let minted = ctx
            .mint(
                Grant {
                    client,
                    owner: Some(ResourceOwner {
                        id: challenge.user_id.clone(),
                        username: challenge.username.clone(),
                    }),
                    refresh_scope: challenge.scope.clone(),
                    scope: challenge.scope.clone(),
                    family_id: Some(FamilyId::generate()),
                    show_scope: challenge.show_scope,
                    audience,
                    resources: challenge.resources.clone(),
                },
                with_refresh,
            )
            .await;
        // If saving fails, the mfa_token is put back: the user finishes with their next
        // one-time code instead of signing in again.
        let give_back = mfa.save_mfa_token(&hash, &challenge, ctx.now);
        ctx.save_or_give_back(minted, fresh_family_refused, "mfa_token", give_back)
            .await
    }
}
