//! Whisper transcription per channel: voice-gated utterances (checked by Silero when its
//! model is installed) are packed end to end into short windows (12 s by default) and
//! decoded; each word is placed in time (cross-attention alignment, or timestamp tokens)
//! and each segment is one utterance, with its boundaries in the call, so silence costs
//! nothing. A greedy window that looks unsure is decoded again with beam search; an
//! utterance whose text says a run of words twice in a row is decoded alone, and so (with
//! `redecode_lost`) is one the window left without words. Windows are independent, so a
//! call's windows are decoded in parallel, one single-threaded whisper state per thread (a
//! state left with the last windows takes over the idle threads).

mod align;
mod attribute;
mod pack;

use crate::config::TranscribeConfig;
use crate::decode::Audio;
use crate::error::{IngestError, Result};
use crate::model::{default_vad_model, read_hparams};
use crate::resample::{resample, WHISPER_RATE};
use crate::speech_gate::SpeechGate;
use crate::text::{join_spoken_digits, normalize_zh};
use crate::transcript::{Segment, Speaker, Transcript};
use crate::vad::{speech_regions, Region, VadParams};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use whisper_rs::{
    DtwParameters, FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters,
    WhisperState,
};

/// Whisper's window: 30 s of 16 kHz audio, 1500 encoder positions.
const WINDOW_SAMPLES: usize = 30 * WHISPER_RATE as usize;
const FULL_AUDIO_CTX: usize = 1500;
/// Packed windows stay a little under 30 s so whisper's last timestamp fits.
const MAX_PACK_SECONDS: u32 = 28;
/// Whisper timestamps are in centiseconds: 160 samples at 16 kHz.
const SAMPLES_PER_CS: usize = WHISPER_RATE as usize / 100;
/// Pushes whisper towards simplified characters in Mandarin output, and towards the words of
/// a customer-service call ("the following is a Mandarin customer-service call"): against
/// "以下是普通话的句子。" ("Mandarin sentences"), the `zh` benchmark corpus went from CER
/// 0.083 to 0.059 (客服 for 克服, 你们 for 你母), with `beam_size=5` to 0.049.
const ZH_PROMPT: &str = "以下是普通话的客服电话。";
/// Characters of a speaker's previous words given to whisper as context.
const CONTEXT_CHARS: usize = 200;
/// Segments more likely silence than speech are dropped.
const NO_SPEECH_DROP: f32 = 0.8;

/// Working memory of whisper.cpp's DTW alignment, per window (its own default).
const DTW_MEM_BYTES: usize = 128 * 1024 * 1024;

/// Whisper states decoding one call at once, at most (each holds its own buffers).
const MAX_PARALLEL_STATES: usize = 8;

/// A unit of decoding work; jobs run in parallel, each on a whisper state of its own.
enum Job {
    /// A packed window of one channel's utterances.
    Pack { ch: usize, pack: pack::Pack },
    /// One channel's packed windows in order, each prompted with the previous one's text.
    Packs { ch: usize, packs: Vec<pack::Pack> },
    /// One channel's utterances in order, each prompted with the words before it.
    Utterances { ch: usize },
}

/// One utterance's segment, unless whisper's text for it is empty, non-speech or the
/// configured `prompt` said back (whisper repeats its prompt on noise).
fn segment(speaker: Speaker, region: &Region, raw: &str, prompt: &str) -> Option<Segment> {
    let text = clean_text(raw)?;
    if !prompt.trim().is_empty() && units(&text) == units(prompt) {
        return None;
    }
    Some(Segment {
        speaker,
        start_ms: samples_to_ms(region.start),
        end_ms: samples_to_ms(region.end),
        text,
    })
}

/// A loaded model; share one per process (`Arc`) and call `transcribe` from blocking threads.
pub struct Transcriber {
    ctx: WhisperContext,
    cfg: TranscribeConfig,
    model_name: String,
    /// Packed windows are decoded without timestamp tokens and their words placed by
    /// cross-attention alignment (`TranscribeConfig::dtw`).
    dtw: bool,
    /// Silero's check of the energy gate's utterances (`TranscribeConfig::vad_model`).
    gate: Option<SpeechGate>,
    /// `TranscribeConfig::redecode_lost`, or by default whether Silero checks utterances.
    redecode_lost: bool,
}

/// One channel's audio at 16 kHz with the speaker it belongs to.
struct Channel {
    speaker: Speaker,
    pcm: Vec<f32>,
    regions: Vec<Region>,
}

