//! The device authorization grant (RFC 8628), for clients that cannot show a browser or take
//! typed input: a CLI, a TV, an IoT device.
//!
//! ```text
//! +----------+                                +----------------+
//! |          |>---(A)-- Client Identifier --->|                |
//! |          |                                |                |
//! |          |<---(B)-- Device Code,      ---<|                |
//! |          |          User Code,            |                |
//! |  Device  |          & Verification URI    |                |
//! |  Client  |                                |                |
//! |          |  [polling]                     |                |
//! |          |>---(E)-- Device Code       --->|                |
//! |          |          & Client Identifier   |                |
//! |          |                                |  Authorization |
//! |          |<---(F)-- Access Token      ---<|     Server     |
//! +----------+   (& Optional Refresh Token)   |                |
//!       v                                     |                |
//!       :                                     |                |
//!      (C) User Code & Verification URI       |                |
//!       :                                     |                |
//!       v                                     |                |
//! +----------+                                |                |
//! | End User |                                |                |
//! |    at    |<---(D)-- End user reviews  --->|                |
//! |  Browser |          authorization request |                |
//! +----------+                                +----------------+
//! ```
//!
//! (A)/(B) are [`AuthorizationServer::device_authorization`](crate::AuthorizationServer::device_authorization)
//! (§3.1, §3.2); (D) is the host's verification page, calling
//! [`device_request`](crate::AuthorizationServer::device_request),
//! [`approve_device`](crate::AuthorizationServer::approve_device) and
//! [`deny_device`](crate::AuthorizationServer::deny_device) (§3.3); (E)/(F) are the token
//! endpoint with `grant_type=urn:ietf:params:oauth:grant-type:device_code` (§3.4, §3.5), handled
//! here.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;
use time::OffsetDateTime;

use crate::attempts::{AttemptGate, Count, Held};
use crate::builder::{AuthorizationServerBuilder, BuildError, Setups};
use crate::client::grant_scope;
use crate::client::Client;
use crate::error::OAuthError;
use crate::grant::context::{
    ensure_allowed, fresh_family_refused, nonzero, Context, Grant, Shared,
};
use crate::metadata::endpoint;
use crate::reason::Reason;
use crate::request::Params;
use crate::response::{Response, TokenResponse};
use crate::scope::Scope;
use crate::store::{
    AttemptKey, AttemptRule, DeviceAuthorization, DeviceCodeStore, DeviceDecided, DeviceDecision,
    DevicePace, DeviceRestore, DeviceSave, DeviceStatus, DeviceUpdate, PendingLimits,
};
use crate::token::{hex, DeviceCodeHash, UserCodeHash};
use crate::types::{ClientId, DeviceCode, FamilyId, GrantType, ResourceOwner, UserCode};
use crate::user_auth::LoginLimits;

/// How many fresh user codes to try when one collides with a live one. Each collision has odds
/// of (live requests) / 20^8, so a second is already a rarity.
const USER_CODE_TRIES: usize = 5;

/// How long, in seconds, a device authorization is kept after it expired, so that a late poll
/// hears `expired_token` (RFC 8628 §3.5) rather than `invalid_grant`: the stores are asked to
/// keep each request until `expires_at` plus this.
pub(crate) const EXPIRED_DEVICE_CODE_MEMORY: i64 = 600;

/// How much `slow_down` adds to a device's polling interval, in seconds (RFC 8628 §3.5).
const SLOW_DOWN_STEP: u64 = 5;

/// How many times one poll reads and writes back its device authorization when other polls of
/// the same device code keep getting there first (see [`DeviceCodeGrant::poll`]).
const POLL_TRIES: usize = 32;

/// Until when a store keeps `request`: [`EXPIRED_DEVICE_CODE_MEMORY`] past its expiry.
fn keep_until(request: &DeviceAuthorization) -> OffsetDateTime {
    request
        .expires_at
        .saturating_add(time::Duration::seconds(EXPIRED_DEVICE_CODE_MEMORY))
}

