//! Protected resource metadata (RFC 9728): what a resource server publishes so that a client
//! learns which authorization servers issue its tokens, and for which scopes.

use serde::Serialize;

use crate::response::Response;
use crate::scope::Scope;

/// Where RFC 9728 §3.1 puts a resource's metadata, before the resource identifier's own path.
const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// A protected resource's metadata document (RFC 9728 §2).
///
/// ```
/// use grantor::ProtectedResourceMetadata;
///
/// let metadata = ProtectedResourceMetadata::new("https://api.example.com/reports")
///     .with_authorization_servers(["https://auth.example.com"])
///     .with_scopes_supported("reports:read".parse().unwrap());
/// assert_eq!(
///     metadata.well_known_url().as_deref(),
///     Some("https://api.example.com/.well-known/oauth-protected-resource/reports")
/// );
/// let response = metadata.into_response(); // 200, application/json
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ProtectedResourceMetadata {
    /// The resource identifier (§2: required), an `https` URL with no fragment: exactly what
    /// the metadata is fetched for (§3.3).
    pub resource: String,
    /// The issuers of the authorization servers whose tokens the resource accepts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub authorization_servers: Vec<String>,
    /// The scope tokens the resource's requests may need (§2: recommended).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scopes_supported: Vec<String>,
    /// How tokens may be presented: `header`, `body`, `query` (RFC 6750 §2).
    pub bearer_methods_supported: Vec<&'static str>,
    /// A name for people.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_name: Option<String>,
}

impl ProtectedResourceMetadata {
    /// The metadata of the resource `resource` (its identifier), taking tokens in the
    /// `Authorization` header only (add the others with
    /// [`with_bearer_methods`](Self::with_bearer_methods)).
    pub fn new(resource: impl Into<String>) -> Self {
        Self {
            resource: resource.into(),
            authorization_servers: Vec::new(),
            scopes_supported: Vec::new(),
            bearer_methods_supported: vec!["header"],
            resource_name: None,
        }
    }

    /// The issuers whose tokens the resource accepts.
    pub fn with_authorization_servers<I, S>(mut self, issuers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.authorization_servers = issuers.into_iter().map(Into::into).collect();
        self
    }

    /// The scope tokens the resource uses.
    pub fn with_scopes_supported(mut self, scope: Scope) -> Self {
        self.scopes_supported = scope.iter().map(str::to_owned).collect();
        self
    }

    /// How tokens may be presented, each of `header`, `body` and `query` (RFC 6750 §2); others
    /// are dropped.
    pub fn with_bearer_methods<'a>(mut self, methods: impl IntoIterator<Item = &'a str>) -> Self {
        self.bearer_methods_supported = methods
            .into_iter()
            .filter_map(|m| {
                ["header", "body", "query"]
                    .into_iter()
                    .find(|known| *known == m)
            })
            .collect();
        self
    }

    /// A name for people.
    pub fn with_resource_name(mut self, name: impl Into<String>) -> Self {
        self.resource_name = Some(name.into());
        self
    }

    /// The path the document is served at on the resource's host (RFC 9728 §3.1): the
    /// well-known path, then the resource identifier's own path, if it has one. `None` for an
    /// identifier that is no URL, or has a query or a fragment.
    pub fn well_known_path(&self) -> Option<String> {
        self.well_known().map(|(_, path)| path)
    }

    /// The URL the document is served at (§3.1), for a validator's
    /// [`with_resource_metadata`](crate::BearerValidator::with_resource_metadata).
    pub fn well_known_url(&self) -> Option<String> {
        let (mut url, path) = self.well_known()?;
        url.set_path(&path);
        Some(url.to_string())
    }

    /// The resource identifier, parsed, and the document's path on its host.
    fn well_known(&self) -> Option<(url::Url, String)> {
        let url = url::Url::parse(&self.resource).ok()?;
        if url.query().is_some() || url.fragment().is_some() || !url.has_host() {
            return None;
        }
        let path = format!("{WELL_KNOWN}{}", url.path().trim_end_matches('/'));
        Some((url, path))
    }

    /// The document as a response: `200`, `application/json`.
    pub fn into_response(&self) -> Response {
        Response::json(200, self)
    }
}
