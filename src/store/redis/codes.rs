//! [`CodeStore`](crate::CodeStore) in Redis: pending authorization requests and codes.

use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{ceil_secs, RedisStore};
use crate::error::StoreError;
use crate::store::{
    Admission, CodeGrant, CodeLookup, CodeRestore, CodeSpend, CodeStore, PendingAuthorization,
    PendingLimits, SpentCode,
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

    async fn find_code(
        &self,
        code: &AuthorizationCodeHash,
        now: OffsetDateTime,
    ) -> Result<CodeLookup, StoreError> {
        let mut command = redis::cmd("HMGET");
        command
            .arg(self.code_key(code))
            .arg(&["s", "c", "f", "e", "u", "r"]);
        let command = &command;
        type Fields = (
            Option<String>,
            Option<String>,
            Option<String>,
            Option<i64>,
            Option<i64>,
            Option<String>,
        );
        let (state, client, family, expires, until, json): Fields = self
            .run(true, |mut conn| async move {
                command.query_async(&mut conn).await
            })
            .await?;
        let now = now.unix_timestamp();
        Ok(match (state.as_deref(), client, family, json) {
            (Some("live"), _, _, Some(json)) if expires.is_some_and(|e| e > now) => {
                CodeLookup::Live(crate::store::decode_record(&json)?)
            }
            // A used mark is kept until `u` (a mark without one, until the code's expiry).
            (Some("used"), Some(client), Some(family), _)
                if until.or(expires).is_some_and(|u| u > now) =>
            {
                CodeLookup::Spent {
                    client_id: ClientId::new(client),
                    family_id: FamilyId::new(family),
                }
            }
            _ => CodeLookup::Unknown,
        })
    }

    async fn spend_code(
        &self,
        code: &AuthorizationCodeHash,
        mark: &SpentCode,
        now: OffsetDateTime,
    ) -> Result<CodeSpend, StoreError> {
        let mut invocation = self.scripts.spend_code.prepare_invoke();
        invocation
            .key(self.code_key(code))
            .arg(now.unix_timestamp())
            .arg(mark.client_id.as_str())
            .arg(mark.family_id.as_str())
            // Whole seconds, rounded up: the mark is kept at least as long as asked.
            .arg(ceil_secs(mark.keep_until));
        let json: Option<String> = self.invoke(false, &invocation).await?;
        Ok(match json {
            Some(json) => CodeSpend::Spent(crate::store::decode_record(&json)?),
            None => CodeSpend::Conflict,
        })
    }

    async fn restore_code(
        &self,
        code: &AuthorizationCodeHash,
        grant: &CodeGrant,
        now: OffsetDateTime,
    ) -> Result<CodeRestore, StoreError> {
        let json = crate::store::encode_record(grant)?;
        let mut invocation = self.scripts.restore_code.prepare_invoke();
        invocation
            .key(self.code_key(code))
            .arg(now.unix_timestamp())
            .arg(grant.family_id.as_str())
            .arg(grant.client_id.as_str())
            .arg(json);
        let restored: i64 = self.invoke(false, &invocation).await?;
        Ok(if restored == 1 {
            CodeRestore::Restored
        } else {
            CodeRestore::Gone
        })
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