impl Transcriber {
    pub fn load(path: &Path, cfg: &TranscribeConfig) -> Result<Transcriber> {
        whisper_rs::install_logging_hooks();
        if !path.is_file() {
            return Err(IngestError::Model {
                path: path.display().to_string(),
                reason: "no such file; run `callqa model fetch base` or \
                         `callqa model import-ct2 DIR OUT.bin`, or set transcribe.model"
                    .into(),
            });
        }
        let mut params = WhisperContextParameters::default();
        params.flash_attn(cfg.flash_attn);
        // whisper.cpp cannot align with flash attention; it then keeps timestamp tokens.
        let dtw = cfg.dtw && cfg.pack && !cfg.flash_attn;
        if dtw {
            let hparams = read_hparams(path).map_err(|e| IngestError::Model {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
            params.dtw_parameters(DtwParameters {
                mode: align::dtw_mode(&hparams),
                dtw_mem_size: DTW_MEM_BYTES,
            });
        }
        let ctx =
            WhisperContext::new_with_params(path, params).map_err(|e| IngestError::Model {
                path: path.display().to_string(),
                reason: format!("whisper could not load it: {e}"),
            })?;
        let model_name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "whisper".into());
        let vad_model = match &cfg.vad_model {
            Some(p) if p.as_os_str().is_empty() => None,
            Some(p) => Some(p.clone()),
            None => path.parent().and_then(default_vad_model),
        };
        let gate = match vad_model {
            Some(p) if cfg.vad => {
                tracing::info!(model = %p.display(), "Silero checks the voice gate's utterances");
                Some(SpeechGate::load(&p)?)
            }
            _ => None,
        };
        Ok(Transcriber {
            ctx,
            cfg: cfg.clone(),
            model_name,
            dtw,
            redecode_lost: cfg.redecode_lost.unwrap_or(gate.is_some()),
            gate,
        })
    }

    pub fn model_name(&self) -> &str {
        &self.model_name
    }

    /// Transcribes a whole call. Blocking and CPU-heavy: run it off the async runtime.
    /// `language` overrides the configured one (e.g. from the campaign).
    pub fn transcribe(
        &self,
        call_id: &str,
        audio: &Audio,
        language: Option<&str>,
    ) -> Result<Transcript> {
        let fail = |reason: String| IngestError::Transcribe {
            call_id: call_id.to_string(),
            reason,
        };
        let channels = self.channels(audio).map_err(|e| fail(e.to_string()))?;
        let lang = match language.or(Some(self.cfg.language.as_str())) {
            Some(l) if l != "auto" && !l.is_empty() => Some(l.to_string()),
            _ => self.detect_language(&channels).map_err(fail)?,
        };
        let jobs = self.jobs(&channels, lang.as_deref());
        let mut segments = self
            .run_jobs(&channels, &jobs, lang.as_deref())
            .map_err(fail)?;
        segments.sort_by_key(|s| (s.start_ms, s.end_ms));
        Ok(Transcript {
            call_id: call_id.to_string(),
            language: lang,
            duration_ms: audio.duration_ms(),
            model: self.model_name.clone(),
            segments,
        })
    }

    /// The call's decoding work: packed windows of each channel (as long as `lang` wants),
    /// or (`pack = false`) each channel's utterances in order.
    fn jobs(&self, channels: &[Channel], lang: Option<&str>) -> Vec<Job> {
        let mut jobs = Vec::new();
        for (ch, c) in channels.iter().enumerate() {
            if self.cfg.pack {
                let window = window_seconds(&self.cfg, lang) * WHISPER_RATE;
                let gap = (self.cfg.pack_gap_ms as usize * WHISPER_RATE as usize) / 1000;
                let packs = pack::pack(&c.pcm, &c.regions, window as usize, gap);
                if self.cfg.condition_on_previous_text {
                    if !packs.is_empty() {
                        jobs.push(Job::Packs { ch, packs });
                    }
                } else {
                    jobs.extend(packs.into_iter().map(|pack| Job::Pack { ch, pack }));
                }
            } else if !c.regions.is_empty() {
                jobs.push(Job::Utterances { ch });
            }
        }
        jobs
    }

    /// Runs the jobs on up to `threads` whisper states at once, the threads split between
    /// the states still busy (one each while there are enough jobs; a state finishing the
    /// last job gets the threads others no longer use). Whisper's multi-threaded decoding waits
    /// on a barrier per graph node, which collapses when another process takes a core
    /// (measured: 149 vs 16 ms per token on a busy 2-core machine); independent windows on
    /// single-threaded states have no such waits.
    fn run_jobs(
        &self,
        channels: &[Channel],
        jobs: &[Job],
        lang: Option<&str>,
    ) -> Result<Vec<Segment>, String> {
        let threads = self.cfg.threads.max(1);
        let workers = threads.min(jobs.len()).clamp(1, MAX_PARALLEL_STATES);
        let next = AtomicUsize::new(0);
        let busy = AtomicUsize::new(workers);
        let failed = AtomicBool::new(false);
        let outcomes: Vec<Result<Vec<Segment>, String>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers)
                .map(|w| {
                    let (next, busy, failed) = (&next, &busy, &failed);
                    let n_threads = move || {
                        let b = busy.load(Ordering::Relaxed).max(1);
                        threads / b + usize::from(w < threads % b)
                    };
                    scope.spawn(move || -> Result<Vec<Segment>, String> {
                        let outcome = (|| {
                            let mut state = self.ctx.create_state().map_err(|e| e.to_string())?;
                            let mut out = Vec::new();
                            while !failed.load(Ordering::Relaxed) {
                                let i = next.fetch_add(1, Ordering::Relaxed);
                                let Some(job) = jobs.get(i) else { break };
                                match self.run_job(&mut state, channels, job, lang, &n_threads) {
                                    Ok(segs) => out.extend(segs),
                                    Err(e) => {
                                        failed.store(true, Ordering::Relaxed);
                                        return Err(e);
                                    }
                                }
                            }
                            Ok(out)
                        })();
                        busy.fetch_sub(1, Ordering::Relaxed);
                        outcome
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err("a transcription thread panicked".into()))
                })
                .collect()
        });
        let mut segments = Vec::new();
        for outcome in outcomes {
            segments.extend(outcome?);
        }
        Ok(segments)
    }

    /// Decodes one job on `state`, each decode with `n_threads()` whisper threads.
    fn run_job(
        &self,
        state: &mut WhisperState,
        channels: &[Channel],
        job: &Job,
        lang: Option<&str>,
        n_threads: &dyn Fn() -> usize,
    ) -> Result<Vec<Segment>, String> {
        match job {
            // A packed window carries its own context; the previous window's words as a
            // prompt made whisper skip or repeat sentences (measured), so by default packed
            // windows are decoded without them (`condition_on_previous_text` turns it on).
            Job::Pack { ch, pack } => {
                let speaker = channels[*ch].speaker;
                let texts = self.decode_pack(state, pack, lang, None, n_threads())?;
                Ok(self.pack_segments(speaker, pack, texts))
            }
            // Each window is prompted with the previous window's words; a prompted decode
            // that degenerates into repetition, says the prompt's words again or skips an
            // utterance is decoded again without the prompt.
            Job::Packs { ch, packs } => {
                let speaker = channels[*ch].speaker;
                let mut context = String::new();
                let mut out = Vec::new();
                for pack in packs {
                    let prompt = (!context.is_empty()).then_some(context.as_str());
                    let mut texts = self.decode_pack(state, pack, lang, prompt, n_threads())?;
                    let joined = texts.join(" ");
                    let suspect = |p: &str| {
                        repetitive(&joined) || copies(p, &joined) || loses_utterance(pack, &texts)
                    };
                    if prompt.is_some_and(suspect) {
                        tracing::debug!("prompted window repeats itself; decoding it again");
                        texts = self.decode_pack(state, pack, lang, None, n_threads())?;
                    }
                    let segs = self.pack_segments(speaker, pack, texts);
                    let text: Vec<&str> = segs.iter().map(|s| s.text.as_str()).collect();
                    context = tail_chars(&text.join(" "), CONTEXT_CHARS);
                    out.extend(segs);
                }
                Ok(out)
            }
            // What this speaker said just before is whisper's prompt for the next utterance.
            Job::Utterances { ch } => {
                let ch = &channels[*ch];
                let mut context = String::new();
                let mut out = Vec::new();
                for r in &ch.regions {
                    let prompt = self.cfg.context.then_some(context.as_str());
                    let pcm = &ch.pcm[r.start..r.end];
                    let raw = self.decode_region(state, pcm, lang, prompt, n_threads())?;
                    if let Some(seg) = segment(ch.speaker, r, &raw, &self.cfg.prompt) {
                        context = tail_chars(&format!("{context} {}", seg.text), CONTEXT_CHARS);
                        out.push(seg);
                    }
                }
                Ok(out)
            }
        }
    }

    /// The segments of a packed window's utterances, given whisper's text for each.
    fn pack_segments(
        &self,
        speaker: Speaker,
        pack: &pack::Pack,
        texts: Vec<String>,
    ) -> Vec<Segment> {
        pack.regions
            .iter()
            .zip(texts)
            .filter_map(|(r, raw)| segment(speaker, r, &raw, &self.cfg.prompt))
            .collect()
    }

    fn channels(&self, audio: &Audio) -> Result<Vec<Channel>> {
        let layout: Vec<(usize, Speaker)> = if audio.channels.len() >= 2 {
            let (a, c) = (self.cfg.agent_channel, self.cfg.customer_channel);
            if a >= audio.channels.len() || c >= audio.channels.len() || a == c {
                return Err(IngestError::BadData {
                    what: "transcribe.agent_channel / customer_channel".into(),
                    reason: format!(
                        "channels {a} and {c} do not fit a {}-channel recording",
                        audio.channels.len()
                    ),
                });
            }
            vec![(a, Speaker::Agent), (c, Speaker::Customer)]
        } else {
            vec![(0, Speaker::Mixed)]
        };
        let vad = vad_params(&self.cfg);
        layout
            .into_iter()
            .map(|(idx, speaker)| {
                let pcm = resample(&audio.channels[idx], audio.sample_rate, WHISPER_RATE)?;
                let regions = if self.cfg.vad {
                    let regions = speech_regions(&pcm, &vad);
                    match &self.gate {
                        Some(gate) => gate.keep_speech(&pcm, regions)?,
                        None => regions,
                    }
                } else {
                    fixed_windows(pcm.len())
                };
                Ok(Channel {
                    speaker,
                    pcm,
                    regions,
                })
            })
            .collect()
    }

    /// Detects the call's language once, from the longest utterance of each channel.
    fn detect_language(&self, channels: &[Channel]) -> Result<Option<String>, String> {
        let mut total: Vec<f32> = Vec::new();
        for ch in channels {
            let Some(r) = ch.regions.iter().max_by_key(|r| r.len()) else {
                continue;
            };
            let mut state = self.ctx.create_state().map_err(|e| e.to_string())?;
            let end = r.end.min(r.start + WINDOW_SAMPLES);
            state
                .pcm_to_mel(&ch.pcm[r.start..end], self.cfg.threads.max(1))
                .map_err(|e| format!("mel: {e}"))?;
            let (_, probs) = state
                .lang_detect(0, self.cfg.threads.max(1))
                .map_err(|e| format!("language detection: {e}"))?;
            if total.is_empty() {
                total = probs;
            } else {
                for (t, p) in total.iter_mut().zip(probs) {
                    *t += p;
                }
            }
        }
        let best = total
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, _)| i as i32);
        Ok(best.and_then(whisper_rs::get_lang_str).map(str::to_string))
    }

    /// Whisper's parameters shared by both decoding modes.
    fn params<'a>(
        &self,
        lang: Option<&'a str>,
        context: Option<&str>,
        samples: usize,
        n_threads: usize,
        beam_size: usize,
    ) -> FullParams<'a, 'a> {
        let strategy = if beam_size > 1 {
            SamplingStrategy::BeamSearch {
                beam_size: beam_size as i32,
                patience: -1.0,
            }
        } else {
            SamplingStrategy::Greedy { best_of: 1 }
        };
        let mut p = FullParams::new(strategy);
        p.set_n_threads(n_threads.max(1) as i32);
        p.set_language(Some(lang.unwrap_or("en")));
        p.set_no_context(true);
        p.set_print_progress(false);
        p.set_print_realtime(false);
        p.set_print_special(false);
        p.set_print_timestamps(false);
        p.set_suppress_blank(true);
        p.set_suppress_nst(true);
        p.set_temperature_inc(self.cfg.temperature_inc);
        p.set_entropy_thold(self.cfg.entropy_thold);
        p.set_logprob_thold(self.cfg.logprob_thold);
        let prompt = prompt_text(lang == Some("zh"), &self.cfg.prompt, context);
        if !prompt.is_empty() {
            p.set_initial_prompt(&prompt);
        }
        if self.cfg.short_audio_ctx {
            p.set_audio_ctx(short_audio_ctx(samples, self.cfg.min_audio_ctx) as i32);
        }
        p
    }

    /// Decodes one packed window and returns the text of each of its utterances
    /// (`best_decode`, then `redecode_lost`).
    fn decode_pack(
        &self,
        state: &mut WhisperState,
        pk: &pack::Pack,
        lang: Option<&str>,
        context: Option<&str>,
        n_threads: usize,
    ) -> Result<Vec<String>, String> {
        let window = Window {
            pk,
            lang,
            context,
            n_threads,
        };
        let texts = self.best_decode(state, &window)?;
        let texts = self.redecode_lost(state, &window, texts)?;
        self.redecode_said_twice(state, &window, texts)
    }

    /// Decodes alone each utterance whose text says a run of words twice in a row
    /// (`says_twice`): whisper ends a window by writing its last sentence again even when
    /// beam search decodes it again (`asterisk`: "Users will join the conference." twice for
    /// a 2.3 s prompt). The lone decode decides: its text is kept when it says fewer words,
    /// no run twice, and words the window's text holds; a speaker who did say it twice keeps
    /// both.
    fn redecode_said_twice(
        &self,
        state: &mut WhisperState,
        window: &Window<'_>,
        mut texts: Vec<String>,
    ) -> Result<Vec<String>, String> {
        for (i, text) in texts.iter_mut().enumerate() {
            if !says_twice(text) {
                continue;
            }
            let own = self.decode_utterance(state, window, i)?;
            let shorter = has_words(&own)
                && !says_twice(&own)
                && word_count(&own) < word_count(text)
                && already_said(&own, &[text.as_str()]);
            tracing::debug!(
                utterance = i,
                window_text = %text,
                alone = %own,
                kept_alone = shorter,
                "utterance that says words twice decoded alone"
            );
            if shorter {
                *text = own;
            }
        }
        Ok(texts)
    }

    /// The text of each utterance of a packed window. A greedy decode that looks unsure
    /// (`Decoded::unsure`) is decoded again with beam search (`rescue_beam_size`), which
    /// often finds the words greedy decoding loses on hard speech; a beam-search decode that
    /// loops is decoded again greedily. Of two decodes, one that loops or loses an utterance
    /// loses, else the more probable one is kept.
    fn best_decode(
        &self,
        state: &mut WhisperState,
        window: &Window<'_>,
    ) -> Result<Vec<String>, String> {
        let pk = window.pk;
        let first = self.decode_pack_with(state, window, self.cfg.beam_size)?;
        // A greedy decode that looks unsure is decoded again with beam search; a beam search
        // that looped is decoded again greedily.
        // An utterance left without words is not a reason where `redecode_lost` decodes it
        // alone afterwards (windows of two utterances or more): beam search over the same
        // window gave the same words in 7 of 9 such windows of `asterisk`, at a fifth of the
        // call's time.
        let again = if self.cfg.beam_size <= 1 {
            let lost_counts = !self.decodes_lost_alone(pk);
            let unsure = first.unsure(pk, self.cfg.rescue_logprob, lost_counts);
            (self.cfg.rescue_beam_size > 1 && unsure).then_some(self.cfg.rescue_beam_size)
        } else {
            first.degenerate(pk).then_some(1)
        };
        let Some(beam_size) = again else {
            return Ok(first.texts);
        };
        let second = self.decode_pack_with(state, window, beam_size)?;
        // A loop loses to anything else (its repeated words are very probable); then a decode
        // that lost an utterance the other one heard; then the less probable decode.
        let rank = |d: &Decoded| {
            let lost = loses_utterance(pk, &d.texts);
            (!d.degenerate(pk), !lost, d.mean_logprob)
        };
        let second_wins =
            rank(&second).partial_cmp(&rank(&first)) != Some(std::cmp::Ordering::Less);
        tracing::debug!(
            first_logprob = first.mean_logprob,
            second_logprob = second.mean_logprob,
            second_beam_size = beam_size,
            second_wins,
            first = %first.texts.join(" | "),
            second = %second.texts.join(" | "),
            "{}",
            if beam_size > 1 {
                "unsure window decoded again with beam search"
            } else {
                "looping beam-search window decoded again greedily"
            }
        );
        Ok(if second_wins {
            second.texts
        } else {
            first.texts
        })
    }

    /// Whether `redecode_lost` looks at `pk`: on, and the window holds two utterances or
    /// more (one alone is what the window already decoded).
    fn decodes_lost_alone(&self, pk: &pack::Pack) -> bool {
        self.redecode_lost && pk.regions.len() >= 2
    }

    /// With `redecode_lost`, decodes each utterance of a second or more that `texts` left
    /// without words on its own. When most of its words already stand in a neighbouring
    /// utterance, that neighbour is decoded alone too, and:
    /// - both say the same words: the speaker said them twice and whisper skipped the repeat
    ///   (it does, in one window), so both keep them;
    /// - the neighbour's own audio holds the lost utterance's words and more: the lone decode
    ///   only echoes the neighbour (whisper makes "I" of a noise next to "I am calling..."),
    ///   so it is dropped;
    /// - else the alignment put the lost utterance's words in the neighbour, and each
    ///   utterance gets the words of its own audio.
    fn redecode_lost(
        &self,
        state: &mut WhisperState,
        window: &Window<'_>,
        mut texts: Vec<String>,
    ) -> Result<Vec<String>, String> {
        let pk = window.pk;
        if !self.decodes_lost_alone(pk) {
            return Ok(texts);
        }
        let alone = |state: &mut WhisperState, i: usize| self.decode_utterance(state, window, i);
        for i in 0..texts.len() {
            if pk.regions[i].len() < UNSURE_SILENT_SAMPLES || has_words(&texts[i]) {
                continue;
            }
            let own = alone(state, i)?;
            let before = (0..i).rev().find(|&j| has_words(&texts[j]));
            let after = (i + 1..texts.len()).find(|&j| has_words(&texts[j]));
            let holder = before
                .into_iter()
                .chain(after)
                .find(|&j| already_said(&own, &[texts[j].as_str()]));
            let Some(j) = holder else {
                tracing::debug!(utterance = i, text = %own, "lost utterance decoded alone");
                texts[i] = own;
                continue;
            };
            let neighbour = alone(state, j)?;
            let echoed = already_said(&own, &[neighbour.as_str()]);
            let repeated = echoed && already_said(&neighbour, &[own.as_str()]);
            tracing::debug!(
                utterance = i,
                text = %own,
                neighbour = j,
                neighbour_alone = %neighbour,
                repeated,
                echoed,
                "lost utterance and the neighbour holding its words decoded alone"
            );
            if repeated {
                texts[i] = own;
            } else if !echoed && has_words(&neighbour) {
                texts[i] = own;
                texts[j] = neighbour;
            }
        }
        Ok(texts)
    }

    /// One decode of a packed window with `beam_size` (greedy at 0 or 1): the text of each
    /// utterance, given back clause by clause by the tokens' times (see `attribute`). The
    /// times come from cross-attention alignment (DTW) of a decode without timestamp tokens,
    /// or else from whisper's timestamp tokens.
    fn decode_pack_with(
        &self,
        state: &mut WhisperState,
        window: &Window<'_>,
        beam_size: usize,
    ) -> Result<Decoded, String> {
        let Window {
            pk,
            lang,
            context,
            n_threads,
        } = *window;
        let mut p = self.params(lang, context, pk.pcm.len(), n_threads, beam_size);
        // No temperature fallback: `best_decode` rescues a window that loops or loses words
        // with beam search, where the fallback's sampling kept a decode that stopped early.
        p.set_temperature_inc(0.0);
        // Timestamp tokens cost accuracy (the calls corpus: WER 0.132 with them, 0.119
        // without) and put words in the wrong utterance more often than DTW's times.
        p.set_no_timestamps(self.dtw);
        p.set_token_timestamps(!self.dtw);
        let started = std::time::Instant::now();
        state
            .full(p, &pk.pcm)
            .map_err(|e| format!("whisper: {e}"))?;
        tracing::debug!(
            samples = pk.pcm.len(),
            utterances = pk.regions.len(),
            beam_size,
            n_threads,
            prompted = context.is_some(),
            segments = state.full_n_segments(),
            tokens = state.as_iter().map(|s| s.n_tokens()).sum::<i32>(),
            ms = started.elapsed().as_millis() as u64,
            "decoded a packed window"
        );
        let eot = self.ctx.token_eot();
        let (mut logprob_sum, mut n_text_tokens) = (0f32, 0usize);
        let mut segments: Vec<Vec<attribute::Token>> = Vec::new();
        // Silence was gated out before packing; whisper's own no-speech test (no-speech
        // probability and a low log-probability together) still skips a window of noise.
        for seg in state.as_iter() {
            let (s0, s1) = (seg.start_timestamp().max(0), seg.end_timestamp().max(0));
            tracing::debug!(
                t0 = s0,
                t1 = s1,
                text = %seg.to_str_lossy().unwrap_or_default(),
                "whisper segment"
            );
            let mut tokens: Vec<attribute::Token> = Vec::new();
            for i in 0..seg.n_tokens() {
                let Some(tok) = seg.get_token(i) else {
                    continue;
                };
                let data = tok.token_data();
                if data.id >= eot {
                    continue;
                }
                logprob_sum += data.plog;
                n_text_tokens += 1;
                // DTW's times are used as they are; a token it could not place stays with
                // the one before. Timestamp-token times are estimates kept inside their
                // segment.
                let pos = if self.dtw {
                    match usize::try_from(data.t_dtw) {
                        Ok(cs) => cs * SAMPLES_PER_CS,
                        Err(_) => tokens.last().map_or(0, |t| t.pos),
                    }
                } else {
                    let cs = if data.t0 >= 0 && data.t1 >= data.t0 {
                        ((data.t0 + data.t1) / 2).clamp(s0, s1.max(s0))
                    } else {
                        (s0 + s1) / 2
                    };
                    cs as usize * SAMPLES_PER_CS
                };
                tokens.push(attribute::Token {
                    piece: tok.to_bytes().map_err(|e| e.to_string())?.to_vec(),
                    pos,
                });
            }
            segments.push(tokens);
        }
        let bytes = attribute::assign(pk, &segments);
        Ok(Decoded {
            texts: bytes
                .into_iter()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .collect(),
            mean_logprob: if n_text_tokens == 0 {
                0.0
            } else {
                logprob_sum / n_text_tokens as f32
            },
        })
    }

    /// Decodes utterance `i` of a packed window on its own.
    fn decode_utterance(
        &self,
        state: &mut WhisperState,
        window: &Window<'_>,
        i: usize,
    ) -> Result<String, String> {
        let pcm = window.pk.utterance(i);
        self.decode_region(state, pcm, window.lang, window.context, window.n_threads)
    }

    /// Decodes one utterance on its own, without timestamps.
    fn decode_region(
        &self,
        state: &mut WhisperState,
        pcm: &[f32],
        lang: Option<&str>,
        context: Option<&str>,
        n_threads: usize,
    ) -> Result<String, String> {
        let mut p = self.params(lang, context, pcm.len(), n_threads, self.cfg.beam_size);
        p.set_no_timestamps(true);
        p.set_single_segment(true);
        state.full(p, pcm).map_err(|e| format!("whisper: {e}"))?;
        let mut text = String::new();
        for seg in state.as_iter() {
            let t = seg.to_str_lossy().map_err(|e| e.to_string())?;
            if tracing::enabled!(tracing::Level::DEBUG) {
                let plogs: Vec<f32> = (0..seg.n_tokens())
                    .filter_map(|k| seg.get_token(k))
                    .map(|t| t.token_data())
                    .filter(|d| d.id < self.ctx.token_eot())
                    .map(|d| d.plog)
                    .collect();
                tracing::debug!(
                    no_speech = seg.no_speech_probability(),
                    mean_logprob = plogs.iter().sum::<f32>() / plogs.len().max(1) as f32,
                    min_logprob = plogs.iter().copied().fold(0f32, f32::min),
                    text = %t,
                    "utterance decoded alone"
                );
            }
            if seg.no_speech_probability() > NO_SPEECH_DROP {
                continue;
            }
            text.push_str(t.trim());
            text.push(' ');
        }
        Ok(text)
    }
}

