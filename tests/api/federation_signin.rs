//! Sign-in through a connection (enterprise SSO): a second Latchkey as the upstream provider, the
//! authorization request of a relying party here answered after the upstream sign-in, just-in-time
//! provisioning, the role mapping at every sign-in, linking an existing account only after its
//! owner signs in here, and the refusals of a rogue upstream's ID tokens.

use serde_json::{Value, json};

use crate::federation_helpers::{Landing, Pair, spawn_pair};
use crate::helpers::{Backend, TestApp};
use crate::mgmt_helpers::{cli_member, cli_org};
use crate::rp::{self, REDIRECT_URI, RegisteredClient};

on_both_databases!(
    signin_provisions_member_with_mapped_role,
    upstream_role_change_applies_at_next_signin,
    existing_account_is_linked_only_after_local_signin,
    unknown_or_replayed_state_is_refused,
    cancelled_upstream_signin_shows_a_way_back,
    rogue_upstream_tokens_are_refused,
    unknown_connection_is_refused,
    instance_connection_follows_the_signup_policy,
    disabled_account_is_refused,
    verified_domains_decide_who_signs_in_where,
    sso_required_member_links_then_signs_in_through_the_provider,
);

/// The role mapping of the tests: upstream admins are admins here, everyone else a member.
pub fn admin_mapping() -> Value {
    json!({"claim": "roles", "map": {"admin": "admin"}, "default_role": "member"})
}

/// Creates an instance-wide connection with `latchkey connection create`; returns its id.
pub async fn instance_connection(
    app: &TestApp,
    name: &str,
    issuer: &str,
    client_id: &str,
    client_secret: &str,
) -> String {
    app.cli(&[
        "connection",
        "create",
        "--name",
        name,
        "--issuer",
        issuer,
        "--client-id",
        client_id,
        "--client-secret",
        client_secret,
    ])
    .await
    .json()["id"]
        .as_str()
        .expect("connection id")
        .to_owned()
}

/// An org:write token of owner@local.example here.
pub async fn owner_token(app: &TestApp) -> String {
    let client = crate::mgmt_helpers::org_client(app).await;
    crate::mgmt_helpers::user_token(
        app,
        &client,
        "owner@local.example",
        crate::mgmt_helpers::ORG_SCOPES,
    )
    .await
}

/// An upstream organization "Acme IdP" (owned by boss@acme.example) with `email` as `role`.
pub async fn upstream_member(pair: &Pair, email: &str, role: &str) -> String {
    if pair
        .upstream
        .count("users where email = 'boss@acme.example'")
        .await
        == 0
    {
        pair.upstream
            .create_person("boss@acme.example", "Boss")
            .await;
        cli_org(&pair.upstream, "Acme IdP", "acme-idp", "boss@acme.example").await;
    }
    pair.upstream.create_person(email, "Ann Example").await;
    let org: String = sqlx::query_scalar("select id from organizations where slug = 'acme-idp'")
        .fetch_one(&pair.upstream.db.pool)
        .await
        .expect("upstream org");
    cli_member(&pair.upstream, &org, email, role).await;
    org
}

/// Organization "Acme" here (owned by owner@local.example) and its connection to the upstream,
/// named "Acme SSO", with `mapping`; returns `(org id, connection id)`.
pub async fn acme_with_connection(pair: &Pair, mapping: Option<Value>) -> (String, String) {
    pair.app.create_person("owner@local.example", "Owner").await;
    let org = cli_org(&pair.app, "Acme", "acme", "owner@local.example").await;
    let token = owner_token(&pair.app).await;
    let mut body = pair.connection_body("Acme SSO");
    if let Some(mapping) = mapping {
        body["role_mapping"] = mapping;
    }
    let created = crate::mgmt_helpers::post(
        &pair.app,
        &format!("/api/v1/orgs/{org}/connections"),
        &token,
        body,
    )
    .await;
    let conn = created.ok(201)["id"]
        .as_str()
        .expect("connection id")
        .to_owned();
    (org, conn)
}

