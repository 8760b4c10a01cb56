//! [`DeviceCodeStore`](crate::DeviceCodeStore) in Redis: device authorization requests.

use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::RedisStore;
use crate::error::StoreError;
use crate::scope::Scope;
use crate::store::{
    DeviceAuthorization, DeviceCodeStore, DeviceDecided, DeviceDecision, DevicePace, DeviceRestore,
    DeviceSave, DeviceStatus, DeviceUpdate, PendingLimits,
};
use crate::token::{DeviceCodeHash, UserCodeHash};
use crate::types::{UserId, Username};

/// How a device authorization's status is kept: its word, and for an approval the user, the
/// username and the granted scope.
fn status_fields(status: &DeviceStatus) -> (&'static str, String, String, String) {
    match status {
        DeviceStatus::Approved {
            user_id,
            username,
            scope,
        } => (
            "approved",
            user_id.as_str().to_owned(),
            username
                .as_ref()
                .map(|u| u.as_str().to_owned())
                .unwrap_or_default(),
            scope.to_string(),
        ),
        DeviceStatus::Denied => ("denied", String::new(), String::new(), String::new()),
        _ => ("pending", String::new(), String::new(), String::new()),
    }
}

/// A device authorization from what a script answered: the request as saved (JSON), then its
/// mutable fields (status, interval, last poll, user, granted scope, username; `''` for none).
/// A missing part is a miss; a part that does not parse is a backend error.
fn parse_device(
    fields: impl IntoIterator<Item = Option<String>>,
) -> Result<Option<DeviceAuthorization>, StoreError> {
    let mut fields = fields.into_iter();
    let mut next = || fields.next().flatten();
    let (json, status, interval, last_poll, user, scope, username) =
        (next(), next(), next(), next(), next(), next(), next());
    // The scripts answer `''` for no last poll and no username (a nil would end the reply).
    let (last_poll, username) = (
        last_poll.filter(|v| !v.is_empty()),
        username.filter(|v| !v.is_empty()),
    );
    let (Some(json), Some(status), Some(interval)) = (json, status, interval) else {
        return Ok(None);
    };
    let mut request: DeviceAuthorization = crate::store::decode_record(&json)?;
    request.status = match (status.as_str(), user, scope) {
        ("pending", _, _) => DeviceStatus::Pending,
        ("denied", _, _) => DeviceStatus::Denied,
        ("approved", Some(user), Some(scope)) => DeviceStatus::Approved {
            user_id: UserId::new(user),
            username: username.map(Username::new),
            scope: Scope::parse(&scope).map_err(StoreError::backend)?,
        },
        _ => return Ok(None),
    };
    request.interval = interval.parse().map_err(StoreError::backend)?;
    request.last_poll = last_poll
        .map(|l| {
            let secs: i64 = l.parse().map_err(StoreError::backend)?;
            OffsetDateTime::from_unix_timestamp(secs).map_err(StoreError::backend)
        })
        .transpose()?;
    Ok(Some(request))
}

impl RedisStore {
    /// Adds what `PUT_DEVICE_FN` reads (its keys, and its values from the invocation's next
    /// argument on) to a script invocation.
    fn add_device(
        &self,
        invocation: &mut redis::ScriptInvocation<'_>,
        device_code: &DeviceCodeHash,
        request: &DeviceAuthorization,
        keep_until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let json = crate::store::encode_record(request)?;
        let (status, user, username, scope) = status_fields(&request.status);
        invocation
            .key(self.device_key(device_code))
            .key(format!(
                "{}{}",
                self.device_client_prefix(),
                request.client_id
            ))
            .key(self.device_all_key())
            .arg(now.unix_timestamp())
            .arg(request.expires_at.unix_timestamp())
            .arg(keep_until.unix_timestamp())
            .arg(device_code.to_hex())
            .arg(request.client_id.as_str())
            .arg(status)
            .arg(request.interval.to_string())
            .arg(
                request
                    .last_poll
                    .map(|l| l.unix_timestamp().to_string())
                    .unwrap_or_default(),
            )
            .arg(user)
            .arg(username)
            .arg(scope)
            .arg(json);
        Ok(())
    }
}

