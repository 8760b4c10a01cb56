//! [`TokenStore`](crate::TokenStore) in Redis: saving, finding, updating and revoking tokens.

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{ceil_secs, RedisStore};
use crate::error::StoreError;
use crate::store::{
    TokenChange, TokenExpectation, TokenLookup, TokenRecord, TokenSave, TokenStore, TokenUpdate,
};
use crate::token::TokenHash;
use crate::types::{ClientId, FamilyId};

#[async_trait]
impl TokenStore for RedisStore {
    async fn save_tokens(
        &self,
        tokens: &[(TokenHash, TokenRecord)],
        now: OffsetDateTime,
    ) -> Result<TokenSave, StoreError> {
        if tokens.is_empty() {
            return Ok(TokenSave::Saved);
        }
        let mut invocation = self.scripts.save.prepare_invoke();
        invocation.arg(now.unix_timestamp());
        self.add_tokens(&mut invocation, tokens)?;
        let saved: i64 = self.invoke(false, &invocation).await?;
        Ok(if saved == 1 {
            TokenSave::Saved
        } else {
            TokenSave::FamilyRevoked
        })
    }

    async fn find_token(
        &self,
        hash: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<TokenLookup, StoreError> {
        let mut command = redis::cmd("HMGET");
        command
            .arg(self.token_key(hash))
            .arg(&["s", "c", "f", "e", "r", "a", "n"]);
        let command = &command;
        #[allow(clippy::type_complexity)]
        let (state, client, family, expires, record, rotated_at, successor): (
            Option<String>,
            Option<String>,
            Option<String>,
            Option<i64>,
            Option<String>,
            Option<i64>,
            Option<String>,
        ) = self
            .run(true, |mut conn| async move {
                command.query_async(&mut conn).await
            })
            .await?;
        let expires = match expires {
            Some(e) if e > now.unix_timestamp() => e,
            _ => return Ok(TokenLookup::Unknown),
        };
        Ok(match (state.as_deref(), client, family, record) {
            (Some("live"), _, _, Some(json)) => TokenLookup::Live(parse_record(&json)?),
            (Some("rotated"), Some(client), Some(family), _) => TokenLookup::Rotated {
                client_id: ClientId::new(client),
                family_id: FamilyId::new(family),
                rotated_at: at(rotated_at.unwrap_or(0)),
                successor: successor.as_deref().and_then(TokenHash::from_hex),
                keep_until: at(expires),
            },
            _ => TokenLookup::Unknown,
        })
    }

    async fn update_tokens(
        &self,
        change: &TokenChange,
        now: OffsetDateTime,
    ) -> Result<TokenUpdate, StoreError> {
        let mut invocation = self.scripts.update.prepare_invoke();
        invocation
            .arg(now.unix_timestamp())
            .arg(change.expect.len())
            .arg(change.mark.len());
        for (hash, expected) in &change.expect {
            invocation.key(self.token_key(hash));
            match expected {
                TokenExpectation::Live => invocation.arg("live").arg(""),
                TokenExpectation::Spent { successor } => invocation
                    .arg("spent")
                    .arg(hex_or_empty(successor.as_ref())),
            };
        }
        for (hash, mark) in &change.mark {
            invocation
                .key(self.token_key(hash))
                .key(self.family_key(&mark.family_id))
                .arg(mark.client_id.as_str())
                .arg(mark.family_id.as_str())
                .arg(mark.spent_at.unix_timestamp())
                .arg(hex_or_empty(mark.successor.as_ref()))
                .arg(ceil_secs(mark.keep_until))
                .arg(hash.to_hex());
        }
        self.add_tokens(&mut invocation, &change.insert)?;
        let answer: String = self.invoke(false, &invocation).await?;
        match answer.as_str() {
            "applied" => Ok(TokenUpdate::Applied),
            "conflict" => Ok(TokenUpdate::Conflict),
            "revoked" => Ok(TokenUpdate::FamilyRevoked),
            other => Err(StoreError::backend(format!(
                "the update script answered {other:?}"
            ))),
        }
    }

    async fn revoke_token(
        &self,
        hash: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<TokenRecord>, StoreError> {
        let mut invocation = self.scripts.revoke_one.prepare_invoke();
        invocation
            .key(self.token_key(hash))
            .arg(now.unix_timestamp());
        let record: Option<String> = self.invoke(false, &invocation).await?;
        record.as_deref().map(parse_record).transpose()
    }

    async fn revoke_family(
        &self,
        family: &FamilyId,
        remember_until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        let mut invocation = self.scripts.revoke_family.prepare_invoke();
        invocation
            .key(self.family_key(family))
            .key(self.revoked_key(family))
            .arg(now.unix_timestamp())
            .arg(format!("{}:t:", self.prefix))
            .arg(ceil_secs(remember_until));
        self.invoke(false, &invocation).await
    }
}

fn parse_record(json: &str) -> Result<TokenRecord, StoreError> {
    crate::store::decode_record(json)
}

/// An instant from unix seconds as the scripts keep them.
fn at(unix: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// A token hash as the scripts take it: hex, or empty for none.
fn hex_or_empty(hash: Option<&TokenHash>) -> String {
    hash.map(TokenHash::to_hex).unwrap_or_default()
}
