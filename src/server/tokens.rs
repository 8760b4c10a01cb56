//! Revocation (RFC 7009) and introspection (RFC 7662): a client asks about a token it holds.

use super::{AuthorizationServer, Trace};
use crate::error::OAuthError;
use crate::reason::Reason;
use crate::request::TokenRequest;
use crate::response::Response;
use crate::types::ClientId;

impl AuthorizationServer {
    /// The revocation endpoint (RFC 7009): the client authenticates as at the token endpoint
    /// and gives a token back. Answers 200 with an empty body for a revoked or unknown token,
    /// and the RFC 6749 §5.2 error response otherwise (`unauthorized_client` for a token issued
    /// to another client, which stays valid).
    pub async fn revoke(&self, request: TokenRequest) -> Response {
        let now = self.inner.clock.now();
        let mut trace = Trace::default();
        let result = match self.client_request(&request, &mut trace).await {
            Ok((client, params)) => {
                crate::revocation::revoke(&*self.inner.tokens, &client, &params, now).await
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => Response::new(200).no_store(),
            Err(error) => {
                tracing::warn!(
                    client_id = trace.client_id.as_ref().map(ClientId::as_str),
                    error = error.code().as_str(),
                    reason = error.reason().map(Reason::as_str),
                    "revocation refused"
                );
                error.into_token_response()
            }
        }
    }

    /// The introspection endpoint (RFC 7662): a confidential client asks whether a token is
    /// live. Answers `active: true` with the token's scope, client, subject, username, type,
    /// issue and expiry times, or exactly `{"active":false}`.
    ///
    /// Who sees what (RFC 7662 §4): a client declared with
    /// [`resource_servers`](crate::AuthorizationServerBuilder::resource_servers) sees every access
    /// token; any other client only tokens issued to itself; a refresh token is shown only to
    /// its own client. Everything else is answered as inactive, so a caller cannot scan for
    /// tokens it has no business with.
    pub async fn introspect(&self, request: TokenRequest) -> Response {
        let now = self.inner.clock.now();
        let mut trace = Trace::default();
        let result = match self.client_request(&request, &mut trace).await {
            // RFC 7662 §2.1: the endpoint "MUST require some form of authorization"; a public
            // client proves nothing.
            Ok((client, _)) if client.is_public() => Err(OAuthError::invalid_client(
                "introspection needs an authenticated confidential client",
            )
            .with_reason(Reason::PublicIntrospection)),
            Ok((client, params)) => {
                let caller = crate::introspection::Caller {
                    client: &client.id,
                    resource_server: self.inner.resource_servers.contains(&client.id),
                };
                crate::introspection::introspect(
                    &*self.inner.tokens,
                    self.inner.issuer.as_deref(),
                    caller,
                    &params,
                    now,
                )
                .await
            }
            Err(e) => Err(e),
        };
        result.unwrap_or_else(|error| {
            tracing::warn!(
                client_id = trace.client_id.as_ref().map(ClientId::as_str),
                error = error.code().as_str(),
                reason = error.reason().map(Reason::as_str),
                "introspection refused"
            );
            error.into_token_response()
        })
    }
}
