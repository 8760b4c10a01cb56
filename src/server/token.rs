//! The token endpoint (RFC 6749 §3.2): parses, authenticates the client, and hands the request
//! to the enabled grant's handler.

use time::OffsetDateTime;

use super::{AuthorizationServer, Trace};
use crate::client_auth::{authenticate, credentials};
use crate::error::OAuthError;
use crate::grant::context::Context;
use crate::reason::Reason;
use crate::request::{token_params, TokenRequest};
use crate::response::{Response, TokenOutcome};
use crate::types::{ClientId, GrantType};

impl AuthorizationServer {
    /// The token endpoint (RFC 6749 §3.2): answers an access token response (§5.1) or an error
    /// response (§5.2), both with `Cache-Control: no-store` and `Pragma: no-cache`.
    pub async fn token(&self, request: TokenRequest) -> Response {
        let now = self.inner.clock.now();
        let mut trace = Trace::default();
        match self.handle_token(&request, now, &mut trace).await {
            Ok(TokenOutcome::MfaRequired(mfa_token)) => {
                tracing::info!(
                    client_id = trace.client_id.as_ref().map(ClientId::as_str),
                    grant_type = trace.grant_type.map(GrantType::as_str),
                    auth_method = trace.auth_method,
                    reason = Reason::MfaRequired.as_str(),
                    "second factor required"
                );
                TokenOutcome::MfaRequired(mfa_token).into_response()
            }
            Ok(outcome) => {
                // The busiest line of all, one per token: at debug, so that a server logging at
                // info does not spend its time formatting it (refusals stay at warn).
                tracing::debug!(
                    client_id = trace.client_id.as_ref().map(ClientId::as_str),
                    grant_type = trace.grant_type.map(GrantType::as_str),
                    auth_method = trace.auth_method,
                    "token issued"
                );
                outcome.into_response()
            }
            Err(error) => {
                tracing::warn!(
                    client_id = trace.client_id.as_ref().map(ClientId::as_str),
                    grant_type = trace.grant_type.map(GrantType::as_str),
                    auth_method = trace.auth_method,
                    error = error.code().as_str(),
                    reason = error.reason().map(Reason::as_str),
                    "token request refused"
                );
                error.into_token_response()
            }
        }
    }

    async fn handle_token(
        &self,
        request: &TokenRequest,
        now: OffsetDateTime,
        trace: &mut Trace,
    ) -> Result<TokenOutcome, OAuthError> {
        let inner = &*self.inner;
        let params = token_params(request, inner.json_token_requests)?;
        let raw_grant = params.get("grant_type");
        trace.grant_type = raw_grant.and_then(GrantType::parse);
        let creds = credentials(request.authorization.as_deref(), &params)?;
        trace.client_id = Some(creds.client_id.clone());
        trace.auth_method = Some(creds.method.as_str());
        let client = authenticate(
            &*inner.clients,
            inner.client_secrets.as_ref(),
            request.caller,
            creds,
        )
        .await?;

        let raw_grant = params.require("grant_type")?;
        let grant = GrantType::parse(raw_grant);
        let ctx = Context {
            caller: request.caller,
            ..self.context(now)
        };
        let handler = grant.and_then(|grant| inner.grants.get(grant));
        if let Some(handler) = handler {
            if let Some(outcome) = handler.token(&ctx, &client, &params).await {
                return outcome;
            }
        }
        Err(OAuthError::unsupported_grant_type(format!(
            "the grant type {raw_grant} is not supported by this server"
        ))
        .with_reason(Reason::GrantNotEnabled))
    }
}
