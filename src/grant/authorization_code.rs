//! The authorization code grant (RFC 6749 §4.1), with PKCE (RFC 7636).
//!
//! ```text
//! +----------+
//! | Resource |
//! |   Owner  |
//! +----------+
//!      ^
//!      |
//!     (B)
//! +----|-----+          Client Identifier      +---------------+
//! |         -+----(A)-- & Redirection URI ---->|               |
//! |  User-   |                                 | Authorization |
//! |  Agent  -+----(B)-- User authenticates --->|     Server    |
//! |          |                                 |               |
//! |         -+----(C)-- Authorization Code ---<|               |
//! +-|----|---+                                 +---------------+
//!   |    |                                         ^      v
//!  (A)  (C)                                        |      |
//!   |    |                                         |      |
//!   ^    v                                         |      |
//! +---------+                                      |      |
//! |         |>---(D)-- Authorization Code ---------'      |
//! |  Client |          & Redirection URI                  |
//! |         |                                             |
//! |         |<---(E)----- Access Token -------------------'
//! +---------+       (w/ Optional Refresh Token)
//! ```
//!
//! (A) is [`authorize`](crate::AuthorizationServer::authorize); (B) is the host's login and
//! consent page; (C) is [`approve`](crate::AuthorizationServer::approve), which issues the code
//! here. When the host decides without its page,
//! [`validate_authorization`](crate::AuthorizationServer::validate_authorization) is (A) and
//! [`decide`](crate::AuthorizationServer::decide) is (C) at once. (D) and (E) are
//! `grant_type=authorization_code` at the token endpoint
//! ([§4.1.3](https://www.rfc-editor.org/rfc/rfc6749#section-4.1.3)), handled here.

use crate::resource;
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use crate::authorize::{
    error_redirect, redirect, validate, AuthorizationRequest, AuthorizeOutcome, AuthorizeSettings,
    Decision, Redirect, Refusal, ValidAuthorization,
};
use crate::builder::{AuthorizationServerBuilder, BuildError, Setups};
use crate::client::Client;
use crate::error::OAuthError;
use crate::grant::context::{ensure_allowed, nonzero, Context, Grant, Shared};
use crate::grant::implicit::{self, ImplicitGrant};
use crate::pkce::is_valid_verifier_syntax;
use crate::reason::Reason;
use crate::request::Params;
use crate::response::TokenResponse;
use crate::scope::Scope;
use crate::store::{
    Admission, ClientStore, CodeGrant, CodeLookup, CodeRestore, CodeSpend, CodeStore,
    PendingAuthorization, PendingLimits, SpentCode,
};
use crate::token::{AuthorizationCodeHash, RequestIdHash};
use crate::types::{
    AuthorizationCode, AuthorizationRequestId, FamilyId, GrantType, ResourceOwner, ResponseType,
};

fn invalid() -> OAuthError {
    OAuthError::invalid_grant(
        "the authorization code is invalid, expired, already used, or was issued to another client",
    )
}

/// The authorization code grant's settings, as the builder methods below set them.
#[derive(Clone)]
pub(crate) struct Setup {
    codes: Option<Arc<dyn CodeStore>>,
    code_ttl: Duration,
    request_ttl: Duration,
    require_pkce: bool,
    allow_plain_pkce: bool,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            codes: None,
            code_ttl: Duration::from_secs(60),
            request_ttl: Duration::from_secs(600),
            require_pkce: false,
            allow_plain_pkce: false,
        }
    }
}

impl AuthorizationServerBuilder {
    /// Enables the authorization endpoint and the authorization code grant (RFC 6749 §4.1),
    /// keeping pending requests and codes in `codes`. Needs an [`issuer`](Self::issuer).
    pub fn enable_authorization_code_grant(mut self, codes: Arc<dyn CodeStore>) -> Self {
        self.setup::<Setup>().codes = Some(codes);
        self
    }

    /// Requires PKCE from every client, confidential ones too (RFC 9700 §2.1.1 recommends it).
    /// Public clients always need it.
    pub fn require_pkce(mut self, require: bool) -> Self {
        self.setup::<Setup>().require_pkce = require;
        self
    }

