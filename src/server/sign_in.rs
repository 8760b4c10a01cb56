//! A login page's checks: a password, and a one-time code, through the same verifier and limits
//! as the password grant (`user_auth.rs`).

use std::net::IpAddr;

use super::AuthorizationServer;
use crate::error::OAuthError;
use crate::reason::Reason;
use crate::types::{ClientId, OneTimeCode, Password, ResourceOwner, Username};
use crate::user_auth::{Asker, SignIn};

impl AuthorizationServer {
    /// Checks a user's password for a login page, through the same [`UserVerifier`](crate::UserVerifier) and
    /// brute-force limits as the password grant: per username, and per `caller` (the address
    /// the request came from, as the host knows it: behind a reverse proxy, the client's
    /// address the proxy reports) so that one password sprayed over many usernames is limited
    /// too. Failures here do not count against `client`: a login page's client is only named,
    /// not authenticated, so counting them would let anyone lock that client's password grant
    /// out.
    ///
    /// Answers the signed-in user, with the username they gave, ready for
    /// [`approve`](Self::approve).
    ///
    /// # Errors
    ///
    /// `invalid_grant` for wrong credentials or too many failures (the same words whether the
    /// user exists or not; a refusal carries [`retry_after`](OAuthError::retry_after)),
    /// `temporarily_unavailable` when too many checks of the same username or address are in
    /// flight for too long, `server_error` when no verifier is configured or a hook fails.
    ///
    /// [`UserVerifier`]: crate::UserVerifier
    pub async fn verify_user(
        &self,
        client: &ClientId,
        caller: IpAddr,
        username: &Username,
        password: Password,
    ) -> Result<ResourceOwner, OAuthError> {
        self.verify_user_with_otp(client, caller, username, password, None)
            .await
    }

    /// [`verify_user`](Self::verify_user) for users who may have a second factor: when the
    /// [`UserVerifier`](crate::UserVerifier) answers
    /// [`SecondFactorRequired`](crate::UserVerdict::SecondFactorRequired), `otp` is checked
    /// with [`UserVerifier::verify_otp`](crate::UserVerifier::verify_otp) (a code is accepted once, and never after a later one,
    /// RFC 6238 §5.2).
    ///
    /// # Errors
    ///
    /// As `verify_user`; and `invalid_grant` with reason `otp_required` when the password is
    /// right but no `otp` was given (show the one-time code field), or `otp_refused` /
    /// `otp_reused` for a wrong or spent code (counted like a wrong password).
    ///
    /// [`UserVerifier`]: crate::UserVerifier
    /// [`UserVerifier::verify_otp`]: crate::UserVerifier::verify_otp
    pub async fn verify_user_with_otp(
        &self,
        client: &ClientId,
        caller: IpAddr,
        username: &Username,
        password: Password,
        otp: Option<OneTimeCode>,
    ) -> Result<ResourceOwner, OAuthError> {
        let Some(users) = &self.inner.users else {
            return Err(OAuthError::server_error("no user verifier is configured")
                .with_reason(Reason::NoUserVerifier));
        };
        let asker = Asker {
            client,
            authenticated: false,
            caller: Some(caller),
        };
        match users.authenticate(asker, username, password).await? {
            SignIn::Complete(user) => Ok(user),
            SignIn::SecondFactorRequired(user) => match otp {
                Some(otp) => {
                    let now = self.inner.clock.now();
                    users.check_otp(asker, &user.id, otp, now).await?;
                    Ok(user)
                }
                None => Err(OAuthError::invalid_grant(
                    "this account needs a one-time code from its authenticator app",
                )
                .with_reason(Reason::OtpRequired)),
            },
        }
    }
}
