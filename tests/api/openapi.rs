//! The OpenAPI 3.1 document at `/api/v1/openapi.json`: what it is, that it describes exactly the
//! routes of `/api/v1` (the route constants, the router), and that the validator every
//! management-API test runs through (`openapi_validation`) reports what it should.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp};
use crate::openapi_validation::{self as oa, DOCUMENT_PATH};
use crate::rp;

on_both_databases!(
    document_is_openapi_3_1_with_valid_schemas,
    every_api_route_constant_is_documented_and_nothing_else,
    every_documented_operation_is_routed_and_other_methods_are_405,
    the_validator_reports_what_the_document_does_not_describe,
);

/// Methods an API route may have.
const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

async fn fetch(app: &TestApp) -> (u16, String, Value) {
    let response = rp::rp_http()
        .get(app.url(DOCUMENT_PATH))
        .send()
        .await
        .expect("sent");
    let status = response.status().as_u16();
    let content_type = rp::header(&response, "content-type");
    (status, content_type, response.json().await.expect("JSON"))
}

async fn document_is_openapi_3_1_with_valid_schemas(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (status, content_type, doc) = fetch(&app).await;
    assert_eq!(status, 200);
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1.")),
        "{}",
        doc["openapi"]
    );
    // Servers left out (the document is relative to wherever it is served) or `/`.
    match &doc["servers"] {
        Value::Null => {}
        servers => assert_eq!(servers, &json!([{"url": "/"}])),
    }
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    let problem = &schemas["Problem"];
    for field in ["type", "title", "status", "detail", "request_id"] {
        assert!(problem["properties"].get(field).is_some(), "{problem}");
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"],
        json!({"type": "http", "scheme": "bearer", "bearerFormat": "JWT"})
    );
    // Every schema is a JSON Schema 2020-12 whose references resolve.
    for (name, schema) in schemas {
        oa::compile(&doc, schema).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    // Every operation: a tag, a summary or description, responses with a body schema per content
    // type, and the Bearer scheme (but sign-up and the document itself, which need no token).
    let mut operation_ids = std::collections::HashSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            let at = format!("{method} {path}");
            // Client generators name their functions after operation ids: unique (OpenAPI 3.1 §4.8.10).
            let id = op["operationId"].as_str().expect("operationId").to_owned();
            assert!(
                operation_ids.insert(id.clone()),
                "{at}: operationId {id} twice"
            );
            assert!(op["tags"].as_array().is_some_and(|t| t.len() == 1), "{at}");
            assert!(
                op.get("summary").is_some() || op.get("description").is_some(),
                "{at}"
            );
            let responses = op["responses"].as_object().expect("responses");
            assert!(responses.keys().any(|s| s.starts_with('2')), "{at}");
            for (status, response) in responses {
                for (media, content) in response["content"].as_object().into_iter().flatten() {
                    oa::compile(&doc, &content["schema"])
                        .unwrap_or_else(|e| panic!("{at} {status} {media}: {e}"));
                    if status.starts_with('4') {
                        assert_eq!(media, "application/problem+json", "{at} {status}");
                    }
                }
            }
            let open = path == DOCUMENT_PATH || path == "/api/v1/signup";
            if open {
                assert!(op.get("security").is_none(), "{at}");
            } else {
                assert_eq!(op["security"], json!([{"bearer": []}]), "{at}");
                assert!(responses.contains_key("401"), "{at}");
            }
            // Lists document their pagination header.
            let paginated = op["parameters"]
                .as_array()
                .is_some_and(|ps| ps.iter().any(|p| p["name"] == "cursor"));
            if paginated {
                assert!(
                    responses["200"]["headers"].get("Link").is_some(),
                    "{at} is paginated but documents no Link header"
                );
            }
            // Path parameters are described.
            for param in path.split('/').filter(|s| s.starts_with('{')) {
                let name = param.trim_matches(|c| c == '{' || c == '}');
                let described = op["parameters"].as_array().is_some_and(|ps| {
                    ps.iter()
                        .any(|p| p["name"] == name && p["in"] == "path" && p["required"] == true)
                });
                assert!(described, "{at}: path parameter {name} not described");
            }
        }
    }
}

/// The string literals starting with `/api/v1` of `src/routes.rs`.
fn route_constants() -> Vec<String> {
    include_str!("../../src/routes.rs")
        .lines()
        .filter(|line| line.trim_start().starts_with("pub const"))
        .filter_map(|line| {
            let literal = line.split_once('"')?.1.rsplit_once('"')?.0;
            literal.starts_with("/api/v1").then(|| literal.to_owned())
        })
        .collect()
}

async fn every_api_route_constant_is_documented_and_nothing_else(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, _, doc) = fetch(&app).await;
    let documented: Vec<String> = doc["paths"]
        .as_object()
        .expect("paths")
        .keys()
        .cloned()
        .collect();
    let constants = route_constants();
    assert!(constants.len() > 30, "{constants:?}");
    let missing: Vec<&String> = constants
        .iter()
        .filter(|c| !documented.contains(c))
        .collect();
    assert!(
        missing.is_empty(),
        "routes not in the document: {missing:?}"
    );
    let unknown: Vec<&String> = documented
        .iter()
        .filter(|p| !constants.contains(p))
        .collect();
    assert!(
        unknown.is_empty(),
        "documented paths that are no route constant: {unknown:?}"
    );
}

