//! The login form, session creation and logout.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, DOCTYPE};
use serde::Deserialize;

use super::i18n::Lang;
use crate::auth::{self, SESSION_COOKIE};
use crate::WebState;

#[derive(Debug, Default, Deserialize)]
pub struct NextParam {
    pub next: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    pub name: String,
    pub password: String,
    pub next: Option<String>,
}

/// Only local paths, so a crafted link cannot send a user elsewhere after login.
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n,
        _ => "/search",
    }
}

fn lang_of(headers: &HeaderMap, uri: &axum::http::Uri) -> Lang {
    Lang::detect(uri.query(), headers)
}

fn render(lang: Lang, next: &str, failed: bool) -> Html<String> {
    Html(
        html! {
            (DOCTYPE)
            html lang=(lang.code()) {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { (lang.t("login")) " · " (lang.t("app")) }
                    link rel="stylesheet" href="/static/app.css";
                }
                body {
                    form.login method="post" action="/login" {
                        h1 { (lang.t("login.title")) }
                        @if failed { div.alert.error role="alert" { (lang.t("login.failed")) } }
                        input type="hidden" name="next" value=(next);
                        label for="name" { (lang.t("login.name")) }
                        input #name name="name" autocomplete="username" required autofocus;
                        label for="password" { (lang.t("login.password")) }
                        input #password type="password" name="password" autocomplete="current-password" required;
                        button type="submit" { (lang.t("login")) }
                        p { a href=(format!("/login?lang={}", if lang == Lang::Zh { "en" } else { "zh" })) {
                            (if lang == Lang::Zh { "English" } else { "中文" }) } }
                    }
                }
            }
        }
        .into_string(),
    )
}

pub async fn form(
    headers: HeaderMap,
    uri: axum::http::Uri,
    Query(p): Query<NextParam>,
) -> Html<String> {
    render(lang_of(&headers, &uri), safe_next(p.next.as_deref()), false)
}

pub async fn submit(
    State(state): State<Arc<WebState>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    Form(f): Form<LoginForm>,
) -> Response {
    let next = safe_next(f.next.as_deref()).to_string();
    let user = match auth::check_password(state.db.pool(), f.name.trim(), &f.password).await {
        Ok(Some(u)) => u,
        Ok(None) => {
            return (
                StatusCode::UNAUTHORIZED,
                render(lang_of(&headers, &uri), &next, true),
            )
                .into_response()
        }
        Err(e) => return e.into_response(),
    };
    let token = match auth::create_session(state.db.pool(), &user, state.config.session_hours).await
    {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let secure = if state.config.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
        state.config.session_hours.max(1) * 3600
    );
    ([(header::SET_COOKIE, cookie)], Redirect::to(&next)).into_response()
}

pub async fn logout(State(state): State<Arc<WebState>>, headers: HeaderMap) -> Response {
    if let Some(token) = auth::cookie(&headers, SESSION_COOKIE) {
        if let Err(e) = auth::end_session(state.db.pool(), token).await {
            return e.into_response();
        }
    }
    let clear = format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0");
    ([(header::SET_COOKIE, clear)], Redirect::to("/login")).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_local() {
        assert_eq!(safe_next(Some("/calls/x?q=1")), "/calls/x?q=1");
        assert_eq!(safe_next(Some("//evil.example")), "/search");
        assert_eq!(safe_next(Some("https://evil.example")), "/search");
        assert_eq!(safe_next(None), "/search");
    }
}
