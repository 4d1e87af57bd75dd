//! Runs a campaign in the foreground: paces dials (in best-time order when the campaign asks,
//! see `best_time`), runs every compliance gate before each one, stores attempts and refusals,
//! retries by the campaign's rules, and stores and queues the recording of every answered call.
//! Stops when every contact is done or the state is paused.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use callqa_ingest::db::Db;
use callqa_ingest::queue::JobQueue;
use callqa_ingest::storage::recording_key;
use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::agents::{AgentDesk, Agents};
use crate::best_time::{self, AnswerModel, PastAttempt};
use crate::booking::CallBook;
use crate::call::{CallReport, DialRequest, Outcome};
use crate::campaign::{CampaignConfig, CampaignError, CampaignKind};
use crate::campaign_store::{AttemptRow, CampaignState, CampaignStore, ContactRow};
use crate::compliance::{self, ComplianceContext, ComplianceLookup, Refusal, RefusalKind};
use crate::config::{CallingHours, DialerConfig};
use crate::consent::Consents;
use crate::error::DialerError;
use crate::number;
use crate::pacing::{AbandonWindow, AgentPool, Pacer};
use crate::recording::RecordingStore;
use crate::routing::{dial_routed, dial_routed_with_agents, TrunkRouter};

/// How the runner polls and when it gives up waiting.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// How often the campaign state is re-read (a `pause` from another process).
    pub poll: Duration,
    /// Return once nothing is due and nothing is in flight, instead of waiting for retries
    /// and calling windows to come round.
    pub exit_when_idle: bool,
    /// Where recordings wait when object storage is unreachable.
    pub spool_dir: PathBuf,
}

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RunSummary {
    pub placed: u64,
    pub answered: u64,
    pub abandoned: u64,
    pub refused: u64,
    /// Most calls in flight at once.
    pub max_in_flight: usize,
    /// Agents' talk share of the run, in [0, 1] (real agents: time bridged).
    pub occupancy: f64,
    pub answer_rate: f64,
    pub paused: bool,
}

/// Everything a campaign run touches.
pub struct Runner {
    pub dialer: DialerConfig,
    pub store: CampaignStore,
    pub consents: Consents,
    pub blacklist: callqa_qa::Blacklist,
    pub db: Db,
    pub queue: Arc<dyn JobQueue>,
    pub objects: RecordingStore,
    pub options: RunOptions,
}

/// Blacklist and consent answers fetched before the (synchronous) gate runs.
struct Prefetched {
    blacklisted: Option<String>,
    consent: bool,
}

impl ComplianceLookup for Prefetched {
    fn blacklisted(&self, _number: &str) -> Option<String> {
        self.blacklisted.clone()
    }
    fn consent(&self, _number: &str, _scope: &str) -> bool {
        self.consent
    }
}

struct Finished {
    idx: usize,
    placed_ms: i64,
    call_id: String,
    result: Result<CallReport, DialerError>,
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// The contract's name of an outcome.
pub fn outcome_name(o: Outcome) -> &'static str {
    match o {
        Outcome::Answered => "answered",
        Outcome::Busy => "busy",
        Outcome::NoAnswer => "no_answer",
        Outcome::Rejected => "rejected",
        Outcome::Failed => "failed",
        Outcome::Refused => "refused",
    }
}

/// Shortest wait before a contact refused for the calling window is checked again.
const OUTSIDE_HOURS_RECHECK_MS: i64 = 10 * 60_000;

/// Reason `dial_routed` gives when every trunk is at its concurrency limit.
const NO_TRUNK_FREE: &str = "no trunk free";

