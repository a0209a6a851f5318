//! The rules of the token endpoint (RFC 6749 §3.2, §4.1.3, §5.2; RFC 7636 §4.6; RFC 9700) and of the
//! UserInfo endpoint (OIDC Core §5.3, RFC 6750 §3), one refusal at a time. Every token-endpoint answer,
//! success or error, must carry `Cache-Control: no-store`.

use serde_json::Value;

use crate::helpers::{Backend, TestApp};
use crate::rp::{self, OTHER_REDIRECT_URI, REDIRECT_URI, RegisteredClient, header};

on_both_databases!(
    successful_exchange_is_not_cacheable,
    wrong_or_missing_code_verifier_is_invalid_grant,
    verifier_without_a_challenge_is_invalid_grant,
    reused_code_is_invalid_grant_and_revokes_the_first_access_token,
    code_of_another_client_is_invalid_grant,
    wrong_redirect_uri_is_invalid_grant,
    expired_code_is_invalid_grant,
    bad_client_credentials_are_invalid_client,
    unknown_or_missing_grant_type,
    repeated_parameter_is_invalid_request,
    body_that_is_not_a_form_is_refused,
    malformed_and_oversized_bodies_are_4xx_never_5xx,
    userinfo_refuses_missing_garbage_and_doubled_tokens,
    userinfo_accepts_a_token_in_a_form_body,
    userinfo_refuses_a_client_credentials_token,
);

mod oversized_answer_is_not_cacheable {
    use crate::helpers::Backend;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::oversized_answer_is_not_cacheable(Backend::Sqlite).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        if crate::support::postgres::shared().is_none() {
            return;
        }
        super::oversized_answer_is_not_cacheable(Backend::Postgres).await
    }
}

const EMAIL: &str = "ada@example.com";

/// An app with one user.
async fn app_with_user(backend: Backend) -> TestApp {
    let app = TestApp::spawn(backend).await;
    app.create_person(EMAIL, "Ada").await;
    app
}

/// Redeems `code` as `client` (Basic authentication for confidential clients, `client_id` in the
/// body for public ones), with the given verifier and redirect URI.
async fn redeem(
    app: &TestApp,
    client: &RegisteredClient,
    code: &str,
    verifier: Option<&str>,
    redirect_uri: Option<&str>,
) -> reqwest::Response {
    let mut form = vec![("grant_type", "authorization_code"), ("code", code)];
    if let Some(v) = verifier {
        form.push(("code_verifier", v));
    }
    if let Some(r) = redirect_uri {
        form.push(("redirect_uri", r));
    }
    match &client.secret {
        Some(secret) => app.post_token(Some((&client.id, secret)), &form).await,
        None => {
            form.push(("client_id", &client.id));
            app.post_token(None, &form).await
        }
    }
}

/// Asserts an RFC 6749 §5.2 error: status, `error` code, JSON, `Cache-Control: no-store`.
async fn assert_token_error(response: reqwest::Response, status: u16, error: &str) -> Value {
    assert_eq!(header(&response, "cache-control"), "no-store", "§5.2");
    assert!(
        header(&response, "content-type").starts_with("application/json"),
        "{:?}",
        response.headers()
    );
    let body = rp::json_with_status(response, status).await;
    assert_eq!(body["error"], error, "{body}");
    let description = body["error_description"].as_str().unwrap_or_default();
    assert!(
        description.bytes().all(|b| b == 0x20
            || b == 0x21
            || (0x23..=0x5B).contains(&b)
            || (0x5D..=0x7E).contains(&b)),
        "RFC 6749 error_description characters: {description:?}"
    );
    body
}

/// Asserts a successful token response and returns its JSON.
async fn assert_tokens(response: reqwest::Response) -> Value {
    assert_eq!(header(&response, "cache-control"), "no-store", "§5.1");
    rp::json_with_status(response, 200).await
}

