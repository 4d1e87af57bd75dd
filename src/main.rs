//! `callqa`: the command-line entry point. A thin shell that wires the library crates
//! (ingest, search, qa, dialer, web) together; each subcommand lives in `commands/`.

mod app;
mod commands;
mod config;
mod pipeline;
mod qa;
mod web;

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "callqa",
    version,
    about = "Record, transcribe, search and score outbound calls"
)]
struct Cli {
    /// TOML configuration file (optional; CALLQA_<SECTION>_<KEY> variables override it).
    #[arg(long, global = true, env = "CALLQA_CONFIG")]
    config: Option<PathBuf>,
    /// Where local recordings, the SQLite database and the index live.
    #[arg(
        long,
        global = true,
        env = "CALLQA_DATA_DIR",
        default_value = "./callqa-data"
    )]
    data_dir: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Store and queue recordings for transcription.
    Ingest(commands::ingest::Args),
    /// Inspect calls.
    #[command(subcommand)]
    Calls(commands::calls::Cmd),
    /// Consume the job queue (transcribe, score, index).
    Worker(commands::worker::Args),
    /// Run the web UI / API with the workers in-process.
    Serve(commands::serve::Args),
    /// Get or convert whisper models.
    #[command(subcommand)]
    Model(commands::model::Cmd),
    /// Keyword search over transcripts.
    Search(commands::search::Args),
    /// Rebuild the search index from stored transcripts.
    Reindex,
    /// QA scoring.
    #[command(subcommand)]
    Qa(commands::qa::Cmd),
    /// QA and complaint reports.
    #[command(subcommand)]
    Report(commands::report::Cmd),
    /// The do-not-call list the dialer enforces.
    #[command(subcommand)]
    Blacklist(commands::blacklist::Cmd),
    /// Place one call through a SIP trunk, playing a prompt.
    Dial(commands::dial::Args),
    /// Dialing campaigns: load, start, pause, status.
    #[command(subcommand)]
    Campaign(commands::campaign::Cmd),
    /// Web/API users.
    #[command(subcommand)]
    User(commands::user::Cmd),
    /// Benchmarks.
    #[command(subcommand)]
    Bench(commands::bench::Cmd),
}

fn main() {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CALLQA_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,callqa=info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    // Before any thread starts: it sets OPENBLAS_CORETYPE for OpenBLAS to read.
    callqa_ingest::blas::select_kernels();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            1
        }
    };
    std::process::exit(code);
}

/// Runs a command; returns the process exit code.
async fn run(cli: Cli) -> Result<i32> {
    let cfg = config::Config::load(cli.config.as_deref())?;
    let dd = cli.data_dir;
    match cli.command {
        Command::Ingest(a) => commands::ingest::run(cfg, &dd, a).await,
        Command::Calls(c) => commands::calls::run(cfg, &dd, c).await,
        Command::Worker(a) => commands::worker::run(cfg, &dd, a).await,
        Command::Serve(a) => commands::serve::run(cfg, &dd, a).await,
        Command::Model(c) => commands::model::run(&dd, c).await,
        Command::Search(a) => commands::search::run(cfg, &dd, a).await,
        Command::Reindex => commands::search::reindex(cfg, &dd).await,
        Command::Qa(c) => commands::qa::run(cfg, &dd, c).await,
        Command::Report(c) => commands::report::run(cfg, &dd, c).await,
        Command::Blacklist(c) => commands::blacklist::run(cfg, &dd, c).await,
        Command::Dial(a) => commands::dial::run(cfg, &dd, a).await,
        Command::Campaign(c) => commands::campaign::run(cfg, &dd, c).await,
        Command::User(c) => commands::user::run(cfg, &dd, c).await,
        Command::Bench(c) => commands::bench::run(cfg, &dd, c).await,
    }
}
