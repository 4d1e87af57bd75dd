//! End-to-end tests of the index: tokenisation, query syntax, filters, facets, snippets,
//! upserts and the writer lock, on small in-RAM or temp-dir indexes.

use callqa_ingest::transcript::{CallMeta, Segment, Speaker, Transcript};

use crate::{CallDoc, SearchError, SearchIndex, SearchRequest, SearchResponse};

struct Call<'a> {
    id: &'a str,
    campaign: &'a str,
    agent: &'a str,
    started_at: &'a str,
    qa_score: Option<f64>,
    flags: &'a [&'a str],
    segments: &'a [(Speaker, &'a str)],
}

impl Default for Call<'_> {
    fn default() -> Self {
        Call {
            id: "c",
            campaign: "loans",
            agent: "alice",
            started_at: "2024-03-05T10:00:00Z",
            qa_score: None,
            flags: &[],
            segments: &[],
        }
    }
}

fn doc(c: &Call) -> CallDoc {
    let segments = c
        .segments
        .iter()
        .enumerate()
        .map(|(i, (speaker, text))| Segment {
            speaker: *speaker,
            start_ms: i as u64 * 2000,
            end_ms: i as u64 * 2000 + 1500,
            text: text.to_string(),
        })
        .collect();
    CallDoc {
        meta: CallMeta {
            call_id: c.id.to_string(),
            campaign: Some(c.campaign.to_string()),
            agent: Some(c.agent.to_string()),
            customer: Some(format!("+86138{:08}", c.id.len())),
            started_at: c.started_at.to_string(),
            duration_ms: 60_000,
            language: Some("zh".to_string()),
        },
        transcript: Transcript {
            call_id: c.id.to_string(),
            language: Some("zh".to_string()),
            duration_ms: 60_000,
            model: "test".to_string(),
            segments,
        },
        status: "done".to_string(),
        qa_score: c.qa_score,
        flags: c.flags.iter().map(|s| s.to_string()).collect(),
    }
}

fn index_of(calls: &[Call]) -> SearchIndex {
    let index = SearchIndex::open_in_ram().expect("in-RAM index");
    let mut w = index.writer_with(1, 20_000_000).expect("writer");
    for c in calls {
        w.upsert(&doc(c)).expect("upsert");
    }
    w.commit().expect("commit");
    index
}

fn run(index: &SearchIndex, req: SearchRequest) -> SearchResponse {
    index
        .search(&req)
        .unwrap_or_else(|e| panic!("search {:?}: {e}", req.query))
}

fn ids(index: &SearchIndex, query: &str) -> Vec<String> {
    ids_of(&run(index, SearchRequest::new(query)))
}

fn ids_of(resp: &SearchResponse) -> Vec<String> {
    let mut ids: Vec<String> = resp.hits.iter().map(|h| h.call_id.clone()).collect();
    ids.sort();
    ids
}

use Speaker::{Agent, Customer, Mixed};

#[test]
fn refund_does_not_match_return_of_goods_or_payment() {
    let index = index_of(&[
        Call {
            id: "refund",
            segments: &[(Customer, "我要退款，马上")],
            ..Call::default()
        },
        Call {
            id: "goods",
            segments: &[(Customer, "我想退货")],
            ..Call::default()
        },
        Call {
            id: "payment",
            segments: &[(Agent, "这笔款项已经到账")],
            ..Call::default()
        },
        Call {
            id: "chars",
            segments: &[(Agent, "退一步说，款到了")],
            ..Call::default()
        },
    ]);
    assert_eq!(ids(&index, "退款"), vec!["refund"]);
    assert_eq!(ids(&index, "退货"), vec!["goods"]);
    assert_eq!(ids(&index, "款项"), vec!["payment"]);
}

