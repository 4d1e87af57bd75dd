//! Best time to call against the real campaign tables, on SQLite (a temp file) and PostgreSQL
//! (a fresh schema, dropped afterwards): rates learned from stored attempts, the runner's pick
//! order and deferral on contact rows read back from the store, `campaign status`'s hourly
//! rates, and the segment column added to a database created before it existed.
//! `CALLQA_TEST_PG_URL` overrides the server (default postgres://postgres@127.0.0.1:5432/test).

use callqa_dialer::best_time::{self, AnswerModel, Level};
use callqa_dialer::campaign_store::AttemptRow;
use callqa_dialer::{CallingHours, CampaignConfig, CampaignStore};
use chrono::{NaiveDate, TimeZone, Utc};
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Executor};

struct TestDb {
    pool: AnyPool,
    pg_schema: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    async fn sqlite() -> TestDb {
        sqlx::any::install_default_drivers();
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("bt.db").display());
        let pool = AnyPoolOptions::new()
            .max_connections(1)
            .connect(&url)
            .await
            .unwrap();
        TestDb {
            pool,
            pg_schema: None,
            _dir: Some(dir),
        }
    }

    async fn postgres() -> TestDb {
        sqlx::any::install_default_drivers();
        let url = std::env::var("CALLQA_TEST_PG_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let schema = format!("dialer_bt_{}_{nanos}", std::process::id());
        let admin = AnyPoolOptions::new()
            .max_connections(1)
            .connect(&url)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {url} is needed for this test: {e}"));
        admin
            .execute(format!("CREATE SCHEMA {schema}").as_str())
            .await
            .unwrap();
        admin.close().await;
        let search_path = format!("SET search_path TO {schema}");
        let pool = AnyPoolOptions::new()
            .max_connections(3)
            .after_connect(move |conn, _| {
                let sql = search_path.clone();
                Box::pin(async move {
                    conn.execute(sql.as_str()).await?;
                    Ok(())
                })
            })
            .connect(&url)
            .await
            .unwrap();
        TestDb {
            pool,
            pg_schema: Some((url, schema)),
            _dir: None,
        }
    }

    async fn cleanup(self) {
        self.pool.close().await;
        if let Some((url, schema)) = self.pg_schema {
            let admin = AnyPoolOptions::new()
                .max_connections(1)
                .connect(&url)
                .await
                .unwrap();
            admin
                .execute(format!("DROP SCHEMA {schema} CASCADE").as_str())
                .await
                .unwrap();
            admin.close().await;
        }
    }
}

/// `campaign_contacts` as it was before contacts had a segment, with one contact in it.
async fn legacy_contacts_table(pool: &AnyPool) {
    pool.execute(
        "CREATE TABLE campaign_contacts (
            campaign TEXT NOT NULL,
            number TEXT NOT NULL,
            name TEXT,
            timezone TEXT,
            caller_id TEXT,
            position BIGINT NOT NULL,
            attempts BIGINT NOT NULL DEFAULT 0,
            last_attempt_at BIGINT,
            last_outcome TEXT,
            next_at BIGINT NOT NULL,
            done BIGINT NOT NULL DEFAULT 0,
            invalid BIGINT NOT NULL DEFAULT 0,
            PRIMARY KEY (campaign, number))",
    )
    .await
    .unwrap();
    pool.execute(
        "INSERT INTO campaign_contacts (campaign, number, position, next_at)
         VALUES ('old', '+8613500000000', 0, 0)",
    )
    .await
    .unwrap();
}

/// Epoch ms of 2024-05-01 `hour`:10 in Shanghai.
fn shanghai_ms(hour: u32) -> i64 {
    let t = NaiveDate::from_ymd_opt(2024, 5, 1)
        .unwrap()
        .and_hms_opt(hour, 10, 0)
        .unwrap();
    chrono_tz::Asia::Shanghai
        .from_local_datetime(&t)
        .unwrap()
        .timestamp_millis()
}

/// Ten numbers per segment (number, segment, rank in the segment), each dialled once an hour
/// from 08 to 20 local time.
fn history_numbers() -> Vec<(String, &'static str, usize)> {
    let mut out = Vec::new();
    for k in 0..10 {
        out.push((format!("+86138100000{k:02}"), "evening", k));
        out.push((format!("+86137100000{k:02}"), "morning", k));
    }
    out
}

