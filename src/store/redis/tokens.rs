//! [`TokenStore`](crate::TokenStore) in Redis: saving, rotating, reissuing and revoking tokens.

use async_trait::async_trait;
use time::OffsetDateTime;

use super::RedisStore;
use crate::error::StoreError;
use crate::store::{Rotation, TokenLookup, TokenRecord, TokenStore};
use crate::token::TokenHash;
use crate::types::{ClientId, FamilyId};

#[async_trait]
impl TokenStore for RedisStore {
    async fn save_tokens(
        &self,
        tokens: &[(TokenHash, TokenRecord)],
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        if tokens.is_empty() {
            return Ok(true);
        }
        let mut invocation = self.scripts.save.prepare_invoke();
        invocation.arg(now.unix_timestamp());
        self.add_tokens(&mut invocation, tokens)?;
        let saved: i64 = self.invoke(false, &invocation).await?;
        Ok(saved == 1)
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
        if expires.is_none_or(|e| e <= now.unix_timestamp()) {
            return Ok(TokenLookup::Unknown);
        }
        Ok(match (state.as_deref(), client, family, record) {
            (Some("live"), _, _, Some(json)) => TokenLookup::Live(parse_record(&json)?),
            (Some("rotated"), Some(client), Some(family), _) => TokenLookup::Rotated {
                client_id: ClientId::new(client),
                family_id: FamilyId::new(family),
                rotated_at: OffsetDateTime::from_unix_timestamp(rotated_at.unwrap_or(0))
                    .unwrap_or(OffsetDateTime::UNIX_EPOCH),
                successor: successor.as_deref().and_then(TokenHash::from_hex),
            },
            _ => TokenLookup::Unknown,
        })
    }

    async fn rotate_refresh_token(
        &self,
        old: &TokenHash,
        client: &ClientId,
        new_tokens: &[(TokenHash, TokenRecord)],
        spend_old: bool,
        now: OffsetDateTime,
    ) -> Result<Rotation, StoreError> {
        let mut invocation = self.scripts.rotate.prepare_invoke();
        invocation
            .key(self.token_key(old))
            .arg(now.unix_timestamp())
            .arg(client.as_str())
            .arg(if spend_old { "1" } else { "0" });
        self.add_tokens(&mut invocation, new_tokens)?;
        parse_rotation(self.invoke(false, &invocation).await?)
    }

    async fn reissue_rotated(
        &self,
        old: &TokenHash,
        successor: &TokenHash,
        client: &ClientId,
        new_tokens: &[(TokenHash, TokenRecord)],
        now: OffsetDateTime,
    ) -> Result<Rotation, StoreError> {
        let mut invocation = self.scripts.reissue.prepare_invoke();
        invocation
            .key(self.token_key(old))
            .key(self.token_key(successor))
            .arg(now.unix_timestamp())
            .arg(client.as_str())
            .arg(successor.to_hex());
        self.add_tokens(&mut invocation, new_tokens)?;
        parse_rotation(self.invoke(false, &invocation).await?)
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
        now: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        let mut invocation = self.scripts.revoke_family.prepare_invoke();
        invocation
            .key(self.family_key(family))
            .key(self.revoked_key(family))
            .arg(now.unix_timestamp())
            .arg(format!("{}:t:", self.prefix))
            .arg(crate::store::REVOKED_FAMILY_MEMORY);
        self.invoke(false, &invocation).await
    }
}

fn parse_record(json: &str) -> Result<TokenRecord, StoreError> {
    crate::store::decode_record(json)
}

/// What the rotate and reissue scripts answered.
fn parse_rotation(answer: Vec<String>) -> Result<Rotation, StoreError> {
    let mut answer = answer.into_iter();
    Ok(
        match (answer.next().as_deref(), answer.next(), answer.next()) {
            (Some("issued"), Some(json), _) => Rotation::Issued(parse_record(&json)?),
            (Some("reused"), Some(client), Some(family)) => Rotation::Reused {
                client_id: ClientId::new(client),
                family_id: FamilyId::new(family),
            },
            _ => Rotation::NotFound,
        },
    )
}
