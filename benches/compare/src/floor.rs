//! The floor: the least work any correct server must do for a client-credentials token and for a
//! bearer validation, with no protocol around it. Issue: 32 bytes from a CSPRNG, base64url, a
//! SHA-256 of the token, a `HashMap` insert of a minimal record (expiry, client, scope), and the
//! JSON response body. Validate: a SHA-256 of the presented token, a map lookup, an expiry and a
//! scope check. It parses no request and authenticates no client.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};

use crate::harness::HttpRequest;

const READ: u32 = 1;

struct Record {
    expires_at: i64,
    client: u32,
    scope: u32,
}

#[derive(Default)]
pub struct Floor {
    tokens: HashMap<[u8; 32], Record>,
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl Floor {
    /// Issues one token; answers the response body.
    pub fn issue(&mut self) -> String {
        let mut raw = [0u8; 32];
        rand::rng().fill_bytes(&mut raw);
        let token = URL_SAFE_NO_PAD.encode(raw);
        let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        self.tokens.insert(
            hash,
            Record {
                expires_at: now() + 3600,
                client: 1,
                scope: READ,
            },
        );
        format!(
            r#"{{"access_token":"{token}","token_type":"Bearer","expires_in":3600,"scope":"read"}}"#
        )
    }

    pub fn validate(&self, request: &HttpRequest) -> bool {
        let Some(token) = crate::bearer_of(request) else {
            return false;
        };
        let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        self.tokens
            .get(&hash)
            .is_some_and(|r| r.expires_at > now() && r.scope & READ != 0 && r.client != 0)
    }
}