impl Runner {
    /// Runs campaign `name` until every contact is done, it is paused, or (with
    /// `exit_when_idle`) nothing is left to do now.
    pub async fn run(&self, name: &str) -> Result<RunSummary, CampaignError> {
        let cfg = self.store.config(name).await?;
        for w in cfg.check_against(&self.dialer)? {
            tracing::warn!(campaign = %name, "{w}");
        }
        self.recover_orphans().await;
        let dcfg = Arc::new(cfg.dialer_config(&self.dialer));
        let hours = dcfg.calling_hours()?;
        let router = TrunkRouter::new(&dcfg.trunks);
        let window_ms = cfg.window()?.as_millis() as i64;
        let start_ms = ms(Utc::now());
        if self.store.state(name).await? == CampaignState::Done {
            return Ok(RunSummary::default());
        }
        self.store
            .set_state(name, CampaignState::Running, start_ms)
            .await?;

        let mut contacts = self.store.open_contacts(name).await?;
        let mut busy = vec![false; contacts.len()];
        let mut pool = match cfg.agent_endpoints() {
            Ok(eps) if !eps.is_empty() => Agents::Real(AgentDesk::new(eps, cfg.agent_auth.clone())),
            Ok(_) => Agents::Simulated(AgentPool::new(cfg.agents, start_ms)),
            Err(reason) => {
                return Err(CampaignError::Invalid {
                    name: name.to_string(),
                    reason,
                })
            }
        };
        let mut window = AbandonWindow::new(window_ms);
        for (at, abandoned) in self
            .store
            .answered_since(name, start_ms - window_ms)
            .await?
        {
            window.push(at, abandoned);
        }
        let mut pacer = Pacer::new(cfg.mode, cfg.abandon_cap);
        // Learned once from the stored dials, then fed each dial this run places.
        let mut model = if cfg.best_time {
            Some(AnswerModel::learn(&self.store.attempt_history(name).await?))
        } else {
            None
        };
        let mut summary = RunSummary::default();
        let (tx, mut rx) = mpsc::channel::<Finished>(64);
        let mut in_flight = 0usize;
        let mut rotation = 0usize;
        let mut last_poll = tokio::time::Instant::now();
        let mut fatal: Option<CampaignError> = None;

        loop {
            if last_poll.elapsed() >= self.options.poll {
                last_poll = tokio::time::Instant::now();
                if self.store.state(name).await? == CampaignState::Paused {
                    summary.paused = true;
                }
                self.save_stats(name, &cfg, &pool, &pacer, &mut window, &summary)
                    .await?;
            }
            let dialing = !summary.paused && fatal.is_none();
            if dialing {
                let now = Utc::now();
                let now_ms = ms(now);
                let free = pool.free_by(now_ms + pacer.lookahead_ms());
                let (answered, abandoned) = window.counts(now_ms);
                let unconnected = in_flight.saturating_sub(pool.holding());
                let mut lines = pacer.to_dial(free, unconnected, answered, abandoned);
                let due: Vec<usize> = if lines == 0 {
                    Vec::new()
                } else {
                    (0..contacts.len())
                        .filter(|&i| !busy[i] && !contacts[i].done && contacts[i].next_at <= now_ms)
                        .collect()
                };
                let order = match &model {
                    Some(m) => best_time::dial_order(&contacts, &due, m, now),
                    None => due,
                };
                for idx in order {
                    if lines == 0 {
                        break;
                    }
                    if let Some(at) = model
                        .as_ref()
                        .and_then(|m| best_time::defer_until(&contacts[idx], m, hours, now))
                    {
                        tracing::debug!(campaign = %name, number = %contacts[idx].number, until_ms = at, "held for a better hour");
                        contacts[idx].next_at = at;
                        self.store.update_contact(&contacts[idx]).await?;
                        continue;
                    }
                    let caller_id = contacts[idx]
                        .caller_id
                        .clone()
                        .or_else(|| {
                            (!cfg.caller_ids.is_empty()).then(|| {
                                rotation += 1;
                                cfg.caller_ids[(rotation - 1) % cfg.caller_ids.len()].clone()
                            })
                        })
                        .or_else(|| dcfg.caller_ids.first().cloned())
                        .unwrap_or_default();
                    match self
                        .gate(&cfg, &dcfg, hours, &contacts[idx], &caller_id, now)
                        .await?
                    {
                        Err(refusal) => {
                            summary.refused += 1;
                            self.refuse(&cfg, &mut contacts[idx], &refusal, now_ms)
                                .await?;
                        }
                        Ok(e164) => {
                            lines -= 1;
                            busy[idx] = true;
                            in_flight += 1;
                            summary.max_in_flight = summary.max_in_flight.max(in_flight);
                            self.spawn_dial(
                                idx,
                                e164,
                                caller_id,
                                &cfg,
                                &dcfg,
                                &router,
                                pool.desk(),
                                tx.clone(),
                            );
                        }
                    }
                }
            }
            let now_ms = ms(Utc::now());
            let open = contacts.iter().any(|c| !c.done);
            let due = contacts
                .iter()
                .enumerate()
                .any(|(i, c)| !c.done && !busy[i] && c.next_at <= now_ms);
            if in_flight == 0 && (!dialing || !open || (self.options.exit_when_idle && !due)) {
                break;
            }
            let next = tokio::time::sleep(Duration::from_millis(50));
            tokio::select! {
                Some(f) = rx.recv() => {
                    in_flight -= 1;
                    busy[f.idx] = false;
                    if let Err(e) = self
                        .finish(f, &cfg, &mut contacts, &mut pool, &mut window, &mut pacer, &mut summary, model.as_mut())
                        .await
                    {
                        tracing::error!(campaign = %name, error = %e, "stopping the campaign");
                        fatal.get_or_insert(e);
                    }
                }
                _ = next => {}
            }
        }

        let end_ms = ms(Utc::now());
        summary.occupancy = pool.occupancy(end_ms);
        summary.answer_rate = pacer.answer_rate();
        self.save_stats(name, &cfg, &pool, &pacer, &mut window, &summary)
            .await?;
        let state = if summary.paused {
            CampaignState::Paused
        } else if contacts.iter().all(|c| c.done) {
            CampaignState::Done
        } else {
            CampaignState::Loaded
        };
        self.store.set_state(name, state, end_ms).await?;
        match fatal {
            Some(e) => Err(e),
            None => Ok(summary),
        }
    }

