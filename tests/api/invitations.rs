//! Invitations through the management API: create (the link goes by mail only), list, revoke,
//! renewal, the role ceiling, members, and malformed input. The accept pages are in
//! `invitations_pages.rs`.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp};
use crate::rp::{self, Consent, REDIRECT_URI, RegisteredClient, json_with_status};
use crate::support::mail::{MAIL_DEADLINE, ReceivedMail, mails_to, wait_for_mail};

/// A server with an organization `acme` owned by `owner@example.com`, and a first-party client that
/// may ask for the management scopes.
pub struct Org {
    pub app: TestApp,
    pub client: RegisteredClient,
    pub org_id: String,
}

impl Org {
    /// Starts a server and creates the organization.
    pub async fn spawn(backend: Backend) -> Org {
        Org::spawn_with(backend, &[]).await
    }

    /// Like [`Org::spawn`], with extra `LATCHKEY_*` variables.
    pub async fn spawn_with(backend: Backend, extra: &[(&str, &str)]) -> Org {
        let app = TestApp::spawn_with(backend, extra).await;
        let client = app
            .register_client(&[
                "--first-party",
                "--scope",
                "openid",
                "--scope",
                "email",
                "--scope",
                "org:read",
                "--scope",
                "org:write",
            ])
            .await;
        app.create_person("owner@example.com", "Olive Owner").await;
        let org = app
            .cli(&[
                "org",
                "create",
                "--name",
                "Acme Corp",
                "--slug",
                "acme",
                "--owner",
                "owner@example.com",
            ])
            .await
            .json();
        Org {
            org_id: org["id"].as_str().expect("org id").to_owned(),
            app,
            client,
        }
    }

    /// Creates a person and adds them to `acme` with `role`.
    pub async fn member(&self, email: &str, role: &str) {
        self.app.create_person(email, "Some One").await;
        self.app
            .cli(&[
                "org",
                "add-member",
                "--org",
                "acme",
                "--email",
                email,
                "--role",
                role,
            ])
            .await
            .json();
    }

    /// An access token of `email` with `org:read org:write`, through a code flow with PKCE.
    pub async fn token(&self, email: &str) -> String {
        user_token(&self.app, &self.client, email, "openid org:read org:write").await
    }

    /// `POST /api/v1/orgs/acme/invitations` with `body`, as `token`.
    pub async fn invite(&self, token: &str, body: &Value) -> reqwest::Response {
        rp::rp_http()
            .post(self.app.url("/api/v1/orgs/acme/invitations"))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("invite sent")
    }

    /// Invites `email` as `role` and asserts 201; returns the invitation.
    pub async fn invite_ok(&self, token: &str, email: &str, role: &str) -> Value {
        let response = self
            .invite(token, &json!({"email": email, "role": role}))
            .await;
        let body = json_with_status(response, 201).await;
        // SQLite: let the delivery loop finish its writes before the test's next one.
        mail_drained(&self.app).await;
        body
    }

    /// `GET /api/v1/orgs/acme/invitations{query}`.
    pub async fn list(&self, token: &str, query: &str) -> reqwest::Response {
        rp::rp_http()
            .get(
                self.app
                    .url(&format!("/api/v1/orgs/acme/invitations{query}")),
            )
            .bearer_auth(token)
            .send()
            .await
            .expect("list sent")
    }

    /// `DELETE /api/v1/orgs/acme/invitations/{id}`.
    pub async fn revoke(&self, token: &str, id: &str) -> reqwest::Response {
        rp::rp_http()
            .delete(self.app.url(&format!("/api/v1/orgs/acme/invitations/{id}")))
            .bearer_auth(token)
            .send()
            .await
            .expect("revoke sent")
    }
}

/// An access token for `email` from `client` with `scope`, through the browser and the token endpoint.
pub async fn user_token(
    app: &TestApp,
    client: &RegisteredClient,
    email: &str,
    scope: &str,
) -> String {
    tokens(app, client, email, scope).await["access_token"]
        .as_str()
        .expect("access token")
        .to_owned()
}

