//! oxide-auth 0.6.1 with its in-memory primitives (`ClientMap`, `AuthMap`, `TokenMap` over
//! `RandomGenerator`), endpoints assembled per request from `frontends::simple::endpoint::Generic`
//! as its docs show, behind one `Mutex` (its primitives need `&mut` to issue). The host adapter is
//! the one every oxide-auth frontend writes: the request's query, form body and `Authorization`
//! into a `frontends::simple::request::Request`, the flow's `Response` back into an
//! `http::Response`. The token endpoint dispatches on `grant_type`, since each grant is a flow of
//! its own. PKCE S256 is the `Pkce::required()` addon; client secrets are checked by a salted
//! SHA-256 `PasswordPolicy` (its only built-in one is Argon2, which would measure a KDF).

use std::collections::HashMap;
use std::sync::Mutex;

use oxide_auth::endpoint::{
    AccessTokenFlow, AuthorizationFlow, ClientCredentialsFlow, OwnerConsent, RefreshFlow,
    ResourceFlow, Solicitation,
};
use oxide_auth::frontends::simple::endpoint::{FnSolicitor, Generic, Vacant};
use oxide_auth::frontends::simple::extensions::{AddonList, Extended, Pkce};
use oxide_auth::frontends::simple::request::{Body, Request, Response, Status};
use oxide_auth::primitives::authorizer::AuthMap;
use oxide_auth::primitives::generator::RandomGenerator;
use oxide_auth::primitives::issuer::TokenMap;
use oxide_auth::primitives::registrar::{
    Client, ClientMap, ExactUrl, PasswordPolicy, RegisteredUrl, RegistrarError,
};
use oxide_auth::primitives::scope::Scope;
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use crate::harness::{HttpRequest, Reply, CALLBACK, SERVICE_ID, SERVICE_SECRET, USER};
use crate::harness::{WEBAPP_ID, WEBAPP_SECRET};
use crate::Side;

/// 32 random bytes per token and code, as grantor draws.
const TOKEN_BYTES: usize = 32;

struct State {
    registrar: ClientMap,
    authorizer: AuthMap<RandomGenerator>,
    issuer: TokenMap<RandomGenerator>,
    pkce: AddonList,
    scopes: Vec<Scope>,
}

/// The endpoint the token and authorization requests use: the state's registrar, authorizer and
/// issuer, with `solicitor` answering for the resource owner.
fn grant_endpoint<'a, S>(
    registrar: &'a ClientMap,
    authorizer: &'a mut AuthMap<RandomGenerator>,
    issuer: &'a mut TokenMap<RandomGenerator>,
    solicitor: S,
) -> Generic<
    &'a ClientMap,
    &'a mut AuthMap<RandomGenerator>,
    &'a mut TokenMap<RandomGenerator>,
    S,
    Vacant,
    Vacant,
> {
    Generic {
        registrar,
        authorizer,
        issuer,
        solicitor,
        scopes: Vacant,
        response: Vacant,
    }
}

pub struct Oxide {
    state: Mutex<State>,
}

/// A client secret stored as `salt ‖ SHA-256(salt ‖ secret)`, compared in constant time: the
/// same work as grantor's `SecretHash`.
struct SaltedSha256;

impl PasswordPolicy for SaltedSha256 {
    fn store(&self, _client_id: &str, passphrase: &[u8]) -> Vec<u8> {
        let mut salt = [0u8; 16];
        rand::rng().fill_bytes(&mut salt);
        let mut stored = salt.to_vec();
        stored.extend_from_slice(
            &Sha256::new()
                .chain_update(salt)
                .chain_update(passphrase)
                .finalize(),
        );
        stored
    }

    fn check(
        &self,
        _client_id: &str,
        passphrase: &[u8],
        stored: &[u8],
    ) -> Result<(), RegistrarError> {
        if stored.len() != 48 {
            return Err(RegistrarError::Unspecified);
        }
        let (salt, digest) = stored.split_at(16);
        let candidate = Sha256::new()
            .chain_update(salt)
            .chain_update(passphrase)
            .finalize();
        if bool::from(candidate.as_slice().ct_eq(digest)) {
            Ok(())
        } else {
            Err(RegistrarError::Unspecified)
        }
    }
}

impl Oxide {
    pub fn new() -> Self {
        let read: Scope = "read".parse().expect("scope");
        let callback = || RegisteredUrl::Exact(ExactUrl::new(CALLBACK.to_owned()).expect("url"));
        let mut registrar = ClientMap::new();
        registrar.set_password_policy(SaltedSha256);
        // oxide-auth's `Client` has no list of allowed grants: either client can use any flow.
        registrar.register_client(Client::confidential(
            SERVICE_ID,
            callback(),
            read.clone(),
            SERVICE_SECRET.as_bytes(),
        ));
        registrar.register_client(Client::confidential(
            WEBAPP_ID,
            callback(),
            read.clone(),
            WEBAPP_SECRET.as_bytes(),
        ));
        let mut issuer = TokenMap::new(RandomGenerator::new(TOKEN_BYTES));
        issuer.valid_for(chrono::Duration::hours(1));
        let mut pkce = AddonList::new();
        pkce.push_code(Pkce::required());
        Oxide {
            state: Mutex::new(State {
                registrar,
                authorizer: AuthMap::new(RandomGenerator::new(TOKEN_BYTES)),
                issuer,
                pkce,
                scopes: vec![read],
            }),
        }
    }
}