    /// Every gate for one contact: blacklist and consent are looked up first because the
    /// gate itself is synchronous; a contact's own time zone narrows the window further.
    async fn gate(
        &self,
        cfg: &CampaignConfig,
        dcfg: &DialerConfig,
        hours: CallingHours,
        c: &ContactRow,
        caller_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Result<String, Refusal>, CampaignError> {
        let scope = (cfg.kind == CampaignKind::Marketing).then_some(cfg.consent_scope.as_str());
        let mut lookup = Prefetched {
            blacklisted: None,
            consent: false,
        };
        if let Ok(n) = number::normalize(&c.number) {
            lookup.blacklisted = self
                .blacklist
                .is_blocked(&n, now)
                .await?
                .map(|e| format!("{} ({})", e.reason, e.source.as_str()));
            if let Some(scope) = scope {
                lookup.consent = self.consents.has_consent(&n, scope, now).await?;
            }
        }
        let verdict = compliance::check(&ComplianceContext {
            number: &c.number,
            caller_id,
            registered_caller_ids: &dcfg.caller_ids,
            calling_hours: hours,
            now,
            consent_scope: scope,
            attempts: c.attempts.max(0) as u32,
            max_attempts: cfg.max_attempts,
            lookup: &lookup,
        });
        let Ok(e164) = verdict else {
            return Ok(verdict);
        };
        if let Some(tz) = c
            .timezone
            .as_deref()
            .and_then(|t| t.parse::<chrono_tz::Tz>().ok())
        {
            let local = now.with_timezone(&tz);
            if !hours.contains(local.time()) {
                return Ok(Err(Refusal {
                    kind: RefusalKind::OutsideHours,
                    reason: format!(
                        "{} local time ({tz}) is outside calling hours {}-{}",
                        local.format("%H:%M"),
                        hours.start.format("%H:%M"),
                        hours.end.format("%H:%M")
                    ),
                }));
            }
        }
        Ok(Ok(e164))
    }

    /// Stores a refusal; the calling window is retried later, every other rule ends the contact.
    async fn refuse(
        &self,
        cfg: &CampaignConfig,
        c: &mut ContactRow,
        refusal: &Refusal,
        now_ms: i64,
    ) -> Result<(), CampaignError> {
        tracing::info!(campaign = %cfg.name, number = %c.number, kind = ?refusal.kind, reason = %refusal.reason, "dial refused");
        self.store
            .record_refusal(&cfg.name, &c.number, refusal.kind, &refusal.reason, now_ms)
            .await?;
        c.last_outcome = Some(format!("refused: {}", refusal.reason));
        if refusal.kind == RefusalKind::OutsideHours {
            // Windows open on the hour or so: look again after the retry spacing, but not in
            // a tight loop when the spacing is zero.
            c.next_at = now_ms + spacing_ms(cfg).max(OUTSIDE_HOURS_RECHECK_MS);
        } else {
            c.done = true;
            c.invalid = refusal.kind == RefusalKind::InvalidNumber;
        }
        self.store.update_contact(c).await
    }

    #[allow(clippy::too_many_arguments)]
    fn spawn_dial(
        &self,
        idx: usize,
        e164: String,
        caller_id: String,
        cfg: &CampaignConfig,
        dcfg: &Arc<DialerConfig>,
        router: &TrunkRouter,
        desk: Option<&AgentDesk>,
        tx: mpsc::Sender<Finished>,
    ) {
        let call_id = uuid_like();
        let now = Utc::now();
        let req = DialRequest {
            number: e164,
            trunk: String::new(),
            caller_id: Some(caller_id),
            play: cfg.prompt.clone(),
            call_id: call_id.clone(),
            recording_key: recording_key(&call_id, now.date_naive(), "wav"),
            campaign: Some(cfg.name.clone()),
        };
        let dcfg = dcfg.clone();
        let router = router.clone();
        let objects = self.objects.clone();
        let spool = self.options.spool_dir.clone();
        let desk = desk.cloned();
        tokio::spawn(async move {
            // The dial runs as its own task so that a panic in it still reports back: the run
            // loop counts calls in flight and would otherwise wait for this one forever.
            let dial = tokio::spawn(async move {
                match desk {
                    Some(desk) => {
                        dial_routed_with_agents(&dcfg, &router, req, &desk, objects, &spool).await
                    }
                    None => dial_routed(&dcfg, &router, req, objects, &spool).await,
                }
            });
            let result = dial.await.unwrap_or_else(|e| {
                tracing::error!(%call_id, error = %e, "dial task failed");
                Err(DialerError::CallTask {
                    call_id: call_id.clone(),
                    reason: e.to_string(),
                })
            });
            let _ = tx
                .send(Finished {
                    idx,
                    placed_ms: ms(now),
                    call_id,
                    result,
                })
                .await;
        });
    }

    /// Books a finished dial: agent, abandon window, attempt row, contact, call row and job.
    #[allow(clippy::too_many_arguments)]
    async fn finish(
        &self,
        f: Finished,
        cfg: &CampaignConfig,
        contacts: &mut [ContactRow],
        pool: &mut Agents,
        window: &mut AbandonWindow,
        pacer: &mut Pacer,
        summary: &mut RunSummary,
        model: Option<&mut AnswerModel>,
    ) -> Result<(), CampaignError> {
        let now_ms = ms(Utc::now());
        let c = &mut contacts[f.idx];
        let report = match f.result {
            Ok(r) => r,
            Err(
                e @ (DialerError::Prompt { .. }
                | DialerError::UnknownTrunk { .. }
                | DialerError::TrunkAddress { .. }),
            ) => {
                // Configuration, not the callee: every further dial would fail the same way.
                return Err(e.into());
            }
            Err(e) => {
                tracing::warn!(call_id = %f.call_id, error = %e, "dial failed");
                c.next_at = now_ms + spacing_ms(cfg);
                c.last_outcome = Some(format!("failed: {e}"));
                return self.store.update_contact(c).await;
            }
        };
        if report.trunk_failure && report.reason == NO_TRUNK_FREE {
            // Nothing was sent: not an attempt.
            c.next_at = now_ms + 1_000;
            return Ok(());
        }
        let answered = report.outcome == Outcome::Answered;
        pacer.observe(answered, report.setup_ms as i64);
        summary.placed += 1;
        let mut abandoned = false;
        let mut wait = None;
        if let Some(at) = report.answered_at.filter(|_| answered) {
            summary.answered += 1;
            match (pool, &report.agent) {
                // Real agents: what happened on the call.
                (Agents::Real(_), Some(a)) => {
                    wait = a.wait_ms.map(|w| w as i64);
                    abandoned = a.abandoned;
                }
                (Agents::Real(_), None) => {
                    tracing::warn!(call_id = %f.call_id, "agent campaign call without an agent leg");
                }
                (Agents::Simulated(pool), _) => {
                    let talk = if cfg.talk_time_ms > 0 {
                        cfg.talk_time_ms as i64
                    } else {
                        report.duration_ms as i64
                    };
                    wait = pool.connect(ms(at), talk);
                    abandoned = wait.is_none();
                }
            }
            if abandoned {
                summary.abandoned += 1;
                tracing::info!(call_id = %f.call_id, "abandoned: no agent within 2 s; the prompt played");
            }
            window.push(ms(at), abandoned);
            CallBook::new(self.db.clone(), self.queue.clone())
                .book_answered(&report, Some(cfg.name.clone()), &self.options.spool_dir)
                .await?;
        }
        self.store
            .record_attempt(&AttemptRow {
                call_id: f.call_id.clone(),
                campaign: cfg.name.clone(),
                number: report.number.clone(),
                trunk: report.trunk.clone(),
                outcome: outcome_name(report.outcome).to_string(),
                sip_code: report.sip_code.map(i64::from),
                reason: report.reason.clone(),
                placed_at: f.placed_ms,
                answered_at: report.answered_at.filter(|_| answered).map(ms),
                ended_at: ms(report.ended_at),
                abandoned,
                agent_wait_ms: wait,
            })
            .await?;
        if let Some(m) = model {
            m.observe(&PastAttempt {
                number: report.number.clone(),
                placed_at: f.placed_ms,
                answered,
                timezone: c.timezone.clone(),
                segment: c.segment.clone(),
            });
        }
        c.attempts += 1;
        c.last_attempt_at = Some(f.placed_ms);
        c.last_outcome = Some(outcome_name(report.outcome).to_string());
        if answered {
            c.done = true;
        } else if matches!(report.sip_code, Some(404 | 604)) {
            c.done = true;
            c.invalid = true;
        } else if c.attempts >= i64::from(cfg.max_attempts) {
            c.done = true;
        } else {
            c.next_at = now_ms + spacing_ms(cfg);
        }
        self.store.update_contact(c).await
    }

    /// Books the recordings of calls whose dialer died mid-call (see
    /// [`crate::recording::recover_orphans`]); workers upload them. A failure only delays them.
    async fn recover_orphans(&self) {
        let book = CallBook::new(self.db.clone(), self.queue.clone());
        match crate::recording::recover_orphans(&self.options.spool_dir, &book).await {
            Ok(ids) if !ids.is_empty() => {
                tracing::warn!(
                    calls = ids.len(),
                    "recovered recordings of calls cut off by a dialer crash"
                );
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "crash recovery of recordings failed; workers retry it")
            }
        }
    }

    async fn save_stats(
        &self,
        name: &str,
        cfg: &CampaignConfig,
        pool: &Agents,
        pacer: &Pacer,
        window: &mut AbandonWindow,
        summary: &RunSummary,
    ) -> Result<(), CampaignError> {
        let now_ms = ms(Utc::now());
        let (answered, abandoned) = window.counts(now_ms);
        let stats = serde_json::json!({
            "mode": cfg.mode,
            "agents": pool.count(),
            "occupancy": pool.occupancy(now_ms),
            "answer_rate": pacer.answer_rate(),
            "abandon_cap": cfg.abandon_cap,
            "abandon_window": cfg.abandon_window,
            "window_answered": answered,
            "window_abandoned": abandoned,
            "max_in_flight": summary.max_in_flight,
        });
        self.store.set_stats(name, &stats).await
    }
}

fn spacing_ms(cfg: &CampaignConfig) -> i64 {
    (cfg.retry_spacing_min.max(0.0) * 60_000.0) as i64
}

/// A time-ordered unique call id (milliseconds, then random bits), like the binary's UUIDv7.
fn uuid_like() -> String {
    format!(
        "{:012x}{:020x}",
        Utc::now().timestamp_millis(),
        rand::random::<u128>() >> 48
    )
}