/// Whether a poll at `now` comes too soon after `last_poll` for `interval`, in whole seconds
/// (RFC 8628 §3.5): the first poll never does.
fn polled_too_soon(last_poll: Option<OffsetDateTime>, interval: u64, now: OffsetDateTime) -> bool {
    match last_poll {
        None => false,
        Some(last) => {
            let elapsed = now.unix_timestamp().saturating_sub(last.unix_timestamp());
            elapsed < i64::try_from(interval).unwrap_or(i64::MAX)
        }
    }
}

fn whole_seconds(at: OffsetDateTime) -> OffsetDateTime {
    at.replace_nanosecond(0).unwrap_or(at)
}

/// The device grant's settings, as the builder methods below set them.
#[derive(Clone)]
pub(crate) struct Setup {
    devices: Option<Arc<dyn DeviceCodeStore>>,
    ttl: Duration,
    interval: Duration,
    user_code_limit: Option<AttemptRule>,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            devices: None,
            ttl: Duration::from_secs(600),
            interval: Duration::from_secs(5),
            user_code_limit: Some(AttemptRule {
                max_failures: 10,
                window: Duration::from_secs(15 * 60),
            }),
        }
    }
}

impl AuthorizationServerBuilder {
    /// Enables the device authorization grant (RFC 8628) for clients registered for it,
    /// keeping requests in `devices`. Needs an [`issuer`](Self::issuer): the
    /// `verification_uri` is the issuer joined with
    /// [`EndpointPaths::device_verification`](crate::EndpointPaths::device_verification).
    pub fn enable_device_code_grant(mut self, devices: Arc<dyn DeviceCodeStore>) -> Self {
        self.setup::<Setup>().devices = Some(devices);
        self
    }

    /// How long device codes and user codes live (`expires_in`). Default 10 minutes.
    pub fn device_code_lifetime(mut self, lifetime: Duration) -> Self {
        self.setup::<Setup>().ttl = lifetime;
        self
    }

    /// The minimum time between polls handed to devices (`interval`, whole seconds). Default 5 s
    /// (RFC 8628 §3.2's default).
    pub fn device_polling_interval(mut self, interval: Duration) -> Self {
        self.setup::<Setup>().interval = interval;
        self
    }

    /// The limit on wrong user codes entered on the verification page (RFC 8628 §5.1), counted
    /// per the caller address the page passes. Default: 10 per 15 minutes. `None` turns it off.
    pub fn device_user_code_limit(mut self, rule: Option<AttemptRule>) -> Self {
        self.setup::<Setup>().user_code_limit = rule;
        self
    }
}

/// Makes the grant if the builder enabled it.
pub(crate) fn build(
    setups: &Setups,
    shared: &Shared<'_>,
) -> Result<Option<DeviceCodeGrant>, BuildError> {
    let setup = setups.read::<Setup>();
    let ttl = nonzero(setup.ttl)?;
    nonzero(setup.interval)?;
    let Some(devices) = setup.devices else {
        return Ok(None);
    };
    let issuer = shared.issuer.ok_or(BuildError::DeviceGrantNeedsIssuer)?;
    let max_wait = shared
        .login_limits
        .map_or(LoginLimits::default().max_wait, |limits| limits.max_wait);
    Ok(Some(DeviceCodeGrant {
        devices,
        ttl,
        interval: setup.interval.as_secs(),
        verification_uri: endpoint(issuer, &shared.paths.device_verification),
        user_code_limit: setup
            .user_code_limit
            .map(|rule| (shared.gate(max_wait), rule)),
        limits: shared.pending_limits,
    }))
}

/// The device grant's settings and store.
pub(crate) struct DeviceCodeGrant {
    pub(crate) devices: Arc<dyn DeviceCodeStore>,
    /// How long device and user codes live (`expires_in`).
    pub(crate) ttl: time::Duration,
    /// The polling interval handed out (`interval`), in seconds.
    pub(crate) interval: u64,
    /// The absolute verification URI (`verification_uri`).
    pub(crate) verification_uri: String,
    /// The limit on wrong user codes (RFC 8628 §5.1), and the limiter that counts them.
    pub(crate) user_code_limit: Option<(AttemptGate, AttemptRule)>,
    /// The bounds on unexpired requests, per client and in all.
    pub(crate) limits: PendingLimits,
}

