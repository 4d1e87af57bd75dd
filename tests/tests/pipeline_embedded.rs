//! The recording pipeline on embedded defaults (local files, SQLite, embedded queue), with
//! real whisper on generated speech: stereo English and Mandarin calls, every supported
//! format, and bad files that must fail with a reason while the rest succeed. The same run
//! feeds the search and QA checks, so the model transcribes each file once.

mod common;

use callqa_tests::speech::{convert, stereo_call};
use callqa_tests::{fixtures_dir, AudioFormat, Side, Turn};
use common::{json_lines, speaker_text, Callqa};
use serde_json::Value;
use std::collections::HashMap;
use std::path::PathBuf;

fn run_tool(c: &mut std::process::Command) {
    let o = c.output().unwrap_or_else(|e| panic!("{c:?}: {e}"));
    assert!(
        o.status.success(),
        "{c:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

struct Fixture {
    files: Vec<PathBuf>,
    customer_span_ms: (u64, u64),
}

fn build_fixtures(dir: &std::path::Path) -> Fixture {
    let en = dir.join("en_refund_call.wav");
    let spans = stereo_call(
        &[
            Turn::say(
                Side::Agent,
                "Hello, this is Anna calling from Acme Bank about your card payment.",
                800,
            ),
            Turn::say(
                Side::Customer,
                // Worded so espeak's voice stays intelligible to whisper on every CPU:
                // "otherwise I will file a complaint" came out as "why will I complain"
                // on one machine, which a search for "complaint" rightly misses.
                "I want a refund now, or I will file a formal complaint.",
                1500,
            ),
            Turn::say(
                Side::Agent,
                "I understand. Thank you for your time, goodbye.",
                1200,
            ),
        ],
        &en,
        8000,
    )
    .expect("English call");
    let zh = fixtures_dir().join("zh");
    let zh_call = dir.join("zh_refund_call.wav");
    stereo_call(
        &[
            Turn::wav(Side::Agent, zh.join("agent_greeting.wav"), 600),
            Turn::wav(
                Side::Customer,
                zh.join("customer_refund_complaint.wav"),
                1200,
            ),
            Turn::wav(Side::Agent, zh.join("agent_closing.wav"), 1000),
        ],
        &zh_call,
        8000,
    )
    .expect("Mandarin call");
    let zh_returns = dir.join("zh_returns_call.wav");
    stereo_call(
        &[
            Turn::wav(Side::Agent, zh.join("agent_greeting.wav"), 600),
            Turn::wav(Side::Customer, zh.join("customer_returns.wav"), 1200),
        ],
        &zh_returns,
        8000,
    )
    .expect("Mandarin returns call");
    // One short mono clip in every format the decoder must read (16 kHz, so the lossy
    // encoders get a usable bitrate; the stereo calls above are the 8 kHz telephone case).
    let raw = dir.join("clip_raw.wav");
    let clip = dir.join("clip.wav");
    run_tool(
        std::process::Command::new("espeak-ng")
            .args(["-v", "en-us", "-s", "145", "-w"])
            .arg(&raw)
            .arg("I want a refund, otherwise I will file a complaint."),
    );
    run_tool(
        std::process::Command::new("sox")
            .arg(&raw)
            .args(["-r", "16000", "-c", "1", "-b", "16"])
            .arg(&clip)
            .args(["pad", "0.3", "0.3"]),
    );
    let mut files = vec![en, zh_call, zh_returns];
    for f in AudioFormat::ALL {
        let out = dir.join(format!("clip_{f:?}.{}", f.extension()).to_lowercase());
        convert(&clip, &out, f).expect("convert");
        files.push(out);
    }
    let corrupt = dir.join("corrupt.wav");
    let mut junk = b"RIFF\x24\x00\x00\x00WAVEfmt ".to_vec();
    junk.extend((0..4000u32).map(|i| (i.wrapping_mul(2654435761) >> 24) as u8));
    std::fs::write(&corrupt, junk).unwrap();
    let empty = dir.join("empty.wav");
    std::fs::write(&empty, b"").unwrap();
    files.push(corrupt);
    files.push(empty);
    let c = spans[1];
    Fixture {
        files,
        customer_span_ms: (c.start_ms, c.end_ms),
    }
}

#[test]
fn embedded_pipeline_transcribes_searches_and_scores() {
    let tmp = tempfile::tempdir().unwrap();
    let fx = build_fixtures(tmp.path());
    let cq = Callqa::embedded(&tmp.path().join("data"));
    let mut args = vec![
        "ingest",
        "--wait",
        "--campaign",
        "cards",
        "--agent",
        "anna",
        "--customer",
        "+8613800138000",
    ];
    let paths: Vec<String> = fx.files.iter().map(|p| p.display().to_string()).collect();
    args.extend(paths.iter().map(String::as_str));
    let out = cq.run(&args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "two bad files must make ingest exit non-zero\n{stderr}"
    );
    let lines = json_lines(&stdout);
    assert_eq!(
        lines.len(),
        fx.files.len(),
        "one line per file:\n{stdout}\n{stderr}"
    );
    // name -> (call_id, line)
    let by_name: HashMap<String, Value> = fx
        .files
        .iter()
        .zip(&lines)
        .map(|(f, l)| {
            (
                f.file_name().unwrap().to_string_lossy().into_owned(),
                l.clone(),
            )
        })
        .collect();
    for (name, line) in &by_name {
        let bad = name == "corrupt.wav" || name == "empty.wav";
        let expected = if bad { "failed" } else { "done" };
        assert_eq!(line["status"], expected, "{name}: {line}\n{stderr}");
        if bad {
            let err = line["error"].as_str().unwrap_or("");
            assert!(err.len() > 10, "{name} needs a readable reason: {line}");
        } else {
            assert!(line.get("error").is_none(), "{name}: {line}");
        }
    }
    assert!(by_name["empty.wav"]["error"]
        .as_str()
        .unwrap()
        .contains("empty"));
    let id = |name: &str| by_name[name]["call_id"].as_str().unwrap().to_string();

    // English stereo: per-speaker text with the customer's words at the right time.
    let en = cq.json(&["calls", "show", &id("en_refund_call.wav"), "--json"]);
    assert_eq!(en["status"], "done");
    let customer = speaker_text(&en, "customer");
    assert!(customer.contains("refund"), "customer said refund: {en}");
    assert!(
        customer.contains("complain"),
        "customer said complaint: {en}"
    );
    let agent = speaker_text(&en, "agent");
    assert!(
        agent.contains("calling") || agent.contains("payment"),
        "agent text: {en}"
    );
    assert!(
        !agent.contains("refund"),
        "the agent never said refund: {en}"
    );
    let seg = en["segments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| {
            s["speaker"] == "customer"
                && s["text"]
                    .as_str()
                    .unwrap()
                    .to_lowercase()
                    .contains("refund")
        })
        .unwrap();
    let (cs, ce) = fx.customer_span_ms;
    let start = seg["start_ms"].as_u64().unwrap();
    assert!(
        start + 400 >= cs && start <= cs + 400,
        "segment starts at {start}, speech at {cs}..{ce}"
    );
    assert_eq!(en["language"], "en");
    assert!(en["recording"]["bytes"].as_u64().unwrap() > 10_000);
    // The agent's two turns are decoded in one packed window; each word must come back to
    // the turn it was said in (DTW alignment), not to the other one.
    let agent_turns: Vec<String> = en["segments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["speaker"] == "agent")
        .map(|s| s["text"].as_str().unwrap().to_lowercase())
        .collect();
    assert_eq!(agent_turns.len(), 2, "{en}");
    assert!(
        !agent_turns[0].contains("goodbye") && !agent_turns[0].contains("understand"),
        "the greeting holds only its own words: {agent_turns:?}"
    );
    assert!(
        agent_turns[1].contains("goodbye") || agent_turns[1].contains("understand"),
        "the farewell holds its words: {agent_turns:?}"
    );

    // Mandarin: simplified characters, the keywords on the customer's side.
    let zh = cq.json(&["calls", "show", &id("zh_refund_call.wav"), "--json"]);
    assert_eq!(zh["language"], "zh", "{zh}");
    let zc = speaker_text(&zh, "customer");
    assert!(zc.contains("退款"), "customer said 退款: {zc}");
    assert!(
        zc.contains("投诉"),
        "customer said 投诉 (normalised to simplified): {zc}"
    );

    // Every format decodes; mono recordings are one mixed speaker.
    for f in AudioFormat::ALL {
        let name = format!("clip_{f:?}.{}", f.extension()).to_lowercase();
        let c = cq.json(&["calls", "show", &id(&name), "--json"]);
        let text = speaker_text(&c, "mixed");
        assert!(text.contains("refund"), "{name}: {c}");
    }

    // Failed calls are listed with their reasons.
    let failed = cq.json(&["calls", "list", "--status", "failed", "--json"]);
    assert_eq!(failed["calls"].as_array().unwrap().len(), 2, "{failed}");

    // Ringback before the answer (three rings of 440 + 480 Hz, 2 s on, 4 s off, on the
    // customer's leg) is gated out with the silence: nothing is transcribed before the
    // customer speaks, and what they say is.
    let ring = tmp.path().join("ringback.wav");
    run_tool(
        std::process::Command::new("sox")
            .args(["-n", "-r", "8000", "-b", "16", "-c", "1"])
            .arg(&ring)
            .args(["synth", "2", "sine", "440", "sine", "480", "channels", "1"])
            .args(["gain", "-n", "-14", "pad", "0", "4", "repeat", "2"]),
    );
    let ringing = tmp.path().join("en_ringback_call.wav");
    let spans = stereo_call(
        &[
            Turn::wav(Side::Customer, &ring, 0),
            Turn::say(Side::Customer, "Hello? Who is calling, please?", 300),
            Turn::say(
                Side::Agent,
                "Good morning, this is Anna from Acme Bank about your card payment.",
                700,
            ),
        ],
        &ringing,
        8000,
    )
    .expect("ringback call");
    let o = cq.ok(&[
        "ingest",
        "--wait",
        "--customer",
        "+8613600136000",
        &ringing.display().to_string(),
    ]);
    let ring_id = json_lines(&o)[0]["call_id"].as_str().unwrap().to_string();
    let rc = cq.json(&["calls", "show", &ring_id, "--json"]);
    let answered_ms = spans[1].start_ms;
    for seg in rc["segments"].as_array().unwrap() {
        assert!(
            seg["end_ms"].as_u64().unwrap() + 300 >= answered_ms,
            "text during the ringing (answered at {answered_ms} ms): {seg}"
        );
    }
    let hello = speaker_text(&rc, "customer");
    assert!(
        hello.contains("calling") || hello.contains("hello"),
        "the customer's words after the rings: {rc}"
    );

    // A number said digit by digit ("one two three four": whisper writes "1, 2, 3, 4" as
    // often as "1234") is transcribed as the number, so a search for it finds the call.
    let digits = tmp.path().join("en_digits_call.wav");
    stereo_call(
        &[Turn::say(
            Side::Customer,
            "Yes. The extension is one two three four, and my password is four two four two.",
            300,
        )],
        &digits,
        8000,
    )
    .expect("digits call");
    let o = cq.ok(&["ingest", "--wait", &digits.display().to_string()]);
    let digits_id = json_lines(&o)[0]["call_id"].as_str().unwrap().to_string();
    let dc = cq.json(&["calls", "show", &digits_id, "--json"]);
    let said = speaker_text(&dc, "customer");
    for number in ["1234", "4242"] {
        assert!(said.contains(number), "{number} as one number: {said:?}");
    }

    // Search over the real transcripts (issue 3).
    let hits = |q: &[&str]| -> Vec<String> {
        let mut a = vec!["search"];
        a.extend_from_slice(q);
        a.push("--json");
        let r = cq.json(&a);
        r["hits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["call_id"].as_str().unwrap().to_string())
            .collect()
    };
    let refund_zh = hits(&["退款"]);
    assert!(
        refund_zh.contains(&id("zh_refund_call.wav")),
        "{refund_zh:?}"
    );
    assert!(
        !refund_zh.contains(&id("zh_returns_call.wav")),
        "退款 must not match 退货/款项: {refund_zh:?}"
    );
    let refund_en = hits(&["refund", "--speaker", "customer"]);
    assert!(
        refund_en.contains(&id("en_refund_call.wav")),
        "{refund_en:?}"
    );
    let refund_agent = hits(&["refund", "--speaker", "agent"]);
    assert!(
        !refund_agent.contains(&id("en_refund_call.wav")),
        "{refund_agent:?}"
    );
    let extension = hits(&["1234"]);
    assert!(extension.contains(&digits_id), "{extension:?}");
    let both = hits(&["refund AND complaint"]);
    assert!(
        both.contains(&id("en_refund_call.wav")),
        "the customer said refund and complaint ({customer:?}): {both:?}"
    );
    assert!(
        !both.contains(&id("zh_returns_call.wav")),
        "the returns call has neither word: {both:?}"
    );
    let r = cq.json(&["search", "退款", "--json"]);
    let snip = &r["hits"][0]["snippets"][0];
    assert!(snip["text"].as_str().unwrap().contains("<b>"), "{r}");
    assert_eq!(snip["speaker"], "customer");
    let bad = cq.run(&["search", "refund AND (", "--json"]);
    assert_eq!(
        bad.status.code(),
        Some(2),
        "a query that does not parse exits 2"
    );
    assert!(!String::from_utf8_lossy(&bad.stderr).trim().is_empty());

    // QA (issue 4): the complaint is flagged with evidence at the customer's words.
    let qa = &en["qa"];
    let flags: Vec<&str> = qa["flags"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(flags.contains(&"complaint"), "{qa}");
    assert!(flags.contains(&"refund"), "{qa}");
    let zflags: Vec<&str> = zh["qa"]["flags"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(zflags.contains(&"complaint"), "{}", zh["qa"]);
    // QA on real transcripts (issue 4): complaints blacklist a number at the threshold
    // (2 complaint calls: the English and the Mandarin call above share a number), an
    // opt-out blacklists after one call, and the marketing scorecard auto-fails a call
    // without the agent's name and company.
    let bl = cq.json(&["blacklist", "list", "--json"]);
    let entry = bl["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["number"] == "+8613800138000")
        .unwrap_or_else(|| panic!("complaint threshold crossed: {bl}"));
    assert_eq!(entry["source"], "complaints", "{entry}");
    let sources: Vec<&str> = entry["calls"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        sources.contains(&id("en_refund_call.wav").as_str()),
        "{entry}"
    );
    assert!(
        sources.contains(&id("zh_refund_call.wav").as_str()),
        "{entry}"
    );

    let zh = fixtures_dir().join("zh");
    let optout = tmp.path().join("zh_optout_call.wav");
    stereo_call(
        &[
            Turn::wav(Side::Agent, zh.join("agent_greeting.wav"), 600),
            Turn::wav(Side::Customer, zh.join("customer_optout.wav"), 1000),
        ],
        &optout,
        8000,
    )
    .unwrap();
    let good = tmp.path().join("promo_good.wav");
    stereo_call(
        &[
            Turn::say(Side::Agent, "Hello, my name is Anna and I am calling from Acme Bank. Do you have a minute? Would you like to hear about our new savings account?", 700),
            Turn::say(Side::Customer, "Yes, go ahead.", 800),
            Turn::say(Side::Agent, "It has no fees and a good rate. Thank you, goodbye.", 800),
        ],
        &good,
        8000,
    )
    .unwrap();
    let bad = tmp.path().join("promo_bad.wav");
    stereo_call(
        &[
            Turn::say(
                Side::Agent,
                "Is now a good time? We have a special offer on savings accounts.",
                700,
            ),
            Turn::say(Side::Customer, "Okay.", 800),
            Turn::say(Side::Agent, "Great. Thank you, goodbye.", 800),
        ],
        &bad,
        8000,
    )
    .unwrap();
    let cards = cq.data_dir.join("scorecards");
    std::fs::create_dir_all(&cards).unwrap();
    std::fs::copy(
        callqa_tests::workspace_root().join("qa/scorecards/marketing.toml"),
        cards.join("promo.toml"),
    )
    .unwrap();
    let o = cq.ok(&[
        "ingest",
        "--wait",
        "--customer",
        "+8613900139001",
        &optout.display().to_string(),
    ]);
    let optout_id = json_lines(&o)[0]["call_id"].as_str().unwrap().to_string();
    let o = cq.ok(&[
        "ingest",
        "--wait",
        "--campaign",
        "promo",
        "--customer",
        "+8613700137000",
        &good.display().to_string(),
        &bad.display().to_string(),
    ]);
    let promo = json_lines(&o);
    let bl = cq.json(&["blacklist", "list", "--json"]);
    let entry = bl["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["number"] == "+8613900139001")
        .unwrap_or_else(|| panic!("opt-out after one call: {bl}"));
    assert_eq!(entry["source"], "opt_out", "{entry}");
    assert_eq!(entry["calls"][0], optout_id.as_str());
    let good = cq.json(&[
        "calls",
        "show",
        promo[0]["call_id"].as_str().unwrap(),
        "--json",
    ]);
    let bad = cq.json(&[
        "calls",
        "show",
        promo[1]["call_id"].as_str().unwrap(),
        "--json",
    ]);
    assert_eq!(good["qa"]["scorecard"], "marketing", "{}", good["qa"]);
    assert_eq!(good["qa"]["auto_failed"], false, "{}", good["qa"]);
    assert!(
        good["qa"]["score"].as_f64().unwrap() >= 60.0,
        "{}",
        good["qa"]
    );
    assert_eq!(
        bad["qa"]["auto_failed"], true,
        "no disclosure: {}",
        bad["qa"]
    );
    assert!(bad["qa"]["score"].as_f64().unwrap() < good["qa"]["score"].as_f64().unwrap());
    let report = cq.ok(&["report", "qa", "--by", "campaign", "--format", "csv"]);
    assert!(
        report.lines().any(|l| l.starts_with("promo,2,")),
        "{report}"
    );

    // The complaint's evidence is the customer's words, at the second they were said.
    let complaint_ev: Vec<&Value> = en["qa"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["id"].as_str().unwrap_or("").contains("complaint"))
        .flat_map(|i| i["evidence"].as_array().unwrap().iter())
        .collect();
    let ev = complaint_ev
        .iter()
        .find(|e| e["speaker"] == "customer")
        .unwrap_or_else(|| panic!("complaint evidence: {}", en["qa"]));
    let ev_start = ev["start_ms"].as_u64().unwrap();
    assert!(
        ev_start + 500 >= cs && ev_start <= ce,
        "evidence at {ev_start}, customer spoke {cs}..{ce}"
    );

    // A new scorecard version re-scores stored calls through the queue and reports the diff.
    let card = std::fs::read_to_string(cards.join("promo.toml")).unwrap();
    let v2 =
        card.replacen("version = 1", "version = 2", 1)
            .replacen("\"is now a good time\",", "", 1);
    assert_ne!(card, v2);
    std::fs::write(cards.join("promo.toml"), v2).unwrap();
    let diff = cq.json(&["qa", "rescore", "--campaign", "promo"]);
    assert_eq!(diff["from_version"], 1, "{diff}");
    assert_eq!(diff["to_version"], 2, "{diff}");
    assert_eq!(diff["calls_rescored"], 2, "{diff}");
    let good2 = cq.json(&[
        "calls",
        "show",
        promo[0]["call_id"].as_str().unwrap(),
        "--json",
    ]);
    assert_eq!(good2["qa"]["version"], 2);
    assert_eq!(good2["status"], "done");
}

/// The beam-search rescue on the real model: with `rescue_logprob = 0` every greedy window
/// counts as unsure, so each is decoded a second time with beam search, and the words of the
/// better decode reach the transcript.
#[test]
fn unsure_windows_are_decoded_again_with_beam_search() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cq = Callqa::embedded(&tmp.path().join("data"));
    cq.env.extend([
        ("CALLQA_TRANSCRIBE_RESCUE_LOGPROB".into(), "0".into()),
        ("CALLQA_LOG".into(), "callqa_ingest=debug".into()),
    ]);
    let sample = callqa_tests::workspace_root().join("deploy/samples/en_refund_complaint.wav");
    let sample = sample.display().to_string();
    let out = cq.run(&["bench", "transcribe", &sample, "--language", "en"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench transcribe failed:\n{stderr}");
    assert!(
        stderr.contains("unsure window decoded again with beam search"),
        "no window was decoded again:\n{stderr}"
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("bench prints JSON");
    let customer = report["runs"][0]["by_speaker"]["customer"]
        .as_str()
        .unwrap_or_default()
        .to_lowercase();
    assert!(
        customer.contains("refund") && customer.contains("complaint"),
        "customer: {customer:?}"
    );
}

/// `transcribe.prompt` on the real model: names whisper cannot spell from the sound alone
/// (espeak's "Acme Bank" comes out as "Aklimank") are written as configured.
#[test]
fn configured_words_and_names_are_written_as_given() {
    let tmp = tempfile::tempdir().unwrap();
    let wav = tmp.path().join("acme.wav");
    run_tool(
        std::process::Command::new("espeak-ng")
            .arg("-w")
            .arg(&wav)
            .arg("Good afternoon, this is Anna calling from Acme Bank about your credit card."),
    );
    let wav = wav.display().to_string();
    let transcribe = |prompt: &str| {
        let mut cq = Callqa::embedded(&tmp.path().join("data"));
        cq.env
            .push(("CALLQA_TRANSCRIBE_PROMPT".into(), prompt.into()));
        let report = cq.json(&["bench", "transcribe", &wav, "--language", "en"]);
        report["runs"][0]["by_speaker"]["mixed"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let plain = transcribe("");
    let prompted = transcribe("Acme Bank");
    assert!(
        prompted.contains("Acme Bank") && prompted.contains("credit card"),
        "with the prompt: {prompted:?} (without: {plain:?})"
    );
    assert!(
        !prompted.to_lowercase().starts_with("acme bank"),
        "the prompt is said back: {prompted:?}"
    );
}

/// A temp dir holding `anna.wav`, `payment.wav` (espeak-ng at 16 kHz) and `gap.wav` (1.2 s
/// of silence), a path maker for it, and sox (`-R`: the same dither and noise on every run,
/// so the same audio).
fn clips() -> (tempfile::TempDir, impl Fn(&str) -> String, impl Fn(&[&str])) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let p = move |name: &str| dir.join(name).display().to_string();
    let sox = |args: &[&str]| run_tool(std::process::Command::new("sox").arg("-R").args(args));
    espeak(&p, "anna.wav", "Hello, this is Anna from the bank.");
    espeak(&p, "payment.wav", "I am calling about your last payment.");
    sox(&[
        "-n",
        "-r",
        "16000",
        "-c",
        "1",
        &p("gap.wav"),
        "trim",
        "0",
        "1.2",
    ]);
    (tmp, p, sox)
}

/// `text` said by espeak-ng, at 16 kHz, as `name` (a path made by `p`).
fn espeak(p: &impl Fn(&str) -> String, name: &str, text: &str) {
    run_tool(std::process::Command::new("espeak-ng").args(["-w", &p("raw.wav"), text]));
    run_tool(std::process::Command::new("sox").args([&p("raw.wav"), "-r", "16000", &p(name)]));
}

/// `transcribe.redecode_lost` on the real model. A sentence said five times in a row comes
/// back from a packed window fewer times (whisper skips what it has just written); each lost
/// utterance, decoded alone, gets its words back. Pink noise between two sentences, which
/// the voice gate lets through and whisper skips in the window, gets none: decoded alone it
/// comes out as a word of the sentence beside it ("I"), which is dropped. (Other noise can
/// come out as made-up words, which is why `redecode_lost` is off by default without
/// Silero.)
#[test]
fn a_sentence_said_again_keeps_its_words_and_noise_gets_none() {
    let (tmp, p, sox) = clips();
    espeak(&p, "refund.wav", "I want a refund for the second payment.");
    let silence = ["-n", "-r", "16000", "-c", "1"];
    let noise = ["synth", "2", "pinknoise", "vol", "0.15"];
    sox(&[&silence[..], &[&p("pink.wav")], &noise[..]].concat());
    let mut five = Vec::new();
    for _ in 0..5 {
        five.extend([p("refund.wav"), p("gap.wav")]);
    }
    five.push(p("repeated.wav"));
    sox(&five.iter().map(String::as_str).collect::<Vec<_>>());
    let noisy = [
        "anna.wav",
        "gap.wav",
        "pink.wav",
        "gap.wav",
        "payment.wav",
        "gap.wav",
        "pink.wav",
        "gap.wav",
        "anna.wav",
        "noisy.wav",
    ]
    .map(&p);
    sox(&noisy.iter().map(String::as_str).collect::<Vec<_>>());

    let lines_with = |file: &str, env: &[(&str, &str)]| {
        let mut cq = Callqa::embedded(&tmp.path().join("data"));
        cq.env
            .extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let report = cq.json(&["bench", "transcribe", &p(file), "--language", "en"]);
        let text = report["runs"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        text.lines().map(str::to_lowercase).collect::<Vec<_>>()
    };
    let lines = |file: &str| lines_with(file, &[("CALLQA_TRANSCRIBE_REDECODE_LOST", "true")]);
    let five = |lines: &[String]| {
        lines.len() == 5
            && lines
                .iter()
                .all(|l| l.contains("refund") && l.contains("payment"))
    };
    let repeated = lines("repeated.wav");
    assert!(five(&repeated), "{repeated:?}");
    // Not set, it is on where Silero (installed next to the model) checks the utterances,
    // and off with the energy gate alone.
    let by_default = lines_with("repeated.wav", &[]);
    assert!(five(&by_default), "{by_default:?}");
    let energy_only = lines_with("repeated.wav", &[("CALLQA_TRANSCRIBE_VAD_MODEL", "")]);
    assert!(energy_only.len() < 5, "{energy_only:?}");
    let noisy = lines("noisy.wav");
    assert_eq!(noisy.len(), 3, "{noisy:?}");
    assert!(
        noisy[0].contains("this is")
            && noisy[1].contains("calling")
            && noisy[2].contains("this is"),
        "{noisy:?}"
    );
}

/// Silero (`transcribe.vad_model`, installed next to the whisper model by
/// `deploy/install-model.sh`) on the real models: brown and pink noise loud enough to pass
/// the energy gate are dropped before whisper, the sentences around them are kept, and with
/// `redecode_lost` no noise is decoded alone into made-up words. With the model turned off
/// (an empty path) the noise reaches whisper again.
#[test]
fn noise_the_energy_gate_lets_through_never_reaches_whisper() {
    let silero = callqa_tests::model_path().with_file_name("ggml-silero-v6.bin");
    assert!(
        silero.is_file(),
        "{} is missing: run deploy/install-model.sh",
        silero.display()
    );
    let (tmp, p, sox) = clips();
    let silence = ["-n", "-r", "16000", "-c", "1"];
    sox(&[
        &silence[..],
        &[&p("brown.wav"), "synth", "2", "brownnoise", "vol", "0.3"],
    ]
    .concat());
    sox(&[
        &silence[..],
        &[&p("pink.wav"), "synth", "2", "pinknoise", "vol", "0.15"],
    ]
    .concat());
    let parts = [
        "anna.wav",
        "gap.wav",
        "brown.wav",
        "gap.wav",
        "payment.wav",
        "gap.wav",
        "pink.wav",
        "noisy.wav",
    ]
    .map(&p);
    sox(&parts.iter().map(String::as_str).collect::<Vec<_>>());

    let run = |vad_model: Option<&str>| {
        let mut cq = Callqa::embedded(&tmp.path().join("data"));
        cq.env.extend([
            ("CALLQA_TRANSCRIBE_REDECODE_LOST".into(), "true".into()),
            ("CALLQA_LOG".into(), "callqa_ingest=debug".into()),
        ]);
        if let Some(m) = vad_model {
            cq.env
                .push(("CALLQA_TRANSCRIBE_VAD_MODEL".into(), m.into()));
        }
        let out = cq.run(&["bench", "transcribe", &p("noisy.wav"), "--language", "en"]);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "bench transcribe failed:\n{stderr}");
        let report: Value = serde_json::from_slice(&out.stdout).expect("bench prints JSON");
        let text = report["runs"][0]["text"].as_str().unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_lowercase).collect();
        let dropped = stderr.matches("no speech heard").count();
        (lines, dropped)
    };
    let (lines, dropped) = run(None);
    assert!(dropped >= 2, "both noises dropped: {dropped} ({lines:?})");
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].contains("this is") && lines[1].contains("calling"),
        "{lines:?}"
    );
    let (_, dropped_off) = run(Some(""));
    assert_eq!(dropped_off, 0, "an empty vad_model turns Silero off");
}

/// `callqa model import-silero` on a file that is not a Silero ONNX model fails with the
/// reason and writes nothing.
#[test]
fn importing_something_else_as_silero_fails_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let cq = Callqa::embedded(&tmp.path().join("data"));
    let wav = callqa_tests::workspace_root().join("deploy/samples/en_refund_complaint.wav");
    let out = tmp.path().join("ggml-silero-v6.bin");
    let o = cq.run(&[
        "model",
        "import-silero",
        &wav.display().to_string(),
        &out.display().to_string(),
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "a WAV file was taken as a model");
    assert!(stderr.contains("not a valid model file"), "{stderr}");
    assert!(!out.exists() && !tmp.path().join("ggml-silero-v6.bin.tmp").exists());
}