/// A relying party's authorization request in `browser`, answered by signing in through
/// connection `conn` as `upstream_email`: `(where it ended, PKCE verifier)`.
pub async fn rp_signin(
    pair: &Pair,
    browser: &reqwest::Client,
    client: &RegisteredClient,
    conn: &str,
    upstream_email: &str,
    local_email: Option<&str>,
) -> (Landing, String) {
    let (verifier, challenge) = rp::pkce();
    let url = pair.app.authorize_url(&[
        ("response_type", "code"),
        ("client_id", &client.id),
        ("redirect_uri", REDIRECT_URI),
        ("scope", "openid email profile"),
        ("state", "rp-state"),
        ("nonce", "rp-nonce"),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ]);
    let response = browser.get(url).send().await.expect("authorize");
    assert_eq!(response.status(), 303);
    let login = rp::location(&pair.app, &response);
    assert_eq!(login.path(), "/login");
    let authz = login
        .query_pairs()
        .find(|(k, _)| k == "authz")
        .map(|(_, v)| v.into_owned())
        .expect("authz");
    let start = pair.app.url(&format!(
        "/federation/start?connection={conn}&authz={authz}"
    ));
    let landing = pair
        .follow(browser, &start, upstream_email, local_email)
        .await;
    (landing, verifier)
}

/// The ID token's and the access token's claims for the code at `callback`.
pub async fn tokens(
    app: &TestApp,
    client: &RegisteredClient,
    callback: &url::Url,
    verifier: &str,
) -> (Value, Value) {
    let code = callback
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no code at {callback}"));
    let response = app
        .post_token(
            Some((&client.id, client.secret())),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("code_verifier", verifier),
                ("redirect_uri", REDIRECT_URI),
            ],
        )
        .await;
    let body = rp::json_with_status(response, 200).await;
    let (_, id) = rp::decode_jwt(body["id_token"].as_str().expect("id_token"));
    let (_, at) = rp::decode_jwt(body["access_token"].as_str().expect("access_token"));
    (id, at)
}

/// How many audit events of `action` the app recorded.
pub async fn audited(app: &TestApp, action: &str) -> i64 {
    app.count(&format!("audit_events where action = '{action}'"))
        .await
}

async fn signin_provisions_member_with_mapped_role(backend: Backend) {
    let pair = spawn_pair(backend, &[]).await;
    upstream_member(&pair, "ann@acme.example", "admin").await;
    let (org, conn) = acme_with_connection(&pair, Some(admin_mapping())).await;
    let client = pair.app.register_client(&["--first-party"]).await;

    let browser = rp::browser();
    let (landing, verifier) =
        rp_signin(&pair, &browser, &client, &conn, "ann@acme.example", None).await;
    let callback = landing.left();
    assert!(callback.as_str().starts_with(REDIRECT_URI), "{callback}");
    let (id, at) = tokens(&pair.app, &client, &callback, &verifier).await;
    for claims in [&id, &at] {
        assert_eq!(claims["org_id"], org.as_str(), "{claims}");
        assert_eq!(claims["org_slug"], "acme", "{claims}");
        assert_eq!(claims["roles"], json!(["admin"]), "{claims}");
    }
    assert!(
        id["amr"].as_array().expect("amr").contains(&json!("fed")),
        "{id}"
    );
    assert_eq!(id["email"], "ann@acme.example");
    assert_eq!(id["nonce"], "rp-nonce");

    // Provisioned: an account without a password, its address not verified here (the domain is
    // not verified by the organization), linked, a member.
    let user_id = id["sub"].as_str().expect("sub");
    assert_eq!(
        pair.app
            .count(&format!(
                "users where id = '{user_id}' and password_hash is null and email_verified = 0"
            ))
            .await,
        1
    );
    assert_eq!(pair.app.count("federated_identities").await, 1);
    assert_eq!(audited(&pair.app, "federation.user_provisioned").await, 1);
    assert_eq!(audited(&pair.app, "federation.identity_linked").await, 1);
    assert_eq!(audited(&pair.app, "federation.role_mapped").await, 1);
    assert_eq!(audited(&pair.app, "federation.failed").await, 0);

    // The browser is signed in here now: the account page answers.
    let account = browser
        .get(pair.app.url("/account/identities"))
        .send()
        .await
        .expect("identities page");
    assert_eq!(account.status(), 200);
    let html = account.text().await.expect("body");
    assert!(html.contains("Acme SSO"), "{html}");
    assert!(html.contains(&pair.upstream_issuer()), "{html}");

    // A second sign-in (another browser) goes through the link: no new account, no new audit of
    // a role that did not change.
    let (landing, verifier) = rp_signin(
        &pair,
        &rp::browser(),
        &client,
        &conn,
        "ann@acme.example",
        None,
    )
    .await;
    let (id2, _) = tokens(&pair.app, &client, &landing.left(), &verifier).await;
    assert_eq!(id2["sub"], id["sub"]);
    assert_eq!(pair.app.count("users").await, 2);
    assert_eq!(audited(&pair.app, "federation.role_mapped").await, 1);
    assert_eq!(audited(&pair.app, "federation.user_provisioned").await, 1);
}

