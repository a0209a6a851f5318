//! Your account over HTTP: the sessions, connected-apps, sign-in-history and organizations pages
//! (reqwest browsers with cookie stores) and their `/api/v1/me/…` routes (Bearer tokens), each
//! positive and negative.

use reqwest::Method;
use serde_json::{Value, json};
use url::Url;

use crate::helpers::{Backend, TestApp};
use crate::mgmt_helpers::{self as mgmt, call, cli_member, cli_org, client_token};
use crate::rp::{self, Consent, PASSWORD, REDIRECT_URI, RegisteredClient, hidden_input, location};

on_both_databases!(
    sessions_page_marks_this_browser_and_signs_out_the_others,
    sessions_page_ends_one_session_or_this_browser,
    sessions_api_lists_ends_one_and_the_others,
    sessions_api_refuses_wrong_callers,
    apps_list_and_remove_access_by_api_and_page,
    login_history_shows_the_newest_attempts,
    leaving_organizations_keeps_an_owner,
    pages_need_a_signed_in_browser_and_a_csrf_token,
);

const ADA: &str = "ada@example.com";
const BOB: &str = "bob@example.com";
const CHROME_LINUX: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like \
                            Gecko) Chrome/120.0.0.0 Safari/537.36";
const FIREFOX_WINDOWS: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0";
/// Scopes of the account API tokens.
const ACCOUNT_SCOPES: &str = "openid account:read account:write";

/// A browser with its own cookies that sends `user_agent`.
fn browser_as(user_agent: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(user_agent)
        .build()
        .expect("browser")
}

/// A first-party client that may ask for the account scopes (and refresh tokens).
async fn account_client(app: &TestApp) -> RegisteredClient {
    let mut args = vec!["--first-party"];
    for scope in [
        "openid",
        "email",
        "offline_access",
        "account:read",
        "account:write",
    ] {
        args.extend_from_slice(&["--scope", scope]);
    }
    app.register_client(&args).await
}

/// The token response of an authorization (code with PKCE) in `browser` (signing in as `email` when
/// needed) for `client` with `scope`.
async fn tokens_in(
    app: &TestApp,
    browser: &reqwest::Client,
    client: &RegisteredClient,
    email: &str,
    scope: &str,
) -> Value {
    let (verifier, challenge) = rp::pkce();
    let url = app.authorize_url(&[
        ("response_type", "code"),
        ("client_id", &client.id),
        ("redirect_uri", REDIRECT_URI),
        ("scope", scope),
        ("state", "st"),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ]);
    let code = rp::authorize(app, browser, &url, email, Consent::Allow)
        .await
        .callback
        .code();
    let response = app
        .post_token(
            Some((&client.id, client.secret())),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("code_verifier", &verifier),
                ("redirect_uri", REDIRECT_URI),
            ],
        )
        .await;
    rp::json_with_status(response, 200).await
}