#[test]
fn traditional_and_simplified_find_each_other() {
    let index = index_of(&[
        Call {
            id: "trad",
            segments: &[(Customer, "我要投訴你們")],
            ..Call::default()
        },
        Call {
            id: "simp",
            segments: &[(Customer, "打电话来投诉")],
            ..Call::default()
        },
    ]);
    assert_eq!(ids(&index, "投诉"), vec!["simp", "trad"]);
    assert_eq!(ids(&index, "投訴"), vec!["simp", "trad"]);
    let resp = run(&index, SearchRequest::new("电话"));
    assert_eq!(ids_of(&resp), vec!["simp"]);
    assert_eq!(resp.hits[0].snippets[0].text, "打<b>电话</b>来投诉");
}

#[test]
fn numbers_are_found_however_they_are_typed() {
    // The transcriber stores digit strings as one number (`join_spoken_digits`).
    let index = index_of(&[
        Call {
            id: "phone",
            segments: &[(Customer, "call me back at 5550199 please")],
            ..Call::default()
        },
        Call {
            id: "range",
            segments: &[(Agent, "between 8-10 in the morning")],
            ..Call::default()
        },
    ]);
    for typed in [
        "5550199",
        "555-0199",
        "5 5 5 0 1 9 9",
        "\"back at 555-0199\"",
    ] {
        assert_eq!(ids(&index, typed), vec!["phone"], "{typed}");
    }
    assert_eq!(ids(&index, "555"), Vec::<String>::new());
    // A range is not one number.
    assert_eq!(ids(&index, "8-10"), vec!["range"]);
}

#[test]
fn whispers_old_form_of_account_is_found_as_the_standard_one() {
    // whisper writes 帐单 (bill) as often as 账单; users type 账单.
    let index = index_of(&[
        Call {
            id: "old",
            segments: &[(Customer, "我的帐单不对")],
            ..Call::default()
        },
        Call {
            id: "std",
            segments: &[(Customer, "账单收到了")],
            ..Call::default()
        },
        Call {
            id: "tent",
            segments: &[(Customer, "周末去搭帐篷")],
            ..Call::default()
        },
    ]);
    assert_eq!(ids(&index, "账单"), vec!["old", "std"]);
    assert_eq!(ids(&index, "帐单"), vec!["old", "std"]);
    assert_eq!(ids(&index, "帐篷"), vec!["tent"]);
}

#[test]
fn english_stemming_and_case() {
    let index = index_of(&[
        Call {
            id: "past",
            segments: &[(Customer, "I was never Refunded")],
            ..Call::default()
        },
        Call {
            id: "plural",
            segments: &[(Agent, "refunds take ten days")],
            ..Call::default()
        },
        Call {
            id: "other",
            segments: &[(Agent, "your fund is safe")],
            ..Call::default()
        },
    ]);
    assert_eq!(ids(&index, "refund"), vec!["past", "plural"]);
    assert_eq!(ids(&index, "REFUNDING"), vec!["past", "plural"]);
}

#[test]
fn phrases_in_chinese_and_english() {
    let index = index_of(&[
        Call {
            id: "phrase",
            segments: &[(Customer, "你好，我要投诉你们公司")],
            ..Call::default()
        },
        Call {
            id: "apart",
            segments: &[(Customer, "我要的是投诉电话")],
            ..Call::default()
        },
        Call {
            id: "stop",
            segments: &[(Customer, "please STOP calling me")],
            ..Call::default()
        },
        Call {
            id: "split",
            segments: &[(Customer, "calling to say stop"), (Agent, "ok stop")],
            ..Call::default()
        },
        Call {
            id: "across",
            segments: &[(Customer, "I will stop"), (Agent, "calling you later")],
            ..Call::default()
        },
    ]);
    assert_eq!(ids(&index, "\"我要投诉\""), vec!["phrase"]);
    // Without quotes the words are ANDed; both calls have 我, 要 and 投诉.
    assert_eq!(ids(&index, "我 要 投诉"), vec!["apart", "phrase"]);
    assert_eq!(ids(&index, "\"stop calling\""), vec!["stop"]);
    assert_eq!(ids(&index, "\"stop calling\"~3"), vec!["stop"]);
    assert_eq!(ids(&index, "stop calling"), vec!["across", "split", "stop"]);
}