async fn upstream_role_change_applies_at_next_signin(backend: Backend) {
    let pair = spawn_pair(backend, &[]).await;
    let up_org = upstream_member(&pair, "ann@acme.example", "admin").await;
    let (org, conn) = acme_with_connection(&pair, Some(admin_mapping())).await;
    let client = pair.app.register_client(&["--first-party"]).await;
    let (landing, verifier) = rp_signin(
        &pair,
        &rp::browser(),
        &client,
        &conn,
        "ann@acme.example",
        None,
    )
    .await;
    let (id, _) = tokens(&pair.app, &client, &landing.left(), &verifier).await;
    assert_eq!(id["roles"], json!(["admin"]));

    // Upstream, its owner makes Ann a viewer (its management API): not mapped, so the default role.
    let owner_client = crate::mgmt_helpers::org_client(&pair.upstream).await;
    let token = crate::mgmt_helpers::user_token(
        &pair.upstream,
        &owner_client,
        "boss@acme.example",
        crate::mgmt_helpers::ORG_SCOPES,
    )
    .await;
    let ann: String = sqlx::query_scalar("select id from users where email = 'ann@acme.example'")
        .fetch_one(&pair.upstream.db.pool)
        .await
        .expect("ann upstream");
    crate::mgmt_helpers::patch(
        &pair.upstream,
        &format!("/api/v1/orgs/{up_org}/members/{ann}"),
        &token,
        json!({"role": "viewer"}),
    )
    .await
    .ok(200);
    let (landing, verifier) = rp_signin(
        &pair,
        &rp::browser(),
        &client,
        &conn,
        "ann@acme.example",
        None,
    )
    .await;
    let (id, _) = tokens(&pair.app, &client, &landing.left(), &verifier).await;
    assert_eq!(id["roles"], json!(["member"]));
    assert_eq!(audited(&pair.app, "federation.role_mapped").await, 2);

    // Here, the mapping changes (its default is now viewer): Ann's value maps to nothing.
    let token = owner_token(&pair.app).await;
    crate::mgmt_helpers::patch(
        &pair.app,
        &format!("/api/v1/orgs/{org}/connections/{conn}"),
        &token,
        json!({"role_mapping": {"claim": "roles", "map": {"admin": "admin"}, "default_role": "viewer"}}),
    )
    .await
    .ok(200);
    let (landing, verifier) = rp_signin(
        &pair,
        &rp::browser(),
        &client,
        &conn,
        "ann@acme.example",
        None,
    )
    .await;
    let (id, _) = tokens(&pair.app, &client, &landing.left(), &verifier).await;
    assert_eq!(id["roles"], json!(["viewer"]));
    assert_eq!(audited(&pair.app, "federation.role_mapped").await, 3);

    // The owner's role is never changed by a mapping.
    crate::mgmt_helpers::patch(
        &pair.app,
        &format!("/api/v1/orgs/{org}/connections/{conn}"),
        &token,
        json!({"role_mapping": null}),
    )
    .await
    .ok(200);
    let (landing, verifier) = rp_signin(
        &pair,
        &rp::browser(),
        &client,
        &conn,
        "ann@acme.example",
        None,
    )
    .await;
    let (id, _) = tokens(&pair.app, &client, &landing.left(), &verifier).await;
    assert_eq!(id["roles"], json!(["viewer"]), "no mapping: the role stays");
    assert_eq!(audited(&pair.app, "federation.role_mapped").await, 3);
}

