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
/// The registered caller ID of the test server's dialer.
const CALLER_ID: &str = "+861012345678";
/// A scorecard that parses (the route walk saves it as admin).
const CARD: &str = "id = \"spring\"\nversion = 1\nname = \"Spring\"\n\n[[items]]\nid = \"greeting\"\nkind = \"required_phrase\"\nphrases = [\"您好\"]\n";

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
    let dialer = callqa_dialer::DialerConfig {
        caller_ids: vec![CALLER_ID.into()],
        ..Default::default()
    };
    let state = WebState::new(db, storage, index, queue, WebConfig::default())
        .with_dialing(dialer, dir.path().join("spool"))
        .with_scorecards_dir(dir.path().join("scorecards"));
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
        (
            Method::POST,
            "/api/campaigns/spring/start".into(),
            Role::Admin,
            "",
        ),
        (
            Method::POST,
            "/api/campaigns/spring/pause".into(),
            Role::Admin,
            "",
        ),
        (Method::GET, "/api/consents".into(), Role::Viewer, ""),
        (
            Method::POST,
            "/api/consents/import".into(),
            Role::Admin,
            "+8613600136000,marketing,form-9,2026-01-05T08:00:00Z\n",
        ),
        (
            Method::GET,
            "/api/consents?number=%2B8613800138000".into(),
            Role::Analyst,
            "",
        ),
        (Method::GET, "/api/scorecards".into(), Role::Viewer, ""),
        (
            Method::GET,
            "/api/scorecards/spring".into(),
            Role::Viewer,
            "",
        ),
        (
            Method::PUT,
            "/api/scorecards/spring".into(),
            Role::Admin,
            CARD,
        ),
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
    // The uploaded file's name is the customer's number here: masked like one.
    assert_eq!(show["file"], "138****8000.wav");
    let full = get(&e.app, &format!("/api/calls/{CALL}"), &e.analyst)
        .await
        .json();
    assert_eq!(full["file"], "13800138000.wav");
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

