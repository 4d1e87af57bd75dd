//! `callqa campaign load|start|pause|status|consent-import`: dialing campaigns. The runner
//! lives in `callqa_dialer::runner`; this wires it to the app's database, storage and queue.

use crate::app::App;
use crate::config::Config;
use anyhow::{Context, Result};
use callqa_dialer::{CampaignConfig, CampaignState, CampaignStore, Consents, RunOptions, Runner};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(clap::Subcommand)]
pub enum Cmd {
    /// Load (or reload) a campaign TOML; contacts already loaded keep their attempts.
    Load {
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Run a campaign in the foreground until every contact is done or it is paused.
    Start {
        name: String,
        /// Return once nothing is due now, instead of waiting for retries and calling windows.
        #[arg(long)]
        until_idle: bool,
        #[arg(long)]
        json: bool,
    },
    /// Ask a running campaign (in any process) to stop dialling; calls in flight finish.
    Pause { name: String },
    /// Placed, answered, abandoned calls, refusals by reason and answer rates by local hour.
    Status {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Import consent records: CSV `number,scope,proof,granted_at[,expires_at]` (RFC 3339).
    ConsentImport {
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

async fn store(app: &App) -> Result<CampaignStore> {
    CampaignStore::open(app.db.pool().clone())
        .await
        .context("cannot create the campaign tables")
}

pub async fn run(cfg: Config, data_dir: &Path, c: Cmd) -> Result<i32> {
    let app = App::open(cfg, data_dir).await?;
    let store = store(&app).await?;
    match c {
        Cmd::Load { file, json } => {
            let campaign = CampaignConfig::load(&file)
                .with_context(|| format!("cannot load campaign {}", file.display()))?;
            let warnings = campaign
                .check_against(&app.cfg.dialer)
                .context("the campaign does not match the [dialer] config")?;
            for w in &warnings {
                eprintln!("warning: {w}; dials using it will be refused");
            }
            let added = store.load(&campaign, now_ms()).await?;
            if json {
                crate::commands::print_json(&serde_json::json!({
                    "name": campaign.name,
                    "contacts": campaign.contacts.len(),
                    "added": added,
                    "warnings": warnings,
                }))?;
            } else {
                println!(
                    "loaded campaign {}: {} contacts ({added} new)",
                    campaign.name,
                    campaign.contacts.len()
                );
            }
            Ok(0)
        }
        Cmd::Start {
            name,
            until_idle,
            json,
        } => {
            let runner = Runner {
                dialer: app.cfg.dialer.clone(),
                store: store.clone(),
                consents: Consents::open(app.db.pool().clone()).await?,
                blacklist: callqa_qa::Blacklist::new(app.db.pool().clone()),
                db: app.db.clone(),
                queue: app.queue.clone(),
                objects: callqa_dialer::RecordingStore::from_storage(&app.storage),
                options: RunOptions {
                    poll: Duration::from_millis(500),
                    exit_when_idle: until_idle,
                    spool_dir: crate::commands::dial::spool_dir(&app),
                },
            };
            // Ctrl-C pauses like `campaign pause`: no new dials, calls in flight finish.
            let pauser = {
                let store = store.clone();
                let name = name.clone();
                tokio::spawn(async move {
                    if tokio::signal::ctrl_c().await.is_ok() {
                        eprintln!("pausing {name}: letting calls in flight finish");
                        let _ = store
                            .set_state(&name, CampaignState::Paused, now_ms())
                            .await;
                    }
                })
            };
            let summary = runner
                .run(&name)
                .await
                .with_context(|| format!("campaign {name} stopped"));
            pauser.abort();
            let summary = summary?;
            if json {
                crate::commands::print_json(&summary)?;
            } else {
                println!(
                    "{name}: placed {} answered {} abandoned {} refused {}; occupancy {:.0}%{}",
                    summary.placed,
                    summary.answered,
                    summary.abandoned,
                    summary.refused,
                    summary.occupancy * 100.0,
                    if summary.paused { " (paused)" } else { "" }
                );
            }
            Ok(0)
        }
        Cmd::Pause { name } => {
            store
                .set_state(&name, CampaignState::Paused, now_ms())
                .await?;
            println!("paused {name}");
            Ok(0)
        }
        Cmd::Status { name, json } => {
            let s = store.status(&name, now_ms()).await?;
            if json {
                crate::commands::print_json(&s)?;
            } else {
                let r = &s.refused;
                println!(
                    "{} ({:?}): placed {} answered {} abandoned {} (rate {:.1}%), contacts {}/{} done",
                    s.name,
                    s.state,
                    s.placed,
                    s.answered,
                    s.abandoned,
                    s.abandon_rate * 100.0,
                    s.contacts_done,
                    s.contacts
                );
                println!(
                    "refused: blacklist {} no_consent {} outside_hours {} caller_id {} invalid_number {} attempts {}",
                    r.blacklist, r.no_consent, r.outside_hours, r.caller_id, r.invalid_number, r.attempts
                );
                if let Some(occ) = s.stats.as_ref().and_then(|v| v["occupancy"].as_f64()) {
                    println!("agent occupancy {:.0}%", occ * 100.0);
                }
                let hourly: Vec<String> = s
                    .attempts_by_hour
                    .iter()
                    .zip(&s.answer_rate_by_hour)
                    .enumerate()
                    .filter(|(_, (&n, _))| n > 0)
                    .map(|(h, (n, r))| format!("{h:02}h {:.0}% ({n})", r * 100.0))
                    .collect();
                if !hourly.is_empty() {
                    println!(
                        "learned answer rate by local hour (dials): {}",
                        hourly.join(", ")
                    );
                }
            }
            Ok(0)
        }
        Cmd::ConsentImport { file, json } => {
            let f = std::fs::File::open(&file)
                .with_context(|| format!("cannot open {}", file.display()))?;
            let consents = Consents::open(app.db.pool().clone()).await?;
            let report = consents.import_csv(f, chrono::Utc::now()).await?;
            if json {
                crate::commands::print_json(&report)?;
            } else {
                println!("imported {} consent records", report.imported);
                for e in &report.errors {
                    eprintln!("skipped {e}");
                }
            }
            Ok(if report.errors.is_empty() { 0 } else { 1 })
        }
    }
}
