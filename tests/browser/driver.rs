//! A real browser for the admin tests: Debian's headless Chromium driven
//! through chromedriver (WebDriver) with fantoccini. Each test starts its own
//! chromedriver on a free loopback port with a fresh profile, and kills it
//! (with every browser process it started) when done, even on panic.
//!
//! Without Chromium the tests skip locally but FAIL under `CI=true`
//! (scripts/test installs `chromium` and `chromium-driver` there).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

use crate::common::net::free_port;
use crate::common::process::{Cmd, Proc};

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Pages are screenshotted at this width (the height follows the page).
const WIDTH: u32 = 1280;

pub struct Browser {
    /// chromedriver, in a process group of its own with every Chromium
    /// process it started: killed as a whole on drop (first).
    _driver: Proc,
    pub client: Client,
    _profile: tempfile::TempDir,
}

/// `true` when Chromium can be used; `false` means skip (never under CI).
pub fn available() -> bool {
    crate::common::have(
        Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists(),
        || {
            format!(
                "{CHROMIUM} or {CHROMEDRIVER} is missing (apt-get install chromium chromium-driver; scripts/test does)"
            )
        },
    )
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session.
    pub async fn start() -> Browser {
        let profile = tempfile::tempdir().expect("temp dir for the browser profile");
        let mut last_err = String::new();
        // chromedriver's port is picked before it binds it; retry on a clash.
        for _ in 0..3 {
            let port = free_port();
            // Its own process group, so that dropping it ends chromedriver
            // and every Chromium process under it, and nothing else.
            let driver = Cmd::program(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .own_process_group()
                .spawn();
            let url = format!("http://127.0.0.1:{port}");
            if !wait_ready(&url).await {
                last_err = format!("chromedriver on port {port} did not become ready");
                continue;
            }
            let caps = json!({
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": CHROMIUM,
                    "args": [
                        "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                        "--disable-background-networking", "--disable-component-update",
                        "--disable-sync", "--no-first-run", "--disable-quic",
                        "--disable-extensions", "--hide-scrollbars", "--force-device-scale-factor=1",
                        format!("--window-size={WIDTH},900"),
                        format!("--user-data-dir={}", profile.path().display()),
                    ],
                }
            });
            let caps = match caps {
                Value::Object(m) => m,
                _ => unreachable!(),
            };
            match ClientBuilder::new(HttpConnector::new())
                .capabilities(caps)
                .connect(&url)
                .await
            {
                Ok(client) => {
                    return Browser {
                        client,
                        _driver: driver,
                        _profile: profile,
                    };
                }
                Err(e) => last_err = format!("cannot start a Chromium session: {e}"),
            }
        }
        panic!("{last_err}");
    }

    /// Ends the browser session, then chromedriver (Drop).
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }

    pub async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("goto {url}: {e}"));
    }

    pub async fn url(&self) -> String {
        self.client
            .current_url()
            .await
            .expect("current url")
            .to_string()
    }

    pub async fn path(&self) -> String {
        self.client
            .current_url()
            .await
            .expect("current url")
            .path()
            .to_owned()
    }

    pub async fn find(&self, css: &str) -> Element {
        match self.client.find(Locator::Css(css)).await {
            Ok(el) => el,
            Err(e) => panic!("no element {css:?} on {}: {e}", self.url().await),
        }
    }

    pub async fn exists(&self, css: &str) -> bool {
        !self
            .client
            .find_all(Locator::Css(css))
            .await
            .expect("find_all")
            .is_empty()
    }

    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.expect("element text")
    }

    pub async fn value(&self, css: &str) -> String {
        self.find(css)
            .await
            .prop("value")
            .await
            .expect("value")
            .unwrap_or_default()
    }

    /// Replaces the value of an input.
    pub async fn fill(&self, css: &str, value: &str) {
        let el = self.find(css).await;
        el.clear().await.expect("clear input");
        el.send_keys(value).await.expect("type into input");
    }

    /// Clicks a link or a submit button and waits until the page it loads
    /// has loaded.
    pub async fn click(&self, css: &str) {
        self.client
            .execute("window.__before_click = true", vec![])
            .await
            .expect("mark the page");
        self.click_in_page(css).await;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let loaded = self
                .client
                .execute(
                    "return document.readyState === 'complete' && window.__before_click !== true",
                    vec![],
                )
                .await
                .ok()
                .and_then(|v| v.as_bool())
                .unwrap_or(false);
            if loaded {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "clicking {css:?} did not load a new page"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Clicks something a script handles in the page (no navigation).
    pub async fn click_in_page(&self, css: &str) {
        self.find(css)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {css:?}: {e}"));
    }

    pub async fn source(&self) -> String {
        self.client.source().await.expect("page source")
    }

    /// The visible text of the whole page.
    pub async fn page_text(&self) -> String {
        self.text("body").await
    }

    /// Signs in on `base` (a service's URL) and lands on the order list.
    pub async fn login(&self, base: &str, user: &str, password: &str) {
        self.goto(&format!("{base}/admin/login")).await;
        self.fill("#username", user).await;
        self.fill("#password", password).await;
        self.click("form button[type=submit]").await;
        let path = self.path().await;
        assert_eq!(path, "/admin/orders", "sign-in as {user} failed on {base}");
    }

    /// The value of a cookie visible to the current page.
    pub async fn cookie(&self, name: &str) -> Option<String> {
        self.client
            .get_named_cookie(name)
            .await
            .ok()
            .map(|c| c.value().to_owned())
    }

    /// Reloads until `check` holds, or panics after `secs`.
    pub async fn reload_until(&self, secs: u64, what: &str, check: impl AsyncCheck) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if check.holds(self).await {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {secs} s waiting for: {what} (on {})",
                self.url().await
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
            self.client.refresh().await.expect("reload");
        }
    }

    /// Resizes the browser window to `width` × `height` pixels (its
    /// outer size; the page's viewport is a little smaller in height).
    pub async fn set_window_size(&self, width: u32, height: u32) {
        self.client
            .set_window_size(width, height)
            .await
            .expect("resize the window");
    }

    /// Saves a PNG of the whole page as docs/screenshots/NAME.png, when
    /// FULFILLMENT_SCREENSHOTS=1 (the committed screenshots are made so).
    pub async fn screenshot(&self, name: &str) {
        if std::env::var("FULFILLMENT_SCREENSHOTS").as_deref() != Ok("1") {
            return;
        }
        // The window's height includes more than the page's viewport: grow
        // it until the whole page fits.
        let mut height = 900u32;
        for _ in 0..4 {
            self.client
                .set_window_size(WIDTH, height)
                .await
                .expect("resize");
            let missing = self
                .client
                .execute(
                    "return document.documentElement.scrollHeight - window.innerHeight",
                    vec![],
                )
                .await
                .ok()
                .and_then(|v| v.as_i64())
                .unwrap_or(0);
            if missing <= 0 || height >= 5000 {
                break;
            }
            height = (height + missing as u32).min(5000);
        }
        let png = self.client.screenshot().await.expect("screenshot");
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots");
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("write screenshot");
        self.client
            .set_window_size(WIDTH, 900)
            .await
            .expect("resize back");
    }
}

/// A condition on the page, checked after each reload.
pub trait AsyncCheck {
    fn holds(&self, b: &Browser) -> impl std::future::Future<Output = bool>;
}

/// The page's text contains this string.
pub struct TextContains<'a>(pub &'a str);

impl AsyncCheck for TextContains<'_> {
    async fn holds(&self, b: &Browser) -> bool {
        b.page_text().await.contains(self.0)
    }
}

async fn wait_ready(url: &str) -> bool {
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(r) = http.get(format!("{url}/status")).send().await
            && r.status().is_success()
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}
