//! Framework-neutral requests, and the strict parsing of their parameters.
//!
//! The HTTP layer hands grantor what it read off the wire: the body as bytes and a few header
//! values. grantor decides everything else. RFC 6749 §3.2 and §3.1 apply to every endpoint:
//!
//! - "Request and response parameters MUST NOT be included more than once": a repeated parameter
//!   is `invalid_request`, but for `resource`, which RFC 8707 §2 lets a request repeat.
//! - "Parameters sent without a value MUST be treated as if they were omitted from the request."
//! - The token endpoint takes `application/x-www-form-urlencoded` bodies; anything else is
//!   `invalid_request` (unless JSON bodies were enabled on the server, a non-standard option).
//!
//! Every endpoint bounds what anyone may send: no parameter name or value longer than
//! [`MAX_PARAMETER_LENGTH`] bytes (decoded), and no more than [`MAX_PARAMETERS`] parameters. A
//! request beyond either is `invalid_request` (an error page at the authorization endpoint), and
//! nothing is stored for it. The longest values OAuth itself defines are far shorter: a PKCE
//! verifier has at most 128 characters, a token 43; `state` and `scope` are the client's own,
//! and 4096 bytes leave them ample room.

use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;

use serde::de::{MapAccess, Visitor};
use serde::Deserializer;

use crate::error::OAuthError;
use crate::reason::Reason;

const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded";

/// The longest parameter name or value (in bytes, decoded) any endpoint accepts.
pub const MAX_PARAMETER_LENGTH: usize = 4096;

/// The most parameters one request may carry.
pub const MAX_PARAMETERS: usize = 64;

fn too_long() -> OAuthError {
    OAuthError::invalid_request(format!(
        "a request parameter is longer than {MAX_PARAMETER_LENGTH} bytes"
    ))
    .with_reason(Reason::ParameterTooLong)
}

fn too_many() -> OAuthError {
    OAuthError::invalid_request(format!(
        "the request has more than {MAX_PARAMETERS} parameters"
    ))
    .with_reason(Reason::TooManyParameters)
}

/// A request to the token endpoint (RFC 6749 §3.2), as read off the wire.
///
/// ```
/// use grantor::TokenRequest;
///
/// let request = TokenRequest::form("grant_type=password&username=tom&password=123456")
///     .with_authorization("Basic Y2xpZW50YXBwOjEyMzQ1Ng==");
/// ```
#[derive(Clone, Default)]
pub struct TokenRequest {
    pub(crate) method: Option<Method>,
    pub(crate) content_type: Option<BodyType>,
    pub(crate) authorization: Option<Vec<u8>>,
    pub(crate) body: Vec<u8>,
    pub(crate) caller: Option<IpAddr>,
}

/// An HTTP method, as far as grantor's rules tell methods apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Method {
    Get,
    Post,
    Other,
}

impl Method {
    /// Reads a method's name (case-insensitive).
    pub(crate) fn parse(name: &str) -> Self {
        if name.eq_ignore_ascii_case("POST") {
            Self::Post
        } else if name.eq_ignore_ascii_case("GET") {
            Self::Get
        } else {
            Self::Other
        }
    }
}

/// What a `Content-Type` says of a body, as far as grantor reads bodies: read once, when the
/// header is set, so that nothing of it is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BodyType {
    Form,
    Json,
    Other,
}

impl BodyType {
    /// The body type a `Content-Type` value names: its media type, without parameters,
    /// compared case-insensitively.
    pub(crate) fn of(content_type: &[u8]) -> Self {
        if media_type_is(content_type, FORM_CONTENT_TYPE) {
            Self::Form
        } else if media_type_is(content_type, "application/json") {
            Self::Json
        } else {
            Self::Other
        }
    }
}

impl TokenRequest {
    /// A request with this body and no headers yet.
    pub fn new(body: impl Into<Vec<u8>>) -> Self {
        Self {
            body: body.into(),
            ..Self::default()
        }
    }

    /// A request with this body and `Content-Type: application/x-www-form-urlencoded`.
    pub fn form(body: impl Into<Vec<u8>>) -> Self {
        Self::new(body).with_content_type(FORM_CONTENT_TYPE)
    }