/// What one decode of a packed window needs besides the beam size.
#[derive(Clone, Copy)]
struct Window<'a> {
    pk: &'a pack::Pack,
    lang: Option<&'a str>,
    context: Option<&'a str>,
    n_threads: usize,
}

/// A packed window's decode: each utterance's text and the words' mean token log-probability.
struct Decoded {
    texts: Vec<String>,
    mean_logprob: f32,
}

/// More words a second than anyone speaks (fast speech is 3-4 English words, 5-7 Chinese
/// characters, counted half a word each): a decode above it repeats itself.
const MAX_WORDS_PER_SECOND: f32 = 7.0;

/// Utterances at least this long (gating padding included) that come back without a word
/// make a window unsure.
const UNSURE_SILENT_SAMPLES: usize = WHISPER_RATE as usize;

impl Decoded {
    /// Whether the decode looks wrong: its words are improbable on average (below
    /// `min_logprob`), it loops, or (with `lost_counts`) an utterance the voice gate heard
    /// came back without words.
    fn unsure(&self, pk: &pack::Pack, min_logprob: f32, lost_counts: bool) -> bool {
        self.mean_logprob < min_logprob
            || (lost_counts && loses_utterance(pk, &self.texts))
            || self.degenerate(pk)
    }

    /// Whether whisper looped instead of transcribing: a phrase repeated over and over
    /// (`repetitive`), or more words than the window's audio can hold.
    fn degenerate(&self, pk: &pack::Pack) -> bool {
        let text = self.texts.join(" ");
        let seconds = (pk.pcm.len() as f32 / WHISPER_RATE as f32).max(1.0);
        repetitive(&text) || word_count(&text) > MAX_WORDS_PER_SECOND * seconds
    }
}

