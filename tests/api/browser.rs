//! The HTML pages driven by a real browser: headless Chromium over WebDriver (chromedriver), through
//! `fantoccini`. These tests see what a person sees — the rendered page, the form the browser
//! submits, the redirects it follows — and save screenshots under `target/screenshots/`.
//!
//! [`browser`] starts one chromedriver per test, so tests may run concurrently. Without Chromium or
//! chromedriver installed the tests are skipped loudly; under `CI=true` they fail instead.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use latchkey::config::DEFAULT_ISSUER;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};

use crate::helpers::{Backend, TestApp};

on_both_databases!(login_page_signs_in_and_returns_to_the_client);

/// The Chromium launcher (Debian package `chromium`).
const CHROMIUM: &str = "/usr/bin/chromium";
/// The WebDriver server for it (Debian package `chromium-driver`).
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// What chromedriver prints once it listens, followed by the port it chose.
const CHROMEDRIVER_READY: &str = "ChromeDriver was started successfully on port ";
/// How long chromedriver and every page may take before the test gives up.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(30);
/// Printed (or, under `CI=true`, panicked with) when the browser is missing.
const SKIPPED: &str = "SKIPPED: chromium/chromedriver not installed; browser test did not run";

/// A headless Chromium session and the chromedriver serving it; killed on drop, [`Browser::close`]
/// ends it cleanly.
pub struct Browser {
    /// The WebDriver session.
    pub client: Client,
    driver: Child,
    /// Chromium's profile, fresh for every browser.
    _profile: tempfile::TempDir,
}

/// A headless Chromium, or `None` (after a loud notice) when Chromium or chromedriver is not
/// installed. Under `CI=true` a missing browser fails the test instead.
pub async fn browser() -> Option<Browser> {
    if !Path::new(CHROMIUM).exists() || !Path::new(CHROMEDRIVER).exists() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{SKIPPED}");
        }
        eprintln!("\n{SKIPPED}\n");
        return None;
    }
    // Port 0: chromedriver picks a free port and reports it, so concurrent tests never collide.
    let mut driver = Command::new(CHROMEDRIVER)
        .args(["--port=0", "--log-level=WARNING"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("chromedriver starts");
    let mut stdout = BufReader::new(driver.stdout.take().expect("chromedriver stdout")).lines();
    let port = tokio::time::timeout(BROWSER_TIMEOUT, async {
        while let Some(line) = stdout.next_line().await.expect("read chromedriver output") {
            if let Some(port) = line.strip_prefix(CHROMEDRIVER_READY) {
                return port.trim_end_matches('.').parse::<u16>().ok();
            }
        }
        None
    })
    .await
    .expect("chromedriver starts in time")
    .expect("chromedriver reports its port");
    forward("chromedriver", stdout.into_inner());
    forward(
        "chromedriver",
        driver.stderr.take().expect("chromedriver stderr"),
    );

    let webdriver = format!("http://127.0.0.1:{port}");
    let status: serde_json::Value = reqwest::get(format!("{webdriver}/status"))
        .await
        .expect("chromedriver answers /status")
        .json()
        .await
        .expect("/status is JSON");
    assert_eq!(
        status["value"]["ready"], true,
        "chromedriver ready: {status}"
    );

    let profile = tempfile::tempdir().expect("Chromium profile dir");
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                format!("--user-data-dir={}", profile.path().display()),
                "--window-size=1280,900",
            ],
        }),
    );
    let client = tokio::time::timeout(
        BROWSER_TIMEOUT,
        ClientBuilder::native()
            .capabilities(capabilities)
            .connect(&webdriver),
    )
    .await
    .expect("Chromium starts in time")
    .expect("WebDriver session");
    Some(Browser {
        client,
        driver,
        _profile: profile,
    })
}

/// Copies a child's output line by line to the test's stderr (shown for failing tests).
fn forward(name: &'static str, output: impl AsyncRead + Unpin + Send + 'static) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(output).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            eprintln!("{name}: {line}");
        }
    });
}

