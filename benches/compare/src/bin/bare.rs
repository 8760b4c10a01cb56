//! The least an HTTP server can answer with: `POST /oauth/token` reads the form and writes a fixed
//! token response; `GET /api/users` compares the `Authorization` header with a fixed bearer token
//! and writes the demo's fixed list. The yardstick `http.sh` holds the example server against.
//!
//! `ADDR` (default `127.0.0.1:8081`)

use axum::body::Bytes;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;

/// The only token this server knows.
const TOKEN: &str = "bare-token-0123456789abcdefghijklmnopqrstuv";
const TOKEN_RESPONSE: &str = r#"{"access_token":"bare-token-0123456789abcdefghijklmnopqrstuv","token_type":"Bearer","expires_in":3600,"scope":"read"}"#;
const USERS: &str = r#"[{"name":"adolfo","email":"adolfo@mailinator.com"},{"name":"demigreite","email":"demigreite@mailinator.com"},{"name":"jujuba","email":"jujuba@mailinator.com"}]"#;

async fn token(body: Bytes) -> impl IntoResponse {
    // Read the form as a server must, and insist on a grant type.
    let has_grant = form_urlencoded::parse(&body).any(|(k, v)| k == "grant_type" && !v.is_empty());
    if !has_grant {
        return (
            StatusCode::BAD_REQUEST,
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            r#"{"error":"invalid_request"}"#,
        );
    }
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        TOKEN_RESPONSE,
    )
}

async fn users(headers: HeaderMap) -> impl IntoResponse {
    let authorized = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        == Some(TOKEN);
    if authorized {
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            USERS,
        )
    } else {
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "",
        )
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:8081".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let app = Router::new()
        .route("/oauth/token", post(token))
        .route("/api/users", get(users));
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await
}
