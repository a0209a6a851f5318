//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0) at `/logout`: a valid hint signs out
//! at once and returns to a registered post-logout redirect URI with `state`; anything unverified is
//! an error page, never a redirect; without a hint the user confirms on a CSRF-protected page.

use crate::helpers::{Backend, TestApp};
use crate::rp::{
    self, Callback, REDIRECT_URI, RegisteredClient, decode_jwt, hidden_input, location,
};

on_both_databases!(
    valid_hint_signs_out_and_returns_to_the_registered_uri_with_state,
    expired_hint_is_still_accepted,
    unregistered_post_logout_redirect_uri_is_an_error_page,
    without_a_hint_the_user_confirms_with_a_csrf_protected_form,
    foreign_or_garbage_hints_are_never_redirected,
);

const EMAIL: &str = "ada@example.com";
const OTHER_EMAIL: &str = "bob@example.com";
/// The post-logout redirect URI registered for the test client.
const POST_LOGOUT_URI: &str = "https://rp.example.com/signed-out";
/// A state with characters that need encoding, to check the echo is byte-exact.
const STATE: &str = "a b&c=d/é+%20?#";

/// An app with one user and a first-party client with [`POST_LOGOUT_URI`].
async fn setup(backend: Backend) -> (TestApp, RegisteredClient) {
    let app = TestApp::spawn(backend).await;
    app.create_person(EMAIL, "Ada").await;
    let client = app
        .register_client(&[
            "--first-party",
            "--post-logout-redirect-uri",
            POST_LOGOUT_URI,
        ])
        .await;
    (app, client)
}

/// Signs `browser` in as `email` through an authorization of `client`; returns the ID token.
async fn id_token(
    app: &TestApp,
    browser: &reqwest::Client,
    client: &RegisteredClient,
    email: &str,
) -> String {
    let (code, verifier) = rp::code_with_pkce(app, browser, client, email).await;
    let response = app
        .post_token(
            Some((&client.id, client.secret())),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT_URI),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    let body = rp::json_with_status(response, 200).await;
    body["id_token"].as_str().expect("an ID token").to_owned()
}

/// `/logout?params`.
fn logout_url(app: &TestApp, params: &[(&str, &str)]) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    app.url(&format!("/logout?{query}"))
}

/// A `prompt=none` authorization in `browser`: `login_required` once the session is gone, a code
/// while it lives.
async fn prompt_none(
    app: &TestApp,
    browser: &reqwest::Client,
    client: &RegisteredClient,
) -> Callback {
    let url = app.authorize_url(&[
        ("response_type", "code"),
        ("client_id", &client.id),
        ("redirect_uri", REDIRECT_URI),
        ("scope", "openid"),
        ("prompt", "none"),
        ("code_challenge", &rp::pkce().1),
        ("code_challenge_method", "S256"),
    ]);
    let response = browser.get(url).send().await.unwrap();
    assert_eq!(response.status(), 303);
    let callback = Callback {
        url: location(app, &response),
    };
    callback.assert_at(REDIRECT_URI);
    callback
}

#[track_caller]
fn assert_signed_out_callback(callback: &Callback) {
    assert_eq!(callback.error(), "login_required", "{}", callback.url);
}

async fn sessions_of(app: &TestApp, user_id: &str) -> i64 {
    sqlx::query_scalar("select count(*) from sessions where user_id = $1")
        .bind(user_id)
        .fetch_one(&app.db.pool)
        .await
        .unwrap()
}

/// Inserts a refresh-token family of `user_id` and `client_id` born in session `sid`.
async fn insert_family(app: &TestApp, id: &str, client: &str, user: &str, sid: &str, offline: i64) {
    let now = app.clock.now();
    sqlx::query(
        "insert into refresh_families (id, client_id, user_id, scope, session_id, offline, \
         auth_time, created_at, last_used_at, expires_at) \
         values ($1, $2, $3, 'openid', $4, $5, $6, $6, $6, $7)",
    )
    .bind(id)
    .bind(client)
    .bind(user)
    .bind(sid)
    .bind(offline)
    .bind(now)
    .bind(now + 3600)
    .execute(&app.db.pool)
    .await
    .unwrap();
}

/// A 400 error page without a `Location`.
async fn assert_error_page(response: reqwest::Response) -> String {
    let status = response.status();
    assert!(
        response.headers().get("location").is_none(),
        "never a redirect"
    );
    let body = response.text().await.unwrap();
    assert_eq!(status, 400, "{body}");
    body
}

