//! The real router on SQLite in a temp dir: authentication and roles on every API route,
//! number masking for viewers, audio Range playback with auditing, the OpenAPI document
//! against the routes, bad queries, the UI login flow, retry, and signed webhooks.

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use callqa_ingest::config::{DatabaseConfig, StorageConfig};
use callqa_ingest::db::{CallRow, Db};
use callqa_ingest::queue::{EmbeddedQueue, JobQueue, Stage};
use callqa_ingest::storage::Storage;
use callqa_ingest::transcript::{CallMeta, Segment, Speaker, Transcript};
use callqa_search::{CallDoc, SearchIndex};
use callqa_web::{add_user, router, Role, WebConfig, WebState};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

const CALL: &str = "c-0001";
const NUMBER: &str = "+8613800138000";
const AUDIO_KEY: &str = "recordings/2026/03/09/c-0001.wav";

struct Env {
    _dir: tempfile::TempDir,
    app: Router,
    state: WebState,
    audio: Vec<u8>,
    admin: String,
    analyst: String,
    viewer: String,
    viewer_password: String,
}

async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::connect(&DatabaseConfig::default(), dir.path())
        .await
        .unwrap();
    callqa_qa::migrate(db.pool()).await.unwrap();
    callqa_web::migrate(db.pool()).await.unwrap();
    let storage = Storage::open(&StorageConfig::default(), dir.path()).unwrap();

    // A fake recording: the bytes are served, never decoded.
    let audio: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
    let file = dir.path().join("a.wav");
    std::fs::write(&file, &audio).unwrap();
    storage.put_file(AUDIO_KEY, &file).await.unwrap();

    let seg = |speaker, start_ms, end_ms, text: &str| Segment {
        speaker,
        start_ms,
        end_ms,
        text: text.into(),
    };
    let transcript = Transcript {
        call_id: CALL.into(),
        language: Some("zh".into()),
        duration_ms: 9000,
        model: "test".into(),
        segments: vec![
            seg(Speaker::Agent, 0, 2000, "您好，这里是客服中心"),
            seg(
                Speaker::Customer,
                2100,
                5000,
                "我要退款，我的号码是13800138000",
            ),
            seg(Speaker::Agent, 5200, 9000, "好的，马上为您处理退款"),
        ],
    };
    let tkey = "transcripts/2026/03/09/c-0001.json";
    let tfile = dir.path().join("t.json");
    std::fs::write(&tfile, serde_json::to_vec(&transcript).unwrap()).unwrap();
    storage.put_file(tkey, &tfile).await.unwrap();

    let started = "2026-03-09T10:00:00.000Z";
    db.insert_call(&CallRow {
        call_id: CALL.into(),
        status: "done".into(),
        campaign: Some("spring".into()),
        agent: Some("alice".into()),
        customer: Some(NUMBER.into()),
        started_at: started.into(),
        duration_ms: Some(9000),
        language: Some("zh".into()),
        recording_key: AUDIO_KEY.into(),
        recording_bytes: audio.len() as i64,
        source_name: Some("13800138000.wav".into()),
        transcript_key: Some(tkey.into()),
        error: None,
        created_at: started.into(),
        updated_at: started.into(),
    })
    .await
    .unwrap();
    let meta = CallMeta {
        call_id: CALL.into(),
        campaign: Some("spring".into()),
        agent: Some("alice".into()),
        customer: Some(NUMBER.into()),
        started_at: started.into(),
        duration_ms: 9000,
        language: Some("zh".into()),
    };
    let qa = callqa_qa::score_call(&callqa_qa::Scorecard::default_card(), &meta, &transcript);
    callqa_qa::store_result(db.pool(), &meta, &qa)
        .await
        .unwrap();

    let index = Arc::new(SearchIndex::open_in_ram().unwrap());
    let mut w = index.writer_with(1, 20_000_000).unwrap();
    w.upsert(&CallDoc {
        meta,
        transcript,
        status: "done".into(),
        qa_score: Some(qa.score),
        flags: qa.flags.clone(),
    })
    .unwrap();
    w.commit().unwrap();
    drop(w);

    let queue: Arc<dyn JobQueue> = Arc::new(EmbeddedQueue::new(db.clone(), "callqa"));
    let pool = db.pool().clone();
    let state = WebState::new(db, storage, index, queue, WebConfig::default());
    let admin = add_user(&pool, "root", Role::Admin).await.unwrap();
    let analyst = add_user(&pool, "ann", Role::Analyst).await.unwrap();
    let viewer = add_user(&pool, "vic", Role::Viewer).await.unwrap();
    Env {
        _dir: dir,
        app: router(state.clone()),
        state,
        audio,
        admin: admin.token,
        analyst: analyst.token,
        viewer: viewer.token,
        viewer_password: viewer.password,
    }
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

