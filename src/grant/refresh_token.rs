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
use crate::grant::context::{
    ensure_allowed, nonzero, revoke_family, Context, Grant, Minted, RefreshPolicy, Shared,
};
use crate::reason::Reason;
use crate::request::Params;
use crate::response::TokenResponse;
use crate::scope::{parse_requested, Scope};
use crate::store::{
    SpentMark, TokenChange, TokenExpectation, TokenKind, TokenLookup, TokenRecord, TokenUpdate,
};
use crate::token::TokenHash;
use crate::types::{ClientId, FamilyId, GrantType, ResourceOwner};

fn invalid() -> OAuthError {
    OAuthError::invalid_grant(
        "the refresh token is invalid, expired, revoked, or was issued to another client",
    )
}

/// The refusal of a refresh token the store does not hold as live or spent (or whose new tokens
/// would join a family just revoked).
fn unknown() -> OAuthError {
    invalid().with_reason(Reason::RefreshTokenUnknown)
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

/// What a spent refresh token's lookup said: its spent mark.
struct Spent {
    client_id: ClientId,
    family_id: FamilyId,
    rotated_at: OffsetDateTime,
    successor: Option<TokenHash>,
    keep_until: OffsetDateTime,
}

impl Spent {
    fn of(lookup: TokenLookup) -> Option<Self> {
        match lookup {
            TokenLookup::Rotated {
                client_id,
                family_id,
                rotated_at,
                successor,
                keep_until,
            } => Some(Self {
                client_id,
                family_id,
                rotated_at,
                successor,
                keep_until,
            }),
            _ => None,
        }
    }

    /// The same mark, naming `successor` instead.
    fn with_successor(&self, successor: Option<TokenHash>) -> SpentMark {
        SpentMark {
            client_id: self.client_id.clone(),
            family_id: self.family_id.clone(),
            spent_at: self.rotated_at,
            successor,
            keep_until: self.keep_until,
        }
    }
}

/// The mark of a refresh token spent at `now` and replaced by `successor`: kept as long as the
/// token would have lived, so that presenting it again is recognised as a replay until then.
fn spent_mark(
    record: &TokenRecord,
    family: &FamilyId,
    successor: Option<TokenHash>,
    now: OffsetDateTime,
) -> SpentMark {
    SpentMark {
        client_id: record.client_id.clone(),
        family_id: family.clone(),
        // Whole seconds, as records keep them (so every store holds it exactly).
        spent_at: now.replace_nanosecond(0).unwrap_or(now),
        successor,
        keep_until: record.expires_at,
    }
}

/// The refresh token among newly minted tokens.
fn refresh_of(tokens: &[(TokenHash, TokenRecord)]) -> Option<TokenHash> {
    tokens
        .iter()
        .find(|(_, r)| r.kind == TokenKind::Refresh)
        .map(|(h, _)| *h)
}

impl RefreshTokenGrant {
    /// Handles `grant_type=refresh_token` (RFC 6749 §6).
    pub(crate) async fn handle(
        &self,
        ctx: &Context<'_>,
        client: &Client,
        params: &Params<'_>,
    ) -> Result<TokenResponse, OAuthError> {
        ensure_allowed(client, GrantType::RefreshToken)?;
        let presented = TokenHash::of_presented(params.require("refresh_token")?);

        // A read to validate the request before anything is spent, so bad input (a wider scope)
        // costs the client nothing. What it authorizes holds only as long as the token stays
        // live: the atomic exchange below expects exactly that.
        let record = match ctx.tokens.find_token(&presented, ctx.now).await? {
            TokenLookup::Live(record) => record,
            lookup => match Spent::of(lookup) {
                Some(spent) => return self.spent(ctx, client, params, &presented, spent).await,
                None => return Err(unknown()),
            },
        };
        let family = check_record(&record, client, ctx.now)?;
        let (scope, show_scope) = requested_scope(&record, client, params)?;
        let audience = ctx.audience(params, &record.audience, client)?;

        // RFC 9700 §4.14.2: for public clients the server "MUST utilize one of these methods"
        // (sender-constrained refresh tokens or rotation); grantor has no sender-constraining, so
        // public clients always rotate.
        let rotate = self.policy.rotate || client.is_public();
        let Minted { response, entries } = ctx
            .mint(
                grant(client, &record, family, (scope, show_scope), audience),
                rotate,
            )
            .await?;
        // Rotation spends the presented token, naming the new refresh token its successor (for
        // the grace period's retry), and keeps the mark as long as the token would have lived.
        let mark = rotate.then(|| {
            let successor = refresh_of(&entries);
            (presented, spent_mark(&record, family, successor, ctx.now))
        });
        let change = TokenChange {
            expect: vec![(presented, TokenExpectation::Live)],
            mark: mark.into_iter().collect(),
            insert: entries,
        };
        match ctx.tokens.update_tokens(&change, ctx.now).await? {
            TokenUpdate::Applied => Ok(response),
            // The token stopped being live between the read and now: another request spent it (a
            // replay race, or the same client sending the same refresh twice at once, which
            // within a grace period is answered as a retry), or it was revoked or expired.
            TokenUpdate::Conflict => {
                match Spent::of(ctx.tokens.find_token(&presented, ctx.now).await?) {
                    Some(spent) => self.spent(ctx, client, params, &presented, spent).await,
                    None => Err(unknown()),
                }
            }
            // Its family was revoked meanwhile (a replay raced this request).
            _ => Err(unknown()),
        }
    }

    /// A spent refresh token came back: within the grace period and from its own client, a
    /// retry whose first reply was lost, answered with a fresh pair if the client never used
    /// what the rotation issued; otherwise a replay.
    async fn spent(
        &self,
        ctx: &Context<'_>,
        client: &Client,
        params: &Params<'_>,
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
        let family = check_record(&record, client, ctx.now)?;
        let (scope, show_scope) = requested_scope(&record, client, params)?;
        let audience = ctx.audience(params, &record.audience, client)?;
        let Minted { response, entries } = ctx
            .mint(
                grant(client, &record, family, (scope, show_scope), audience),
                true,
            )
            .await?;
        // In one step, while the presented token still names the successor and the client never
        // used it: the successor is spent with no successor of its own (presenting it later is a
        // replay, and it cannot be reissued itself), and the new refresh token succeeds the
        // presented one. Of concurrent retries at most one is applied, so a family never holds
        // two usable refresh tokens.
        let change = TokenChange {
            expect: vec![
                (
                    *presented,
                    TokenExpectation::Spent {
                        successor: Some(successor),
                    },
                ),
                (successor, TokenExpectation::Live),
            ],
            mark: vec![
                (*presented, spent.with_successor(refresh_of(&entries))),
                (successor, spent_mark(&record, family, None, ctx.now)),
            ],
            insert: entries,
        };
        match ctx.tokens.update_tokens(&change, ctx.now).await? {
            TokenUpdate::Applied => {
                tracing::info!(client_id = %client.id, family_id = %spent.family_id, "refresh token presented again within its grace period; a fresh pair replaces the unused one");
                Ok(response)
            }
            // The client did use what the rotation issued (or another retry won): a replay.
            TokenUpdate::Conflict => {
                match Spent::of(ctx.tokens.find_token(presented, ctx.now).await?) {
                    Some(now_spent) => {
                        Err(replayed(ctx, client, &now_spent.client_id, &now_spent.family_id).await)
                    }
                    None => Err(unknown()),
                }
            }
            _ => Err(unknown()),
        }
    }
}

/// Refuses a record that is not a live refresh token of `client` (RFC 6749 §6: the server MUST
/// "validate the refresh token" and "ensure that the refresh token was issued to the
/// authenticated client"); answers its family.
///
/// Every refresh token grantor issues belongs to a family; a record without one stands alone,
/// and a token that stands alone is never refreshed.
fn check_record<'r>(
    record: &'r TokenRecord,
    client: &Client,
    now: OffsetDateTime,
) -> Result<&'r FamilyId, OAuthError> {
    let (TokenKind::Refresh, Some(family)) = (record.kind, &record.family_id) else {
        return Err(invalid().with_reason(Reason::NotARefreshToken));
    };
    if record.is_expired(now) {
        return Err(invalid().with_reason(Reason::RefreshTokenExpired));
    }
    if record.client_id != client.id {
        return Err(invalid().with_reason(Reason::RefreshTokenOtherClient));
    }
    Ok(family)
}

/// The access token's scope, and whether the response must name it.
///
/// RFC 6749 §6: "The requested scope MUST NOT include any scope not originally granted by the
/// resource owner, and if omitted is treated as equal to the scope originally granted". What the
/// client may ask for today bounds it too.
fn requested_scope(
    record: &TokenRecord,
    client: &Client,
    params: &Params<'_>,
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

/// The grant new tokens stand for: the refresh token's, with `scope` (and whether to show it)
/// and `audience` for the access token.
fn grant<'a>(
    client: &'a Client,
    record: &TokenRecord,
    family: &FamilyId,
    (scope, show_scope): (Scope, bool),
    audience: Vec<String>,
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
        family_id: Some(family.clone()),
        show_scope,
        audience,
        // The new refresh token is bound to the full original grant, as the one it replaces.
        resources: record.audience.clone(),
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
    match revoke_family(ctx.tokens, family, ctx.now).await {
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