impl Browser {
    /// Opens `url` and waits for the page to load.
    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("page loads");
    }

    /// The page's `<title>`.
    pub async fn title(&self) -> String {
        self.client.title().await.expect("page title")
    }

    /// The visible text of the page's `<body>`.
    pub async fn text(&self) -> String {
        self.client
            .find(Locator::Css("body"))
            .await
            .expect("page has a body")
            .text()
            .await
            .expect("body text")
    }

    /// Replaces the value of the input named `name` as a person would, by typing.
    pub async fn fill(&self, name: &str, value: &str) {
        let input = self
            .client
            .find(Locator::Css(&format!("input[name={name}]")))
            .await
            .unwrap_or_else(|e| panic!("input {name} on the page: {e}"));
        input.clear().await.expect("clear input");
        input.send_keys(value).await.expect("type into input");
    }

    /// Clicks the form's submit button.
    pub async fn submit(&self) {
        self.client
            .find(Locator::Css("button[type=submit]"))
            .await
            .expect("submit button on the page")
            .click()
            .await
            .expect("click submit");
    }

    /// Waits until an element matching the CSS `selector` is on the page.
    pub async fn wait_for(&self, selector: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(BROWSER_TIMEOUT)
            .for_element(Locator::Css(selector))
            .await
            .unwrap_or_else(|e| panic!("{selector} appears: {e}"))
    }

    /// Waits until the browser is at a URL that starts with `prefix`; returns that URL.
    pub async fn wait_for_url(&self, prefix: &str) -> url::Url {
        let poll = async {
            loop {
                // Each check is a WebDriver round trip, so this loop does not spin.
                let url = self.client.current_url().await.expect("current URL");
                if url.as_str().starts_with(prefix) {
                    return url;
                }
            }
        };
        tokio::time::timeout(BROWSER_TIMEOUT, poll)
            .await
            .unwrap_or_else(|_| panic!("browser reaches {prefix}"))
    }

    /// Waits until the page's `<title>` contains `text` (after a form post that stays at one URL).
    pub async fn wait_for_title(&self, text: &str) {
        let poll = async {
            // Each check is a WebDriver round trip, so this loop does not spin.
            while !self.title().await.contains(text) {}
        };
        tokio::time::timeout(BROWSER_TIMEOUT, poll)
            .await
            .unwrap_or_else(|_| panic!("a page titled {text:?} appears"));
    }

    /// Saves a PNG of the viewport as `target/screenshots/<name>.png`; returns its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("screenshot");
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write screenshot");
        eprintln!("screenshot: {}", path.display());
        path
    }

    /// Clicks the element matching the CSS `selector`.
    pub async fn click(&self, selector: &str) {
        self.wait_for(selector)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {selector}: {e}"));
    }

    /// Clicks the link whose visible text is exactly `text`, as a person would.
    pub async fn click_link(&self, text: &str) {
        self.client
            .find(Locator::LinkText(text))
            .await
            .unwrap_or_else(|e| panic!("link {text:?} on the page: {e}"))
            .click()
            .await
            .unwrap_or_else(|e| panic!("click link {text:?}: {e}"));
    }

    /// Clicks the `<label>` whose text contains `text` (selecting its radio button or checkbox).
    pub async fn click_label(&self, text: &str) {
        let xpath = format!("//label[contains(normalize-space(.), '{text}')]");
        self.client
            .find(Locator::XPath(&xpath))
            .await
            .unwrap_or_else(|e| panic!("label {text:?} on the page: {e}"))
            .click()
            .await
            .unwrap_or_else(|e| panic!("click label {text:?}: {e}"));
    }

    /// Ends the WebDriver session (Chromium exits), then chromedriver.
    pub async fn close(mut self) {
        self.client.close().await.expect("WebDriver session ends");
        let _ = self.driver.kill().await;
    }
}

/// The issuer the app was configured with (`iss` in authorization responses, RFC 9207).
pub(crate) fn issuer(app: &TestApp) -> String {
    app.env
        .get("LATCHKEY_ISSUER")
        .cloned()
        .unwrap_or_else(|| DEFAULT_ISSUER.to_owned())
}

/// A loopback port nothing listens on, so the browser's redirect to it fails fast (refused).
pub(crate) fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

/// `sqlite` or `postgres`, for screenshot names.
pub(crate) fn backend_name(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    }
}

async fn login_page_signs_in_and_returns_to_the_client(backend: Backend) {
    let Some(browser) = browser().await else {
        return;
    };
    let app = TestApp::spawn(backend).await;
    app.create_user("ada@example.com", "correct horse battery")
        .await;
    let redirect_uri = format!("http://127.0.0.1:{}/callback", closed_port());
    let client = app
        .cli(&[
            "client",
            "create",
            "--name",
            "Browser RP",
            "--redirect-uri",
            &redirect_uri,
            "--first-party",
        ])
        .await
        .json();
    let client_id = client["client_id"].as_str().expect("client_id");
    let mut authorize = url::Url::parse(&app.url("/authorize")).expect("authorize URL");
    authorize
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", &redirect_uri)
        .append_pair("scope", "openid email")
        .append_pair("state", "st-123")
        .append_pair("nonce", "n-1")
        .append_pair(
            "code_challenge",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        )
        .append_pair("code_challenge_method", "S256");
    let name = backend_name(backend);

    // The authorization request sends the browser to the login page.
    browser.goto(authorize.as_str()).await;
    let title = browser.title().await;
    assert!(title.contains("Sign in"), "login page title: {title}");
    assert!(
        browser.text().await.contains("Browser RP"),
        "the page names the client"
    );
    browser.capture(&format!("login-{name}")).await;

    // A wrong password: the same page again, with the one failure message.
    browser.fill("email", "ada@example.com").await;
    browser.fill("password", "wrong horse battery").await;
    browser.submit().await;
    browser.wait_for("[role=alert]").await;
    let text = browser.text().await;
    assert!(
        text.contains("The email or password is not correct."),
        "failure message shown: {text}"
    );
    browser.capture(&format!("login-error-{name}")).await;

    // The right password: back to the client with a code, its state and our issuer.
    browser.fill("email", "ada@example.com").await;
    browser.fill("password", "correct horse battery").await;
    browser.submit().await;
    let landed = browser.wait_for_url(&redirect_uri).await;
    assert_eq!(
        landed.as_str().split('?').next(),
        Some(redirect_uri.as_str()),
        "redirected to the client: {landed}"
    );
    let query: std::collections::HashMap<String, String> =
        landed.query_pairs().into_owned().collect();
    assert!(
        query.get("code").is_some_and(|c| !c.is_empty()),
        "code: {landed}"
    );
    assert_eq!(query.get("state").map(String::as_str), Some("st-123"));
    assert_eq!(query.get("iss"), Some(&issuer(&app)));

    browser.close().await;
}
