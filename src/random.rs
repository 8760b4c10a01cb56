//! Random values: the one place that turns CSPRNG output into token text.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore as _;

/// `N` random bytes from the thread-local CSPRNG, base64url-encoded without padding: one
/// allocation, the string itself (the bytes stay on the stack).
pub(crate) fn random_string<const N: usize>() -> String {
    let mut buf = [0u8; N];
    rand::rng().fill_bytes(&mut buf);
    let mut out = String::with_capacity(N.div_ceil(3) * 4);
    URL_SAFE_NO_PAD.encode_string(buf, &mut out);
    out
}

/// 16 random bytes from the thread-local CSPRNG, base64url-encoded without padding, as shared
/// text: one allocation (the text is encoded on the stack, then shared).
pub(crate) fn random_shared_text_16() -> std::sync::Arc<str> {
    let mut buf = [0u8; 16];
    rand::rng().fill_bytes(&mut buf);
    let mut text = [0u8; 22];
    match URL_SAFE_NO_PAD.encode_slice(buf, &mut text) {
        Ok(22) => {
            std::str::from_utf8(&text).map_or_else(|_| random_string::<16>().into(), Into::into)
        }
        // 16 bytes are always 22 characters; should that ever change, the plain way still works.
        _ => random_string::<16>().into(),
    }
}