    /// Accepts `code_challenge_method=plain` (RFC 7636 §4.2). Off by default: only `S256`.
    pub fn allow_plain_pkce(mut self, allow: bool) -> Self {
        self.setup::<Setup>().allow_plain_pkce = allow;
        self
    }

    /// How long authorization codes live. Default 60 s; at most 10 minutes (RFC 6749 §4.1.2).
    pub fn authorization_code_lifetime(mut self, lifetime: Duration) -> Self {
        self.setup::<Setup>().code_ttl = lifetime;
        self
    }

    /// How long a validated authorization request waits for the user's decision. Default 10
    /// minutes.
    pub fn authorization_request_lifetime(mut self, lifetime: Duration) -> Self {
        self.setup::<Setup>().request_ttl = lifetime;
        self
    }
}

/// Makes the grant, with the authorization endpoint, if the builder enabled it.
pub(crate) fn build(
    setups: &Setups,
    shared: &Shared<'_>,
) -> Result<Option<AuthorizationCodeGrant>, BuildError> {
    let setup = setups.read::<Setup>();
    let code_ttl = nonzero(setup.code_ttl)?;
    let request_ttl = nonzero(setup.request_ttl)?;
    let implicit = setups.read::<implicit::Setup>().enabled;
    let Some(codes) = setup.codes else {
        if implicit {
            return Err(BuildError::ImplicitWithoutAuthorizationEndpoint);
        }
        return Ok(None);
    };
    if setup.code_ttl > Duration::from_secs(600) {
        return Err(BuildError::CodeLifetimeTooLong);
    }
    let issuer = shared.issuer.ok_or(BuildError::IssuerRequired)?;
    Ok(Some(AuthorizationCodeGrant {
        codes,
        code_ttl,
        endpoint: AuthorizeSettings {
            implicit,
            require_pkce: setup.require_pkce,
            allow_plain_pkce: setup.allow_plain_pkce,
            request_ttl,
            issuer: issuer.to_owned(),
            resources: shared.resources.clone(),
        },
        limits: shared.pending_limits,
        identity: Arc::new(()),
    }))
}

/// The authorization code grant: the authorization endpoint, codes issued on approval, and
/// their exchange for tokens.
pub(crate) struct AuthorizationCodeGrant {
    pub(crate) codes: Arc<dyn CodeStore>,
    pub(crate) code_ttl: time::Duration,
    /// The authorization endpoint's settings.
    pub(crate) endpoint: AuthorizeSettings,
    /// The bounds on pending requests, per client and in all.
    pub(crate) limits: PendingLimits,
    /// This server's mark on what it validated: a [`ValidAuthorization`] is decided only by the
    /// server that made it.
    identity: Arc<()>,
}

fn pending_unknown() -> OAuthError {
    OAuthError::invalid_request("the authorization request is unknown, expired, or already decided")
        .with_reason(Reason::PendingUnknown)
}

impl AuthorizationCodeGrant {
    /// Step (A), first half: validates an authorization request (see
    /// [`AuthorizationServer::validate_authorization`](crate::AuthorizationServer::validate_authorization)).
    /// A refusal is the answer to send.
    pub(crate) async fn validate_authorization(
        &self,
        ctx: &Context<'_>,
        request: &AuthorizationRequest,
    ) -> Result<ValidAuthorization, AuthorizeOutcome> {
        match validate(ctx.clients, &self.endpoint, request, ctx.now).await {
            Ok((request, client)) => Ok(ValidAuthorization {
                request,
                client,
                validated_by: Arc::clone(&self.identity),
            }),
            Err(refusal) => Err(match self.refused(refusal) {
                Ok(redirect) => AuthorizeOutcome::Redirect(redirect),
                Err(error) => AuthorizeOutcome::Invalid(error),
            }),
        }
    }

