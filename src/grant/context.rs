//! What every grant shares: the request's [`Context`] (the stores, the token settings, the
//! instant), minting tokens, saving them, and the refusals every grant may answer.

use std::sync::Arc;

use time::OffsetDateTime;

use crate::attempts::AttemptGate;
use crate::builder::BuildError;
use crate::clock::Clock;
use crate::metadata::EndpointPaths;
use crate::store::{AttemptLimiter, PendingLimits};
use crate::user_auth::{LoginLimits, UserAuthenticator};

use crate::error::{OAuthError, StoreError};

use crate::client::{AccessTokenFormat, Client};
use crate::jose::TokenSigner;
use crate::reason::Reason;
use crate::resource::Resource;
use crate::response::TokenResponse;
use crate::scope::Scope;
use crate::store::{ClientStore, TokenKind, TokenRecord, TokenSave, TokenStore};
use crate::token::TokenHash;
use crate::types::{AccessToken, FamilyId, GrantType, RefreshToken, ResourceOwner};

/// Refuses a client that is not registered for `grant` (RFC 6749 §5.2 `unauthorized_client`:
/// "The authenticated client is not authorized to use this authorization grant type").
pub(crate) fn ensure_allowed(client: &Client, grant: GrantType) -> Result<(), OAuthError> {
    if client.allows(grant) {
        return Ok(());
    }
    Err(
        OAuthError::unauthorized_client(format!("this client is not allowed the {grant} grant"))
            .with_reason(Reason::GrantNotAllowed),
    )
}

/// The refusal of tokens for a family minted for this request alone: nobody can have revoked
/// it, so it is a store fault.
pub(crate) fn fresh_family_refused() -> OAuthError {
    OAuthError::server_error("the new tokens could not be saved")
        .with_reason(Reason::FreshFamilyRefused)
}

/// How long, in seconds, a revoked family refuses new tokens: far longer than any exchange that
/// could still be in flight (a grant that read a code or a refresh token just before its family
/// was revoked). The engine passes it to [`TokenStore::revoke_family`] as `remember_until`.
pub const REVOKED_FAMILY_MEMORY: i64 = 3600;

/// Revokes `family` in `tokens` at `now`, keeping it marked revoked for
/// [`REVOKED_FAMILY_MEMORY`] seconds; answers how many tokens went.
pub(crate) async fn revoke_family(
    tokens: &dyn TokenStore,
    family: &FamilyId,
    now: OffsetDateTime,
) -> Result<u64, StoreError> {
    let remember_until = now.saturating_add(time::Duration::seconds(REVOKED_FAMILY_MEMORY));
    tokens.revoke_family(family, remember_until, now).await
}

/// Token settings every grant shares.
#[derive(Clone, Debug)]
pub(crate) struct TokenSettings {
    pub(crate) access_ttl: time::Duration,
    /// The refresh grant's policy, if it is enabled (then issuing refresh tokens makes sense).
    pub(crate) refresh: Option<RefreshPolicy>,
    /// The format of access tokens for clients that name none.
    pub(crate) access_token_format: AccessTokenFormat,
    /// How JWT access tokens are made, if the server can make them.
    pub(crate) jwt: Option<JwtSettings>,
    /// The resources clients without a list of their own may name (RFC 8707).
    pub(crate) resources: Arc<[Resource]>,
}

/// What JWT access tokens are signed with and say of their issuer and audience.
#[derive(Clone)]
pub(crate) struct JwtSettings {
    pub(crate) signer: Arc<dyn TokenSigner>,
    pub(crate) issuer: String,
    pub(crate) audience: String,
}

impl std::fmt::Debug for JwtSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtSettings")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

/// The claims of a JWT access token (RFC 9068 §2.2).
#[derive(serde::Serialize)]
struct AccessClaims<'a> {
    iss: &'a str,
    exp: i64,
    aud: crate::resource::Audience<'a>,
    /// The resource owner, or the client when there is none (§2.2: "the client identifier").
    sub: &'a str,
    client_id: &'a str,
    iat: i64,
    jti: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    scope: &'a str,
}

/// How refresh tokens are issued and rotated: the refresh grant's settings.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RefreshPolicy {
    pub(crate) ttl: time::Duration,
    /// Whether each refresh spends the refresh token and issues a new one (RFC 9700 §4.14.2).
    pub(crate) rotate: bool,
    /// How long a just-rotated refresh token may be presented again by its own client (a reply
    /// lost in transit); zero turns it off.
    pub(crate) grace: time::Duration,
}

