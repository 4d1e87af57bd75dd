//! Agents of a campaign: simulated ones (a timeline, see `pacing`) or real SIP endpoints, and
//! the desk that hands each answered call a free real agent and counts their talk time.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::pacing::AgentPool;

/// One agent's phone, as the campaign names it: `sip:agent1@127.0.0.1:5090`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentEndpoint {
    /// The URI as written: the agent leg's Request-URI.
    pub uri: String,
    /// The user part (`agent1`): the agent's name on call rows.
    pub name: String,
    /// `host:port` the INVITE is sent to (port 5060 when the URI has none).
    pub address: String,
}

impl AgentEndpoint {
    /// Reads `sip:user@host[:port][;params]`; the error says what is wrong with it.
    pub fn parse(uri: &str) -> Result<Self, String> {
        let uri = uri.trim();
        let rest = uri
            .get(..4)
            .filter(|s| s.eq_ignore_ascii_case("sip:"))
            .map(|_| &uri[4..])
            .ok_or_else(|| format!("agent endpoint {uri:?} must start with sip:"))?;
        let rest = rest.split([';', '?']).next().unwrap_or_default();
        let (user, hostport) = rest
            .split_once('@')
            .ok_or_else(|| format!("agent endpoint {uri:?} needs a user part (sip:agent1@host)"))?;
        if user.is_empty() || user.contains(':') {
            return Err(format!(
                "agent endpoint {uri:?}: the user part must be a plain name (credentials go in agent_auth)"
            ));
        }
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("agent endpoint {uri:?}: unclosed [ in the host"))?;
            (format!("[{host}]"), after.strip_prefix(':'))
        } else {
            match hostport.split_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (hostport.to_string(), None),
            }
        };
        if host.is_empty() || host == "[]" {
            return Err(format!("agent endpoint {uri:?} has no host"));
        }
        let port = match port {
            None => 5060,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|&p| p > 0)
                .ok_or_else(|| format!("agent endpoint {uri:?}: bad port {p:?}"))?,
        };
        Ok(Self {
            uri: uri.to_string(),
            name: user.to_string(),
            address: format!("{host}:{port}"),
        })
    }
}

/// Digest credentials for agent endpoints that challenge our INVITE.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentAuth {
    pub username: String,
    pub password: String,
}

/// The free agent to ring next: the one idle longest among the free ones not in `exclude`
/// (the agents this call already tried), so calls spread over the agents.
pub fn pick_free(busy: &[bool], idle_since: &[u64], exclude: &[usize]) -> Option<usize> {
    (0..busy.len())
        .filter(|&i| !busy[i] && !exclude.contains(&i))
        .min_by_key(|&i| (idle_since.get(i).copied().unwrap_or(0), i))
}

#[derive(Debug)]
struct DeskState {
    busy: Vec<bool>,
    /// Release order of each agent (0 = never taken).
    idle_since: Vec<u64>,
    releases: u64,
    /// When each agent's current bridge started.
    bridged_at: Vec<Option<Instant>>,
    /// Bridged time of calls already over.
    talked: Duration,
}

#[derive(Debug)]
struct DeskInner {
    endpoints: Vec<AgentEndpoint>,
    auth: Option<AgentAuth>,
    state: Mutex<DeskState>,
    freed: Notify,
    started: Instant,
}

/// Real agents shared by the calls of one campaign run: an agent is busy from the moment a
/// call rings it until its leg ends (failed, or hung up after the bridge).
#[derive(Debug, Clone)]
pub struct AgentDesk {
    inner: Arc<DeskInner>,
}