async fn existing_account_is_linked_only_after_local_signin(backend: Backend) {
    let pair = spawn_pair(backend, &[]).await;
    upstream_member(&pair, "ann@acme.example", "member").await;
    let (org, conn) = acme_with_connection(&pair, None).await;
    let local_id = pair.app.create_person("Ann@Acme.example", "Ann Here").await;
    let client = pair.app.register_client(&["--first-party"]).await;

    // The upstream sign-in stops at the login page here, with the notice; nothing is linked.
    let browser = rp::browser();
    let (landing, _) = rp_signin(&pair, &browser, &client, &conn, "ann@acme.example", None).await;
    let (url, status, html) = landing.page();
    assert_eq!((url.path(), status), ("/login", 200));
    assert!(url.query().unwrap_or_default().contains("authz="), "{url}");
    assert!(
        html.contains("An account with Ann@Acme.example already exists. Sign in to link it to"),
        "{html}"
    );
    assert!(
        html.contains("name=\"password\""),
        "the password step: {html}"
    );
    assert!(
        html.contains("value=\"Ann@Acme.example\""),
        "the address filled in: {html}"
    );
    assert_eq!(pair.app.count("federated_identities").await, 0);
    assert_eq!(pair.app.count("users").await, 2);

    // Signing in with the password here makes the link and the membership, and answers the request.
    let landing = pair
        .follow(
            &browser,
            url.as_str(),
            "ann@acme.example",
            Some("Ann@Acme.example"),
        )
        .await;
    let callback = landing.left();
    assert!(callback.as_str().starts_with(REDIRECT_URI), "{callback}");
    assert_eq!(
        pair.app
            .count(&format!(
                "federated_identities where user_id = '{local_id}'"
            ))
            .await,
        1
    );
    assert_eq!(audited(&pair.app, "federation.identity_linked").await, 1);
    assert_eq!(
        pair.app
            .count(&format!(
                "memberships where org_id = '{org}' and user_id = '{local_id}' and role = 'member'"
            ))
            .await,
        1
    );

    // The next upstream sign-in goes straight through, to the same account, with `fed`.
    let (landing, verifier) = rp_signin(
        &pair,
        &rp::browser(),
        &client,
        &conn,
        "ann@acme.example",
        None,
    )
    .await;
    let (id, _) = tokens(&pair.app, &client, &landing.left(), &verifier).await;
    assert_eq!(id["sub"], local_id.as_str());
    assert_eq!(id["amr"], json!(["fed"]));
    assert_eq!(id["org_id"], org.as_str());
}

async fn unknown_or_replayed_state_is_refused(backend: Backend) {
    let pair = spawn_pair(backend, &[]).await;
    upstream_member(&pair, "ann@acme.example", "member").await;
    let (_, conn) = acme_with_connection(&pair, None).await;

    // A callback with a state this browser never started.
    let browser = rp::browser();
    let response = browser
        .get(
            pair.app
                .url("/federation/callback?state=forged&code=whatever"),
        )
        .send()
        .await
        .expect("callback");
    assert_eq!(response.status(), 400);
    let html = response.text().await.expect("body");
    assert!(html.contains("no longer valid"), "{html}");

    // A real callback, then the same one again: the state is single use.
    let start = pair.app.url(&format!(
        "/federation/start?connection={conn}&next=/account"
    ));
    let mut to = url::Url::parse(&start).expect("url");
    let callback = loop {
        if to.path() == "/federation/callback" {
            break to;
        }
        to = pair
            .follow_one(&browser, &to, "ann@acme.example", None)
            .await;
    };
    let first = browser
        .get(callback.clone())
        .send()
        .await
        .expect("callback");
    assert_eq!(first.status(), 303);
    assert_eq!(rp::location(&pair.app, &first).path(), "/account");
    let again = browser.get(callback.clone()).send().await.expect("replay");
    assert_eq!(again.status(), 400);
    // In another browser, the same callback finds nothing either.
    let other = rp::browser()
        .get(callback)
        .send()
        .await
        .expect("other browser");
    assert_eq!(other.status(), 400);
    assert!(audited(&pair.app, "federation.failed").await >= 3);
}

