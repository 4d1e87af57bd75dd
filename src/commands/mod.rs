//! One module per `callqa` subcommand.

pub mod bench;
pub mod blacklist;
pub mod calls;
pub mod campaign;
pub mod dial;
pub mod ingest;
pub mod model;
pub mod qa;
pub mod report;
pub mod search;
pub mod serve;
pub mod user;
pub mod worker;

/// Prints one JSON value on its own line to stdout.
pub fn print_json(v: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string(v)?);
    Ok(())
}
