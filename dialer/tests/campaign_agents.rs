//! Agent campaigns with real agent phones: a customer (SIPp playing speech) is bridged to an
//! agent (baresip talking from a WAV), each hears the other, the stereo recording (streamed to
//! Garage) holds the agent on channel 0 and the customer on channel 1, and a hangup on one side
//! ends the other.
//! An agent who is busy abandons the call to the prompt, counted in the campaign's status.

mod campaign_support;
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use callqa_dialer::{wav, CampaignConfig, CampaignState, RecordingStore, RunSummary};
use campaign_support::*;
use chrono::Utc;
use object_store::ObjectStore;
use support::*;

const CUSTOMER_TEXT: &str = "I want a refund, otherwise I will file a complaint";
const AGENT_TEXT: &str = "I am sorry to hear that. Let me look at your order right away.";
/// Silence before the agent's words: the customer has finished talking by then.
const AGENT_DELAY_S: f64 = 4.0;
/// 50 ms envelope windows per second.
const WINDOWS_PER_S: f64 = 20.0;

/// `input` with `before` and `after` seconds of silence around it.
fn padded(input: &Path, before: f64, after: f64, out: &Path) -> PathBuf {
    let ok = Command::new("sox")
        .arg(input)
        .arg(out)
        .args(["pad", &before.to_string(), &after.to_string()])
        .status()
        .expect("sox missing: apt-get install -y sox");
    assert!(ok.success());
    out.to_path_buf()
}

fn samples(path: &Path) -> Vec<i16> {
    wav::parse(&std::fs::read(path).unwrap()).unwrap().samples
}

/// RMS of `v` between `from_s` and `to_s` seconds.
fn rms_between(v: &[i16], from_s: f64, to_s: f64) -> f64 {
    let at = |s: f64| ((s * 8000.0) as usize).min(v.len());
    rms(&v[at(from_s)..at(to_s)])
}

/// A campaign calling one customer, with `agent` (a SIP URI) as its only agent.
fn agent_campaign(name: &str, prompt: &Path, agent: &str) -> String {
    format!(
        r#"
name = "{name}"
trunk = "sipp"
max_attempts = 1
prompt = "{prompt}"
agent_endpoints = ["{agent}"]
contacts = [{{ number = "+8613800138000" }}]
"#,
        prompt = prompt.display(),
    )
}

/// Loads a one-contact campaign and runs it to the end, recording into `objects` (the local
/// store when `None`).
async fn run_campaign(
    world: &World,
    sipp: &str,
    toml: &str,
    objects: Option<RecordingStore>,
) -> RunSummary {
    let cfg = CampaignConfig::from_toml(toml, &world.dir).unwrap();
    world
        .store
        .load(&cfg, Utc::now().timestamp_millis())
        .await
        .unwrap();
    let mut dialer = dialer_config(sipp);
    dialer.tail_ms = 500;
    // Parts small enough that a bridged call streams several while it runs.
    dialer.part_size = 32 * 1024;
    let objects = objects.unwrap_or_else(|| world.objects.clone().into());
    world
        .runner_storing(dialer, objects)
        .run(&cfg.name)
        .await
        .unwrap()
}