async fn cancelled_upstream_signin_shows_a_way_back(backend: Backend) {
    let pair = spawn_pair(backend, &[]).await;
    let (_, conn) = acme_with_connection(&pair, None).await;
    let browser = rp::browser();
    let start = pair
        .app
        .url(&format!("/federation/start?connection={conn}&authz=abc"));
    let response = browser.get(start).send().await.expect("start");
    assert_eq!(response.status(), 303);
    let upstream = rp::location(&pair.app, &response);
    assert!(
        upstream.as_str().starts_with(&pair.upstream_issuer()),
        "{upstream}"
    );
    let pairs: Vec<(String, String)> = upstream.query_pairs().into_owned().collect();
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    assert_eq!(get("code_challenge_method"), "S256");
    assert!(!get("nonce").is_empty());
    assert!(get("scope").contains("openid") && get("scope").contains("email"));
    assert_eq!(get("client_id"), pair.client_id);
    let state = get("state");
    let response = browser
        .get(pair.app.url(&format!(
            "/federation/callback?state={state}&error=access_denied"
        )))
        .send()
        .await
        .expect("callback");
    assert_eq!(response.status(), 400);
    let html = response.text().await.expect("body");
    assert!(
        html.contains("The sign-in at Acme SSO was cancelled"),
        "{html}"
    );
    assert!(html.contains("/login?authz=abc"), "{html}");
    assert_eq!(audited(&pair.app, "federation.failed").await, 1);
    // Nobody is signed in.
    let account = browser
        .get(pair.app.url("/account"))
        .send()
        .await
        .expect("account");
    assert_eq!(account.status(), 303);
}

async fn unknown_connection_is_refused(backend: Backend) {
    let pair = spawn_pair(backend, &[]).await;
    for path in [
        "/federation/start",
        "/federation/start?connection=nope",
        "/federation/start?authz=unknown",
    ] {
        let response = rp::browser()
            .get(pair.app.url(path))
            .send()
            .await
            .expect("start");
        assert_eq!(response.status(), 400, "{path}");
    }
    // An upstream that is gone since: a clear page, audited.
    let rogue =
        crate::federation_signin_rogue::Rogue::start(crate::federation_signin_rogue::Flaw::None)
            .await;
    let conn = instance_connection(&pair.app, "Gone IdP", &rogue.issuer, "x", "y").await;
    rogue.stop().await;
    let response = rp::browser()
        .get(
            pair.app
                .url(&format!("/federation/start?connection={conn}")),
        )
        .send()
        .await
        .expect("start");
    assert_eq!(response.status(), 503);
    let html = response.text().await.expect("body");
    assert!(html.contains("Gone IdP cannot be reached"), "{html}");
    assert_eq!(audited(&pair.app, "federation.failed").await, 1);
}

