//! Conversions to and from the [`http`] crate's types (feature `http`).
//!
//! Most Rust web frameworks (axum, hyper, tower, warp, salvo…) speak `http::Request` and
//! `http::Response`, so with this feature the glue between a framework and grantor is a few
//! lines:
//!
//! ```
//! # async fn demo(server: grantor::AuthorizationServer, request: http::Request<Vec<u8>>) {
//! let response: http::Response<Vec<u8>> =
//!     server.token(grantor::TokenRequest::from_http(&request)).await.into();
//! # }
//! ```

use std::borrow::Cow;

use crate::bearer::{AccessGrant, BearerError, BearerValidator, Presented, ResourceRequest};
use crate::request::TokenRequest;
use crate::request::{BodyType, Method};
use crate::response::Response;
use crate::scope::Scope;

/// The value of header `name`, with repeated headers joined by `, ` as HTTP allows (a request
/// that repeats `Authorization` then fails to parse instead of having one copy picked). Borrowed
/// when the header is sent once.
pub(crate) fn header(
    headers: &http::HeaderMap,
    name: http::header::HeaderName,
) -> Option<Cow<'_, [u8]>> {
    let mut values = headers.get_all(name).iter();
    let first = values.next()?;
    let Some(second) = values.next() else {
        return Some(Cow::Borrowed(first.as_bytes()));
    };
    let mut out = first.as_bytes().to_vec();
    for v in std::iter::once(second).chain(values) {
        out.extend_from_slice(b", ");
        out.extend_from_slice(v.as_bytes());
    }
    Some(Cow::Owned(out))
}

/// The `Content-Type` value; a repeated header names no type grantor reads (joined, as HTTP
/// would, it is no media type at all).
fn content_type(headers: &http::HeaderMap) -> Option<&[u8]> {
    let mut values = headers.get_all(http::header::CONTENT_TYPE).iter();
    match (values.next(), values.next()) {
        (Some(only), None) => Some(only.as_bytes()),
        (Some(_), Some(_)) => Some(b""),
        (None, _) => None,
    }
}

impl TokenRequest {
    /// A token request from an `http::Request`: method, `Content-Type`, `Authorization` and body
    /// (copied; `TokenRequest::from(request)` takes a request by value and keeps its body).
    pub fn from_http<B: AsRef<[u8]>>(request: &http::Request<B>) -> Self {
        TokenRequest::new(request.body().as_ref())
            .with_http_headers(request.method(), request.headers())
    }

    fn with_http_headers(mut self, method: &http::Method, headers: &http::HeaderMap) -> Self {
        self = self.with_method(method.as_str());
        if let Some(ct) = content_type(headers) {
            self = self.with_content_type(ct);
        }
        if let Some(auth) = header(headers, http::header::AUTHORIZATION) {
            self.authorization = Some(auth.into_owned());
        }
        self
    }
}

/// A token request from an `http::Request` taken by value: the body is kept, not copied (a
/// `Vec<u8>`, or a `bytes::Bytes` that holds the only reference to its buffer, as a body just
/// read off the wire does).
impl<B: Into<Vec<u8>>> From<http::Request<B>> for TokenRequest {
    fn from(request: http::Request<B>) -> Self {
        let (parts, body) = request.into_parts();
        TokenRequest::new(body).with_http_headers(&parts.method, &parts.headers)
    }
}

impl ResourceRequest {
    /// A resource request from an `http::Request`: method, `Authorization`, query, `Content-Type`
    /// and body (copied; `ResourceRequest::from(request)` takes a request by value and keeps
    /// its body).
    pub fn from_http<B: AsRef<[u8]>>(request: &http::Request<B>) -> Self {
        ResourceRequest::new()
            .with_body(request.body().as_ref())
            .with_http_parts(request.method(), request.uri(), request.headers())
    }

    fn with_http_parts(
        mut self,
        method: &http::Method,
        uri: &http::Uri,
        headers: &http::HeaderMap,
    ) -> Self {
        self = self.with_method(method.as_str());
        if let Some(q) = uri.query() {
            self = self.with_query(q);
        }
        if let Some(ct) = content_type(headers) {
            self = self.with_content_type(ct);
        }
        if let Some(auth) = header(headers, http::header::AUTHORIZATION) {
            self = self.with_authorization_bytes(auth.into_owned());
        }
        self
    }
}

