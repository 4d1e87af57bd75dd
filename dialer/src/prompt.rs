//! Prompts decoded once per file and shared by every call that plays them; a file changed on
//! disk (size or modification time, looked at no more than once a second) is decoded again.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use crate::error::DialerError;
use crate::wav;

/// Distinct prompt files kept decoded; beyond that the cache starts over.
const MAX_PROMPTS: usize = 64;
/// How long a cached prompt is used without looking at its file again.
const RECHECK: Duration = Duration::from_secs(1);

type Stamp = (u64, Option<SystemTime>);

struct Cached {
    stamp: Stamp,
    checked: Instant,
    samples: Arc<[i16]>,
}

fn cache() -> &'static Mutex<HashMap<PathBuf, Cached>> {
    static CACHE: OnceLock<Mutex<HashMap<PathBuf, Cached>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

fn lock() -> std::sync::MutexGuard<'static, HashMap<PathBuf, Cached>> {
    cache()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The prompt at `path` as 8 kHz mono samples.
pub fn load(path: &Path) -> Result<Arc<[i16]>, DialerError> {
    if let Some(c) = lock().get(path) {
        if c.checked.elapsed() < RECHECK {
            return Ok(c.samples.clone());
        }
    }
    let meta = std::fs::metadata(path).map_err(|e| DialerError::Prompt {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let stamp: Stamp = (meta.len(), meta.modified().ok());
    let now = Instant::now();
    let mut map = lock();
    if let Some(c) = map.get_mut(path) {
        if c.stamp == stamp {
            c.checked = now;
            return Ok(c.samples.clone());
        }
    }
    let samples: Arc<[i16]> = wav::read_prompt(path)?.into();
    if map.len() >= MAX_PROMPTS {
        map.clear();
    }
    map.insert(
        path.to_path_buf(),
        Cached {
            stamp,
            checked: now,
            samples: samples.clone(),
        },
    );
    Ok(samples)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_wav(path: &Path, samples: &[i16]) {
        let mut file = wav::header(1, 8000, Some(samples.len() as u64 * 2)).to_vec();
        for s in samples {
            file.extend_from_slice(&s.to_le_bytes());
        }
        std::fs::write(path, file).unwrap();
    }

    #[test]
    fn decodes_once_and_again_after_a_change() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.wav");
        write_wav(&path, &[1, 2, 3]);
        let a = load(&path).unwrap();
        let b = load(&path).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(&a[..], &[1, 2, 3]);
        write_wav(&path, &[4, 5, 6, 7]);
        std::thread::sleep(RECHECK + Duration::from_millis(50));
        assert_eq!(&load(&path).unwrap()[..], &[4, 5, 6, 7]);
        assert!(load(&dir.path().join("missing.wav")).is_err());
    }
}
