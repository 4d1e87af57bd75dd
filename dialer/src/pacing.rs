//! Pacing: how many calls to have in flight. Progressive dials one call per free agent;
//! predictive dials ahead from the measured answer rate, never past the abandon budget.
//! Simulated agents ([`AgentPool`]): an answered call takes a free agent for its talk time, or
//! is abandoned when none frees up within the 2-second grace. Real agents are in `agents`.

use std::collections::VecDeque;

use crate::campaign::PacingMode;

/// An answered call must reach an agent within this long or it counts as abandoned.
pub const ABANDON_GRACE_MS: i64 = 2_000;

/// Simulated agents as a timeline of when each one is next free (epoch milliseconds).
#[derive(Debug, Clone)]
pub struct AgentPool {
    free_at: Vec<i64>,
    started_ms: i64,
    busy_ms: i64,
}

impl AgentPool {
    pub fn new(agents: u32, now_ms: i64) -> Self {
        Self {
            free_at: vec![now_ms; agents.max(1) as usize],
            started_ms: now_ms,
            busy_ms: 0,
        }
    }

    pub fn agents(&self) -> usize {
        self.free_at.len()
    }

    /// Agents free at `t_ms`.
    pub fn free_by(&self, t_ms: i64) -> usize {
        self.free_at.iter().filter(|&&f| f <= t_ms).count()
    }

    /// Connects a call answered at `answered_ms` to the agent that frees up first; returns the
    /// customer's wait, or `None` (abandoned) when no agent frees up within the grace.
    pub fn connect(&mut self, answered_ms: i64, talk_ms: i64) -> Option<i64> {
        let (idx, free) = self
            .free_at
            .iter()
            .copied()
            .enumerate()
            .min_by_key(|&(_, f)| f)?;
        let start = free.max(answered_ms);
        let wait = start - answered_ms;
        if wait > ABANDON_GRACE_MS {
            return None;
        }
        self.free_at[idx] = start + talk_ms.max(0);
        self.busy_ms += talk_ms.max(0);
        Some(wait)
    }

    /// Share of agent time spent talking since the pool started, in [0, 1].
    pub fn occupancy(&self, now_ms: i64) -> f64 {
        // Talk booked past `now` is not yet worked; count only what has elapsed.
        let ahead: i64 = self.free_at.iter().map(|&f| (f - now_ms).max(0)).sum();
        let span = (now_ms - self.started_ms).max(1) * self.free_at.len() as i64;
        ((self.busy_ms - ahead).max(0) as f64 / span as f64).clamp(0.0, 1.0)
    }
}

/// Answered and abandoned calls inside the rolling window, oldest first.
#[derive(Debug, Clone)]
pub struct AbandonWindow {
    window_ms: i64,
    /// (answered at, abandoned)
    events: VecDeque<(i64, bool)>,
}

impl AbandonWindow {
    pub fn new(window_ms: i64) -> Self {
        Self {
            window_ms,
            events: VecDeque::new(),
        }
    }

    /// Seeds or feeds one answered call.
    pub fn push(&mut self, answered_ms: i64, abandoned: bool) {
        let pos = self
            .events
            .iter()
            .rposition(|&(t, _)| t <= answered_ms)
            .map_or(0, |p| p + 1);
        self.events.insert(pos, (answered_ms, abandoned));
    }

    fn trim(&mut self, now_ms: i64) {
        while self
            .events
            .front()
            .is_some_and(|&(t, _)| t < now_ms - self.window_ms)
        {
            self.events.pop_front();
        }
    }

    /// (answered, abandoned) in the window ending at `now_ms`.
    pub fn counts(&mut self, now_ms: i64) -> (u64, u64) {
        self.trim(now_ms);
        let answered = self.events.len() as u64;
        let abandoned = self.events.iter().filter(|e| e.1).count() as u64;
        (answered, abandoned)
    }
}

/// Decides how many new calls to place.
#[derive(Debug, Clone)]
pub struct Pacer {
    pub mode: PacingMode,
    pub cap: f64,
    finished: u64,
    answered: u64,
    /// Shortest INVITE-to-answer time seen: no call placed now can be answered sooner.
    min_setup_ms: Option<i64>,
}

impl Pacer {
    pub fn new(mode: PacingMode, cap: f64) -> Self {
        Self {
            mode,
            cap,
            finished: 0,
            answered: 0,
            min_setup_ms: None,
        }
    }

    /// Feeds one finished (not refused) dial.
    pub fn observe(&mut self, answered: bool, setup_ms: i64) {
        self.finished += 1;
        if answered {
            self.answered += 1;
            self.min_setup_ms = Some(self.min_setup_ms.map_or(setup_ms, |m| m.min(setup_ms)));
        }
    }

