//! Admin-only API: the audit log and user management.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{opt, opt_num, Params};
use crate::auth::{self, NewUser, Role, User};
use crate::error::WebError;
use crate::WebState;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Only this action (`playback`, `export`, `retry`, `user_add`).
    pub action: Option<String>,
    /// At most this many, newest first (default 200).
    pub limit: Option<String>,
}

/// `{"entries": [{"at", "actor", "action", "target", "detail"}]}`, newest first.
#[utoipa::path(get, path = "/api/audit", tag = "admin", params(AuditParams),
    responses((status = 200, description = "Audit entries"), (status = 401, description = "Not logged in"),
        (status = 403, description = "Only admins")),
    security(("bearer" = [])))]
pub async fn audit(
    State(state): State<Arc<WebState>>,
    user: User,
    Params(p): Params<AuditParams>,
) -> Result<Json<Value>, WebError> {
    user.require(Role::Admin, "read the audit log")?;
    let limit = opt_num::<i64>("limit", &p.limit)?
        .unwrap_or(200)
        .clamp(1, 10_000);
    let entries = crate::audit::list(state.db.pool(), opt(&p.action), limit).await?;
    Ok(Json(json!({ "entries": entries })))
}

/// `{"users": [{"name", "role", "created_at"}]}`.
#[utoipa::path(get, path = "/api/users", tag = "admin",
    responses((status = 200, description = "Users"), (status = 401, description = "Not logged in"),
        (status = 403, description = "Only admins")),
    security(("bearer" = [])))]
pub async fn users(
    State(state): State<Arc<WebState>>,
    user: User,
) -> Result<Json<Value>, WebError> {
    user.require(Role::Admin, "manage users")?;
    Ok(Json(
        json!({ "users": auth::list_users(state.db.pool()).await? }),
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct AddUserBody {
    pub name: String,
    pub role: Role,
}

/// Creates a user; the answer carries the generated password and API token, shown once.
#[utoipa::path(post, path = "/api/users", tag = "admin", request_body = AddUserBody,
    responses((status = 201, description = "The new user with its secrets", body = NewUser),
        (status = 401, description = "Not logged in"), (status = 403, description = "Only admins"),
        (status = 409, description = "The name is taken")),
    security(("bearer" = [])))]
pub async fn add(
    State(state): State<Arc<WebState>>,
    user: User,
    Json(body): Json<AddUserBody>,
) -> Result<(StatusCode, Json<NewUser>), WebError> {
    user.require(Role::Admin, "manage users")?;
    let created = auth::add_user(state.db.pool(), body.name.trim(), body.role).await?;
    crate::audit::record(
        state.db.pool(),
        &user.name,
        "user_add",
        &created.name,
        created.role.as_str(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(created)))
}
