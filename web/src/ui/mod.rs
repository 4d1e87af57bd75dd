//! The server-rendered UI: login, search, call review, QA reports, blacklist, campaigns
//! (start, pause), consents (import), scorecards (edit) and dead letters. Pages are plain
//! HTML from `maud` with a small script; no build step.

pub mod blacklist_page;
pub mod call_page;
pub mod campaigns_page;
pub mod chart;
pub mod consents_page;
pub mod dead_letters_page;
pub mod i18n;
pub mod layout;
pub mod login;
pub mod report_page;
pub mod scorecard_edit_page;
pub mod scorecards_page;
pub mod search_page;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;

use crate::WebState;

pub(crate) fn routes() -> Router<Arc<WebState>> {
    Router::new()
        .route(
            "/",
            get(|| async { axum::response::Redirect::to("/search") }),
        )
        .route("/static/app.css", get(layout::css))
        .route("/static/app.js", get(layout::js))
        .route("/login", get(login::form).post(login::submit))
        .route("/logout", post(login::logout))
        .route("/search", get(search_page::page))
        .route("/calls/{id}", get(call_page::page))
        .route("/reports", get(report_page::page))
        .route("/blacklist", get(blacklist_page::page))
        .route("/blacklist/add", post(blacklist_page::add))
        .route("/blacklist/remove", post(blacklist_page::remove))
        .route("/blacklist/import", post(blacklist_page::import))
        .route("/campaigns", get(campaigns_page::list))
        .route("/campaigns/{name}", get(campaigns_page::show))
        .route("/campaigns/{name}/start", post(campaigns_page::start))
        .route("/campaigns/{name}/pause", post(campaigns_page::pause))
        .route("/consents", get(consents_page::page))
        .route("/consents/import", post(consents_page::import))
        .route("/scorecards", get(scorecards_page::page))
        .route(
            "/scorecards/{name}",
            get(scorecard_edit_page::page).post(scorecard_edit_page::submit),
        )
        .route("/dead-letters", get(dead_letters_page::page))
        .route("/dead-letters/{id}/retry", post(dead_letters_page::retry))
        .layer(axum::middleware::from_fn(i18n::remember_lang))
}
