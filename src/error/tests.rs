use super::*;

#[test]
fn every_code_has_its_wire_string_and_status() {
    let all = [
        (ErrorCode::InvalidRequest, "invalid_request", 400),
        (ErrorCode::InvalidClient, "invalid_client", 401),
        (ErrorCode::InvalidGrant, "invalid_grant", 400),
        (ErrorCode::UnauthorizedClient, "unauthorized_client", 400),
        (
            ErrorCode::UnsupportedGrantType,
            "unsupported_grant_type",
            400,
        ),
        (ErrorCode::InvalidScope, "invalid_scope", 400),
        (ErrorCode::InvalidTarget, "invalid_target", 400),
        (ErrorCode::AccessDenied, "access_denied", 400),
        (
            ErrorCode::UnsupportedResponseType,
            "unsupported_response_type",
            400,
        ),
        (ErrorCode::ServerError, "server_error", 500),
        (
            ErrorCode::TemporarilyUnavailable,
            "temporarily_unavailable",
            503,
        ),
        (ErrorCode::InvalidToken, "invalid_token", 401),
        (ErrorCode::InsufficientScope, "insufficient_scope", 403),
        (
            ErrorCode::AuthorizationPending,
            "authorization_pending",
            400,
        ),
        (ErrorCode::SlowDown, "slow_down", 400),
        (ErrorCode::ExpiredToken, "expired_token", 400),
        (
            ErrorCode::UnsupportedTokenType,
            "unsupported_token_type",
            400,
        ),
    ];
    for (code, wire, status) in all {
        assert_eq!(code.as_str(), wire);
        assert_eq!(code.status(), status, "{wire}");
        assert_eq!(
            serde_json::to_string(&code).ok(),
            Some(format!("\"{wire}\""))
        );
    }
}

#[test]
fn descriptions_keep_to_the_rfc_character_set() {
    let e = OAuthError::invalid_request("bad \"x\" \\ é\n");
    assert_eq!(e.description(), "bad ?x? ? ??");
}

#[test]
fn store_errors_become_generic_server_errors() {
    let e: OAuthError = StoreError::backend("db password is hunter2").into();
    assert_eq!(e.code(), ErrorCode::ServerError);
    assert!(!e.description().contains("hunter2"));
    let e: OAuthError = StoreError::unavailable("connection refused").into();
    assert_eq!(e.code(), ErrorCode::TemporarilyUnavailable);
    assert!(!e.description().contains("refused"));
}
