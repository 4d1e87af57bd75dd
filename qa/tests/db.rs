//! QA storage, blacklist policy, reports and version diffs against both SQLite (a temp
//! file) and PostgreSQL (a fresh schema on the local server, dropped afterwards).
//! `CALLQA_TEST_PG_URL` overrides the server (default postgres://postgres@127.0.0.1:5432/test).

use callqa_ingest::transcript::{CallMeta, Segment, Speaker, Transcript};
use callqa_qa::bench::synthetic_call;
use callqa_qa::blacklist::{apply_policy, Blacklist, BlacklistPolicy, Source};
use callqa_qa::report::{complaints_report, qa_report, to_csv, ReportBy};
use callqa_qa::{
    load_result, migrate, score_call, store_result, version_diff, QaResult, Scorecard,
};
use chrono::{Duration, Utc};
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Executor};

struct TestDb {
    name: &'static str,
    pool: AnyPool,
    pg_schema: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("qa.db").display());
        let pool = AnyPoolOptions::new()
            .max_connections(1)
            .connect(&url)
            .await
            .unwrap();
        TestDb {
            name: "sqlite",
            pool,
            pg_schema: None,
            _dir: Some(dir),
        }
    }

    async fn postgres() -> TestDb {
        let url = std::env::var("CALLQA_TEST_PG_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        // Tests run in parallel threads of one process: a counter keeps their schemas apart
        // even when two read the same clock value.
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let schema = format!("qa_test_{}_{}_{n}", std::process::id(), nanos);
        let admin = AnyPoolOptions::new()
            .max_connections(1)
            .connect(&url)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {url} is needed for these tests: {e}"));
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
            name: "postgres",
            pool,
            pg_schema: Some((url, schema)),
            _dir: None,
        }
    }

    async fn all() -> Vec<TestDb> {
        sqlx::any::install_default_drivers();
        let mut out = Vec::new();
        for db in [TestDb::sqlite().await, TestDb::postgres().await] {
            migrate(&db.pool).await.unwrap();
            // Migrations are idempotent.
            migrate(&db.pool).await.unwrap();
            out.push(db);
        }
        out
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

fn meta(call_id: &str, customer: &str, started_at: &str) -> CallMeta {
    CallMeta {
        call_id: call_id.into(),
        campaign: Some("loans".into()),
        agent: Some("li".into()),
        customer: Some(customer.into()),
        started_at: started_at.into(),
        duration_ms: 20_000,
        language: Some("zh".into()),
    }
}

/// A real scored call in which the customer says `customer_line`.
fn scored(call_id: &str, customer_line: &str) -> QaResult {
    let t = Transcript {
        call_id: call_id.into(),
        language: Some("zh".into()),
        duration_ms: 20_000,
        model: "test".into(),
        segments: vec![
            Segment {
                speaker: Speaker::Agent,
                start_ms: 0,
                end_ms: 4_000,
                text: "您好，我是平安银行的小李。".into(),
            },
            Segment {
                speaker: Speaker::Customer,
                start_ms: 12_500,
                end_ms: 15_000,
                text: customer_line.into(),
            },
        ],
    };
    score_call(&Scorecard::default_card(), &CallMeta::default(), &t)
}

async fn count(pool: &AnyPool, sql: &str) -> i64 {
    use sqlx::Row;
    sqlx::query(sql)
        .fetch_one(pool)
        .await
        .unwrap()
        .try_get::<i64, _>(0)
        .unwrap()
}

#[tokio::test]
async fn complaints_crossing_the_threshold_blacklist_with_source_calls() {
    for db in TestDb::all().await {
        let pool = &db.pool;
        let policy = BlacklistPolicy::default();
        let bl = Blacklist::new(pool.clone());
        let complaint = scored("c1", "我要投诉你们！");
        assert!(complaint.has_flag("complaint"));

        // An old complaint outside the 30-day window does not count.
        let old = meta("c0", "138 0013 8000", "2024-01-01T10:00:00Z");
        assert_eq!(
            apply_policy(pool, &old, &scored("c0", "我要投诉"), &policy)
                .await
                .unwrap(),
            None
        );
        let m1 = meta("c1", "138 0013 8000", "2024-05-01T10:00:00Z");
        assert_eq!(
            apply_policy(pool, &m1, &complaint, &policy).await.unwrap(),
            None,
            "{}",
            db.name
        );
        assert_eq!(
            bl.is_blocked("+8613800138000", Utc::now()).await.unwrap(),
            None
        );
        // A call without a complaint from the same number changes nothing.
        let calm = meta("c1b", "13800138000", "2024-05-05T10:00:00Z");
        assert_eq!(
            apply_policy(pool, &calm, &scored("c1b", "好的，谢谢。"), &policy)
                .await
                .unwrap(),
            None
        );

        let m2 = meta("c2", "+86 138 0013 8000", "2024-05-11T10:00:00Z");
        let entry = apply_policy(
            pool,
            &m2,
            &scored("c2", "I want to file a complaint."),
            &policy,
        )
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{}: second complaint should blacklist", db.name));
        assert_eq!(entry.number, "+8613800138000");
        assert_eq!(entry.source, Source::Complaints);
        assert_eq!(entry.calls, vec!["c1".to_string(), "c2".to_string()]);
        assert!(
            entry.reason.contains("2 complaint calls"),
            "{}",
            entry.reason
        );
        let blocked = bl
            .is_blocked("13800138000", Utc::now())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(blocked, entry);

        let json = serde_json::to_value(bl.list().await.unwrap()).unwrap();
        assert_eq!(json[0]["source"], "complaints");
        assert_eq!(json[0]["calls"], serde_json::json!(["c1", "c2"]));
        assert!(json[0]["expires_at"].is_null());
        assert!(json[0]["added_at"].as_str().unwrap().ends_with('Z'));

        let audit = bl.audit(Some("+8613800138000")).await.unwrap();
        assert_eq!(audit.len(), 1);
        assert_eq!(audit[0].action, "add");
        assert_eq!(audit[0].actor, "policy");
        assert_eq!(audit[0].calls, vec!["c1".to_string(), "c2".to_string()]);
        db.cleanup().await;
    }
}

#[tokio::test]
async fn opt_out_blacklists_after_one_call_and_redelivery_is_idempotent() {
    for db in TestDb::all().await {
        let pool = &db.pool;
        let policy = BlacklistPolicy::default();
        let bl = Blacklist::new(pool.clone());
        let r = scored("o1", "不要再打了！");
        assert_eq!(r.flags, vec!["opt_out"]);
        let m = meta("o1", "13900139000", "2024-05-01T10:00:00Z");
        let entry = apply_policy(pool, &m, &r, &policy).await.unwrap().unwrap();
        assert_eq!(entry.source, Source::OptOut);
        assert_eq!(entry.calls, vec!["o1".to_string()]);
        assert!(
            bl.is_blocked("+8613900139000", Utc::now())
                .await
                .unwrap()
                .is_some(),
            "{}",
            db.name
        );

        // Redelivery of the same call: nothing changes, nothing is audited twice.
        assert_eq!(apply_policy(pool, &m, &r, &policy).await.unwrap(), None);
        assert_eq!(bl.audit(None).await.unwrap().len(), 1);
        assert_eq!(count(pool, "SELECT COUNT(*) FROM complaints").await, 1);

        // Redelivered complaints are not double-counted toward the threshold.
        let c = scored("p1", "我要投诉");
        let mp = meta("p1", "13700137000", "2024-05-01T10:00:00Z");
        for _ in 0..3 {
            assert_eq!(
                apply_policy(pool, &mp, &c, &policy).await.unwrap(),
                None,
                "{}",
                db.name
            );
        }
        assert_eq!(
            bl.is_blocked("13700137000", Utc::now()).await.unwrap(),
            None
        );

        // A manual removal is not undone by a redelivery of the opt-out call.
        assert!(bl
            .remove("13900139000", "customer consented again", "alice")
            .await
            .unwrap());
        assert_eq!(apply_policy(pool, &m, &r, &policy).await.unwrap(), None);
        assert_eq!(
            bl.is_blocked("13900139000", Utc::now()).await.unwrap(),
            None
        );

        // Opt-outs can be switched off by policy.
        let off = BlacklistPolicy {
            opt_out: false,
            ..BlacklistPolicy::default()
        };
        let m3 = meta("o3", "13600136000", "2024-05-01T10:00:00Z");
        assert_eq!(
            apply_policy(pool, &m3, &scored("o3", "stop calling me"), &off)
                .await
                .unwrap(),
            None
        );
        // Calls without a customer number are skipped.
        let mut nobody = meta("o4", "", "2024-05-01T10:00:00Z");
        nobody.customer = None;
        assert_eq!(
            apply_policy(pool, &nobody, &r, &policy).await.unwrap(),
            None
        );
        db.cleanup().await;
    }
}

#[tokio::test]
async fn expiry_manual_entries_and_audit() {
    for db in TestDb::all().await {
        let bl = Blacklist::new(db.pool.clone());
        let now = Utc::now();
        let e = bl
            .add(
                "010-12345678",
                "asked by letter",
                Source::Manual,
                &[],
                Some(now + Duration::hours(1)),
                "alice",
            )
            .await
            .unwrap();
        assert_eq!(e.number, "+861012345678");
        assert!(bl.is_blocked("+861012345678", now).await.unwrap().is_some());
        assert_eq!(
            bl.is_blocked("+861012345678", now + Duration::hours(2))
                .await
                .unwrap(),
            None,
            "{}",
            db.name
        );
        // The expired entry is still listed, with its expiry.
        assert!(bl.list().await.unwrap()[0].expires_at.is_some());

        // Re-adding without expiry makes it permanent.
        bl.add(
            "+861012345678",
            "permanent now",
            Source::Manual,
            &[],
            None,
            "bob",
        )
        .await
        .unwrap();
        assert!(bl
            .is_blocked("+861012345678", now + Duration::days(3650))
            .await
            .unwrap()
            .is_some());

        assert!(bl
            .remove("+86 10 1234 5678", "error in the letter", "carol")
            .await
            .unwrap());
        assert!(!bl.remove("+861012345678", "again", "carol").await.unwrap());
        assert_eq!(bl.is_blocked("+861012345678", now).await.unwrap(), None);
        let audit = bl.audit(Some("010 1234 5678")).await.unwrap();
        let actions: Vec<(&str, &str, &str)> = audit
            .iter()
            .map(|a| (a.action.as_str(), a.reason.as_str(), a.actor.as_str()))
            .collect();
        assert_eq!(
            actions,
            vec![
                ("add", "asked by letter", "alice"),
                ("add", "permanent now", "bob"),
                ("remove", "error in the letter", "carol")
            ]
        );
        // Invalid numbers are typed errors.
        assert!(matches!(
            bl.add("12345", "x", Source::Manual, &[], None, "a").await,
            Err(callqa_qa::QaError::Number(_))
        ));

        // Policy expiry applies to automatic entries.
        let policy = BlacklistPolicy {
            expiry_days: Some(90),
            ..BlacklistPolicy::default()
        };
        let m = meta("x1", "13500135000", "2024-05-01T10:00:00Z");
        let e = apply_policy(&db.pool, &m, &scored("x1", "别再打了"), &policy)
            .await
            .unwrap()
            .unwrap();
        assert!(e.expires_at.is_some());
        assert!(bl
            .is_blocked("13500135000", now + Duration::days(89))
            .await
            .unwrap()
            .is_some());
        assert!(bl
            .is_blocked("13500135000", now + Duration::days(91))
            .await
            .unwrap()
            .is_none());
        db.cleanup().await;
    }
}

#[tokio::test]
async fn csv_import_reports_bad_rows_by_line() {
    let csv = "number,reason,expires_at\n\
               13800138000,asked by email,\n\
               12345,too short,\n\
               +8613900139000,,\n\
               021-87654321,complaint letter,2030-01-31\n\
               13700137000,bad date,next week\n\
               \n\
               +14155550100,\"reason, with comma\"\n";
    for db in TestDb::all().await {
        let bl = Blacklist::new(db.pool.clone());
        let report = bl.import_csv(csv.as_bytes(), "import-job").await.unwrap();
        assert_eq!(report.imported, 3, "{}: {report:?}", db.name);
        let lines: Vec<u64> = report.errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![3, 4, 6], "{report:?}");
        assert!(report.errors[1].message.contains("missing reason"));
        let list = bl.list().await.unwrap();
        let mut numbers: Vec<&str> = list.iter().map(|e| e.number.as_str()).collect();
        numbers.sort();
        assert_eq!(
            numbers,
            vec!["+14155550100", "+8613800138000", "+862187654321"]
        );
        assert!(list.iter().all(|e| e.source == Source::Import));
        let shanghai = list.iter().find(|e| e.number == "+862187654321").unwrap();
        assert_eq!(
            shanghai.expires_at.as_deref(),
            Some("2030-01-31T00:00:00.000Z")
        );
        assert!(list.iter().any(|e| e.reason == "reason, with comma"));
        assert_eq!(bl.audit(None).await.unwrap().len(), 3);
        db.cleanup().await;
    }
}

