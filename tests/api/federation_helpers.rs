//! Shared helpers of the enterprise-SSO tests (`federation_*`): a second Latchkey acting as the
//! upstream provider, with a client registered for this server's `/federation/callback`.

// Not every test module uses every helper.
#![allow(dead_code)]

use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp};

/// Latchkey (`app`, on the test's database, upstreams on loopback allowed) and a second Latchkey
/// acting as its upstream provider (`upstream`, on SQLite). `app`'s issuer is `http://127.0.0.1:PORT`
/// and the upstream's `http://localhost:PORT` ([`Pair::upstream_issuer`]): two host names, because
/// cookies are scoped by host and not by port, so one browser keeps both servers' sessions apart.
pub struct Pair {
    /// The server under test.
    pub app: TestApp,
    /// The upstream provider.
    pub upstream: TestApp,
    /// `app`'s client at `upstream`, whose redirect URI is `app`'s `/federation/callback`.
    pub client_id: String,
    /// Its secret.
    pub client_secret: String,
}

/// Starts the pair; `extra` configures `app`.
pub async fn spawn_pair(backend: Backend, extra: &[(&str, &str)]) -> Pair {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let bind = format!("127.0.0.1:{port}");
    let issuer = format!("http://localhost:{port}");
    let upstream = TestApp::spawn_with(
        Backend::Sqlite,
        &[
            ("LATCHKEY_BIND", bind.as_str()),
            ("LATCHKEY_ISSUER", issuer.as_str()),
        ],
    )
    .await;
    let mut all = vec![("LATCHKEY_ALLOW_INSECURE_UPSTREAMS", "true")];
    all.extend_from_slice(extra);
    let app = TestApp::spawn_with_own_issuer(backend, &all).await;
    let callback = app.url("/federation/callback");
    let client = upstream
        .cli(&[
            "client",
            "create",
            "--name",
            "Downstream Latchkey",
            "--redirect-uri",
            &callback,
            "--first-party",
        ])
        .await
        .json();
    Pair {
        client_id: client["client_id"].as_str().expect("client_id").to_owned(),
        client_secret: client["client_secret"]
            .as_str()
            .expect("client_secret")
            .to_owned(),
        app,
        upstream,
    }
}

impl Pair {
    /// The upstream's issuer, `http://localhost:PORT` (what a connection names).
    pub fn upstream_issuer(&self) -> String {
        self.upstream.env["LATCHKEY_ISSUER"].clone()
    }

    /// The body of `POST …/connections` for the upstream, named `name`.
    pub fn connection_body(&self, name: &str) -> Value {
        json!({
            "name": name,
            "issuer": self.upstream_issuer(),
            "client_id": self.client_id,
            "client_secret": self.client_secret,
        })
    }
}

/// What a browser following redirects across both servers ended on.
#[derive(Debug)]
pub enum Landing {
    /// It was sent away from both servers (to a relying party's redirect URI).
    Left(url::Url),
    /// A page that is not a redirect: its URL, status and body.
    Page {
        /// Where.
        url: url::Url,
        /// Its status.
        status: u16,
        /// Its body.
        body: String,
    },
}

impl Landing {
    /// The URL it was sent to (panics on a page).
    #[track_caller]
    pub fn left(self) -> url::Url {
        match self {
            Landing::Left(url) => url,
            Landing::Page { url, status, body } => {
                panic!("expected to leave, stopped at {url} ({status}):\n{body}")
            }
        }
    }

    /// The page it stopped on: `(url, status, body)` (panics when it left).
    #[track_caller]
    pub fn page(self) -> (url::Url, u16, String) {
        match self {
            Landing::Page { url, status, body } => (url, status, body),
            Landing::Left(url) => panic!("expected a page, left to {url}"),
        }
    }
}

/// `scheme://host:port` of a URL.
fn origin(url: &url::Url) -> String {
    url.origin().ascii_serialization()
}

impl Pair {
    /// Follows redirects from `start` in `browser` across both servers, signing in at the
    /// upstream's login page as `upstream_email` (password [`crate::rp::PASSWORD`]), and at
    /// `app`'s login page as `local_email` when given (else it stops there).
    pub async fn follow(
        &self,
        browser: &reqwest::Client,
        start: &str,
        upstream_email: &str,
        local_email: Option<&str>,
    ) -> Landing {
        let mut to = url::Url::parse(start).expect("start URL");
        for _ in 0..20 {
            if !self.serves(&to) {
                return Landing::Left(to);
            }
            match self.step(browser, &to, upstream_email, local_email).await {
                Ok(next) => to = next,
                Err((status, body)) => {
                    return Landing::Page {
                        url: to,
                        status,
                        body,
                    };
                }
            }
        }
        panic!("too many redirects from {start}");
    }

    /// Whether `url` is on `app` or on the upstream.
    pub fn serves(&self, url: &url::Url) -> bool {
        let here = origin(url);
        here == origin(&url::Url::parse(&self.app.address).expect("app address"))
            || here == origin(&url::Url::parse(&self.upstream_issuer()).expect("issuer"))
    }

    /// One step of [`Pair::follow`]: where the redirect at `to` leads (panics on a page).
    pub async fn follow_one(
        &self,
        browser: &reqwest::Client,
        to: &url::Url,
        upstream_email: &str,
        local_email: Option<&str>,
    ) -> url::Url {
        match self.step(browser, to, upstream_email, local_email).await {
            Ok(next) => next,
            Err((status, body)) => panic!("{to}: {status}\n{body}"),
        }
    }

    /// GETs `to` (or signs in there when it is a login page, see [`Pair::follow`]): the redirect's
    /// target, or the status and body of a page.
    async fn step(
        &self,
        browser: &reqwest::Client,
        to: &url::Url,
        upstream_email: &str,
        local_email: Option<&str>,
    ) -> Result<url::Url, (u16, String)> {
        let upstream =
            origin(to) == origin(&url::Url::parse(&self.upstream_issuer()).expect("issuer"));
        let login_as = match (upstream, to.path()) {
            (true, "/login") => Some(upstream_email),
            (false, "/login") => local_email,
            _ => None,
        };
        let response = if let Some(email) = login_as {
            let page = browser.get(to.clone()).send().await.expect("login page");
            assert_eq!(page.status(), 200, "login page {to}");
            let html = page.text().await.expect("login body");
            let form = [
                ("csrf", crate::rp::hidden_input(&html, "csrf")),
                ("authz", crate::rp::hidden_input(&html, "authz")),
                ("email", email.to_owned()),
                ("password", crate::rp::PASSWORD.to_owned()),
            ];
            let post = to.join("/login").expect("login URL");
            browser.post(post).form(&form).send().await.expect("login")
        } else {
            browser.get(to.clone()).send().await.expect("request sent")
        };
        let status = response.status().as_u16();
        if status != 303 && status != 302 {
            return Err((status, response.text().await.unwrap_or_default()));
        }
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .expect("Location")
            .to_str()
            .expect("ASCII Location")
            .to_owned();
        Ok(to.join(&location).expect("valid Location"))
    }
}