fn params(text: &str) -> HashMap<String, String> {
    form_urlencoded::parse(text.as_bytes())
        .into_owned()
        .collect()
}

fn authorization(request: &HttpRequest) -> Option<String> {
    request
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The flow's answer as an `http::Response`, with the headers RFC 6749 §5.1 asks of a token
/// response (oxide-auth leaves them to the host).
fn to_http(response: Response) -> http::Response<String> {
    let mut builder = http::Response::builder().status(match response.status {
        Status::Ok => 200,
        Status::Redirect => 302,
        Status::BadRequest => 400,
        Status::Unauthorized => 401,
    });
    if let Some(location) = &response.location {
        builder = builder.header(http::header::LOCATION, location.as_str());
    }
    if let Some(challenge) = &response.www_authenticate {
        builder = builder.header(http::header::WWW_AUTHENTICATE, challenge.as_str());
    }
    let body = match response.body {
        Some(Body::Json(json)) => {
            builder = builder
                .header(http::header::CONTENT_TYPE, "application/json")
                .header(http::header::CACHE_CONTROL, "no-store");
            json
        }
        Some(Body::Text(text)) => {
            builder = builder.header(http::header::CONTENT_TYPE, "text/plain");
            text
        }
        None => String::new(),
    };
    builder.body(body).expect("response")
}

fn failed() -> http::Response<String> {
    let mut response = http::Response::new(String::new());
    *response.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
    response
}

impl Side for Oxide {
    const NAME: &'static str = "oxide-auth 0.6.1";

    async fn token(&self, request: HttpRequest) -> Reply {
        let form = params(request.body());
        let grant_type = form.get("grant_type").cloned().unwrap_or_default();
        let simple = Request {
            query: HashMap::new(),
            urlbody: form,
            auth: authorization(&request),
        };
        let mut guard = self.state.lock().expect("lock");
        let state = &mut *guard;
        // The client credentials grant's "owner" is the client itself.
        let client_is_owner = FnSolicitor(|_: &mut Request, s: Solicitation| {
            OwnerConsent::Authorized(s.pre_grant().client_id.clone())
        });
        let endpoint = grant_endpoint(
            &state.registrar,
            &mut state.authorizer,
            &mut state.issuer,
            client_is_owner,
        );
        let response = match grant_type.as_str() {
            "client_credentials" => ClientCredentialsFlow::prepare(endpoint)
                .ok()
                .and_then(|mut flow| flow.execute(simple).ok()),
            "authorization_code" => {
                AccessTokenFlow::prepare(Extended::extend_with(endpoint, &mut state.pkce))
                    .ok()
                    .and_then(|mut flow| flow.execute(simple).ok())
            }
            "refresh_token" => RefreshFlow::prepare(endpoint)
                .ok()
                .and_then(|mut flow| flow.execute(simple).ok()),
            _ => None,
        };
        drop(guard);
        let response = response.map(to_http).unwrap_or_else(failed);
        Reply {
            status: response.status().as_u16(),
            body: response.into_body().into_bytes(),
        }
    }

    async fn authorize(&self, request: HttpRequest) -> Option<String> {
        let simple = Request {
            query: params(request.uri().query().unwrap_or("")),
            urlbody: HashMap::new(),
            auth: None,
        };
        let mut guard = self.state.lock().expect("lock");
        let state = &mut *guard;
        let approve = FnSolicitor(|_: &mut Request, _: Solicitation| {
            OwnerConsent::Authorized(USER.to_owned())
        });
        let endpoint = grant_endpoint(
            &state.registrar,
            &mut state.authorizer,
            &mut state.issuer,
            approve,
        );
        let response = AuthorizationFlow::prepare(Extended::extend_with(endpoint, &mut state.pkce))
            .ok()?
            .execute(simple)
            .ok()?;
        drop(guard);
        let response = to_http(response);
        let location = response.headers().get(http::header::LOCATION)?;
        Some(location.to_str().ok()?.to_owned())
    }

    async fn validate(&self, request: &HttpRequest) -> bool {
        let simple = Request {
            query: HashMap::new(),
            urlbody: HashMap::new(),
            auth: authorization(request),
        };
        let mut guard = self.state.lock().expect("lock");
        let state = &mut *guard;
        let endpoint = Generic {
            registrar: Vacant,
            authorizer: Vacant,
            issuer: &mut state.issuer,
            solicitor: Vacant,
            scopes: &mut state.scopes,
            response: Vacant,
        };
        match ResourceFlow::prepare(endpoint) {
            Ok(mut flow) => flow.execute(simple).is_ok(),
            Err(_) => false,
        }
    }
}
