//! The profile and password pages of "your account" driven by a real browser (headless Chromium,
//! see [`crate::browser`]): sign in, follow the navigation, change the name, change the password
//! (with a mistake first), and sign in again with the new one. Each page is captured as
//! `target/screenshots/account-profile-<step>-<backend>.png`.

use crate::browser::{backend_name, browser};
use crate::helpers::{Backend, TestApp};
use crate::rp::PASSWORD;
use crate::support::mail::wait_for_mail;

on_both_databases!(change_name_and_password_through_the_pages);

const EMAIL: &str = "ada@example.com";
const NEW_PASSWORD: &str = "copper kettle meadow drum";

async fn change_name_and_password_through_the_pages(backend: Backend) {
    let Some(b) = browser().await else {
        return;
    };
    let app = TestApp::spawn(backend).await;
    app.create_person(EMAIL, "Ada").await;
    let shot = |step: &str| format!("account-profile-{step}-{}", backend_name(backend));

    // Signed out, the account page sends to the login, which comes back.
    b.goto(&app.url("/account/profile")).await;
    b.wait_for("input[name=email]").await;
    b.fill("email", EMAIL).await;
    b.fill("password", PASSWORD).await;
    b.submit().await;
    b.wait_for_url(&app.url("/account/profile")).await;
    b.wait_for_title("Profile").await;
    b.capture(&shot("profile")).await;

    // The name, saved with a notice.
    b.fill("name", "Ada Lovelace").await;
    b.submit().await;
    b.wait_for(".notice-ok").await;
    let text = b.text().await;
    assert!(text.contains("Your profile was saved."), "{text}");
    b.capture(&shot("profile-saved")).await;

    // To the password section by the navigation.
    b.click_link("Password").await;
    b.wait_for("input[name=current_password]").await;
    b.wait_for_title("Password").await;
    // A wrong current password: the form again, with the reason.
    b.fill("current_password", "not the password").await;
    b.fill("password", NEW_PASSWORD).await;
    b.fill("password_confirm", NEW_PASSWORD).await;
    b.submit().await;
    b.wait_for("[role=alert]").await;
    let text = b.text().await;
    assert!(
        text.contains("The current password is not correct."),
        "{text}"
    );
    b.capture(&shot("password-wrong")).await;

    // Right, and the other browsers signed out.
    b.fill("current_password", PASSWORD).await;
    b.fill("password", NEW_PASSWORD).await;
    b.fill("password_confirm", NEW_PASSWORD).await;
    b.click_label("Sign out my other browsers").await;
    b.submit().await;
    b.wait_for(".notice-ok").await;
    let text = b.text().await;
    assert!(text.contains("Your password was changed"), "{text}");
    b.capture(&shot("password-changed")).await;
    wait_for_mail(&app, EMAIL, "Your password was changed").await;

    // This browser is still signed in; the overview shows the new name.
    b.goto(&app.url("/account")).await;
    b.wait_for_title("Your account").await;
    let text = b.text().await;
    assert!(text.contains("Ada Lovelace"), "{text}");

    // Signed out, the new password signs in.
    b.client
        .delete_all_cookies()
        .await
        .expect("cookies cleared");
    b.goto(&app.url("/login")).await;
    b.wait_for("input[name=email]").await;
    b.fill("email", EMAIL).await;
    b.fill("password", NEW_PASSWORD).await;
    b.submit().await;
    b.wait_for_url(&app.url("/")).await;
    b.goto(&app.url("/account")).await;
    b.wait_for_title("Your account").await;
    b.capture(&shot("signed-in-again")).await;

    b.close().await;
}