async fn rogue_upstream_tokens_are_refused(backend: Backend) {
    let pair = spawn_pair(backend, &[]).await;
    for flaw in crate::federation_signin_rogue::Flaw::ALL {
        let rogue = crate::federation_signin_rogue::Rogue::start(flaw).await;
        let conn = instance_connection(
            &pair.app,
            "Rogue",
            &rogue.issuer,
            crate::federation_signin_rogue::CLIENT_ID,
            crate::federation_signin_rogue::CLIENT_SECRET,
        )
        .await;
        let browser = rp::browser();
        let failed_before = audited(&pair.app, "federation.failed").await;
        let start = browser
            .get(
                pair.app
                    .url(&format!("/federation/start?connection={conn}")),
            )
            .send()
            .await
            .expect("start");
        assert_eq!(start.status(), 303, "{flaw:?}");
        let authorize = rp::location(&pair.app, &start);
        let state = authorize
            .query_pairs()
            .find(|(k, _)| k == "state")
            .map(|(_, v)| v.into_owned())
            .expect("state");
        let nonce = authorize
            .query_pairs()
            .find(|(k, _)| k == "nonce")
            .map(|(_, v)| v.into_owned())
            .expect("nonce");
        rogue.expect_nonce(&nonce);
        let response = browser
            .get(pair.app.url(&format!(
                "/federation/callback?state={state}&code=rogue-code"
            )))
            .send()
            .await
            .expect("callback");
        let status = response.status().as_u16();
        let html = response.text().await.unwrap_or_default();
        assert_eq!(status, 400, "{flaw:?}: {html}");
        assert!(html.contains("could not be verified"), "{flaw:?}: {html}");
        assert_eq!(
            audited(&pair.app, "federation.failed").await,
            failed_before + 1,
            "{flaw:?}"
        );
        let account = browser
            .get(pair.app.url("/account"))
            .send()
            .await
            .expect("account");
        assert_eq!(account.status(), 303, "{flaw:?}: not signed in");
    }
    // The control: the same rogue with no flaw signs in (so the refusals above are the flaws').
    let rogue =
        crate::federation_signin_rogue::Rogue::start(crate::federation_signin_rogue::Flaw::None)
            .await;
    let conn = instance_connection(
        &pair.app,
        "Rogue",
        &rogue.issuer,
        crate::federation_signin_rogue::CLIENT_ID,
        crate::federation_signin_rogue::CLIENT_SECRET,
    )
    .await;
    let browser = rp::browser();
    let start = browser
        .get(
            pair.app
                .url(&format!("/federation/start?connection={conn}")),
        )
        .send()
        .await
        .expect("start");
    let authorize = rp::location(&pair.app, &start);
    let find = |k: &str| {
        authorize
            .query_pairs()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.into_owned())
            .expect("param")
    };
    rogue.expect_nonce(&find("nonce"));
    let response = browser
        .get(pair.app.url(&format!(
            "/federation/callback?state={}&code=rogue-code",
            find("state")
        )))
        .send()
        .await
        .expect("callback");
    assert_eq!(response.status(), 303);
    assert_eq!(
        pair.app
            .count("users where email = 'eve@rogue.example'")
            .await,
        1
    );
}

/// Starts a sign-in through `conn` (the rogue) and answers its callback with a valid token.
pub async fn rogue_callback(
    pair: &Pair,
    browser: &reqwest::Client,
    rogue: &crate::federation_signin_rogue::Rogue,
    conn: &str,
) -> reqwest::Response {
    let start = browser
        .get(
            pair.app
                .url(&format!("/federation/start?connection={conn}")),
        )
        .send()
        .await
        .expect("start");
    assert_eq!(start.status(), 303);
    let authorize = rp::location(&pair.app, &start);
    let find = |k: &str| {
        authorize
            .query_pairs()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.into_owned())
            .expect("param")
    };
    rogue.expect_nonce(&find("nonce"));
    browser
        .get(pair.app.url(&format!(
            "/federation/callback?state={}&code=rogue-code",
            find("state")
        )))
        .send()
        .await
        .expect("callback")
}

