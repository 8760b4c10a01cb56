//! [`CodeStore`](crate::CodeStore) in Redis: pending authorization requests and codes.

use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{ceil_secs, RedisStore};
use crate::error::StoreError;
use crate::store::{
    Admission, CodeGrant, CodeRedemption, CodeStore, PendingAuthorization, PendingLimits,
};
use crate::token::{AuthorizationCodeHash, RequestIdHash};
use crate::types::{ClientId, FamilyId};

#[async_trait]
impl CodeStore for RedisStore {
    async fn save_pending(
        &self,
        id: &RequestIdHash,
        request: &PendingAuthorization,
        limits: &PendingLimits,
        now: OffsetDateTime,
    ) -> Result<Admission, StoreError> {
        let json = crate::store::encode_record(request)?;
        let mut invocation = self.scripts.save_pending.prepare_invoke();
        invocation
            .key(self.pending_key(id))
            .key(format!(
                "{}{}",
                self.pending_client_prefix(),
                request.client_id
            ))
            .key(self.pending_all_key())
            .arg(now.unix_timestamp())
            .arg(ceil_secs(request.expires_at))
            .arg(limits.per_client)
            .arg(limits.total)
            .arg(id.to_hex())
            .arg(request.client_id.as_str())
            .arg(json);
        let (saved, wait): (i64, i64) = self.invoke(false, &invocation).await?;
        Ok(if saved == 1 {
            Admission::Admitted
        } else {
            Admission::Full {
                retry_after: Duration::from_secs(u64::try_from(wait).unwrap_or(1).max(1)),
            }
        })
    }

    async fn find_pending(
        &self,
        id: &RequestIdHash,
        now: OffsetDateTime,
    ) -> Result<Option<PendingAuthorization>, StoreError> {
        match self.live_json(self.pending_key(id), now).await? {
            Some(json) => parse_pending(&json, now),
            None => Ok(None),
        }
    }

    async fn take_pending(
        &self,
        id: &RequestIdHash,
        now: OffsetDateTime,
    ) -> Result<Option<PendingAuthorization>, StoreError> {
        let mut invocation = self.scripts.take_pending.prepare_invoke();
        invocation
            .key(self.pending_key(id))
            .key(self.pending_all_key())
            .arg(now.unix_timestamp())
            .arg(id.to_hex())
            .arg(self.pending_client_prefix());
        let json: Option<String> = self.invoke(false, &invocation).await?;
        match json {
            Some(json) => parse_pending(&json, now),
            None => Ok(None),
        }
    }

    async fn save_code(
        &self,
        code: &AuthorizationCodeHash,
        grant: &CodeGrant,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let json = crate::store::encode_record(grant)?;
        let mut invocation = self.scripts.save_code.prepare_invoke();
        invocation
            .key(self.code_key(code))
            .arg(now.unix_timestamp())
            .arg(grant.client_id.as_str())
            .arg(grant.family_id.as_str())
            .arg(grant.expires_at.unix_timestamp())
            .arg(json);
        self.invoke::<i64>(false, &invocation).await?;
        Ok(())
    }

    async fn take_code(
        &self,
        code: &AuthorizationCodeHash,
        client: &ClientId,
        keep_used_until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<CodeRedemption, StoreError> {
        let mut invocation = self.scripts.take_code.prepare_invoke();
        invocation
            .key(self.code_key(code))
            .arg(now.unix_timestamp())
            .arg(client.as_str())
            .arg(ceil_secs(keep_used_until));
        let answer: Vec<String> = self.invoke(false, &invocation).await?;
        let mut answer = answer.into_iter();
        Ok(match (answer.next().as_deref(), answer.next()) {
            (Some("redeemed"), Some(json)) => {
                CodeRedemption::Redeemed(crate::store::decode_record(&json)?)
            }
            (Some("used"), Some(family)) => CodeRedemption::AlreadyUsed {
                family_id: FamilyId::new(family),
            },
            (Some("other"), _) => CodeRedemption::OtherClient,
            _ => CodeRedemption::Unknown,
        })
    }

    async fn restore_code(
        &self,
        code: &AuthorizationCodeHash,
        grant: &CodeGrant,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let json = crate::store::encode_record(grant)?;
        let mut invocation = self.scripts.restore_code.prepare_invoke();
        invocation
            .key(self.code_key(code))
            .arg(now.unix_timestamp())
            .arg(grant.family_id.as_str())
            .arg(json);
        let restored: i64 = self.invoke(false, &invocation).await?;
        Ok(restored == 1)
    }
}

/// A pending request from its JSON, if it is still waiting at `now`.
fn parse_pending(
    json: &str,
    now: OffsetDateTime,
) -> Result<Option<PendingAuthorization>, StoreError> {
    let request: PendingAuthorization = crate::store::decode_record(json)?;
    Ok((request.expires_at > now).then_some(request))
}