/// What binds a person's decision on the verification page to the request they were shown
/// (RFC 8628 §5.4): the page puts it in its form, and
/// [`approve_device`](crate::AuthorizationServer::approve_device) and
/// [`deny_device`](crate::AuthorizationServer::deny_device) refuse a decision whose
/// confirmation is not that of the request the user code names now.
///
/// It is a digest of the user code and of what the page showed (client, scope, times), not a
/// secret: the page's CSRF protection keeps other sites from posting decisions.
#[derive(Clone, PartialEq, Eq)]
pub struct DeviceConfirmation(String);

impl DeviceConfirmation {
    /// A confirmation as read back from the page's form.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value to put in the form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for DeviceConfirmation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Derived from the user code: a log line must not let anyone search for the code.
        f.write_str("DeviceConfirmation([redacted])")
    }
}

/// A pending device request as the verification page shows it, before the person decides:
/// what the device asks for, and the confirmation to carry to the decision.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeviceRequest {
    /// The request as the store keeps it: the client (the device) and the scope it asks for.
    pub authorization: DeviceAuthorization,
    /// What the confirmation page's form carries to the decision.
    pub confirmation: DeviceConfirmation,
}

/// The device authorization response (RFC 8628 §3.2).
#[derive(Serialize)]
struct DeviceAuthorizationResponse<'a> {
    device_code: &'a str,
    user_code: String,
    verification_uri: &'a str,
    verification_uri_complete: String,
    expires_in: i64,
    interval: u64,
}

fn unknown_user_code() -> OAuthError {
    OAuthError::invalid_request("the code is unknown, expired or already used")
        .with_reason(Reason::UserCodeUnknown)
}

fn unknown_device_code() -> OAuthError {
    OAuthError::invalid_grant("the device code is unknown or was already used")
        .with_reason(Reason::DeviceCodeUnknown)
}

fn slow_down(interval: u64) -> OAuthError {
    OAuthError::slow_down(format!(
        "polled too often: wait at least {interval} seconds between requests"
    ))
    .with_reason(Reason::DeviceSlowDown)
}

fn user_code_refusal(retry_after: u64) -> OAuthError {
    OAuthError::invalid_request("too many wrong codes were entered; try again later")
        .with_reason(Reason::UserCodeAttemptsExceeded)
        .with_retry_after(retry_after)
}

fn user_code_busy() -> OAuthError {
    OAuthError::temporarily_unavailable("too many codes are being checked at once; try again")
        .with_reason(Reason::UserCodeBusy)
        .with_retry_after(1)
}

fn full(retry_after: std::time::Duration) -> OAuthError {
    OAuthError::temporarily_unavailable(
        "too many device authorization requests are waiting; try again later",
    )
    .with_reason(Reason::DeviceRequestsFull)
    .with_retry_after(retry_after.as_secs().max(1))
}

impl DeviceCodeGrant {
    /// The device authorization request (RFC 8628 §3.1) of an authenticated `client`: answers
    /// the §3.2 response, or an error for the §5.2 error response.
    pub(crate) async fn authorize(
        &self,
        client: &Client,
        params: &Params<'_>,
        now: OffsetDateTime,
    ) -> Result<Response, OAuthError> {
        ensure_allowed(client, GrantType::DeviceCode)?;
        let granted = grant_scope(client, params.get("scope"))?;
        // RFC 8628 defines no `resource` here, and the request does not keep one: rather than
        // drop it unseen (and issue tokens the client believes bound), refuse it and say where
        // it goes (RFC 8707 §2.2: at the token endpoint, "for all grant types").
        if params.all("resource").next().is_some() {
            return Err(OAuthError::invalid_target(
                "name the resource when polling the token endpoint, not in the device \
                 authorization request",
            )
            .with_reason(Reason::ResourceNotAllowed));
        }
        let issued_at = whole_seconds(now);
        let request = DeviceAuthorization {
            client_id: client.id.clone(),
            scope: granted.scope,
            status: DeviceStatus::Pending,
            interval: self.interval,
            last_poll: None,
            issued_at,
            expires_at: issued_at.saturating_add(self.ttl),
        };
        let device_code = DeviceCode::generate();
        let device_hash = DeviceCodeHash::of(&device_code);
        for _ in 0..USER_CODE_TRIES {
            let user_code = UserCode::generate();
            let saved = self
                .devices
                .save_device_authorization(
                    &device_hash,
                    &UserCodeHash::of(&user_code),
                    &request,
                    keep_until(&request),
                    &self.limits,
                    now,
                )
                .await?;
            match saved {
                DeviceSave::Saved => {}
                DeviceSave::Full { retry_after } => return Err(full(retry_after)),
                _ => continue,
            }
            let shown = user_code.display();
            let complete = complete_uri(&self.verification_uri, &shown);
            tracing::info!(client_id = %client.id, "device authorization issued");
            let body = DeviceAuthorizationResponse {
                device_code: device_code.secret(),
                user_code: shown,
                verification_uri: &self.verification_uri,
                verification_uri_complete: complete,
                expires_in: self.ttl.whole_seconds(),
                interval: self.interval,
            };
            return Ok(Response::json(200, &body).no_store());
        }
        Err(
            OAuthError::temporarily_unavailable("no free user code could be found; try again")
                .with_reason(Reason::UserCodesExhausted),
        )
    }