    /// Sets the `Content-Type` header's value.
    pub fn with_content_type(mut self, value: impl AsRef<[u8]>) -> Self {
        self.content_type = Some(BodyType::of(value.as_ref()));
        self
    }

    /// Sets the `Authorization` header's value.
    pub fn with_authorization(mut self, value: impl AsRef<[u8]>) -> Self {
        self.authorization = Some(value.as_ref().to_vec());
        self
    }

    /// Sets the HTTP method. When set, anything but `POST` is refused (RFC 6749 §3.2: "The client
    /// MUST use the HTTP "POST" method when making access token requests").
    pub fn with_method(mut self, method: impl AsRef<str>) -> Self {
        self.method = Some(Method::parse(method.as_ref()));
        self
    }

    /// Sets the address of whoever sent the request. Wrong client secrets are then counted per
    /// client and caller ([`ClientSecretLimits`](crate::ClientSecretLimits)), and the password
    /// and `mfa-otp` grants' failures per caller too
    /// ([`LoginLimits::per_address`](crate::LoginLimits)), so
    /// that one caller's wrong guesses do not hold back everyone else. Behind a reverse proxy,
    /// pass the address the proxy reports, trusted only from the proxy.
    pub fn with_caller(mut self, caller: IpAddr) -> Self {
        self.caller = Some(caller);
        self
    }
}

impl fmt::Debug for TokenRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenRequest")
            .field("method", &self.method)
            .field("body_len", &self.body.len())
            .field("has_authorization", &self.authorization.is_some())
            .field("caller", &self.caller)
            .finish_non_exhaustive()
    }
}

/// A decoded name and value, borrowed from the request where no decoding was needed.
pub(crate) type Pair<'a> = (Cow<'a, str>, Cow<'a, str>);

/// The parameters an extension lets a request repeat: `resource` (RFC 8707 §2: "multiple
/// "resource" parameters MAY be used"). Every other name appears at most once (RFC 6749 §3.2).
pub(crate) const REPEATABLE: [&str; 1] = ["resource"];

/// Decoded request parameters with no name repeated but the [`REPEATABLE`] ones, borrowed from the request's body where
/// no decoding was needed.
#[derive(Clone, Default)]
pub(crate) struct Params<'a> {
    pairs: Vec<Pair<'a>>,
}

impl fmt::Debug for Params<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Values may be passwords or tokens: names only.
        f.debug_set()
            .entries(self.pairs.iter().map(|(k, _)| k))
            .finish()
    }
}

impl<'a> Params<'a> {
    /// The value of `name`, or `None` if it is absent or empty (RFC 6749 §3.1).
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_ref())
            .filter(|v| !v.is_empty())
    }

    /// The value of a required parameter, or `invalid_request` naming it.
    pub(crate) fn require(&self, name: &'static str) -> Result<&str, OAuthError> {
        self.get(name).ok_or_else(|| {
            OAuthError::invalid_request(format!("the {name} parameter is required"))
                .with_reason(Reason::MissingParameter)
        })
    }

    /// Every pair, as parsed.
    ///
    /// Mutation testing skips it (`.cargo/mutants.toml`): only `--cfg fuzzing` builds compile
    /// it, so no ordinary build sees its mutants. The fuzz targets read it, checking that the
    /// pairs agree with the URL standard's reading of the form.
    #[cfg(fuzzing)]
    pub(crate) fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, v)| (k.as_ref(), v.as_ref()))
    }

    /// Every non-empty value of `name`, a parameter that may be repeated ([`REPEATABLE`]).
    pub(crate) fn all<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s str> + 's {
        self.pairs
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_ref())
            .filter(|v| !v.is_empty())
    }

    /// Refuses repeated names in pairs already held to the bounds, but for [`REPEATABLE`] ones.
    fn from_pairs(pairs: Vec<Pair<'a>>) -> Result<Self, OAuthError> {
        // At most MAX_PARAMETERS names: comparing each with those before it is cheaper than a
        // set, and allocates nothing.
        for (i, (k, _)) in pairs.iter().enumerate() {
            if REPEATABLE.contains(&k.as_ref()) {
                continue;
            }
            if pairs.iter().take(i).any(|(earlier, _)| earlier == k) {
                return Err(OAuthError::invalid_request(format!(
                    "the {k} parameter is repeated; each parameter may appear only once"
                ))
                .with_reason(Reason::RepeatedParameter));
            }
        }
        Ok(Self { pairs })
    }

    /// Parses an `application/x-www-form-urlencoded` body strictly: valid percent-encoding of
    /// UTF-8, no repeated names.
    pub(crate) fn from_form(body: &'a [u8]) -> Result<Self, OAuthError> {
        Self::from_pairs(decode_form(body)?)
    }

    /// Parses a JSON object whose values are all strings, with no repeated names.
    pub(crate) fn from_json(body: &[u8]) -> Result<Self, OAuthError> {
        let mut de = serde_json::Deserializer::from_slice(body);
        let mut too_many_pairs = false;
        let pairs = de
            .deserialize_map(JsonPairs {
                too_many: &mut too_many_pairs,
            })
            .map_err(|_| {
                if too_many_pairs {
                    return too_many();
                }
                OAuthError::invalid_request(
                    "the body must be a JSON object whose values are strings",
                )
                .with_reason(Reason::MalformedJson)
            })?;
        de.end().map_err(|_| {
            OAuthError::invalid_request("the body has trailing data after the JSON object")
                .with_reason(Reason::MalformedJson)
        })?;
        check_bounds(&pairs)?;
        Self::from_pairs(pairs)
    }
}