/// Whether an utterance of a second or more of `pk` came back without words in `texts`.
fn loses_utterance(pk: &pack::Pack, texts: &[String]) -> bool {
    pk.regions
        .iter()
        .zip(texts)
        .any(|(r, t)| r.len() >= UNSURE_SILENT_SAMPLES && !has_words(t))
}

/// Whether `text` holds a letter, digit or character.
fn has_words(text: &str) -> bool {
    text.chars().any(char::is_alphanumeric)
}

/// Whether most of `text`'s words (Chinese characters) already stand in `neighbours`.
fn already_said(text: &str, neighbours: &[&str]) -> bool {
    let said: std::collections::HashSet<String> =
        neighbours.iter().flat_map(|n| units(n)).collect();
    let words = units(text);
    let found = words.iter().filter(|w| said.contains(*w)).count();
    !words.is_empty() && found * 2 > words.len()
}

/// Encoder positions for `samples` of audio: 50 per second plus a margin, so the encoder
/// works on the utterance instead of a 30 s window that is mostly padding. Rounded up to a
/// multiple of `AUDIO_CTX_STEP`.
fn short_audio_ctx(samples: usize, floor: usize) -> usize {
    let needed = samples.div_ceil(320);
    (needed + 64)
        .max(floor)
        .next_multiple_of(AUDIO_CTX_STEP)
        .min(FULL_AUDIO_CTX)
}

