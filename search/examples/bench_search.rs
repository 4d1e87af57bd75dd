//! Runs the search benchmark outside the `callqa` binary:
//! `cargo run --release -p callqa-search --example bench_search -- [CALLS] [--no-postgres]`.
//! Prints the report as JSON on stdout; progress goes to stderr.

use callqa_search::bench::{run, BenchOptions};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn,tantivy=warn".into()),
        )
        .init();
    let mut opts = BenchOptions::default();
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--no-postgres" => opts.postgres_url = None,
            "--no-default" => opts.compare_default_tokenizer = false,
            n => opts.calls = n.parse()?,
        }
    }
    let report = run(opts).await?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
