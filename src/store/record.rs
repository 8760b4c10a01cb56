//! How a store keeps a record whole: its serde form with a format version, so that a newer
//! grantor reads what an older one wrote, and an older one refuses, loudly, what it cannot read.
//!
//! A store that keeps a record in one piece (the Redis store: a JSON string; a SQL store: a
//! `jsonb` or `text` column beside the columns it queries) writes [`encode_record`] and reads
//! [`decode_record`]. It never builds a record field by field from its own columns, so a field
//! added in a later version reaches it with no change to the store.
//!
//! # How records evolve
//!
//! - A field added later is `#[serde(default)]` (an `Option`, or a value with a sensible
//!   default), so a record written before it existed still reads. This keeps the format version.
//! - A change that is not additive (a field renamed, retyped or given new meaning) raises
//!   [`RECORD_FORMAT`], and [`decode_record`] learns to read the older versions.
//! - A field a record may now leave out (a [`TokenRecord`]'s `family_id`, absent for a token that
//!   stands alone) is written only when present, so records that have it are written exactly
//!   as before; a reader from before the change refuses a record without it, loudly.
//! - A field whose loss would widen what a record grants (the resources a token, code or
//!   sign-in is for, RFC 8707) raises the format of the records that carry it: format 2. A
//!   reader from before refuses those, rather than taking the token everywhere; records without
//!   it are written in format 1, exactly as before, and every reader reads them.
//! - A record written by a newer format than the reader's is refused with
//!   [`StoreError::Backend`] naming both versions, rather than misread. (A rolling upgrade
//!   across a format change therefore runs the new version's readers first.)
//!
//! The JSON is the record's fields with `"v"`, the format version:
//!
//! ```
//! use grantor::{decode_record, encode_record, MfaChallenge, RECORD_FORMAT};
//!
//! let json = r#"{"client_id":"app","user_id":"u1","scope":"read","show_scope":false,"expires_at":1700000000}"#;
//! // A record from before format versions existed (no "v", no "username") still reads.
//! let challenge: MfaChallenge = decode_record(json).unwrap();
//! assert_eq!(challenge.username, None);
//! let stored = encode_record(&challenge).unwrap();
//! assert!(stored.contains("\"v\":1"));
//! assert_eq!(decode_record::<MfaChallenge>(&stored).unwrap(), challenge);
//! // A record from a newer format is refused.
//! assert!(decode_record::<MfaChallenge>(&stored.replace("\"v\":1", "\"v\":99")).is_err());
//! ```

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::store::{
    CodeGrant, DeviceAuthorization, MfaChallenge, PendingAuthorization, TokenRecord,
};

/// The newest format version of the records this version of grantor writes (and reads): 2,
/// for records that name resources (RFC 8707); the others are written in format 1.
pub const RECORD_FORMAT: u16 = 2;

mod sealed {
    pub trait Sealed {}
}

/// A record that a store keeps whole: [`TokenRecord`], [`CodeGrant`], [`PendingAuthorization`],
/// [`DeviceAuthorization`] and [`MfaChallenge`]. Sealed: the engine defines the records.
pub trait Record: Serialize + DeserializeOwned + sealed::Sealed {
    /// The format this record is written in: the oldest that keeps all it says.
    fn format(&self) -> u16 {
        1
    }
}

/// Format 2 for a record that names resources: a reader of format 1 would drop them, and take
/// a token meant for some resources as one for all.
fn format_of(resources: &[String]) -> u16 {
    if resources.is_empty() {
        1
    } else {
        2
    }
}

macro_rules! records {
    ($($t:ty $(=> $resources:ident)?),*) => {
        $(
            impl sealed::Sealed for $t {}
            impl Record for $t {
                $(
                    fn format(&self) -> u16 {
                        format_of(&self.$resources)
                    }
                )?
            }
        )*
    };
}

records!(
    TokenRecord => audience,
    CodeGrant => resources,
    PendingAuthorization => resources,
    DeviceAuthorization,
    MfaChallenge => resources
);

#[derive(Serialize)]
struct Write<'a, R> {
    v: u16,
    #[serde(flatten)]
    record: &'a R,
}

#[derive(Deserialize)]
struct Read<R> {
    /// Records written before format versions existed have none: format 1.
    #[serde(default = "first_format")]
    v: u16,
    #[serde(flatten)]
    record: R,
}

fn first_format() -> u16 {
    1
}

/// The stored form of `record`: JSON with its fields and `"v"`, its format version
/// ([`Record::format`]).
///
/// # Errors
///
/// [`StoreError::Backend`] if the record cannot be serialised (it always can).
pub fn encode_record<R: Record>(record: &R) -> Result<String, StoreError> {
    serde_json::to_string(&Write {
        v: record.format(),
        record,
    })
    .map_err(StoreError::backend)
}

/// Reads a record that [`encode_record`] wrote, in this format or an earlier one.
///
/// # Errors
///
/// [`StoreError::Backend`] for JSON that is not such a record, or a record written in a newer
/// format than [`RECORD_FORMAT`].
pub fn decode_record<R: Record>(json: &str) -> Result<R, StoreError> {
    let read: Read<R> = serde_json::from_str(json).map_err(StoreError::backend)?;
    if read.v > RECORD_FORMAT {
        return Err(StoreError::backend(format!(
            "a record in format {} was written by a newer grantor; this one reads up to format \
             {RECORD_FORMAT}",
            read.v
        )));
    }
    Ok(read.record)
}