/// The one call row and its stereo recording in `objects`, as (channel 0, channel 1).
async fn recorded_call(
    world: &World,
    objects: &dyn ObjectStore,
) -> (callqa_ingest::db::CallRow, Vec<i16>, Vec<i16>) {
    let calls = world.db.list_calls(None, 10).await.unwrap();
    assert_eq!(calls.len(), 1, "{calls:?}");
    let row = calls.into_iter().next().unwrap();
    let bytes = stored(objects, row.recording_key.as_str()).await;
    let pcm = wav::parse(&bytes).unwrap();
    assert_eq!((pcm.channels, pcm.sample_rate), (2, 8000));
    let ch0 = pcm.samples.iter().step_by(2).copied().collect();
    let ch1 = pcm.samples.iter().skip(1).step_by(2).copied().collect();
    (row, ch0, ch1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_is_bridged_to_a_baresip_agent_and_both_are_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let prompt = speech_wav(dir, "prompt", "Sorry, all our agents are busy.");
    let customer = speech_pcap(dir, CUSTOMER_TEXT);
    let customer_s = customer.len() as f64 / 8000.0;
    assert!(
        customer_s < AGENT_DELAY_S - 0.3,
        "customer speech {customer_s} s"
    );
    let words = speech_wav(dir, "agent_words", AGENT_TEXT);
    let words_s = samples(&words).len() as f64 / 8000.0;
    // Long enough that the agent is still on the line when the customer hangs up at 9 s.
    let agent_wav = padded(&words, AGENT_DELAY_S, 8.0, &dir.join("agent.wav"));
    let agent_src = samples(&agent_wav);

    let garage = callqa_tests::Garage::start().unwrap_or_else(|e| panic!("{e}"));
    let s3 = garage_s3(&garage);
    let store = RecordingStore::streaming(s3.clone());
    let agent = Baresip::agent(dir, "agent1", &agent_wav);
    let mut sipp = Sipp::uas("uas_play_then_hangup.xml", dir);
    let world = World::open(dir).await;
    let toml = agent_campaign("agents", &prompt, &agent.uri("agent1"));
    let summary = run_campaign(&world, &sipp.address(), &toml, Some(store)).await;
    assert_eq!((summary.answered, summary.abandoned), (1, 0), "{summary:?}");
    // The customer hung up: SIPp got 200 to its BYE, and the agent got our BYE.
    assert!(sipp.passed(Duration::from_secs(10)), "customer SIPp failed");
    // baresip logs a BYE it receives as the session closed by the peer.
    assert!(
        agent.wait_log(
            "session closed: Connection reset by peer",
            Duration::from_secs(5)
        ),
        "the agent got no BYE: {}",
        agent.log()
    );
    assert!(agent.log().contains("terminated"));
    let log = agent.log();
    assert!(log.contains("Set audio decoder: PCMA"), "{log}");

    let status = world
        .store
        .status("agents", Utc::now().timestamp_millis())
        .await
        .unwrap();
    assert_eq!(status.state, CampaignState::Done);
    assert_eq!(
        (status.placed, status.answered, status.abandoned),
        (1, 1, 0)
    );
    let stats = status.stats.clone().expect("runner stats");
    assert_eq!(stats["agents"], 1);
    let occupancy = stats["occupancy"].as_f64().unwrap();
    assert!(
        occupancy > 0.3,
        "the agent talked most of the run: {occupancy}"
    );

    // Streamed to Garage in parts while the call ran, like any recorded call.
    let (row, ch0, ch1) = recorded_call(&world, s3.as_ref()).await;
    assert_eq!(row.agent.as_deref(), Some("agent1"));
    assert_eq!(row.campaign.as_deref(), Some("agents"));
    let len_s = ch0.len() as f64 / 8000.0;
    assert!((8.5..12.0).contains(&len_s), "recording {len_s} s");

    // Each channel carries its own party's speech, in time.
    let (r_agent, lag_agent) = envelope_match(&envelope(&ch0), &envelope(&agent_src), 20);
    let (r_cust, lag_cust) = envelope_match(&envelope(&ch1), &envelope(&customer), 20);
    let agent_from = AGENT_DELAY_S + lag_agent as f64 / WINDOWS_PER_S;
    let agent_to = agent_from + words_s;
    let talk = (0.3, customer_s - 0.2);
    let agent_on_0 = rms_between(&ch0, agent_from, agent_to);
    let agent_on_1 = rms_between(&ch1, agent_from, agent_to);
    let cust_on_1 = rms_between(&ch1, talk.0, talk.1);
    let cust_on_0 = rms_between(&ch0, talk.0, talk.1);
    println!(
        "agent r={r_agent:.2} lag={lag_agent}, customer r={r_cust:.2} lag={lag_cust}; \
         agent talk rms ch0 {agent_on_0:.0} ch1 {agent_on_1:.0}; customer talk rms ch1 {cust_on_1:.0} ch0 {cust_on_0:.0}"
    );
    assert!(
        r_agent > 0.8,
        "channel 0 is not the agent's speech: r={r_agent}"
    );
    assert!(
        r_cust > 0.8,
        "channel 1 is not the customer's speech: r={r_cust}"
    );
    assert!(agent_on_0 > 300.0 && agent_on_1 < agent_on_0 * 0.05);
    assert!(cust_on_1 > 300.0 && cust_on_0 < cust_on_1 * 0.05);

    // The agent heard the customer (and silence once the customer stopped talking).
    let heard = agent.heard();
    let (r_heard, _) = envelope_match(&envelope(&customer), &envelope(&heard), 20);
    let heard_talk = rms_between(&heard, 0.3, customer_s - 0.5);
    let heard_quiet = rms_between(&heard, agent_from - 0.5, agent_to - 0.5);
    println!("agent heard: r={r_heard:.2}, rms {heard_talk:.0} in talk, {heard_quiet:.0} after");
    assert!(
        r_heard > 0.7,
        "baresip did not hear the customer: r={r_heard}"
    );
    assert!(heard_talk > 300.0 && heard_talk > heard_quiet * 10.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_agent_abandons_the_call_to_the_prompt() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let prompt = speech_wav(
        dir,
        "prompt",
        "Sorry, all our agents are busy. We will call back.",
    );
    let prompt_src = samples(&prompt);
    let customer = speech_pcap(dir, CUSTOMER_TEXT);

    let mut agent = Sipp::uas("uas_busy.xml", dir);
    let mut sipp = Sipp::uas("uas_answer_play.xml", dir);
    let world = World::open(dir).await;
    let toml = agent_campaign(
        "busy-agents",
        &prompt,
        &format!("sip:agent7@{}", agent.address()),
    );
    let summary = run_campaign(&world, &sipp.address(), &toml, None).await;
    assert_eq!((summary.answered, summary.abandoned), (1, 1), "{summary:?}");
    assert!(
        agent.passed(Duration::from_secs(10)),
        "agent SIPp (486) failed"
    );
    assert!(sipp.passed(Duration::from_secs(10)), "customer SIPp failed");

    let status = world
        .store
        .status("busy-agents", Utc::now().timestamp_millis())
        .await
        .unwrap();
    let json = serde_json::to_value(&status).unwrap();
    assert_eq!(json["answered"], 1);
    assert_eq!(json["abandoned"], 1);
    assert_eq!(json["abandon_rate"], 1.0);

    let (row, ch0, ch1) = recorded_call(&world, world.objects.as_ref()).await;
    assert_eq!(row.agent.as_deref(), Some("prompt"));
    // The prompt played on channel 0 once the agent leg failed, within the 2 s grace.
    let (r_prompt, lag) = envelope_match(&envelope(&ch0), &envelope(&prompt_src), 60);
    let (r_cust, _) = envelope_match(&envelope(&ch1), &envelope(&customer), 20);
    let lag_s = lag as f64 / WINDOWS_PER_S;
    println!("prompt r={r_prompt:.2} from {lag_s:.2} s; customer r={r_cust:.2}");
    assert!(r_prompt > 0.8, "channel 0 is not the prompt: r={r_prompt}");
    assert!(lag_s <= 2.1, "prompt started {lag_s} s after the answer");
    assert!(r_cust > 0.8, "channel 1 is not the customer: r={r_cust}");
    assert!(
        rms_between(&ch0, 0.0, lag_s) < 50.0,
        "silence before the prompt"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_hanging_up_ends_the_customer_leg() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let prompt = speech_wav(dir, "prompt", "Sorry, all our agents are busy.");
    speech_pcap(dir, CUSTOMER_TEXT);
    let words = speech_wav(dir, "agent_words", "Thank you, goodbye.");
    // baresip hangs up when its WAV ends, about 3 s into the call.
    let agent_wav = padded(&words, 1.0, 1.0, &dir.join("agent.wav"));
    let agent_s = samples(&agent_wav).len() as f64 / 8000.0;

    let agent = Baresip::agent(dir, "agent2", &agent_wav);
    // This customer never hangs up: only our BYE ends its scenario.
    let mut sipp = Sipp::uas("uas_answer_play.xml", dir);
    let world = World::open(dir).await;
    let toml = agent_campaign("agent-hangs-up", &prompt, &agent.uri("agent2"));
    let summary = run_campaign(&world, &sipp.address(), &toml, None).await;
    assert_eq!((summary.answered, summary.abandoned), (1, 0), "{summary:?}");
    assert!(
        sipp.passed(Duration::from_secs(10)),
        "the customer got no BYE"
    );
    let (row, ch0, _) = recorded_call(&world, world.objects.as_ref()).await;
    assert_eq!(row.agent.as_deref(), Some("agent2"));
    // The call ended with the agent's hangup, far before the 20 s maximum.
    let len_s = ch0.len() as f64 / 8000.0;
    assert!(
        len_s > agent_s - 0.5 && len_s < agent_s + 2.0,
        "recording {len_s} s, agent WAV {agent_s} s"
    );
}