#[test]
fn boolean_operators_and_prefix() {
    let index = index_of(&[
        Call {
            id: "both",
            segments: &[(Customer, "a complaint about my refund")],
            ..Call::default()
        },
        Call {
            id: "refund",
            segments: &[(Customer, "refund please")],
            ..Call::default()
        },
        Call {
            id: "complaint",
            segments: &[(Customer, "我要投诉, complaint filed")],
            ..Call::default()
        },
        Call {
            id: "none",
            segments: &[(Customer, "hello there")],
            ..Call::default()
        },
    ]);
    assert_eq!(ids(&index, "refund AND complaint"), vec!["both"]);
    assert_eq!(
        ids(&index, "refund OR complaint"),
        vec!["both", "complaint", "refund"]
    );
    assert_eq!(ids(&index, "refund -complaint"), vec!["refund"]);
    assert_eq!(ids(&index, "-refund"), vec!["complaint", "none"]);
    assert_eq!(
        ids(&index, "(refund OR 投诉) AND complaint"),
        vec!["both", "complaint"]
    );
    assert_eq!(ids(&index, "refun*"), vec!["both", "refund"]);
    assert_eq!(ids(&index, "投*"), vec!["complaint"]);
    assert_eq!(ids(&index, "complaint refun*"), vec!["both"]);
    // A negated word is not highlighted.
    let resp = run(&index, SearchRequest::new("refund -hello"));
    for hit in &resp.hits {
        for s in &hit.snippets {
            assert!(!s.text.contains("<b>hello"), "{}", s.text);
        }
    }
}

#[test]
fn speaker_restriction() {
    let index = index_of(&[
        Call {
            id: "cust",
            segments: &[(Agent, "hello"), (Customer, "I want a refund")],
            ..Call::default()
        },
        Call {
            id: "agent",
            segments: &[(Agent, "we can refund you"), (Customer, "ok")],
            ..Call::default()
        },
        Call {
            id: "mono",
            segments: &[(Mixed, "refund refund")],
            ..Call::default()
        },
    ]);
    let req = |speaker| SearchRequest {
        speaker,
        ..SearchRequest::new("refund")
    };
    assert_eq!(
        ids_of(&run(&index, req(None))),
        vec!["agent", "cust", "mono"]
    );
    let cust = run(&index, req(Some(Customer)));
    assert_eq!(ids_of(&cust), vec!["cust"]);
    assert_eq!(cust.hits[0].snippets.len(), 1);
    assert_eq!(cust.hits[0].snippets[0].speaker, Customer);
    assert_eq!(cust.hits[0].snippets[0].start_ms, 2000);
    assert_eq!(ids_of(&run(&index, req(Some(Agent)))), vec!["agent"]);
    assert_eq!(ids_of(&run(&index, req(Some(Mixed)))), vec!["mono"]);
}

