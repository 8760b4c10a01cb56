//! The authorization endpoint (RFC 6749 §3.1) and the user's decision: the code flow's
//! endpoints, over the authorization code grant (`grant/authorization_code.rs`).

use super::AuthorizationServer;
use crate::authorize::{
    AuthorizationRequest, AuthorizeOutcome, Decision, Redirect, ValidAuthorization,
};
use crate::error::OAuthError;
use crate::grant::authorization_code::AuthorizationCodeGrant;
use crate::reason::Reason;
use crate::scope::Scope;
use crate::store::PendingAuthorization;
use crate::types::{AuthorizationRequestId, ResourceOwner};

/// The authorization endpoint's answer when the server has none (RFC 6749 §4.1.2.1).
fn no_authorization_endpoint() -> OAuthError {
    OAuthError::unsupported_response_type("this server has no authorization endpoint enabled")
        .with_reason(Reason::AuthorizationEndpointDisabled)
}

fn endpoint_disabled() -> OAuthError {
    OAuthError::invalid_request("this server has no authorization endpoint enabled")
        .with_reason(Reason::AuthorizationEndpointDisabled)
}

impl AuthorizationServer {
    /// The authorization endpoint (RFC 6749 §3.1, §4.1.1, §4.2.1): validates the request.
    ///
    /// Answers [`AuthorizeOutcome::Pending`] for a valid request (draw the login and consent
    /// page), [`AuthorizeOutcome::Redirect`] for an error the client must hear, and
    /// [`AuthorizeOutcome::Invalid`] for an error to show as a page, because the client or its
    /// redirect URI cannot be trusted. The same as
    /// [`validate_authorization`](Self::validate_authorization), then
    /// [`decide`](Self::decide) with [`Decision::Ask`].
    pub async fn authorize(&self, request: AuthorizationRequest) -> AuthorizeOutcome {
        let Some(code) = self.inner.grants.authorization_code() else {
            return AuthorizeOutcome::Invalid(no_authorization_endpoint());
        };
        // One instant for both halves: a request is never past its lifetime when it is made.
        let ctx = self.context(self.inner.clock.now());
        match code.validate_authorization(&ctx, &request).await {
            Ok(valid) => {
                code.decide(&ctx, self.inner.grants.implicit(), valid, Decision::Ask)
                    .await
            }
            Err(refused) => refused,
        }
    }

    /// The authorization endpoint's first half, for a host that may decide without its page:
    /// validates the request exactly as [`authorize`](Self::authorize) does and answers it, with
    /// its client, for the host to look at (and look things up about) before
    /// [`decide`](Self::decide). Nothing is stored.
    ///
    /// # Errors
    ///
    /// The answer to send for a refused request: [`AuthorizeOutcome::Redirect`] with the error
    /// for the client, or [`AuthorizeOutcome::Invalid`] for a page.
    pub async fn validate_authorization(
        &self,
        request: AuthorizationRequest,
    ) -> Result<ValidAuthorization, AuthorizeOutcome> {
        let Some(code) = self.inner.grants.authorization_code() else {
            return Err(AuthorizeOutcome::Invalid(no_authorization_endpoint()));
        };
        let ctx = self.context(self.inner.clock.now());
        code.validate_authorization(&ctx, &request).await
    }