    /// Step (A), second half: answers a validated request as the host decided. `Ask` keeps it
    /// waiting for the user's decision (step (C) then comes through `approve` or `deny`, which
    /// check the client again); `Approve` and `Deny` are step (C) at once, with nothing waiting in
    /// the store, once the client is checked again as `approve` and `deny` check it.
    pub(crate) async fn decide(
        &self,
        ctx: &Context<'_>,
        implicit: Option<&ImplicitGrant>,
        valid: ValidAuthorization,
        decision: Decision,
    ) -> AuthorizeOutcome {
        let ValidAuthorization {
            request,
            validated_by,
            ..
        } = valid;
        if !Arc::ptr_eq(&validated_by, &self.identity) {
            tracing::warn!(client_id = %request.client_id, "authorization request decided by a server that did not validate it");
            return AuthorizeOutcome::Invalid(pending_unknown());
        }
        if request.expires_at <= ctx.now {
            // Validated too long ago: what was checked may no longer hold.
            tracing::warn!(client_id = %request.client_id, "authorization request decided after its lifetime");
            return AuthorizeOutcome::Invalid(pending_unknown());
        }
        // As `approve` orders its checks: the scope, then the client.
        let approved = match decision {
            Decision::Ask => return self.keep_waiting(request, ctx.now).await,
            Decision::Approve { user, scope } => match approved_scope(&request, scope) {
                Ok(scope) => Some((user, scope)),
                Err(error) => {
                    tracing::warn!(client_id = %request.client_id, error = error.code().as_str(), reason = error.reason().map(Reason::as_str), "approval refused (shown as a page)");
                    return AuthorizeOutcome::Invalid(error);
                }
            },
            Decision::Deny => None,
        };
        // The client may have changed since the request was validated: the redirect goes only
        // to a URI it still has registered, for a grant it may still use.
        let client = match still_allowed(ctx.clients, &request).await {
            Ok(client) => client,
            Err(error) => return AuthorizeOutcome::Invalid(error),
        };
        match approved {
            Some((user, scope)) => AuthorizeOutcome::Redirect(
                self.issue_approved(ctx, implicit, &client, request, user, scope, false)
                    .await,
            ),
            None => {
                tracing::info!(client_id = %request.client_id, waited = false, "authorization denied");
                AuthorizeOutcome::Redirect(self.denied(&request))
            }
        }
    }

    /// Keeps a validated request waiting for the user's decision, within the pending bounds.
    async fn keep_waiting(
        &self,
        pending: PendingAuthorization,
        now: OffsetDateTime,
    ) -> AuthorizeOutcome {
        let id = AuthorizationRequestId::generate();
        let saved = self
            .codes
            .save_pending(&RequestIdHash::of(&id), &pending, &self.limits, now)
            .await;
        match saved {
            Ok(Admission::Admitted) => {}
            Ok(Admission::Full { retry_after }) => {
                // Anyone can make these requests: past the bound, refuse rather than store more,
                // without sending the browser on to the client.
                tracing::warn!(client_id = %pending.client_id, "authorization request refused: too many are waiting");
                return AuthorizeOutcome::Unavailable(
                    OAuthError::temporarily_unavailable(
                        "too many sign-in requests are waiting; try again later",
                    )
                    .with_reason(Reason::PendingRequestsFull)
                    .with_retry_after(retry_after.as_secs().max(1)),
                );
            }
            Err(e) => {
                // The redirect URI is trusted: the client hears server_error or
                // temporarily_unavailable (RFC 6749 §4.1.2.1).
                let error: OAuthError = e.into();
                return AuthorizeOutcome::Redirect(error_redirect(
                    &pending.redirect_uri,
                    pending.response_type == ResponseType::Token,
                    &error,
                    pending.state.as_deref(),
                    &self.endpoint.issuer,
                ));
            }
        }
        tracing::info!(client_id = %pending.client_id, "authorization request pending");
        AuthorizeOutcome::Pending {
            id,
            request: pending,
        }
    }

    /// The redirect that tells the client its request was denied (RFC 6749 §4.1.2.1).
    fn denied(&self, request: &PendingAuthorization) -> Redirect {
        let error = OAuthError::access_denied("the resource owner denied the request");
        error_redirect(
            &request.redirect_uri,
            request.response_type == ResponseType::Token,
            &error,
            request.state.as_deref(),
            &self.endpoint.issuer,
        )
    }

