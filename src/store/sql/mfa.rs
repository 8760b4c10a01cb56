//! [`MfaStore`] in SQL: `grantor_mfa_tokens` and `grantor_otp_counters`.

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{at, Arg, SqlStore};
use crate::error::StoreError;
use crate::store::mfa::{MfaChallenge, MfaStore, OtpAdvance};
use crate::store::record::encode_record;
use crate::token::MfaTokenHash;
use crate::types::UserId;

#[async_trait]
impl MfaStore for SqlStore {
    async fn save_mfa_token(
        &self,
        token: &MfaTokenHash,
        challenge: &MfaChallenge,
        _now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.db
            .execute(
                "INSERT INTO grantor_mfa_tokens (hash, expires_at, record) VALUES ($1, $2, $3)
                 ON CONFLICT (hash) DO UPDATE SET expires_at = excluded.expires_at,
                     record = excluded.record",
                &[
                    Arg::Bytes(token.as_bytes()),
                    Arg::Int(at(challenge.expires_at)),
                    Arg::Text(&encode_record(challenge)?),
                ],
            )
            .await?;
        Ok(())
    }

    async fn find_mfa_token(
        &self,
        token: &MfaTokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<MfaChallenge>, StoreError> {
        self.db
            .record(
                "SELECT record FROM grantor_mfa_tokens WHERE hash = $1 AND expires_at > $2",
                &[Arg::Bytes(token.as_bytes()), Arg::Int(at(now))],
            )
            .await
    }

    async fn take_mfa_token(
        &self,
        token: &MfaTokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<MfaChallenge>, StoreError> {
        self.db
            .record(
                "DELETE FROM grantor_mfa_tokens WHERE hash = $1 AND expires_at > $2
                 RETURNING record",
                &[Arg::Bytes(token.as_bytes()), Arg::Int(at(now))],
            )
            .await
    }

    async fn advance_otp_counter(
        &self,
        user: &UserId,
        counter: u64,
        until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<OtpAdvance, StoreError> {
        // One upsert, a compare-and-set: it writes only over a lower counter, or a lapsed hold.
        let row = self
            .db
            .fetch_optional(
                "INSERT INTO grantor_otp_counters (user_id, counter, until_at) VALUES ($1, $2, $3)
                 ON CONFLICT (user_id) DO UPDATE SET counter = excluded.counter,
                     until_at = CASE
                         WHEN grantor_otp_counters.until_at > $4
                             AND grantor_otp_counters.until_at > excluded.until_at
                         THEN grantor_otp_counters.until_at ELSE excluded.until_at END
                 WHERE grantor_otp_counters.counter < excluded.counter
                     OR grantor_otp_counters.until_at <= $4
                 RETURNING counter",
                &[
                    Arg::Text(&self.stored_name(user.as_str())),
                    Arg::Int(i64::try_from(counter).unwrap_or(i64::MAX)),
                    Arg::Int(at(until)),
                    Arg::Int(at(now)),
                ],
            )
            .await?;
        Ok(if row.is_some() {
            OtpAdvance::Advanced
        } else {
            OtpAdvance::NotHigher
        })
    }
}