    /// The authorization endpoint's second half: answers a validated request as the host
    /// decided. [`Decision::Ask`] keeps it waiting for the login and consent page, as
    /// [`authorize`](Self::authorize) does; [`Decision::Approve`] answers the redirect with the
    /// code (or, for `response_type=token`, the access token) at once, and [`Decision::Deny`]
    /// with `error=access_denied`, nothing waiting in the store for either.
    ///
    /// Approving at once is for a user who is signed in (RFC 6749 §3.1: the server "MUST first
    /// verify the identity of the resource owner") and has already agreed to this client and this
    /// scope, or for a confidential client of the host's own that needs no consent page. RFC 6749
    /// §10.2: a server "SHOULD NOT process repeated authorization requests automatically (without
    /// active resource owner interaction) without authenticating the client or relying on other
    /// measures to ensure that the repeated request comes from the original client and not an
    /// impersonator". A confidential client is authenticated when it exchanges the code; a public
    /// client is not, and anyone can send its `client_id`: only its registered redirect URI,
    /// matched exactly, keeps the code from an impersonator. For a native app, RFC 8252 §8.6
    /// says that unless the client's identity can be proven, the request "SHOULD be processed as
    /// if no previous request had been approved". An implicit request (`response_type=token`)
    /// has no exchange at all. [`Decision::Ask`] is the safe answer for these.
    ///
    /// Before approving or denying, the client is read again, as [`approve`](Self::approve) and
    /// [`deny`](Self::deny) read it: [`AuthorizeOutcome::Invalid`] when it is gone, or no longer
    /// has the grant or the redirect URI. [`AuthorizeOutcome::Invalid`] also answers a mistake of
    /// the host's: an approved scope wider than the request, a request decided after its lifetime
    /// (the
    /// [`authorization_request_lifetime`](crate::AuthorizationServerBuilder::authorization_request_lifetime)
    /// since it was validated), or one validated by another server.
    pub async fn decide(&self, valid: ValidAuthorization, decision: Decision) -> AuthorizeOutcome {
        let Some(code) = self.inner.grants.authorization_code() else {
            return AuthorizeOutcome::Invalid(no_authorization_endpoint());
        };
        let ctx = self.context(self.inner.clock.now());
        code.decide(&ctx, self.inner.grants.implicit(), valid, decision)
            .await
    }

    /// The pending authorization request behind `id`, if it is still waiting: for drawing the
    /// consent page (again, after a wrong password). A read; nothing is spent.
    ///
    /// # Errors
    ///
    /// `server_error`/`temporarily_unavailable` when the store fails.
    pub async fn authorization_request(
        &self,
        id: &AuthorizationRequestId,
    ) -> Result<Option<PendingAuthorization>, OAuthError> {
        match self.inner.grants.authorization_code() {
            Some(code) => code.find_request(id, self.inner.clock.now()).await,
            None => Ok(None),
        }
    }

    /// The user approved: answers the redirect with a code (`?code=…&state=…&iss=…`) or, for
    /// the implicit grant, an access token in the fragment. `scope` narrows what was asked
    /// (`None` grants it all). The request is spent.
    ///
    /// # Errors
    ///
    /// To show as a page, never to redirect: `invalid_request` when the request is unknown,
    /// expired or already decided; `invalid_scope` when `scope` exceeds what was asked.
    pub async fn approve(
        &self,
        id: &AuthorizationRequestId,
        user: impl Into<ResourceOwner>,
        scope: Option<Scope>,
    ) -> Result<Redirect, OAuthError> {
        let ctx = self.context(self.inner.clock.now());
        self.code_flow()?
            .approve(&ctx, self.inner.grants.implicit(), id, user.into(), scope)
            .await
    }

    /// The user declined: answers the redirect with `error=access_denied`, `state` and `iss`
    /// (RFC 6749 §4.1.2.1). The request is spent.
    ///
    /// # Errors
    ///
    /// `invalid_request`, to show as a page, when the request is unknown, expired or already
    /// decided, or when the client's registration changed (it no longer has the redirect URI,
    /// or the grant): the request then stays waiting, and nothing is redirected.
    pub async fn deny(&self, id: &AuthorizationRequestId) -> Result<Redirect, OAuthError> {
        let ctx = self.context(self.inner.clock.now());
        self.code_flow()?.deny(&ctx, id).await
    }

    fn code_flow(&self) -> Result<&AuthorizationCodeGrant, OAuthError> {
        self.inner
            .grants
            .authorization_code()
            .ok_or_else(endpoint_disabled)
    }
}