async fn valid_hint_signs_out_and_returns_to_the_registered_uri_with_state(backend: Backend) {
    let (app, client) = setup(backend).await;
    let browser = rp::browser();
    let hint = id_token(&app, &browser, &client, EMAIL).await;
    let (_, claims) = decode_jwt(&hint);
    let user_id = claims["sub"].as_str().unwrap().to_owned();
    let sid = claims["sid"]
        .as_str()
        .expect("sid in the ID token")
        .to_owned();
    insert_family(&app, "f-session", &client.id, &user_id, &sid, 0).await;
    insert_family(&app, "f-offline", &client.id, &user_id, &sid, 1).await;
    insert_family(&app, "f-elsewhere", &client.id, &user_id, "other-sid", 0).await;
    assert_eq!(sessions_of(&app, &user_id).await, 1);

    let response = browser
        .get(logout_url(
            &app,
            &[
                ("id_token_hint", &hint),
                ("post_logout_redirect_uri", POST_LOGOUT_URI),
                ("state", STATE),
            ],
        ))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 303);
    let back = Callback {
        url: location(&app, &response),
    };
    back.assert_at(POST_LOGOUT_URI);
    assert_eq!(
        back.get("state").as_deref(),
        Some(STATE),
        "state byte-exact"
    );
    assert_eq!(
        sessions_of(&app, &user_id).await,
        0,
        "the session row is gone"
    );
    assert_signed_out_callback(&prompt_none(&app, &browser, &client).await);
    // Session-bound refresh tokens end with the session; offline_access ones survive.
    let families: Vec<(String, Option<String>)> = sqlx::query_as(
        "select id, revoked_reason from refresh_families where id like 'f-%' order by id",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(
        families,
        vec![
            ("f-elsewhere".to_owned(), None),
            ("f-offline".to_owned(), None),
            ("f-session".to_owned(), Some("logout".to_owned())),
        ]
    );
}

async fn expired_hint_is_still_accepted(backend: Backend) {
    let (app, client) = setup(backend).await;
    let browser = rp::browser();
    let hint = id_token(&app, &browser, &client, EMAIL).await;
    app.clock.advance(2 * 60 * 60);

    // With client_id as well (it matches the hint's aud) and no redirect URI: the signed-out page.
    let response = browser
        .get(logout_url(
            &app,
            &[("id_token_hint", &hint), ("client_id", &client.id)],
        ))
        .send()
        .await
        .unwrap();

    assert!(response.headers().get("location").is_none());
    assert_eq!(response.status(), 200);
    let html = response.text().await.unwrap();
    assert!(html.contains("You are signed out"), "{html}");
    assert_signed_out_callback(&prompt_none(&app, &browser, &client).await);
}

async fn unregistered_post_logout_redirect_uri_is_an_error_page(backend: Backend) {
    let (app, client) = setup(backend).await;
    let browser = rp::browser();
    let hint = id_token(&app, &browser, &client, EMAIL).await;

    for params in [
        // Not registered (a login redirect URI is not a post-logout one).
        vec![
            ("id_token_hint", hint.as_str()),
            ("post_logout_redirect_uri", REDIRECT_URI),
        ],
        vec![
            ("id_token_hint", hint.as_str()),
            ("post_logout_redirect_uri", "https://evil.example.com/"),
        ],
        // Registered, but no client is named to check it against.
        vec![("post_logout_redirect_uri", POST_LOGOUT_URI)],
        // An unknown client.
        vec![
            ("client_id", "no-such-client"),
            ("post_logout_redirect_uri", POST_LOGOUT_URI),
        ],
        // Repeated parameters.
        vec![("state", "a"), ("state", "b")],
    ] {
        let response = browser.get(logout_url(&app, &params)).send().await.unwrap();
        assert_error_page(response).await;
    }
    // Still signed in.
    assert!(
        prompt_none(&app, &browser, &client)
            .await
            .get("code")
            .is_some()
    );
}

