//! The frame every page shares (navigation, language toggle, user), the page context
//! extractor that sends anonymous visitors to the login page, and the static assets.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::{html, Markup, DOCTYPE};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::i18n::Lang;
use crate::auth::{authenticate, Role, User};
use crate::error::WebError;
use crate::WebState;

/// Who is asking, in which language, for which URL.
pub struct Ctx {
    pub user: User,
    pub lang: Lang,
    /// Path and query of this request, for the language toggle and login redirects.
    pub here: String,
}

impl Ctx {
    pub fn t(&self, key: &'static str) -> &'static str {
        self.lang.t(key)
    }

    /// A 403 page unless the user's role is at least `min`.
    pub fn require(&self, min: Role) -> Result<(), Box<Response>> {
        if self.user.role >= min {
            Ok(())
        } else {
            Err(Box::new(self.fail(WebError::Forbidden {
                role: self.user.role.as_str(),
                action: "open this page",
            })))
        }
    }

    /// The error as a page in the site's frame, with its HTTP status.
    pub fn fail(&self, e: WebError) -> Response {
        let status = e.status();
        let msg = match status {
            StatusCode::FORBIDDEN => self.t("forbidden").to_string(),
            StatusCode::NOT_FOUND => format!("{} {e}", self.t("not_found")),
            s if s.is_server_error() => {
                tracing::error!("page {} failed: {e}", self.here);
                e.to_string()
            }
            _ => e.to_string(),
        };
        (
            status,
            frame(
                self,
                self.t("error"),
                html! { div.alert.error role="alert" { (msg) } },
            ),
        )
            .into_response()
    }
}

impl FromRequestParts<Arc<WebState>> for Ctx {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<WebState>) -> Result<Ctx, Response> {
        let here = parts.uri.path_and_query().map_or_else(
            || parts.uri.path().to_string(),
            |pq| pq.as_str().to_string(),
        );
        match authenticate(parts, state).await {
            Ok(user) => Ok(Ctx {
                user,
                lang: Lang::of(parts),
                here,
            }),
            Err(WebError::Unauthorized) => {
                Err(Redirect::to(&format!("/login?next={}", enc(&here))).into_response())
            }
            Err(e) => Err(e.into_response()),
        }
    }
}

/// Everything but RFC 3986 unreserved characters, so ids like `c-0001` stay readable.
const ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encodes a path segment or query value.
pub fn enc(s: &str) -> String {
    utf8_percent_encode(s, ENCODE).to_string()
}

/// `?a=1&b=2` from pairs, skipping empty values.
pub fn query(pairs: &[(&str, String)]) -> String {
    let s: Vec<String> = pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", enc(v)))
        .collect();
    if s.is_empty() {
        String::new()
    } else {
        format!("?{}", s.join("&"))
    }
}

/// `mm:ss` (or `h:mm:ss`) of a millisecond offset.
pub fn clock(ms: u64) -> String {
    let s = ms / 1000;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{:02}:{:02}", s / 60, s % 60)
    }
}

/// This URL with `lang` set, other parameters kept.
fn with_lang(here: &str, lang: Lang) -> String {
    let (path, q) = here.split_once('?').unwrap_or((here, ""));
    let mut parts: Vec<&str> = q
        .split('&')
        .filter(|kv| !kv.is_empty() && !kv.starts_with("lang="))
        .collect();
    let l = format!("lang={}", lang.code());
    parts.push(&l);
    format!("{path}?{}", parts.join("&"))
}

/// A complete page: header with navigation, then `body`.
pub fn frame(ctx: &Ctx, title: &str, body: Markup) -> Html<String> {
    let nav: Vec<(&str, &str, Role)> = vec![
        ("/search", "nav.search", Role::Viewer),
        ("/reports", "nav.reports", Role::Viewer),
        ("/campaigns", "nav.campaigns", Role::Viewer),
        ("/scorecards", "nav.scorecards", Role::Viewer),
        ("/consents", "nav.consents", Role::Viewer),
        ("/blacklist", "nav.blacklist", Role::Analyst),
        ("/dead-letters", "nav.dead", Role::Analyst),
    ];
    let other = if ctx.lang == Lang::Zh {
        Lang::En
    } else {
        Lang::Zh
    };
    let markup = html! {
        (DOCTYPE)
        html lang=(ctx.lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · " (ctx.t("app")) }
                link rel="stylesheet" href="/static/app.css";
                script src="/static/app.js" defer {}
            }
            body {
                header.top {
                    a.brand href="/search" { (ctx.t("app")) }
                    nav {
                        @for (href, key, min) in &nav {
                            @if ctx.user.role >= *min {
                                a href=(href) class=[ctx.here.starts_with(href).then_some("active")] { (ctx.t(key)) }
                            }
                        }
                    }
                    div.who {
                        a.lang href=(with_lang(&ctx.here, other)) { (if other == Lang::Zh { "中文" } else { "English" }) }
                        span.user { (ctx.user.name) " · " (ctx.user.role.as_str()) }
                        form method="post" action="/logout" { button.link type="submit" { (ctx.t("logout")) } }
                    }
                }
                main { h1 { (title) } (body) }
            }
        }
    };
    Html(markup.into_string())
}