async fn instance_connection_follows_the_signup_policy(backend: Backend) {
    let pair = spawn_pair(backend, &[("LATCHKEY_SIGNUP", "invite-only")]).await;
    let rogue =
        crate::federation_signin_rogue::Rogue::start(crate::federation_signin_rogue::Flaw::None)
            .await;
    let conn = instance_connection(
        &pair.app,
        "Social",
        &rogue.issuer,
        crate::federation_signin_rogue::CLIENT_ID,
        crate::federation_signin_rogue::CLIENT_SECRET,
    )
    .await;
    let response = rogue_callback(&pair, &rp::browser(), &rogue, &conn).await;
    assert_eq!(response.status(), 403);
    let html = response.text().await.expect("body");
    assert!(html.contains("invitation only"), "{html}");
    assert_eq!(
        pair.app
            .count("users where email = 'eve@rogue.example'")
            .await,
        0
    );
    assert_eq!(audited(&pair.app, "federation.failed").await, 1);
}

async fn disabled_account_is_refused(backend: Backend) {
    let pair = spawn_pair(backend, &[]).await;
    let rogue =
        crate::federation_signin_rogue::Rogue::start(crate::federation_signin_rogue::Flaw::None)
            .await;
    let conn = instance_connection(
        &pair.app,
        "Social",
        &rogue.issuer,
        crate::federation_signin_rogue::CLIENT_ID,
        crate::federation_signin_rogue::CLIENT_SECRET,
    )
    .await;
    let response = rogue_callback(&pair, &rp::browser(), &rogue, &conn).await;
    assert_eq!(response.status(), 303);
    pair.app
        .cli(&["user", "disable", "--email", "eve@rogue.example"])
        .await
        .json();
    let browser = rp::browser();
    let response = rogue_callback(&pair, &browser, &rogue, &conn).await;
    assert_eq!(response.status(), 403);
    let account = browser
        .get(pair.app.url("/account"))
        .send()
        .await
        .expect("account");
    assert_eq!(account.status(), 303, "not signed in");
    assert_eq!(audited(&pair.app, "federation.failed").await, 1);
}

/// A rogue upstream (valid tokens) for `email`, connected to org `org` (slug) or the instance.
async fn rogue_for(
    pair: &Pair,
    email: &str,
    org: Option<&str>,
) -> (crate::federation_signin_rogue::Rogue, String) {
    let rogue = crate::federation_signin_rogue::Rogue::start_as(
        crate::federation_signin_rogue::Flaw::None,
        email,
    )
    .await;
    let mut args = vec![
        "connection",
        "create",
        "--name",
        "Rogue",
        "--issuer",
        &rogue.issuer,
        "--client-id",
        crate::federation_signin_rogue::CLIENT_ID,
        "--client-secret",
        crate::federation_signin_rogue::CLIENT_SECRET,
    ];
    if let Some(org) = org {
        args.extend_from_slice(&["--org", org]);
    }
    let conn = pair.app.cli(&args).await.json()["id"]
        .as_str()
        .expect("connection id")
        .to_owned();
    (rogue, conn)
}

