//! Protocol hardening, part one: PKCE for every client unless registered with `--allow-no-pkce`,
//! `http` redirect URIs only on loopback IP literals (any port at the authorization endpoint), access
//! tokens told apart from ID tokens by `typ`, and consent remembered per organization.

use serde_json::Value;

use crate::helpers::{Backend, TestApp, fresh_database_url};
use crate::org_login::{add_member, create_org};
use crate::rp::{self, Consent, REDIRECT_URI, RegisteredClient};

on_both_databases!(
    pkce_is_required_unless_the_client_was_allowed_to_omit_it,
    http_redirect_uris_only_on_loopback_literals_with_any_port,
    id_tokens_are_not_access_tokens_and_access_tokens_are_not_id_token_hints,
    consent_is_remembered_per_organization,
    migration_0006_keeps_existing_clients_and_consents_working,
);

const EMAIL: &str = "ada@example.com";
const STATE: &str = "st-1";

/// An app with the user [`EMAIL`].
async fn app_with_user(backend: Backend) -> TestApp {
    let app = TestApp::spawn(backend).await;
    app.create_person(EMAIL, "Ada").await;
    app
}

/// Where a browser GET of `url` is sent (a 303 expected).
async fn redirected_to(app: &TestApp, url: &str) -> rp::Callback {
    let response = rp::browser().get(url).send().await.expect("request sent");
    assert_eq!(response.status(), 303, "{url}");
    rp::Callback {
        url: rp::location(app, &response),
    }
}

