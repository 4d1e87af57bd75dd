//! Users, roles, API tokens and login sessions, and the extractor that turns a request's
//! bearer token or session cookie into the [`User`] a handler acts for.

use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use rand::distr::{Alphanumeric, SampleString};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::{AnyPool, Row};

use crate::error::WebError;
use crate::WebState;

/// Name of the session cookie the UI sets at login.
pub const SESSION_COOKIE: &str = "callqa_session";

/// What a user may do. Ordered: each role may do everything the one before it may.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Search, reports, call metadata and transcripts; customer numbers masked.
    Viewer,
    /// Also listens to recordings, sees full numbers, retries failed calls.
    Analyst,
    /// Also manages the blacklist and users, and reads the audit log.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Analyst => "analyst",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "viewer" => Some(Role::Viewer),
            "analyst" => Some(Role::Analyst),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// The authenticated user of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    pub name: String,
    pub role: Role,
}

impl User {
    /// `Ok` when the user's role is at least `min`; `action` names what was refused.
    pub fn require(&self, min: Role, action: &'static str) -> Result<(), WebError> {
        if self.role >= min {
            Ok(())
        } else {
            Err(WebError::Forbidden {
                role: self.role.as_str(),
                action,
            })
        }
    }

    /// Viewers never see a customer number in full.
    pub fn sees_numbers(&self) -> bool {
        self.role >= Role::Analyst
    }
}

/// A freshly created user with the secrets shown exactly once (only hashes are stored).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct NewUser {
    pub name: String,
    pub role: Role,
    /// Generated password for the UI login.
    pub password: String,
    /// API token for `Authorization: Bearer`.
    pub token: String,
}

/// A user as listed to admins.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UserInfo {
    pub name: String,
    pub role: Role,
    pub created_at: String,
}

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS web_users (
        name TEXT PRIMARY KEY,
        role TEXT NOT NULL,
        password_hash TEXT NOT NULL,
        created_at TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS web_tokens (
        token_hash TEXT PRIMARY KEY,
        user_name TEXT NOT NULL,
        created_at TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS web_sessions (
        token_hash TEXT PRIMARY KEY,
        user_name TEXT NOT NULL,
        expires_ms BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS web_audit (
        id TEXT PRIMARY KEY,
        at TEXT NOT NULL,
        at_ms BIGINT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT NOT NULL,
        detail TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS web_audit_at ON web_audit (at_ms)",
];

/// Creates the users, tokens, sessions and audit tables if missing. Safe at every start.
pub async fn migrate(pool: &AnyPool) -> Result<(), WebError> {
    for stmt in SCHEMA {
        sqlx::query(stmt)
            .execute(pool)
            .await
            .map_err(WebError::db("migrate web schema"))?;
    }
    Ok(())
}

/// Hex SHA-256: tokens are random and long, so a fast hash is enough to keep them
/// unusable if the database leaks.
pub(crate) fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn random_token(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", hex::encode(bytes))
}

fn hash_password(password: &str) -> Result<String, WebError> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| WebError::PasswordHash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| WebError::PasswordHash(e.to_string()))
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.chars().count() <= 64
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '@'))
}

