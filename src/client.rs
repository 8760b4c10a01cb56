//! Registered clients, as a [`ClientStore`](crate::ClientStore) returns them.

use crate::error::OAuthError;
use crate::reason::Reason;
use crate::resource::Resource;
use crate::scope::{parse_requested, Scope};
use crate::token::SecretHash;
use crate::types::{ClientId, GrantType, RedirectUri};

/// Whether a client can keep a secret (RFC 6749 §2.1).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum ClientKind {
    /// A public client (a SPA, a mobile or CLI app): it has no secret and authenticates with
    /// `client_id` alone. PKCE is required for it wherever codes are involved.
    Public,
    /// A confidential client: it authenticates with its secret, kept here only as a hash.
    Confidential {
        /// The salted hash of the client's secret.
        secret: SecretHash,
    },
}

/// A registered client, as a [`ClientStore`](crate::ClientStore) returns it.
///
/// ```
/// use grantor::{Client, ClientSecret, GrantType, SecretHash, Scope};
///
/// let client = Client::confidential("clientapp", SecretHash::new(&ClientSecret::new("123456")))
///     .with_grant_types([GrantType::Password, GrantType::RefreshToken])
///     .with_allowed_scope("read write".parse().unwrap())
///     .with_default_scope("read".parse().unwrap());
/// assert!(client.allows(GrantType::Password));
/// assert!(!client.allows(GrantType::ClientCredentials));
/// ```
#[derive(Clone, Debug)]
pub struct Client {
    /// The client identifier.
    pub id: ClientId,
    /// Public or confidential, with the secret's hash for the latter.
    pub kind: ClientKind,
    /// The registered redirection URIs, matched exactly.
    pub redirect_uris: Vec<RedirectUri>,
    /// The grant types this client may use; any other gets `unauthorized_client`.
    pub grant_types: Vec<GrantType>,
    /// Every scope token this client may ask for.
    pub allowed_scope: Scope,
    /// The scope granted when a request names none (RFC 6749 §3.3). If empty, such a request
    /// fails with `invalid_scope`.
    pub default_scope: Scope,
    /// What its access tokens are: opaque, or JWTs (RFC 9068). `None`: the server's default
    /// ([`access_token_format`](crate::AuthorizationServerBuilder::access_token_format)).
    pub access_token_format: Option<AccessTokenFormat>,
    /// The resources (RFC 8707) this client may name in `resource`. `None`: those the server
    /// knows ([`resources`](crate::AuthorizationServerBuilder::resources)).
    pub allowed_resources: Option<Vec<Resource>>,
}

/// What an access token is (refresh tokens are always opaque).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum AccessTokenFormat {
    /// 256 random bits: resource servers check it with the authorization server (a shared
    /// store, or introspection).
    #[default]
    Opaque,
    /// A JWT access token (RFC 9068) signed with the server's
    /// [`token_signer`](crate::AuthorizationServerBuilder::token_signer): resource servers may
    /// check it alone, against the server's JWK Set. The store keeps its record as for an
    /// opaque token, so revocation and introspection work alike.
    Jwt,
}

impl Client {
    /// A public client with no grant types, no scopes and no redirect URIs yet.
    pub fn public(id: impl Into<ClientId>) -> Self {
        Self::with_kind(id.into(), ClientKind::Public)
    }

    /// A confidential client with the given secret hash, and no grant types, scopes or redirect
    /// URIs yet.
    pub fn confidential(id: impl Into<ClientId>, secret: SecretHash) -> Self {
        Self::with_kind(id.into(), ClientKind::Confidential { secret })
    }

    fn with_kind(id: ClientId, kind: ClientKind) -> Self {
        Self {
            id,
            kind,
            redirect_uris: Vec::new(),
            grant_types: Vec::new(),
            allowed_scope: Scope::empty(),
            default_scope: Scope::empty(),
            access_token_format: None,
            allowed_resources: None,
        }
    }

