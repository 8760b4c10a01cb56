//! A real browser drives the login and consent page and the device page: headless Chromium over WebDriver
//! (Debian's `chromium` and `chromium-driver`, installed by `.ci/test` when missing).
//!
//! Never skipped: without the browser or its driver the test fails and says how to install them.
#![allow(clippy::disallowed_methods)] // waiting for real processes needs the real clock

#[allow(dead_code)]
#[path = "../examples/axum_server.rs"]
mod example;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{ClientBuilder, Locator};

const CALLBACK: &str = "http://localhost:3000/callback";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn find_binary(names: &[&str]) -> Option<String> {
    names.iter().find_map(|name| {
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .chain([
                std::path::PathBuf::from("/usr/bin"),
                std::path::PathBuf::from("/usr/lib/chromium"),
            ])
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
            .map(|p| p.to_string_lossy().into_owned())
    })
}

/// chromedriver, stopped when dropped.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_driver() -> (Driver, u16) {
    let Some(driver) = find_binary(&["chromedriver"]) else {
        panic!(
            "chromedriver is not installed, and the browser test needs it. Install Debian's \
             chromium and chromium-driver (`sudo apt-get install chromium chromium-driver`) or \
             run `bash .ci/test`, which installs them."
        );
    };
    let port = free_port();
    let child = Command::new(driver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "chromedriver did not start within 20 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (Driver(child), port)
}