/// ggml multiplies the encoder's attention matrices (f16) with llamafile's tinyBLAS only
/// when the context is a multiple of 16; otherwise with dot products, which made them a
/// quarter of the transcription time (perf, `calls` corpus).
const AUDIO_CTX_STEP: usize = 16;

/// The words of `text`, lower-cased and without punctuation; each Chinese character is one.
fn units(text: &str) -> Vec<String> {
    let mut units: Vec<String> = Vec::new();
    for w in text.split_whitespace() {
        if w.chars().any(is_cjk) {
            units.extend(w.chars().filter(|c| c.is_alphanumeric()).map(String::from));
        } else {
            let w = w
                .trim_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase();
            if !w.is_empty() {
                units.push(w);
            }
        }
    }
    units
}

/// Words in `text`, a Chinese character counting half a word.
fn word_count(text: &str) -> f32 {
    units(text)
        .iter()
        .map(|u| if u.chars().any(is_cjk) { 0.5 } else { 1.0 })
        .sum()
}

/// Whether `text` has degenerated into a loop: a 4-gram of words (of characters, for
/// Chinese) three times or more, or a 6-gram twice (whisper saying a sentence again).
fn repetitive(text: &str) -> bool {
    let units = units(text);
    let repeated = |n: usize, times: u32| {
        let mut seen = std::collections::HashMap::new();
        units.windows(n).any(|g| {
            let count = seen.entry(g).or_insert(0u32);
            *count += 1;
            *count >= times
        })
    };
    repeated(4, 3) || repeated(6, 2)
}