/// What a grant's `build` may use besides its own setup: the server-wide settings and hooks.
pub(crate) struct Shared<'a> {
    /// The resources clients without a list of their own may name (RFC 8707).
    pub(crate) resources: &'a Arc<[Resource]>,
    pub(crate) issuer: Option<&'a str>,
    pub(crate) paths: &'a EndpointPaths,
    /// The user verifier behind its limits, if the host set one.
    pub(crate) users: Option<&'a Arc<UserAuthenticator>>,
    pub(crate) limiter: &'a Arc<dyn AttemptLimiter>,
    pub(crate) clock: &'a Arc<dyn Clock>,
    pub(crate) login_limits: Option<LoginLimits>,
    pub(crate) pending_limits: PendingLimits,
}

impl Shared<'_> {
    /// A gate over the shared attempt limiter whose checks wait at most `max_wait` for a place.
    pub(crate) fn gate(&self, max_wait: std::time::Duration) -> AttemptGate {
        AttemptGate {
            limiter: self.limiter.clone(),
            clock: self.clock.clone(),
            max_wait,
        }
    }
}

/// Refuses a lifetime of zero (under one second).
pub(crate) fn nonzero(lifetime: std::time::Duration) -> Result<time::Duration, BuildError> {
    if lifetime.as_secs() == 0 {
        return Err(BuildError::ZeroLifetime);
    }
    Ok(crate::clock::to_time_duration(lifetime))
}

/// What a handler gets besides its own hooks: the stores every grant may need, the settings,
/// and the instant the request is handled at.
pub(crate) struct Context<'a> {
    pub(crate) clients: &'a dyn ClientStore,
    pub(crate) tokens: &'a dyn TokenStore,
    pub(crate) settings: &'a TokenSettings,
    pub(crate) now: OffsetDateTime,
    /// The address of whoever sent the request, when the host passed it.
    pub(crate) caller: Option<std::net::IpAddr>,
}

/// Newly minted tokens: the response to send, and the records to store under their hashes.
pub(crate) struct Minted {
    pub(crate) response: TokenResponse,
    pub(crate) entries: Vec<(TokenHash, TokenRecord)>,
}

/// The grant a new set of tokens stands for.
pub(crate) struct Grant<'a> {
    pub(crate) client: &'a Client,
    /// The resource owner, if the grant has one.
    pub(crate) owner: Option<ResourceOwner>,
    /// The access token's scope.
    pub(crate) scope: Scope,
    /// The refresh token's scope, if one is issued (RFC 6749 §6: a new refresh token keeps the
    /// scope of the one it replaces, even when the access token's is narrower).
    pub(crate) refresh_scope: Scope,
    /// The family the tokens join; `None` for a token that stands alone (one that is never
    /// refreshed and came from no code: the client credentials grant's).
    pub(crate) family_id: Option<FamilyId>,
    /// Whether the response must carry `scope` (RFC 6749 §5.1).
    pub(crate) show_scope: bool,
    /// The access token's audience: the resources it is for (RFC 8707), none for a token for no
    /// resource in particular (a JWT then gets the server's
    /// [`jwt_audience`](crate::AuthorizationServerBuilder::jwt_audience)).
    pub(crate) audience: Vec<String>,
    /// The resources of the grant, which a refresh token keeps (RFC 8707 §2.2: it "is bound to
    /// the full original grant").
    pub(crate) resources: Vec<String>,
}