/// A resource request from an `http::Request` taken by value: the body is kept, not copied.
impl<B: Into<Vec<u8>>> From<http::Request<B>> for ResourceRequest {
    fn from(request: http::Request<B>) -> Self {
        let (parts, body) = request.into_parts();
        ResourceRequest::new().with_body(body).with_http_parts(
            &parts.method,
            &parts.uri,
            &parts.headers,
        )
    }
}

impl BearerValidator {
    /// [`validate`](BearerValidator::validate) for an `http::Request` (or its parts with any
    /// body), read where it lies: nothing of it is copied.
    ///
    /// ```
    /// # async fn demo(validator: grantor::BearerValidator, request: http::Request<Vec<u8>>) {
    /// let read: grantor::Scope = "read".parse().unwrap();
    /// match validator.validate_http(&request, &read).await {
    ///     Ok(grant) => { /* serve the resource for grant.client_id / grant.user_id */ }
    ///     Err(refusal) => { /* answer refusal.into_response() */ }
    /// }
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`validate`](BearerValidator::validate).
    pub async fn validate_http<B: AsRef<[u8]>>(
        &self,
        request: &http::Request<B>,
        required: &Scope,
    ) -> Result<AccessGrant, BearerError> {
        let headers = request.headers();
        let body = request.body().as_ref();
        let presented = Presented {
            method: Some(Method::parse(request.method().as_str())),
            authorization: header(headers, http::header::AUTHORIZATION),
            query: request.uri().query().map(str::as_bytes),
            // Only a body can be of a type that matters (most requests that present a token
            // have none, and the header is then not looked up).
            content_type: if body.is_empty() {
                None
            } else {
                content_type(headers).map(BodyType::of)
            },
            body,
        };
        self.validate_presented(presented, crate::bearer::Needed::Scope(required))
            .await
    }
}

/// `name` as an `http` header name: the names grantor writes are `http`'s own constants, taken
/// without parsing; any other is parsed.
fn header_name(name: &'static str) -> Result<http::HeaderName, http::header::InvalidHeaderName> {
    use http::header;
    Ok(match name {
        "Content-Type" => header::CONTENT_TYPE,
        "Cache-Control" => header::CACHE_CONTROL,
        "Pragma" => header::PRAGMA,
        "Location" => header::LOCATION,
        "WWW-Authenticate" => header::WWW_AUTHENTICATE,
        "Retry-After" => header::RETRY_AFTER,
        _ => return http::HeaderName::from_bytes(name.as_bytes()),
    })
}

/// The constant values every token response carries, checked once when compiled.
fn known_value(value: &str) -> Option<http::HeaderValue> {
    const JSON: http::HeaderValue = http::HeaderValue::from_static("application/json");
    const NO_STORE: http::HeaderValue = http::HeaderValue::from_static("no-store");
    const NO_CACHE: http::HeaderValue = http::HeaderValue::from_static("no-cache");
    match value {
        "application/json" => Some(JSON),
        "no-store" => Some(NO_STORE),
        "no-cache" => Some(NO_CACHE),
        _ => None,
    }
}

/// Whether `http::HeaderValue::from_static` takes `value` (it panics on anything else).
fn is_visible_ascii(value: &str) -> bool {
    value.bytes().all(|b| b == b'\t' || (32..127).contains(&b))
}

