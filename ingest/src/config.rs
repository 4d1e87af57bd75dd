//! Configuration of the recording pipeline: storage, queue, database and transcription.
//! Every struct's `Default` is the embedded single-machine setup.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Where recordings and transcripts live. No `url` means the local filesystem under
/// `<data-dir>/recordings`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// `s3://BUCKET[/PREFIX]` or `file:///PATH`.
    pub url: Option<String>,
    /// S3-compatible endpoint, e.g. `http://127.0.0.1:3900` (path-style addressing is used).
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
}

/// The job queue. No `url` means the embedded durable queue kept in the metadata database.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueueConfig {
    /// `amqp://user:pass@host:5672/%2f` for RabbitMQ.
    pub url: Option<String>,
    /// Unacknowledged jobs a worker holds at once (AMQP prefetch).
    pub prefetch: u16,
    /// Attempts before a job goes to the dead-letter queue.
    pub max_attempts: u32,
    /// First retry delay; doubles on every further attempt.
    pub retry_backoff_ms: u64,
    /// Queue name prefix, so several deployments can share one broker.
    pub prefix: String,
    /// A call booked this long ago whose transcription job was never confirmed (status
    /// `stored`: its booker crashed or lost the queue) is queued again by the workers.
    pub requeue_after_ms: u64,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            url: None,
            prefetch: 1,
            max_attempts: 3,
            retry_backoff_ms: 2000,
            prefix: "callqa".into(),
            requeue_after_ms: 30_000,
        }
    }
}

/// Metadata database. No `url` means SQLite at `<data-dir>/callqa.db`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `postgres://user@host:5432/db` or `sqlite:///path/file.db`.
    pub url: Option<String>,
}

