//! The device flow's endpoints (RFC 8628): the device authorization endpoint, and the calls of
//! the host's verification page, over the device code grant (`grant/device_code.rs`).

use std::net::IpAddr;

use super::{AuthorizationServer, Trace};
use crate::error::OAuthError;
use crate::grant::device_code::{DeviceCodeGrant, DeviceConfirmation, DeviceRequest};
use crate::reason::Reason;
use crate::request::TokenRequest;
use crate::response::Response;
use crate::scope::Scope;
use crate::types::{ClientId, ResourceOwner, UserCode};

impl AuthorizationServer {
    /// The device authorization endpoint (RFC 8628 §3.1): the client authenticates as at the
    /// token endpoint (a public client sends `client_id`) and may send `scope`. Answers the §3.2
    /// response (`device_code`, `user_code` as `XXXX-XXXX`, `verification_uri`,
    /// `verification_uri_complete`, `expires_in`, `interval`) or the RFC 6749 §5.2 error
    /// response, both with `Cache-Control: no-store`.
    pub async fn device_authorization(&self, request: TokenRequest) -> Response {
        let now = self.inner.clock.now();
        let mut trace = Trace::default();
        let result = match (
            self.inner.grants.device_code(),
            self.client_request(&request, &mut trace).await,
        ) {
            (None, _) => Err(OAuthError::unauthorized_client(
                "the device authorization grant is not enabled on this server",
            )
            .with_reason(Reason::DeviceGrantDisabled)),
            (Some(device), Ok((client, params))) => device.authorize(&client, &params, now).await,
            (Some(_), Err(e)) => Err(e),
        };
        result.unwrap_or_else(|error| {
            tracing::warn!(
                client_id = trace.client_id.as_ref().map(ClientId::as_str),
                error = error.code().as_str(),
                reason = error.reason().map(Reason::as_str),
                "device authorization refused"
            );
            error.into_token_response()
        })
    }

    fn device(&self) -> Result<&DeviceCodeGrant, OAuthError> {
        self.inner.grants.device_code().ok_or_else(|| {
            OAuthError::invalid_request("the device authorization grant is not enabled")
                .with_reason(Reason::DeviceGrantDisabled)
        })
    }

    /// The pending device request behind a user code typed on the verification page (RFC 8628
    /// §3.3), for the confirmation page that shows which client asks for which scope before
    /// the person signs in and decides (§5.4). Case, spaces and dashes in the code do not
    /// matter.
    ///
    /// `caller` is the address the page's request came from: wrong codes count against it, a
    /// lookup holding a place until it is answered, so concurrent guesses are bounded too
    /// (§5.1). Put the answer's [`confirmation`](DeviceRequest::confirmation) in the page's
    /// form: [`approve_device`](Self::approve_device) and [`deny_device`](Self::deny_device)
    /// take it back, so that a decision counts only for the request that was shown.
    ///
    /// # Errors
    ///
    /// `invalid_request` for an unknown, expired or already decided code, or too many wrong
    /// codes (with `retry_after`); `server_error`/`temporarily_unavailable` when a store fails.
    pub async fn device_request(
        &self,
        user_code: &UserCode,
        caller: IpAddr,
    ) -> Result<DeviceRequest, OAuthError> {
        self.device()?
            .find(user_code, caller, self.inner.clock.now())
            .await
    }

    /// `user` approves the device request behind `user_code` that the confirmation page showed
    /// (`confirmation`, from [`device_request`](Self::device_request)), for `scope` (a part of
    /// what the device asked for; `None` grants it all). The device's next poll gets its
    /// tokens.
    ///
    /// # Errors
    ///
    /// As [`device_request`](Self::device_request); `invalid_request` (reason
    /// `device_confirmation_mismatch`) when the code now names another request than the one
    /// shown; `invalid_scope` when `scope` is not a part of what was asked; `invalid_request`
    /// when the client may no longer use the grant.
    pub async fn approve_device(
        &self,
        user_code: &UserCode,
        confirmation: &DeviceConfirmation,
        caller: IpAddr,
        user: impl Into<ResourceOwner>,
        scope: Option<Scope>,
    ) -> Result<(), OAuthError> {
        let ctx = self.context(self.inner.clock.now());
        self.device()?
            .approve(&ctx, user_code, confirmation, caller, user.into(), scope)
            .await
    }

    /// The person denies the device request behind `user_code` that the confirmation page
    /// showed: the device's next poll gets `access_denied`.
    ///
    /// # Errors
    ///
    /// As [`approve_device`](Self::approve_device).
    pub async fn deny_device(
        &self,
        user_code: &UserCode,
        confirmation: &DeviceConfirmation,
        caller: IpAddr,
    ) -> Result<(), OAuthError> {
        let ctx = self.context(self.inner.clock.now());
        self.device()?
            .deny(&ctx, user_code, confirmation, caller)
            .await
    }
}