impl From<Response> for http::Response<Vec<u8>> {
    fn from(response: Response) -> Self {
        let (status, headers, body) = response.into_parts();
        // Built in place rather than through `http::response::Builder`, which moves the whole
        // response through each call.
        let mut out = http::Response::new(body);
        let invalid = || {
            // Only reachable if grantor itself built an invalid status or header.
            let mut fallback = http::Response::new(Vec::new());
            *fallback.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
            fallback
        };
        let Ok(status) = http::StatusCode::from_u16(status) else {
            return invalid();
        };
        *out.status_mut() = status;
        let map = out.headers_mut();
        map.reserve(headers.len());
        for (name, value) in headers {
            let Ok(name) = header_name(name) else {
                return invalid();
            };
            let value = match value {
                Cow::Borrowed(value) => match known_value(value) {
                    Some(known) => Ok(known),
                    // Any other constant that is a valid header value is used without a copy.
                    None if is_visible_ascii(value) => Ok(http::HeaderValue::from_static(value)),
                    None => http::HeaderValue::from_str(value),
                },
                Cow::Owned(value) => http::HeaderValue::try_from(value),
            };
            let Ok(value) = value else {
                return invalid();
            };
            map.append(name, value);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form_request(content_types: &[&str]) -> http::Request<Vec<u8>> {
        let mut builder = http::Request::post("/oauth/token")
            .header("Authorization", "Basic c2VydmljZTpzZXJ2aWNlLXNlY3JldA==");
        for ct in content_types {
            builder = builder.header("Content-Type", *ct);
        }
        builder
            .body(b"grant_type=client_credentials".to_vec())
            .unwrap_or_default()
    }

    #[test]
    fn requests_convert_by_reference_and_by_value_alike() {
        let request = form_request(&["application/x-www-form-urlencoded"]);
        let borrowed = TokenRequest::from_http(&request);
        let owned = TokenRequest::from(request);
        for r in [&borrowed, &owned] {
            assert_eq!(r.content_type, Some(crate::request::BodyType::Form));
            assert_eq!(r.method, Some(crate::request::Method::Post));
            assert_eq!(r.body, b"grant_type=client_credentials");
            assert!(r.authorization.is_some());
        }
        let twice = TokenRequest::from(form_request(&[
            "application/x-www-form-urlencoded",
            "application/json",
        ]));
        assert_eq!(twice.content_type, Some(crate::request::BodyType::Other));
    }

    #[test]
    fn constant_header_values_convert_and_bad_ones_do_not_panic() {
        let ok: http::Response<Vec<u8>> = Response::new(200)
            .with_header("Cache-Control", "no-store")
            .into();
        assert_eq!(
            ok.headers().get("cache-control").map(|v| v.as_bytes()),
            Some(&b"no-store"[..])
        );
        let bad: http::Response<Vec<u8>> = Response::new(200)
            .with_header("X-Bad", "line\nbreak")
            .into();
        assert_eq!(bad.status(), http::StatusCode::INTERNAL_SERVER_ERROR);
        for bad in [
            Response::new(200).with_header("X-Bad", String::from("line\nbreak")),
            Response::new(200).with_header("Bad Name", "value"),
            Response::new(1000),
        ] {
            let bad: http::Response<Vec<u8>> = bad.into();
            assert_eq!(bad.status(), http::StatusCode::INTERNAL_SERVER_ERROR);
            assert!(bad.headers().is_empty() && bad.body().is_empty());
        }
    }

    #[test]
    fn known_names_and_values_are_what_parsing_them_gives() {
        for name in [
            "Content-Type",
            "Cache-Control",
            "Pragma",
            "Location",
            "WWW-Authenticate",
            "Retry-After",
            "X-Other",
        ] {
            assert_eq!(
                header_name(name).ok(),
                http::HeaderName::from_bytes(name.as_bytes()).ok(),
                "{name}"
            );
        }
        assert!(header_name("Bad Name").is_err());
        for value in ["application/json", "no-store", "no-cache"] {
            assert_eq!(
                known_value(value),
                http::HeaderValue::from_str(value).ok(),
                "{value}"
            );
        }
        assert_eq!(known_value("no-store "), None);
        // A token response's headers come out as parsed ones would.
        let response: http::Response<Vec<u8>> = Response::new(200)
            .with_header("Content-Type", "application/json")
            .with_header("Cache-Control", "no-store")
            .with_header("Pragma", "no-cache")
            .into();
        let header = |name: &str| response.headers().get(name).map(|v| v.as_bytes().to_vec());
        assert_eq!(header("content-type"), Some(b"application/json".to_vec()));
        assert_eq!(header("cache-control"), Some(b"no-store".to_vec()));
        assert_eq!(header("pragma"), Some(b"no-cache".to_vec()));
    }

    #[test]
    fn status_headers_and_body_carry_over() {
        let response = Response::new(401)
            .with_header("Content-Type", "application/json")
            .with_body(b"{}".to_vec())
            .with_header("WWW-Authenticate", "Basic")
            .with_header("WWW-Authenticate", String::from("Bearer realm=\"x\""));
        let out: http::Response<Vec<u8>> = response.into();
        assert_eq!(out.status(), http::StatusCode::UNAUTHORIZED);
        assert_eq!(out.body(), b"{}");
        let challenges: Vec<_> = out
            .headers()
            .get_all(http::header::WWW_AUTHENTICATE)
            .iter()
            .map(|v| v.as_bytes().to_vec())
            .collect();
        assert_eq!(
            challenges,
            [b"Basic".to_vec(), b"Bearer realm=\"x\"".to_vec()]
        );
        assert_eq!(
            out.headers()
                .get(http::header::CONTENT_TYPE)
                .map(|v| v.as_bytes()),
            Some(&b"application/json"[..])
        );
    }
}
