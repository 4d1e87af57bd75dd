//! A campaign against SIPp whose contacts break every rule: not one INVITE reaches SIPp for
//! them, each refusal is counted by reason in `campaign status`, and the one clean contact is
//! called, recorded and queued for transcription. A number answering 404 is marked invalid
//! and never retried.

mod campaign_support;
mod support;

use callqa_dialer::{CampaignConfig, CampaignState, ConsentRecord};
use callqa_ingest::queue::Stage;
use callqa_qa::Source;
use campaign_support::*;
use chrono::{Duration as ChronoDuration, Timelike, Utc};
use support::speech_wav;

const REGISTERED: &str = "+861012345678";

/// A window of two hours around the current time in Shanghai: open for +86 numbers, closed
/// for New York, which is 12 or 13 hours behind.
fn window_open_in_shanghai() -> String {
    let now = Utc::now().with_timezone(&chrono_tz::Asia::Shanghai);
    let start = (now - ChronoDuration::hours(1)).time();
    let end = (now + ChronoDuration::hours(1)).time();
    format!(
        "{:02}:{:02}-{:02}:{:02}",
        start.hour(),
        start.minute(),
        end.hour(),
        end.minute()
    )
}

#[tokio::test]
async fn refused_contacts_never_reach_sipp_and_are_counted_by_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let prompt = speech_wav(dir, "prompt", "Hello, this is a reminder.");
    let scenario = dir.join("uas.xml");
    std::fs::write(&scenario, random_answer_scenario(1.0, 100)).unwrap();
    let sipp = SippUas::start(&scenario, dir);
    let world = World::open(dir).await;

    world
        .blacklist
        .add(
            "+8613900000000",
            "asked not to be called",
            Source::Manual,
            &[],
            None,
            "test",
        )
        .await
        .unwrap();
    let csv = "number,scope,proof,granted_at,expires_at\n\
        +8613800138001,marketing,rec/consent-1.wav,2024-01-01T00:00:00Z,\n\
        +12025550100,marketing,form-17,2024-01-01T00:00:00Z,2099-01-01T00:00:00Z\n\
        +8613800138004,marketing,form-18,2024-01-01T00:00:00Z,\n\
        +8613800138005,marketing,form-19,2020-01-01T00:00:00Z,2021-01-01T00:00:00Z\n\
        not-a-number,marketing,x,2024-01-01T00:00:00Z,\n";
    let import = world
        .consents
        .import_csv(csv.as_bytes(), Utc::now())
        .await
        .unwrap();
    assert_eq!(import.imported, 4, "{import:?}");
    assert_eq!(import.errors.len(), 1, "{import:?}");

    let toml = format!(
        r#"
name = "gates"
kind = "marketing"
mode = "progressive"
trunk = "sipp"
caller_ids = ["{REGISTERED}"]
calling_hours = "{hours}"
max_attempts = 2
retry_spacing_min = 0
prompt = "{prompt}"
agents = 1
contacts = [
  {{ number = "+8613800138001", name = "clean" }},
  {{ number = "+8613900000000", name = "blacklisted" }},
  {{ number = "+8613800138002", name = "no consent" }},
  {{ number = "+8613800138005", name = "consent expired" }},
  {{ number = "+12025550100", name = "outside hours in New York" }},
  {{ number = "+8613800138004", name = "unregistered caller id", caller_id = "+861099999999" }},
  {{ number = "+86128", name = "invalid" }},
]
"#,
        hours = window_open_in_shanghai(),
        prompt = prompt.display()
    );
    let cfg = CampaignConfig::from_toml(&toml, dir).unwrap();
    assert_eq!(
        world
            .store
            .load(&cfg, Utc::now().timestamp_millis())
            .await
            .unwrap(),
        7
    );

    let summary = world
        .runner(dialer_config(&sipp.address()))
        .run("gates")
        .await
        .unwrap();
    assert_eq!(summary.placed, 1, "{summary:?}");
    assert_eq!(summary.answered, 1, "{summary:?}");

    let invites = sipp.invites();
    assert!(!invites.is_empty(), "SIPp saw no INVITE at all");
    assert!(
        invites.iter().all(|uri| uri.contains("+8613800138001@")),
        "an INVITE for a refused contact reached SIPp: {invites:?}"
    );

    let status = world
        .store
        .status("gates", Utc::now().timestamp_millis())
        .await
        .unwrap();
    let json = serde_json::to_value(&status).unwrap();
    assert_eq!(json["name"], "gates");
    assert_eq!(json["placed"], 1);
    assert_eq!(json["answered"], 1);
    assert_eq!(json["abandoned"], 0);
    assert_eq!(json["abandon_rate"], 0.0);
    assert_eq!(
        json["refused"],
        serde_json::json!({"blacklist": 1, "no_consent": 2, "outside_hours": 1,
                           "caller_id": 1, "invalid_number": 1, "attempts": 0}),
        "{json}"
    );
    // The New York contact waits for its window; everything else is done.
    assert_eq!(status.state, CampaignState::Loaded);
    assert_eq!(status.contacts_done, 6);
    assert_eq!(status.invalid_numbers, 1);

    let reasons = world.store.refusals("gates").await.unwrap();
    let reason_of = |kind: &str| {
        reasons
            .iter()
            .find(|r| r.1 == kind)
            .map(|r| r.2.clone())
            .unwrap_or_default()
    };
    assert!(reason_of("blacklist").contains("asked not to be called"));
    assert!(reason_of("outside_hours").contains("America/New_York"));
    assert!(reason_of("caller_id").contains("+861099999999"));
    assert!(reason_of("no_consent").contains("marketing"));

    // The answered call is recorded, stored and queued like `callqa dial`.
    let calls = world.db.list_calls(None, 10).await.unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].campaign.as_deref(), Some("gates"));
    assert!(calls[0].recording_bytes > 44);
    assert!(dir.join("objects").join(&calls[0].recording_key).exists());
    assert_eq!(world.queue.depth(Stage::Transcribe).await.unwrap(), 1);
}

