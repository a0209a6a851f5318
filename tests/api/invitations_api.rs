//! Invitations through the management API: create (the link goes by mail only), list, revoke,
//! renewal, the role ceiling, members, and malformed input.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::Backend;
use crate::invitations::{
    Org, audit_actions, invitation_link, invitation_mail, problem, user_token,
};
use crate::mgmt_helpers::next_link;
use crate::rp::{self, json_with_status};
use crate::support::mail::mails_to;

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

    let response = org.list(&token, "").await;
    assert_eq!(rp::header(&response, "link"), "", "one page");
    let all = json_with_status(response, 200).await;
    let emails: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails.len(), 3);
    assert!(!all.to_string().contains("token"));

    let response = org.list(&token, "?limit=2").await;
    let next = next_link(&rp::header(&response, "link")).expect("a next page");
    let first = json_with_status(response, 200).await;
    assert_eq!(first.as_array().unwrap().len(), 2);
    let query = next
        .strip_prefix("/api/v1/orgs/acme/invitations")
        .expect("the same list");
    let response = org.list(&token, query).await;
    assert_eq!(rp::header(&response, "link"), "", "the last page");
    let second = json_with_status(response, 200).await;
    assert_eq!(second.as_array().unwrap().len(), 1);
    let mut paged: Vec<&str> = first
        .as_array()
        .unwrap()
        .iter()
        .chain(second.as_array().unwrap())
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
    assert_eq!(later.as_array().unwrap().len(), 0);
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
    assert_eq!(list.as_array().unwrap().len(), 0);
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
    assert_eq!(list.as_array().unwrap().len(), 1);
}