    /// A refused authorization request, logged: the redirect that tells the client, or the
    /// error to show as a page when the client or its redirect URI cannot be trusted.
    fn refused(&self, refusal: Refusal) -> Result<Redirect, OAuthError> {
        match refusal {
            Refusal::Untrusted(error) => {
                tracing::warn!(
                    error = error.code().as_str(),
                    reason = error.reason().map(Reason::as_str),
                    "authorization request refused (shown as a page)"
                );
                Err(error)
            }
            Refusal::Redirect {
                to,
                in_fragment,
                state,
                error,
            } => {
                tracing::warn!(
                    error = error.code().as_str(),
                    reason = error.reason().map(Reason::as_str),
                    "authorization request refused (redirected)"
                );
                Ok(error_redirect(
                    &to,
                    in_fragment,
                    &error,
                    state.as_deref(),
                    &self.endpoint.issuer,
                ))
            }
        }
    }

    /// The pending request behind `id`, if it is still waiting. A read.
    pub(crate) async fn find_request(
        &self,
        id: &AuthorizationRequestId,
        now: OffsetDateTime,
    ) -> Result<Option<PendingAuthorization>, OAuthError> {
        Ok(self.codes.find_pending(&RequestIdHash::of(id), now).await?)
    }

    /// Step (C), approved: spends the request and answers the redirect with a code, or with an
    /// access token for `response_type=token` (through `implicit`, if that grant is enabled).
    pub(crate) async fn approve(
        &self,
        ctx: &Context<'_>,
        implicit: Option<&ImplicitGrant>,
        id: &AuthorizationRequestId,
        user: ResourceOwner,
        scope: Option<Scope>,
    ) -> Result<Redirect, OAuthError> {
        let hash = RequestIdHash::of(id);
        // Check first and spend after, so that a refused approval leaves the request waiting.
        let request = self
            .codes
            .find_pending(&hash, ctx.now)
            .await?
            .ok_or_else(pending_unknown)?;
        let scope = approved_scope(&request, scope)?;
        // The client may have changed while the user was signing in.
        let client = still_allowed(ctx.clients, &request).await?;
        let request = self
            .codes
            .take_pending(&hash, ctx.now)
            .await?
            .ok_or_else(pending_unknown)?;
        Ok(self
            .issue_approved(ctx, implicit, &client, request, user, scope, true)
            .await)
    }

    /// An approved request, spent or never stored: issues its code (or, for
    /// `response_type=token`, its access token through `implicit`) and answers the redirect. A
    /// failure from here goes back to the client as a redirect. `waited` says, in the log,
    /// whether the request waited in the store for the decision (`approve`, after the host's
    /// page) or was decided at once (`decide`).
    #[allow(clippy::too_many_arguments)]
    async fn issue_approved(
        &self,
        ctx: &Context<'_>,
        implicit: Option<&ImplicitGrant>,
        client: &Client,
        request: PendingAuthorization,
        user: ResourceOwner,
        scope: Scope,
        waited: bool,
    ) -> Redirect {
        let issuer = &self.endpoint.issuer;
        let (to, in_fragment) = (
            request.redirect_uri.clone(),
            request.response_type == ResponseType::Token,
        );
        let state = request.state.clone();
        let issued = match (request.response_type, implicit) {
            (ResponseType::Token, Some(implicit)) => {
                implicit
                    .issue(ctx, client, request, user, scope, issuer)
                    .await
            }
            (ResponseType::Token, None) => Err(OAuthError::unauthorized_client(
                "the implicit grant is not enabled",
            )),
            (ResponseType::Code, _) => self.issue(request, user, scope, issuer, ctx.now).await,
        };
        match issued {
            Ok(redirect) => {
                tracing::info!(client_id = %client.id, waited, "authorization approved");
                redirect
            }
            Err(error) => {
                tracing::warn!(client_id = %client.id, waited, error = error.code().as_str(), reason = error.reason().map(Reason::as_str), "approved authorization failed");
                error_redirect(&to, in_fragment, &error, state.as_deref(), issuer)
            }
        }
    }