    /// Sets the grant types the client may use.
    pub fn with_grant_types(mut self, grants: impl IntoIterator<Item = GrantType>) -> Self {
        self.grant_types = grants.into_iter().collect();
        self
    }

    /// Sets every scope the client may ask for.
    pub fn with_allowed_scope(mut self, scope: Scope) -> Self {
        self.allowed_scope = scope;
        self
    }

    /// Sets the scope granted when a request names none.
    pub fn with_default_scope(mut self, scope: Scope) -> Self {
        self.default_scope = scope;
        self
    }

    /// Its access tokens' format, whatever the server's default.
    pub fn with_access_token_format(mut self, format: AccessTokenFormat) -> Self {
        self.access_token_format = Some(format);
        self
    }

    /// The resources (RFC 8707) this client may name in `resource`, instead of those the server
    /// knows ([`resources`](crate::AuthorizationServerBuilder::resources)); an empty list lets
    /// it name none.
    pub fn with_resources(mut self, resources: impl IntoIterator<Item = Resource>) -> Self {
        self.allowed_resources = Some(resources.into_iter().collect());
        self
    }

    /// Sets the registered redirection URIs.
    pub fn with_redirect_uris<I, U>(mut self, uris: I) -> Self
    where
        I: IntoIterator<Item = U>,
        U: Into<RedirectUri>,
    {
        self.redirect_uris = uris.into_iter().map(Into::into).collect();
        self
    }

    /// A copy whose strings (id, redirect URIs, scopes) are its own, not shared with this one's:
    /// for a store that keeps a copy per thread, so that threads do not share reference counts.
    pub(crate) fn unshared_copy(&self) -> Self {
        Self {
            id: ClientId::new(self.id.as_str()),
            kind: self.kind.clone(),
            redirect_uris: self
                .redirect_uris
                .iter()
                .map(|uri| RedirectUri::new(uri.as_str()))
                .collect(),
            grant_types: self.grant_types.clone(),
            allowed_scope: self.allowed_scope.unshared_copy(),
            default_scope: self.default_scope.unshared_copy(),
            access_token_format: self.access_token_format,
            allowed_resources: self.allowed_resources.clone(),
        }
    }

    /// Whether the client may use `grant`.
    pub fn allows(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }

    /// The resources (RFC 8707) of its own list, if it has one.
    pub(crate) fn own_resources(&self) -> Option<&[Resource]> {
        self.allowed_resources.as_deref()
    }

    /// Whether the client is public (has no secret).
    pub fn is_public(&self) -> bool {
        matches!(self.kind, ClientKind::Public)
    }
}

/// What a token request is granted, and whether the response must say so.
#[derive(Debug)]
pub(crate) struct GrantedScope {
    pub(crate) scope: Scope,
    /// RFC 6749 §5.1: `scope` is "OPTIONAL, if identical to the scope requested by the client;
    /// otherwise, REQUIRED".
    pub(crate) differs_from_request: bool,
}

/// Decides the scope of a new grant for `client` from the raw `scope` parameter.
///
/// RFC 6749 §3.3: "If the client omits the scope parameter when requesting authorization, the
/// authorization server MUST either process the request using a pre-defined default value or fail
/// the request indicating an invalid scope."
pub(crate) fn grant_scope(
    client: &Client,
    requested: Option<&str>,
) -> Result<GrantedScope, OAuthError> {
    match requested {
        None => {
            if client.default_scope.is_empty() {
                return Err(OAuthError::invalid_scope(
                    "no scope was requested and the client has no default scope",
                )
                .with_reason(Reason::NoDefaultScope));
            }
            Ok(GrantedScope {
                scope: client.default_scope.clone(),
                differs_from_request: true,
            })
        }
        Some(raw) => {
            let scope = parse_requested(raw)?;
            if !scope.is_subset_of(&client.allowed_scope) {
                return Err(OAuthError::invalid_scope(
                    "the requested scope exceeds the scope this client may request",
                )
                .with_reason(Reason::ScopeNotAllowed));
            }
            Ok(GrantedScope {
                scope,
                differs_from_request: false,
            })
        }
    }
}
