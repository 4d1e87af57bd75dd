//! Campaign test harness: a SIPp UAS serving many calls with its message log (to count the
//! INVITEs that reached it), and a runner on a temporary SQLite database, embedded queue and
//! local object store.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use callqa_dialer::{
    CampaignStore, Consents, DialerConfig, RecordingStore, RunOptions, Runner, TrunkConfig,
};
use callqa_ingest::config::DatabaseConfig;
use callqa_ingest::db::Db;
use callqa_ingest::queue::{EmbeddedQueue, JobQueue};
use object_store::local::LocalFileSystem;
use object_store::ObjectStore;

use crate::support::free_udp_port;

const RINGING: &str = "SIP/2.0 180 Ringing\n[last_Via:]\n[last_From:]\n[last_To:];tag=[pid]SIPpTag01[call_number]\n[last_Call-ID:]\n[last_CSeq:]\nContent-Length: 0\n\n";
const OK_SDP: &str = "SIP/2.0 200 OK\n[last_Via:]\n[last_From:]\n[last_To:];tag=[pid]SIPpTag01[call_number]\n[last_Call-ID:]\n[last_CSeq:]\nContact: <sip:uas@[local_ip]:[local_port];transport=[transport]>\nContent-Type: application/sdp\nContent-Length: [len]\n\nv=0\no=sipp 53655765 2353687637 IN IP[local_ip_type] [local_ip]\ns=-\nc=IN IP[media_ip_type] [media_ip]\nt=0 0\nm=audio [media_port] RTP/AVP 0\na=rtpmap:0 PCMU/8000\n\n";
const OK_BYE: &str = "SIP/2.0 200 OK\n[last_Via:]\n[last_From:]\n[last_To:]\n[last_Call-ID:]\n[last_CSeq:]\nContent-Length: 0\n\n";
const UNAVAILABLE: &str = "SIP/2.0 480 Temporarily Unavailable\n[last_Via:]\n[last_From:]\n[last_To:];tag=[pid]SIPpTag01[call_number]\n[last_Call-ID:]\n[last_CSeq:]\nContent-Length: 0\n\n";

/// A UAS scenario that rings for `ring_ms`, then answers with probability `p_answer` (and
/// waits for our BYE) or answers 480 — SIPp draws the choice per call.
pub fn random_answer_scenario(p_answer: f64, ring_ms: u64) -> String {
    format!(
        r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="campaign uas">
  <recv request="INVITE"/>
  <send><![CDATA[
{RINGING}]]></send>
  <pause milliseconds="{ring_ms}"/>
  <nop><action>
    <sample assign_to="r" distribution="uniform" min="0" max="1"/>
    <test assign_to="reject" variable="r" compare="greater_than_equal" value="{p_answer}"/>
  </action></nop>
  <nop next="reject" test="reject"/>
  <send retrans="500"><![CDATA[
{OK_SDP}]]></send>
  <recv request="ACK" crlf="true"/>
  <recv request="BYE"/>
  <send next="done"><![CDATA[
{OK_BYE}]]></send>
  <label id="reject"/>
  <send><![CDATA[
{UNAVAILABLE}]]></send>
  <recv request="ACK"/>
  <label id="done"/>
</scenario>
"#
    )
}

/// SIPp as a UAS for any number of calls, logging every message it sees.
pub struct SippUas {
    child: Child,
    pub port: u16,
    messages: PathBuf,
}

impl SippUas {
    /// Starts SIPp on `scenario` (a file path).
    pub fn start(scenario: &Path, dir: &Path) -> Self {
        let port = free_udp_port();
        let messages = dir.join(format!("sipp-{port}-messages.log"));
        let child = Command::new("sipp")
            .current_dir(dir)
            .arg("-sf")
            .arg(scenario)
            .args(["-i", "127.0.0.1", "-mi", "127.0.0.1"])
            .args(["-p", &port.to_string(), "-mp", &(port + 2).to_string()])
            .args(["-nostdin", "-trace_msg", "-message_file"])
            .arg(&messages)
            .args(["-timeout", "150s"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sipp (apt-get install -y sip-tester)");
        assert!(
            super::support::wait_udp_bound(port, Duration::from_secs(10)),
            "SIPp did not bind UDP {port} within 10 s"
        );
        Self {
            child,
            port,
            messages,
        }
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The request URIs of every INVITE SIPp received (retransmissions included).
    pub fn invites(&self) -> Vec<String> {
        let log = std::fs::read_to_string(&self.messages).unwrap_or_default();
        log.lines()
            .filter_map(|l| l.strip_prefix("INVITE "))
            .map(|l| l.split_whitespace().next().unwrap_or("").to_string())
            .collect()
    }
}

impl Drop for SippUas {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A dialer config with one trunk.
pub fn dialer_config(address: &str) -> DialerConfig {
    DialerConfig {
        caller_ids: vec!["+861012345678".into()],
        calling_hours: "00:00-23:59".into(),
        trunks: vec![TrunkConfig {
            name: "sipp".into(),
            address: address.into(),
            max_concurrent: 50,
            username: None,
            password: None,
        }],
        ring_timeout_ms: 10_000,
        tail_ms: 300,
        max_duration_ms: 20_000,
        ..DialerConfig::default()
    }
}

/// The runner's world on temp storage.
pub struct World {
    pub db: Db,
    pub store: CampaignStore,
    pub consents: Consents,
    pub blacklist: callqa_qa::Blacklist,
    pub queue: Arc<dyn JobQueue>,
    pub objects: Arc<dyn ObjectStore>,
    pub dir: PathBuf,
}

impl World {
    pub async fn open(dir: &Path) -> Self {
        let db = Db::connect(&DatabaseConfig { url: None }, dir)
            .await
            .unwrap();
        callqa_qa::migrate(db.pool()).await.unwrap();
        let store = CampaignStore::open(db.pool().clone()).await.unwrap();
        let consents = Consents::open(db.pool().clone()).await.unwrap();
        let blacklist = callqa_qa::Blacklist::new(db.pool().clone());
        let queue: Arc<dyn JobQueue> = Arc::new(EmbeddedQueue::new(db.clone(), "test"));
        let objects_dir = dir.join("objects");
        std::fs::create_dir_all(&objects_dir).unwrap();
        let objects: Arc<dyn ObjectStore> =
            Arc::new(LocalFileSystem::new_with_prefix(&objects_dir).unwrap());
        Self {
            db,
            store,
            consents,
            blacklist,
            queue,
            objects,
            dir: dir.to_path_buf(),
        }
    }

    pub fn runner(&self, dialer: DialerConfig) -> Runner {
        self.runner_storing(dialer, self.objects.clone().into())
    }

    /// A runner whose recordings go to `objects` instead of the local store.
    pub fn runner_storing(&self, dialer: DialerConfig, objects: RecordingStore) -> Runner {
        Runner {
            dialer,
            store: self.store.clone(),
            consents: self.consents.clone(),
            blacklist: self.blacklist.clone(),
            db: self.db.clone(),
            queue: self.queue.clone(),
            objects,
            options: RunOptions {
                poll: Duration::from_millis(200),
                exit_when_idle: true,
                spool_dir: self.dir.join("spool"),
            },
        }
    }
}