async fn without_a_hint_the_user_confirms_with_a_csrf_protected_form(backend: Backend) {
    let (app, client) = setup(backend).await;
    let browser = rp::browser();
    id_token(&app, &browser, &client, EMAIL).await;

    let response = browser
        .get(logout_url(
            &app,
            &[
                ("client_id", &client.id),
                ("post_logout_redirect_uri", POST_LOGOUT_URI),
                ("state", "st-42"),
                ("ui_locales", "fr"),
            ],
        ))
        .send()
        .await
        .unwrap();

    assert!(response.headers().get("location").is_none());
    assert_eq!(response.status(), 200);
    let html = response.text().await.unwrap();
    assert!(html.contains("Sign out of Latchkey?"), "{html}");
    assert!(html.contains("Test RP"), "{html}");
    let csrf = hidden_input(&html, "csrf");
    let form = |csrf: &str| {
        vec![
            ("csrf", csrf.to_owned()),
            ("confirm", "yes".to_owned()),
            ("client_id", hidden_input(&html, "client_id")),
            (
                "post_logout_redirect_uri",
                hidden_input(&html, "post_logout_redirect_uri"),
            ),
            ("state", hidden_input(&html, "state")),
        ]
    };

    // A forged confirmation (wrong or missing token) changes nothing.
    let forged = browser
        .post(app.url("/logout"))
        .form(&form("not-the-token"))
        .send()
        .await
        .unwrap();
    assert_error_page(forged).await;
    let no_token: Vec<_> = form("").into_iter().filter(|(k, _)| *k != "csrf").collect();
    let forged = browser
        .post(app.url("/logout"))
        .form(&no_token)
        .send()
        .await
        .unwrap();
    assert_error_page(forged).await;
    assert!(
        prompt_none(&app, &browser, &client)
            .await
            .get("code")
            .is_some()
    );

    // A tampered redirect URI is validated again on POST.
    let mut tampered = form(&csrf);
    tampered[3].1 = "https://evil.example.com/".to_owned();
    let refused = browser
        .post(app.url("/logout"))
        .form(&tampered)
        .send()
        .await
        .unwrap();
    assert_error_page(refused).await;

    let confirmed = browser
        .post(app.url("/logout"))
        .form(&form(&csrf))
        .send()
        .await
        .unwrap();
    assert_eq!(confirmed.status(), 303);
    let back = Callback {
        url: location(&app, &confirmed),
    };
    back.assert_at(POST_LOGOUT_URI);
    assert_eq!(back.get("state").as_deref(), Some("st-42"));
    assert_signed_out_callback(&prompt_none(&app, &browser, &client).await);

    // Without any parameter the confirmation ends on the signed-out page.
    rp::sign_in(&app, &browser, EMAIL).await;
    let page = browser.get(app.url("/logout")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    let done = browser
        .post(app.url("/logout"))
        .form(&[
            ("csrf", hidden_input(&html, "csrf").as_str()),
            ("confirm", "yes"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 200);
    assert!(done.text().await.unwrap().contains("You are signed out"));
    assert_signed_out_callback(&prompt_none(&app, &browser, &client).await);
}

async fn foreign_or_garbage_hints_are_never_redirected(backend: Backend) {
    let (app, client) = setup(backend).await;
    let browser = rp::browser();
    let hint = id_token(&app, &browser, &client, EMAIL).await;
    // An ID token of another issuer (another server, other keys) for a client of the same id.
    let other = TestApp::spawn(backend).await;
    other.create_person(EMAIL, "Ada").await;
    let other_client = other
        .register_client(&["--post-logout-redirect-uri", POST_LOGOUT_URI])
        .await;
    let foreign = id_token(&other, &rp::browser(), &other_client, EMAIL).await;
    let another_client = app
        .register_client(&["--post-logout-redirect-uri", POST_LOGOUT_URI])
        .await;

    for params in [
        vec![("id_token_hint", "garbage")],
        vec![
            ("id_token_hint", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."),
            ("post_logout_redirect_uri", POST_LOGOUT_URI),
        ],
        vec![
            ("id_token_hint", foreign.as_str()),
            ("post_logout_redirect_uri", POST_LOGOUT_URI),
            ("state", "s"),
        ],
        // client_id must name the hint's audience.
        vec![
            ("id_token_hint", hint.as_str()),
            ("client_id", another_client.id.as_str()),
            ("post_logout_redirect_uri", POST_LOGOUT_URI),
        ],
    ] {
        let response = browser.get(logout_url(&app, &params)).send().await.unwrap();
        assert_error_page(response).await;
    }
    assert!(
        prompt_none(&app, &browser, &client)
            .await
            .get("code")
            .is_some()
    );

    // A valid hint for another user asks the signed-in one to confirm.
    app.create_person(OTHER_EMAIL, "Bob").await;
    let bobs = id_token(&app, &rp::browser(), &client, OTHER_EMAIL).await;
    let response = browser
        .get(logout_url(
            &app,
            &[
                ("id_token_hint", &bobs),
                ("post_logout_redirect_uri", POST_LOGOUT_URI),
            ],
        ))
        .send()
        .await
        .unwrap();
    assert!(response.headers().get("location").is_none());
    assert_eq!(response.status(), 200);
    let html = response.text().await.unwrap();
    assert!(html.contains("Sign out of Latchkey?"), "{html}");
    assert_eq!(hidden_input(&html, "client_id"), client.id);
    assert!(
        prompt_none(&app, &browser, &client)
            .await
            .get("code")
            .is_some()
    );
}