impl Context<'_> {
    /// Saves tokens of a family minted for this request alone. Nobody can have revoked it, so a
    /// refusal is a store fault.
    pub(crate) async fn save_fresh(&self, minted: Minted) -> Result<TokenResponse, OAuthError> {
        self.save(minted, fresh_family_refused).await
    }

    /// Saves minted tokens and answers the response, or `refusal` if the store refused them
    /// because their family was just revoked (a replay raced this request).
    pub(crate) async fn save(
        &self,
        minted: Minted,
        refusal: impl FnOnce() -> OAuthError,
    ) -> Result<TokenResponse, OAuthError> {
        match self.tokens.save_tokens(&minted.entries, self.now).await? {
            TokenSave::Saved => Ok(minted.response),
            _ => Err(refusal()),
        }
    }

    /// Saves tokens minted for a single-use value the grant has already spent (a code, a
    /// collected device approval, an `mfa_token`), as [`save`](Self::save) does; but if the
    /// tokens could not be minted (a signer failed) or the token store fails, first runs
    /// `give_back`, which restores what was spent, so that the client's retry succeeds instead
    /// of the user starting over. `what` names it in the log.
    pub(crate) async fn save_or_give_back(
        &self,
        minted: Result<Minted, OAuthError>,
        refusal: impl FnOnce() -> OAuthError,
        what: &'static str,
        give_back: impl std::future::Future<Output = Result<(), StoreError>>,
    ) -> Result<TokenResponse, OAuthError> {
        let failure = match minted {
            Ok(minted) => match self.tokens.save_tokens(&minted.entries, self.now).await {
                Ok(TokenSave::Saved) => return Ok(minted.response),
                Ok(_) => return Err(refusal()),
                Err(failure) => failure.into(),
            },
            Err(failure) => failure,
        };
        match give_back.await {
            Ok(()) => tracing::warn!(given_back = what, "tokens not issued; given back"),
            Err(e) => {
                let _: OAuthError = e.into(); // the conversion logs the cause
            }
        }
        Err(failure)
    }

    /// The access token's audience (RFC 8707) for the request's `resource` values, on a grant
    /// given for `granted` resources (empty for a grant this request makes): see
    /// [`resource::audience`](crate::resource::audience).
    pub(crate) fn audience(
        &self,
        params: &crate::request::Params<'_>,
        granted: &[String],
        client: &Client,
    ) -> Result<Vec<String>, OAuthError> {
        crate::resource::audience(
            params.all("resource"),
            granted,
            client.own_resources(),
            &self.settings.resources,
        )
    }

    /// Whether `client` should get a refresh token: the server has the refresh grant and the
    /// client may use it.
    pub(crate) fn issues_refresh_token(&self, client: &Client) -> bool {
        self.settings.refresh.is_some() && client.allows(GrantType::RefreshToken)
    }

    /// Mints an access token, and a refresh token if `with_refresh`, for `grant`: the access
    /// token a JWT (RFC 9068) signed by the server when the client's format says so.
    pub(crate) async fn mint(
        &self,
        grant: Grant<'_>,
        with_refresh: bool,
    ) -> Result<Minted, OAuthError> {
        // Records keep whole seconds, so every store (a JSON timestamp, a Redis TTL) holds them
        // exactly.
        let issued_at = self.now.replace_nanosecond(0).unwrap_or(self.now);
        let record = |kind, scope: &Scope, ttl, audience: Vec<String>| TokenRecord {
            kind,
            client_id: grant.client.id.clone(),
            user_id: grant.owner.as_ref().map(|o| o.id.clone()),
            username: grant.owner.as_ref().and_then(|o| o.username.clone()),
            scope: scope.clone(),
            issued_at,
            expires_at: issued_at.saturating_add(ttl),
            family_id: grant.family_id.clone(),
            audience,
        };
        let format = grant
            .client
            .access_token_format
            .unwrap_or(self.settings.access_token_format);
        let mut audience = grant.audience.clone();
        if audience.is_empty() && format == AccessTokenFormat::Jwt {
            // RFC 9068 §3: a JWT asked for without `resource` gets the default audience; the
            // record says so too, for introspection and validation alike.
            if let Some(jwt) = &self.settings.jwt {
                audience.push(jwt.audience.clone());
            }
        }
        let access_record = record(
            TokenKind::Access,
            &grant.scope,
            self.settings.access_ttl,
            audience,
        );
        let access = match format {
            AccessTokenFormat::Jwt => self.jwt(&access_record).await?,
            _ => AccessToken::generate(),
        };
        let mut entries = Vec::with_capacity(1 + usize::from(with_refresh));
        entries.push((TokenHash::of_access_token(&access), access_record));
        let refresh = with_refresh.then(|| {
            let refresh = RefreshToken::generate();
            entries.push((
                TokenHash::of_refresh_token(&refresh),
                record(
                    TokenKind::Refresh,
                    &grant.refresh_scope,
                    self.settings
                        .refresh
                        .map_or(time::Duration::ZERO, |refresh| refresh.ttl),
                    grant.resources.clone(),
                ),
            ));
            refresh
        });
        Ok(Minted {
            response: TokenResponse {
                access_token: access,
                expires_in: self.settings.access_ttl.whole_seconds(),
                refresh_token: refresh,
                scope: grant.show_scope.then_some(grant.scope),
            },
            entries,
        })
    }

    /// `record` as a signed JWT access token (RFC 9068): header `typ: at+jwt`, `alg` and `kid`;
    /// claims `iss`, `exp`, `aud`, `sub`, `client_id`, `iat`, a fresh `jti`, and `scope`.
    async fn jwt(&self, record: &TokenRecord) -> Result<AccessToken, OAuthError> {
        let Some(jwt) = &self.settings.jwt else {
            tracing::error!(
                client_id = record.client_id.as_str(),
                "a client's access tokens are JWTs, but the server has no token_signer, issuer \
                 and jwt_audience"
            );
            return Err(OAuthError::server_error(
                "this client's access tokens cannot be issued",
            ));
        };
        let jti = crate::random::random_string::<32>();
        let claims = AccessClaims {
            iss: &jwt.issuer,
            exp: record.expires_at.unix_timestamp(),
            aud: crate::resource::Audience(&record.audience),
            sub: record
                .user_id
                .as_ref()
                .map_or(record.client_id.as_str(), |user| user.as_str()),
            client_id: record.client_id.as_str(),
            iat: record.issued_at.unix_timestamp(),
            jti: &jti,
            scope: record.scope.as_str(),
        };
        let signed = crate::jose::sign_compact(jwt.signer.as_ref(), "at+jwt", &claims).await?;
        Ok(AccessToken::new(signed))
    }
}