async fn send(
    app: &Router,
    method: Method,
    uri: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    let mut req = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = app
        .clone()
        .oneshot(req.body(Body::from(body.to_string())).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let body = res.into_body().collect().await.unwrap().to_bytes().to_vec();
    Answer {
        status,
        headers,
        body,
    }
}

async fn get(app: &Router, uri: &str, token: &str) -> Answer {
    let auth = format!("Bearer {token}");
    send(app, Method::GET, uri, &[("authorization", &auth)], "").await
}

/// Every API route, the least role that may use it, and a body that parses.
fn api_routes() -> Vec<(Method, String, Role, &'static str)> {
    vec![
        (
            Method::GET,
            "/api/search?q=%E9%80%80%E6%AC%BE".into(),
            Role::Viewer,
            "",
        ),
        (Method::GET, "/api/calls".into(), Role::Viewer, ""),
        (Method::GET, format!("/api/calls/{CALL}"), Role::Viewer, ""),
        (
            Method::GET,
            format!("/api/calls/{CALL}/audio"),
            Role::Analyst,
            "",
        ),
        (
            Method::POST,
            format!("/api/calls/{CALL}/retry"),
            Role::Analyst,
            "",
        ),
        (Method::GET, "/api/dead-letters".into(), Role::Analyst, ""),
        (
            Method::GET,
            "/api/reports/qa?by=agent".into(),
            Role::Viewer,
            "",
        ),
        (
            Method::GET,
            "/api/reports/complaints?by=campaign".into(),
            Role::Viewer,
            "",
        ),
        (Method::GET, "/api/blacklist".into(), Role::Analyst, ""),
        (
            Method::POST,
            "/api/blacklist".into(),
            Role::Admin,
            r#"{"number": "+8613900139000", "reason": "asked"}"#,
        ),
        (
            Method::DELETE,
            "/api/blacklist/%2B8613700137000?reason=ok".into(),
            Role::Admin,
            "",
        ),
        (
            Method::POST,
            "/api/blacklist/import".into(),
            Role::Admin,
            "+8613600136000,imported\n",
        ),
        (Method::GET, "/api/campaigns".into(), Role::Viewer, ""),
        (
            Method::GET,
            "/api/campaigns/spring".into(),
            Role::Viewer,
            "",
        ),
        (Method::GET, "/api/consents".into(), Role::Viewer, ""),
        (
            Method::GET,
            "/api/consents?number=%2B8613800138000".into(),
            Role::Analyst,
            "",
        ),
        (Method::GET, "/api/scorecards".into(), Role::Viewer, ""),
        (Method::GET, "/api/audit".into(), Role::Admin, ""),
        (Method::GET, "/api/users".into(), Role::Admin, ""),
        (
            Method::POST,
            "/api/users".into(),
            Role::Admin,
            r#"{"name": "newbie", "role": "viewer"}"#,
        ),
    ]
}

#[tokio::test]
async fn every_api_route_checks_token_and_role() {
    let e = env().await;
    for (method, uri, min, body) in api_routes() {
        let json = [("content-type", "application/json")];
        let ct: &[(&str, &str)] = if body.starts_with('{') { &json } else { &[] };
        let none = send(&e.app, method.clone(), &uri, ct, body).await;
        assert_eq!(
            none.status,
            StatusCode::UNAUTHORIZED,
            "{method} {uri} without token"
        );
        assert!(none.json()["error"].is_string());
        let mut bad = ct.to_vec();
        bad.push(("authorization", "Bearer cqa_not_a_token"));
        assert_eq!(
            send(&e.app, method.clone(), &uri, &bad, body).await.status,
            StatusCode::UNAUTHORIZED,
            "{method} {uri} bad token"
        );
        let mut basic = ct.to_vec();
        basic.push(("authorization", "Basic dXNlcjpwYXNz"));
        assert_eq!(
            send(&e.app, method.clone(), &uri, &basic, body)
                .await
                .status,
            StatusCode::UNAUTHORIZED,
            "{method} {uri} basic"
        );
        for (role, token) in [
            (Role::Viewer, &e.viewer),
            (Role::Analyst, &e.analyst),
            (Role::Admin, &e.admin),
        ] {
            let auth = format!("Bearer {token}");
            let mut h = ct.to_vec();
            h.push(("authorization", &auth));
            let a = send(&e.app, method.clone(), &uri, &h, body).await;
            if role < min {
                assert_eq!(
                    a.status,
                    StatusCode::FORBIDDEN,
                    "{method} {uri} as {role:?}: {}",
                    a.text()
                );
            } else {
                assert!(
                    a.status != StatusCode::FORBIDDEN
                        && a.status != StatusCode::UNAUTHORIZED
                        && !a.status.is_server_error(),
                    "{method} {uri} as {role:?}: {} {}",
                    a.status,
                    a.text()
                );
            }
        }
    }
    // Open routes.
    assert_eq!(
        send(&e.app, Method::GET, "/healthz", &[], "").await.status,
        StatusCode::OK
    );
    let m = send(&e.app, Method::GET, "/metrics", &[], "").await;
    assert_eq!(m.status, StatusCode::OK);
    let text = m.text();
    assert!(
        text.contains("callqa_queue_depth{stage=\"transcribe\"}"),
        "{text}"
    );
    assert!(text.contains("callqa_calls{status=\"done\"} 1"), "{text}");
    assert!(text.contains("callqa_search_seconds_count"), "{text}");
}

#[tokio::test]
async fn viewer_never_sees_a_full_number() {
    let e = env().await;
    let masked = "138****8000";
    for uri in [
        "/api/search?q=%E9%80%80%E6%AC%BE",
        "/api/calls",
        &format!("/api/calls/{CALL}"),
    ] {
        let v = get(&e.app, uri, &e.viewer).await;
        assert_eq!(v.status, StatusCode::OK, "{uri}");
        let text = v.text();
        assert!(
            !text.contains("13800138000"),
            "{uri} leaks the number: {text}"
        );
        assert!(
            text.contains(masked),
            "{uri} shows no masked number: {text}"
        );
        let a = get(&e.app, uri, &e.analyst).await;
        assert!(
            a.text().contains(NUMBER),
            "{uri}: analysts see numbers in full"
        );
    }
    let search = get(&e.app, "/api/search?q=%E9%80%80%E6%AC%BE", &e.viewer)
        .await
        .json();
    assert_eq!(search["total"], 1);
    assert_eq!(search["hits"][0]["call_id"], CALL);
    assert_eq!(search["hits"][0]["customer"], "+86138****8000");
    assert!(search["hits"][0]["snippets"]
        .as_array()
        .is_some_and(|s| !s.is_empty()));
    let show = get(&e.app, &format!("/api/calls/{CALL}"), &e.viewer)
        .await
        .json();
    for key in [
        "call_id",
        "status",
        "campaign",
        "agent",
        "customer",
        "started_at",
        "duration_ms",
        "language",
        "recording",
        "segments",
        "qa",
        "error",
    ] {
        assert!(show.get(key).is_some(), "calls show lacks {key}");
    }
    assert_eq!(show["segments"].as_array().map(Vec::len), Some(3));
    assert_eq!(show["recording"]["key"], AUDIO_KEY);
    // Reports grouped by number mask their keys too.
    let r = get(&e.app, "/api/reports/complaints?by=number", &e.viewer).await;
    assert!(
        !r.text().contains("13800138000") && r.text().contains(masked),
        "{}",
        r.text()
    );

    // The UI, through a real login session.
    let login = send(
        &e.app,
        Method::POST,
        "/login",
        &[("content-type", "application/x-www-form-urlencoded")],
        &format!("name=vic&password={}&next=%2Fsearch", e.viewer_password),
    )
    .await;
    assert_eq!(login.status, StatusCode::SEE_OTHER);
    let cookie = login.headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    for uri in [
        "/search?q=%E9%80%80%E6%AC%BE",
        &format!("/calls/{CALL}?q=%E9%80%80%E6%AC%BE"),
    ] {
        let page = send(&e.app, Method::GET, uri, &[("cookie", &cookie)], "").await;
        assert_eq!(page.status, StatusCode::OK, "{uri}");
        let html = page.text();
        assert!(
            html.contains(masked) && !html.contains("13800138000"),
            "{uri}: {html}"
        );
        assert!(html.contains("退款"), "{uri}");
    }
}

#[tokio::test]
async fn audio_honours_range_and_is_audited() {
    let e = env().await;
    let uri = format!("/api/calls/{CALL}/audio");
    let auth = format!("Bearer {}", e.analyst);
    let part = send(
        &e.app,
        Method::GET,
        &uri,
        &[("authorization", &auth), ("range", "bytes=0-99")],
        "",
    )
    .await;
    assert_eq!(part.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        part.headers[header::CONTENT_RANGE],
        format!("bytes 0-99/{}", e.audio.len())
    );
    assert_eq!(part.headers[header::ACCEPT_RANGES], "bytes");
    assert_eq!(part.headers[header::CONTENT_TYPE], "audio/wav");
    assert_eq!(part.body, e.audio[..100]);
    let tail = send(
        &e.app,
        Method::GET,
        &uri,
        &[("authorization", &auth), ("range", "bytes=4900-")],
        "",
    )
    .await;
    assert_eq!(tail.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(tail.body, e.audio[4900..]);
    let whole = send(&e.app, Method::GET, &uri, &[("authorization", &auth)], "").await;
    assert_eq!(whole.status, StatusCode::OK);
    assert_eq!(whole.body, e.audio);
    let beyond = send(
        &e.app,
        Method::GET,
        &uri,
        &[("authorization", &auth), ("range", "bytes=99999-")],
        "",
    )
    .await;
    assert_eq!(beyond.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(
        beyond.headers[header::CONTENT_RANGE],
        format!("bytes */{}", e.audio.len())
    );

    let audit = get(&e.app, "/api/audit?action=playback", &e.admin)
        .await
        .json();
    let entries = audit["entries"].as_array().unwrap();
    // The 0-99 request and the whole-file request start playbacks; the seek to 4900 does not.
    assert_eq!(entries.len(), 2, "{audit}");
    assert!(entries
        .iter()
        .all(|x| x["actor"] == "ann" && x["target"] == CALL));
}

#[tokio::test]
async fn openapi_paths_all_exist() {
    let e = env().await;
    let doc = send(&e.app, Method::GET, "/api/openapi.json", &[], "").await;
    assert_eq!(doc.status, StatusCode::OK);
    let doc = doc.json();
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    let paths = doc["paths"].as_object().unwrap();
    let documented: Vec<(Method, String)> = paths
        .iter()
        .flat_map(|(p, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .map(move |m| (m.to_uppercase().parse::<Method>().unwrap(), p.clone()))
        })
        .collect();
    for (method, path) in &documented {
        let uri = path
            .replace("{id}", CALL)
            .replace("{number}", "%2B8613800138000")
            .replace("{name}", "spring");
        assert!(!uri.contains('{'), "unfilled parameter in {path}");
        // Without a token a route that exists answers 401; a missing one 404 or 405.
        let a = send(&e.app, method.clone(), &uri, &[], "").await;
        assert_eq!(
            a.status,
            StatusCode::UNAUTHORIZED,
            "{method} {path} is documented but answers {}",
            a.status
        );
    }
    // And every API route the router has is documented.
    for (method, uri, _, _) in api_routes() {
        let path = uri
            .split('?')
            .next()
            .unwrap()
            .replace(CALL, "{id}")
            .replace("%2B8613700137000", "{number}")
            .replace("/api/campaigns/spring", "/api/campaigns/{name}");
        assert!(
            documented.contains(&(method.clone(), path.clone())),
            "{method} {path} is not in the OpenAPI document"
        );
    }
}

#[tokio::test]
async fn bad_query_is_a_400_with_reason() {
    let e = env().await;
    let a = get(
        &e.app,
        "/api/search?q=%28refund%20OR%20complaint",
        &e.viewer,
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(
        a.json()["error"]
            .as_str()
            .is_some_and(|s| s.contains("does not parse")),
        "{}",
        a.text()
    );
    let b = get(&e.app, "/api/search?q=x&min_score=high", &e.viewer).await;
    assert_eq!(b.status, StatusCode::BAD_REQUEST);
    assert!(b.json()["error"].is_string());
    let c = get(&e.app, "/api/search?speaker=robot", &e.viewer).await;
    assert_eq!(c.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn ui_requires_login_and_shows_query_errors() {
    let e = env().await;
    let anon = send(&e.app, Method::GET, "/search?q=x", &[], "").await;
    assert_eq!(anon.status, StatusCode::SEE_OTHER);
    assert_eq!(
        anon.headers[header::LOCATION],
        "/login?next=%2Fsearch%3Fq%3Dx"
    );
    assert_eq!(
        send(&e.app, Method::GET, "/login", &[], "").await.status,
        StatusCode::OK
    );
    let wrong = send(
        &e.app,
        Method::POST,
        "/login",
        &[("content-type", "application/x-www-form-urlencoded")],
        "name=vic&password=nope",
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let auth = format!("Bearer {}", e.viewer);
    let bad = send(
        &e.app,
        Method::GET,
        "/search?q=%22%E6%88%91%E8%A6%81",
        &[("authorization", &auth)],
        "",
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.text().contains("alert error") && !bad.text().contains("{\"error\""));
    let zh = send(
        &e.app,
        Method::GET,
        "/search?lang=zh",
        &[("authorization", &auth)],
        "",
    )
    .await;
    assert!(zh.text().contains("搜索"));
    assert!(zh.headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .starts_with("callqa_lang=zh"));
    let en = send(
        &e.app,
        Method::GET,
        "/reports",
        &[("authorization", &auth), ("accept-language", "en-US")],
        "",
    )
    .await;
    assert_eq!(en.status, StatusCode::OK);
    assert!(
        en.text().contains("<svg") && en.text().contains("Average score"),
        "{}",
        en.text()
    );
    // The call page: player for analysts, seekable turns, highlighted query words, QA.
    let an = format!("Bearer {}", e.analyst);
    let call = send(
        &e.app,
        Method::GET,
        &format!("/calls/{CALL}?q=%E9%80%80%E6%AC%BE"),
        &[("authorization", &an)],
        "",
    )
    .await;
    assert_eq!(call.status, StatusCode::OK);
    let html = call.text();
    assert!(
        html.contains(&format!(
            "<audio id=\"player\" controls preload=\"metadata\" src=\"/api/calls/{CALL}/audio\""
        )),
        "{html}"
    );
    assert!(
        html.contains("class=\"seg customer\" id=\"seg-1\" data-start=\"2100\""),
        "{html}"
    );
    assert!(html.contains("<mark>退款</mark>"), "{html}");
    assert!(html.contains("13800138000"), "analysts see the number");
    let viewer_call = send(
        &e.app,
        Method::GET,
        &format!("/calls/{CALL}"),
        &[("authorization", &auth)],
        "",
    )
    .await;
    assert!(
        !viewer_call.text().contains("<audio"),
        "viewers get no player"
    );
    let ad = format!("Bearer {}", e.admin);
    let bl_admin = send(
        &e.app,
        Method::GET,
        "/blacklist",
        &[("authorization", &ad)],
        "",
    )
    .await;
    assert_eq!(bl_admin.status, StatusCode::OK);
    assert!(bl_admin.text().contains("action=\"/blacklist/add\""));
    let added = send(
        &e.app,
        Method::POST,
        "/blacklist/add",
        &[
            ("authorization", &ad),
            ("content-type", "application/x-www-form-urlencoded"),
        ],
        "number=%2B8613500135000&reason=asked&expires_at=",
    )
    .await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.text());
    let dl = send(
        &e.app,
        Method::GET,
        "/dead-letters",
        &[("authorization", &an)],
        "",
    )
    .await;
    assert_eq!(dl.status, StatusCode::OK);
    // Viewers may not open management pages.
    let bl = send(
        &e.app,
        Method::GET,
        "/blacklist",
        &[("authorization", &auth)],
        "",
    )
    .await;
    assert_eq!(bl.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn failed_call_is_retried() {
    let e = env().await;
    e.state
        .db
        .set_status(CALL, "failed", Some("decode: bad header"))
        .await
        .unwrap();
    let dl = get(&e.app, "/api/dead-letters", &e.analyst).await.json();
    assert_eq!(dl["calls"][0]["call_id"], CALL);
    assert_eq!(dl["calls"][0]["error"], "decode: bad header");
    let auth = format!("Bearer {}", e.analyst);
    let r = send(
        &e.app,
        Method::POST,
        &format!("/api/calls/{CALL}/retry"),
        &[("authorization", &auth)],
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(
        e.state.db.get_call(CALL).await.unwrap().unwrap().status,
        "queued"
    );
    assert_eq!(e.state.queue.depth(Stage::Transcribe).await.unwrap(), 1);
    let again = send(
        &e.app,
        Method::POST,
        &format!("/api/calls/{CALL}/retry"),
        &[("authorization", &auth)],
        "",
    )
    .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn blacklist_changes_need_reasons() {
    let e = env().await;
    let auth = format!("Bearer {}", e.admin);
    let json = [
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
    ];
    let add = send(
        &e.app,
        Method::POST,
        "/api/blacklist",
        &json,
        r#"{"number": "13900139000", "reason": "asked"}"#,
    )
    .await;
    assert_eq!(add.status, StatusCode::CREATED, "{}", add.text());
    assert_eq!(add.json()["number"], "+8613900139000");
    let noreason = send(
        &e.app,
        Method::POST,
        "/api/blacklist",
        &json,
        r#"{"number": "13900139001", "reason": " "}"#,
    )
    .await;
    assert_eq!(noreason.status, StatusCode::BAD_REQUEST);
    let list = get(&e.app, "/api/blacklist?q=139", &e.analyst).await.json();
    assert_eq!(list["entries"].as_array().map(Vec::len), Some(1));
    let del = send(
        &e.app,
        Method::DELETE,
        "/api/blacklist/%2B8613900139000",
        &json,
        "",
    )
    .await;
    assert_eq!(del.status, StatusCode::BAD_REQUEST, "reason required");
    let del = send(
        &e.app,
        Method::DELETE,
        "/api/blacklist/%2B8613900139000?reason=mistake",
        &json,
        "",
    )
    .await;
    assert_eq!(del.status, StatusCode::OK, "{}", del.text());
    let imp = send(
        &e.app,
        Method::POST,
        "/api/blacklist/import",
        &[("authorization", &auth)],
        "number,reason\n+8613600136000,x\nnot-a-number,y\n",
    )
    .await;
    let imp = imp.json();
    assert_eq!(imp["imported"], 1);
    assert_eq!(imp["errors"].as_array().map(Vec::len), Some(1));
}

/// What the test CRM received: the signature header and the body.
type Delivery = (Option<String>, Vec<u8>);

#[tokio::test]
async fn webhook_is_signed_and_retried() {
    let seen: Arc<Mutex<Vec<Delivery>>> = Arc::default();
    let seen2 = seen.clone();
    let hook = Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let seen = seen2.clone();
            async move {
                let sig = headers
                    .get("x-callqa-signature")
                    .map(|v| v.to_str().unwrap().to_string());
                let mut s = seen.lock().unwrap();
                s.push((sig, body.to_vec()));
                // The first delivery fails, so the sender must retry.
                if s.len() == 1 {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::OK
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, hook).await });
    let cfg = WebConfig {
        webhook_url: Some(format!("http://{addr}/hook")),
        webhook_secret: Some("s3cret".into()),
        webhook_backoff_ms: 10,
        ..WebConfig::default()
    };
    let payload = serde_json::json!({"call_id": CALL, "qa": {"score": 80.0}});
    callqa_web::send_webhook(&cfg, &payload).await.unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    let (sig, body) = &seen[1];
    assert_eq!(serde_json::from_slice::<Value>(body).unwrap(), payload);
    assert_eq!(
        sig.as_deref(),
        Some(callqa_web::webhook::signature("s3cret", body).as_str())
    );
    server.abort();

    let dead = WebConfig {
        webhook_url: Some("http://127.0.0.1:9/none".into()),
        webhook_backoff_ms: 1,
        ..WebConfig::default()
    };
    assert!(matches!(
        callqa_web::send_webhook(&dead, &payload).await,
        Err(callqa_web::WebError::Webhook { attempts: 3, .. })
    ));
}

#[tokio::test]
async fn serve_stops_when_asked() {
    let e = env().await;
    let (tx, rx) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(callqa_web::serve(e.state.clone(), "127.0.0.1:0", rx));
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(
        !server.is_finished(),
        "the server keeps running until told to stop"
    );
    tx.send(true).unwrap();
    let done = tokio::time::timeout(std::time::Duration::from_secs(5), server).await;
    assert!(
        matches!(done, Ok(Ok(Ok(())))),
        "graceful shutdown: {done:?}"
    );
    let (_tx2, rx2) = tokio::sync::watch::channel(false);
    let bad = callqa_web::serve(e.state.clone(), "not-an-address", rx2).await;
    assert!(matches!(bad, Err(callqa_web::WebError::Listen { .. })));
}

const CAMPAIGN_TOML: &str = r#"
name = "spring"
prompt = "prompt.wav"
contacts = [{ number = "+8613800138000" }, { number = "+8613900139000" }]
"#;

#[tokio::test]
async fn campaign_refusals_show_on_api_and_page() {
    let e = env().await;
    // Before any campaign is loaded: an empty list, and an empty state on the page.
    let none = get(&e.app, "/api/campaigns", &e.viewer).await;
    assert_eq!(none.status, StatusCode::OK, "{}", none.text());
    assert_eq!(none.json()["campaigns"].as_array().map(Vec::len), Some(0));
    let empty = get(&e.app, "/campaigns?lang=en", &e.viewer).await;
    assert_eq!(empty.status, StatusCode::OK);
    assert!(
        empty.text().contains("No campaigns yet"),
        "{}",
        empty.text()
    );
    assert_eq!(
        get(&e.app, "/api/campaigns/nosuch", &e.viewer).await.status,
        StatusCode::NOT_FOUND
    );

    let store = callqa_dialer::CampaignStore::open(e.state.db.pool().clone())
        .await
        .unwrap();
    let cfg = callqa_dialer::CampaignConfig::from_toml(CAMPAIGN_TOML, std::path::Path::new("/tmp"))
        .unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    assert_eq!(store.load(&cfg, now).await.unwrap(), 2);
    use callqa_dialer::RefusalKind;
    for (i, (number, kind, reason)) in [
        (NUMBER, RefusalKind::Blacklist, "on the blacklist"),
        ("+8613900139000", RefusalKind::Blacklist, "on the blacklist"),
        (
            "+8613900139000",
            RefusalKind::NoConsent,
            "no marketing consent",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        store
            .record_refusal("spring", number, kind, reason, now + i as i64)
            .await
            .unwrap();
    }

    let list = get(&e.app, "/api/campaigns", &e.viewer).await.json();
    let c = &list["campaigns"][0];
    assert_eq!(c["name"], "spring");
    assert_eq!(c["state"], "loaded");
    assert_eq!(c["refused"]["blacklist"], 2);
    assert_eq!(c["refused"]["no_consent"], 1);
    assert_eq!(c["contacts"], 2);

    let d = get(&e.app, "/api/campaigns/spring", &e.analyst).await;
    assert_eq!(d.status, StatusCode::OK, "{}", d.text());
    let d = d.json();
    assert_eq!(d["status"]["refused"]["blacklist"], 2);
    let groups = d["refusals_by_reason"].as_array().unwrap();
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[0]["kind"], "blacklist");
    assert_eq!(groups[0]["reason"], "on the blacklist");
    assert_eq!(groups[0]["count"], 2);
    assert_eq!(groups[1]["count"], 1);
    let recent = d["recent_refusals"].as_array().unwrap();
    assert_eq!(recent.len(), 3);
    // Newest first, full numbers for analysts.
    assert_eq!(recent[0]["kind"], "no_consent");
    assert_eq!(recent[2]["number"], NUMBER);

    // Viewers get the same figures with masked numbers.
    let v = get(&e.app, "/api/campaigns/spring", &e.viewer).await;
    assert_eq!(v.status, StatusCode::OK);
    assert!(!v.text().contains("13800138000"), "{}", v.text());
    assert!(!v.text().contains("13900139000"), "{}", v.text());
    assert_eq!(v.json()["status"]["refused"]["no_consent"], 1);

    let page = get(&e.app, "/campaigns/spring?lang=en", &e.viewer).await;
    assert_eq!(page.status, StatusCode::OK);
    let html = page.text();
    assert!(html.contains(r#"data-kind="blacklist">2<"#), "{html}");
    assert!(html.contains(r#"data-kind="no_consent">1<"#), "{html}");
    assert!(html.contains("no marketing consent"), "{html}");
    assert!(html.contains("+86138****8000"), "{html}");
    assert!(!html.contains("13800138000"), "{html}");
    let listing = get(&e.app, "/campaigns", &e.viewer).await.text();
    assert!(listing.contains(r#"href="/campaigns/spring""#), "{listing}");
    assert!(
        listing.contains(r#"href="/consents""#),
        "nav links consents"
    );
}

#[tokio::test]
async fn consents_mask_numbers_for_viewers() {
    let e = env().await;
    let page = get(&e.app, "/consents?lang=en", &e.analyst).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.text().contains("No consent records"),
        "{}",
        page.text()
    );

    let consents = callqa_dialer::Consents::open(e.state.db.pool().clone())
        .await
        .unwrap();
    let granted = chrono::DateTime::parse_from_rfc3339("2026-01-05T08:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    consents
        .add(
            &callqa_dialer::ConsentRecord {
                number: NUMBER.into(),
                scope: "marketing".into(),
                proof: "form-42".into(),
                granted_at: granted,
                expires_at: None,
            },
            chrono::Utc::now(),
        )
        .await
        .unwrap();

    assert_eq!(
        send(&e.app, Method::GET, "/api/consents", &[], "")
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let v = get(&e.app, "/api/consents", &e.viewer).await;
    assert_eq!(v.status, StatusCode::OK);
    assert!(!v.text().contains("13800138000"), "{}", v.text());
    assert_eq!(v.json()["consents"][0]["number"], "+86138****8000");
    assert_eq!(v.json()["consents"][0]["proof"], "form-42");
    // A viewer may not confirm a full number by looking it up.
    assert_eq!(
        get(&e.app, "/api/consents?number=13800138000", &e.viewer)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let vp = get(&e.app, "/consents", &e.viewer).await.text();
    assert!(
        vp.contains("+86138****8000") && !vp.contains("13800138000"),
        "{vp}"
    );

    let a = get(
        &e.app,
        "/api/consents?number=%2B86%20138-0013-8000",
        &e.analyst,
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    let rows = a.json()["consents"].as_array().unwrap().clone();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["number"], NUMBER);
    assert_eq!(rows[0]["granted_at"], "2026-01-05T08:00:00Z");
    let other = get(&e.app, "/api/consents?number=%2B8613900139000", &e.analyst).await;
    assert_eq!(other.json()["consents"].as_array().map(Vec::len), Some(0));
    assert_eq!(
        get(&e.app, "/api/consents?number=abc", &e.analyst)
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn scorecards_list_versions_with_counts() {
    let e = env().await;
    assert_eq!(
        send(&e.app, Method::GET, "/api/scorecards", &[], "")
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let card = callqa_qa::Scorecard::default_card();
    let a = get(&e.app, "/api/scorecards", &e.viewer).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    let rows = a.json()["scorecards"].as_array().unwrap().clone();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["scorecard"], card.id.as_str());
    assert_eq!(rows[0]["version"], card.version);
    assert_eq!(rows[0]["calls"], 1);
    assert_eq!(rows[0]["current"], 1);
    let stored: f64 = sqlx::query_scalar("SELECT score FROM qa_results")
        .fetch_one(e.state.db.pool())
        .await
        .unwrap();
    assert_eq!(
        rows[0]["mean_score"].as_f64(),
        Some((stored * 100.0).round() / 100.0)
    );
    let page = get(&e.app, "/scorecards?lang=en", &e.viewer).await.text();
    assert!(
        page.contains(rows[0]["scorecard"].as_str().unwrap()),
        "{page}"
    );
}