async fn browser(driver_port: u16, profile: &std::path::Path) -> fantoccini::Client {
    let Some(chromium) = find_binary(&["chromium", "chromium-browser", "google-chrome"]) else {
        panic!(
            "chromium is not installed, and the browser test needs it. Install Debian's chromium \
             and chromium-driver or run `bash .ci/test`, which installs them."
        );
    };
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".to_owned(),
        serde_json::json!({
            "binary": chromium,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{driver_port}"))
        .await
        .expect("a WebDriver session")
}

/// Opens the authorize page for `spa` with PKCE, types the credentials and presses `button`.
async fn sign_in(c: &fantoccini::Client, base: &str, username: &str, password: &str, button: &str) {
    let url = format!(
        "{base}/oauth/authorize?response_type=code&client_id=spa&redirect_uri={}&state=browser-state&code_challenge={CHALLENGE}&code_challenge_method=S256",
        url::form_urlencoded::byte_serialize(CALLBACK.as_bytes()).collect::<String>()
    );
    c.goto(&url).await.expect("open the authorize page");
    c.find(Locator::Css("input[name=username]"))
        .await
        .expect("username field")
        .send_keys(username)
        .await
        .expect("type");
    c.find(Locator::Css("input[name=password]"))
        .await
        .expect("password field")
        .send_keys(password)
        .await
        .expect("type");
    c.find(Locator::Css(&format!(
        "button[name=decision][value={button}]"
    )))
    .await
    .expect("button")
    .click()
    .await
    .expect("click");
}

async fn type_into(c: &fantoccini::Client, name: &str, text: &str) {
    let field = c
        .find(Locator::Css(&format!("input[name={name}]")))
        .await
        .expect(name);
    field.clear().await.expect("clear");
    field.send_keys(text).await.expect("type");
}

async fn click(c: &fantoccini::Client, button: &str) {
    c.find(Locator::Css(&format!(
        "button[name=decision][value={button}]"
    )))
    .await
    .expect("button")
    .click()
    .await
    .expect("click");
}

/// What alice's authenticator app shows now.
fn alice_code() -> String {
    grantor::Totp::from_base32(example::ALICE_TOTP_SECRET)
        .expect("alice's secret")
        .generate(time::OffsetDateTime::now_utc())
}

/// A form POST as a device would send it (no browser), answering the body.
async fn device_post(addr: std::net::SocketAddr, path: &str, body: String) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await.expect("read");
    raw.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default()
}

/// Waits until the browser has gone to the client's callback, and answers that URL.
async fn callback_url(c: &fantoccini::Client) -> url::Url {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let url = c.current_url().await.expect("current url");
        if url.as_str().starts_with(CALLBACK) {
            return url;
        }
        assert!(Instant::now() < deadline, "the browser stayed on {url}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_signs_in_approves_denies_and_mistypes_and_connects_a_device() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let base = format!("http://{addr}");
    let server = example::demo_server(&base, None)
        .await
        .expect("demo server");
    tokio::spawn(example::serve(
        listener,
        example::router(server),
        std::future::pending(),
    ));

    let (_driver, driver_port) = tokio::task::block_in_place(start_driver);
    let profile = std::env::temp_dir().join(format!("grantor-chromium-{}", std::process::id()));
    let c = browser(driver_port, &profile).await;

    // 1. tom/123456, approve: back at the callback with a code, the state and the issuer.
    sign_in(&c, &base, "tom", "123456", "approve").await;
    let url = callback_url(&c).await;
    let p: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert!(p.get("code").is_some_and(|c| c.len() == 43), "{url}");
    assert_eq!(p.get("state").map(String::as_str), Some("browser-state"));
    assert_eq!(p.get("iss").map(String::as_str), Some(base.as_str()));

    // 2. deny: back at the callback with access_denied.
    sign_in(&c, &base, "", "", "deny").await;
    let url = callback_url(&c).await;
    let p: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(
        p.get("error").map(String::as_str),
        Some("access_denied"),
        "{url}"
    );
    assert_eq!(p.get("state").map(String::as_str), Some("browser-state"));
    assert!(!p.contains_key("code"));

    // 3. a wrong password: still on the form, with the message, and no code anywhere.
    sign_in(&c, &base, "tom", "not-the-password", "approve").await;
    let alert = c
        .wait()
        .for_element(Locator::Css("p.error"))
        .await
        .expect("the message");
    assert_eq!(
        alert.text().await.expect("text"),
        "Wrong username or password."
    );
    let url = c.current_url().await.expect("url");
    assert!(
        url.as_str().starts_with(&format!("{base}/oauth/authorize")),
        "{url}"
    );
    assert!(c.find(Locator::Css("input[name=password]")).await.is_ok());

    // 4. The device page: a CLI asks for a code, the person opens the verification_uri_complete,
    //    which shows which application asks for what; they sign in as alice (password, then her
    //    one-time code) and approve; the CLI gets tokens.
    let answer = device_post(
        addr,
        "/oauth/device_authorization",
        "client_id=cli".to_owned(),
    )
    .await;
    let device: serde_json::Value = serde_json::from_str(&answer).expect("json");
    let complete = device["verification_uri_complete"].as_str().expect("uri");
    c.goto(complete).await.expect("open the device page");
    let request = c
        .find(Locator::Css("section.request"))
        .await
        .expect("the request shown")
        .text()
        .await
        .expect("text");
    assert!(
        request.contains("The application cli asks to use your account for:"),
        "{request}"
    );
    assert!(request.contains("read"), "{request}");
    let code_field = c
        .find(Locator::Css("input[name=user_code]"))
        .await
        .expect("user_code field");
    assert_eq!(
        code_field.prop("value").await.expect("value").as_deref(),
        device["user_code"].as_str()
    );
    type_into(&c, "username", "alice").await;
    type_into(&c, "password", "123456").await;
    click(&c, "approve").await;
    let alert = c
        .wait()
        .for_element(Locator::Css("p.error"))
        .await
        .expect("the message");
    assert!(alert
        .text()
        .await
        .expect("text")
        .starts_with("This account also needs a one-time code."));
    // The code and the username are still there; the password and the code are typed anew.
    let username = c
        .find(Locator::Css("input[name=username]"))
        .await
        .expect("username field");
    assert_eq!(
        username.prop("value").await.expect("value").as_deref(),
        Some("alice")
    );
    type_into(&c, "password", "123456").await;
    type_into(&c, "otp", &alice_code()).await;
    click(&c, "approve").await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let source = c.source().await.expect("page source");
        if source.contains("You can return to your device.") {
            assert!(source.contains("<h1>Device connected</h1>"), "{source}");
            break;
        }
        assert!(Instant::now() < deadline, "still on {source}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let poll = format!(
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&client_id=cli&device_code={}",
        device["device_code"].as_str().expect("device_code")
    );
    let tokens = device_post(addr, "/oauth/token", poll).await;
    assert!(tokens.contains("\"access_token\""), "{tokens}");

    // 5. The code typed by hand: /device asks only for the code; Continue shows the request;
    //    tom signs in and denies; the CLI hears access_denied.
    let answer = device_post(
        addr,
        "/oauth/device_authorization",
        "client_id=cli&scope=read+write".to_owned(),
    )
    .await;
    let device: serde_json::Value = serde_json::from_str(&answer).expect("json");
    c.goto(&format!("{base}/device"))
        .await
        .expect("open the device page");
    assert!(c.find(Locator::Css("input[name=password]")).await.is_err());
    assert!(c.find(Locator::Css("button[name=decision]")).await.is_err());
    let typed = device["user_code"]
        .as_str()
        .expect("user_code")
        .to_lowercase();
    type_into(&c, "user_code", &typed).await;
    c.find(Locator::Css("form button[type=submit]"))
        .await
        .expect("continue")
        .click()
        .await
        .expect("click");
    let request = c
        .wait()
        .for_element(Locator::Css("section.request"))
        .await
        .expect("the request shown")
        .text()
        .await
        .expect("text");
    assert!(request.contains("cli"), "{request}");
    assert!(
        request.contains("read") && request.contains("write"),
        "{request}"
    );
    type_into(&c, "username", "tom").await;
    type_into(&c, "password", "123456").await;
    click(&c, "deny").await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let source = c.source().await.expect("page source");
        if source.contains("You can return to your device.") {
            assert!(source.contains("<h1>Device refused</h1>"), "{source}");
            break;
        }
        assert!(Instant::now() < deadline, "still on {source}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let poll = format!(
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&client_id=cli&device_code={}",
        device["device_code"].as_str().expect("device_code")
    );
    let refused = device_post(addr, "/oauth/token", poll).await;
    assert!(refused.contains("\"access_denied\""), "{refused}");

    c.close().await.expect("close the browser");
    let _ = std::fs::remove_dir_all(profile);
}