#[tokio::test]
async fn results_reports_and_version_diff() {
    const N: u64 = 1000;
    let v1 = Scorecard::default_card();
    // Version 2 drops the closing item and forbids "fixed rate" promises.
    let v2_text = include_str!("../scorecards/default.toml")
        .replace("version = 1", "version = 2")
        .replace("id = \"closing\"", "id = \"closing_v2\"")
        .replace("\"shut up\",", "\"shut up\", \"fixed rate\",");
    let v2 = Scorecard::from_toml(&v2_text).unwrap();
    assert_eq!(v2.version, 2);
    let calls: Vec<(CallMeta, Transcript)> = (0..N).map(synthetic_call).collect();
    for db in TestDb::all().await {
        let pool = &db.pool;
        let started = std::time::Instant::now();
        for (m, t) in &calls {
            store_result(pool, m, &score_call(&v1, m, t)).await.unwrap();
        }
        let store_secs = started.elapsed().as_secs_f64();
        let first = load_result(pool, "synthetic-000001")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(first, score_call(&v1, &calls[1].0, &calls[1].1));
        assert_eq!(load_result(pool, "nope").await.unwrap(), None);

        // Reports by agent add up to every call; complaint counts match the results.
        let expected_complaints = calls
            .iter()
            .filter(|(m, t)| score_call(&v1, m, t).has_flag("complaint"))
            .count() as u64;
        let rows = qa_report(pool, ReportBy::Agent, None, None).await.unwrap();
        assert_eq!(rows.len(), 5);
        assert_eq!(rows.iter().map(|r| r.calls).sum::<u64>(), N);
        assert_eq!(
            rows.iter().map(|r| r.complaints).sum::<u64>(),
            expected_complaints
        );
        for r in &rows {
            assert!(r.min_score <= r.avg_score && r.avg_score <= r.max_score);
            assert!((r.complaint_rate - r.complaints as f64 / r.calls as f64).abs() < 1e-3);
        }
        let csv = to_csv(&rows).unwrap();
        assert!(csv.starts_with("key,calls,avg_score,min_score,max_score,auto_failed,complaints,complaint_rate,refunds,opt_outs\n"));
        assert_eq!(csv.lines().count(), 6);
        // A one-day window holds only that day's calls.
        let day = qa_report(pool, ReportBy::Day, Some("2024-05-02"), Some("2024-05-02"))
            .await
            .unwrap();
        assert_eq!(day.len(), 1);
        assert_eq!(day[0].key, "2024-05-02");
        assert_eq!(
            day[0].calls,
            calls
                .iter()
                .filter(|(m, _)| m.started_at.starts_with("2024-05-02"))
                .count() as u64
        );
        let by_number = complaints_report(pool, ReportBy::Number, None, None)
            .await
            .unwrap();
        assert_eq!(by_number.len(), 50);
        assert!(by_number.iter().all(|r| r.key.starts_with("+86138")));
        assert_eq!(
            by_number.iter().map(|r| r.complaints).sum::<u64>(),
            expected_complaints
        );

        // Re-score everything with version 2: current results are overwritten, history keeps both.
        let started = std::time::Instant::now();
        for (m, t) in &calls {
            store_result(pool, m, &score_call(&v2, m, t)).await.unwrap();
        }
        let rescore_secs = started.elapsed().as_secs_f64();
        assert_eq!(
            count(pool, "SELECT COUNT(*) FROM qa_results").await,
            N as i64
        );
        assert_eq!(
            count(pool, "SELECT COUNT(*) FROM qa_history").await,
            2 * N as i64
        );
        assert_eq!(
            load_result(pool, "synthetic-000001")
                .await
                .unwrap()
                .unwrap()
                .version,
            2
        );

        let savings_calls = calls
            .iter()
            .filter(|(m, _)| m.campaign.as_deref() == Some("savings"))
            .count();
        let diff = version_diff(pool, "savings", 1, 2).await.unwrap();
        assert_eq!(diff.calls_rescored, savings_calls, "{}", db.name);
        let ids: Vec<&str> = diff.items_changed.iter().map(|i| i.id.as_str()).collect();
        assert!(
            ids.contains(&"closing") && ids.contains(&"closing_v2"),
            "{ids:?}"
        );
        // English calls promise a "fixed rate": that item's pass rate drops.
        let promises = diff
            .items_changed
            .iter()
            .find(|i| i.id == "no_false_promises")
            .unwrap();
        assert!(promises.pass_rate_after.unwrap() < promises.pass_rate_before.unwrap());
        assert!(diff.mean_score_after < diff.mean_score_before);
        assert!(diff.calls_score_changed > 0);
        assert!(diff.flags_changed.is_empty());
        let json = serde_json::to_value(&diff).unwrap();
        assert_eq!(json["from_version"], 1);
        eprintln!(
            "{}: stored {N} results in {store_secs:.2} s, re-scored and stored {N} in {rescore_secs:.2} s",
            db.name
        );
        db.cleanup().await;
    }
}

#[tokio::test]
async fn bad_started_at_is_a_typed_error() {
    for db in TestDb::all().await {
        let m = meta("t1", "13800138000", "yesterday");
        let r = scored("t1", "好的");
        assert!(matches!(
            store_result(&db.pool, &m, &r).await,
            Err(callqa_qa::QaError::Timestamp { .. })
        ));
        db.cleanup().await;
    }
}