    /// Polling (RFC 8628 §3.4, §3.5): `grant_type=urn:ietf:params:oauth:grant-type:device_code`.
    pub(crate) async fn handle(
        &self,
        ctx: &Context<'_>,
        client: &Client,
        params: &Params<'_>,
    ) -> Result<TokenResponse, OAuthError> {
        ensure_allowed(client, GrantType::DeviceCode)?;
        let device_code = params.require("device_code")?;
        // RFC 8707 §2.2: the device authorization named no resource, so the tokens may be for
        // any the client may name (checked before the approval is collected).
        let resources = ctx.audience(params, &[], client)?;
        let device_hash = DeviceCodeHash::of(&DeviceCode::new(device_code));
        let request = self.poll(&device_hash, &client.id, ctx.now).await?;
        let DeviceStatus::Approved {
            user_id,
            username,
            scope,
        } = request.status.clone()
        else {
            return Err(
                OAuthError::server_error("the store answered an approval that is not one")
                    .with_reason(Reason::DeviceStatusMismatch),
            );
        };
        let with_refresh = ctx.issues_refresh_token(client);
        // RFC 6749 §5.1: scope is required when it differs from what was asked, and the device
        // may have asked for none (the default) or been granted less; always sending it is
        // allowed, and saves keeping what the request said.
        let show_scope = true;
        let minted = ctx
            .mint(
                Grant {
                    client,
                    owner: Some(ResourceOwner {
                        id: user_id,
                        username,
                    }),
                    refresh_scope: scope.clone(),
                    scope,
                    family_id: Some(FamilyId::generate()),
                    show_scope,
                    audience: resources.clone(),
                    resources,
                },
                with_refresh,
            )
            .await;
        // If saving fails, the collected approval is put back for the device's next poll.
        let give_back = async {
            let restored = self
                .devices
                .restore_device_approval(&device_hash, &request, keep_until(&request), ctx.now)
                .await?;
            // Only a log line depends on it: a pattern rather than `!=`, which mutation
            // testing would flip with nothing for a test to see.
            let DeviceRestore::Restored = restored else {
                // Another request is stored under the device code now, or the approval is past
                // keeping: the device's next poll will not find it, and it starts again.
                tracing::warn!(
                    client_id = %request.client_id,
                    outcome = ?restored,
                    "device approval not put back"
                );
                return Ok(());
            };
            Ok(())
        };
        ctx.save_or_give_back(minted, fresh_family_refused, "device approval", give_back)
            .await
    }

