//! The OpenAPI document of the JSON API, generated from the handlers' annotations and
//! served at `/api/openapi.json`.

use axum::Json;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::api;

#[derive(OpenApi)]
#[openapi(
    info(title = "callqa API", description = "Search call transcripts, review calls, QA reports and management. \
        Authenticate with `Authorization: Bearer TOKEN` (from `callqa user add`) or a UI session cookie."),
    paths(
        api::search::search,
        api::calls::list,
        api::calls::show,
        api::calls::audio,
        api::calls::retry,
        api::calls::dead_letters,
        api::reports::qa,
        api::reports::complaints,
        api::blacklist::list,
        api::blacklist::add,
        api::blacklist::remove,
        api::blacklist::import,
        api::campaigns::list,
        api::campaigns::show,
        api::campaigns::start,
        api::campaigns::pause,
        api::consents::list,
        api::consents::import,
        api::scorecards::list,
        api::scorecards::show,
        api::scorecards::save,
        api::admin::audit,
        api::admin::users,
        api::admin::add,
    ),
    components(schemas(crate::auth::Role, crate::auth::NewUser, crate::audit::AuditEntry)),
    modifiers(&BearerAuth),
    tags((name = "search"), (name = "calls"), (name = "reports"), (name = "blacklist"), (name = "campaigns"),
        (name = "consents"), (name = "scorecards"), (name = "admin"))
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// `GET /api/openapi.json`: public, so clients can discover how to authenticate.
pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