/// Creates `name` with `role`, a generated password (argon2-hashed) and an API token
/// (SHA-256-hashed). The secrets are returned once and never stored in clear.
pub async fn add_user(pool: &AnyPool, name: &str, role: Role) -> Result<NewUser, WebError> {
    if !valid_name(name) {
        return Err(WebError::BadRequest(format!(
            "user name {name:?} is invalid: use 1-64 letters, digits, _ - . @"
        )));
    }
    let password = Alphanumeric.sample_string(&mut rand::rng(), 16);
    let token = random_token("cqa_");
    let pw = password.clone();
    let hash = tokio::task::spawn_blocking(move || hash_password(&pw))
        .await
        .map_err(|e| WebError::Task(e.to_string()))??;
    let now = callqa_ingest::db::now_rfc3339();
    let mut tx = callqa_ingest::db::begin_write(pool)
        .await
        .map_err(WebError::db("begin add user"))?;
    let exists = sqlx::query("SELECT name FROM web_users WHERE name = $1")
        .bind(name.to_string())
        .fetch_optional(&mut *tx)
        .await
        .map_err(WebError::db(format!("look up user {name}")))?;
    if exists.is_some() {
        return Err(WebError::UserExists(name.to_string()));
    }
    sqlx::query(
        "INSERT INTO web_users (name, role, password_hash, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(name.to_string())
    .bind(role.as_str())
    .bind(hash)
    .bind(now.clone())
    .execute(&mut *tx)
    .await
    .map_err(WebError::db(format!("insert user {name}")))?;
    sqlx::query("INSERT INTO web_tokens (token_hash, user_name, created_at) VALUES ($1, $2, $3)")
        .bind(token_hash(&token))
        .bind(name.to_string())
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(WebError::db(format!("insert token of {name}")))?;
    tx.commit()
        .await
        .map_err(WebError::db(format!("commit user {name}")))?;
    Ok(NewUser {
        name: name.to_string(),
        role,
        password,
        token,
    })
}

/// Every user, by name.
pub async fn list_users(pool: &AnyPool) -> Result<Vec<UserInfo>, WebError> {
    let rows = sqlx::query("SELECT name, role, created_at FROM web_users ORDER BY name")
        .fetch_all(pool)
        .await
        .map_err(WebError::db("list users"))?;
    rows.iter()
        .map(|r| {
            let get = |c: &str| {
                r.try_get::<String, _>(c)
                    .map_err(WebError::db(format!("read web_users.{c}")))
            };
            Ok(UserInfo {
                name: get("name")?,
                role: Role::parse(&get("role")?).unwrap_or(Role::Viewer),
                created_at: get("created_at")?,
            })
        })
        .collect()
}

/// The user if `password` is theirs. Argon2 is slow on purpose, so it runs off the reactor.
pub async fn check_password(
    pool: &AnyPool,
    name: &str,
    password: &str,
) -> Result<Option<User>, WebError> {
    let row = sqlx::query("SELECT role, password_hash FROM web_users WHERE name = $1")
        .bind(name.to_string())
        .fetch_optional(pool)
        .await
        .map_err(WebError::db(format!("look up user {name}")))?;
    let Some(row) = row else { return Ok(None) };
    let role: String = row
        .try_get("role")
        .map_err(WebError::db("read web_users.role"))?;
    let hash: String = row
        .try_get("password_hash")
        .map_err(WebError::db("read web_users.password_hash"))?;
    let pw = password.to_string();
    let ok = tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .is_ok_and(|h| Argon2::default().verify_password(pw.as_bytes(), &h).is_ok())
    })
    .await
    .map_err(|e| WebError::Task(e.to_string()))?;
    Ok(ok.then(|| User {
        name: name.to_string(),
        role: Role::parse(&role).unwrap_or(Role::Viewer),
    }))
}

/// Starts a login session lasting `hours`; returns the cookie value.
pub async fn create_session(pool: &AnyPool, user: &User, hours: u64) -> Result<String, WebError> {
    let token = random_token("s_");
    let expires = callqa_ingest::db::now_ms() + (hours.max(1) as i64) * 3_600_000;
    sqlx::query("INSERT INTO web_sessions (token_hash, user_name, expires_ms) VALUES ($1, $2, $3)")
        .bind(token_hash(&token))
        .bind(user.name.clone())
        .bind(expires)
        .execute(pool)
        .await
        .map_err(WebError::db(format!("create session for {}", user.name)))?;
    Ok(token)
}

/// Ends a session (logout); also sweeps expired ones.
pub async fn end_session(pool: &AnyPool, token: &str) -> Result<(), WebError> {
    sqlx::query("DELETE FROM web_sessions WHERE token_hash = $1 OR expires_ms < $2")
        .bind(token_hash(token))
        .bind(callqa_ingest::db::now_ms())
        .execute(pool)
        .await
        .map_err(WebError::db("end session"))?;
    Ok(())
}