/// The access token of [`tokens_in`].
async fn token_in(
    app: &TestApp,
    browser: &reqwest::Client,
    client: &RegisteredClient,
    email: &str,
    scope: &str,
) -> String {
    tokens_in(app, browser, client, email, scope).await["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned()
}

/// Status and (for 303) the path and query of `GET path` in `browser`.
async fn visit(app: &TestApp, browser: &reqwest::Client, path: &str) -> (u16, String) {
    let response = browser.get(app.url(path)).send().await.expect("GET");
    let status = response.status().as_u16();
    if status == 303 {
        let to = location(app, &response);
        let query = to.query().map(|q| format!("?{q}")).unwrap_or_default();
        return (status, format!("{}{query}", to.path()));
    }
    (status, String::new())
}

/// The HTML of `GET path` (asserting 200).
async fn page(app: &TestApp, browser: &reqwest::Client, path: &str) -> String {
    let response = browser.get(app.url(path)).send().await.expect("GET page");
    assert_eq!(response.status(), 200, "GET {path}");
    response.text().await.expect("page body")
}

/// Posts `form` to `path` in `browser`; returns the status and the `Location` (path and query).
async fn post_form(
    app: &TestApp,
    browser: &reqwest::Client,
    path: &str,
    form: &[(&str, &str)],
) -> (u16, String, String) {
    let response = browser
        .post(app.url(path))
        .form(form)
        .send()
        .await
        .expect("POST");
    let status = response.status().as_u16();
    let to = if status == 303 {
        let to = location(app, &response);
        let query = to.query().map(|q| format!("?{q}")).unwrap_or_default();
        format!("{}{query}", to.path())
    } else {
        String::new()
    };
    (status, to, response.text().await.unwrap_or_default())
}

/// The table rows (`<tr …>…</tr>`) of a page's body.
fn rows(html: &str) -> Vec<&str> {
    html.split("<tr")
        .skip(1)
        .filter(|r| r.contains("<td"))
        .collect()
}

/// The sids of the sessions page: this browser's and the others'.
fn sids(html: &str) -> (String, Vec<String>) {
    let mut current = None;
    let mut others = Vec::new();
    for row in rows(html) {
        let sid = hidden_input(row, "sid");
        if row.contains("This browser") {
            assert!(current.is_none(), "one row is this browser:\n{html}");
            current = Some(sid);
        } else {
            others.push(sid);
        }
    }
    (current.expect("this browser is marked"), others)
}

/// How many audit events `action` the person `user_id` recorded.
async fn audited(app: &TestApp, action: &str, user_id: &str) -> i64 {
    sqlx::query_scalar("select count(*) from audit_events where action = $1 and actor_user_id = $2")
        .bind(action)
        .bind(user_id)
        .fetch_one(&app.db.pool)
        .await
        .expect("audit count")
}

async fn sessions_page_marks_this_browser_and_signs_out_the_others(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.create_person(ADA, "Ada").await;
    let chrome = browser_as(CHROME_LINUX);
    let firefox = browser_as(FIREFOX_WINDOWS);
    rp::sign_in(&app, &firefox, ADA).await;
    rp::sign_in(&app, &chrome, ADA).await;

    let html = page(&app, &chrome, "/account/sessions").await;
    assert_eq!(rows(&html).len(), 2, "{html}");
    let this = rows(&html)
        .into_iter()
        .find(|r| r.contains("This browser"))
        .expect("this browser is marked");
    assert!(this.contains("Chrome on Linux"), "{this}");
    assert!(html.contains("Firefox on Windows"), "{html}");
    assert!(html.contains("127.0.0.1"), "{html}");
    assert!(html.contains(" UTC"), "{html}");
    assert_eq!(html.matches("This browser").count(), 1, "{html}");
    // From the other browser, the other row is marked.
    let other = page(&app, &firefox, "/account/sessions").await;
    let this = rows(&other)
        .into_iter()
        .find(|r| r.contains("This browser"))
        .expect("marked");
    assert!(this.contains("Firefox on Windows"), "{this}");

    // "Sign out everywhere else": Firefox is signed out, Chrome stays.
    let csrf = hidden_input(&html, "csrf");
    let (status, to, _) = post_form(
        &app,
        &chrome,
        "/account/sessions/end-others",
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!((status, to.as_str()), (303, "/account/sessions"));
    assert_eq!(
        visit(&app, &firefox, "/account").await,
        (303, "/login?next=%2Faccount".to_owned())
    );
    let html = page(&app, &chrome, "/account/sessions").await;
    assert!(
        html.contains("Every other session was signed out."),
        "{html}"
    );
    assert_eq!(rows(&html).len(), 1, "{html}");
    assert_eq!(audited(&app, "sessions.ended_others", &ada).await, 1);
}

async fn sessions_page_ends_one_session_or_this_browser(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.create_person(ADA, "Ada").await;
    app.create_person(BOB, "Bob").await;
    let chrome = browser_as(CHROME_LINUX);
    let firefox = browser_as(FIREFOX_WINDOWS);
    let bob = rp::browser();
    rp::sign_in(&app, &firefox, ADA).await;
    rp::sign_in(&app, &chrome, ADA).await;
    rp::sign_in(&app, &bob, BOB).await;
    let html = page(&app, &chrome, "/account/sessions").await;
    let csrf = hidden_input(&html, "csrf");
    let (mine, others) = sids(&html);
    assert_eq!(others.len(), 1);
    let bob_sid = sids(&page(&app, &bob, "/account/sessions").await).0;

    // Someone else's session is not ours to end: nothing happens.
    let (status, to, _) = post_form(
        &app,
        &chrome,
        "/account/sessions/end",
        &[("csrf", &csrf), ("sid", &bob_sid)],
    )
    .await;
    assert_eq!((status, to.as_str()), (303, "/account/sessions"));
    assert_eq!(visit(&app, &bob, "/account").await.0, 200);
    let html = page(&app, &chrome, "/account/sessions").await;
    assert!(html.contains("That session had already ended."), "{html}");

    // The other browser's session ends.
    let (status, to, _) = post_form(
        &app,
        &chrome,
        "/account/sessions/end",
        &[("csrf", &csrf), ("sid", &others[0])],
    )
    .await;
    assert_eq!((status, to.as_str()), (303, "/account/sessions"));
    assert_eq!(visit(&app, &firefox, "/account").await.0, 303);
    assert_eq!(visit(&app, &chrome, "/account").await.0, 200);

    // Ending this browser's own session is a logout.
    let (status, to, _) = post_form(
        &app,
        &chrome,
        "/account/sessions/end",
        &[("csrf", &csrf), ("sid", &mine)],
    )
    .await;
    assert_eq!((status, to.as_str()), (303, "/login"));
    assert_eq!(
        visit(&app, &chrome, "/account/sessions").await,
        (303, "/login?next=%2Faccount%2Fsessions".to_owned())
    );
    assert_eq!(audited(&app, "session.ended", &ada).await, 2);
}

async fn sessions_api_lists_ends_one_and_the_others(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.create_person(ADA, "Ada").await;
    let client = account_client(&app).await;
    let chrome = browser_as(CHROME_LINUX);
    let firefox = browser_as(FIREFOX_WINDOWS);
    let safari = browser_as(
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
    );
    rp::sign_in(&app, &firefox, ADA).await;
    rp::sign_in(&app, &safari, ADA).await;
    rp::sign_in(&app, &chrome, ADA).await;
    // The token is issued in Chrome's session: that one is `current`.
    let token = token_in(&app, &chrome, &client, ADA, ACCOUNT_SCOPES).await;
    let (claims_header, claims) = rp::decode_jwt(&token);
    assert_eq!(claims_header["typ"], "at+jwt");
    let chrome_sid = claims["sid"]
        .as_str()
        .expect("the access token carries sid");

    let list = mgmt::get(&app, "/api/v1/me/sessions", &token).await;
    let sessions = list.ok(200)["sessions"]
        .as_array()
        .expect("sessions")
        .clone();
    assert_eq!(sessions.len(), 3, "{}", list.body);
    let current: Vec<&Value> = sessions.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1, "{}", list.body);
    assert_eq!(current[0]["sid"], chrome_sid);
    assert_eq!(current[0]["browser"], "Chrome on Linux");
    assert_eq!(current[0]["user_agent"], CHROME_LINUX);
    assert_eq!(current[0]["ip"], "127.0.0.1");
    assert!(current[0]["signed_in_at"].is_i64() && current[0]["last_seen_at"].is_i64());
    let safari_sid = sessions
        .iter()
        .find(|s| s["browser"] == "Safari on iPhone")
        .expect("Safari's session")["sid"]
        .as_str()
        .expect("sid")
        .to_owned();

    // One session ends; then it is unknown.
    let path = format!("/api/v1/me/sessions/{safari_sid}");
    let ended = mgmt::delete(&app, &path, &token).await;
    assert_eq!(ended.status, 204, "{}", ended.body);
    assert_eq!(visit(&app, &safari, "/account").await.0, 303);
    mgmt::delete(&app, &path, &token)
        .await
        .problem(404, "session-not-found");
    assert_eq!(audited(&app, "session.ended", &ada).await, 1);

    // The others end; the token's own session stays.
    let ended = mgmt::post(&app, "/api/v1/me/sessions/end-others", &token, json!({})).await;
    assert_eq!(
        ended.ok(200)["ended"],
        json!({"sessions": 1, "refresh_families": 0})
    );
    assert_eq!(visit(&app, &firefox, "/account").await.0, 303);
    assert_eq!(visit(&app, &chrome, "/account").await.0, 200);
    let list = mgmt::get(&app, "/api/v1/me/sessions", &token).await;
    assert_eq!(list.ok(200)["sessions"].as_array().map(Vec::len), Some(1));
    assert_eq!(audited(&app, "sessions.ended_others", &ada).await, 1);

    // A refreshed access token still names the session.
    let tokens = tokens_in(
        &app,
        &chrome,
        &client,
        ADA,
        "openid offline_access account:read",
    )
    .await;
    let refreshed = app
        .post_token(
            Some((&client.id, client.secret())),
            &[
                ("grant_type", "refresh_token"),
                (
                    "refresh_token",
                    tokens["refresh_token"].as_str().expect("rt"),
                ),
            ],
        )
        .await;
    let refreshed = rp::json_with_status(refreshed, 200).await;
    let claims = rp::decode_jwt(refreshed["access_token"].as_str().expect("at")).1;
    assert_eq!(claims["sid"], chrome_sid);
}

async fn sessions_api_refuses_wrong_callers(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_person(ADA, "Ada").await;
    let bob_id = app.create_person(BOB, "Bob").await;
    let client = account_client(&app).await;
    let chrome = browser_as(CHROME_LINUX);
    let token = token_in(&app, &chrome, &client, ADA, ACCOUNT_SCOPES).await;
    let read_only = token_in(&app, &chrome, &client, ADA, "openid account:read").await;
    let no_scope = token_in(&app, &chrome, &client, ADA, "openid email").await;
    let machine = client_token(&app, &["account:read", "account:write"]).await;
    let bob_browser = rp::browser();
    rp::sign_in(&app, &bob_browser, BOB).await;
    let bob_sid = sids(&page(&app, &bob_browser, "/account/sessions").await).0;

    // Missing scope, a client's own token, no token at all.
    for path in [
        "/api/v1/me/sessions",
        "/api/v1/me/apps",
        "/api/v1/me/login-history",
    ] {
        mgmt::get(&app, path, &no_scope)
            .await
            .problem(403, "insufficient-scope");
        mgmt::get(&app, path, &machine)
            .await
            .problem(403, "user-token-required");
        call(&app, Method::GET, path, None, None)
            .await
            .problem(401, "invalid-token");
        assert_eq!(mgmt::get(&app, path, &read_only).await.status, 200);
    }
    // Who is signed in: `account:read` is enough (as `org:read` is), and none of them is not.
    let me = mgmt::get(&app, "/api/v1/me", &read_only).await;
    assert_eq!(me.ok(200)["email"], ADA);
    mgmt::get(&app, "/api/v1/me", &no_scope)
        .await
        .problem(403, "insufficient-scope");
    for (method, path) in [
        (Method::DELETE, "/api/v1/me/sessions/x"),
        (Method::POST, "/api/v1/me/sessions/end-others"),
        (Method::DELETE, "/api/v1/me/apps/x"),
        (Method::DELETE, "/api/v1/me/organizations/x"),
    ] {
        call(&app, method.clone(), path, Some(&read_only), None)
            .await
            .problem(403, "insufficient-scope");
        call(&app, method.clone(), path, Some(&machine), None)
            .await
            .problem(403, "user-token-required");
        call(&app, method, path, None, None)
            .await
            .problem(401, "invalid-token");
    }
    // Another person's session is unknown, and stays.
    mgmt::delete(&app, &format!("/api/v1/me/sessions/{bob_sid}"), &token)
        .await
        .problem(404, "session-not-found");
    assert_eq!(visit(&app, &bob_browser, "/account").await.0, 200);
    assert!(!bob_id.is_empty());
    // Wrong methods are 405 problems.
    for (method, path) in [
        (Method::PUT, "/api/v1/me/sessions"),
        (Method::GET, "/api/v1/me/sessions/end-others"),
        (Method::POST, "/api/v1/me/apps"),
        (Method::DELETE, "/api/v1/me/login-history"),
        (Method::GET, "/api/v1/me/organizations/acme"),
    ] {
        call(&app, method, path, Some(&token), None)
            .await
            .problem(405, "method-not-allowed");
    }
}

async fn apps_list_and_remove_access_by_api_and_page(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.create_person(ADA, "Ada").await;
    let first_party = account_client(&app).await;
    // A third-party client: consent is asked (and remembered).
    let photos = app
        .cli(&[
            "client",
            "create",
            "--name",
            "Photo Album",
            "--redirect-uri",
            REDIRECT_URI,
        ])
        .await
        .json();
    let photos = RegisteredClient {
        id: photos["client_id"].as_str().expect("client_id").to_owned(),
        secret: photos["client_secret"].as_str().map(str::to_owned),
    };
    let browser = browser_as(CHROME_LINUX);
    rp::sign_in(&app, &browser, ADA).await;
    let photo_tokens = tokens_in(&app, &browser, &photos, ADA, "openid offline_access").await;
    let photo_refresh = photo_tokens["refresh_token"]
        .as_str()
        .expect("a refresh token")
        .to_owned();
    let account_tokens = tokens_in(
        &app,
        &browser,
        &first_party,
        ADA,
        "openid offline_access account:read account:write",
    )
    .await;
    let token = account_tokens["access_token"]
        .as_str()
        .expect("at")
        .to_owned();

    let list = mgmt::get(&app, "/api/v1/me/apps", &token).await;
    let apps = list.ok(200)["apps"].as_array().expect("apps").clone();
    assert_eq!(apps.len(), 2, "{}", list.body);
    let photo = apps
        .iter()
        .find(|a| a["client_id"] == photos.id.as_str())
        .expect("the consented app");
    assert_eq!(photo["client_name"], "Photo Album");
    assert_eq!(photo["scopes"], json!(["offline_access", "openid"]));
    assert_eq!(photo["organizations"], json!([]));
    assert!(photo["granted_at"].is_i64() && photo["last_used_at"].is_i64());
    // The first-party client skipped consent; its refresh token makes it appear.
    let own = apps
        .iter()
        .find(|a| a["client_id"] == first_party.id.as_str())
        .expect("the first-party app with a refresh token");
    assert!(own["last_used_at"].is_i64(), "{own}");
    let html = page(&app, &browser, "/account/apps").await;
    assert!(
        html.contains("Photo Album") && html.contains("Test RP"),
        "{html}"
    );
    assert!(html.contains(" UTC"), "{html}");

    // Removing access: the refresh token is refused, the consent is asked for again.
    let path = format!("/api/v1/me/apps/{}", photos.id);
    let removed = mgmt::delete(&app, &path, &token).await;
    assert_eq!(removed.status, 204, "{}", removed.body);
    let refresh = app
        .post_token(
            Some((&photos.id, photos.secret())),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &photo_refresh),
            ],
        )
        .await;
    assert_eq!(
        rp::json_with_status(refresh, 400).await["error"],
        "invalid_grant"
    );
    mgmt::delete(&app, &path, &token)
        .await
        .problem(404, "app-not-found");
    mgmt::delete(&app, "/api/v1/me/apps/no-such-client", &token)
        .await
        .problem(404, "app-not-found");
    assert_eq!(audited(&app, "app.access_removed", &ada).await, 1);
    let (verifier, challenge) = rp::pkce();
    let url = app.authorize_url(&[
        ("response_type", "code"),
        ("client_id", &photos.id),
        ("redirect_uri", REDIRECT_URI),
        ("scope", "openid"),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ]);
    let journey = rp::authorize(&app, &browser, &url, ADA, Consent::Allow).await;
    assert!(journey.saw_consent, "consent is asked again");
    assert!(!verifier.is_empty());

    // The page's button removes the first-party client's refresh token.
    let html = page(&app, &browser, "/account/apps").await;
    let csrf = hidden_input(&html, "csrf");
    let (status, to, _) = post_form(
        &app,
        &browser,
        "/account/apps/remove",
        &[("csrf", &csrf), ("client_id", &first_party.id)],
    )
    .await;
    assert_eq!((status, to.as_str()), (303, "/account/apps"));
    let refresh = app
        .post_token(
            Some((&first_party.id, first_party.secret())),
            &[
                ("grant_type", "refresh_token"),
                (
                    "refresh_token",
                    account_tokens["refresh_token"].as_str().expect("rt"),
                ),
            ],
        )
        .await;
    assert_eq!(
        rp::json_with_status(refresh, 400).await["error"],
        "invalid_grant"
    );
    let html = page(&app, &browser, "/account/apps").await;
    assert!(html.contains("access was removed"), "{html}");
    assert!(!html.contains("Test RP"), "{html}");
    let revoked: i64 = sqlx::query_scalar(
        "select count(*) from refresh_families where user_id = $1 and revoked_reason = 'access_removed'",
    )
    .bind(&ada)
    .fetch_one(&app.db.pool)
    .await
    .expect("count");
    assert_eq!(revoked, 2);
}

