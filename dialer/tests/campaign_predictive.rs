//! Predictive pacing against SIPp answering half the calls (480 otherwise) with simulated
//! agents: the campaign dials ahead of its free agents, keeps the abandon rate at or below
//! the cap, and reports agent occupancy.

mod campaign_support;
mod support;

use callqa_dialer::{CampaignConfig, CampaignState};
use campaign_support::*;
use chrono::Utc;
use support::speech_wav;

#[tokio::test]
async fn predictive_campaign_keeps_abandon_rate_under_cap() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let prompt = speech_wav(dir, "prompt", "Hello.");
    let scenario = dir.join("uas.xml");
    std::fs::write(&scenario, random_answer_scenario(0.5, 300)).unwrap();
    let sipp = SippUas::start(&scenario, dir);
    let world = World::open(dir).await;

    let contacts: Vec<String> = (0..50)
        .map(|i| format!("{{ number = \"+86138001{i:05}\" }}"))
        .collect();
    let cap = 0.1;
    let toml = format!(
        r#"
name = "predictive"
kind = "service"
mode = "predictive"
trunk = "sipp"
max_attempts = 1
prompt = "{prompt}"
agents = 2
talk_time_ms = 1500
abandon_cap = {cap}
abandon_window = "24h"
contacts = [{contacts}]
"#,
        prompt = prompt.display(),
        contacts = contacts.join(", ")
    );
    let cfg = CampaignConfig::from_toml(&toml, dir).unwrap();
    world
        .store
        .load(&cfg, Utc::now().timestamp_millis())
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let summary = world
        .runner(dialer_config(&sipp.address()))
        .run("predictive")
        .await
        .unwrap();
    let elapsed = started.elapsed();
    let status = world
        .store
        .status("predictive", Utc::now().timestamp_millis())
        .await
        .unwrap();
    let stats = status.stats.clone().expect("runner stats");
    eprintln!(
        "predictive: {summary:?} in {:.1} s; status abandon_rate {:.3}, stats {stats}",
        elapsed.as_secs_f64(),
        status.abandon_rate
    );
    assert_eq!(status.state, CampaignState::Done);
    assert_eq!(status.placed, 50);
    // SIPp answers about half: far outside 10..40 means the scenario or the counting broke.
    assert!(
        (10..=40).contains(&status.answered),
        "answered {}",
        status.answered
    );
    assert!(
        status.abandon_rate <= cap,
        "abandon rate {} over cap {cap}",
        status.abandon_rate
    );
    // Dialled ahead of the two agents once the answer rate was known.
    assert!(summary.max_in_flight > 2, "{summary:?}");
    let occupancy = stats["occupancy"].as_f64().expect("occupancy");
    assert!(occupancy > 0.2 && occupancy <= 1.0, "occupancy {occupancy}");
    assert_eq!(stats["agents"], 2);
    assert_eq!(summary.answered, status.answered);
    assert_eq!(summary.abandoned, status.abandoned);
}