/// Recordings browsers cannot play, made by a real encoder (sox; GSM 06.10 through libgsm,
/// as Asterisk's `wav49`, and Asterisk's headerless μ-law `.ulaw`), are served as 16-bit PCM
/// WAV, whole and by range.
#[tokio::test]
async fn gsm_and_headerless_recordings_play_as_pcm_wav() {
    let e = env().await;
    let dir = tempfile::tempdir().unwrap();
    let auth = format!("Bearer {}", e.analyst);
    for (n, (file, sox_out)) in [
        ("g.wav", &["-e", "gsm-full-rate"][..]),
        ("g.ulaw", &["-t", "ul"][..]),
    ]
    .into_iter()
    .enumerate()
    {
        let path = dir.path().join(file);
        let status = std::process::Command::new("sox")
            .args(["-n", "-r", "8000", "-c", "1"])
            .args(sox_out)
            .arg(&path)
            .args(["synth", "2", "sine", "440"])
            .status();
        assert!(
            status.is_ok_and(|s| s.success()),
            "sox failed or is missing (apt-get install -y sox)"
        );
        let call = format!("c-pbx-{n}");
        let key = format!(
            "recordings/2026/03/09/{call}.{}",
            file.rsplit('.').next().unwrap()
        );
        e.state.storage.put_file(&key, &path).await.unwrap();
        let started = "2026-03-09T11:00:00.000Z";
        e.state
            .db
            .insert_call(&CallRow {
                call_id: call.clone(),
                status: "done".into(),
                campaign: None,
                agent: None,
                customer: None,
                started_at: started.into(),
                duration_ms: Some(2000),
                language: None,
                recording_key: key.clone(),
                recording_bytes: std::fs::metadata(&path).unwrap().len() as i64,
                source_name: Some(file.into()),
                transcript_key: None,
                error: None,
                created_at: started.into(),
                updated_at: started.into(),
            })
            .await
            .unwrap();
        let uri = format!("/api/calls/{call}/audio");
        let whole = send(&e.app, Method::GET, &uri, &[("authorization", &auth)], "").await;
        assert_eq!(whole.status, StatusCode::OK, "{file}");
        assert_eq!(whole.headers[header::CONTENT_TYPE], "audio/wav", "{file}");
        let wav = whole.body.clone();
        // 44-byte header, PCM (format tag 1), mono, 8 kHz, 2 s of 16-bit samples.
        assert_eq!(&wav[..4], b"RIFF", "{file}");
        assert_eq!(u16::from_le_bytes([wav[20], wav[21]]), 1, "{file}");
        assert_eq!(
            u32::from_le_bytes([wav[24], wav[25], wav[26], wav[27]]),
            8000,
            "{file}"
        );
        assert_eq!(wav.len(), 44 + 2 * 16_000, "{file}");
        let loud = wav[44..]
            .chunks_exact(2)
            .filter(|s| i16::from_le_bytes([s[0], s[1]]).abs() > 1000)
            .count();
        assert!(loud > 8000, "{file}: the tone decodes: {loud} loud samples");
        let part = send(
            &e.app,
            Method::GET,
            &uri,
            &[("authorization", &auth), ("range", "bytes=1000-1999")],
            "",
        )
        .await;
        assert_eq!(part.status, StatusCode::PARTIAL_CONTENT, "{file}");
        assert_eq!(
            part.headers[header::CONTENT_RANGE],
            format!("bytes 1000-1999/{}", wav.len())
        );
        assert_eq!(part.body, wav[1000..2000], "{file}");
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
            .replace("/api/campaigns/spring", "/api/campaigns/{name}")
            .replace("/api/scorecards/spring", "/api/scorecards/{name}");
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
    let e = &e;
    insert_session(e, "stale-at-start", -1_000).await;
    let (tx, rx) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(callqa_web::serve(e.state.clone(), "127.0.0.1:0", rx));
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    // The server sweeps expired sessions from the start, not only at logout.
    wait_for("the server's first session sweep", move || async move {
        session_count(e, "stale-at-start").await == 0
    })
    .await;
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
    assert!(html.contains("No dial placed yet."), "{html}");

    // One answered dial at 10:00 in Shanghai: the hourly answer-rate chart appears.
    let ten_shanghai = chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2024, 5, 2, 2, 0, 0)
        .unwrap()
        .timestamp_millis();
    store
        .record_attempt(&callqa_dialer::campaign_store::AttemptRow {
            call_id: "spring-1".into(),
            campaign: "spring".into(),
            number: NUMBER.into(),
            trunk: "t".into(),
            outcome: "answered".into(),
            sip_code: Some(200),
            reason: String::new(),
            placed_at: ten_shanghai,
            answered_at: Some(ten_shanghai + 3_000),
            ended_at: ten_shanghai + 20_000,
            abandoned: false,
            agent_wait_ms: None,
        })
        .await
        .unwrap();
    let html = get(&e.app, "/campaigns/spring?lang=en", &e.viewer)
        .await
        .text();
    assert!(html.contains("Answer rate by hour"), "{html}");
    assert!(html.contains("10:00 (1)"), "{html}");
    assert!(!html.contains("No dial placed yet."), "{html}");
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

/// Polls `check` every 20 ms for up to 10 s; panics naming `what` if it never holds.
async fn wait_for<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// A session row for user `vic` expiring `in_ms` from now (negative: already expired).
async fn insert_session(e: &Env, token_hash: &str, in_ms: i64) {
    sqlx::query("INSERT INTO web_sessions (token_hash, user_name, expires_ms) VALUES ($1, $2, $3)")
        .bind(token_hash.to_string())
        .bind("vic".to_string())
        .bind(chrono::Utc::now().timestamp_millis() + in_ms)
        .execute(e.state.db.pool())
        .await
        .unwrap();
}

async fn session_count(e: &Env, token_hash: &str) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM web_sessions WHERE token_hash = $1")
        .bind(token_hash.to_string())
        .fetch_one(e.state.db.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn expired_sessions_are_swept_periodically() {
    let e = env().await;
    let e = &e;
    let pool = e.state.db.pool().clone();
    let vic = callqa_web::User {
        name: "vic".into(),
        role: Role::Viewer,
    };
    let live = callqa_web::auth::create_session(&pool, &vic, 1)
        .await
        .unwrap();
    insert_session(e, "old-1", -1_000).await;
    insert_session(e, "old-2", -3_600_000).await;
    let (tx, rx) = tokio::sync::watch::channel(false);
    let sweeper =
        callqa_web::sessions::spawn_sweeper(pool.clone(), std::time::Duration::from_millis(30), rx);
    wait_for("the first sweep", move || async move {
        session_count(e, "old-1").await + session_count(e, "old-2").await == 0
    })
    .await;
    // Not a one-off at start: a session that expires later goes at a later tick.
    insert_session(e, "old-3", 150).await;
    tokio::time::sleep(std::time::Duration::from_millis(60)).await;
    assert_eq!(session_count(e, "old-3").await, 1, "not expired yet: kept");
    wait_for("a later sweep", move || async move {
        session_count(e, "old-3").await == 0
    })
    .await;
    // The live session survives every sweep and still logs in.
    let cookie = format!("callqa_session={live}");
    let page = send(&e.app, Method::GET, "/search", &[("cookie", &cookie)], "").await;
    assert_eq!(page.status, StatusCode::OK);
    tx.send(true).unwrap();
    let done = tokio::time::timeout(std::time::Duration::from_secs(2), sweeper).await;
    assert!(
        matches!(done, Ok(Ok(()))),
        "the sweeper stops when asked: {done:?}"
    );
}

/// A service campaign whose calling window (Shanghai time) excludes now, so the runner
/// refuses its contact for the hour and keeps running until paused.
fn waiting_campaign(name: &str) -> String {
    use chrono::Timelike;
    let h = (chrono::Utc::now().hour() + 8) % 24;
    let (from, to) = if h + 3 <= 23 { (h + 2, h + 3) } else { (1, 2) };
    format!(
        "name = \"{name}\"\nkind = \"service\"\nprompt = \"prompt.wav\"\n\
         calling_hours = \"{from:02}:00-{to:02}:00\"\ncontacts = [{{ number = \"{NUMBER}\" }}]\n"
    )
}

async fn load_campaign(e: &Env, toml: &str) -> callqa_dialer::CampaignStore {
    let store = callqa_dialer::CampaignStore::open(e.state.db.pool().clone())
        .await
        .unwrap();
    let cfg = callqa_dialer::CampaignConfig::from_toml(toml, std::path::Path::new("/tmp")).unwrap();
    store
        .load(&cfg, chrono::Utc::now().timestamp_millis())
        .await
        .unwrap();
    store
}

async fn post(app: &Router, uri: &str, token: &str, body: &str) -> Answer {
    let auth = format!("Bearer {token}");
    send(app, Method::POST, uri, &[("authorization", &auth)], body).await
}

async fn post_form(app: &Router, uri: &str, token: &str, body: &str) -> Answer {
    let auth = format!("Bearer {token}");
    let h = [
        ("authorization", auth.as_str()),
        ("content-type", "application/x-www-form-urlencoded"),
    ];
    send(app, Method::POST, uri, &h, body).await
}

fn running(e: &Env) -> Vec<String> {
    e.state
        .dialing
        .as_ref()
        .expect("the test server dials")
        .running()
}

#[tokio::test]
async fn campaigns_start_and_pause_from_api_page_and_shutdown() {
    let e = env().await;
    let e = &e;
    let store = load_campaign(e, &waiting_campaign("autumn")).await;
    let start = "/api/campaigns/autumn/start";
    for token in [&e.viewer, &e.analyst] {
        assert_eq!(
            post(&e.app, start, token, "").await.status,
            StatusCode::FORBIDDEN
        );
    }
    assert_eq!(
        post(&e.app, "/api/campaigns/nosuch/start", &e.admin, "")
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    let a = post(&e.app, start, &e.admin, "").await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    assert_eq!(a.json()["status"]["state"], "running");
    assert_eq!(running(e), vec!["autumn".to_string()]);
    let again = post(&e.app, start, &e.admin, "").await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.text());
    // The runner really dials from this process: its gate refuses the contact for the hour.
    wait_for("the runner's first refusal", move || async move {
        get(&e.app, "/api/campaigns/autumn", &e.admin).await.json()["status"]["refused"]
            ["outside_hours"]
            .as_u64()
            .is_some_and(|n| n >= 1)
    })
    .await;
    assert_eq!(
        get(&e.app, "/api/campaigns/autumn", &e.viewer).await.json()["status"]["state"],
        "running"
    );

    let p = post(&e.app, "/api/campaigns/autumn/pause", &e.admin, "").await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.text());
    assert_eq!(p.json()["status"]["state"], "paused");
    wait_for("the runner to stop", move || async move {
        running(e).is_empty()
    })
    .await;
    assert_eq!(
        store.state("autumn").await.unwrap(),
        callqa_dialer::CampaignState::Paused,
        "the runner leaves it paused"
    );
    let audit = get(&e.app, "/api/audit?action=campaign_start", &e.admin)
        .await
        .json();
    assert_eq!(audit["entries"][0]["target"], "autumn");
    assert_eq!(audit["entries"][0]["actor"], "root");
    let audit = get(&e.app, "/api/audit?action=campaign_pause", &e.admin)
        .await
        .json();
    assert_eq!(audit["entries"][0]["detail"], "was running");

    // The page: admins get the button for the state, viewers none.
    let page = get(&e.app, "/campaigns/autumn?lang=en", &e.admin)
        .await
        .text();
    assert!(
        page.contains(r#"action="/campaigns/autumn/start""#),
        "{page}"
    );
    let vpage = get(&e.app, "/campaigns/autumn", &e.viewer).await.text();
    assert!(!vpage.contains("/campaigns/autumn/start"), "{vpage}");
    assert_eq!(
        post_form(&e.app, "/campaigns/autumn/start", &e.viewer, "")
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let s = post_form(&e.app, "/campaigns/autumn/start", &e.admin, "").await;
    assert_eq!(s.status, StatusCode::SEE_OTHER, "{}", s.text());
    assert_eq!(s.headers[header::LOCATION], "/campaigns/autumn?msg=started");
    let page = get(&e.app, "/campaigns/autumn?msg=started&lang=en", &e.admin)
        .await
        .text();
    assert!(page.contains(r#"data-state="running""#), "{page}");
    assert!(
        page.contains(r#"action="/campaigns/autumn/pause""#),
        "{page}"
    );
    assert!(page.contains("dialing from this server"), "{page}");
    // Starting what runs shows the reason on the page.
    let twice = post_form(&e.app, "/campaigns/autumn/start", &e.admin, "").await;
    assert_eq!(twice.status, StatusCode::CONFLICT);
    assert!(twice.text().contains("already running"), "{}", twice.text());

    // Stopping the server pauses what it dials.
    let (tx, rx) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(callqa_web::serve(e.state.clone(), "127.0.0.1:0", rx));
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    tx.send(true).unwrap();
    let done = tokio::time::timeout(std::time::Duration::from_secs(10), server).await;
    assert!(matches!(done, Ok(Ok(Ok(())))), "{done:?}");
    assert!(running(e).is_empty());
    assert_eq!(
        store.state("autumn").await.unwrap(),
        callqa_dialer::CampaignState::Paused
    );

    // A finished campaign neither starts nor pauses.
    store
        .set_state("autumn", callqa_dialer::CampaignState::Done, 0)
        .await
        .unwrap();
    assert_eq!(
        post(&e.app, start, &e.admin, "").await.status,
        StatusCode::CONFLICT
    );
    assert_eq!(
        post(&e.app, "/api/campaigns/autumn/pause", &e.admin, "")
            .await
            .status,
        StatusCode::CONFLICT
    );
}

#[tokio::test]
async fn consent_csv_import_reports_rejected_lines() {
    let e = env().await;
    let csv = "number,scope,proof,granted_at,expires_at\n\
               +8613800138000,marketing,form-1,2026-01-05T08:00:00Z,\n\
               +8613900139000,marketing,form-2,2026-01-06T08:00:00Z,2027-01-06T08:00:00Z\n\
               +8613700137000,marketing,form-3,yesterday,\n\
               +8613600136000,,form-4,2026-01-05T08:00:00Z,\n";
    for token in [&e.viewer, &e.analyst] {
        assert_eq!(
            post(&e.app, "/api/consents/import", token, csv)
                .await
                .status,
            StatusCode::FORBIDDEN
        );
    }
    let a = post(&e.app, "/api/consents/import", &e.admin, csv).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    let r = a.json();
    assert_eq!(r["imported"], 2, "{r}");
    let errors = r["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2, "{r}");
    assert_eq!(errors[0]["line"], 4);
    assert!(
        errors[0]["message"].as_str().unwrap().contains("RFC 3339"),
        "{r}"
    );
    assert_eq!(errors[1]["line"], 5);
    assert!(
        errors[1]["message"].as_str().unwrap().contains("scope"),
        "{r}"
    );
    let rows = get(&e.app, "/api/consents", &e.analyst).await.json();
    assert_eq!(rows["consents"].as_array().map(Vec::len), Some(2), "{rows}");
    assert_eq!(rows["consents"][0]["proof"], "form-2");
    let audit = get(&e.app, "/api/audit?action=consent_import", &e.admin)
        .await
        .json();
    assert_eq!(audit["entries"][0]["detail"], "imported 2, rejected 2");

    // The page: an import form for admins only, and the summary after an import.
    let viewer_page = get(&e.app, "/consents", &e.viewer).await.text();
    assert!(!viewer_page.contains(r#"action="/consents/import""#));
    let admin_page = get(&e.app, "/consents?lang=en", &e.admin).await.text();
    assert!(
        admin_page.contains(r#"action="/consents/import""#),
        "{admin_page}"
    );
    let form = format!(
        "csv={}",
        "+8613500135000,marketing,form-5,2026-02-01T00:00:00Z\nbad,marketing,form-6,2026-02-01T00:00:00Z\n"
            .replace('+', "%2B")
            .replace('\n', "%0A")
            .replace(',', "%2C")
            .replace(':', "%3A")
    );
    let ui = post_form(&e.app, "/consents/import?lang=en", &e.admin, &form).await;
    assert_eq!(ui.status, StatusCode::OK, "{}", ui.text());
    let html = ui.text();
    assert!(
        html.contains(r#"<span class="imported">1</span> records imported"#),
        "{html}"
    );
    assert!(
        html.contains(r#"<span class="rejected">1</span> rows rejected"#),
        "{html}"
    );
    assert!(
        html.contains(r#"<td class="num">2</td>"#),
        "the rejected line: {html}"
    );
    assert_eq!(
        post_form(&e.app, "/consents/import", &e.analyst, &form)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
}

async fn put(app: &Router, uri: &str, token: &str, body: &str) -> Answer {
    let auth = format!("Bearer {token}");
    send(app, Method::PUT, uri, &[("authorization", &auth)], body).await
}

/// 1-based line of the first line of `text` containing `needle`.
fn line_of(text: &str, needle: &str) -> u64 {
    text.lines().position(|l| l.contains(needle)).unwrap() as u64 + 1
}

#[tokio::test]
async fn scorecards_are_edited_checked_and_saved_as_new_versions() {
    let e = env().await;
    let uri = "/api/scorecards/spring";
    let dir = e.state.scorecards_dir.clone().unwrap();
    // No file yet: the built-in default card the campaign is scored with.
    let v = get(&e.app, uri, &e.viewer).await;
    assert_eq!(v.status, StatusCode::OK, "{}", v.text());
    let v = v.json();
    assert_eq!(v["builtin"], true);
    assert_eq!(v["scorecard"], "default");
    assert_eq!(v["versions"].as_array().map(Vec::len), Some(0));
    let default_text = v["toml"].as_str().unwrap().to_string();
    assert!(default_text.contains("[[items]]"));
    assert_eq!(
        put(&e.app, uri, &e.analyst, &default_text).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        get(&e.app, "/api/scorecards/a.b", &e.viewer).await.status,
        StatusCode::BAD_REQUEST
    );

    // Refused texts name the line of the fault.
    let syntax = default_text.replacen(
        "name = \"Default outbound call\"",
        "name = \"Default outbound call",
        1,
    );
    let bad = put(&e.app, uri, &e.admin, &syntax).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.text());
    assert_eq!(
        bad.json()["line"],
        line_of(&syntax, "name = \"Default outbound call")
    );
    assert!(bad.json()["column"].is_u64());
    let kind = default_text.replacen("kind = \"required_phrase\"", "kind = \"shouting\"", 1);
    let bad = put(&e.app, uri, &e.admin, &kind).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.json()["line"], line_of(&kind, "id = \"greeting\""));
    assert!(bad.json()["error"].as_str().unwrap().contains("shouting"));
    assert!(!dir.join("spring.toml").exists(), "nothing saved");

    let check = put(
        &e.app,
        &format!("{uri}?check=true"),
        &e.admin,
        &default_text,
    )
    .await;
    assert_eq!(check.status, StatusCode::OK);
    assert_eq!(check.json()["valid"], true);
    assert!(!dir.join("spring.toml").exists(), "a check saves nothing");

    // Saving the default card's text: version 1 already scored calls, so it becomes 2.
    let s = put(&e.app, uri, &e.admin, &default_text).await;
    assert_eq!(s.status, StatusCode::OK, "{}", s.text());
    assert_eq!(s.json()["version"], 2);
    assert_eq!(s.json()["previous_version"], 1);
    assert_eq!(s.json()["bumped"], true);
    let file = std::fs::read_to_string(dir.join("spring.toml")).unwrap();
    let card = callqa_qa::Scorecard::from_toml(&file).unwrap();
    assert_eq!((card.id.as_str(), card.version), ("default", 2));
    assert_eq!(
        file.lines().count(),
        default_text.lines().count(),
        "comments kept"
    );
    assert_eq!(
        put(&e.app, uri, &e.admin, &file).await.status,
        StatusCode::CONFLICT,
        "unchanged"
    );
    let edited = file.replacen("weight = 10", "weight = 15", 1);
    assert_eq!(
        put(&e.app, uri, &e.admin, &edited).await.json()["version"],
        3
    );
    let chosen =
        edited
            .replacen("version = 2", "version = 10", 1)
            .replacen("weight = 15", "weight = 12", 1);
    let s = put(&e.app, uri, &e.admin, &chosen).await.json();
    assert_eq!(
        (s["version"].as_u64(), s["bumped"].as_bool()),
        (Some(10), Some(false))
    );

    let v = get(&e.app, uri, &e.viewer).await.json();
    assert_eq!(v["builtin"], false);
    assert_eq!(v["version"], 10);
    assert_eq!(v["versions"], serde_json::json!([10, 3, 2]));
    let old = get(&e.app, &format!("{uri}?version=2"), &e.viewer)
        .await
        .json();
    assert_eq!(old["version"], 2);
    assert!(old["toml"].as_str().unwrap().contains("weight = 10"));
    assert_eq!(
        get(&e.app, &format!("{uri}?version=7"), &e.viewer)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let audit = get(&e.app, "/api/audit?action=scorecard_save", &e.admin)
        .await
        .json();
    assert_eq!(audit["entries"].as_array().map(Vec::len), Some(3));
    assert_eq!(audit["entries"][0]["detail"], "default v10 (was v3)");

    // The page: an editor for admins, the text for others, the fault's line marked.
    let list = get(&e.app, "/scorecards?lang=en", &e.admin).await.text();
    assert!(list.contains(r#"href="/scorecards/spring""#), "{list}");
    let vpage = get(&e.app, "/scorecards/spring", &e.viewer).await.text();
    assert!(
        vpage.contains("<pre class=\"code\">") && !vpage.contains("<textarea"),
        "{vpage}"
    );
    let apage = get(&e.app, "/scorecards/spring?lang=en", &e.admin)
        .await
        .text();
    assert!(
        apage.contains(r#"<textarea class="code" name="toml""#),
        "{apage}"
    );
    assert!(apage.contains("v10</a> · in use"), "{apage}");
    let enc = |t: &str| -> String {
        t.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    let broken = chosen.replacen("kind = \"required_phrase\"", "kind = \"shouting\"", 1);
    let ui = post_form(
        &e.app,
        "/scorecards/spring?lang=en",
        &e.admin,
        &format!("action=check&toml={}", enc(&broken)),
    )
    .await;
    assert_eq!(ui.status, StatusCode::BAD_REQUEST);
    let html = ui.text();
    let line = line_of(&broken, "id = \"greeting\"");
    assert!(
        html.contains(&format!("data-error-line=\"{line}\"")),
        "{html}"
    );
    assert!(html.contains("class=\"ln bad\""), "{html}");
    assert!(html.contains("shouting"), "{html}");
    let ok = post_form(
        &e.app,
        "/scorecards/spring",
        &e.admin,
        &format!(
            "action=save&toml={}",
            enc(&chosen
                .replacen("weight = 12", "weight = 11", 1)
                .replace('\n', "\r\n"))
        ),
    )
    .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.text());
    assert_eq!(
        ok.headers[header::LOCATION],
        "/scorecards/spring?msg=saved&v=11"
    );
    let saved = std::fs::read_to_string(dir.join("spring.toml")).unwrap();
    assert!(!saved.contains('\r'), "browser line ends are normalised");
    assert_eq!(
        post_form(
            &e.app,
            "/scorecards/spring",
            &e.analyst,
            &format!("action=save&toml={}", enc(&chosen))
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
}
