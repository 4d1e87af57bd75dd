//! `callqa user add`: create a web/API user with a generated password and API token.

use crate::app::App;
use crate::config::Config;
use anyhow::{Context, Result};
use callqa_web::Role;
use std::path::Path;

#[derive(clap::Subcommand)]
pub enum Cmd {
    /// Create a user; prints the generated password and API token once.
    Add {
        name: String,
        #[arg(long, group = "role")]
        admin: bool,
        #[arg(long, group = "role")]
        analyst: bool,
        #[arg(long, group = "role")]
        viewer: bool,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(cfg: Config, data_dir: &Path, cmd: Cmd) -> Result<i32> {
    let Cmd::Add {
        name,
        admin,
        analyst,
        viewer: _,
        json,
    } = cmd;
    let role = if admin {
        Role::Admin
    } else if analyst {
        Role::Analyst
    } else {
        Role::Viewer
    };
    let app = App::open(cfg, data_dir).await?;
    callqa_web::migrate(app.db.pool())
        .await
        .context("cannot create the web tables")?;
    let u = callqa_web::add_user(app.db.pool(), &name, role)
        .await
        .with_context(|| format!("cannot create user {name}"))?;
    if json {
        crate::commands::print_json(&serde_json::json!({
            "name": u.name, "role": u.role.as_str(), "password": u.password, "token": u.token,
        }))?;
    } else {
        println!(
            "user {} ({})\npassword: {}\napi token: {}",
            u.name,
            u.role.as_str(),
            u.password,
            u.token
        );
    }
    Ok(0)
}