/// `GET /userinfo` with `Authorization: Bearer TOKEN`.
async fn userinfo(app: &TestApp, token: &str) -> reqwest::Response {
    rp::rp_http()
        .get(app.url("/userinfo"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn successful_exchange_is_not_cacheable(backend: Backend) {
    let app = app_with_user(backend).await;
    let client = app.register_client(&[]).await;
    let (code, verifier) = rp::code_with_pkce(&app, &rp::browser(), &client, EMAIL).await;

    let response = redeem(&app, &client, &code, Some(&verifier), Some(REDIRECT_URI)).await;

    assert_eq!(header(&response, "pragma"), "no-cache");
    let tokens = assert_tokens(response).await;
    assert_eq!(tokens["token_type"], "Bearer");
    assert!(tokens["id_token"].is_string());
    assert!(tokens["access_token"].is_string());
}

async fn wrong_or_missing_code_verifier_is_invalid_grant(backend: Backend) {
    let app = app_with_user(backend).await;
    let client = app.register_client(&["--public"]).await;
    let browser = rp::browser();
    let (code, verifier) = rp::code_with_pkce(&app, &browser, &client, EMAIL).await;
    let (other_verifier, _) = rp::pkce();

    let wrong = redeem(
        &app,
        &client,
        &code,
        Some(&other_verifier),
        Some(REDIRECT_URI),
    )
    .await;
    let missing = redeem(&app, &client, &code, None, Some(REDIRECT_URI)).await;

    assert_token_error(wrong, 400, "invalid_grant").await;
    assert_token_error(missing, 400, "invalid_grant").await;
    // A verifier outside RFC 7636's alphabet or length is a malformed request.
    let short = redeem(&app, &client, &code, Some("short"), Some(REDIRECT_URI)).await;
    assert_token_error(short, 400, "invalid_request").await;
    // The failed attempts did not consume the code: the real verifier still works once.
    assert_tokens(redeem(&app, &client, &code, Some(&verifier), Some(REDIRECT_URI)).await).await;
}

async fn verifier_without_a_challenge_is_invalid_grant(backend: Backend) {
    let app = app_with_user(backend).await;
    let client = app.register_client(&["--allow-no-pkce"]).await;
    let code = rp::code_without_pkce(&app, &rp::browser(), &client, EMAIL).await;
    let (verifier, _) = rp::pkce();

    let response = redeem(&app, &client, &code, Some(&verifier), Some(REDIRECT_URI)).await;

    // RFC 9700 §2.1.1: a verifier with no challenge is a PKCE downgrade attempt.
    assert_token_error(response, 400, "invalid_grant").await;
}

async fn reused_code_is_invalid_grant_and_revokes_the_first_access_token(backend: Backend) {
    let app = app_with_user(backend).await;
    let client = app.register_client(&[]).await;
    let (code, verifier) = rp::code_with_pkce(&app, &rp::browser(), &client, EMAIL).await;
    let first =
        assert_tokens(redeem(&app, &client, &code, Some(&verifier), Some(REDIRECT_URI)).await)
            .await;
    let access = first["access_token"].as_str().unwrap();
    assert_eq!(userinfo(&app, access).await.status(), 200);

    let second = redeem(&app, &client, &code, Some(&verifier), Some(REDIRECT_URI)).await;

    assert_token_error(second, 400, "invalid_grant").await;
    // RFC 6749 §4.1.2: what the first redemption issued is revoked.
    let refused = userinfo(&app, access).await;
    assert_eq!(refused.status(), 401);
    assert!(header(&refused, "www-authenticate").contains("error=\"invalid_token\""));
}

async fn code_of_another_client_is_invalid_grant(backend: Backend) {
    let app = app_with_user(backend).await;
    let alice = app.register_client(&[]).await;
    let mallory = app.register_client(&[]).await;
    let (code, verifier) = rp::code_with_pkce(&app, &rp::browser(), &alice, EMAIL).await;

    let stolen = redeem(&app, &mallory, &code, Some(&verifier), Some(REDIRECT_URI)).await;

    assert_token_error(stolen, 400, "invalid_grant").await;
}

async fn wrong_redirect_uri_is_invalid_grant(backend: Backend) {
    let app = app_with_user(backend).await;
    let client = app.register_client(&[]).await;
    let (code, verifier) = rp::code_with_pkce(&app, &rp::browser(), &client, EMAIL).await;

    // Registered, but not the one of the authorization request (RFC 6749 §4.1.3).
    let other = redeem(
        &app,
        &client,
        &code,
        Some(&verifier),
        Some(OTHER_REDIRECT_URI),
    )
    .await;
    let missing = redeem(&app, &client, &code, Some(&verifier), None).await;
    let slash = format!("{REDIRECT_URI}/");
    let almost = redeem(&app, &client, &code, Some(&verifier), Some(&slash)).await;

    assert_token_error(other, 400, "invalid_grant").await;
    assert_token_error(missing, 400, "invalid_grant").await;
    assert_token_error(almost, 400, "invalid_grant").await;
}

async fn expired_code_is_invalid_grant(backend: Backend) {
    let app = app_with_user(backend).await;
    let client = app.register_client(&[]).await;
    let (code, verifier) = rp::code_with_pkce(&app, &rp::browser(), &client, EMAIL).await;

    // the documented interface (README): codes live at most 60 seconds.
    app.clock.advance(61);
    let response = redeem(&app, &client, &code, Some(&verifier), Some(REDIRECT_URI)).await;

    assert_token_error(response, 400, "invalid_grant").await;
}

async fn bad_client_credentials_are_invalid_client(backend: Backend) {
    let app = app_with_user(backend).await;
    let client = app.register_client(&[]).await;
    let (code, verifier) = rp::code_with_pkce(&app, &rp::browser(), &client, EMAIL).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("code_verifier", verifier.as_str()),
        ("redirect_uri", REDIRECT_URI),
    ];

    // HTTP Basic with a wrong secret: 401 and a Basic challenge (RFC 6749 §5.2).
    let basic = app
        .post_token(Some((&client.id, "not-the-secret")), &form)
        .await;
    assert!(
        header(&basic, "www-authenticate").starts_with("Basic"),
        "{:?}",
        basic.headers()
    );
    assert_token_error(basic, 401, "invalid_client").await;
    // Unknown client over Basic.
    let unknown = app
        .post_token(Some(("no-such-client", client.secret())), &form)
        .await;
    assert!(header(&unknown, "www-authenticate").starts_with("Basic"));
    assert_token_error(unknown, 401, "invalid_client").await;
    // client_secret_post with a wrong secret.
    let mut post = form.to_vec();
    post.extend([
        ("client_id", client.id.as_str()),
        ("client_secret", "not-the-secret"),
    ]);
    assert_token_error(app.post_token(None, &post).await, 401, "invalid_client").await;
    // A confidential client that presents no secret at all.
    let mut none = form.to_vec();
    none.push(("client_id", client.id.as_str()));
    assert_token_error(app.post_token(None, &none).await, 401, "invalid_client").await;
    // No client identification whatsoever.
    assert_token_error(app.post_token(None, &form).await, 401, "invalid_client").await;
    // A public client that presents a secret it does not have.
    let public = app.register_client(&["--public"]).await;
    let with_secret = [
        ("grant_type", "authorization_code"),
        ("code", "whatever"),
        ("client_id", public.id.as_str()),
        ("client_secret", "invented"),
    ];
    assert_token_error(
        app.post_token(None, &with_secret).await,
        401,
        "invalid_client",
    )
    .await;

    // None of this consumed the code.
    assert_tokens(redeem(&app, &client, &code, Some(&verifier), Some(REDIRECT_URI)).await).await;
}

async fn unknown_or_missing_grant_type(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = app.register_client(&[]).await;
    let basic = Some((client.id.as_str(), client.secret()));

    let password = app
        .post_token(
            basic,
            &[
                ("grant_type", "password"),
                ("username", "a"),
                ("password", "b"),
            ],
        )
        .await;
    let urn = app
        .post_token(
            basic,
            &[(
                "grant_type",
                "urn:ietf:params:oauth:grant-type:saml2-bearer",
            )],
        )
        .await;
    let missing = app.post_token(basic, &[("code", "x")]).await;
    // Known grant, but not registered for this client.
    let not_allowed = app
        .post_token(basic, &[("grant_type", "client_credentials")])
        .await;

    assert_token_error(password, 400, "unsupported_grant_type").await;
    assert_token_error(urn, 400, "unsupported_grant_type").await;
    // Known since the device flow, but this client did not register it (RFC 8628 §3.4).
    let device = app
        .post_token(
            basic,
            &[("grant_type", "urn:ietf:params:oauth:grant-type:device_code")],
        )
        .await;
    assert_token_error(device, 400, "unauthorized_client").await;
    assert_token_error(missing, 400, "invalid_request").await;
    assert_token_error(not_allowed, 400, "unauthorized_client").await;
}

async fn repeated_parameter_is_invalid_request(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = app
        .register_client(&["--grant-type", "client_credentials"])
        .await;

    for body in [
        "grant_type=client_credentials&grant_type=client_credentials",
        "grant_type=client_credentials&scope=a&scope=b",
    ] {
        let response = rp::rp_http()
            .post(app.url("/token"))
            .basic_auth(&client.id, Some(client.secret()))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();

        // RFC 6749 §3.2: parameters MUST NOT be included more than once.
        let error = assert_token_error(response, 400, "invalid_request").await;
        assert!(
            error["error_description"]
                .as_str()
                .unwrap()
                .contains("repeated"),
            "{error}"
        );
    }
}

async fn body_that_is_not_a_form_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = app
        .register_client(&["--grant-type", "client_credentials"])
        .await;
    let send = |content_type: Option<&'static str>, body: &'static str| {
        let mut request = rp::rp_http()
            .post(app.url("/token"))
            .basic_auth(&client.id, Some(client.secret()))
            .body(body);
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        request.send()
    };

    let json = send(
        Some("application/json"),
        r#"{"grant_type":"client_credentials"}"#,
    )
    .await
    .unwrap();
    let text = send(Some("text/plain"), "grant_type=client_credentials")
        .await
        .unwrap();
    let none = send(None, "grant_type=client_credentials").await.unwrap();

    for response in [json, text, none] {
        assert_token_error(response, 400, "invalid_request").await;
    }
    // The form content type with a charset parameter is still a form.
    let charset = send(
        Some("application/x-www-form-urlencoded; charset=UTF-8"),
        "grant_type=client_credentials",
    )
    .await
    .unwrap();
    assert_tokens(charset).await;
}

async fn malformed_and_oversized_bodies_are_4xx_never_5xx(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = app
        .register_client(&["--grant-type", "client_credentials"])
        .await;
    let long_value = format!("grant_type=client_credentials&scope={}", "a".repeat(9000));
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("bad percent-encoding", b"grant_type=%zz%&code=%".to_vec()),
        (
            "invalid UTF-8",
            b"grant_type=\xff\xfe&code=\xc3\x28".to_vec(),
        ),
        (
            "NUL bytes",
            b"grant_type=client_credentials\0&\0=\0".to_vec(),
        ),
        ("no pairs", b"&&&===&&".to_vec()),
        ("a value longer than 8 KiB", long_value.into_bytes()),
        ("1 MiB", vec![b'a'; 1024 * 1024]),
        (
            "1 MiB of parameters",
            "a=b&".repeat(256 * 1024).into_bytes(),
        ),
    ];

    for (what, body) in bodies {
        // A server that refuses a large body before reading it closes the connection, and the
        // client may then fail writing the rest before it reads the answer: try again to see it.
        let mut attempts = 0;
        let response = loop {
            attempts += 1;
            let sent = rp::rp_http()
                .post(app.url("/token"))
                .basic_auth(&client.id, Some(client.secret()))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body.clone())
                .send()
                .await;
            match sent {
                Ok(response) => break response,
                Err(e) if attempts < 5 => eprintln!("{what}: {e}; trying again"),
                Err(e) => panic!("{what}: no answer after {attempts} attempts: {e}"),
            }
        };

        let status = response.status();
        assert!(status.is_client_error(), "{what}: {status}");
        if status != 413 {
            // The 413 of the server-wide body limit is covered by oversized_answer_is_not_cacheable.
            assert_eq!(header(&response, "cache-control"), "no-store", "{what}");
        }
    }
    // Basic credentials that are not base64, or lack the colon.
    for authorization in ["Basic !!!", "Basic Zm9v", "Bearer x", "Basic "] {
        let response = rp::rp_http()
            .post(app.url("/token"))
            .header("authorization", authorization)
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_client_error(),
            "{authorization}: {}",
            response.status()
        );
        assert_eq!(header(&response, "cache-control"), "no-store");
    }
}