/// Whether `text` says a run of at least `SAID_TWICE_UNITS` words (Chinese characters)
/// twice in a row.
fn says_twice(text: &str) -> bool {
    let units = units(text);
    (SAID_TWICE_UNITS..=units.len() / 2).any(|k| units.windows(2 * k).any(|w| w[..k] == w[k..]))
}

/// Shortest run `says_twice` looks for: a sentence, not "thank you, thank you".
const SAID_TWICE_UNITS: usize = 4;

/// Whether `text` says a run of `prompt`'s words again (six words, or six Chinese
/// characters, in the same order): whisper copying its prompt into the next window.
fn copies(prompt: &str, text: &str) -> bool {
    const RUN: usize = 6;
    let prompt = units(prompt);
    let runs: std::collections::HashSet<&[String]> = prompt.windows(RUN).collect();
    units(text).windows(RUN).any(|w| runs.contains(w))
}

fn is_cjk(c: char) -> bool {
    matches!(c, '\u{3400}'..='\u{9fff}' | '\u{f900}'..='\u{faff}')
}

/// Longest packed window, in seconds.
fn pack_seconds(cfg: &TranscribeConfig) -> u32 {
    cfg.pack_seconds.clamp(1, MAX_PACK_SECONDS)
}

/// Longest packed window for `lang`: `pack_seconds_zh` for Mandarin, never shorter than the
/// voice gate's longest utterance (`pack_seconds`).
fn window_seconds(cfg: &TranscribeConfig, lang: Option<&str>) -> u32 {
    if lang == Some("zh") {
        cfg.pack_seconds_zh
            .clamp(pack_seconds(cfg), MAX_PACK_SECONDS)
    } else {
        pack_seconds(cfg)
    }
}

/// The voice gate's settings. With packing, an utterance longer than a packed window is cut
/// by the gate at its quietest frame, between words, not mid-word where the window ends
/// (the recorded-speech benchmark corpus lost a 22-word stretch of a 25 s prompt that way).
fn vad_params(cfg: &TranscribeConfig) -> VadParams {
    let mut vad = VadParams {
        pad_ms: cfg.vad_pad_ms,
        ..VadParams::default()
    };
    if cfg.pack {
        vad.max_region_ms = vad.max_region_ms.min(pack_seconds(cfg) * 1000);
    }
    vad
}