/// The raw (still encoded) name/value pairs of a form-urlencoded string; empty segments are
/// skipped and a segment without `=` has an empty value.
pub(crate) fn raw_pairs(body: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    body.split(|b| *b == b'&')
        .filter(|segment| !segment.is_empty())
        .map(|segment| match segment.iter().position(|b| *b == b'=') {
            Some(i) => (
                segment.get(..i).unwrap_or_default(),
                segment.get(i + 1..).unwrap_or_default(),
            ),
            None => (segment, &[][..]),
        })
}

/// How many pairs `body` holds, at most: exact up to [`MAX_PARAMETERS`] + 1, beyond which it
/// stops counting.
///
/// Each pair but the last ends at a `&`: counting them (eight bytes at a time) bounds the pairs
/// from above before anything is decoded, and only a body near the limit is counted exactly
/// (empty pairs, as in `a=1&&b=2`, are not pairs). Mutation testing skips this function
/// (`.cargo/mutants.toml`): `>` written `>=` only counts exactly a body with `MAX_PARAMETERS`
/// `&`-separated parts, which the bound already admitted, so no answer can change.
fn pair_count(body: &[u8]) -> usize {
    let at_most = count_ampersands(body) + 1;
    if at_most > MAX_PARAMETERS {
        raw_pairs(body).take(MAX_PARAMETERS + 1).count()
    } else {
        at_most
    }
}

/// Splits and decodes a form-urlencoded string into name/value pairs, within
/// [`MAX_PARAMETERS`] and [`MAX_PARAMETER_LENGTH`].
pub(crate) fn decode_form(body: &[u8]) -> Result<Vec<Pair<'_>>, OAuthError> {
    let count = pair_count(body);
    if count > MAX_PARAMETERS {
        return Err(too_many());
    }
    let mut pairs = Vec::with_capacity(count);
    // A body that is UTF-8 as a whole (as nearly every one is) is checked once, and its parts
    // that need no decoding are cut from it; otherwise each part is checked on its own.
    let text = std::str::from_utf8(body).ok();
    // One pass: where the pair began, its first `=`, and whether its name and its value hold
    // anything to decode.
    let mut pair = RawPair::default();
    for (k, chunk) in body.chunks(8).enumerate() {
        // Eight bytes at once past a run that holds none of `&`, `=`, `+`, `%` (tokens, codes,
        // verifiers and most of a URL).
        if let Ok(word) = <[u8; 8]>::try_from(chunk) {
            if !has_form_delimiter(u64::from_le_bytes(word)) {
                continue;
            }
        }
        for (j, b) in chunk.iter().enumerate() {
            let i = k * 8 + j;
            match b {
                b'&' => {
                    pair.decode_into(body, text, i, &mut pairs)?;
                    pair = RawPair {
                        start: i + 1,
                        ..RawPair::default()
                    };
                }
                b'=' if pair.equals.is_none() => pair.equals = Some(i),
                b'+' | b'%' if pair.equals.is_none() => pair.escaped_name = true,
                b'+' | b'%' => pair.escaped_value = true,
                _ => {}
            }
        }
    }
    // The end of the body ends the last pair as a `&` would.
    pair.decode_into(body, text, body.len(), &mut pairs)?;
    check_bounds(&pairs)?;
    Ok(pairs)
}