async fn userinfo_refuses_missing_garbage_and_doubled_tokens(backend: Backend) {
    let app = app_with_user(backend).await;
    let client = app.register_client(&[]).await;
    let (code, verifier) = rp::code_with_pkce(&app, &rp::browser(), &client, EMAIL).await;
    let tokens =
        assert_tokens(redeem(&app, &client, &code, Some(&verifier), Some(REDIRECT_URI)).await)
            .await;
    let access = tokens["access_token"].as_str().unwrap();
    let http = rp::rp_http();

    // No token: 401 with a bare Bearer challenge (RFC 6750 §3.1).
    let missing = http.get(app.url("/userinfo")).send().await.unwrap();
    assert_eq!(missing.status(), 401);
    assert!(header(&missing, "www-authenticate").starts_with("Bearer"));
    // Garbage, and a token that is an ID token rather than an access token.
    for token in ["garbage", "a.b.c", tokens["id_token"].as_str().unwrap()] {
        let refused = userinfo(&app, token).await;
        assert_eq!(refused.status(), 401, "{token}");
        let challenge = header(&refused, "www-authenticate");
        assert!(challenge.starts_with("Bearer"), "{challenge}");
        assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
        let body = rp::json_with_status(refused, 401).await;
        assert_eq!(body["error"], "invalid_token");
    }
    // A tampered signature.
    let mut tampered = access.to_owned();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    assert_eq!(userinfo(&app, &tampered).await.status(), 401);
    // The token in the header and in the body at once (RFC 6750 §2).
    let doubled = http
        .post(app.url("/userinfo"))
        .bearer_auth(access)
        .form(&[("access_token", access)])
        .send()
        .await
        .unwrap();
    assert_eq!(doubled.status(), 400);
    assert!(header(&doubled, "www-authenticate").contains("error=\"invalid_request\""));
    // Still valid when presented properly.
    assert_eq!(userinfo(&app, access).await.status(), 200);
}

