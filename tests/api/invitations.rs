//! What the invitation tests share: an organization with an owner and a client for the management
//! scopes, API calls, tokens through a code flow, and the delivered invitation mail. The API tests are
//! in `invitations_api.rs`, the accept pages in `invitations_pages.rs`.

use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp};
use crate::rp::{self, Consent, REDIRECT_URI, RegisteredClient, json_with_status};
use crate::support::mail::{MAIL_DEADLINE, ReceivedMail, wait_for_mail};

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
        // The invitation's mail is handed over before the test looks for it.
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
