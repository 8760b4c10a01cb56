//! The authorization endpoint (RFC 6749 §3.1) and the user's decision: the code flow's
//! endpoints, over the authorization code grant (`grant/authorization_code.rs`).

use super::AuthorizationServer;
use crate::authorize::{AuthorizationRequest, AuthorizeOutcome, Redirect};
use crate::error::OAuthError;
use crate::grant::authorization_code::AuthorizationCodeGrant;
use crate::reason::Reason;
use crate::scope::Scope;
use crate::store::PendingAuthorization;
use crate::types::{AuthorizationRequestId, ResourceOwner};

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
    /// redirect URI cannot be trusted.
    pub async fn authorize(&self, request: AuthorizationRequest) -> AuthorizeOutcome {
        let Some(code) = self.inner.grants.authorization_code() else {
            return AuthorizeOutcome::Invalid(
                OAuthError::unsupported_response_type(
                    "this server has no authorization endpoint enabled",
                )
                .with_reason(Reason::AuthorizationEndpointDisabled),
            );
        };
        code.authorize(&*self.inner.clients, &request, self.inner.clock.now())
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

    /// The authorization endpoint for a request the host approves without asking: the user is
    /// already signed in and has consented to this client before, or the client is the host's
    /// own and needs no consent page. Validates `request` exactly as
    /// [`authorize`](Self::authorize) does, then answers as [`approve`](Self::approve) would,
    /// in one call: nothing waits in the store in between, so there is no request id, and the
    /// pending-request bounds do not apply.
    ///
    /// Answers the redirect with a code (`?code=…&state=…&iss=…`), or for the implicit grant
    /// an access token in the fragment; a request the client must hear refused (an unknown
    /// scope, PKCE missing, …) is a redirect with `error` too. `scope` narrows what was asked
    /// (`None` grants it all).
    ///
    /// Deciding that the user need not be asked is the host's. RFC 6749 §10.2: a server "SHOULD
    /// NOT process repeated authorization requests automatically (without active resource owner
    /// interaction) without authenticating the client or relying on other measures" that the
    /// request comes from the original client; here the code goes only to a redirect URI the
    /// client registered, exactly matched, and PKCE binds it to the client that asked.
    ///
    /// # Errors
    ///
    /// To show as a page, never to redirect: what [`authorize`](Self::authorize) answers as
    /// [`AuthorizeOutcome::Invalid`] (the client or its redirect URI cannot be trusted), and
    /// `invalid_scope` when `scope` exceeds what was asked.
    pub async fn authorize_and_approve(
        &self,
        request: AuthorizationRequest,
        user: impl Into<ResourceOwner>,
        scope: Option<Scope>,
    ) -> Result<Redirect, OAuthError> {
        let ctx = self.context(self.inner.clock.now());
        let code = self.inner.grants.authorization_code().ok_or_else(|| {
            OAuthError::unsupported_response_type(
                "this server has no authorization endpoint enabled",
            )
            .with_reason(Reason::AuthorizationEndpointDisabled)
        })?;
        code.authorize_and_approve(
            &ctx,
            self.inner.grants.implicit(),
            &request,
            user.into(),
            scope,
        )
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