async fn userinfo_accepts_a_token_in_a_form_body(backend: Backend) {
    let app = app_with_user(backend).await;
    let client = app.register_client(&[]).await;
    let (code, verifier) = rp::code_with_pkce(&app, &rp::browser(), &client, EMAIL).await;
    let tokens =
        assert_tokens(redeem(&app, &client, &code, Some(&verifier), Some(REDIRECT_URI)).await)
            .await;
    let access = tokens["access_token"].as_str().unwrap();

    let response = rp::rp_http()
        .post(app.url("/userinfo"))
        .form(&[("access_token", access)])
        .send()
        .await
        .unwrap();

    assert_eq!(header(&response, "cache-control"), "no-store");
    let info = rp::json_with_status(response, 200).await;
    let (_, claims) = rp::decode_jwt(access);
    assert_eq!(info["sub"], claims["sub"]);
    assert_eq!(info["email"], EMAIL);
    assert_eq!(info["name"], "Ada");
}

async fn userinfo_refuses_a_client_credentials_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = app
        .register_client(&["--grant-type", "client_credentials", "--scope", "org:read"])
        .await;
    let tokens = assert_tokens(
        app.post_token(
            Some((&client.id, client.secret())),
            &[("grant_type", "client_credentials")],
        )
        .await,
    )
    .await;
    assert!(tokens.get("id_token").is_none());
    assert!(tokens.get("refresh_token").is_none());

    let response = userinfo(&app, tokens["access_token"].as_str().unwrap()).await;

    // A valid token without `openid`: 403 insufficient_scope (RFC 6750 §3.1), not someone's claims.
    assert_eq!(response.status(), 403);
    let challenge = header(&response, "www-authenticate");
    assert!(
        challenge.contains("error=\"insufficient_scope\""),
        "{challenge}"
    );
    let body = rp::json_with_status(response, 403).await;
    assert_eq!(body["error"], "insufficient_scope");
    assert!(body.get("sub").is_none());
}

async fn oversized_answer_is_not_cacheable(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = app
        .register_client(&["--grant-type", "client_credentials"])
        .await;
    let scope = "a".repeat(128 * 1024);

    let response = app
        .post_token(
            Some((&client.id, client.secret())),
            &[("grant_type", "client_credentials"), ("scope", &scope)],
        )
        .await;

    assert_eq!(response.status(), 413);
    assert_eq!(header(&response, "cache-control"), "no-store");
    assert!(header(&response, "content-type").starts_with("application/json"));
}