/// How many `&` bytes `body` holds, counted eight at a time.
fn count_ampersands(body: &[u8]) -> usize {
    const LOWS: u64 = u64::from_ne_bytes([0x7f; 8]);
    let chunks = body.chunks_exact(8);
    let tail = chunks.remainder().iter().filter(|b| **b == b'&').count();
    chunks.fold(tail, |n, chunk| {
        let word = <[u8; 8]>::try_from(chunk).map_or(0, u64::from_ne_bytes);
        let x = word ^ u64::from_ne_bytes([b'&'; 8]);
        // A byte's high bit ends up set exactly where its byte of `x` is not zero (no carry
        // crosses bytes: each byte adds at most 0x7f + 0x7f); the rest are `&`s.
        let nonzero = (((x & LOWS) + LOWS) | x) & !LOWS;
        n + 8 - nonzero.count_ones() as usize
    })
}

/// Whether any of the eight bytes of `word` is `&`, `=`, `+` or `%`.
fn has_form_delimiter(word: u64) -> bool {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    // A byte of `x` is zero where `word` holds `byte`; `(x - ONES) & !x & HIGHS` is non-zero
    // exactly when some byte of `x` is zero.
    let holds = |byte: u8| {
        let x = word ^ u64::from_ne_bytes([byte; 8]);
        x.wrapping_sub(ONES) & !x & HIGHS != 0
    };
    holds(b'&') || holds(b'=') || holds(b'+') || holds(b'%')
}

/// A pair of a form, as its bytes are read: where it starts, its first `=`, and whether its name
/// and its value hold a `+` or `%` to decode.
#[derive(Default)]
struct RawPair {
    start: usize,
    equals: Option<usize>,
    escaped_name: bool,
    escaped_value: bool,
}

impl RawPair {
    /// Decodes the pair, which ends at `end`, onto `pairs`. An empty one is skipped; one without
    /// `=` has an empty value.
    fn decode_into<'b>(
        &self,
        body: &'b [u8],
        text: Option<&'b str>,
        end: usize,
        pairs: &mut Vec<Pair<'b>>,
    ) -> Result<(), OAuthError> {
        if end <= self.start {
            return Ok(());
        }
        let (name, value) = match self.equals {
            Some(e) => (self.start..e, e + 1..end),
            None => (self.start..end, end..end),
        };
        // Mutation testing skips the guard written `false` (`.cargo/mutants.toml`): the part
        // then goes through `decode_component`, which borrows an unescaped part after checking
        // its UTF-8 again, so only the time taken changes.
        let part = |range: std::ops::Range<usize>, escaped: bool| match text {
            // Cut at ASCII delimiters, so on character boundaries.
            Some(text) if !escaped => Ok(Cow::Borrowed(text.get(range).unwrap_or_default())),
            _ => decode_component(body.get(range).unwrap_or_default(), escaped),
        };
        pairs.push((
            part(name, self.escaped_name)?,
            part(value, self.escaped_value)?,
        ));
        Ok(())
    }
}

/// Refuses more than [`MAX_PARAMETERS`] pairs, or a name or value longer than
/// [`MAX_PARAMETER_LENGTH`] bytes.
fn check_bounds(pairs: &[Pair<'_>]) -> Result<(), OAuthError> {
    if pairs.len() > MAX_PARAMETERS {
        return Err(too_many());
    }
    if pairs
        .iter()
        .any(|(k, v)| k.len() > MAX_PARAMETER_LENGTH || v.len() > MAX_PARAMETER_LENGTH)
    {
        return Err(too_long());
    }
    Ok(())
}

/// Decodes one `application/x-www-form-urlencoded` component: `+` is a space, `%XX` a byte, and
/// the result must be UTF-8. A component with neither `+` nor `%` is borrowed as it is.
pub(crate) fn form_decode(input: &[u8]) -> Result<Cow<'_, str>, OAuthError> {
    decode_component(input, input.iter().any(|b| matches!(b, b'+' | b'%')))
}