#[tokio::test]
async fn a_number_answering_404_is_marked_invalid_and_not_retried() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let prompt = speech_wav(dir, "prompt", "Hello.");
    let sipp = SippUas::start(&support::scenario("uas_not_found.xml"), dir);
    let world = World::open(dir).await;
    let toml = format!(
        r#"
name = "invalids"
trunk = "sipp"
max_attempts = 3
retry_spacing_min = 0
prompt = "{}"
contacts = [{{ number = "+8613800138009" }}]
"#,
        prompt.display()
    );
    let cfg = CampaignConfig::from_toml(&toml, dir).unwrap();
    world.store.load(&cfg, 0).await.unwrap();
    let summary = world
        .runner(dialer_config(&sipp.address()))
        .run("invalids")
        .await
        .unwrap();
    assert_eq!(summary.placed, 1, "{summary:?}");
    let status = world
        .store
        .status("invalids", Utc::now().timestamp_millis())
        .await
        .unwrap();
    assert_eq!(status.invalid_numbers, 1);
    assert_eq!(status.state, CampaignState::Done);
    let distinct: std::collections::HashSet<String> = sipp.invites().into_iter().collect();
    assert_eq!(distinct.len(), 1, "{distinct:?}");
    // Starting again dials nothing: the campaign is done.
    let again = world
        .runner(dialer_config(&sipp.address()))
        .run("invalids")
        .await
        .unwrap();
    assert_eq!(again.placed, 0);
}

#[tokio::test]
async fn consent_expires_and_is_scoped() {
    let tmp = tempfile::tempdir().unwrap();
    let world = World::open(tmp.path()).await;
    let now = Utc::now();
    world
        .consents
        .add(
            &ConsentRecord {
                number: "138 0013 8000".into(),
                scope: "marketing".into(),
                proof: "rec/1.wav".into(),
                granted_at: now - ChronoDuration::days(1),
                expires_at: Some(now + ChronoDuration::days(1)),
            },
            now,
        )
        .await
        .unwrap();
    let has = |scope: &'static str, at| {
        let c = world.consents.clone();
        async move { c.has_consent("+8613800138000", scope, at).await.unwrap() }
    };
    assert!(has("marketing", now).await);
    assert!(!has("surveys", now).await);
    assert!(!has("marketing", now + ChronoDuration::days(2)).await);
    assert!(!has("marketing", now - ChronoDuration::days(2)).await);
}