pub async fn css() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        CSS,
    )
}

pub async fn js() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        JS,
    )
}

const CSS: &str = r#"
:root { --fg:#1d2330; --muted:#5d6678; --line:#dfe3ea; --bg:#f6f7f9; --accent:#1f5fbf; --bad:#b3261e; --good:#1b7a3d; --mark:#ffe58a; }
* { box-sizing: border-box; }
body { margin:0; font: 16px/1.55 system-ui, -apple-system, "Segoe UI", "PingFang SC", "Noto Sans CJK SC", "Microsoft YaHei", sans-serif; color:var(--fg); background:var(--bg); }
a { color:var(--accent); }
header.top { display:flex; gap:1.5rem; align-items:center; padding:.6rem 1.5rem; background:#fff; border-bottom:1px solid var(--line); flex-wrap:wrap; }
header.top .brand { font-weight:700; font-size:1.1rem; text-decoration:none; color:var(--fg); }
header.top nav { display:flex; gap:1rem; flex:1; }
header.top nav a { text-decoration:none; padding:.3rem .2rem; color:var(--muted); }
header.top nav a.active { color:var(--fg); border-bottom:2px solid var(--accent); }
.who { display:flex; gap:1rem; align-items:center; color:var(--muted); font-size:.9rem; }
.who form { margin:0; }
main { max-width:1150px; margin:0 auto; padding:1rem 1.5rem 3rem; }
h1 { font-size:1.5rem; margin:.5rem 0 1rem; }
h2 { font-size:1.15rem; margin:1.5rem 0 .6rem; }
input, select, textarea, button { font:inherit; }
input, select, textarea { padding:.45rem .6rem; border:1px solid #c4cad4; border-radius:6px; background:#fff; }
button, .button { padding:.45rem 1rem; border:1px solid var(--accent); border-radius:6px; background:var(--accent); color:#fff; cursor:pointer; text-decoration:none; display:inline-block; }
button.secondary { background:#fff; color:var(--accent); }
button.danger { background:#fff; color:var(--bad); border-color:var(--bad); }
button.link { background:none; border:none; color:var(--accent); padding:0; }
.searchbar { display:flex; gap:.5rem; }
.searchbar input[name=q] { flex:1; font-size:1.1rem; padding:.6rem .8rem; }
.filters { display:flex; flex-wrap:wrap; gap:.6rem 1rem; margin:.8rem 0 1rem; font-size:.9rem; color:var(--muted); }
.filters label { display:flex; flex-direction:column; gap:.2rem; }
.filters input { width:9.5rem; }
.layout { display:grid; grid-template-columns: 220px 1fr; gap:1.5rem; }
@media (max-width: 800px) { .layout { grid-template-columns: 1fr; } }
.facets h3 { font-size:.85rem; text-transform:uppercase; letter-spacing:.04em; color:var(--muted); margin:1rem 0 .3rem; }
.facets ul { list-style:none; margin:0; padding:0; font-size:.92rem; }
.facets li { display:flex; justify-content:space-between; gap:.5rem; }
.count { color:var(--muted); font-variant-numeric: tabular-nums; }
.hit { background:#fff; border:1px solid var(--line); border-radius:8px; padding:.8rem 1rem; margin-bottom:.8rem; }
.hit .meta { font-size:.88rem; color:var(--muted); display:flex; gap:1rem; flex-wrap:wrap; }
.hit .snip { margin:.35rem 0 0; }
.hit .snip .t { color:var(--muted); font-size:.85rem; margin-right:.4rem; font-variant-numeric: tabular-nums; }
b, mark { background:var(--mark); font-weight:600; color:inherit; padding:0 .1em; border-radius:2px; }
.badge { display:inline-block; padding:0 .5rem; border-radius:99px; font-size:.8rem; background:#eef1f6; color:var(--fg); margin-right:.25rem; }
.badge.flag { background:#fde8e6; color:var(--bad); }
.alert { padding:.7rem 1rem; border-radius:6px; margin:1rem 0; }
.alert.error { background:#fde8e6; color:var(--bad); border:1px solid #f3b8b2; }
.alert.ok { background:#e5f4ea; color:var(--good); border:1px solid #b5dcc2; }
.empty { padding:2rem; text-align:center; color:var(--muted); background:#fff; border:1px dashed var(--line); border-radius:8px; }
.pager { display:flex; gap:1rem; align-items:center; margin-top:1rem; }
table { border-collapse:collapse; width:100%; background:#fff; font-size:.93rem; }
th, td { text-align:left; padding:.45rem .6rem; border-bottom:1px solid var(--line); vertical-align:top; }
th { background:#f0f2f6; font-weight:600; }
td.num { text-align:right; font-variant-numeric: tabular-nums; }
dl.meta { display:grid; grid-template-columns:max-content 1fr; gap:.2rem 1rem; background:#fff; padding:.8rem 1rem; border:1px solid var(--line); border-radius:8px; }
dl.meta dt { color:var(--muted); }
dl.meta dd { margin:0; }
audio { width:100%; margin:.8rem 0; }
.transcript { display:flex; flex-direction:column; gap:.4rem; }
.seg { max-width:78%; padding:.45rem .75rem; border-radius:10px; cursor:pointer; border:1px solid var(--line); background:#fff; }
.seg.agent { align-self:flex-start; background:#eef4ff; }
.seg.customer { align-self:flex-end; background:#fff8e8; }
.seg.mixed { align-self:stretch; max-width:100%; }
.seg.playing { outline:2px solid var(--accent); }
.seg .who { font-size:.8rem; color:var(--muted); margin-right:.5rem; }
.seg p { margin:.1rem 0 0; }
.seg:target { outline:2px solid var(--bad); }
.ev { display:block; font-size:.88rem; }
.pass { color:var(--good); font-weight:600; }
.fail { color:var(--bad); font-weight:600; }
.cols { display:grid; grid-template-columns: 1fr 1fr; gap:1.5rem; }
@media (max-width: 900px) { .cols { grid-template-columns: 1fr; } }
form.inline { display:flex; gap:.5rem; flex-wrap:wrap; align-items:end; margin:.5rem 0; }
form.row { display:flex; gap:.4rem; margin:0; }
form.row input { width:10rem; padding:.25rem .4rem; }
form.row button { padding:.25rem .6rem; }
textarea { width:100%; min-height:6rem; font-family: ui-monospace, monospace; }
.login { max-width:360px; margin:4rem auto; background:#fff; padding:1.5rem 2rem; border:1px solid var(--line); border-radius:10px; }
.login label { display:block; margin:.8rem 0 .2rem; }
.login input { width:100%; }
.login button { margin-top:1.2rem; width:100%; }
textarea.code { min-height:30rem; font-size:.9rem; line-height:1.45; tab-size:2; white-space:pre; }
pre.code, pre.excerpt { background:#fff; border:1px solid var(--line); border-radius:6px; padding:.6rem .8rem; overflow:auto; font-size:.9rem; }
pre.excerpt .ln { display:block; }
pre.excerpt .bad { background:#fde8e6; color:var(--bad); font-weight:600; }
.muted { color:var(--muted); }
div.row { display:flex; gap:.5rem; margin:.5rem 0; }
ul.versions { list-style:none; padding:0; display:flex; flex-wrap:wrap; gap:.4rem 1rem; }
svg.chart text { font: 12px system-ui, sans-serif; fill: var(--fg); }
svg.chart .bar { fill: var(--accent); }
svg.chart .bar.bad { fill: var(--bad); }
svg.chart .axis { stroke: var(--line); }
"#;

const JS: &str = r#"
document.addEventListener('click', function (e) {
  var el = e.target.closest('[data-start]');
  var player = document.getElementById('player');
  if (!el || !player) return;
  e.preventDefault();
  player.currentTime = Number(el.dataset.start) / 1000;
  var p = player.play();
  if (p && p.catch) p.catch(function () {});
});
document.addEventListener('DOMContentLoaded', function () {
  var player = document.getElementById('player');
  if (player) {
    var segs = Array.prototype.slice.call(document.querySelectorAll('.seg[data-start]'));
    player.addEventListener('timeupdate', function () {
      var ms = player.currentTime * 1000;
      segs.forEach(function (s) {
        var on = ms >= Number(s.dataset.start) && ms < Number(s.dataset.end);
        s.classList.toggle('playing', on);
      });
    });
  }
  // The scorecard editor: select the line the parser refused.
  var ta = document.querySelector('textarea[data-error-line]');
  if (ta) {
    var n = Number(ta.dataset.errorLine);
    var lines = ta.value.split('\n');
    var start = 0;
    for (var i = 0; i < n - 1 && i < lines.length; i++) start += lines[i].length + 1;
    ta.focus();
    ta.setSelectionRange(start, start + (lines[n - 1] || '').length);
    var lh = parseFloat(getComputedStyle(ta).lineHeight) || 20;
    ta.scrollTop = Math.max(0, (n - 5) * lh);
  }
  var file = document.getElementById('csvfile');
  if (file) {
    file.addEventListener('change', function () {
      var f = file.files[0];
      if (!f) return;
      f.text().then(function (t) { document.getElementById('csvtext').value = t; });
    });
  }
});
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lang_toggle_keeps_params() {
        assert_eq!(
            with_lang("/search?q=%E9%80%80&lang=en", Lang::Zh),
            "/search?q=%E9%80%80&lang=zh"
        );
        assert_eq!(with_lang("/reports", Lang::En), "/reports?lang=en");
    }

    #[test]
    fn clocks() {
        assert_eq!(clock(61_500), "01:01");
        assert_eq!(clock(3_723_000), "1:02:03");
    }

    #[test]
    fn query_skips_empty() {
        assert_eq!(
            query(&[
                ("q", "退款".into()),
                ("agent", String::new()),
                ("offset", "20".into())
            ]),
            "?q=%E9%80%80%E6%AC%BE&offset=20"
        );
        assert_eq!(query(&[]), "");
    }
}
