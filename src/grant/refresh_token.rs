//! Refreshing an access token (RFC 6749 §6), with refresh-token rotation and replay detection
//! (RFC 9700 §4.14.2).
//!
//! ```text
//! +--------+                                           +---------------+
//! |        |--(A)------- Authorization Grant --------->|               |
//! |        |<-(B)----------- Access Token -------------|               |
//! |        |               & Refresh Token             |               |
//! |        |                   ...                     | Authorization |
//! | Client |  (access token expires)                   |     Server    |
//! |        |--(G)----------- Refresh Token ----------->|               |
//! |        |<-(H)----------- Access Token -------------|               |
//! +--------+           & Optional Refresh Token        +---------------+
//! ```
//!
//! (G) is `grant_type=refresh_token&refresh_token=…[&scope=…]`. With rotation (the default) (H)
//! carries a new refresh token in the same family and the presented one is spent; presenting a
//! spent refresh token again revokes the whole family, because either the client or an attacker
//! holds a stolen copy (RFC 9700 §4.14.2).

use std::time::Duration;

use time::OffsetDateTime;

use crate::builder::{AuthorizationServerBuilder, BuildError, Setups};
use crate::client::Client;
use crate::error::OAuthError;
use crate::grant::context::{ensure_allowed, nonzero, Context, Grant, RefreshPolicy, Shared};
use crate::reason::Reason;
use crate::request::Params;
use crate::response::TokenResponse;
use crate::scope::{parse_requested, Scope};
use crate::store::{Rotation, TokenKind, TokenLookup, TokenRecord};
use crate::token::TokenHash;
use crate::types::{ClientId, FamilyId, GrantType, RefreshToken, ResourceOwner};

fn invalid() -> OAuthError {
    OAuthError::invalid_grant(
        "the refresh token is invalid, expired, revoked, or was issued to another client",
    )
}

/// The refresh grant's settings.
#[derive(Clone)]
pub(crate) struct Setup {
    enabled: bool,
    rotate: bool,
    ttl: Duration,
    grace: Duration,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            enabled: false,
            rotate: true,
            ttl: Duration::from_secs(30 * 24 * 3600),
            grace: Duration::ZERO,
        }
    }
}

impl AuthorizationServerBuilder {
    /// Enables the refresh token grant (RFC 6749 §6). Clients allowed `refresh_token` then get
    /// refresh tokens with their access tokens.
    pub fn enable_refresh_token_grant(mut self) -> Self {
        self.setup::<Setup>().enabled = true;
        self
    }

    /// Whether each refresh issues a new refresh token and spends the old one (RFC 9700
    /// §4.14.2). On by default; turn it off only for sender-constrained refresh tokens.
    pub fn refresh_token_rotation(mut self, rotate: bool) -> Self {
        self.setup::<Setup>().rotate = rotate;
        self
    }

    /// How long refresh tokens live. Default: 30 days.
    pub fn refresh_token_lifetime(mut self, lifetime: Duration) -> Self {
        self.setup::<Setup>().ttl = lifetime;
        self
    }

    /// How long a just-rotated refresh token may be presented again by the client it was
    /// issued to, without counting as a replay: for a reply lost in transit. Within it, the
    /// client gets a fresh pair (and the refresh token the lost reply carried stops working; its
    /// access token lives out its lifetime), as long as it never used that refresh token; after
    /// it, or if it did, reuse revokes the family as usual
    /// (RFC 9700 §4.14.2). Default: zero, off. A few seconds is enough for a retry; every
    /// second widens the window in which a stolen refresh token goes unnoticed. Counted in
    /// whole seconds, rounded in the client's favour.
    pub fn refresh_token_grace_period(mut self, grace: Duration) -> Self {
        self.setup::<Setup>().grace = grace;
        self
    }
}

/// Makes the grant if the builder enabled it.
pub(crate) fn build(
    setups: &Setups,
    _: &Shared<'_>,
) -> Result<Option<RefreshTokenGrant>, BuildError> {
    let setup = setups.read::<Setup>();
    let policy = RefreshPolicy {
        ttl: nonzero(setup.ttl)?,
        rotate: setup.rotate,
        grace: crate::clock::to_time_duration(setup.grace),
    };
    Ok(setup.enabled.then_some(RefreshTokenGrant { policy }))
}