/// "evening" answers 7 in 10 at 15-17 and 4 in 10 otherwise, "morning" 8 in 10 at 10 and 2
/// otherwise.
fn answered(segment: &str, hour: u32, k: usize) -> bool {
    let per_ten = match (segment, hour) {
        ("evening", 15..=17) => 7,
        ("evening", _) => 4,
        (_, 10) => 8,
        _ => 2,
    };
    k < per_ten
}

const FRESH: [(&str, &str); 4] = [
    ("+8613800000001", "evening"),
    ("+8613700000001", "morning"),
    ("+8613800000002", "evening"),
    ("+8613700000002", "morning"),
];

async fn learns_from_the_store_and_orders_the_pick(db: &TestDb) {
    legacy_contacts_table(&db.pool).await;
    let store = CampaignStore::open(db.pool.clone()).await.unwrap();
    // Opening again finds the column in place.
    let store2 = CampaignStore::open(db.pool.clone()).await.unwrap();
    let old = store2.open_contacts("old").await.unwrap();
    assert_eq!(old.len(), 1);
    assert_eq!(old[0].segment, None);

    let mut contacts = String::new();
    for (n, seg) in FRESH {
        contacts.push_str(&format!("{{ number = \"{n}\", segment = \"{seg}\" }},\n"));
    }
    let history = history_numbers();
    for (n, seg, _) in &history {
        contacts.push_str(&format!("{{ number = \"{n}\", segment = \"{seg}\" }},\n"));
    }
    let toml = format!(
        "name = \"bt\"\nbest_time = true\nprompt = \"p.wav\"\ncalling_hours = \"08:00-21:00\"\n\
         contacts = [\n{contacts}]\n"
    );
    let cfg = CampaignConfig::from_toml(&toml, std::path::Path::new(".")).unwrap();
    assert!(cfg.best_time);
    assert_eq!(store.load(&cfg, 0).await.unwrap(), 24);

    // Before any dial: flat rates, no evidence.
    let empty = store.status("bt", 0).await.unwrap();
    assert_eq!(empty.answer_rate_by_hour, vec![0.5; 24]);
    assert_eq!(empty.attempts_by_hour, vec![0; 24]);

    for hour in 8..21 {
        for (n, seg, k) in &history {
            let ok = answered(seg, hour, *k);
            let placed = shanghai_ms(hour);
            store
                .record_attempt(&AttemptRow {
                    call_id: format!("bt-{n}-{hour}"),
                    campaign: "bt".into(),
                    number: n.clone(),
                    trunk: "t".into(),
                    outcome: if ok { "answered" } else { "no_answer" }.into(),
                    sip_code: Some(if ok { 200 } else { 480 }),
                    reason: String::new(),
                    placed_at: placed,
                    answered_at: ok.then_some(placed + 3_000),
                    ended_at: placed + 20_000,
                    abandoned: false,
                    agent_wait_ms: None,
                })
                .await
                .unwrap();
        }
    }

    // The history is the stored attempts, with their contacts' segments.
    let past = store.attempt_history("bt").await.unwrap();
    assert_eq!(past.len(), 20 * 13);
    assert_eq!(
        past.iter().filter(|a| a.answered).count(),
        3 * 7 + 10 * 4 + 8 + 12 * 2
    );
    assert!(past.iter().all(|a| a.segment.as_deref()
        == Some(if a.number.starts_with("+86138") {
            "evening"
        } else {
            "morning"
        })));
    let model = AnswerModel::learn(&past);
    let evening = model.rates_for(FRESH[0].0, Some("evening"));
    assert_eq!(evening.level, Level::Segment);
    let mut top: Vec<u32> = evening.ranked_hours()[..3].to_vec();
    top.sort();
    assert_eq!(top, [15, 16, 17]);
    let morning = model.rates_for(FRESH[1].0, Some("morning"));
    assert_eq!(morning.ranked_hours()[0], 10);

    // `campaign status` shows the campaign's hours.
    let status = store.status("bt", shanghai_ms(21)).await.unwrap();
    assert_eq!(status.placed, 260);
    let mut expect = vec![0u64; 24];
    for e in &mut expect[8..21] {
        *e = 20;
    }
    assert_eq!(status.attempts_by_hour, expect);
    assert_eq!(status.answer_rate_by_hour.len(), 24);
    for (h, r) in model.campaign_rates().iter().enumerate() {
        assert!((status.answer_rate_by_hour[h] - r).abs() < 1e-4, "hour {h}");
    }
    assert!(status.answer_rate_by_hour[10] > status.answer_rate_by_hour[9]);
    assert!(status.answer_rate_by_hour[16] > status.answer_rate_by_hour[19]);
    let json = serde_json::to_value(&status).unwrap();
    assert_eq!(json["attempts_by_hour"][10], 20);
    assert!(json["refused"].is_object() && json["abandon_rate"].is_number());

    // The pick order on contact rows read back from the store.
    let rows = store.open_contacts("bt").await.unwrap();
    let fresh: Vec<usize> = FRESH
        .iter()
        .map(|(n, _)| rows.iter().position(|r| r.number == *n).unwrap())
        .collect();
    assert_eq!(rows[fresh[0]].segment.as_deref(), Some("evening"));
    let hours = CallingHours::parse(&cfg.calling_hours.clone().unwrap()).unwrap();
    // 09:30 in Shanghai: evening contacts are held for 15:00, morning ones for 10:00.
    let nine = Utc.with_ymd_and_hms(2024, 5, 2, 1, 30, 0).unwrap();
    let at = |h: u32| {
        Some(
            Utc.with_ymd_and_hms(2024, 5, 2, h - 8, 0, 0)
                .unwrap()
                .timestamp_millis(),
        )
    };
    assert_eq!(
        best_time::defer_until(&rows[fresh[0]], &model, hours, nine),
        at(15)
    );
    assert_eq!(
        best_time::defer_until(&rows[fresh[1]], &model, hours, nine),
        at(10)
    );
    // 10:30: morning contacts first, and dialled now.
    let ten = Utc.with_ymd_and_hms(2024, 5, 2, 2, 30, 0).unwrap();
    let order = best_time::dial_order(&rows, &fresh, &model, ten);
    assert_eq!(order, vec![fresh[1], fresh[3], fresh[0], fresh[2]]);
    assert_eq!(
        best_time::defer_until(&rows[fresh[1]], &model, hours, ten),
        None
    );
    // 16:30: evening contacts first, and nobody is held (no better hour ahead for evening,
    // and morning's best hour has passed).
    let four = Utc.with_ymd_and_hms(2024, 5, 2, 8, 30, 0).unwrap();
    let order = best_time::dial_order(&rows, &fresh, &model, four);
    assert_eq!(order, vec![fresh[0], fresh[2], fresh[1], fresh[3]]);
    for &i in &fresh {
        assert_eq!(best_time::defer_until(&rows[i], &model, hours, four), None);
    }

    // Reloading the file: a changed segment is taken, history stays, a new number is added.
    let (moved, _) = FRESH[0];
    let reloaded = toml
        .replace(
            &format!("number = \"{moved}\", segment = \"evening\""),
            &format!("number = \"{moved}\", segment = \"morning\""),
        )
        .replace(
            "contacts = [\n",
            "contacts = [\n{ number = \"+8613900001111\" },\n",
        );
    assert_ne!(reloaded, toml);
    let cfg2 = CampaignConfig::from_toml(&reloaded, std::path::Path::new(".")).unwrap();
    assert_eq!(store.load(&cfg2, 0).await.unwrap(), 1);
    let rows2 = store.open_contacts("bt").await.unwrap();
    assert_eq!(rows2.len(), rows.len() + 1);
    let row = rows2.iter().find(|r| r.number == moved).unwrap();
    assert_eq!(row.segment.as_deref(), Some("morning"));
    assert_eq!(
        store.status("bt", shanghai_ms(21)).await.unwrap().placed,
        260
    );
}

#[tokio::test]
async fn best_time_on_sqlite() {
    let db = TestDb::sqlite().await;
    learns_from_the_store_and_orders_the_pick(&db).await;
    db.cleanup().await;
}

#[tokio::test]
async fn best_time_on_postgres() {
    let db = TestDb::postgres().await;
    learns_from_the_store_and_orders_the_pick(&db).await;
    db.cleanup().await;
}
