//! Why a request was refused, more finely than its [`ErrorCode`](crate::ErrorCode).
//!
//! Every [`OAuthError`](crate::OAuthError) the engine makes carries a [`Reason`]. It is never
//! sent to the client (an unknown user and a wrong password both answer `invalid_grant`), but it
//! goes to `tracing` as `reason = "…"` ([`Reason::as_str`]) and a host's own pages branch on it:
//! a login page that must ask for a one-time code, a device page that must show the code form
//! again. Match on the variants, never on the strings: the enum is `#[non_exhaustive]`, so a
//! host keeps a fallback arm, and a renamed reason is a compile error rather than a silent miss.

macro_rules! reasons {
    ($( $(#[$doc:meta])* $name:ident = $text:literal, )*) => {
        /// Why a request was refused, more finely than its [`ErrorCode`](crate::ErrorCode): never
        /// sent to the client, but logged as `reason = "…"` ([`Reason::as_str`]) and matched on
        /// by a host's own pages. Match on the variants, never on the strings.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Reason {
            $( $(#[$doc])* $name, )*
        }

        impl Reason {
            /// The reason as logs show it, e.g. `"otp_required"`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( Self::$name => $text, )*
                }
            }
        }
    };
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Reason {
    /// Whether the refusal is a limit on failed attempts (of passwords, one-time codes, user codes
    /// or client secrets) or on checks in flight: the page should say "try again later" (the error's
    /// [`retry_after`](crate::OAuthError::retry_after) says when).
    pub const fn is_attempt_limit(self) -> bool {
        matches!(
            self,
            Self::UsernameAttemptsExceeded
                | Self::ClientAttemptsExceeded
                | Self::AddressAttemptsExceeded
                | Self::UserCodeAttemptsExceeded
                | Self::SignInBusy
                | Self::UserCodeBusy
                | Self::ClientSecretAttemptsExceeded
                | Self::ClientSecretBusy
        )
    }
}

reasons! {
    // Requests
    /// The body has malformed percent-encoding or is not UTF-8.
    MalformedEncoding = "malformed_encoding",
    /// A JSON token request is not an object of string members.
    MalformedJson = "malformed_json",
    /// A token-endpoint request did not use `POST`.
    MethodNotPost = "method_not_post",
    /// The body is not `application/x-www-form-urlencoded` (or JSON, where accepted).
    UnsupportedContentType = "unsupported_content_type",
    /// A required parameter is missing.
    MissingParameter = "missing_parameter",
    /// A parameter is sent more than once (RFC 6749 §3.1, §3.2).
    RepeatedParameter = "repeated_parameter",
    /// A parameter is longer than [`MAX_PARAMETER_LENGTH`](crate::MAX_PARAMETER_LENGTH).
    ParameterTooLong = "parameter_too_long",
    /// The request has more than [`MAX_PARAMETERS`](crate::MAX_PARAMETERS) parameters.
    TooManyParameters = "too_many_parameters",
    // Client authentication
    /// The client sent neither credentials nor `client_id`.
    NoClientAuthentication = "no_client_authentication",
    /// The client used more than one authentication method (RFC 6749 §2.3).
    TwoAuthMethods = "two_auth_methods",
    /// The body's `client_id` differs from the authenticated client.
    ClientIdMismatch = "client_id_mismatch",
    /// The `Authorization` header uses a scheme other than `Basic`.
    UnsupportedAuthScheme = "unsupported_auth_scheme",
    /// The `Authorization` header is not UTF-8.
    AuthorizationNotUtf8 = "authorization_not_utf8",
    /// The `Authorization` header is malformed.
    AuthorizationMalformed = "authorization_malformed",
    /// The `Basic` credentials are not base64.
    BasicNotBase64 = "basic_not_base64",
    /// The `Basic` credentials are not UTF-8.
    BasicNotUtf8 = "basic_not_utf8",
    /// The `Basic` credentials have no `:` between id and secret.
    BasicNoColon = "basic_no_colon",
    /// The id or secret in `Basic` credentials is not form-urlencoded (RFC 6749 §2.3.1).
    BasicBadEncoding = "basic_bad_encoding",
    /// The `Basic` credentials have an empty client id.
    BasicEmptyClientId = "basic_empty_client_id",
    /// No client is registered under the id sent.
    UnknownClient = "unknown_client",
    /// The client secret is wrong.
    WrongClientSecret = "wrong_client_secret",
    /// A confidential client sent no secret.
    ConfidentialWithoutSecret = "confidential_without_secret",
    /// A public client sent a secret.
    PublicClientSentSecret = "public_client_sent_secret",
    /// A public client asked to introspect (RFC 7662 §2.1).
    PublicIntrospection = "public_introspection",
    // Grants and scopes
    /// The grant type is not enabled on this server.
    GrantNotEnabled = "grant_not_enabled",
    /// The client is not registered for this grant type.
    GrantNotAllowed = "grant_not_allowed",
    /// The client lost the grant type while a request waited.
    GrantWithdrawn = "grant_withdrawn",
    /// The `scope` parameter is malformed (RFC 6749 §3.3).
    ScopeMalformed = "scope_malformed",
    /// The scope asked for exceeds what the client may ask for.
    ScopeNotAllowed = "scope_not_allowed",
    /// No scope was asked for and the client has no default scope.
    NoDefaultScope = "no_default_scope",
    /// A refresh asked for an empty scope.
    ScopeEmpty = "scope_empty",
    /// A refresh asked for more than the original grant (RFC 6749 §6).
    ScopeWidened = "scope_widened",
    /// A `resource` is not an absolute URI without a fragment (RFC 8707 §2).
    ResourceMalformed = "resource_malformed",
    /// A `resource` is not one this client may ask for (or one the server knows).
    ResourceNotAllowed = "resource_not_allowed",
    /// A `resource` at the token endpoint is not among those the grant was given for (RFC 8707
    /// §2.2).
    ResourceNotGranted = "resource_not_granted",
    /// None of the resources a grant was given for may still be asked for: its tokens would
    /// have no audience, which is wider than the grant.
    ResourceNoneLeft = "resource_none_left",
    /// The store refused tokens of a family minted for this request alone.
    FreshFamilyRefused = "fresh_family_refused",
    /// A public client asked for the client credentials grant.
    PublicClientCredentials = "public_client_credentials",
    // Authorization endpoint
    /// The server has no authorization endpoint enabled.
    AuthorizationEndpointDisabled = "authorization_endpoint_disabled",
    /// The authorization request has no `client_id`.
    MissingClientId = "missing_client_id",
    /// The authorization request repeats `client_id`.
    RepeatedClientId = "repeated_client_id",
    /// The authorization request repeats `redirect_uri`.
    RepeatedRedirectUri = "repeated_redirect_uri",
    /// The authorization request has no `response_type`.
    MissingResponseType = "missing_response_type",
    /// The `response_type` is neither `code` nor an enabled `token`.
    UnsupportedResponseType = "unsupported_response_type",
    /// The client has no redirect URI registered.
    NoRedirectUri = "no_redirect_uri",
    /// The `redirect_uri` is not one the client registered.
    RedirectUriMismatch = "redirect_uri_mismatch",
    /// The client registered several redirect URIs and the request named none.
    RedirectUriAmbiguous = "redirect_uri_ambiguous",
    /// The registered redirect URI cannot carry an answer (not absolute, or has a fragment).
    RedirectUriUnusable = "redirect_uri_unusable",
    /// Too many authorization requests are waiting ([`PendingLimits`](crate::PendingLimits)).
    PendingRequestsFull = "pending_requests_full",
    /// The authorization request is unknown, expired or already decided.
    PendingUnknown = "pending_unknown",
    /// The scope approved exceeds the scope asked for.
    ApprovedScopeTooWide = "approved_scope_too_wide",
    /// The client no longer has the redirect URI of a waiting request.
    RedirectUriWithdrawn = "redirect_uri_withdrawn",
    /// The client of a waiting request is no longer registered.
    ClientGone = "client_gone",
    // PKCE
    /// PKCE is required and the request has no `code_challenge` (RFC 7636).
    PkceRequired = "pkce_required",
    /// The `code_challenge` is malformed.
    PkceChallengeMalformed = "pkce_challenge_malformed",
    /// The `code_challenge_method` is not supported (RFC 7636 §4.4).
    PkceMethodUnsupported = "pkce_method_unsupported",
    /// `code_challenge_method` came without `code_challenge`.
    PkceMethodWithoutChallenge = "pkce_method_without_challenge",
    /// The code was issued with a challenge and no `code_verifier` came.
    PkceVerifierMissing = "pkce_verifier_missing",
    /// The `code_verifier` is malformed (RFC 7636 §4.1).
    PkceVerifierMalformed = "pkce_verifier_malformed",
    /// A `code_verifier` came for a code issued without a challenge.
    PkceUnexpectedVerifier = "pkce_unexpected_verifier",
    /// The `code_verifier` does not match the challenge.
    PkceMismatch = "pkce_mismatch",
    // Authorization codes
    /// The authorization code is unknown.
    CodeUnknown = "code_unknown",
    /// The authorization code expired.
    CodeExpired = "code_expired",
    /// The authorization code was issued to another client.
    CodeOtherClient = "code_other_client",
    /// The authorization code was used twice; its tokens are revoked (RFC 6749 §4.1.2).
    CodeReused = "code_reused",
    /// The code was replayed while its first exchange was saving tokens.
    CodeReusedDuringExchange = "code_reused_during_exchange",
    /// The token request lacks the `redirect_uri` the authorization request had (RFC 6749 §4.1.3).
    RedirectUriMissing = "redirect_uri_missing",
    // Refresh tokens
    /// The refresh token is unknown, revoked or expired.
    RefreshTokenUnknown = "refresh_token_unknown",
    /// The refresh token expired.
    RefreshTokenExpired = "refresh_token_expired",
    /// The refresh token was issued to another client.
    RefreshTokenOtherClient = "refresh_token_other_client",
    /// A spent refresh token came again; its family is revoked (RFC 9700 §4.14.2).
    RefreshTokenReplayed = "refresh_token_replayed",
    /// An access token was sent as a refresh token.
    NotARefreshToken = "not_a_refresh_token",
    // Device flow
    /// The device authorization grant is not enabled.
    DeviceGrantDisabled = "device_grant_disabled",
    /// Too many device requests are waiting ([`PendingLimits`](crate::PendingLimits)).
    DeviceRequestsFull = "device_requests_full",
    /// No free user code could be drawn.
    UserCodesExhausted = "user_codes_exhausted",
    /// The person has not decided yet (`authorization_pending`).
    DevicePending = "device_pending",
    /// The device polls too often (`slow_down`).
    DeviceSlowDown = "device_slow_down",
    /// The person denied the request.
    DeviceDenied = "device_denied",
    /// The device code expired.
    DeviceCodeExpired = "device_code_expired",
    /// The device code is unknown or already used.
    DeviceCodeUnknown = "device_code_unknown",
    /// The device code was issued to another client.
    DeviceCodeOtherClient = "device_code_other_client",
    /// A collected device approval had no approved status.
    DeviceStatusMismatch = "device_status_mismatch",
    /// The user code is unknown, expired or already decided: show the code form again.
    UserCodeUnknown = "user_code_unknown",
    /// Too many wrong user codes from this caller (RFC 8628 §5.1).
    UserCodeAttemptsExceeded = "user_code_attempts_exceeded",
    /// Too many user-code lookups from this caller are in flight.
    UserCodeBusy = "user_code_busy",
    /// The decision is not for the request the page showed.
    DeviceConfirmationMismatch = "device_confirmation_mismatch",
    // Sign-in
    /// Wrong username or password (the same for an unknown user).
    UserRefused = "user_refused",
    /// The password is right and the account needs a one-time code too.
    OtpRequired = "otp_required",
    /// The one-time code is wrong.
    OtpRefused = "otp_refused",
    /// The one-time code was already used, or a later one was (RFC 6238 §5.2).
    OtpReused = "otp_reused",
    /// The user verifier asked for a second factor but does not check one-time codes
    /// ([`UserVerifier::checks_one_time_codes`](crate::UserVerifier::checks_one_time_codes)).
    SecondFactorUnchecked = "second_factor_unchecked",
    /// The password grant answered `mfa_required` with an `mfa_token`.
    MfaRequired = "mfa_required",
    /// The `mfa_token` is unknown, expired or already used.
    MfaTokenUnknown = "mfa_token_unknown",
    /// The `mfa_token` was issued to another client.
    MfaTokenOtherClient = "mfa_token_other_client",
    /// Too many failures for this username.
    UsernameAttemptsExceeded = "username_attempts_exceeded",
    /// Too many failures through this client.
    ClientAttemptsExceeded = "client_attempts_exceeded",
    /// Too many failures from this caller address.
    AddressAttemptsExceeded = "address_attempts_exceeded",
    /// Too many checks of the same username, client or address are in flight.
    SignInBusy = "sign_in_busy",
    /// Too many wrong secrets for this client (from this caller address, when it is known).
    ClientSecretAttemptsExceeded = "client_secret_attempts_exceeded",
    /// Too many checks of this client's secret are in flight.
    ClientSecretBusy = "client_secret_busy",
    /// A credential check took longer than its deadline.
    CheckTimedOut = "check_timed_out",
    /// No user verifier is configured.
    NoUserVerifier = "no_user_verifier",
    // Tokens, revocation, storage
    /// The bearer token is invalid, expired or revoked.
    TokenRejected = "token_rejected",
    /// The bearer token is for other resources (RFC 8707): its audience does not name this one.
    TokenOtherAudience = "token_other_audience",
    /// The bearer token lacks the scope the resource needs.
    InsufficientScope = "insufficient_scope",
    /// The resource request carries the token in more than one way, or malformed.
    BadBearerRequest = "bad_bearer_request",
    /// A client tried to revoke another client's token.
    RevokeOtherClient = "revoke_other_client",
    /// A store could not be reached ([`StoreError::Unavailable`](crate::StoreError::Unavailable)).
    StoreUnavailable = "store_unavailable",
    /// A store failed ([`StoreError::Backend`](crate::StoreError::Backend)).
    StoreFailed = "store_failed",
}

#[cfg(test)]
mod tests {
    use super::Reason;

    #[test]
    fn reasons_print_as_their_log_names() {
        assert_eq!(Reason::OtpRequired.as_str(), "otp_required");
        assert_eq!(Reason::UserCodeUnknown.to_string(), "user_code_unknown");
        assert!(Reason::UsernameAttemptsExceeded.is_attempt_limit());
        assert!(!Reason::UserRefused.is_attempt_limit());
    }
}