    /// Step (C), denied: spends the request and answers the redirect with `access_denied`.
    pub(crate) async fn deny(
        &self,
        ctx: &Context<'_>,
        id: &AuthorizationRequestId,
    ) -> Result<Redirect, OAuthError> {
        let hash = RequestIdHash::of(id);
        // As for an approval: the redirect goes only to a URI the client still has registered.
        let request = self
            .codes
            .find_pending(&hash, ctx.now)
            .await?
            .ok_or_else(pending_unknown)?;
        still_allowed(ctx.clients, &request).await?;
        let request = self
            .codes
            .take_pending(&hash, ctx.now)
            .await?
            .ok_or_else(pending_unknown)?;
        tracing::info!(client_id = %request.client_id, waited = true, "authorization denied");
        Ok(self.denied(&request))
    }

    /// Step (C): issues a code for an approved request and answers the redirect carrying it
    /// (RFC 6749 §4.1.2), with `iss` (RFC 9207).
    pub(crate) async fn issue(
        &self,
        request: PendingAuthorization,
        owner: ResourceOwner,
        scope: Scope,
        issuer: &str,
        now: OffsetDateTime,
    ) -> Result<Redirect, OAuthError> {
        let code = AuthorizationCode::generate();
        let issued_at = now.replace_nanosecond(0).unwrap_or(now);
        let grant = CodeGrant {
            client_id: request.client_id,
            user_id: owner.id,
            username: owner.username,
            redirect_uri: request.redirect_uri.clone(),
            redirect_uri_in_request: request.redirect_uri_in_request,
            scope,
            code_challenge: request.code_challenge,
            resources: request.resources,
            family_id: FamilyId::generate(),
            issued_at,
            expires_at: issued_at.saturating_add(self.code_ttl),
        };
        self.codes
            .save_code(&AuthorizationCodeHash::of(&code), &grant, now)
            .await?;
        // The parameters on the stack: a redirect is written once, with nothing built first.
        let (code, iss) = (("code", code.secret()), ("iss", issuer));
        Ok(match request.state.as_deref() {
            Some(state) => redirect(&request.redirect_uri, false, &[code, ("state", state), iss]),
            None => redirect(&request.redirect_uri, false, &[code, iss]),
        })
    }