/// The refresh grant's handler: its policy, and the token store in its context.
pub(crate) struct RefreshTokenGrant {
    pub(crate) policy: RefreshPolicy,
}

/// What a spent refresh token's lookup said.
struct Spent {
    client_id: ClientId,
    family_id: FamilyId,
    rotated_at: OffsetDateTime,
    successor: Option<TokenHash>,
}

impl Spent {
    fn of(lookup: TokenLookup) -> Option<Self> {
        match lookup {
            TokenLookup::Rotated {
                client_id,
                family_id,
                rotated_at,
                successor,
            } => Some(Self {
                client_id,
                family_id,
                rotated_at,
                successor,
            }),
            _ => None,
        }
    }
}

impl RefreshTokenGrant {
    /// Handles `grant_type=refresh_token` (RFC 6749 §6).
    pub(crate) async fn handle(
        &self,
        ctx: &Context<'_>,
        client: &Client,
        params: &Params,
    ) -> Result<TokenResponse, OAuthError> {
        ensure_allowed(client, GrantType::RefreshToken)?;
        let presented =
            TokenHash::of_refresh_token(&RefreshToken::new(params.require("refresh_token")?));

        // A read to validate the request before anything is spent, so bad input (a wider scope)
        // costs the client nothing. It authorizes nothing: the atomic exchange below checks again
        // that the token is live, unexpired, a refresh token, and the client's.
        let record = match ctx.tokens.find_token(&presented, ctx.now).await? {
            TokenLookup::Live(record) => record,
            lookup => match Spent::of(lookup) {
                Some(spent) => return self.spent(ctx, client, params, &presented, spent).await,
                None => return Err(invalid().with_reason(Reason::RefreshTokenUnknown)),
            },
        };
        check_record(&record, client, ctx.now)?;
        let (scope, show_scope) = requested_scope(&record, client, params)?;

        // RFC 9700 §4.14.2: for public clients the server "MUST utilize one of these methods"
        // (sender-constrained refresh tokens or rotation); grantor has no sender-constraining, so
        // public clients always rotate.
        let rotate = self.policy.rotate || client.is_public();
        let minted = ctx.mint(grant(client, &record, scope, show_scope), rotate);
        match ctx
            .tokens
            .rotate_refresh_token(&presented, &client.id, &minted.entries, rotate, ctx.now)
            .await?
        {
            Rotation::Issued(_) => Ok(minted.response),
            // Another request spent it between our read and now: a replay race, or the same
            // client sending the same refresh twice at once (within a grace period, it is
            // answered as a retry).
            Rotation::Reused {
                client_id,
                family_id,
            } => {
                if self.policy.grace.is_positive() {
                    let lookup = ctx.tokens.find_token(&presented, ctx.now).await?;
                    if let Some(spent) = Spent::of(lookup) {
                        return self.spent(ctx, client, params, &presented, spent).await;
                    }
                }
                Err(replayed(ctx, client, &client_id, &family_id).await)
            }
            _ => Err(invalid().with_reason(Reason::RefreshTokenUnknown)),
        }
    }

    /// A spent refresh token came back: within the grace period and from its own client, a
    /// retry whose first reply was lost, answered with a fresh pair if the client never used
    /// what the rotation issued; otherwise a replay.
    async fn spent(
        &self,
        ctx: &Context<'_>,
        client: &Client,
        params: &Params,
        presented: &TokenHash,
        spent: Spent,
    ) -> Result<TokenResponse, OAuthError> {
        let grace = self.policy.grace;
        // `rotated_at` is kept in whole seconds, rounded down: a second more keeps the whole
        // grace period, at worst a little longer.
        let within_grace = grace.is_positive()
            && spent.client_id == client.id
            && ctx.now
                < spent
                    .rotated_at
                    .saturating_add(grace)
                    .saturating_add(time::Duration::SECOND);
        let successor = match (within_grace, spent.successor) {
            (true, Some(successor)) => successor,
            _ => return Err(replayed(ctx, client, &spent.client_id, &spent.family_id).await),
        };
        // What the lost reply carried: the successor's record stands for the same grant.
        let record = match ctx.tokens.find_token(&successor, ctx.now).await? {
            TokenLookup::Live(record) => record,
            _ => return Err(replayed(ctx, client, &spent.client_id, &spent.family_id).await),
        };
        check_record(&record, client, ctx.now)?;
        let (scope, show_scope) = requested_scope(&record, client, params)?;
        let minted = ctx.mint(grant(client, &record, scope, show_scope), true);
        match ctx
            .tokens
            .reissue_rotated(presented, &successor, &client.id, &minted.entries, ctx.now)
            .await?
        {
            Rotation::Issued(_) => {
                tracing::info!(client_id = %client.id, family_id = %spent.family_id, "refresh token presented again within its grace period; a fresh pair replaces the unused one");
                Ok(minted.response)
            }
            // The client did use what the rotation issued (or another retry won): a replay.
            Rotation::Reused {
                client_id,
                family_id,
            } => Err(replayed(ctx, client, &client_id, &family_id).await),
            _ => Err(invalid().with_reason(Reason::RefreshTokenUnknown)),
        }
    }
}

