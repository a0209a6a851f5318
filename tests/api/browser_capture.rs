//! Captures of whole pages for review: desktop- and phone-wide screenshots through the Chrome
//! DevTools Protocol (chromedriver's `goog/cdp/execute`), since WebDriver screenshots show only the
//! viewport and a headless window cannot grow past its screen.

use axum::http::Method;
use fantoccini::wd::WebDriverCompatibleCommand;
use serde_json::json;

use crate::browser::Browser;

/// The viewport width of desktop captures.
const WIDE: u32 = 1280;
/// The viewport width of phone captures (a common phone's CSS width).
const NARROW: u32 = 390;
/// The smallest viewport height of captures (shorter pages get the background below them).
const HEIGHT: u32 = 900;

impl Browser {
    /// Saves the whole page (not only the viewport) as `<name>.png` in a desktop-wide window and as
    /// `<name>-narrow.png` as a phone would show it, then restores the desktop window. Fails when the
    /// page is wider than either window.
    pub async fn capture(&self, name: &str) {
        for (width, mobile, suffix) in [(WIDE, false, ""), (NARROW, true, "-narrow")] {
            self.emulate(width, HEIGHT, mobile).await;
            // Nothing may stick out sideways: a page wider than the window scrolls horizontally.
            let page_width = self.measure("scrollWidth").await;
            assert!(
                page_width <= width,
                "{name}{suffix}: the page is {page_width} px wide in a {width} px window"
            );
            let height = self.measure("scrollHeight").await;
            // A viewport as tall as the page: the screenshot shows all of it.
            self.emulate(width, height.max(HEIGHT), mobile).await;
            self.screenshot(&format!("{name}{suffix}")).await;
        }
        self.cdp("Emulation.clearDeviceMetricsOverride", json!({}))
            .await;
    }

    /// A size of the whole document (`scrollWidth`, `scrollHeight`) in CSS pixels.
    async fn measure(&self, property: &str) -> u32 {
        self.client
            .execute(
                &format!("return document.documentElement.{property};"),
                vec![],
            )
            .await
            .unwrap_or_else(|e| panic!("{property}: {e}"))
            .as_u64()
            .and_then(|v| u32::try_from(v).ok())
            .unwrap_or_else(|| panic!("{property} is a number"))
    }

    /// Gives the page a `width` × `height` viewport; `mobile` also honours `<meta name=viewport>`.
    async fn emulate(&self, width: u32, height: u32, mobile: bool) {
        let metrics = json!({
            "width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile,
        });
        self.cdp("Emulation.setDeviceMetricsOverride", metrics)
            .await;
    }

    /// Runs a Chrome DevTools Protocol command through chromedriver.
    async fn cdp(&self, cmd: &'static str, params: serde_json::Value) {
        self.client
            .issue_cmd(Cdp { cmd, params })
            .await
            .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    }
}

/// A Chrome DevTools Protocol command, sent through chromedriver's `goog/cdp/execute` extension.
#[derive(Debug)]
struct Cdp {
    cmd: &'static str,
    params: serde_json::Value,
}

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!(
            "session/{}/goog/cdp/execute",
            session.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _url: &url::Url) -> (Method, Option<String>) {
        let body = json!({"cmd": self.cmd, "params": self.params});
        (Method::POST, Some(body.to_string()))
    }
}