    /// One poll of the device code hashing to `device` by `client` (RFC 8628 §3.5): the approved
    /// request, taken from the store (spent), or the error the poll answers.
    ///
    /// A pending request's poll is written back with a compare-and-set on its last poll: when
    /// another poll of the same code got there first, this one reads again and is judged
    /// after it, so concurrent polls answer as sequential ones would (the first
    /// `authorization_pending`, the others `slow_down`, each interval 5 s longer).
    async fn poll(
        &self,
        device: &DeviceCodeHash,
        client: &ClientId,
        now: OffsetDateTime,
    ) -> Result<DeviceAuthorization, OAuthError> {
        let mut interval = self.interval;
        for _ in 0..POLL_TRIES {
            let Some(request) = self.devices.find_device(device, now).await? else {
                return Err(unknown_device_code());
            };
            if &request.client_id != client {
                return Err(OAuthError::invalid_grant(
                    "the device code was issued to another client",
                )
                .with_reason(Reason::DeviceCodeOtherClient));
            }
            if now >= request.expires_at {
                return Err(OAuthError::expired_token(
                    "the device code expired; start again with a new device authorization request",
                )
                .with_reason(Reason::DeviceCodeExpired));
            }
            match request.status {
                // Collected even by a poll that comes too soon. Of concurrent polls one takes
                // it; for the others it is spent.
                DeviceStatus::Approved { .. } => {
                    return self
                        .devices
                        .take_approved(device, now)
                        .await?
                        .ok_or_else(unknown_device_code);
                }
                DeviceStatus::Denied => {
                    return Err(OAuthError::access_denied("the user denied the request")
                        .with_reason(Reason::DeviceDenied))
                }
                DeviceStatus::Pending => {}
            }
            let too_soon = polled_too_soon(request.last_poll, request.interval, now);
            interval = if too_soon {
                request.interval.saturating_add(SLOW_DOWN_STEP)
            } else {
                request.interval
            };
            let recorded = self
                .devices
                .record_poll(
                    device,
                    &DevicePace::of(&request),
                    &DevicePace::new(Some(whole_seconds(now)), interval),
                    now,
                )
                .await?;
            match recorded {
                DeviceUpdate::Applied if too_soon => return Err(slow_down(interval)),
                DeviceUpdate::Applied => {
                    return Err(OAuthError::authorization_pending(
                        "the user has not yet approved or denied the request; keep polling",
                    )
                    .with_reason(Reason::DevicePending))
                }
                // Another poll (or a decision) changed the request since it was read: read it
                // again.
                DeviceUpdate::Conflict => continue,
            }
        }
        // Other polls of this code kept changing it under this one, POLL_TRIES times: the
        // device is polling far too fast. Answer slow_down (with the interval last worked out)
        // without recording this poll.
        Err(slow_down(interval))
    }

    /// The pending request behind a typed user code, through the limit on wrong codes, with
    /// the confirmation that binds a decision to it.
    pub(crate) async fn find(
        &self,
        user_code: &UserCode,
        caller: IpAddr,
        now: OffsetDateTime,
    ) -> Result<DeviceRequest, OAuthError> {
        let held = match &self.user_code_limit {
            Some((gate, rule)) => {
                let count = Count {
                    key: AttemptKey::user_code_entry(caller),
                    rule: *rule,
                    refusal: user_code_refusal,
                };
                gate.admit(vec![count], user_code_busy).await?
            }
            None => Held::nothing(),
        };
        let hash = UserCodeHash::of(user_code);
        match self.devices.find_device_authorization(&hash, now).await {
            Ok(Some(authorization)) => {
                held.succeeded().await;
                Ok(DeviceRequest {
                    confirmation: confirmation(&hash, &authorization),
                    authorization,
                })
            }
            Ok(None) => {
                held.failed().await;
                Err(unknown_user_code())
            }
            Err(e) => {
                held.not_made().await;
                Err(e.into())
            }
        }
    }

    /// The pending request behind `user_code`, as [`find`](Self::find), refused unless it is
    /// the one `confirmation` was given for.
    pub(crate) async fn find_confirmed(
        &self,
        user_code: &UserCode,
        confirmation: &DeviceConfirmation,
        caller: IpAddr,
        now: OffsetDateTime,
    ) -> Result<DeviceAuthorization, OAuthError> {
        let found = self.find(user_code, caller, now).await?;
        let same: bool = found
            .confirmation
            .0
            .as_bytes()
            .ct_eq(confirmation.0.as_bytes())
            .into();
        if !same {
            return Err(OAuthError::invalid_request(
                "the decision is not for the request that was shown; look the code up again",
            )
            .with_reason(Reason::DeviceConfirmationMismatch));
        }
        Ok(found.authorization)
    }