#[async_trait]
impl DeviceCodeStore for RedisStore {
    async fn save_device_authorization(
        &self,
        device_code: &DeviceCodeHash,
        user_code: &UserCodeHash,
        request: &DeviceAuthorization,
        keep_until: OffsetDateTime,
        limits: &PendingLimits,
        now: OffsetDateTime,
    ) -> Result<DeviceSave, StoreError> {
        let mut invocation = self.scripts.save_device.prepare_invoke();
        invocation
            .arg(limits.per_client)
            .arg(limits.total)
            .arg(self.device_key_prefix());
        self.add_device(&mut invocation, device_code, request, keep_until, now)?;
        invocation.key(self.user_code_key(user_code));
        let (saved, wait): (i64, i64) = self.invoke(false, &invocation).await?;
        Ok(match saved {
            1 => DeviceSave::Saved,
            0 => DeviceSave::UserCodeInUse,
            _ => DeviceSave::Full {
                retry_after: Duration::from_secs(u64::try_from(wait).unwrap_or(1).max(1)),
            },
        })
    }

    async fn find_device_authorization(
        &self,
        user_code: &UserCodeHash,
        now: OffsetDateTime,
    ) -> Result<Option<DeviceAuthorization>, StoreError> {
        let mut invocation = self.scripts.find_device.prepare_invoke();
        invocation
            .key(self.user_code_key(user_code))
            .arg(now.unix_timestamp())
            .arg(self.device_key_prefix());
        let fields: Option<Vec<Option<String>>> = self.invoke(true, &invocation).await?;
        match fields {
            Some(fields) => parse_device(fields),
            None => Ok(None),
        }
    }

    async fn find_device(
        &self,
        device_code: &DeviceCodeHash,
        now: OffsetDateTime,
    ) -> Result<Option<DeviceAuthorization>, StoreError> {
        let mut invocation = self.scripts.read_device.prepare_invoke();
        invocation
            .key(self.device_key(device_code))
            .arg(now.unix_timestamp());
        let fields: Option<Vec<Option<String>>> = self.invoke(true, &invocation).await?;
        match fields {
            Some(fields) => parse_device(fields),
            None => Ok(None),
        }
    }

    async fn record_poll(
        &self,
        device_code: &DeviceCodeHash,
        expected: &DevicePace,
        pace: &DevicePace,
        now: OffsetDateTime,
    ) -> Result<DeviceUpdate, StoreError> {
        let mut invocation = self.scripts.record_device_poll.prepare_invoke();
        invocation
            .key(self.device_key(device_code))
            .arg(now.unix_timestamp())
            .arg(
                expected
                    .last_poll
                    .map(|l| l.unix_timestamp().to_string())
                    .unwrap_or_default(),
            )
            .arg(expected.interval.to_string())
            .arg(
                pace.last_poll
                    .map(|l| l.unix_timestamp().to_string())
                    .unwrap_or_default(),
            )
            .arg(pace.interval.to_string());
        let applied: i64 = self.invoke(false, &invocation).await?;
        Ok(if applied == 1 {
            DeviceUpdate::Applied
        } else {
            DeviceUpdate::Conflict
        })
    }

    async fn decide_device_authorization(
        &self,
        user_code: &UserCodeHash,
        decision: &DeviceDecision,
        now: OffsetDateTime,
    ) -> Result<DeviceDecided, StoreError> {
        let (status, user, username, scope) = status_fields(&decision.status());
        let mut invocation = self.scripts.decide_device.prepare_invoke();
        invocation
            .key(self.user_code_key(user_code))
            .arg(now.unix_timestamp())
            .arg(self.device_key_prefix())
            .arg(status)
            .arg(user)
            .arg(scope)
            .arg(username);
        let decided: i64 = self.invoke(false, &invocation).await?;
        Ok(if decided == 1 {
            DeviceDecided::Decided
        } else {
            DeviceDecided::NotPending
        })
    }

    async fn take_approved(
        &self,
        device_code: &DeviceCodeHash,
        now: OffsetDateTime,
    ) -> Result<Option<DeviceAuthorization>, StoreError> {
        let mut invocation = self.scripts.take_approved_device.prepare_invoke();
        invocation
            .key(self.device_key(device_code))
            .key(self.device_all_key())
            .arg(now.unix_timestamp())
            .arg(self.device_client_prefix())
            .arg(device_code.to_hex());
        let fields: Option<Vec<Option<String>>> = self.invoke(false, &invocation).await?;
        match fields {
            Some(fields) => parse_device(fields),
            None => Ok(None),
        }
    }

    async fn restore_device_approval(
        &self,
        device_code: &DeviceCodeHash,
        request: &DeviceAuthorization,
        keep_until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<DeviceRestore, StoreError> {
        let mut invocation = self.scripts.restore_device.prepare_invoke();
        self.add_device(&mut invocation, device_code, request, keep_until, now)?;
        let restored: i64 = self.invoke(false, &invocation).await?;
        Ok(match restored {
            1 => DeviceRestore::Restored,
            2 => DeviceRestore::Lapsed,
            _ => DeviceRestore::Occupied,
        })
    }
}
