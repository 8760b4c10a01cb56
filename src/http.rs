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

use crate::bearer::ResourceRequest;
use crate::request::TokenRequest;
use crate::response::Response;

/// The value of header `name`, with repeated headers joined by `, ` as HTTP allows (a request
/// that repeats `Authorization` then fails to parse instead of having one copy picked).
fn header(headers: &http::HeaderMap, name: http::header::HeaderName) -> Option<Vec<u8>> {
    let mut values = headers.get_all(name).iter();
    let first = values.next()?;
    let mut out = first.as_bytes().to_vec();
    for v in values {
        out.extend_from_slice(b", ");
        out.extend_from_slice(v.as_bytes());
    }
    Some(out)
}

impl TokenRequest {
    /// A token request from an `http::Request`: method, `Content-Type`, `Authorization` and body.
    pub fn from_http<B: AsRef<[u8]>>(request: &http::Request<B>) -> Self {
        let mut out =
            TokenRequest::new(request.body().as_ref()).with_method(request.method().as_str());
        if let Some(ct) = header(request.headers(), http::header::CONTENT_TYPE) {
            out = out.with_content_type(ct);
        }
        if let Some(auth) = header(request.headers(), http::header::AUTHORIZATION) {
            out = out.with_authorization(auth);
        }
        out
    }
}

impl ResourceRequest {
    /// A resource request from an `http::Request`: method, `Authorization`, query, `Content-Type`
    /// and body.
    pub fn from_http<B: AsRef<[u8]>>(request: &http::Request<B>) -> Self {
        let mut out = ResourceRequest::new()
            .with_method(request.method().as_str())
            .with_body(request.body().as_ref());
        if let Some(q) = request.uri().query() {
            out = out.with_query(q);
        }
        if let Some(ct) = header(request.headers(), http::header::CONTENT_TYPE) {
            out = out.with_content_type(ct);
        }
        if let Some(auth) = header(request.headers(), http::header::AUTHORIZATION) {
            out = out.with_authorization(auth);
        }
        out
    }
}

/// Whether `http::HeaderValue::from_static` takes `value` (it panics on anything else).
fn is_visible_ascii(value: &str) -> bool {
    value.bytes().all(|b| b == b'\t' || (32..127).contains(&b))
}

impl From<Response> for http::Response<Vec<u8>> {
    fn from(response: Response) -> Self {
        let (status, headers, body) = response.into_parts();
        let mut builder = http::Response::builder().status(status);
        for (name, value) in headers {
            builder = match value {
                // A constant that is a valid header value is used without a copy.
                Cow::Borrowed(value) if is_visible_ascii(value) => {
                    builder.header(name, http::HeaderValue::from_static(value))
                }
                Cow::Borrowed(value) => builder.header(name, value),
                Cow::Owned(value) => builder.header(name, value),
            };
        }
        builder.body(body).unwrap_or_else(|_| {
            // Only reachable if grantor itself built an invalid status or header value.
            let mut fallback = http::Response::new(Vec::new());
            *fallback.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
            fallback
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
