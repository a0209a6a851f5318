//! Health, readiness, error pages, static files and the layers every response passes through.

use crate::helpers::{Backend, TestApp};

on_both_databases!(
    healthz_and_readyz_answer_json,
    unknown_path_renders_an_error_page_with_the_request_id,
    static_files_are_cached_for_long,
    oversized_bodies_are_refused_with_413,
    home_page_renders
);

async fn healthz_and_readyz_answer_json(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    let health = app.get("/healthz").await;
    assert_eq!(health.status(), 200);
    assert!(
        health.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    assert_eq!(
        health.json::<serde_json::Value>().await.unwrap()["status"],
        "ok"
    );

    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 200);
    assert_eq!(
        ready.json::<serde_json::Value>().await.unwrap()["database"],
        "ok"
    );
}

async fn unknown_path_renders_an_error_page_with_the_request_id(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    let response = app.get("/no/such/page").await;

    assert_eq!(response.status(), 404);
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(!request_id.is_empty());
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let body = response.text().await.unwrap();
    assert!(body.contains(&request_id), "the page shows the request id");
    assert!(body.contains("Not Found"));
}

async fn static_files_are_cached_for_long(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    let css = app.get("/static/style.css?v=1").await;
    assert_eq!(css.status(), 200);
    assert!(
        css.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age=31536000")
    );
    assert!(
        css.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );

    assert_eq!(app.get("/static/missing.css").await.status(), 404);
    assert_eq!(app.get("/static/..%2FCargo.toml").await.status(), 404);
}

async fn oversized_bodies_are_refused_with_413(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // Larger than the 64 KiB we read, small enough for the socket buffers (no reset mid-upload).
    let body = format!("email={}", "a".repeat(128 * 1024));

    let response = app
        .http
        .post(app.url("/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 413);
}

async fn home_page_renders(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    let page = app.get("/").await;

    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("http://localhost:8080"), "names the issuer");
    assert!(html.contains("/static/style.css"));
}

/// Readiness follows the database: 503 while PostgreSQL is stopped, 200 again once it is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_reports_a_stopped_database_and_recovers() {
    let Some(cluster) = crate::support::postgres::start_dedicated() else {
        return;
    };
    let url = cluster.create_database().await;
    let app = TestApp::spawn_with(Backend::Postgres, &[("LATCHKEY_DATABASE_URL", &url)]).await;
    assert_eq!(app.get("/readyz").await.status(), 200);

    cluster.stop();
    let down = app.get("/readyz").await;
    assert_eq!(down.status(), 503);
    assert_eq!(
        down.json::<serde_json::Value>().await.unwrap()["status"],
        "unavailable"
    );
    assert_eq!(
        app.get("/healthz").await.status(),
        200,
        "liveness does not depend on the database"
    );

    cluster.start();
    let mut status = 0;
    for _ in 0..20 {
        status = app.get("/readyz").await.status().as_u16();
        if status == 200 {
            break;
        }
    }
    assert_eq!(status, 200, "ready again once the database is back");
}