/// Deletes every expired session; returns how many. Run periodically by
/// [`crate::sessions::spawn_sweeper`], so sessions nobody logs out of do not pile up.
pub async fn sweep_expired_sessions(pool: &AnyPool) -> Result<u64, WebError> {
    let r = sqlx::query("DELETE FROM web_sessions WHERE expires_ms < $1")
        .bind(callqa_ingest::db::now_ms())
        .execute(pool)
        .await
        .map_err(WebError::db("sweep expired sessions"))?;
    Ok(r.rows_affected())
}

async fn user_by_token(pool: &AnyPool, token: &str) -> Result<Option<User>, WebError> {
    let row = sqlx::query(
        "SELECT u.name AS name, u.role AS role FROM web_tokens t JOIN web_users u ON u.name = t.user_name
         WHERE t.token_hash = $1",
    )
    .bind(token_hash(token))
    .fetch_optional(pool)
    .await
    .map_err(WebError::db("check API token"))?;
    user_from(row)
}

async fn user_by_session(pool: &AnyPool, token: &str) -> Result<Option<User>, WebError> {
    let row = sqlx::query(
        "SELECT u.name AS name, u.role AS role FROM web_sessions s JOIN web_users u ON u.name = s.user_name
         WHERE s.token_hash = $1 AND s.expires_ms > $2",
    )
    .bind(token_hash(token))
    .bind(callqa_ingest::db::now_ms())
    .fetch_optional(pool)
    .await
    .map_err(WebError::db("check session"))?;
    user_from(row)
}

fn user_from(row: Option<sqlx::any::AnyRow>) -> Result<Option<User>, WebError> {
    let Some(row) = row else { return Ok(None) };
    let name: String = row
        .try_get("name")
        .map_err(WebError::db("read user name"))?;
    let role: String = row
        .try_get("role")
        .map_err(WebError::db("read user role"))?;
    Ok(Some(User {
        name,
        role: Role::parse(&role).unwrap_or(Role::Viewer),
    }))
}

/// The value of cookie `name` in the request, if sent.
pub(crate) fn cookie<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Resolves the request's credentials: a bearer token first, then the session cookie.
pub(crate) async fn authenticate(parts: &Parts, state: &WebState) -> Result<User, WebError> {
    let pool = state.db.pool();
    if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or(WebError::Unauthorized)?;
        return user_by_token(pool, token)
            .await?
            .ok_or(WebError::Unauthorized);
    }
    match cookie(&parts.headers, SESSION_COOKIE) {
        Some(token) => user_by_session(pool, token)
            .await?
            .ok_or(WebError::Unauthorized),
        None => Err(WebError::Unauthorized),
    }
}

impl FromRequestParts<Arc<WebState>> for User {
    type Rejection = WebError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<WebState>,
    ) -> Result<User, WebError> {
        authenticate(parts, state).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered() {
        let viewer = User {
            name: "v".into(),
            role: Role::Viewer,
        };
        assert!(viewer.require(Role::Viewer, "search").is_ok());
        assert!(matches!(
            viewer.require(Role::Analyst, "listen"),
            Err(WebError::Forbidden { .. })
        ));
        assert!(!viewer.sees_numbers());
        let admin = User {
            name: "a".into(),
            role: Role::Admin,
        };
        assert!(admin.require(Role::Analyst, "listen").is_ok());
        assert!(admin.sees_numbers());
    }

    #[test]
    fn password_hash_verifies_only_the_right_password() {
        let h = hash_password("s3cret").unwrap();
        let parsed = PasswordHash::new(&h).unwrap();
        assert!(Argon2::default()
            .verify_password(b"s3cret", &parsed)
            .is_ok());
        assert!(Argon2::default()
            .verify_password(b"wrong", &parsed)
            .is_err());
    }

    #[test]
    fn names_are_checked() {
        assert!(valid_name("alice.w"));
        assert!(!valid_name(""));
        assert!(!valid_name("a b"));
        assert!(!valid_name("x'; drop"));
    }
}