#[test]
fn filters_narrow_the_matches() {
    let seg: &[(Speaker, &str)] = &[(Customer, "refund")];
    let index = index_of(&[
        Call {
            id: "a",
            campaign: "loans",
            agent: "alice",
            started_at: "2024-03-01T09:00:00Z",
            qa_score: Some(90.0),
            flags: &["refund"],
            segments: seg,
        },
        Call {
            id: "b",
            campaign: "loans",
            agent: "bob",
            started_at: "2024-03-05T23:59:59Z",
            qa_score: Some(40.0),
            flags: &["refund", "complaint"],
            segments: seg,
        },
        Call {
            id: "c",
            campaign: "cards",
            agent: "alice",
            started_at: "2024-03-06T00:00:00Z",
            qa_score: None,
            flags: &[],
            segments: seg,
        },
    ]);
    let q = || SearchRequest::new("refund");
    let check = |req: SearchRequest, want: &[&str]| {
        assert_eq!(ids_of(&run(&index, req.clone())), want, "{req:?}");
    };
    check(
        SearchRequest {
            campaign: Some("loans".into()),
            ..q()
        },
        &["a", "b"],
    );
    check(
        SearchRequest {
            agent: Some("alice".into()),
            ..q()
        },
        &["a", "c"],
    );
    check(
        SearchRequest {
            from: Some("2024-03-02".into()),
            to: Some("2024-03-05".into()),
            ..q()
        },
        &["b"],
    );
    check(
        SearchRequest {
            from: Some("2024-03-05T23:59:59Z".into()),
            ..q()
        },
        &["b", "c"],
    );
    check(
        SearchRequest {
            to: Some("2024-03-05T23:59:58Z".into()),
            ..q()
        },
        &["a"],
    );
    check(
        SearchRequest {
            min_score: Some(50.0),
            ..q()
        },
        &["a"],
    );
    check(
        SearchRequest {
            max_score: Some(50.0),
            ..q()
        },
        &["b"],
    );
    check(
        SearchRequest {
            flags: vec!["refund".into(), "complaint".into()],
            ..q()
        },
        &["b"],
    );
    check(
        SearchRequest {
            status: Some("done".into()),
            language: Some("zh".into()),
            ..q()
        },
        &["a", "b", "c"],
    );
    check(
        SearchRequest {
            status: Some("failed".into()),
            ..q()
        },
        &[],
    );
    check(
        SearchRequest {
            customer: Some("+8613800000001".into()),
            ..q()
        },
        &["a", "b", "c"],
    );
    // Filters alone (empty query) browse newest first.
    let browse = run(
        &index,
        SearchRequest {
            campaign: Some("loans".into()),
            ..SearchRequest::default()
        },
    );
    let order: Vec<&str> = browse.hits.iter().map(|h| h.call_id.as_str()).collect();
    assert_eq!(order, vec!["b", "a"]);
    assert_eq!(browse.hits[0].started_at, "2024-03-05T23:59:59Z");
    assert_eq!(browse.hits[0].qa_score, Some(40.0));
}

#[test]
fn facets_count_the_whole_match_set() {
    let hit: &[(Speaker, &str)] = &[(Customer, "投诉")];
    let miss: &[(Speaker, &str)] = &[(Customer, "你好")];
    let index = index_of(&[
        Call {
            id: "1",
            campaign: "loans",
            agent: "alice",
            started_at: "2024-03-01T09:00:00Z",
            segments: hit,
            ..Call::default()
        },
        Call {
            id: "2",
            campaign: "loans",
            agent: "bob",
            started_at: "2024-03-01T10:00:00Z",
            segments: hit,
            ..Call::default()
        },
        Call {
            id: "3",
            campaign: "cards",
            agent: "bob",
            started_at: "2024-03-02T10:00:00Z",
            segments: hit,
            ..Call::default()
        },
        Call {
            id: "4",
            campaign: "cards",
            agent: "carol",
            started_at: "2024-03-03T10:00:00Z",
            segments: miss,
            ..Call::default()
        },
    ]);
    let resp = run(
        &index,
        SearchRequest {
            limit: 1,
            ..SearchRequest::new("投诉")
        },
    );
    assert_eq!(resp.total, 3);
    assert_eq!(resp.hits.len(), 1);
    let pairs = |f: &[crate::FacetCount]| -> Vec<(String, u64)> {
        f.iter().map(|c| (c.value.clone(), c.count)).collect()
    };
    assert_eq!(
        pairs(&resp.facets.campaign),
        vec![("loans".into(), 2), ("cards".into(), 1)]
    );
    assert_eq!(
        pairs(&resp.facets.agent),
        vec![("bob".into(), 2), ("alice".into(), 1)]
    );
    assert_eq!(
        pairs(&resp.facets.day),
        vec![("2024-03-01".into(), 2), ("2024-03-02".into(), 1)]
    );
    let second_page = run(
        &index,
        SearchRequest {
            limit: 1,
            offset: 1,
            ..SearchRequest::new("投诉")
        },
    );
    assert_eq!(second_page.hits.len(), 1);
    assert_ne!(second_page.hits[0].call_id, resp.hits[0].call_id);
}