async fn pkce_is_required_unless_the_client_was_allowed_to_omit_it(backend: Backend) {
    let app = app_with_user(backend).await;
    let strict = app.register_client(&[]).await;
    let lenient = app.register_client(&["--allow-no-pkce"]).await;
    let no_pkce = |client: &RegisteredClient| {
        app.authorize_url(&[
            ("response_type", "code"),
            ("client_id", &client.id),
            ("redirect_uri", REDIRECT_URI),
            ("scope", "openid"),
            ("state", STATE),
        ])
    };

    // A confidential client created without the flag: an error redirect with state and iss.
    let refused = redirected_to(&app, &no_pkce(&strict)).await;
    refused.assert_at(REDIRECT_URI);
    assert_eq!(refused.error(), "invalid_request");
    assert_eq!(refused.get("state").as_deref(), Some(STATE));
    assert_eq!(refused.get("iss"), Some(app.issuer()));
    // With PKCE it signs in as before.
    let (code, _) = rp::code_with_pkce(&app, &rp::browser(), &strict, EMAIL).await;
    assert!(!code.is_empty());
    // The flag lets a confidential client omit PKCE.
    let code = rp::code_without_pkce(&app, &rp::browser(), &lenient, EMAIL).await;
    assert!(!code.is_empty());
    // ... but a public client cannot have it.
    let line = app
        .cli(&[
            "client",
            "create",
            "--name",
            "SPA",
            "--redirect-uri",
            REDIRECT_URI,
            "--public",
            "--allow-no-pkce",
        ])
        .await
        .refused();
    assert!(line.contains("--allow-no-pkce"), "{line}");
    // Discovery is unchanged: S256 only.
    let discovery: Value = app
        .get("/.well-known/openid-configuration")
        .await
        .json()
        .await
        .expect("discovery JSON");
    assert_eq!(
        discovery["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
}

async fn http_redirect_uris_only_on_loopback_literals_with_any_port(backend: Backend) {
    let app = app_with_user(backend).await;
    for (flag, uri) in [
        ("--redirect-uri", "http://localhost:3000/cb"),
        ("--redirect-uri", "http://rp.example.com/cb"),
        ("--redirect-uri", "http://10.1.2.3/cb"),
        ("--post-logout-redirect-uri", "http://rp.example.com/bye"),
    ] {
        let line = app
            .cli(&["client", "create", "--name", "Native", flag, uri])
            .await
            .refused();
        assert!(line.contains("loopback"), "{uri}: {line}");
    }
    let registered = "http://127.0.0.1:3000/cb";
    let out = app
        .cli(&[
            "client",
            "create",
            "--name",
            "Native",
            "--public",
            "--redirect-uri",
            registered,
            "--redirect-uri",
            "http://[::1]/cb",
            "--post-logout-redirect-uri",
            "http://127.0.0.1/bye",
        ])
        .await
        .json();
    let client_id = out["client_id"].as_str().expect("client_id");
    let (verifier, challenge) = rp::pkce();
    let url_for = |redirect_uri: &str| {
        app.authorize_url(&[
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", redirect_uri),
            ("scope", "openid"),
            ("state", STATE),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ])
    };

    // RFC 8252 §7.3: the port the app listens on now is accepted; the code goes to that port.
    let ephemeral = "http://127.0.0.1:54321/cb";
    let journey = rp::authorize(
        &app,
        &rp::browser(),
        &url_for(ephemeral),
        EMAIL,
        Consent::Allow,
    )
    .await;
    journey.callback.assert_at(ephemeral);
    let code = journey.callback.code();
    let response = app
        .post_token(
            None,
            &[
                ("grant_type", "authorization_code"),
                ("client_id", client_id),
                ("code", &code),
                ("redirect_uri", ephemeral),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    rp::json_with_status(response, 200).await;

    // Anything but the port must match exactly; never redirected to.
    for other in [
        "http://127.0.0.1:54321/other",
        "http://127.0.0.1:54321/cb?x=1",
        "http://localhost:54321/cb",
        "http://127.0.0.2:3000/cb",
        "https://127.0.0.1:3000/cb",
    ] {
        let response = rp::browser()
            .get(url_for(other))
            .send()
            .await
            .expect("request sent");
        assert_eq!(response.status(), 400, "{other}");
        assert!(response.headers().get("location").is_none(), "{other}");
    }
}

/// Tokens of `EMAIL` for a fresh client: `(access_token, id_token, browser)`, the browser signed in.
async fn tokens(app: &TestApp) -> (String, String, reqwest::Client) {
    let client = app
        .register_client(&["--first-party", "--scope", "openid", "--scope", "org:read"])
        .await;
    let browser = rp::browser();
    let (verifier, challenge) = rp::pkce();
    let url = app.authorize_url(&[
        ("response_type", "code"),
        ("client_id", &client.id),
        ("redirect_uri", REDIRECT_URI),
        ("scope", "openid org:read"),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ]);
    let journey = rp::authorize(app, &browser, &url, EMAIL, Consent::Allow).await;
    let code = journey.callback.code();
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
    let text = |name: &str| body[name].as_str().expect("a token").to_owned();
    (text("access_token"), text("id_token"), browser)
}

async fn id_tokens_are_not_access_tokens_and_access_tokens_are_not_id_token_hints(
    backend: Backend,
) {
    let app = app_with_user(backend).await;
    let (access, id, browser) = tokens(&app).await;
    let bearer =
        |path: &str, token: &str| rp::rp_http().get(app.url(path)).bearer_auth(token).send();

    for path in ["/userinfo", "/api/v1/me"] {
        let ok = bearer(path, &access).await.expect("request sent");
        assert_eq!(ok.status(), 200, "{path} with the access token");
        // RFC 9068 §4: the same signature and claims, but `typ` is `JWT`, not `at+jwt`.
        let refused = bearer(path, &id).await.expect("request sent");
        assert_eq!(refused.status(), 401, "{path} with the ID token");
        let challenge = rp::header(&refused, "www-authenticate");
        assert!(challenge.contains("invalid_token"), "{path}: {challenge}");
    }

    // RP-Initiated Logout §2: the hint must be one of our ID tokens; an access token is refused.
    let logout = |hint: &str| {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("id_token_hint", hint)
            .finish();
        browser.get(app.url(&format!("/logout?{query}"))).send()
    };
    let refused = logout(&access).await.expect("logout sent");
    assert_eq!(refused.status(), 400);
    let home = browser.get(app.url("/")).send().await.expect("home");
    assert!(home.text().await.expect("home page").contains(EMAIL));
    let accepted = logout(&id).await.expect("logout sent");
    assert_eq!(accepted.status(), 200, "the signed-out page");
    let home = browser.get(app.url("/")).send().await.expect("home");
    assert!(!home.text().await.expect("home page").contains(EMAIL));
}

async fn consent_is_remembered_per_organization(backend: Backend) {
    let app = app_with_user(backend).await;
    app.create_person("owner@example.com", "Owner").await;
    let acme = create_org(&app, "Acme", "acme", EMAIL).await;
    let globex = create_org(&app, "Globex", "globex", "owner@example.com").await;
    add_member(&app, &globex, EMAIL, "member").await;
    let client = app
        .register_client(&["--scope", "openid", "--scope", "org:read"])
        .await;
    let browser = rp::browser();
    let (_, challenge) = rp::pkce();
    let url_for = |org: &str| {
        app.authorize_url(&[
            ("response_type", "code"),
            ("client_id", &client.id),
            ("redirect_uri", REDIRECT_URI),
            ("scope", "openid org:read"),
            ("organization", org),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ])
    };
    let consented = |org: String| {
        let url = url_for(&org);
        let browser = &browser;
        let app = &app;
        async move {
            let journey = rp::authorize(app, browser, &url, EMAIL, Consent::Allow).await;
            journey.callback.code();
            journey.saw_consent
        }
    };

    assert!(consented(acme.clone()).await, "first time for Acme");
    assert!(!consented(acme).await, "Acme remembered");
    assert!(consented(globex.clone()).await, "Globex is asked for");
    assert!(!consented(globex).await, "Globex remembered");
}

/// The first migration of this hardening; every earlier one is applied before the old rows go in.
const HARDENING_MIGRATION: &str = "0006";

async fn migration_0006_keeps_existing_clients_and_consents_working(backend: Backend) {
    let (url, _guard) = fresh_database_url(backend).await;
    let config = latchkey::config::Config::from_lookup(|k| {
        (k == "LATCHKEY_DATABASE_URL").then(|| url.clone())
    })
    .expect("configuration");
    // The schema as it was before: every migration older than this one.
    let folder = match backend {
        Backend::Sqlite => "migrations/sqlite",
        Backend::Postgres => "migrations/postgres",
    };
    let older = tempfile::tempdir().expect("temp dir");
    for entry in std::fs::read_dir(folder).expect("migrations folder") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name < HARDENING_MIGRATION {
            std::fs::copy(&path, older.path().join(name)).expect("copy migration");
        }
    }
    let db = latchkey::db::connect(&config.database_url)
        .await
        .expect("database connects");
    sqlx::migrate::Migrator::new(older.path())
        .await
        .expect("older migrations")
        .run(&db.pool)
        .await
        .expect("older schema");
    let exec = |sql: &'static str| {
        let pool = db.pool.clone();
        async move { sqlx::query(sql).execute(&pool).await.expect(sql) }
    };
    exec(
        "insert into users (id, email, email_lower, created_at, updated_at) \
         values ('u1', 'a@example.com', 'a@example.com', 1, 1)",
    )
    .await;
    exec(
        "insert into clients (id, secret_hash, name, public, created_at, updated_at) \
         values ('conf', 'aa', 'Old confidential', 0, 1, 1), ('pub', null, 'Old public', 1, 1, 1)",
    )
    .await;
    exec(
        "insert into consents (user_id, client_id, scopes, granted_at) \
         values ('u1', 'conf', 'openid', 1)",
    )
    .await;

    latchkey::db::Database::open(&config.database_url)
        .await
        .expect("the new migration applies");

    // Existing confidential clients keep working without PKCE; public ones never could.
    let flags: Vec<(String, i64, i64)> =
        sqlx::query_as("select id, allow_no_pkce, introspect from clients order by id")
            .fetch_all(&db.pool)
            .await
            .expect("clients");
    assert_eq!(
        flags,
        vec![("conf".to_owned(), 1, 0), ("pub".to_owned(), 0, 0)]
    );
    // The old consent stays valid for "no organization".
    let consents: Vec<(String, String)> =
        sqlx::query_as("select org_id, scopes from consents where user_id = 'u1'")
            .fetch_all(&db.pool)
            .await
            .expect("consents");
    assert_eq!(consents, vec![(String::new(), "openid".to_owned())]);
}
