//! The background sweep of expired login sessions, started with the server: logout only
//! removes its own session, and most sessions simply run out.

use std::time::Duration;

use sqlx::AnyPool;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::auth::sweep_expired_sessions;

/// How often `serve` sweeps. Expired sessions are already refused at login checks, so
/// this only bounds how long their rows linger.
pub const SWEEP_EVERY: Duration = Duration::from_secs(600);

/// Sweeps expired sessions now and then every `every`, until `stop` turns true. A failed
/// sweep is logged and tried again at the next tick.
pub fn spawn_sweeper(
    pool: AnyPool,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Once nobody can send a stop, the sweep goes on for the life of the process.
        let mut can_stop = true;
        loop {
            if *stop.borrow_and_update() {
                return;
            }
            tokio::select! {
                _ = tick.tick() => {}
                changed = stop.changed(), if can_stop => {
                    can_stop = changed.is_ok();
                    continue;
                }
            }
            match sweep_expired_sessions(&pool).await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(sessions = n, "expired sessions swept"),
                Err(e) => {
                    tracing::warn!(error = %e, "expired sessions not swept; trying again later")
                }
            }
        }
    })
}