fn fixed_windows(len: usize) -> Vec<Region> {
    (0..len)
        .step_by(WINDOW_SAMPLES)
        .map(|s| Region {
            start: s,
            end: (s + WINDOW_SAMPLES).min(len),
        })
        .collect()
}

/// The last `n` characters of `s`, trimmed.
fn tail_chars(s: &str, n: usize) -> String {
    let count = s.chars().count();
    s.chars()
        .skip(count.saturating_sub(n))
        .collect::<String>()
        .trim()
        .to_string()
}

fn samples_to_ms(s: usize) -> u64 {
    s as u64 * 1000 / u64::from(WHISPER_RATE)
}

/// Phrases whisper is known to invent on noise; a segment that is only one of them is dropped.
const HALLUCINATIONS: &[&str] = &[
    "thank you for watching",
    "thanks for watching",
    "please subscribe",
    "subtitles by",
    "字幕",
    "请不吝点赞",
    "订阅",
    "以下是普通话的句子",
    "以下是普通话的客服电话",
];

/// Whisper's prompt: the Mandarin prompt for Mandarin, then the configured words and names,
/// then what the speaker said just before (nearest to the window, as whisper was trained).
fn prompt_text(zh: bool, vocabulary: &str, context: Option<&str>) -> String {
    let parts = [vocabulary, context.unwrap_or("")].map(|p| p.replace('\0', ""));
    let said = parts
        .iter()
        .map(|p| p.trim())
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>();
    // Mandarin needs no space between sentences.
    let said = said.join(if zh { "" } else { " " });
    if zh {
        format!("{ZH_PROMPT}{said}")
    } else {
        said
    }
}