/// Refuses a record that is not a live refresh token of `client` (RFC 6749 §6: the server MUST
/// "validate the refresh token" and "ensure that the refresh token was issued to the
/// authenticated client").
fn check_record(
    record: &TokenRecord,
    client: &Client,
    now: OffsetDateTime,
) -> Result<(), OAuthError> {
    if record.kind != TokenKind::Refresh {
        return Err(invalid().with_reason(Reason::NotARefreshToken));
    }
    if record.is_expired(now) {
        return Err(invalid().with_reason(Reason::RefreshTokenExpired));
    }
    if record.client_id != client.id {
        return Err(invalid().with_reason(Reason::RefreshTokenOtherClient));
    }
    Ok(())
}

/// The access token's scope, and whether the response must name it.
///
/// RFC 6749 §6: "The requested scope MUST NOT include any scope not originally granted by the
/// resource owner, and if omitted is treated as equal to the scope originally granted". What the
/// client may ask for today bounds it too.
fn requested_scope(
    record: &TokenRecord,
    client: &Client,
    params: &Params,
) -> Result<(Scope, bool), OAuthError> {
    let (scope, show_scope) = match params.get("scope") {
        Some(raw) => {
            let asked = parse_requested(raw)?;
            if !asked.is_subset_of(&record.scope) || !asked.is_subset_of(&client.allowed_scope) {
                return Err(OAuthError::invalid_scope(
                    "the requested scope exceeds the scope originally granted",
                )
                .with_reason(Reason::ScopeWidened));
            }
            (asked, false)
        }
        None => {
            let scope = record.scope.intersection(&client.allowed_scope);
            let narrowed = scope != record.scope;
            (scope, narrowed)
        }
    };
    if scope.is_empty() && !record.scope.is_empty() {
        return Err(OAuthError::invalid_scope("no scope remains to be granted")
            .with_reason(Reason::ScopeEmpty));
    }
    Ok((scope, show_scope))
}

/// The grant new tokens stand for: the refresh token's, with `scope` for the access token.
fn grant<'a>(
    client: &'a Client,
    record: &TokenRecord,
    scope: Scope,
    show_scope: bool,
) -> Grant<'a> {
    Grant {
        client,
        owner: record.user_id.clone().map(|id| ResourceOwner {
            id,
            username: record.username.clone(),
        }),
        scope,
        // RFC 6749 §6: "If a new refresh token is issued, the refresh token scope MUST be
        // identical to that of the refresh token included by the client in the request."
        refresh_scope: record.scope.clone(),
        family_id: record.family_id.clone(),
        show_scope,
    }
}

/// A spent refresh token came back.
///
/// RFC 9700 §4.14.2: one of two parties holds a stolen copy, and since "the authorization server
/// cannot determine which party submitted the invalid refresh token, it will revoke the active
/// refresh token". That is done only when the client presenting it is the one it was issued to
/// (RFC 6749 §6), so another client cannot use a leaked spent token to sign a user out.
async fn replayed(
    ctx: &Context<'_>,
    client: &Client,
    issued_to: &ClientId,
    family: &FamilyId,
) -> OAuthError {
    if issued_to != &client.id {
        return invalid().with_reason(Reason::RefreshTokenOtherClient);
    }
    match ctx.tokens.revoke_family(family, ctx.now).await {
        Ok(revoked) => {
            tracing::warn!(
                client_id = %client.id,
                family_id = %family,
                revoked,
                "refresh token replayed; its family is revoked"
            );
            invalid().with_reason(Reason::RefreshTokenReplayed)
        }
        Err(e) => e.into(),
    }
}
