#!/usr/bin/env python3
"""Transcription benchmark: callqa (whisper.cpp via whisper-rs) against faster-whisper
(PyPI) on the same weights (whisper base: the CTranslate2 model and its ggml conversion),
the same threads and the same audio: a 3-minute stereo call with realistic silence, built
from espeak-ng speech. Reports wall time, real-time factor and word error rate per engine.

Usage: transcribe_compare.py CALLQA_BIN CT2_DIR GGML_MODEL[:key=value]... [--threads 2] [--minutes 3]
       [--fw int8:5,int8:1]   (faster-whisper compute type and beam size per run)
faster-whisper must be importable by this interpreter (run it from a venv that has it).
"""
import argparse, json, os, subprocess, sys, tempfile, time, wave, struct, re

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

def espeak(text, voice, path):
    raw = path + ".raw.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", raw, text], check=True)
    subprocess.run(["sox", raw, "-r", "8000", "-c", "1", "-b", "16", path], check=True)
    w = wave.open(path); data = w.readframes(w.getnframes()); w.close()
    return list(struct.unpack("<%dh" % (len(data) // 2), data))

def build_call(dir_, minutes):
    rate = 8000
    target = int(minutes * 60 * rate)
    left, right, refs = [], [], {"agent": [], "customer": []}
    i = 0
    while len(left) < target:
        side, text = SENTENCES[i % len(SENTENCES)]
        i += 1
        voice = "en-us" if side == "agent" else "en-us+f2"
        s = espeak(text, voice, os.path.join(dir_, f"u{i}.wav"))
        gap = [0] * int(rate * (1.2 + (i % 4) * 0.9))  # pauses of 1.2-3.9 s
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
    out = os.path.join(dir_, "call.wav")
    w = wave.open(out, "wb"); w.setnchannels(2); w.setsampwidth(2); w.setframerate(rate)
    w.writeframes(b"".join(struct.pack("<hh", a, b) for a, b in zip(left, right))); w.close()
    for ch, name in ((0, "agent"), (1, "customer")):
        subprocess.run(["sox", out, os.path.join(dir_, f"{name}.wav"), "remix", str(ch + 1)], check=True)
    return out, {k: " ".join(v) for k, v in refs.items()}

def words(t):
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

def run_faster_whisper(ct2, dir_, threads, compute_type, beam):
    from faster_whisper import WhisperModel
    m = WhisperModel(ct2, device="cpu", compute_type=compute_type, cpu_threads=threads)
    text, t0 = {}, time.time()
    for name in ("agent", "customer"):
        segs, _ = m.transcribe(os.path.join(dir_, f"{name}.wav"), language="en", beam_size=beam, vad_filter=True)
        text[name] = " ".join(s.text for s in segs)
    return time.time() - t0, text

def run_callqa(bin_, model, call, threads):
    env = dict(os.environ)
    # MODEL:KEY=VALUE[:KEY=VALUE] sets [transcribe] options, e.g. model.bin:min_audio_ctx=1500
    parts = model.split(":")
    model = parts[0]
    for kv in parts[1:]:
        k, v = kv.split("=", 1)
        env["CALLQA_TRANSCRIBE_" + k.upper()] = v
    out = subprocess.run([bin_, "bench", "transcribe", call, "--model", model, "--threads", str(threads),
                          "--language", "en"], check=True, capture_output=True, text=True, env=env)
    r = json.loads(out.stdout)
    run = r["runs"][0]
    return run["wall_s"], run["by_speaker"]

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("callqa"); ap.add_argument("ct2_dir"); ap.add_argument("ggml", nargs="+")
    ap.add_argument("--threads", type=int, default=2); ap.add_argument("--minutes", type=float, default=3)
    ap.add_argument("--fw", default="int8:5,int8:1", help="faster-whisper runs as COMPUTE_TYPE:BEAM,...")
    ap.add_argument("--keep", help="copy the generated call.wav here")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        call, refs = build_call(d, a.minutes)
        if a.keep:
            import shutil
            shutil.copy(call, a.keep)
        audio_s = a.minutes * 60 * 2  # both channels are transcribed
        rows = []
        for model in a.ggml:
            wall, text = run_callqa(a.callqa, model, call, a.threads)
            rows.append(("callqa " + os.path.basename(model), wall, text))
            print(f"callqa {os.path.basename(model)}: {wall:.1f} s", file=sys.stderr)
        for spec in a.fw.split(","):
            ct, beam = spec.split(":")
            beam = int(beam)
            wall, text = run_faster_whisper(a.ct2_dir, d, a.threads, ct, beam)
            rows.append((f"faster-whisper {ct} beam{beam}", wall, text))
        res = []
        for name, wall, text in rows:
            w = wer(refs["agent"] + " " + refs["customer"], text.get("agent", "") + " " + text.get("customer", ""))
            res.append({"engine": name, "wall_s": round(wall, 2), "rtf": round(a.minutes * 60 / wall, 2), "wer": round(w, 4),
                        "text": text})
            print(f"{name:34s} wall {wall:7.2f} s   {a.minutes*60/wall:6.2f}x real time (call length)   WER {w:.3f}", file=sys.stderr)
        print(json.dumps({"audio_minutes": a.minutes, "threads": a.threads, "results": res}))

if __name__ == "__main__":
    main()
