//! One module per grant type, each a handler of the same shape, and the one list of them.
//!
//! A grant's module holds everything about it: its `enable_…` and tuning methods on the
//! [`AuthorizationServerBuilder`](crate::AuthorizationServerBuilder), its setup, a `build`
//! function that checks the setup and makes the handler, and the handler, whose token-endpoint
//! method has the shape
//!
//! ```text
//! async fn handle(&self, ctx: &Context<'_>, client: &Client, params: &Params<'_>)
//!     -> Result<TokenResponse | TokenOutcome, OAuthError>
//! ```
//!
//! The server has already parsed the request and authenticated the client when it calls a
//! handler. Handlers never call each other; what they share (the request's context, minting and
//! saving tokens) lives in [`context`].
//!
//! This file is the registration point: [`Handler`] lists every grant, and its exhaustive
//! matches are what the token endpoint's dispatch, the metadata document, `Debug` and `build`
//! read. Adding a grant adds its module, a [`GrantType`] variant, and a variant here; the
//! compiler points at every match that must learn it.

pub(crate) mod authorization_code;
pub(crate) mod client_credentials;
pub(crate) mod context;
pub(crate) mod device_code;
pub(crate) mod implicit;
pub(crate) mod mfa_otp;
pub(crate) mod password;
pub(crate) mod refresh_token;

use crate::builder::{BuildError, Setups};
use crate::client::Client;
use crate::error::OAuthError;
use crate::request::Params;
use crate::response::TokenOutcome;
use crate::types::GrantType;

use self::authorization_code::AuthorizationCodeGrant;
use self::client_credentials::ClientCredentialsGrant;
use self::context::{Context, RefreshPolicy, Shared};
use self::device_code::DeviceCodeGrant;
use self::implicit::ImplicitGrant;
use self::mfa_otp::MfaOtpGrant;
use self::password::PasswordGrant;
use self::refresh_token::RefreshTokenGrant;

/// Every grant grantor implements, with its handler.
pub(crate) enum Handler {
    AuthorizationCode(AuthorizationCodeGrant),
    Implicit(ImplicitGrant),
    Password(PasswordGrant),
    ClientCredentials(ClientCredentialsGrant),
    RefreshToken(RefreshTokenGrant),
    DeviceCode(DeviceCodeGrant),
    MfaOtp(MfaOtpGrant),
}

impl Handler {
    /// The grant type this handler serves.
    pub(crate) fn grant_type(&self) -> GrantType {
        match self {
            Self::AuthorizationCode(_) => GrantType::AuthorizationCode,
            Self::Implicit(_) => GrantType::Implicit,
            Self::Password(_) => GrantType::Password,
            Self::ClientCredentials(_) => GrantType::ClientCredentials,
            Self::RefreshToken(_) => GrantType::RefreshToken,
            Self::DeviceCode(_) => GrantType::DeviceCode,
            Self::MfaOtp(_) => GrantType::MfaOtp,
        }
    }

    /// The authorization endpoint's `response_type` this grant answers, if any (RFC 8414 §2
    /// `response_types_supported`).
    pub(crate) fn response_type(&self) -> Option<&'static str> {
        match self {
            Self::AuthorizationCode(_) => Some("code"),
            Self::Implicit(_) => Some("token"),
            Self::Password(_)
            | Self::ClientCredentials(_)
            | Self::RefreshToken(_)
            | Self::DeviceCode(_)
            | Self::MfaOtp(_) => None,
        }
    }

    /// Handles a token request of this grant type; `None` for a grant that has no token
    /// request (the implicit grant issues its token at the authorization endpoint, RFC 6749
    /// §4.2).
    pub(crate) async fn token(
        &self,
        ctx: &Context<'_>,
        client: &Client,
        params: &Params<'_>,
    ) -> Option<Result<TokenOutcome, OAuthError>> {
        Some(match self {
            Self::AuthorizationCode(h) => h.handle(ctx, client, params).await.map(Into::into),
            Self::Implicit(_) => return None,
            Self::Password(h) => h.handle(ctx, client, params).await,
            Self::ClientCredentials(h) => h.handle(ctx, client, params).await.map(Into::into),
            Self::RefreshToken(h) => h.handle(ctx, client, params).await.map(Into::into),
            Self::DeviceCode(h) => h.handle(ctx, client, params).await.map(Into::into),
            Self::MfaOtp(h) => h.handle(ctx, client, params).await.map(Into::into),
        })
    }
}

/// The grants enabled on a server, in the order the metadata document lists them.
pub(crate) struct Grants {
    handlers: Vec<Handler>,
}

impl Grants {
    /// Builds every enabled grant from its setup.
    pub(crate) fn build(setups: &Setups, shared: &Shared<'_>) -> Result<Self, BuildError> {
        let handlers = [
            authorization_code::build(setups, shared)?.map(Handler::AuthorizationCode),
            implicit::build(setups, shared)?.map(Handler::Implicit),
            password::build(setups, shared)?.map(Handler::Password),
            client_credentials::build(setups, shared)?.map(Handler::ClientCredentials),
            refresh_token::build(setups, shared)?.map(Handler::RefreshToken),
            device_code::build(setups, shared)?.map(Handler::DeviceCode),
            mfa_otp::build(setups, shared)?.map(Handler::MfaOtp),
        ];
        let handlers: Vec<Handler> = handlers.into_iter().flatten().collect();
        match handlers.as_slice() {
            [] => Err(BuildError::NoGrantEnabled),
            [Handler::RefreshToken(_)] => Err(BuildError::RefreshGrantAlone),
            _ => Ok(Self { handlers }),
        }
    }

    /// The enabled handler of `grant`.
    pub(crate) fn get(&self, grant: GrantType) -> Option<&Handler> {
        self.handlers.iter().find(|h| h.grant_type() == grant)
    }

    /// The enabled grant types.
    pub(crate) fn types(&self) -> impl Iterator<Item = GrantType> + '_ {
        self.handlers.iter().map(Handler::grant_type)
    }

    /// The `response_type`s the enabled grants answer at the authorization endpoint.
    pub(crate) fn response_types(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.handlers.iter().filter_map(Handler::response_type)
    }

    /// The authorization code grant, which holds the authorization endpoint, if enabled.
    pub(crate) fn authorization_code(&self) -> Option<&AuthorizationCodeGrant> {
        self.handlers.iter().find_map(|h| match h {
            Handler::AuthorizationCode(grant) => Some(grant),
            _ => None,
        })
    }

    /// The implicit grant, if enabled.
    pub(crate) fn implicit(&self) -> Option<&ImplicitGrant> {
        self.handlers.iter().find_map(|h| match h {
            Handler::Implicit(grant) => Some(grant),
            _ => None,
        })
    }

    /// The device authorization grant, if enabled.
    pub(crate) fn device_code(&self) -> Option<&DeviceCodeGrant> {
        self.handlers.iter().find_map(|h| match h {
            Handler::DeviceCode(grant) => Some(grant),
            _ => None,
        })
    }

    /// The refresh grant's policy, if it is enabled.
    pub(crate) fn refresh_policy(&self) -> Option<RefreshPolicy> {
        self.handlers.iter().find_map(|h| match h {
            Handler::RefreshToken(grant) => Some(grant.policy),
            _ => None,
        })
    }
}