/// [`form_decode`], told whether `input` holds a `+` or `%` (without one it is borrowed).
fn decode_component(input: &[u8], escaped: bool) -> Result<Cow<'_, str>, OAuthError> {
    let malformed = || {
        OAuthError::invalid_request("the request has malformed percent-encoding or is not UTF-8")
            .with_reason(Reason::MalformedEncoding)
    };
    if !escaped {
        return std::str::from_utf8(input)
            .map(Cow::Borrowed)
            .map_err(|_| malformed());
    }
    let mut out = Vec::with_capacity(input.len());
    let mut rest = input;
    // The runs between escapes are copied whole.
    while let Some(i) = rest.iter().position(|b| matches!(b, b'+' | b'%')) {
        out.extend_from_slice(rest.get(..i).unwrap_or_default());
        let taken = if rest.get(i) == Some(&b'+') {
            out.push(b' ');
            1
        } else {
            let digit = |at: usize| rest.get(i + at).copied().and_then(hex_digit);
            let (hi, lo) = digit(1).zip(digit(2)).ok_or_else(malformed)?;
            // Written as arithmetic: `(hi << 4) | lo` is the same byte, and so is `^` for `|`,
            // which mutation testing would report as a surviving mutant.
            out.push(hi * 16 + lo);
            3
        };
        rest = rest.get(i + taken..).unwrap_or_default();
    }
    out.extend_from_slice(rest);
    String::from_utf8(out)
        .map(Cow::Owned)
        .map_err(|_| malformed())
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Reads a JSON object's string pairs. Past [`MAX_PARAMETERS`] it stops reading and fails,
/// setting `too_many`, so that the refusal can say so rather than call the body malformed.
struct JsonPairs<'a> {
    too_many: &'a mut bool,
}

impl<'de> Visitor<'de> for JsonPairs<'_> {
    type Value = Vec<Pair<'static>>;

    // Mutation testing skips this (`.cargo/mutants.toml`): serde writes it only into its own
    // error message, which `from_json` replaces with grantor's, so no answer can show it.
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object with string values")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut pairs = Vec::new();
        while let Some((k, v)) = map.next_entry::<String, String>()? {
            if pairs.len() == MAX_PARAMETERS {
                // Enough to refuse the request; stop reading it.
                *self.too_many = true;
                return Err(serde::de::Error::custom("too many parameters"));
            }
            pairs.push((Cow::Owned(k), Cow::Owned(v)));
        }
        Ok(pairs)
    }
}

/// Whether a `Content-Type` value's media type (without parameters, case-insensitive) is
/// `expected`.
fn media_type_is(content_type: &[u8], expected: &str) -> bool {
    std::str::from_utf8(content_type)
        .ok()
        .and_then(|raw| raw.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case(expected))
}