#[test]
fn upsert_replaces_the_call() {
    let index = SearchIndex::open_in_ram().expect("index");
    let mut w = index.writer_with(1, 20_000_000).expect("writer");
    let old = Call {
        id: "x",
        segments: &[(Customer, "refund")],
        ..Call::default()
    };
    let new = Call {
        id: "x",
        segments: &[(Customer, "complaint")],
        ..Call::default()
    };
    w.upsert(&doc(&old)).expect("upsert");
    w.upsert(&doc(&old)).expect("upsert");
    w.commit().expect("commit");
    assert_eq!(index.num_calls(), 1);
    w.upsert(&doc(&new)).expect("upsert");
    w.commit().expect("commit");
    assert_eq!(index.num_calls(), 1);
    assert!(ids(&index, "refund").is_empty());
    assert_eq!(ids(&index, "complaint"), vec!["x"]);
    w.delete("x");
    w.commit().expect("commit");
    assert_eq!(index.num_calls(), 0);
}

#[test]
fn bad_queries_are_user_errors() {
    let index = index_of(&[]);
    for q in [
        "\"我要投诉",
        "(refund OR complaint",
        "refund AND",
        "title:[a TO",
        "campaign: IN [a b]",
    ] {
        match index.search(&SearchRequest::new(q)) {
            Err(e @ SearchError::BadQuery { .. }) => assert!(e.is_user_error()),
            other => panic!("{q:?} gave {:?}", other.map(|r| r.total)),
        }
    }
    let bad_date = SearchRequest {
        from: Some("03/05/2024".into()),
        ..SearchRequest::new("x")
    };
    assert!(matches!(
        index.search(&bad_date),
        Err(SearchError::BadFilter { name: "from", .. })
    ));
    // Punctuation-only and empty queries are valid: every call.
    assert_eq!(run(&index, SearchRequest::new("，")).total, 0);
    // The error's position is in the query as typed, numbers joined or not.
    for q in ["5 5 5 0 1 AND (", "55501     AND ("] {
        match index.search(&SearchRequest::new(q)) {
            Err(SearchError::BadQuery { reason, .. }) => {
                assert!(reason.contains("at character 15"), "{q:?}: {reason}")
            }
            other => panic!("{q:?} gave {:?}", other.map(|r| r.total)),
        }
    }
}

#[test]
fn response_has_the_contract_shape() {
    let index = index_of(&[Call {
        id: "call-1",
        segments: &[(Agent, "hello"), (Customer, "<script> 我要退款")],
        ..Call::default()
    }]);
    let json = serde_json::to_value(run(&index, SearchRequest::new("退款"))).expect("json");
    assert_eq!(json["total"], 1);
    let hit = &json["hits"][0];
    assert_eq!(hit["call_id"], "call-1");
    assert!(hit["score"].as_f64().is_some_and(|s| s > 0.0));
    assert_eq!(hit["snippets"][0]["text"], "&lt;script&gt; 我要<b>退款</b>");
    assert_eq!(hit["snippets"][0]["start_ms"], 2000);
    assert_eq!(hit["snippets"][0]["speaker"], "customer");
    assert_eq!(json["facets"]["campaign"][0]["value"], "loans");
    assert_eq!(json["facets"]["campaign"][0]["count"], 1);
}

#[test]
fn on_disk_index_persists_and_has_one_writer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("index");
    {
        let index = SearchIndex::open(&path).expect("create");
        let mut w = index.writer_with(1, 20_000_000).expect("writer");
        w.upsert(&doc(&Call {
            id: "p",
            segments: &[(Customer, "refund")],
            ..Call::default()
        }))
        .expect("upsert");
        w.commit().expect("commit");
        let err = index.writer_with(1, 20_000_000).err();
        assert!(
            matches!(err, Some(SearchError::WriterLocked { .. })),
            "{err:?}"
        );
        w.finish().expect("finish");
    }
    let reopened = SearchIndex::open(&path).expect("reopen");
    assert_eq!(ids(&reopened, "refund"), vec!["p"]);
    assert!(reopened.writer().is_ok(), "lock released after finish");
}

#[test]
fn index_is_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<SearchIndex>();
    let index = std::sync::Arc::new(index_of(&[Call {
        id: "t",
        segments: &[(Customer, "退款")],
        ..Call::default()
    }]));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let index = index.clone();
            std::thread::spawn(move || ids(&index, "退款"))
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().expect("thread"), vec!["t"]);
    }
}
