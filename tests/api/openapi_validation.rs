//! Checks real API answers against the OpenAPI document the server publishes at
//! `/api/v1/openapi.json`: the operation is found by method and path template, the response by
//! status code (an undocumented status is a failure), and the body is validated with the
//! `jsonschema` crate (JSON Schema 2020-12, the dialect of OpenAPI 3.1) against that response's
//! schema. [`crate::mgmt_helpers::call`] runs it on every answer, so the whole management-API suite
//! proves the document right, errors included.

// Not every test module uses every helper.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{Value, json};

use crate::helpers::TestApp;

/// The path of the document (`routes::API_OPENAPI`).
pub const DOCUMENT_PATH: &str = "/api/v1/openapi.json";

/// The document, fetched once per test process: every app serves the same one.
static DOCUMENT: OnceLock<Arc<Value>> = OnceLock::new();

/// A compiled validator per (method, path template, status, content type).
type ValidatorKey = (String, String, u16, String);
static VALIDATORS: OnceLock<Mutex<HashMap<ValidatorKey, Arc<jsonschema::Validator>>>> =
    OnceLock::new();

/// The document `app` serves (fetched on first use, then cached for the process).
pub async fn document(app: &TestApp) -> Arc<Value> {
    if let Some(doc) = DOCUMENT.get() {
        return doc.clone();
    }
    let response = crate::rp::rp_http()
        .get(app.url(DOCUMENT_PATH))
        .send()
        .await
        .expect("document fetched");
    assert_eq!(response.status().as_u16(), 200, "GET {DOCUMENT_PATH}");
    let doc: Value = response.json().await.expect("document is JSON");
    DOCUMENT.get_or_init(|| Arc::new(doc)).clone()
}

/// The documented path template `path` (no query) falls under, preferring the one with the most
/// literal segments (`/me/sessions/end-others` over `/me/sessions/{sid}`).
pub fn template_of<'d>(doc: &'d Value, path: &str) -> Option<&'d str> {
    let segments: Vec<&str> = path.split('/').collect();
    doc["paths"]
        .as_object()?
        .keys()
        .filter_map(|template| {
            let parts: Vec<&str> = template.split('/').collect();
            if parts.len() != segments.len() {
                return None;
            }
            let mut literal = 0;
            for (part, segment) in parts.iter().zip(&segments) {
                if part.starts_with('{') && part.ends_with('}') {
                    if segment.is_empty() {
                        return None;
                    }
                } else if part == segment {
                    literal += 1;
                } else {
                    return None;
                }
            }
            Some((literal, template.as_str()))
        })
        .max_by_key(|(literal, _)| *literal)
        .map(|(_, template)| template)
}

/// Why an answer does not match the document, or `Ok` when it does (or when the path is not one
/// the document describes: the route-coverage test looks after those).
pub fn check(
    doc: &Value,
    method: &str,
    path_and_query: &str,
    status: u16,
    content_type: &str,
    body: &Value,
) -> Result<(), String> {
    let path = path_and_query.split('?').next().unwrap_or_default();
    let Some(template) = template_of(doc, path) else {
        return Ok(());
    };
    let method = method.to_ascii_lowercase();
    let Some(operation) = doc["paths"][template].get(&method) else {
        // A method the document does not list: the API answers 405 for it, a problem.
        if status == 405 {
            let problem = json!({"$ref": "#/components/schemas/Problem"});
            return validate(doc, ("405", template, status, "problem"), &problem, body);
        }
        return Err(format!(
            "{method} {template} is not in the document, yet answered {status}"
        ));
    };
    let Some(response) = operation["responses"].get(status.to_string()) else {
        return Err(format!(
            "{method} {template} answered {status}, a status the document does not list: {body}"
        ));
    };
    let Some(content) = response.get("content").and_then(Value::as_object) else {
        return if body.is_null() {
            Ok(())
        } else {
            Err(format!(
                "{method} {template} {status}: the document says no body, the answer has {body}"
            ))
        };
    };
    let media = content_type.split(';').next().unwrap_or_default().trim();
    let Some(schema) = content.get(media).map(|c| &c["schema"]) else {
        return Err(format!(
            "{method} {template} {status}: content type {content_type:?} is not one of {:?}",
            content.keys().collect::<Vec<_>>()
        ));
    };
    validate(doc, (&method, template, status, media), schema, body)
}

/// Validates `body` against `schema` (part of `doc`), compiling it once per `key`.
fn validate(
    doc: &Value,
    (method, template, status, media): (&str, &str, u16, &str),
    schema: &Value,
    body: &Value,
) -> Result<(), String> {
    let key = (
        method.to_owned(),
        template.to_owned(),
        status,
        media.to_owned(),
    );
    let validators = VALIDATORS.get_or_init(Default::default);
    let cached = validators.lock().expect("lock").get(&key).cloned();
    let validator = match cached {
        Some(v) => v,
        None => {
            let compiled = Arc::new(compile(doc, schema)?);
            validators
                .lock()
                .expect("lock")
                .insert(key, compiled.clone());
            compiled
        }
    };
    let errors: Vec<String> = validator
        .iter_errors(body)
        .map(|e| format!("at {:?}: {e}", e.instance_path().as_str()))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{method} {template} {status}: the body does not match the document's schema: {}\nbody: {body}",
            errors.join("; ")
        ))
    }
}

/// A JSON Schema 2020-12 validator of `schema`, whose `$ref`s point into `doc`'s components: the
/// schema is compiled inside a root that carries them.
pub fn compile(doc: &Value, schema: &Value) -> Result<jsonschema::Validator, String> {
    let root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": doc["components"],
        "allOf": [schema],
    });
    jsonschema::draft202012::new(&root)
        .map_err(|e| format!("schema {schema} does not compile: {e}"))
}

/// Panics unless the answer matches the document (see [`check`]).
#[track_caller]
pub fn assert_documented(
    doc: &Value,
    method: &str,
    path_and_query: &str,
    status: u16,
    content_type: &str,
    body: &Value,
) {
    if let Err(why) = check(doc, method, path_and_query, status, content_type, body) {
        panic!("OpenAPI mismatch: {method} {path_and_query} answered {status}: {why}");
    }
}