    /// Steps (D) and (E): handles `grant_type=authorization_code` (RFC 6749 §4.1.3).
    pub(crate) async fn handle(
        &self,
        ctx: &Context<'_>,
        client: &Client,
        params: &Params<'_>,
    ) -> Result<TokenResponse, OAuthError> {
        ensure_allowed(client, GrantType::AuthorizationCode)?;
        let code = params.require("code")?;
        let verifier = match params.get("code_verifier") {
            // RFC 7636 §4.1: 43 to 128 unreserved characters. Checked before the code is spent.
            Some(v) if !is_valid_verifier_syntax(v) => {
                return Err(OAuthError::invalid_request(
                    "code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~",
                )
                .with_reason(Reason::PkceVerifierMalformed))
            }
            verifier => verifier,
        };

        // RFC 6749 §4.1.3: "ensure that the authorization code was issued to the authenticated
        // confidential client, or if the client is public, ensure that the code was issued to
        // "client_id" in the request". The code is read first and another client's code, live or
        // spent, is refused before anything is written: a code leaked to another client can
        // neither be spent nor revoke anything (a code's client never changes, so the read
        // cannot go stale on this).
        //
        // RFC 6749 §4.1.2: "The client MUST NOT use the authorization code more than once." The
        // code is spent now, whatever follows: a failed check below leaves it spent, so a
        // verifier cannot be guessed one try at a time. The used mark lasts as long as the
        // tokens it issues now can live (and at least as long as the code would have), so a
        // replay can revoke them (and, with them, the family) until then.
        let with_refresh = ctx.issues_refresh_token(client);
        let tokens_live = match ctx.settings.refresh {
            Some(refresh) if with_refresh => ctx.settings.access_ttl.max(refresh.ttl),
            _ => ctx.settings.access_ttl,
        };
        let code_hash = AuthorizationCodeHash::of_presented(code);
        let keep_used_until = ctx.now.saturating_add(tokens_live);
        let requested = resource::requested(
            params.all("resource"),
            client.own_resources(),
            &ctx.settings.resources,
        )?;
        // The access token's audience (RFC 8707 §2.2), decided on the code's grant as read:
        // a resource it was not given for is refused before the code is spent.
        let mut audience = Vec::new();
        let redemption = match self.codes.find_code(&code_hash, ctx.now).await? {
            CodeLookup::Live(grant) if grant.client_id != client.id => {
                Redemption::Refused(Reason::CodeOtherClient)
            }
            CodeLookup::Spent { client_id, .. } if client_id != client.id => {
                Redemption::Refused(Reason::CodeOtherClient)
            }
            CodeLookup::Spent { family_id, .. } => Redemption::Replayed(family_id),
            CodeLookup::Live(grant) if grant.expires_at <= ctx.now => {
                // The store answered an expired code as live: refuse it all the same.
                Redemption::Refused(Reason::CodeExpired)
            }
            CodeLookup::Live(grant) => {
                audience = resource::narrowed(
                    requested,
                    &grant.resources,
                    client.own_resources(),
                    &ctx.settings.resources,
                )?;
                self.spend(&code_hash, &grant, client, keep_used_until, ctx.now)
                    .await?
            }
            CodeLookup::Unknown => Redemption::Refused(Reason::CodeUnknown),
        };
        let grant = match redemption {
            Redemption::Spent(grant) => grant,
            Redemption::Replayed(family_id) => {
                // "If an authorization code is used more than once, the authorization server MUST
                // deny the request and SHOULD revoke (when possible) all tokens previously issued
                // based on that authorization code."
                let revoked =
                    crate::grant::context::revoke_family(ctx.tokens, &family_id, ctx.now).await?;
                tracing::warn!(client_id = %client.id, family_id = %family_id, revoked, "authorization code used twice; its tokens are revoked");
                return Err(invalid().with_reason(Reason::CodeReused));
            }
            Redemption::Refused(reason) => return Err(invalid().with_reason(reason)),
        };
        if grant.expires_at <= ctx.now {
            return Err(invalid().with_reason(Reason::CodeExpired));
        }
        if grant.client_id != client.id {
            // The store answered another client's code as spent: refuse it all the same.
            return Err(invalid().with_reason(Reason::CodeOtherClient));
        }
        // "ensure that the "redirect_uri" parameter is present if the "redirect_uri" parameter
        // was included in the initial authorization request …, and if included ensure that
        // their values are identical."
        match params.get("redirect_uri") {
            Some(sent) if sent != grant.redirect_uri.as_str() => {
                return Err(OAuthError::invalid_grant(
                    "redirect_uri differs from the one in the authorization request",
                )
                .with_reason(Reason::RedirectUriMismatch))
            }
            None if grant.redirect_uri_in_request => {
                return Err(OAuthError::invalid_request(
                    "redirect_uri is required: the authorization request carried one",
                )
                .with_reason(Reason::RedirectUriMissing))
            }
            _ => {}
        }
        match (&grant.code_challenge, &verifier) {
            (Some(challenge), Some(verifier)) => {
                // RFC 7636 §4.6: "If the values are not equal, an error response indicating
                // "invalid_grant" … MUST be returned."
                if !challenge.is_answered_by_presented(verifier) {
                    return Err(OAuthError::invalid_grant(
                        "the code_verifier does not match the code_challenge",
                    )
                    .with_reason(Reason::PkceMismatch));
                }
            }
            (Some(_), None) => {
                return Err(OAuthError::invalid_grant(
                    "code_verifier is required: the authorization request carried a code_challenge",
                )
                .with_reason(Reason::PkceVerifierMissing))
            }
            (None, Some(_)) => {
                // RFC 9700 §4.8.2: servers "MUST … reject token requests containing a
                // "code_verifier" … if the corresponding authorization request did not contain a
                // "code_challenge"".
                return Err(OAuthError::invalid_grant(
                    "code_verifier was sent, but the authorization request carried no code_challenge",
                )
                .with_reason(Reason::PkceUnexpectedVerifier));
            }
            (None, None) => {}
        }

        let minted = ctx
            .mint(
                Grant {
                    client,
                    owner: Some(ResourceOwner {
                        id: grant.user_id.clone(),
                        username: grant.username.clone(),
                    }),
                    refresh_scope: grant.scope.clone(),
                    scope: grant.scope.clone(),
                    family_id: Some(grant.family_id.clone()),
                    show_scope: true,
                    audience,
                    resources: grant.resources.clone(),
                },
                with_refresh,
            )
            .await;
        // If the code was replayed meanwhile, the replay revoked this family and the store
        // refuses the tokens: none of them ever becomes valid. If saving fails, the code is
        // given back for the client's retry.
        let give_back = async {
            let restored = self.codes.restore_code(&code_hash, &grant, ctx.now).await?;
            // Only a log line depends on it: a pattern rather than `==`, which mutation
            // testing would flip with nothing for a test to see.
            if let CodeRestore::Gone = restored {
                // Replayed (and so revoked) or expired meanwhile: the retry is refused, as it
                // should be.
                tracing::debug!(client_id = %client.id, "authorization code not given back: no longer spent by this exchange");
            }
            Ok(())
        };
        ctx.save_or_give_back(
            minted,
            || invalid().with_reason(Reason::CodeReusedDuringExchange),
            "authorization code",
            give_back,
        )
        .await
    }
}