async fn verified_domains_decide_who_signs_in_where(backend: Backend) {
    let pair = spawn_pair(backend, &[]).await;
    pair.app.create_person("owner@local.example", "Owner").await;
    let acme = cli_org(&pair.app, "Acme", "acme", "owner@local.example").await;
    cli_org(&pair.app, "Globex", "globex", "owner@local.example").await;
    let email_verified =
        |email: &str| format!("users where email = '{email}' and email_verified = 1");

    // Acme's provider, before Acme verified rogue.example: provisioned, address not verified.
    let (rogue, conn) = rogue_for(&pair, "first@rogue.example", Some("acme")).await;
    let response = rogue_callback(&pair, &rp::browser(), &rogue, &conn).await;
    assert_eq!(response.status(), 303);
    assert_eq!(
        pair.app
            .count("users where email = 'first@rogue.example'")
            .await,
        1
    );
    assert_eq!(
        pair.app.count(&email_verified("first@rogue.example")).await,
        0
    );

    // Once Acme verified the domain, its provider's (verified) addresses are verified here too.
    pair.app
        .cli(&[
            "org",
            "verify-domain",
            "--org",
            "acme",
            "--domain",
            "rogue.example",
        ])
        .await
        .json();
    let (rogue, conn) = rogue_for(&pair, "ann@rogue.example", Some("acme")).await;
    let response = rogue_callback(&pair, &rp::browser(), &rogue, &conn).await;
    assert_eq!(response.status(), 303);
    assert_eq!(
        pair.app.count(&email_verified("ann@rogue.example")).await,
        1
    );
    assert_eq!(
        pair.app
            .count(&format!(
                "memberships where org_id = '{acme}' and role = 'member'"
            ))
            .await,
        2
    );

    // Globex's provider cannot sign in an address of Acme's domain.
    let (rogue, conn) = rogue_for(&pair, "bob@rogue.example", Some("globex")).await;
    let response = rogue_callback(&pair, &rp::browser(), &rogue, &conn).await;
    assert_eq!(response.status(), 403);
    let html = response.text().await.expect("body");
    assert!(html.contains("belongs to another organization"), "{html}");
    assert_eq!(
        pair.app
            .count("users where email = 'bob@rogue.example'")
            .await,
        0
    );

    // Neither can an instance-wide provider (Acme's people go through Acme's own).
    let (rogue, conn) = rogue_for(&pair, "cid@rogue.example", None).await;
    let response = rogue_callback(&pair, &rp::browser(), &rogue, &conn).await;
    assert_eq!(response.status(), 403);
    assert_eq!(
        pair.app
            .count("users where email = 'cid@rogue.example'")
            .await,
        0
    );
    assert_eq!(
        pair.app
            .count("audit_events where action = 'federation.failed' and details like '%domain-of-another-organization%'")
            .await,
        2
    );

    // An instance-wide provider's verified address elsewhere: provisioned and verified, no membership.
    let (rogue, conn) = rogue_for(&pair, "dee@elsewhere.example", None).await;
    let response = rogue_callback(&pair, &rp::browser(), &rogue, &conn).await;
    assert_eq!(response.status(), 303);
    assert_eq!(
        pair.app
            .count(&email_verified("dee@elsewhere.example"))
            .await,
        1
    );
}

async fn sso_required_member_links_then_signs_in_through_the_provider(backend: Backend) {
    let pair = spawn_pair(backend, &[]).await;
    upstream_member(&pair, "ann@acme.example", "admin").await;
    let (org, _) = acme_with_connection(&pair, Some(admin_mapping())).await;
    pair.app
        .cli(&[
            "org",
            "verify-domain",
            "--org",
            "acme",
            "--domain",
            "acme.example",
        ])
        .await
        .json();
    let ann = pair.app.create_person("ann@acme.example", "Ann").await;
    cli_member(&pair.app, &org, "ann@acme.example", "member").await;
    let token = owner_token(&pair.app).await;
    crate::mgmt_helpers::patch(
        &pair.app,
        &format!("/api/v1/orgs/{org}"),
        &token,
        json!({"sso_required": true}),
    )
    .await
    .ok(200);
    let client = pair.app.register_client(&["--first-party"]).await;
    let (verifier, challenge) = rp::pkce();
    let url = pair.app.authorize_url(&[
        ("response_type", "code"),
        ("client_id", &client.id),
        ("redirect_uri", REDIRECT_URI),
        ("scope", "openid email"),
        ("state", "rp-state"),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ]);
    // Ann signs in with her password; the policy sends her through the provider (start without a
    // connection: the pending request names it); her account is linked once she signs in here
    // again, and the provider's sign-in then answers the request.
    let landing = pair
        .follow(
            &rp::browser(),
            &url,
            "ann@acme.example",
            Some("ann@acme.example"),
        )
        .await;
    let (id, _) = tokens(&pair.app, &client, &landing.left(), &verifier).await;
    assert_eq!(id["sub"], ann.as_str());
    assert_eq!(id["amr"], json!(["fed"]));
    assert_eq!(id["org_id"], org.as_str());
    assert_eq!(id["roles"], json!(["admin"]), "mapped when linked");
    assert_eq!(
        pair.app
            .count(&format!("federated_identities where user_id = '{ann}'"))
            .await,
        1
    );
}