/// Whisper transcription settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TranscribeConfig {
    /// ggml model file. Default: the first of `ggml-base-q8_0.bin`, `ggml-base-q4_k.bin`
    /// and `ggml-base.bin` found in `<data-dir>/models` (the environment variable
    /// `CALLQA_TRANSCRIBE_MODEL` sets it like any other key).
    pub model: Option<PathBuf>,
    /// Threads per transcription: that many whisper states decode the call's windows at
    /// once, one thread each (the threads are split when there are fewer windows).
    pub threads: usize,
    /// `auto`, or a forced language code such as `zh` or `en`.
    pub language: String,
    /// Stereo channel (0-based) carrying the agent; the other one is the customer.
    pub agent_channel: usize,
    pub customer_channel: usize,
    /// Skip silence and ringing before whisper sees the audio.
    pub vad: bool,
    /// Silero voice-activity model (whisper.cpp's ggml VAD format; `callqa model
    /// import-silero` makes one from faster-whisper's ONNX file): with `vad`, an utterance
    /// of the energy gate is kept only if Silero hears speech in it, and noise of a second
    /// or more beside the speech is cut off, so noise loud enough to pass the energy gate
    /// does not reach whisper (`transcribe_compare.py --corpus calls --noise bursts`: WER
    /// 0.194 -> 0.176, 59.1 s -> 32.6 s; no word of the clean corpora changes). Default: a
    /// `ggml-silero*.bin` next to the whisper model if there is one
    /// (`deploy/install-model.sh` installs it), else the energy gate alone. An empty path
    /// turns it off.
    pub vad_model: Option<PathBuf>,
    /// Beam size; 0 or 1 means greedy decoding. 5 costs about 55% more time; on recorded
    /// human speech (`--corpus asterisk`, base q8_0) it took the WER from 0.017 to 0.014.
    pub beam_size: usize,
    /// Encoder context scaled to the length of each utterance instead of whisper's fixed
    /// 30 s window: about 15x faster on call audio at the same word error rate (measured
    /// with `deploy/bench/transcribe_compare.py`).
    pub short_audio_ctx: bool,
    /// Smallest encoder context used with `short_audio_ctx` (50 per second of audio):
    /// very short contexts cost accuracy on short utterances. 384 against 512 (session 8,
    /// interleaved runs): `calls` corpus 14.0 s against 15.8 s on average, WER 0.115–0.118
    /// either way; `espeak15` 0.238 against 0.235.
    pub min_audio_ctx: usize,
    /// Give whisper the speaker's previous words as a prompt for each utterance (per-utterance
    /// decoding only: packed windows carry their own context).
    pub context: bool,
    /// Lay a speaker's utterances end to end into short windows (as faster-whisper does
    /// after its VAD) and give each word back to its utterance by its time, instead of one
    /// decode per utterance: a few encoder passes per call instead of one per utterance.
    pub pack: bool,
    /// Longest packed window in seconds (at most 28). Shorter windows cost less encoder
    /// attention (quadratic in the window) but give whisper less context; 12 s was both
    /// faster and more accurate than 28 s on the `calls` benchmark corpus (16.2 s, WER
    /// 0.107, against 23.8 s, WER 0.138; `deploy/bench/transcribe_compare.py`). On recorded
    /// human speech (`--corpus asterisk`) longer windows are more accurate (WER 0.033 at
    /// 12 s, 0.021 at 20 s, 0.016 at 24 s), but with a sentence said again within a window
    /// whisper skips it (the repeated Mandarin dialogue `zh`: CER 0.090 at 12 s, 0.371 at 20 s).
    pub pack_seconds: u32,
    /// Longest packed window in seconds for Mandarin (language `zh`, forced or detected),
    /// at most 28; its utterances are still cut at `pack_seconds`. Whisper tells Mandarin's
    /// homophones apart from their context: on `--corpus zhcalls` (38 distinct lines) CER
    /// 0.107 at 12 s, 0.091 at 16 s; on `zh` 0.059 and 0.056. English at 16 s loses more than
    /// it gains (`calls` 0.092 -> 0.104, `espeak15` 0.248 -> 0.293).
    pub pack_seconds_zh: u32,
    /// whisper.cpp's flash attention kernels in the encoder and decoder (turns `dtw` off:
    /// whisper.cpp cannot align with them).
    pub flash_attn: bool,
    /// Decode packed windows without timestamp tokens and give their words back to the
    /// utterances by the cross-attention alignment of the model's alignment heads (DTW).
    /// Off: whisper's timestamp tokens place the words, which costs accuracy (the `calls`
    /// benchmark corpus: WER 0.132 with them, 0.119 without).
    pub dtw: bool,
    /// Speech kept on each side of a voice-gated utterance, in milliseconds.
    pub vad_pad_ms: u32,
    /// Silence laid between packed utterances, in milliseconds.
    pub pack_gap_ms: u32,
    /// Give whisper the text of the channel's previous packed window as its prompt (as
    /// faster-whisper's `condition_on_previous_text`); a window whose prompted text
    /// degenerates into repetition is decoded again without it.
    pub condition_on_previous_text: bool,
    /// Temperature step of whisper's fallback, when a decode fails its entropy or
    /// log-probability test, for utterances decoded alone (`pack = false`, `redecode_lost`);
    /// 0 turns it off. Packed windows never fall back: they have their own rescue
    /// (`rescue_beam_size`: a decode that loops, loses an utterance or looks improbable is
    /// decoded again with beam search). On recorded speech (`--corpus asterisk`) the
    /// fallback's sampling spent 8.8 s on one 10 s packed utterance that looped and kept a
    /// decode that stopped after its first sentence: WER 0.027 with it, 0.017 without; the
    /// other corpora unchanged. Decoded alone, noise needs it: greedy decoding makes a
    /// sentence of pink noise ("I'm not sure if I can get the right one.").
    pub temperature_inc: f32,
    /// Entropy below which a decode counts as repetitive and falls back.
    pub entropy_thold: f32,
    /// Average log-probability below which a decode falls back.
    pub logprob_thold: f32,
    /// Beam size of the second decode of a packed window whose greedy decode looks unsure
    /// (see `rescue_logprob`); 0 or 1 turns the second decode off. Measured
    /// (`deploy/bench/transcribe_compare.py`, base q4_k): `calls` corpus WER 0.124 -> 0.118
    /// for 13% more time, `espeak15` 0.255 -> 0.235 for 10% more; beam search on every
    /// window costs about 70% more.
    pub rescue_beam_size: usize,
    /// A greedy packed window is unsure, and decoded again with `rescue_beam_size`, when its
    /// words' mean token log-probability is below this, when an utterance of a second or
    /// more gets no words, or when it loops (a phrase said again, more words than its audio
    /// holds).
    pub rescue_logprob: f32,
    /// An utterance of a second or more that comes back from its packed window without
    /// words is decoded again on its own. When most of its words stand in a neighbouring
    /// utterance, the neighbour is decoded alone too: the same words mean the speaker said
    /// them twice (both keep them), words the neighbour's audio holds with more mean an
    /// echo (dropped), else the alignment misplaced them (each utterance gets its own).
    /// Whisper skips a sentence said again in one window (a sentence said five times in
    /// 12 s windows comes back twice; with this, five times), or stops before a window's
    /// end; both grow with `pack_seconds`. On the benchmark corpora at 12 s it changes
    /// nothing; at 24 s the repeated Mandarin dialogue `zh` went from CER 0.573 to 0.190.
    /// On noisy calls whisper stops before a window's last sentence more often: `calls
    /// --noise bursts` WER 0.175 -> 0.155 at the same time (a 20-word sentence came back).
    /// Default: on when Silero checks the utterances (`vad_model`), off with the energy gate
    /// alone, whose noise a lone decode can make words of (brown noise came out as "I don't
    /// know what to do.").
    pub redecode_lost: Option<bool>,
    /// Words and names whisper should expect (company, product, place and people's names,
    /// jargon: "Acme Bank, Digium, PIN"), given to whisper before every window as if said
    /// just before it; an utterance that only says it back (whisper does, on noise) is
    /// dropped. Empty: none.
    pub prompt: String,
}

impl Default for TranscribeConfig {
    fn default() -> Self {
        TranscribeConfig {
            model: None,
            threads: 2,
            language: "auto".into(),
            agent_channel: 0,
            customer_channel: 1,
            vad: true,
            vad_model: None,
            beam_size: 1,
            short_audio_ctx: true,
            min_audio_ctx: 384,
            context: true,
            pack: true,
            pack_seconds: 12,
            pack_seconds_zh: 16,
            flash_attn: false,
            dtw: true,
            vad_pad_ms: 200,
            pack_gap_ms: 300,
            condition_on_previous_text: false,
            temperature_inc: 0.2,
            entropy_thold: 2.4,
            logprob_thold: -1.0,
            rescue_beam_size: 5,
            rescue_logprob: -0.5,
            redecode_lost: None,
            prompt: String::new(),
        }
    }
}

/// Everything the ingest crate needs, gathered into the binary's top-level config.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct IngestConfig {
    pub storage: StorageConfig,
    pub queue: QueueConfig,
    pub database: DatabaseConfig,
    pub transcribe: TranscribeConfig,
}