/// What presenting a code came to, before the checks that follow spending it.
enum Redemption {
    /// Spent by this exchange: the grant it held.
    Spent(CodeGrant),
    /// Spent before, by this client: a second use, naming the family to revoke.
    Replayed(FamilyId),
    /// Refused with nothing changed.
    Refused(Reason),
}

impl AuthorizationCodeGrant {
    /// Spends `grant`'s code, live when read, leaving a used mark of `client` and the grant's
    /// family until `keep_used_until` or the code's own expiry, whichever is later. If another
    /// exchange spent it meanwhile, the code is read again: spent by this client, it is a second
    /// use (as if it had come after); otherwise it is unknown.
    async fn spend(
        &self,
        code: &AuthorizationCodeHash,
        grant: &CodeGrant,
        client: &Client,
        keep_used_until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<Redemption, OAuthError> {
        let mark = SpentCode::new(
            client.id.clone(),
            grant.family_id.clone(),
            keep_used_until.max(grant.expires_at),
        );
        Ok(match self.codes.spend_code(code, &mark, now).await? {
            CodeSpend::Spent(grant) => Redemption::Spent(grant),
            CodeSpend::Conflict => match self.codes.find_code(code, now).await? {
                CodeLookup::Spent {
                    client_id,
                    family_id,
                } if client_id == client.id => Redemption::Replayed(family_id),
                _ => Redemption::Refused(Reason::CodeUnknown),
            },
        })
    }
}

/// The scope an approval grants: `approved` if it is within what the request asked (`None`
/// grants all of it).
fn approved_scope(
    request: &PendingAuthorization,
    approved: Option<Scope>,
) -> Result<Scope, OAuthError> {
    match approved {
        None => Ok(request.scope.clone()),
        Some(scope) if scope.is_subset_of(&request.scope) => Ok(scope),
        Some(_) => Err(OAuthError::invalid_scope(
            "the approved scope exceeds the scope the client asked for",
        )
        .with_reason(Reason::ApprovedScopeTooWide)),
    }
}

/// The client of a pending request, if it still exists, may still use the grant, and still
/// has the redirect URI registered.
async fn still_allowed(
    clients: &dyn ClientStore,
    request: &PendingAuthorization,
) -> Result<std::sync::Arc<Client>, OAuthError> {
    let changed = |reason| {
        OAuthError::invalid_request("the client's registration changed; start again")
            .with_reason(reason)
    };
    let client = clients
        .find_client(&request.client_id)
        .await?
        .ok_or_else(|| changed(Reason::ClientGone))?;
    let grant = match request.response_type {
        ResponseType::Token => GrantType::Implicit,
        ResponseType::Code => GrantType::AuthorizationCode,
    };
    if !client.allows(grant) {
        return Err(changed(Reason::GrantWithdrawn));
    }
    if !client.redirect_uris.contains(&request.redirect_uri) {
        return Err(changed(Reason::RedirectUriWithdrawn));
    }
    Ok(client)
}