/// Normalises whisper's text (simplified Chinese, spoken digit strings as one number,
/// trimmed) and drops non-speech output.
fn clean_text(raw: &str) -> Option<String> {
    let t = join_spoken_digits(&normalize_zh(raw.trim()));
    let t = t.trim().trim_start_matches(['-', ' ']).trim().to_string();
    if !has_words(&t) {
        return None;
    }
    let lower = t.to_lowercase();
    let bracketed =
        (t.starts_with('[') && t.ends_with(']')) || (t.starts_with('(') && t.ends_with(')'));
    if bracketed
        || HALLUCINATIONS
            .iter()
            .any(|h| lower.contains(h) && lower.chars().count() < h.chars().count() + 12)
    {
        return None;
    }
    Some(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleans_non_speech() {
        assert_eq!(clean_text(" [BLANK_AUDIO] "), None);
        assert_eq!(clean_text("(music)"), None);
        assert_eq!(clean_text("..."), None);
        assert_eq!(clean_text("Thank you for watching!"), None);
        // whisper says its own prompt back on noise.
        assert_eq!(clean_text(ZH_PROMPT), None);
        assert_eq!(clean_text(" 我要投訴 "), Some("我要投诉".into()));
        assert_eq!(
            clean_text("I want a refund."),
            Some("I want a refund.".into())
        );
    }

    #[test]
    fn the_configured_prompt_said_back_is_no_segment() {
        let r = Region {
            start: 0,
            end: 16_000,
        };
        let prompt = "Acme Bank, Digium, PIN.";
        assert!(segment(Speaker::Agent, &r, " Acme Bank, Digium, PIN. ", prompt).is_none());
        assert!(segment(Speaker::Agent, &r, "acme bank digium pin", prompt).is_none());
        // Its words in a sentence, or alone without a prompt, are speech.
        let seg = segment(Speaker::Agent, &r, "Acme Bank, how can I help?", prompt);
        assert_eq!(
            seg.map(|s| s.text).as_deref(),
            Some("Acme Bank, how can I help?")
        );
        assert!(segment(Speaker::Agent, &r, "Acme Bank, Digium, PIN.", "").is_some());
    }

    #[test]
    fn prompt_has_the_language_prompt_then_vocabulary_then_context() {
        assert_eq!(prompt_text(false, "", None), "");
        assert_eq!(prompt_text(false, " ", Some("  ")), "");
        assert_eq!(
            prompt_text(false, "Acme Bank, Digium.", Some(" I want a refund. ")),
            "Acme Bank, Digium. I want a refund."
        );
        assert_eq!(prompt_text(false, "", Some("a\0b")), "ab");
        assert_eq!(prompt_text(true, "", None), ZH_PROMPT);
        assert_eq!(
            prompt_text(true, "平安银行。", Some("我要退款。")),
            format!("{ZH_PROMPT}平安银行。我要退款。")
        );
    }

    #[test]
    fn audio_ctx_scales_with_length() {
        assert_eq!(short_audio_ctx(16000 * 30, 256), 1500);
        assert_eq!(short_audio_ctx(16000, 256), 256);
        assert_eq!(short_audio_ctx(16000 * 10, 256), 576);
        assert_eq!(short_audio_ctx(16000 * 10, 768), 768);
        assert_eq!(short_audio_ctx(16000, 4000), 1500);
        assert_eq!(short_audio_ctx(16000 * 20, 500), 1072);
        for samples in (0..16000 * 28).step_by(777) {
            assert_eq!(short_audio_ctx(samples, 512) % AUDIO_CTX_STEP, 0);
        }
    }

    #[test]
    fn spots_repetition_loops() {
        assert!(!repetitive(
            "I was charged twice and I want a refund for the payment."
        ));
        assert!(repetitive(
            "I want a refund. I want a refund. I want a refund. I want a refund."
        ));
        assert!(!repetitive("我要退款，不然我就要投诉你们。"));
        assert!(repetitive("我要退款我要退款我要退款我要退款"));
        // A sentence said twice.
        assert!(repetitive(
            "Finally, I sent the photo of the damage two weeks ago. \
             Finally, I sent the photo of the damage two weeks ago."
        ));
        assert!(!repetitive(
            "I sent the photos two weeks ago. You sent them two weeks ago, I see."
        ));
    }

    #[test]
    fn spots_words_said_twice_in_a_row() {
        assert!(says_twice(
            "Users will join the conference. Users will join the conference."
        ));
        assert!(says_twice(
            "so please, press one to continue, press one to continue"
        ));
        assert!(says_twice("我要退款我要退款"));
        assert!(!says_twice(
            "Thank you, thank you. Hello? Hello? No, no, no."
        ));
        assert!(!says_twice(
            "Press 1 to mute, press 2 to unmute, press 3 to leave the conference."
        ));
        assert!(!says_twice(""));
    }

    #[test]
    fn spots_a_prompt_said_again() {
        let prompt = "How much is it? Finally, I sent the photos of the damage two weeks ago.";
        assert!(copies(
            prompt,
            "finally I sent the photos of the damage. How much?"
        ));
        assert!(!copies(
            prompt,
            "How much will you pay for the repair of the damage?"
        ));
        assert!(copies("我要退款，不然我就投诉。", "不然我就投诉你们"));
        assert!(!copies("我要退款，不然我就投诉。", "退款什么时候到账"));
    }

    #[test]
    fn a_lost_utterance_is_kept_unless_its_neighbour_holds_its_words() {
        // The alignment put the words in the utterance before: not lost.
        let before = "Thank you for calling. Please hold for the next agent.";
        assert!(already_said("please hold for the next agent", &[before]));
        assert!(already_said(
            "请稍等，下一位客服",
            &["感谢来电。请稍等，下一位客服马上接听。"]
        ));
        // Whisper skipped it: its words stand nowhere else.
        assert!(!already_said(
            "I want a refund or I will complain",
            &[before, "Goodbye."]
        ));
        assert!(!already_said(
            "我要退款，不然我就投诉",
            &["您好，我是客服小王。"]
        ));
        // A word or two in common is not enough.
        assert!(!already_said("please send me the refund form", &[before]));
        assert!(!already_said("", &[before]));
    }

    #[test]
    fn unsure_decodes_are_improbable_lose_an_utterance_or_loop() {
        let second = WHISPER_RATE as usize;
        let regions = [
            Region {
                start: 0,
                end: 2 * second,
            },
            Region {
                start: 3 * second,
                end: 3 * second + second / 2,
            },
        ];
        let pcm = vec![0.1f32; 4 * second];
        let pk = pack::pack(&pcm, &regions, 28 * second, second / 10).remove(0);
        assert_eq!(pk.regions.len(), 2);
        let decoded = |texts: [&str; 2], mean_logprob| Decoded {
            texts: texts.map(String::from).to_vec(),
            mean_logprob,
        };
        assert!(!decoded(["I want a refund.", "Now."], -0.2).unsure(&pk, -0.5, true));
        assert!(decoded(["I want a refund.", "Now."], -0.7).unsure(&pk, -0.5, true));
        // The two-second utterance got no words: whisper gave them all to the other one.
        assert!(decoded([" ", "I want a refund now."], -0.2).unsure(&pk, -0.5, true));
        assert!(!decoded([" ", "I want a refund now."], -0.2).unsure(&pk, -0.5, false));
        // A half-second utterance without words may be a cough.
        assert!(!decoded(["I want a refund now.", ""], -0.2).unsure(&pk, -0.5, true));
        // Loops are unsure however probable their words: a repeated phrase, or more words
        // than four seconds of audio hold.
        let looped = "please send it to claims with your claim number in the subject ".repeat(3);
        assert!(decoded(["I want a refund.", &looped], -0.1).degenerate(&pk));
        assert!(decoded(["I want a refund.", &looped], -0.1).unsure(&pk, -0.5, false));
        let many: Vec<String> = (0..30).map(|i| format!("w{i}")).collect();
        assert!(decoded(["I want a refund.", &many.join(" ")], -0.1).degenerate(&pk));
        assert!(!decoded(["I want a refund.", "Now."], -0.2).degenerate(&pk));
        assert!(!decoded(["我要退款。", "不然我就要投诉你们。"], -0.2).degenerate(&pk));
    }

    #[test]
    fn mandarin_gets_its_own_window_never_shorter_than_an_utterance() {
        let mut cfg = TranscribeConfig::default();
        assert_eq!(window_seconds(&cfg, Some("zh")), cfg.pack_seconds_zh);
        assert_eq!(window_seconds(&cfg, Some("en")), cfg.pack_seconds);
        assert_eq!(window_seconds(&cfg, None), cfg.pack_seconds);
        cfg.pack_seconds_zh = 8;
        assert_eq!(window_seconds(&cfg, Some("zh")), cfg.pack_seconds);
        cfg.pack_seconds_zh = 60;
        assert_eq!(window_seconds(&cfg, Some("zh")), MAX_PACK_SECONDS);
    }

    #[test]
    fn windows_cover_everything() {
        let w = fixed_windows(WINDOW_SAMPLES * 2 + 5);
        assert_eq!(w.len(), 3);
        assert_eq!(w[2].end, WINDOW_SAMPLES * 2 + 5);
    }

    #[test]
    fn the_voice_gate_cuts_utterances_to_the_packed_window() {
        let mut cfg = TranscribeConfig::default();
        assert_eq!(vad_params(&cfg).max_region_ms, cfg.pack_seconds * 1000);
        cfg.pack_seconds = 20;
        assert_eq!(vad_params(&cfg).max_region_ms, 20_000);
        cfg.pack = false;
        assert_eq!(
            vad_params(&cfg).max_region_ms,
            VadParams::default().max_region_ms
        );
        // Each region the gate gives then fits one packed window whole (the gate's own
        // 25 s limit cuts this sound into regions of 23 s and 17 s).
        cfg.pack = true;
        cfg.pack_seconds = 12;
        let speech: Vec<f32> = (0..16_000 * 40)
            .map(|i| (i as f32 * 0.05).sin() * 0.3 * (1.0 + (i as f32 / 4000.0).sin()))
            .collect();
        let regions = speech_regions(&speech, &vad_params(&cfg));
        assert!(regions.len() >= 4, "{regions:?}");
        assert!(regions
            .iter()
            .all(|r| r.len() <= 12 * WHISPER_RATE as usize));
    }
}