async fn login_history_shows_the_newest_attempts(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.create_person(ADA, "Ada").await;
    let client = account_client(&app).await;
    // Older rows, written before outcome and method existed (null): 40 of them, an hour ago.
    let now = app.clock.now();
    for i in 0..40_i64 {
        sqlx::query(
            "insert into login_events (id, user_id, email, success, ip, user_agent, created_at) \
             values ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(format!("old-{i:03}"))
        .bind(&ada)
        .bind(ADA)
        .bind(i % 2)
        .bind("192.0.2.7")
        .bind(FIREFOX_WINDOWS)
        .bind(now - 3600 + i)
        .execute(&app.db.pool)
        .await
        .expect("old row");
    }
    let browser = browser_as(CHROME_LINUX);
    let login = Url::parse(&app.url("/login")).expect("login URL");
    let failed = rp::submit_login(&app, &browser, &login, ADA, "wrong password").await;
    assert_eq!(
        failed.status(),
        401,
        "a wrong password shows the form again"
    );
    let ok = rp::submit_login(&app, &browser, &login, ADA, PASSWORD).await;
    assert_eq!(ok.status(), 303);
    let token = token_in(&app, &browser, &client, ADA, "openid account:read").await;

    let history = mgmt::get(&app, "/api/v1/me/login-history", &token).await;
    let events = history.ok(200)["events"]
        .as_array()
        .expect("events")
        .clone();
    assert_eq!(events.len(), 30, "{}", history.body);
    assert_eq!(events[0]["outcome"], "succeeded");
    assert_eq!(events[0]["method"], "pwd");
    assert_eq!(events[0]["browser"], "Chrome on Linux");
    assert_eq!(events[0]["ip"], "127.0.0.1");
    assert_eq!(events[1]["outcome"], "failed");
    assert_eq!(events[1]["user_agent"], CHROME_LINUX);
    // Old rows: outcome from the success flag, no method.
    assert_eq!(events[2]["method"], Value::Null);
    assert_eq!(events[2]["outcome"], "succeeded"); // i = 39: success = 1
    assert_eq!(events[3]["outcome"], "failed"); // i = 38: success = 0
    assert!(events.iter().all(|e| e["at"].is_i64()));

    let html = page(&app, &browser, "/account/history").await;
    assert_eq!(rows(&html).len(), 30, "{html}");
    let newest = rows(&html)[0];
    assert!(
        newest.contains("Succeeded") && newest.contains("Password"),
        "{newest}"
    );
    assert!(rows(&html)[1].contains("Failed"), "{html}");
    assert!(html.contains("Firefox on Windows") && html.contains("192.0.2.7"));
}

async fn leaving_organizations_keeps_an_owner(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.create_person(ADA, "Ada").await;
    let bob = app.create_person(BOB, "Bob").await;
    let client = account_client(&app).await;
    let acme = cli_org(&app, "Acme Corp", "acme", ADA).await;
    let globex = cli_org(&app, "Globex", "globex", ADA).await;
    cli_member(&app, "acme", BOB, "member").await;
    cli_member(&app, "globex", BOB, "owner").await;
    let ada_browser = browser_as(CHROME_LINUX);
    let bob_browser = browser_as(FIREFOX_WINDOWS);
    rp::sign_in(&app, &ada_browser, ADA).await;
    rp::sign_in(&app, &bob_browser, BOB).await;
    let ada_token = token_in(&app, &ada_browser, &client, ADA, ACCOUNT_SCOPES).await;
    let bob_token = token_in(&app, &bob_browser, &client, BOB, ACCOUNT_SCOPES).await;

    // Bob leaves Acme by slug; then he is not a member.
    let left = mgmt::delete(&app, "/api/v1/me/organizations/acme", &bob_token).await;
    assert_eq!(left.status, 204, "{}", left.body);
    mgmt::delete(&app, "/api/v1/me/organizations/acme", &bob_token)
        .await
        .problem(404, "organization-not-found");
    mgmt::delete(&app, "/api/v1/me/organizations/no-such-org", &bob_token)
        .await
        .problem(404, "organization-not-found");
    // Ada is Acme's only owner: 409 naming it, by id or slug.
    for reference in ["acme", acme.as_str()] {
        let refused = mgmt::delete(
            &app,
            &format!("/api/v1/me/organizations/{reference}"),
            &ada_token,
        )
        .await;
        refused.problem(409, "last-owner");
        let detail = refused.body["detail"].as_str().expect("detail");
        assert!(detail.contains("Acme Corp (acme)"), "{detail}");
    }

    // The page: Ada is refused for Acme (the page says why), and may leave Globex (Bob owns it too).
    let html = page(&app, &ada_browser, "/account/organizations").await;
    assert!(
        html.contains("Acme Corp") && html.contains("Globex"),
        "{html}"
    );
    assert!(html.contains("owner"), "{html}");
    let csrf = hidden_input(&html, "csrf");
    let (status, _, body) = post_form(
        &app,
        &ada_browser,
        "/account/organizations/leave",
        &[("csrf", &csrf), ("org", &acme)],
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body.contains("You are the only owner of Acme Corp (acme)"),
        "{body}"
    );
    let (status, to, _) = post_form(
        &app,
        &ada_browser,
        "/account/organizations/leave",
        &[("csrf", &csrf), ("org", &globex)],
    )
    .await;
    assert_eq!((status, to.as_str()), (303, "/account/organizations"));
    let html = page(&app, &ada_browser, "/account/organizations").await;
    assert!(html.contains("You left the organization."), "{html}");
    assert!(!html.contains("Globex"), "{html}");
    // Leaving again: nothing to leave.
    let (status, to, _) = post_form(
        &app,
        &ada_browser,
        "/account/organizations/leave",
        &[("csrf", &csrf), ("org", &globex)],
    )
    .await;
    assert_eq!((status, to.as_str()), (303, "/account/organizations"));

    // Audited as the member removal, with the person as actor.
    let left: Vec<(String, String, String)> = sqlx::query_as(
        "select actor_user_id, target_id, details from audit_events \
         where action = 'member.removed' order by created_at, id",
    )
    .fetch_all(&app.db.pool)
    .await
    .expect("audit rows");
    assert_eq!(left.len(), 2, "{left:?}");
    assert_eq!(
        (left[0].0.as_str(), left[0].1.as_str()),
        (bob.as_str(), bob.as_str())
    );
    assert_eq!(
        (left[1].0.as_str(), left[1].1.as_str()),
        (ada.as_str(), ada.as_str())
    );
    for (_, _, details) in &left {
        let details: Value = serde_json::from_str(details).expect("details");
        assert_eq!(details["left"], true);
    }
}

async fn pages_need_a_signed_in_browser_and_a_csrf_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_person(ADA, "Ada").await;
    let anonymous = rp::browser();
    for path in [
        "/account/sessions",
        "/account/apps",
        "/account/history",
        "/account/organizations",
    ] {
        let next = url::form_urlencoded::byte_serialize(path.as_bytes()).collect::<String>();
        assert_eq!(
            visit(&app, &anonymous, path).await,
            (303, format!("/login?next={next}"))
        );
    }
    // Signed out, a form post goes to the login page too.
    let (status, to, _) = post_form(
        &app,
        &anonymous,
        "/account/sessions/end-others",
        &[("csrf", "x")],
    )
    .await;
    assert_eq!(
        (status, to.as_str()),
        (303, "/login?next=%2Faccount%2Fsessions")
    );

    // Signed in, every form without (or with a wrong) CSRF token is refused with a 400 page.
    let browser = rp::browser();
    rp::sign_in(&app, &browser, ADA).await;
    let html = page(&app, &browser, "/account/sessions").await;
    let (mine, _) = sids(&html);
    for (path, form) in [
        ("/account/sessions/end", vec![("sid", mine.as_str())]),
        ("/account/sessions/end-others", vec![]),
        ("/account/apps/remove", vec![("client_id", "x")]),
        ("/account/organizations/leave", vec![("org", "x")]),
    ] {
        let (status, _, body) = post_form(&app, &browser, path, &form).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert!(body.contains("This form has expired"), "{path}: {body}");
        let mut wrong = form.clone();
        wrong.push(("csrf", "forged"));
        assert_eq!(
            post_form(&app, &browser, path, &wrong).await.0,
            400,
            "{path}"
        );
    }
    // Nothing was ended.
    assert_eq!(visit(&app, &browser, "/account").await.0, 200);
}
