//! [`MfaStore`](crate::MfaStore) in Redis: `mfa_token`s and one-time code counters.

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{ceil_secs, RedisStore};
use crate::error::StoreError;
use crate::store::{MfaChallenge, MfaStore, OtpAdvance};
use crate::token::MfaTokenHash;
use crate::types::UserId;

#[async_trait]
impl MfaStore for RedisStore {
    async fn save_mfa_token(
        &self,
        token: &MfaTokenHash,
        challenge: &MfaChallenge,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let json = crate::store::encode_record(challenge)?;
        let mut invocation = self.scripts.save_mfa.prepare_invoke();
        invocation
            .key(self.mfa_key(token))
            .arg(now.unix_timestamp())
            .arg(challenge.expires_at.unix_timestamp())
            .arg(json);
        self.invoke::<i64>(false, &invocation).await?;
        Ok(())
    }

    async fn find_mfa_token(
        &self,
        token: &MfaTokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<MfaChallenge>, StoreError> {
        self.live_json(self.mfa_key(token), now)
            .await?
            .map(|json| crate::store::decode_record(&json))
            .transpose()
    }

    async fn take_mfa_token(
        &self,
        token: &MfaTokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<MfaChallenge>, StoreError> {
        let mut invocation = self.scripts.take_mfa.prepare_invoke();
        invocation
            .key(self.mfa_key(token))
            .arg(now.unix_timestamp());
        let json: Option<String> = self.invoke(false, &invocation).await?;
        json.map(|json| crate::store::decode_record(&json))
            .transpose()
    }

    async fn advance_otp_counter(
        &self,
        user: &UserId,
        counter: u64,
        until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<OtpAdvance, StoreError> {
        let mut invocation = self.scripts.advance_otp.prepare_invoke();
        invocation
            .key(self.otp_key(user))
            .arg(now.unix_timestamp())
            .arg(counter.to_string())
            // Whole seconds, rounded up: a code is refused at least as long as asked.
            .arg(ceil_secs(until));
        let advanced: i64 = self.invoke(false, &invocation).await?;
        Ok(if advanced == 1 {
            OtpAdvance::Advanced
        } else {
            OtpAdvance::NotHigher
        })
    }
}
