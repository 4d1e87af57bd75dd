//! `callqa worker`: consume the queue until SIGINT/SIGTERM; in-flight jobs are finished
//! or left unacknowledged for another worker.

use crate::app::App;
use crate::config::Config;
use anyhow::Result;
use callqa_ingest::queue::Stage;
use std::path::Path;

#[derive(clap::Args)]
pub struct Args {
    /// Stages to run (comma-separated): transcribe, score, index.
    #[arg(long, value_delimiter = ',', default_values = ["transcribe", "score", "index"])]
    stages: Vec<String>,
}

pub fn parse_stages(names: &[String]) -> Result<Vec<Stage>> {
    names
        .iter()
        .map(|n| match n.as_str() {
            "transcribe" => Ok(Stage::Transcribe),
            "score" => Ok(Stage::Score),
            "index" => Ok(Stage::Index),
            other => anyhow::bail!("unknown stage {other:?} (use transcribe, score, index)"),
        })
        .collect()
}

pub async fn run(cfg: Config, data_dir: &Path, a: Args) -> Result<i32> {
    let stages = parse_stages(&a.stages)?;
    let app = App::open(cfg, data_dir).await?;
    let stop = shutdown_signal();
    tracing::info!(?stages, "worker started");
    crate::pipeline::run_workers(app, &stages, stop).await?;
    tracing::info!("worker stopped");
    Ok(0)
}

/// A receiver that turns true on SIGINT or SIGTERM.
pub fn shutdown_signal() -> tokio::sync::watch::Receiver<bool> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(t) => t,
                    Err(_) => {
                        let _ = ctrl_c.await;
                        let _ = tx.send(true);
                        return;
                    }
                };
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("shutting down");
        let _ = tx.send(true);
    });
    rx
}