/// `template` with every path parameter filled with a dummy value.
fn filled(template: &str) -> String {
    template
        .split('/')
        .map(|s| if s.starts_with('{') { "dummy" } else { s })
        .collect::<Vec<_>>()
        .join("/")
}

async fn every_documented_operation_is_routed_and_other_methods_are_405(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let doc = oa::document(&app).await;
    let http = rp::rp_http();
    let mut operations = 0;
    for (template, item) in doc["paths"].as_object().expect("paths") {
        let path = filled(template);
        for method in METHODS {
            let response = http
                .request(
                    Method::from_bytes(method.to_uppercase().as_bytes()).expect("method"),
                    app.url(&path),
                )
                .send()
                .await
                .expect("sent");
            let answer = crate::mgmt_helpers::answer(response).await;
            let at = format!(
                "{method} {path} answered {}: {}",
                answer.status, answer.body
            );
            if item.get(method).is_some() {
                operations += 1;
                assert_ne!(answer.status, 405, "{at}");
                if answer.status == 404 {
                    assert_eq!(answer.content_type, "application/problem+json", "{at}");
                    assert_ne!(
                        answer.body["type"], "urn:latchkey:problem:not-found",
                        "{at}: no such route"
                    );
                }
            } else {
                answer.problem(405, "method-not-allowed");
            }
            // Without a token, the answers are documented ones too (401, or the document's own
            // and sign-up's answers).
            oa::assert_documented(
                &doc,
                method,
                &path,
                answer.status,
                &answer.content_type,
                &answer.body,
            );
        }
    }
    assert!(operations > 40, "{operations}");
}

async fn the_validator_reports_what_the_document_does_not_describe(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let doc = oa::document(&app).await;
    let org = json!({
        "id": "0192f0e2", "slug": "acme", "name": "Acme", "created_at": 1,
        "require_mfa": false, "sso_required": false, "role": "owner",
    });
    let path = "/api/v1/orgs/acme";
    let json = "application/json";
    assert_eq!(oa::check(&doc, "GET", path, 200, json, &org), Ok(()));
    // A field of the wrong type, named with its place in the body.
    let mut wrong = org.clone();
    wrong["created_at"] = json!("yesterday");
    let why = oa::check(&doc, "GET", path, 200, json, &wrong).expect_err("wrong type");
    assert!(why.contains("/created_at"), "{why}");
    // A required field missing; a role that is none.
    let mut missing = org.clone();
    missing.as_object_mut().expect("object").remove("slug");
    let why = oa::check(&doc, "GET", path, 200, json, &missing).expect_err("missing");
    assert!(why.contains("slug"), "{why}");
    wrong = org.clone();
    wrong["role"] = json!("emperor");
    assert!(oa::check(&doc, "GET", path, 200, json, &wrong).is_err());
    // A list of the wrong items, at the index that is wrong.
    let list = json!([org, {"id": 1}]);
    let why = oa::check(&doc, "GET", "/api/v1/orgs?limit=2", 200, json, &list).expect_err("list");
    assert!(why.contains("/1"), "{why}");
    // A status the operation does not list; a body where none is documented; another content
    // type than the documented one.
    let why = oa::check(&doc, "GET", path, 418, json, &org).expect_err("status");
    assert!(why.contains("418"), "{why}");
    assert!(oa::check(&doc, "DELETE", path, 204, json, &org).is_err());
    assert!(oa::check(&doc, "GET", path, 200, "text/html", &org).is_err());
    // Problems are checked against the Problem schema.
    let problem = json!({
        "type": "urn:latchkey:problem:organization-not-found", "title": "Not Found",
        "status": 404, "detail": "no such organization", "request_id": "r",
    });
    let problem_json = "application/problem+json";
    assert_eq!(
        oa::check(&doc, "GET", path, 404, problem_json, &problem),
        Ok(())
    );
    let why = oa::check(&doc, "GET", path, 404, problem_json, &json!({"error": "x"}))
        .expect_err("not a problem");
    assert!(why.contains("type"), "{why}");
    // A method the document does not list is a 405 problem, or a failure.
    assert_eq!(
        oa::check(&doc, "PUT", path, 405, problem_json, &problem),
        Ok(())
    );
    assert!(oa::check(&doc, "PUT", path, 200, json, &org).is_err());
    // The hook panics with the path, the status and the error.
    let panicked = std::panic::catch_unwind(|| {
        oa::assert_documented(&doc, "GET", path, 200, json, &wrong);
    })
    .expect_err("panics");
    let message = panicked
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(
        message.contains("GET /api/v1/orgs/acme")
            && message.contains("200")
            && message.contains("/role"),
        "{message}"
    );
}