impl AgentDesk {
    pub fn new(endpoints: Vec<AgentEndpoint>, auth: Option<AgentAuth>) -> Self {
        let n = endpoints.len();
        Self {
            inner: Arc::new(DeskInner {
                endpoints,
                auth,
                state: Mutex::new(DeskState {
                    busy: vec![false; n],
                    idle_since: vec![0; n],
                    releases: 0,
                    bridged_at: vec![None; n],
                    talked: Duration::ZERO,
                }),
                freed: Notify::new(),
                started: Instant::now(),
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, DeskState> {
        // Plain counters: still usable after a panic elsewhere.
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub fn agents(&self) -> usize {
        self.inner.endpoints.len()
    }

    pub fn auth(&self) -> Option<&AgentAuth> {
        self.inner.auth.as_ref()
    }

    /// Agents neither ringing nor bridged now.
    pub fn free(&self) -> usize {
        self.state().busy.iter().filter(|b| !**b).count()
    }

    /// Takes a free agent not in `exclude`, if there is one now.
    pub fn try_take(&self, exclude: &[usize]) -> Option<AgentLease> {
        let mut s = self.state();
        let idx = pick_free(&s.busy, &s.idle_since, exclude)?;
        s.busy[idx] = true;
        Some(AgentLease {
            desk: self.clone(),
            idx,
        })
    }

    /// Takes a free agent not in `exclude`, waiting for one to free up; `None` once every
    /// agent is excluded.
    pub async fn take(&self, exclude: &[usize]) -> Option<AgentLease> {
        loop {
            if (0..self.agents()).all(|i| exclude.contains(&i)) {
                return None;
            }
            let freed = self.inner.freed.notified();
            tokio::pin!(freed);
            // Registered before looking, so a release in between is not missed.
            freed.as_mut().enable();
            if let Some(lease) = self.try_take(exclude) {
                return Some(lease);
            }
            freed.await;
        }
    }

    /// Share of agent time spent bridged since the desk opened, in [0, 1].
    pub fn occupancy(&self) -> f64 {
        let s = self.state();
        let now = Instant::now();
        let live: Duration = s.bridged_at.iter().flatten().map(|t| now - *t).sum();
        let span = now.duration_since(self.inner.started).as_secs_f64() * self.agents() as f64;
        if span <= 0.0 {
            return 0.0;
        }
        ((s.talked + live).as_secs_f64() / span).clamp(0.0, 1.0)
    }
}

/// One agent taken by one call; the agent is free again when the lease is dropped.
#[derive(Debug)]
pub struct AgentLease {
    desk: AgentDesk,
    idx: usize,
}

impl AgentLease {
    pub fn index(&self) -> usize {
        self.idx
    }

    pub fn endpoint(&self) -> &AgentEndpoint {
        &self.desk.inner.endpoints[self.idx]
    }

    pub fn auth(&self) -> Option<&AgentAuth> {
        self.desk.auth()
    }

    /// The agent answered: its talk time starts.
    pub fn bridged(&self) {
        self.desk.state().bridged_at[self.idx] = Some(Instant::now());
    }
}

impl Drop for AgentLease {
    fn drop(&mut self) {
        let mut s = self.desk.state();
        if let Some(at) = s.bridged_at[self.idx].take() {
            s.talked += at.elapsed();
        }
        s.busy[self.idx] = false;
        s.releases += 1;
        s.idle_since[self.idx] = s.releases;
        drop(s);
        self.desk.inner.freed.notify_waiters();
    }
}

/// A campaign's agents as pacing and booking see them.
#[derive(Debug, Clone)]
pub enum Agents {
    /// Agents simulated after the fact: each answered call is booked on a timeline.
    Simulated(AgentPool),
    /// Real endpoints: calls are bridged to them while they run.
    Real(AgentDesk),
}

impl Agents {
    pub fn count(&self) -> usize {
        match self {
            Self::Simulated(p) => p.agents(),
            Self::Real(d) => d.agents(),
        }
    }

    /// Agents free at `t_ms` (real agents: free now).
    pub fn free_by(&self, t_ms: i64) -> usize {
        match self {
            Self::Simulated(p) => p.free_by(t_ms),
            Self::Real(d) => d.free(),
        }
    }

    /// Calls in flight that already hold an agent (ringing or bridged), which pacing must not
    /// count twice: once as a busy agent and again as a line in flight.
    pub fn holding(&self) -> usize {
        match self {
            Self::Simulated(_) => 0,
            Self::Real(d) => d.agents() - d.free(),
        }
    }

    pub fn occupancy(&self, now_ms: i64) -> f64 {
        match self {
            Self::Simulated(p) => p.occupancy(now_ms),
            Self::Real(d) => d.occupancy(),
        }
    }

    pub fn desk(&self) -> Option<&AgentDesk> {
        match self {
            Self::Simulated(_) => None,
            Self::Real(d) => Some(d),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_or_say_what_is_wrong() {
        let e = AgentEndpoint::parse(" sip:agent1@127.0.0.1:5090;transport=udp ").unwrap();
        assert_eq!(e.name, "agent1");
        assert_eq!(e.address, "127.0.0.1:5090");
        assert_eq!(e.uri, "sip:agent1@127.0.0.1:5090;transport=udp");
        let e = AgentEndpoint::parse("SIP:bob@pbx.example.com").unwrap();
        assert_eq!(e.address, "pbx.example.com:5060");
        let e = AgentEndpoint::parse("sip:carol@[::1]:5070").unwrap();
        assert_eq!(e.address, "[::1]:5070");
        for bad in [
            "agent1@127.0.0.1",
            "sip:127.0.0.1:5090",
            "sip:@127.0.0.1",
            "sip:a:secret@127.0.0.1",
            "sip:a@",
            "sip:a@host:0",
            "sip:a@host:99999",
            "sip:a@[::1",
        ] {
            assert!(AgentEndpoint::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn picks_the_agent_idle_longest_skipping_busy_and_tried() {
        // Agent 1 freed first (1), agent 2 later (5), agent 0 never taken (0).
        let idle = [0, 1, 5];
        assert_eq!(pick_free(&[false, false, false], &idle, &[]), Some(0));
        assert_eq!(pick_free(&[true, false, false], &idle, &[]), Some(1));
        assert_eq!(pick_free(&[true, false, false], &idle, &[1]), Some(2));
        assert_eq!(pick_free(&[true, true, false], &idle, &[2]), None);
        assert_eq!(pick_free(&[], &[], &[]), None);
    }

    fn desk(n: usize) -> AgentDesk {
        let eps = (0..n)
            .map(|i| AgentEndpoint::parse(&format!("sip:a{i}@127.0.0.1:{}", 5090 + i)).unwrap())
            .collect();
        AgentDesk::new(eps, None)
    }

    #[test]
    fn leases_hold_agents_until_dropped_and_rotate() {
        let d = desk(2);
        let a = d.try_take(&[]).unwrap();
        assert_eq!(a.endpoint().name, "a0");
        assert_eq!(d.free(), 1);
        let b = d.try_take(&[]).unwrap();
        assert_eq!(b.endpoint().name, "a1");
        assert!(d.try_take(&[]).is_none());
        drop(a);
        drop(b);
        assert_eq!(d.free(), 2);
        // a0 was released first: it has waited longest.
        assert_eq!(d.try_take(&[]).unwrap().index(), 0);
        assert_eq!(d.try_take(&[0]).unwrap().index(), 1);
        let agents = Agents::Real(d.clone());
        let held = d.try_take(&[]).unwrap();
        assert_eq!((agents.free_by(0), agents.holding()), (1, 1));
        drop(held);
    }

    #[tokio::test]
    async fn take_waits_for_a_release_and_gives_up_when_all_were_tried() {
        let d = desk(1);
        let lease = d.try_take(&[]).unwrap();
        lease.bridged();
        let waiter = {
            let d = d.clone();
            tokio::spawn(async move { d.take(&[]).await.map(|l| l.index()) })
        };
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!waiter.is_finished());
        assert!(d.occupancy() > 0.5, "bridged agent counts as occupied");
        drop(lease);
        assert_eq!(waiter.await.unwrap(), Some(0));
        assert!(d.take(&[0]).await.is_none());
        assert!(d.occupancy() > 0.5 && d.occupancy() <= 1.0);
    }
}
