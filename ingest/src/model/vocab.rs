//! The vocabulary section of a whisper ggml file: the first 50,257 tokens of
//! the CTranslate2 vocabulary, turned back from GPT-2's byte-level strings
//! (`Ġ` = space) into the raw bytes whisper.cpp expects.
//!
//! The bytes are not re-encoded as UTF-8: many tokens are fragments of a
//! multi-byte character and are not valid UTF-8 on their own.

use std::collections::HashMap;
use std::path::Path;

use super::ModelError;

/// Tokens ids 0..=50256 go into the file; whisper.cpp derives the special and
/// timestamp tokens from `n_vocab` and adds them itself.
pub(crate) const N_GGML_TOKENS: usize = 50_257;

/// GPT-2's `bytes_to_unicode` table, inverted: char -> byte. Printable bytes
/// map to the char with the same code point; the other 68 bytes map, in
/// ascending order, to U+0100 onwards.
fn unicode_to_byte() -> HashMap<char, u8> {
    let printable = |b: u8| matches!(b, 0x21..=0x7E | 0xA1..=0xAC | 0xAE..=0xFF);
    let mut map = HashMap::with_capacity(256);
    let mut next = 0u32;
    for b in 0..=255u8 {
        let c = if printable(b) {
            char::from(b)
        } else {
            next += 1;
            // 256 + n for n in 0..68 is always a valid char.
            char::from_u32(255 + next).unwrap_or(char::REPLACEMENT_CHARACTER)
        };
        map.insert(c, b);
    }
    map
}

/// Decodes one byte-level token string to its bytes; `None` if it holds a
/// char outside the 256-entry table.
fn token_bytes(table: &HashMap<char, u8>, token: &str) -> Option<Vec<u8>> {
    token.chars().map(|c| table.get(&c).copied()).collect()
}

/// Reads `vocabulary.txt` (one token per line) or, from newer CTranslate2
/// converters, `vocabulary.json` (a JSON array), and returns the raw bytes of
/// the first `N_GGML_TOKENS` tokens.
pub(crate) fn read_ggml_tokens(dir: &Path) -> Result<Vec<Vec<u8>>, ModelError> {
    let txt = dir.join("vocabulary.txt");
    let json = dir.join("vocabulary.json");
    let (path, tokens): (&Path, Vec<String>) = if txt.exists() {
        let text = std::fs::read_to_string(&txt).map_err(|e| ModelError::io(&txt, e))?;
        // Split on '\n' only: tokens may be empty (base's id 50256), and no
        // token contains '\n'. A trailing newline adds one ignored entry.
        (&txt, text.split('\n').map(str::to_string).collect())
    } else if json.exists() {
        let text = std::fs::read_to_string(&json).map_err(|e| ModelError::io(&json, e))?;
        let tokens = serde_json::from_str(&text).map_err(|e| {
            ModelError::bad_format(&json, format!("expected a JSON array of strings: {e}"))
        })?;
        (&json, tokens)
    } else {
        return Err(ModelError::bad_format(
            dir,
            "has neither vocabulary.txt nor vocabulary.json",
        ));
    };
    to_ggml_tokens(path, &tokens)
}

fn to_ggml_tokens(path: &Path, tokens: &[String]) -> Result<Vec<Vec<u8>>, ModelError> {
    if tokens.len() < N_GGML_TOKENS {
        return Err(ModelError::bad_format(
            path,
            format!(
                "has {} tokens; a Whisper vocabulary has at least {N_GGML_TOKENS}",
                tokens.len()
            ),
        ));
    }
    let table = unicode_to_byte();
    tokens[..N_GGML_TOKENS]
        .iter()
        .enumerate()
        .map(|(id, token)| {
            token_bytes(&table, token).ok_or_else(|| {
                ModelError::bad_format(
                    path,
                    format!("token {id} `{token}` is not a GPT-2 byte-level token"),
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_covers_every_byte_once() {
        let table = unicode_to_byte();
        assert_eq!(table.len(), 256);
        let mut bytes: Vec<u8> = table.values().copied().collect();
        bytes.sort_unstable();
        bytes.dedup();
        assert_eq!(bytes.len(), 256);
        assert_eq!(table[&'Ġ'], 0x20);
        assert_eq!(table[&'Ċ'], 0x0A);
        assert_eq!(table[&'\u{100}'], 0x00);
        assert_eq!(table[&'\u{143}'], 0xAD);
        assert_eq!(table[&'a'], b'a');
        assert_eq!(table[&'é'], 0xE9);
    }

    #[test]
    fn decodes_byte_level_tokens_to_raw_bytes() {
        let table = unicode_to_byte();
        assert_eq!(token_bytes(&table, "Ġhello").unwrap(), b" hello");
        assert_eq!(
            token_bytes(&table, "<|endoftext|>").unwrap(),
            b"<|endoftext|>"
        );
        // "Ã©" is the byte-level spelling of UTF-8 "é" (C3 A9).
        assert_eq!(token_bytes(&table, "Ã©").unwrap(), "é".as_bytes());
        // A lone lead byte: not valid UTF-8, kept as is.
        assert_eq!(token_bytes(&table, "Ã").unwrap(), vec![0xC3]);
        assert_eq!(token_bytes(&table, "").unwrap(), Vec::<u8>::new());
        assert!(token_bytes(&table, "退").is_none());
    }

    #[test]
    fn keeps_exactly_the_first_50257_tokens() {
        let mut tokens: Vec<String> = (0..N_GGML_TOKENS + 3).map(|i| format!("t{i}")).collect();
        tokens[N_GGML_TOKENS - 1] = String::new();
        let out = to_ggml_tokens(Path::new("v.txt"), &tokens).unwrap();
        assert_eq!(out.len(), N_GGML_TOKENS);
        assert_eq!(out[0], b"t0");
        assert!(out[N_GGML_TOKENS - 1].is_empty());
        let short = to_ggml_tokens(Path::new("v.txt"), &tokens[..100]);
        assert!(matches!(short, Err(ModelError::BadFormat { .. })));
    }
}