/// Parses a token request's body as form parameters (or JSON, when allowed).
pub(crate) fn token_params(req: &TokenRequest, allow_json: bool) -> Result<Params<'_>, OAuthError> {
    if req.method.is_some_and(|method| method != Method::Post) {
        return Err(
            OAuthError::invalid_request("the token endpoint accepts only POST requests")
                .with_reason(Reason::MethodNotPost),
        );
    }
    match req.content_type {
        Some(BodyType::Form) => return Params::from_form(&req.body),
        Some(BodyType::Json) if allow_json => return Params::from_json(&req.body),
        _ => {}
    }
    Err(OAuthError::invalid_request(if allow_json {
        "the request body must be application/x-www-form-urlencoded or application/json"
    } else {
        "the request body must be application/x-www-form-urlencoded"
    })
    .with_reason(Reason::UnsupportedContentType))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;

    /// A request's and its parameters' `Debug` say what a log may show (sizes, names, whether
    /// credentials came, the caller) and never a value: values are passwords and tokens.
    #[test]
    fn debug_shows_names_and_sizes_never_values() {
        let request = TokenRequest::form("grant_type=password&password=hunter2")
            .with_authorization("Basic c2VjcmV0OnNlY3JldA==")
            .with_method("POST")
            .with_caller(IpAddr::from([192, 0, 2, 1]));
        let shown = format!("{request:?}");
        assert_eq!(
            shown,
            "TokenRequest { method: Some(Post), body_len: 36, has_authorization: true, \
             caller: Some(192.0.2.1), .. }"
        );
        let params = Params::from_form(&request.body).expect("a form");
        assert_eq!(format!("{params:?}"), r#"{"grant_type", "password"}"#);
    }

    /// Splits at `&` and the first `=`, then decodes byte by byte: the plainest reading of the
    /// form encoding, for the one-pass parser to agree with.
    fn reference(body: &[u8]) -> Option<Vec<(String, String)>> {
        let decode = |part: &[u8]| -> Option<String> {
            let mut out = Vec::new();
            let mut bytes = part.iter().copied();
            while let Some(b) = bytes.next() {
                match b {
                    b'+' => out.push(b' '),
                    b'%' => {
                        let hi = bytes.next().and_then(hex_digit)?;
                        let lo = bytes.next().and_then(hex_digit)?;
                        out.push((hi << 4) | lo);
                    }
                    _ => out.push(b),
                }
            }
            String::from_utf8(out).ok()
        };
        raw_pairs(body)
            .map(|(name, value)| Some((decode(name)?, decode(value)?)))
            .collect()
    }

    /// One xorshift step: the generated-body tests' source of bytes.
    fn step(state: &mut u64) {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
    }

    /// What the one-pass parser makes of `body`, owned.
    fn owned_pairs(body: &[u8]) -> Option<Vec<(String, String)>> {
        decode_form(body).ok().map(|pairs| {
            pairs
                .into_iter()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
    }

    /// The parser reads `body` as [`reference`] does, and refuses what it refuses as malformed
    /// encoding.
    fn reads_as_the_plain_reading(body: &[u8]) {
        let expected = reference(body);
        if expected.is_none() {
            let reason = decode_form(body).err().and_then(|e| e.reason());
            assert_eq!(reason, Some(Reason::MalformedEncoding));
        }
        assert_eq!(
            owned_pairs(body),
            expected,
            "{:?}",
            String::from_utf8_lossy(body)
        );
    }

    #[test]
    fn the_one_pass_parser_reads_forms_as_the_plain_reading_does() {
        let alphabet: &[u8] = b"ab=&+%2F0e9A\xc3\xa9\xff";
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..50_000 {
            step(&mut state);
            let len = (state % 24) as usize;
            let body: Vec<u8> = (0..len)
                .map(|i| {
                    let pick = (state >> (i % 8 * 8)) as usize + i * 7;
                    alphabet.get(pick % alphabet.len()).copied().unwrap_or(b'a')
                })
                .collect();
            reads_as_the_plain_reading(&body);
        }
    }

    #[test]
    fn long_plain_runs_are_read_as_the_plain_reading_does() {
        // Bodies where most bytes are plain, so whole words are skipped, with a delimiter at
        // every offset within a word.
        let alphabet: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789-._~=&+%2F\xc3\xa9";
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        for _ in 0..50_000 {
            step(&mut state);
            let body: Vec<u8> = (0..(state % 90) as usize)
                .map(|_| {
                    step(&mut state);
                    // One byte in six from the tail of the alphabet (delimiters and escapes).
                    let pick = if state.is_multiple_of(6) {
                        alphabet.len() - 1 - (state >> 8) as usize % 10
                    } else {
                        (state >> 8) as usize % (alphabet.len() - 10)
                    };
                    alphabet.get(pick).copied().unwrap_or(b'a')
                })
                .collect();
            reads_as_the_plain_reading(&body);
        }
        for byte in 0..=u8::MAX {
            for at in 0..8 {
                let mut word = *b"abcdefgh";
                if let Some(slot) = word.get_mut(at) {
                    *slot = byte;
                }
                assert_eq!(
                    has_form_delimiter(u64::from_le_bytes(word)),
                    matches!(byte, b'&' | b'=' | b'+' | b'%'),
                    "{byte} at {at}"
                );
            }
        }
    }

    #[test]
    fn ampersands_are_counted_as_a_byte_count_would() {
        let mut state = 0x1234_5678_9abc_def1_u64;
        for _ in 0..20_000 {
            step(&mut state);
            let body: Vec<u8> = (0..(state % 70) as usize)
                .map(|_| {
                    step(&mut state);
                    // `&` one time in four, its neighbours (0x25, 0x27, 0xa6) and high bytes.
                    [b'&', b'&', b'%', b'\'', 0xa6, 0xff, b'a', 0]
                        .get((state >> 11) as usize % 8)
                        .copied()
                        .unwrap_or(b'a')
                })
                .collect();
            let plain = body.iter().filter(|b| **b == b'&').count();
            assert_eq!(count_ampersands(&body), plain, "{body:?}");
        }
    }

    #[test]
    fn json_bodies_are_held_to_the_same_bounds() {
        let reason = |body: String| {
            Params::from_json(body.as_bytes())
                .err()
                .and_then(|e| e.reason())
        };
        let object = |n: usize| {
            let pairs: Vec<String> = (0..n).map(|i| format!("\"p{i}\":\"v\"")).collect();
            format!("{{{}}}", pairs.join(","))
        };
        assert_eq!(reason(object(MAX_PARAMETERS)), None);
        assert_eq!(
            reason(object(MAX_PARAMETERS + 1)),
            Some(Reason::TooManyParameters)
        );
        let long = "v".repeat(MAX_PARAMETER_LENGTH + 1);
        assert_eq!(
            reason(format!("{{\"a\":\"{long}\"}}")),
            Some(Reason::ParameterTooLong)
        );
    }

    #[test]
    fn form_bounds_are_checked_in_order_count_then_encoding_then_length() {
        let reason = |body: &[u8]| decode_form(body).err().and_then(|e| e.reason());
        let pairs = |n: usize, last: &str| {
            let mut body: Vec<String> = (0..n).map(|i| format!("p{i}=v")).collect();
            body.push(last.to_owned());
            body.join("&")
        };
        // Up to the limit is fine; one more is refused before anything is decoded.
        assert_eq!(reason(pairs(MAX_PARAMETERS - 1, "x=y").as_bytes()), None);
        assert_eq!(
            reason(pairs(MAX_PARAMETERS, "x=%zz").as_bytes()),
            Some(Reason::TooManyParameters)
        );
        // Empty segments are not parameters.
        let sparse = pairs(MAX_PARAMETERS - 1, "x=y").replace('&', "&&&");
        assert_eq!(reason(sparse.as_bytes()), None);
        // A bad escape anywhere is reported before a value that is too long.
        let long = "v".repeat(MAX_PARAMETER_LENGTH + 1);
        assert_eq!(
            reason(format!("a={long}&b=%zz").as_bytes()),
            Some(Reason::MalformedEncoding)
        );
        assert_eq!(
            reason(format!("a={long}").as_bytes()),
            Some(Reason::ParameterTooLong)
        );
        // The bound is on the decoded length.
        let escaped = "%41".repeat(MAX_PARAMETER_LENGTH);
        assert_eq!(reason(format!("a={escaped}").as_bytes()), None);
        assert_eq!(
            reason(format!("a={escaped}%41").as_bytes()),
            Some(Reason::ParameterTooLong)
        );
        // Names are bounded as values are, in forms and in JSON.
        let name = "n".repeat(MAX_PARAMETER_LENGTH);
        assert_eq!(reason(format!("{name}=v").as_bytes()), None);
        assert_eq!(
            reason(format!("{name}n=v").as_bytes()),
            Some(Reason::ParameterTooLong)
        );
        let json = |name: &str| Params::from_json(format!("{{\"{name}\":\"v\"}}").as_bytes());
        assert!(json(&name).is_ok());
        assert_eq!(
            json(&format!("{name}n")).err().and_then(|e| e.reason()),
            Some(Reason::ParameterTooLong)
        );
    }

    #[test]
    fn form_decoding() {
        let p = Params::from_form(b"a=1+2&b=%41%c3%a9&c=&d").unwrap_or_default();
        assert_eq!(p.get("a"), Some("1 2"));
        assert_eq!(p.get("b"), Some("Aé"));
        assert_eq!(p.get("c"), None);
        assert_eq!(p.get("d"), None);
        // A body that is not UTF-8 as it stands may still decode to UTF-8.
        let p = Params::from_form(b"a=\xc3%A9").unwrap_or_default();
        assert_eq!(p.get("a"), Some("\u{e9}"));
        for bad in [&b"a=%"[..], b"a=%4", b"a=%zz", b"a=%ff", b"%ff=1"] {
            let e = Params::from_form(bad).err().map(|e| e.code());
            assert_eq!(e, Some(ErrorCode::InvalidRequest), "{bad:?}");
        }
    }

    #[test]
    fn plain_components_are_borrowed_and_encoded_ones_decoded() {
        assert!(matches!(form_decode(b"read"), Ok(Cow::Borrowed("read"))));
        assert!(matches!(form_decode(b""), Ok(Cow::Borrowed(""))));
        assert_eq!(form_decode(b"a+b%21").ok().as_deref(), Some("a b!"));
        assert!(form_decode(b"\xff").is_err());
    }

    #[test]
    fn the_parameter_count_is_exact_at_the_limit() {
        let body = |n: usize, sep: &str| {
            (0..n)
                .map(|i| format!("p{i}=1"))
                .collect::<Vec<_>>()
                .join(sep)
        };
        let count = |b: String| {
            decode_form(b.as_bytes())
                .map(|p| p.len())
                .map_err(|e| e.reason())
        };
        assert_eq!(count(body(MAX_PARAMETERS, "&")), Ok(MAX_PARAMETERS));
        // Empty segments are no parameters, however many there are.
        assert_eq!(count(body(MAX_PARAMETERS, "&&&")), Ok(MAX_PARAMETERS));
        assert_eq!(
            count(body(MAX_PARAMETERS + 1, "&")),
            Err(Some(Reason::TooManyParameters))
        );
        assert_eq!(
            count(body(MAX_PARAMETERS + 1, "&&")),
            Err(Some(Reason::TooManyParameters))
        );
    }

    #[test]
    fn repeated_parameters_are_refused_even_when_empty() {
        for body in [&b"a=1&a=2"[..], b"a=&a=1", b"a=1&b=2&a=1"] {
            let e = Params::from_form(body).err();
            assert_eq!(e.map(|e| e.code()), Some(ErrorCode::InvalidRequest));
        }
    }

    /// `resource` may repeat (RFC 8707 §2); `all` reads every value sent, in order, and
    /// passes over empty ones as if omitted (RFC 6749 §3.1); `get` reads the first.
    #[test]
    fn a_repeatable_parameter_is_read_whole() {
        let p =
            Params::from_form(b"resource=https%3A%2F%2Fa&x=1&resource=&resource=https%3A%2F%2Fb")
                .expect("resource may repeat");
        let all: Vec<&str> = p.all("resource").collect();
        assert_eq!(all, ["https://a", "https://b"]);
        assert_eq!(p.get("resource"), Some("https://a"));
        assert_eq!(p.all("x").collect::<Vec<_>>(), ["1"]);
        assert_eq!(p.all("absent").count(), 0);
        assert_eq!(
            Params::from_form(b"resource=")
                .map(|p| p.all("resource").count())
                .ok(),
            Some(0)
        );
    }

    #[test]
    fn json_objects_of_strings() {
        let p =
            Params::from_json(br#"{"grant_type":"password","username":"tom"}"#).unwrap_or_default();
        assert_eq!(p.get("username"), Some("tom"));
        for bad in [
            &br#"{"a":1}"#[..],
            br#"["a"]"#,
            br#"{"a":"1","a":"2"}"#,
            b"{} x",
            b"",
        ] {
            assert!(
                Params::from_json(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn media_types() {
        let form = Some(BodyType::Form);
        let of = |v: &[u8]| Some(BodyType::of(v));
        assert_eq!(
            of(b"application/x-www-form-urlencoded; charset=UTF-8"),
            form
        );
        assert_eq!(of(b"Application/X-WWW-Form-Urlencoded"), form);
        assert_eq!(of(b" application/json "), Some(BodyType::Json));
        assert_eq!(of(b"text/plain"), Some(BodyType::Other));
        assert_eq!(of(b"\xff"), Some(BodyType::Other));
    }

    #[test]
    fn methods() {
        assert_eq!(Method::parse("post"), Method::Post);
        assert_eq!(Method::parse("GET"), Method::Get);
        assert_eq!(Method::parse("PUT"), Method::Other);
    }
}
