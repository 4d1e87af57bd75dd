//! `callqa serve`: the workers in-process plus the web UI and API.

use crate::app::App;
use crate::config::Config;
use anyhow::Result;
use callqa_ingest::queue::Stage;
use std::path::Path;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    /// Don't run queue workers in this process.
    #[arg(long)]
    no_workers: bool,
}

pub async fn run(cfg: Config, data_dir: &Path, a: Args) -> Result<i32> {
    let app = App::open(cfg, data_dir).await?;
    let stop = crate::commands::worker::shutdown_signal();
    let workers = (!a.no_workers).then(|| {
        let (app, stop) = (app.clone(), stop.clone());
        tokio::spawn(async move { crate::pipeline::run_workers(app, &Stage::ALL, stop).await })
    });
    crate::web::serve(app, &a.listen, stop).await?;
    if let Some(w) = workers {
        w.await??;
    }
    Ok(0)
}
