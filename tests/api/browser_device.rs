//! The device flow's pages in a real browser (see [`crate::browser`]): signed out, `/device` goes
//! through the login page and back; a wrong code is refused on the form; the right one shows the
//! confirmation with the application, the account and the organizations to choose from; Approve ends
//! on "Device connected", and the device's next poll gets tokens for the organization chosen. Each
//! page is captured desktop- and phone-wide as
//! `target/screenshots/device-<step>-<backend>[-narrow].png`.

use crate::browser::{backend_name, browser};
use crate::device_flow::{device_client, poll, started};
use crate::helpers::{Backend, TestApp};
use crate::org_login::{EMAIL, create_org};
use crate::rp::{self, PASSWORD, json_with_status};

on_both_databases!(approve_a_device_through_the_pages);

async fn approve_a_device_through_the_pages(backend: Backend) {
    let Some(b) = browser().await else {
        return;
    };
    let app = TestApp::spawn(backend).await;
    app.create_person(EMAIL, "Ada").await;
    create_org(&app, "Acme", "acme", EMAIL).await;
    let globex = create_org(&app, "Globex", "globex", EMAIL).await;
    let client = device_client(&app).await;
    let device = started(&app, &client).await;
    let user_code = device["user_code"].as_str().expect("user_code");
    let shot = |step: &str| format!("device-{step}-{}", backend_name(backend));

    // Signed out: the verification URI leads through the login page and back.
    b.goto(&app.url("/device")).await;
    b.wait_for("input[name=password]").await;
    b.fill("email", EMAIL).await;
    b.fill("password", PASSWORD).await;
    b.submit().await;
    b.wait_for_title("Connect a device").await;
    b.wait_for("input[name=user_code]").await;
    b.capture(&shot("entry")).await;

    // A code nobody was given: refused on the form, which stays.
    let wrong = if user_code == "BBBB-BBBB" {
        "CCCC-CCCC"
    } else {
        "BBBB-BBBB"
    };
    b.fill("user_code", wrong).await;
    b.submit().await;
    b.wait_for("p.alert").await;
    b.wait_for("input[name=user_code][aria-invalid=true][aria-describedby=user_code-error]")
        .await;
    let text = b.text().await;
    assert!(text.contains("That code is not valid."), "{text}");
    b.capture(&shot("wrong-code")).await;

    // The right one, typed in lower case without the dash: the confirmation.
    let typed = user_code.replace('-', "").to_lowercase();
    b.fill("user_code", &typed).await;
    b.submit().await;
    b.wait_for("button[value=approve]").await;
    let text = b.text().await;
    for shown in ["Test RP", user_code, EMAIL, "Acme", "Globex"] {
        assert!(text.contains(shown), "{shown} on the confirmation: {text}");
    }
    b.capture(&shot("confirm")).await;
    b.click_label("Globex").await;
    b.click("button[value=approve]").await;
    b.wait_for_title("Device connected").await;
    b.capture(&shot("done")).await;
    b.close().await;

    // The device's poll gets tokens for the organization chosen.
    let device_code = device["device_code"].as_str().expect("device_code");
    let tokens = json_with_status(poll(&app, &client, device_code).await, 200).await;
    let (_, access) = rp::decode_jwt(tokens["access_token"].as_str().expect("access token"));
    assert_eq!(access["org_id"], globex.as_str());
    assert_eq!(access["org_slug"], "globex");
}