/// The token response of a code flow with PKCE for `email`.
pub async fn tokens(app: &TestApp, client: &RegisteredClient, email: &str, scope: &str) -> Value {
    let browser = rp::browser();
    tokens_in(app, &browser, client, email, scope).await
}

/// Like [`tokens`], in an existing browser (which may be signed in already).
pub async fn tokens_in(
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
        ("nonce", "n"),
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
                ("redirect_uri", REDIRECT_URI),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    json_with_status(response, 200).await
}

/// Waits until the delivery loop has handed over every queued mail (polling with a deadline).
pub async fn mail_drained(app: &TestApp) {
    let deadline = tokio::time::Instant::now() + MAIL_DEADLINE;
    loop {
        let unsent: i64 =
            sqlx::query_scalar("select count(*) from mail_outbox where sent_at is null")
                .fetch_one(&app.db.pool)
                .await
                .expect("count unsent mail");
        if unsent == 0 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{unsent} mails still unsent after {MAIL_DEADLINE:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The newest invitation mail to `to`, as delivered (an `.eml` file).
pub async fn invitation_mail(app: &TestApp, to: &str) -> ReceivedMail {
    wait_for_mail(app, to, "invited you to join").await
}

/// The path and query (`/invitation?token=…`) of the link in the newest invitation mail to `to`.
pub async fn invitation_link(app: &TestApp, to: &str) -> String {
    path_of(&invitation_mail(app, to).await.link("/invitation"))
}

/// `/invitation?token=…` of an absolute link.
#[track_caller]
pub fn path_of(link: &str) -> String {
    let url = url::Url::parse(link).expect("absolute link");
    format!("{}?{}", url.path(), url.query().expect("a token"))
}

/// The problem `type` of an RFC 9457 response, after checking status and media type.
pub async fn problem(response: reqwest::Response, status: u16) -> String {
    assert_eq!(
        rp::header(&response, "content-type"),
        "application/problem+json",
        "problem+json for {}",
        response.url()
    );
    let body = json_with_status(response, status).await;
    body["type"].as_str().expect("problem type").to_owned()
}

/// The audit actions recorded for `org_id`, oldest first.
pub async fn audit_actions(app: &TestApp, org_id: &str) -> Vec<String> {
    sqlx::query_scalar("select action from audit_events where org_id = $1 order by created_at, id")
        .bind(org_id)
        .fetch_all(&app.db.pool)
        .await
        .expect("audit rows")
}

on_both_databases!(
    create_answers_201_without_the_token_and_mails_the_link,
    list_shows_pending_invitations_with_pages,
    revoke_kills_the_link,
    inviting_again_renews_the_same_invitation,
    admins_invite_up_to_their_own_role,
    members_and_outsiders_cannot_invite,
    inviting_a_member_is_a_conflict,
    malformed_requests_are_problems,
    operators_invite_into_any_organization,
);

async fn create_answers_201_without_the_token_and_mails_the_link(backend: Backend) {
    let org = Org::spawn(backend).await;
    let token = org.token("owner@example.com").await;

    let response = org
        .invite(
            &token,
            &json!({"email": "New.Person@Example.com", "role": "member"}),
        )
        .await;
    let body = json_with_status(response, 201).await;

    assert_eq!(body["org_id"], org.org_id.as_str());
    assert_eq!(body["email"], "New.Person@Example.com");
    assert_eq!(body["role"], "member");
    assert_eq!(body["state"], "pending");
    assert!(body["id"].is_string());
    assert!(body["invited_by"].is_string());
    let ttl = body["expires_at"].as_i64().unwrap() - body["created_at"].as_i64().unwrap();
    assert_eq!(
        ttl,
        7 * 24 * 60 * 60,
        "LATCHKEY_INVITE_TTL defaults to 7 days"
    );
    let text = body.to_string();
    assert!(
        !text.contains("token") && !text.contains("/invitation"),
        "{text}"
    );

    let mail = invitation_mail(&org.app, "new.person@example.com").await;
    assert!(mail.subject.contains("Olive Owner") && mail.subject.contains("Acme Corp"));
    assert!(
        mail.text.contains("as member"),
        "names the role: {}",
        mail.text
    );
    assert!(
        mail.text.contains("You receive this because Olive Owner"),
        "{}",
        mail.text
    );
    assert!(mail.html.contains("Accept the invitation"), "{}", mail.html);
    let link = mail.link("/invitation");
    assert!(
        link.starts_with("http://localhost:8080/invitation?token="),
        "{link}"
    );
    assert!(mail.html.contains(&link), "the HTML carries the same link");
    let raw_token = link.trim_start_matches("http://localhost:8080/invitation?token=");
    assert_eq!(raw_token.len(), 43, "256-bit token, base64url");
    let stored: String = sqlx::query_scalar("select token_hash from invitations")
        .fetch_one(&org.app.db.pool)
        .await
        .unwrap();
    assert_ne!(stored, raw_token, "only the hash is stored");
    assert_eq!(stored.len(), 64);
    assert_eq!(
        audit_actions(&org.app, &org.org_id)
            .await
            .last()
            .map(String::as_str),
        Some("invitation.created")
    );
}

async fn list_shows_pending_invitations_with_pages(backend: Backend) {
    let org = Org::spawn_with(backend, &[("LATCHKEY_INVITE_TTL", "5m")]).await;
    let token = org.token("owner@example.com").await;
    for i in 0..3 {
        org.invite_ok(&token, &format!("p{i}@example.com"), "viewer")
            .await;
    }

    let all = json_with_status(org.list(&token, "").await, 200).await;
    let emails: Vec<&str> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails.len(), 3);
    assert!(all["next_cursor"].is_null());
    assert!(!all.to_string().contains("token"));

    let first = json_with_status(org.list(&token, "?limit=2").await, 200).await;
    assert_eq!(first["items"].as_array().unwrap().len(), 2);
    let cursor = first["next_cursor"].as_str().expect("a next page");
    let second = json_with_status(
        org.list(&token, &format!("?limit=2&cursor={cursor}")).await,
        200,
    )
    .await;
    assert_eq!(second["items"].as_array().unwrap().len(), 1);
    assert!(second["next_cursor"].is_null());
    let mut paged: Vec<&str> = first["items"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["items"].as_array().unwrap())
        .map(|i| i["email"].as_str().unwrap())
        .collect();
    let mut all_sorted = emails.clone();
    paged.sort();
    all_sorted.sort();
    assert_eq!(paged, all_sorted);

    assert_eq!(
        problem(org.list(&token, "?limit=0").await, 400).await,
        "urn:latchkey:problem:invalid-query"
    );
    assert_eq!(
        problem(org.list(&token, "?limit=abc").await, 400).await,
        "urn:latchkey:problem:invalid-query"
    );
    assert_eq!(
        problem(org.list(&token, "?cursor=garbage").await, 400).await,
        "urn:latchkey:problem:invalid-cursor"
    );
    // Expired invitations are not pending any more.
    org.app.clock.advance(5 * 60);
    let later = json_with_status(org.list(&token, "").await, 200).await;
    assert_eq!(later["items"].as_array().unwrap().len(), 0);
}

async fn revoke_kills_the_link(backend: Backend) {
    let org = Org::spawn(backend).await;
    let token = org.token("owner@example.com").await;
    let inv = org.invite_ok(&token, "gone@example.com", "member").await;
    let id = inv["id"].as_str().unwrap();
    let link = invitation_link(&org.app, "gone@example.com").await;

    assert_eq!(
        org.revoke(&token, id).await.status(),
        StatusCode::NO_CONTENT
    );

    let list = json_with_status(org.list(&token, "").await, 200).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 0);
    let browser = rp::browser();
    let opened = browser.get(org.app.url(&link)).send().await.unwrap();
    assert_eq!(opened.status(), 303);
    let page = browser
        .get(org.app.url("/invitation"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 410);
    assert!(page.text().await.unwrap().contains("withdrawn"));
    // Idempotent; unknown ids are 404 problems.
    assert_eq!(
        org.revoke(&token, id).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        problem(org.revoke(&token, "no-such-id").await, 404).await,
        "urn:latchkey:problem:invitation-not-found"
    );
    let actions = audit_actions(&org.app, &org.org_id).await;
    assert_eq!(
        actions
            .iter()
            .filter(|a| *a == "invitation.revoked")
            .count(),
        1,
        "{actions:?}"
    );
}

async fn inviting_again_renews_the_same_invitation(backend: Backend) {
    let org = Org::spawn(backend).await;
    let token = org.token("owner@example.com").await;
    let first = org.invite_ok(&token, "again@example.com", "viewer").await;
    let old_link = invitation_link(&org.app, "again@example.com").await;
    org.app.clock.advance(60);

    let second = org.invite_ok(&token, "AGAIN@example.com", "admin").await;

    assert_eq!(second["id"], first["id"], "the same invitation, renewed");
    assert_eq!(second["role"], "admin", "the new role");
    assert!(second["expires_at"].as_i64() > first["expires_at"].as_i64());
    assert_eq!(org.app.count("invitations").await, 1);
    assert_eq!(
        mails_to(&org.app, "again@example.com").await.len(),
        2,
        "mailed again"
    );
    let new_link = invitation_link(&org.app, "AGAIN@example.com").await;
    assert_ne!(new_link, old_link);

    let browser = rp::browser();
    browser.get(org.app.url(&old_link)).send().await.unwrap();
    let page = browser
        .get(org.app.url("/invitation"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 404, "the old link is dead");
    browser.get(org.app.url(&new_link)).send().await.unwrap();
    let page = browser
        .get(org.app.url("/invitation"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200, "the new link works");
    assert!(page.text().await.unwrap().contains("admin"));
}

async fn admins_invite_up_to_their_own_role(backend: Backend) {
    let org = Org::spawn(backend).await;
    org.member("admin@example.com", "admin").await;
    let admin = org.token("admin@example.com").await;

    let response = org
        .invite(
            &admin,
            &json!({"email": "boss@example.com", "role": "owner"}),
        )
        .await;
    assert_eq!(
        problem(response, 403).await,
        "urn:latchkey:problem:role-ceiling"
    );
    org.invite_ok(&admin, "peer@example.com", "admin").await;
    let owned = org
        .invite_ok(
            &org.token("owner@example.com").await,
            "boss@example.com",
            "owner",
        )
        .await;
    assert_eq!(owned["role"], "owner", "owners invite owners");
    // An admin cannot revoke an owner invitation either.
    let response = org.revoke(&admin, owned["id"].as_str().unwrap()).await;
    assert_eq!(
        problem(response, 403).await,
        "urn:latchkey:problem:role-ceiling"
    );
}

async fn members_and_outsiders_cannot_invite(backend: Backend) {
    let org = Org::spawn(backend).await;
    org.member("member@example.com", "member").await;
    org.app
        .create_person("outsider@example.com", "Out Sider")
        .await;
    let body = json!({"email": "x@example.com", "role": "viewer"});

    let member = org.token("member@example.com").await;
    assert_eq!(
        problem(org.invite(&member, &body).await, 403).await,
        "urn:latchkey:problem:role-insufficient"
    );
    assert_eq!(org.list(&member, "").await.status(), 403);

    let outsider = org.token("outsider@example.com").await;
    assert_eq!(
        problem(org.invite(&outsider, &body).await, 404).await,
        "urn:latchkey:problem:organization-not-found"
    );
    assert_eq!(org.list(&outsider, "").await.status(), 404);
    assert_eq!(org.revoke(&outsider, "x").await.status(), 404);

    // A token without org:write cannot invite, even an owner's.
    let read_only = user_token(
        &org.app,
        &org.client,
        "owner@example.com",
        "openid org:read",
    )
    .await;
    assert_eq!(
        problem(org.invite(&read_only, &body).await, 403).await,
        "urn:latchkey:problem:insufficient-scope"
    );
    assert_eq!(
        org.list(&read_only, "").await.status(),
        200,
        "listing is a read"
    );
    let anonymous = rp::rp_http()
        .post(org.app.url("/api/v1/orgs/acme/invitations"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(org.app.count("invitations").await, 0);
}

async fn inviting_a_member_is_a_conflict(backend: Backend) {
    let org = Org::spawn(backend).await;
    org.member("in@example.com", "viewer").await;
    let token = org.token("owner@example.com").await;
    let response = org
        .invite(
            &token,
            &json!({"email": "IN@example.com", "role": "member"}),
        )
        .await;
    assert_eq!(
        problem(response, 409).await,
        "urn:latchkey:problem:already-member"
    );
    assert_eq!(org.app.count("invitations").await, 0);
    assert_eq!(org.app.count("mail_outbox").await, 0);
}

async fn malformed_requests_are_problems(backend: Backend) {
    let org = Org::spawn(backend).await;
    let token = org.token("owner@example.com").await;
    let url = org.app.url("/api/v1/orgs/acme/invitations");
    let raw = |body: &'static str| {
        rp::rp_http()
            .post(&url)
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    for body in ["{", "not json", r#"{"email": "a@example.com", "#] {
        let response = raw(body).await.unwrap();
        assert_eq!(
            problem(response, 400).await,
            "urn:latchkey:problem:malformed-json",
            "{body}"
        );
    }
    assert_eq!(
        problem(raw("").await.unwrap(), 400).await,
        "urn:latchkey:problem:missing-body"
    );
    for body in [
        json!({"email": "a@example.com"}),
        json!({"email": 5, "role": "member"}),
        json!({"email": "a@example.com", "role": "member", "extra": true}),
        json!({"email": "a@example.com", "role": ["member"]}),
    ] {
        let response = org.invite(&token, &body).await;
        assert_eq!(
            problem(response, 400).await,
            "urn:latchkey:problem:invalid-body",
            "{body}"
        );
    }
    let response = org
        .invite(
            &token,
            &json!({"email": "a@example.com", "role": "superuser"}),
        )
        .await;
    assert_eq!(
        problem(response, 400).await,
        "urn:latchkey:problem:invalid-role"
    );
    let response = org
        .invite(
            &token,
            &json!({"email": "not an address", "role": "member"}),
        )
        .await;
    assert_eq!(
        problem(response, 400).await,
        "urn:latchkey:problem:invalid-email"
    );
    let response = rp::rp_http()
        .post(&url)
        .bearer_auth(&token)
        .header("content-type", "text/plain")
        .body(r#"{"email":"a@example.com","role":"member"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(
        problem(response, 415).await,
        "urn:latchkey:problem:unsupported-media-type"
    );
    assert_eq!(org.app.count("invitations").await, 0);
}

async fn operators_invite_into_any_organization(backend: Backend) {
    let org = Org::spawn(backend).await;
    let service = org
        .app
        .register_client(&[
            "--grant-type",
            "client_credentials",
            "--scope",
            "admin",
            "--scope",
            "org:read",
            "--scope",
            "org:write",
        ])
        .await;
    let response = org
        .app
        .post_token(
            Some((&service.id, service.secret())),
            &[
                ("grant_type", "client_credentials"),
                ("scope", "admin org:read org:write"),
            ],
        )
        .await;
    let token = json_with_status(response, 200).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();

    let inv = org.invite_ok(&token, "chief@example.com", "owner").await;

    assert!(inv["invited_by"].is_null());
    let mail = invitation_mail(&org.app, "chief@example.com").await;
    assert!(
        mail.text.contains("An administrator of Acme Corp"),
        "{}",
        mail.text
    );
    let list = json_with_status(org.list(&token, "").await, 200).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
}