    /// Smoothed answer rate (Laplace), so an unknown list starts at one half.
    pub fn answer_rate(&self) -> f64 {
        (self.answered as f64 + 1.0) / (self.finished as f64 + 2.0)
    }

    /// How far ahead the free-agent count may look: an agent free by the earliest possible
    /// answer of a call placed now is as good as free.
    pub fn lookahead_ms(&self) -> i64 {
        match self.mode {
            PacingMode::Progressive => 0,
            PacingMode::Predictive => self.min_setup_ms.unwrap_or(0),
        }
    }

    /// New calls to place now.
    ///
    /// `free` agents (counted with [`Pacer::lookahead_ms`]), `in_flight` calls not yet ended,
    /// and the window's `answered`/`abandoned` counts. Predictive mode wants `free / p` lines
    /// for answer rate `p`, but dials past the free agents only as far as the abandon budget
    /// allows: even if every extra line is answered and abandoned, the window's rate stays
    /// at or below the cap, i.e. `(abandoned + k) / (answered + k) <= cap`.
    pub fn to_dial(&self, free: usize, in_flight: usize, answered: u64, abandoned: u64) -> usize {
        let base = free;
        let lines = match self.mode {
            PacingMode::Progressive => base,
            PacingMode::Predictive => {
                if base == 0 {
                    // No agent is coming free: any extra line is a bet on a long wait.
                    0
                } else {
                    let wanted = (base as f64 / self.answer_rate()).ceil() as usize;
                    let budget = ((self.cap * answered as f64 - abandoned as f64)
                        / (1.0 - self.cap))
                        .floor()
                        .max(0.0) as usize;
                    base + wanted.saturating_sub(base).min(budget)
                }
            }
        };
        lines.saturating_sub(in_flight)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agents_take_calls_within_grace_or_abandon() {
        let mut pool = AgentPool::new(1, 0);
        assert_eq!(pool.connect(1_000, 5_000), Some(0));
        assert_eq!(pool.free_by(5_999), 0);
        assert_eq!(pool.free_by(6_000), 1);
        // Agent frees at 6000: a call answered at 4500 waits 1.5 s.
        assert_eq!(pool.connect(4_500, 1_000), Some(1_500));
        // Free at 7000 now; answered at 4900 would wait 2.1 s: abandoned.
        assert_eq!(pool.connect(4_900, 1_000), None);
        let occ = pool.occupancy(10_000);
        assert!((occ - 0.6).abs() < 1e-9, "{occ}");
        // Booked talk past `now` is not counted yet.
        assert!((pool.occupancy(5_000) - 0.8).abs() < 1e-9);
    }

    #[test]
    fn window_forgets_old_calls() {
        let mut w = AbandonWindow::new(1_000);
        w.push(100, true);
        w.push(900, false);
        w.push(500, false);
        assert_eq!(w.counts(1_000), (3, 1));
        assert_eq!(w.counts(1_200), (2, 0));
    }

    #[test]
    fn progressive_is_one_call_per_free_agent() {
        let p = Pacer::new(PacingMode::Progressive, 0.03);
        assert_eq!(p.to_dial(3, 1, 0, 0), 2);
        assert_eq!(p.to_dial(1, 2, 0, 0), 0);
    }

    #[test]
    fn predictive_overdials_only_within_the_budget() {
        let mut p = Pacer::new(PacingMode::Predictive, 0.05);
        for i in 0..100 {
            p.observe(i % 4 == 0, 400);
        }
        // p ~ 0.26: 2 free agents want 8 lines, but no answers yet means no budget.
        assert_eq!(p.to_dial(2, 0, 0, 0), 2);
        // 100 answered, 0 abandoned: budget floor(5 / 0.95) = 5 extra lines.
        assert_eq!(p.to_dial(2, 0, 100, 0), 7);
        // 3 already abandoned: floor(2 / 0.95) = 2 extra.
        assert_eq!(p.to_dial(2, 1, 100, 3), 3);
        // At the cap: progressive behaviour.
        assert_eq!(p.to_dial(2, 0, 100, 5), 2);
        assert_eq!(p.to_dial(0, 0, 100, 0), 0);
        assert_eq!(p.lookahead_ms(), 400);
    }

    #[test]
    fn budget_holds_the_cap_in_the_worst_case() {
        let cap = 0.03;
        let p = Pacer::new(PacingMode::Predictive, cap);
        for answered in [0u64, 10, 33, 34, 100, 1_000] {
            for abandoned in 0..=(answered / 20) {
                let extra = p.to_dial(1, 0, answered, abandoned).saturating_sub(1) as u64;
                if extra > 0 {
                    let worst = (abandoned + extra) as f64 / (answered + extra) as f64;
                    assert!(worst <= cap + 1e-12, "{answered}/{abandoned}: {worst}");
                }
            }
        }
    }
}