    /// `user` approves the request behind `user_code` that the page showed (see
    /// [`AuthorizationServer::approve_device`](crate::AuthorizationServer::approve_device)).
    pub(crate) async fn approve(
        &self,
        ctx: &Context<'_>,
        user_code: &UserCode,
        confirmation: &DeviceConfirmation,
        caller: IpAddr,
        user: ResourceOwner,
        scope: Option<Scope>,
    ) -> Result<(), OAuthError> {
        let request = self
            .find_confirmed(user_code, confirmation, caller, ctx.now)
            .await?;
        let scope = approved_scope(&request.scope, scope)?;
        let client = ctx.clients.find_client(&request.client_id).await?;
        if !client.is_some_and(|c| c.allows(GrantType::DeviceCode)) {
            return Err(OAuthError::invalid_request(
                "the client's registration changed; start again",
            )
            .with_reason(Reason::GrantWithdrawn));
        }
        self.decide(
            user_code,
            DeviceDecision::Approve {
                user_id: user.id,
                username: user.username,
                scope,
            },
            ctx.now,
        )
        .await?;
        tracing::info!(client_id = %request.client_id, "device authorization approved");
        Ok(())
    }

    /// The person denies the request behind `user_code` that the page showed.
    pub(crate) async fn deny(
        &self,
        ctx: &Context<'_>,
        user_code: &UserCode,
        confirmation: &DeviceConfirmation,
        caller: IpAddr,
    ) -> Result<(), OAuthError> {
        let request = self
            .find_confirmed(user_code, confirmation, caller, ctx.now)
            .await?;
        self.decide(user_code, DeviceDecision::Deny, ctx.now)
            .await?;
        tracing::info!(client_id = %request.client_id, "device authorization denied");
        Ok(())
    }

    /// Records a decision on the request behind `user_code`, already found with
    /// [`find_confirmed`](Self::find_confirmed).
    async fn decide(
        &self,
        user_code: &UserCode,
        decision: DeviceDecision,
        now: OffsetDateTime,
    ) -> Result<(), OAuthError> {
        let decided = self
            .devices
            .decide_device_authorization(&UserCodeHash::of(user_code), &decision, now)
            .await?;
        match decided {
            DeviceDecided::Decided => Ok(()),
            DeviceDecided::NotPending => Err(unknown_user_code()),
        }
    }
}

/// The confirmation of the request behind a user code: a digest of the code's hash and of what
/// the page shows.
fn confirmation(user_code: &UserCodeHash, request: &DeviceAuthorization) -> DeviceConfirmation {
    let mut digest = Sha256::new();
    digest.update(b"grantor device confirmation\0");
    digest.update(user_code.as_bytes());
    for part in [
        request.client_id.as_str(),
        &request.scope.to_string(),
        &request.issued_at.unix_timestamp().to_string(),
        &request.expires_at.unix_timestamp().to_string(),
    ] {
        digest.update(part.as_bytes());
        digest.update(b"\0");
    }
    DeviceConfirmation(hex(&digest.finalize()))
}

/// The scope a person approves: what was asked, or a part of it.
pub(crate) fn approved_scope(asked: &Scope, approved: Option<Scope>) -> Result<Scope, OAuthError> {
    match approved {
        None => Ok(asked.clone()),
        Some(scope) if scope.is_subset_of(asked) && !scope.is_empty() => Ok(scope),
        Some(_) => Err(OAuthError::invalid_scope(
            "the approved scope must be a non-empty part of the scope the device asked for",
        )
        .with_reason(Reason::ApprovedScopeTooWide)),
    }
}

/// `verification_uri` with the user code as a query parameter (RFC 8628 §3.3.1).
fn complete_uri(verification_uri: &str, user_code: &str) -> String {
    match url::Url::parse(verification_uri) {
        Ok(mut url) => {
            url.query_pairs_mut().append_pair("user_code", user_code);
            url.to_string()
        }
        Err(_) => format!("{verification_uri}?user_code={user_code}"),
    }
}
