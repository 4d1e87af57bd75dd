//! Campaign scorecard files as the scoring stage reads them (`<dir>/<campaign>.toml`) and
//! every version saved from the UI (`<dir>/history/<campaign>/v<N>.toml`): read, check with
//! the qa crate's parser (pointing at the faulty line), and save as a new version.

use std::path::{Path, PathBuf};

use callqa_qa::{Scorecard, ScorecardError};
use serde::Serialize;
use sqlx::Row;

use crate::error::WebError;
use crate::WebState;

/// Saves are serialised so two admins saving at once get different versions.
static SAVE_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The scorecard a campaign is scored with, as text.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CardText {
    pub campaign: String,
    /// The card's `id`.
    pub scorecard: String,
    pub version: u32,
    pub name: String,
    pub items: usize,
    /// True when the campaign has no file and uses the built-in default card.
    pub builtin: bool,
    pub toml: String,
}

/// Why a scorecard text was refused, and where (1-based) when that is known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, "line {l}, column {c}: {}", self.message),
            (Some(l), None) => write!(f, "line {l}: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

/// A saved version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Saved {
    pub campaign: String,
    pub scorecard: String,
    pub version: u32,
    /// The version the campaign was scored with before (its file's, or the built-in card's).
    pub previous_version: u32,
    /// True when the text's `version` was raised to make this a new version.
    pub bumped: bool,
}

/// The names the scoring stage accepts for `<campaign>.toml` (no path separators or dots).
pub fn valid_campaign(name: &str) -> bool {
    !name.is_empty()
        && name.chars().count() <= 100
        && !name.contains(['/', '\\', '.'])
        && !name.chars().any(char::is_control)
}

/// The scorecards directory, or why this server cannot edit scorecards.
pub(crate) fn dir_of(state: &WebState) -> Result<&Path, WebError> {
    state.scorecards_dir.as_deref().ok_or_else(|| {
        WebError::Conflict(
            "this server has no scorecards directory; edit <data-dir>/scorecards/<campaign>.toml by hand".into(),
        )
    })
}

fn checked_name(campaign: &str) -> Result<(), WebError> {
    if valid_campaign(campaign) {
        Ok(())
    } else {
        Err(WebError::BadRequest(format!(
            "campaign name {campaign:?} cannot name a scorecard file: use no '/', '\\' or '.'"
        )))
    }
}

fn file_of(dir: &Path, campaign: &str) -> PathBuf {
    dir.join(format!("{campaign}.toml"))
}

fn history_dir(dir: &Path, campaign: &str) -> PathBuf {
    dir.join("history").join(campaign)
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> WebError + '_ {
    move |source| WebError::File {
        path: path.display().to_string(),
        source,
    }
}

/// Reads a file, `None` when it does not exist.
async fn read_opt(path: &Path) -> Result<Option<String>, WebError> {
    match tokio::fs::read_to_string(path).await {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(path)(e)),
    }
}

/// The campaign's scorecard text: its file, else the built-in default card.
pub async fn current(dir: &Path, campaign: &str) -> Result<CardText, WebError> {
    checked_name(campaign)?;
    let path = file_of(dir, campaign);
    let (toml, builtin) = match read_opt(&path).await? {
        Some(t) => (t, false),
        None => (
            Scorecard::builtin_toml("default")
                .unwrap_or_default()
                .to_string(),
            true,
        ),
    };
    // A file broken by hand is still shown, so it can be fixed here.
    let card = Scorecard::from_toml(&toml).ok();
    Ok(CardText {
        campaign: campaign.to_string(),
        scorecard: card.as_ref().map_or_else(String::new, |c| c.id.clone()),
        version: card.as_ref().map_or(0, |c| c.version),
        name: card.as_ref().map_or_else(String::new, |c| c.name.clone()),
        items: card.as_ref().map_or(0, |c| c.items.len()),
        builtin,
        toml,
    })
}

/// The versions saved for the campaign, newest first.
pub async fn history(dir: &Path, campaign: &str) -> Result<Vec<u32>, WebError> {
    checked_name(campaign)?;
    let hdir = history_dir(dir, campaign);
    let mut rd = match tokio::fs::read_dir(&hdir).await {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(io_err(&hdir)(e)),
    };
    let mut out = Vec::new();
    while let Some(entry) = rd.next_entry().await.map_err(io_err(&hdir))? {
        let name = entry.file_name();
        if let Some(v) = name
            .to_str()
            .and_then(|n| n.strip_prefix('v'))
            .and_then(|n| n.strip_suffix(".toml"))
            .and_then(|n| n.parse::<u32>().ok())
        {
            out.push(v);
        }
    }
    out.sort_unstable_by(|a, b| b.cmp(a));
    Ok(out)
}

/// The text of a saved version.
pub async fn version_text(dir: &Path, campaign: &str, version: u32) -> Result<String, WebError> {
    checked_name(campaign)?;
    let path = history_dir(dir, campaign).join(format!("v{version}.toml"));
    read_opt(&path)
        .await?
        .ok_or_else(|| WebError::NotFound(format!("version {version} of {campaign}'s scorecard")))
}

/// Campaigns that have their own scorecard file.
pub async fn campaigns_with_files(dir: &Path) -> Result<Vec<String>, WebError> {
    let mut rd = match tokio::fs::read_dir(dir).await {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(io_err(dir)(e)),
    };
    let mut out = Vec::new();
    while let Some(entry) = rd.next_entry().await.map_err(io_err(dir))? {
        let name = entry.file_name();
        if let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".toml")) {
            if valid_campaign(stem) {
                out.push(stem.to_string());
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Parses and validates `text` as the scoring stage will.
pub fn check(text: &str) -> Result<Scorecard, Problem> {
    Scorecard::from_toml(text).map_err(|e| problem(text, &e))
}

fn problem(text: &str, e: &ScorecardError) -> Problem {
    if let ScorecardError::Parse(te) = e {
        let (line, column) = te
            .span()
            .map(|r| line_col(text, r.start))
            .map_or((None, None), |(l, c)| (Some(l), Some(c)));
        return Problem {
            line,
            column,
            message: te.message().trim().to_string(),
        };
    }
    let line = match e {
        ScorecardError::DuplicateItem { item } => item_line(text, item, 1),
        ScorecardError::UnknownKind { item, .. }
        | ScorecardError::MissingField { item, .. }
        | ScorecardError::FieldNotAllowed { item, .. }
        | ScorecardError::BadSpeaker { item, .. }
        | ScorecardError::BadRequire { item, .. }
        | ScorecardError::BadWeight { item, .. }
        | ScorecardError::BadRange { item, .. }
        | ScorecardError::EmptyPhrase { item, .. }
        | ScorecardError::NoPhrases { item }
        | ScorecardError::UnknownCategory { item, .. } => item_line(text, item, 0),
        ScorecardError::BadCap { .. } => top_level_line(text, "auto_fail_cap"),
        ScorecardError::EmptyId => top_level_line(text, "id"),
        _ => None,
    };
    Problem {
        line,
        column: None,
        message: e.to_string(),
    }
}

/// 1-based line and column (in characters) of byte `offset`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// The value of `key = ...` on this line, if the line sets `key`.
fn assigned<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let rest = line.trim().strip_prefix(key)?.trim_start();
    Some(rest.strip_prefix('=')?.trim())
}

/// The line of the `nth` (0-based) item whose `id` is `item`.
fn item_line(text: &str, item: &str, nth: usize) -> Option<usize> {
    let mut in_items = false;
    text.lines()
        .enumerate()
        .filter(|(_, l)| {
            if l.trim_start().starts_with("[[items]]") {
                in_items = true;
            }
            in_items
        })
        .filter(|(_, l)| {
            assigned(l, "id").is_some_and(|v| {
                let v = v.split('#').next().unwrap_or("").trim();
                v.trim_matches(|c| c == '"' || c == '\'') == item && v.len() >= 2
            })
        })
        .nth(nth)
        .map(|(i, _)| i + 1)
}

/// The line setting top-level `key` (before the first table).
fn top_level_line(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .take_while(|l| !l.trim_start().starts_with('['))
        .position(|l| assigned(l, key).is_some())
        .map(|i| i + 1)
}

/// `text` with its top-level `version = ...` line set to `version`.
fn with_version(text: &str, version: u32) -> Option<String> {
    let line = top_level_line(text, "version")?;
    let mut out: Vec<String> = text.lines().map(str::to_string).collect();
    out[line - 1] = format!("version = {version}");
    let mut s = out.join("\n");
    if text.ends_with('\n') {
        s.push('\n');
    }
    Some(s)
}

/// Highest version of scorecard `id` that ever scored a call.
async fn scored_max_version(state: &WebState, id: &str) -> Result<u32, WebError> {
    callqa_qa::migrate(state.db.pool()).await?;
    let row = sqlx::query("SELECT MAX(version) FROM qa_history WHERE scorecard = $1")
        .bind(id.to_string())
        .fetch_one(state.db.pool())
        .await
        .map_err(WebError::db(format!("read versions of scorecard {id}")))?;
    let v: Option<i64> = row
        .try_get(0)
        .map_err(WebError::db("read qa_history.version"))?;
    Ok(v.unwrap_or(0).clamp(0, i64::from(u32::MAX)) as u32)
}

/// Checks `text` and saves it as the campaign's scorecard, as a version newer than the one
/// in force and than any that scored a call (raising `version` when the text does not), so
/// QA results of the old and new card never share a version. Older versions stay readable
/// in the history directory.
pub async fn save(
    state: &WebState,
    dir: &Path,
    campaign: &str,
    text: &str,
) -> Result<Saved, WebError> {
    checked_name(campaign)?;
    let card = check(text).map_err(WebError::InvalidScorecard)?;
    let _guard = SAVE_LOCK.lock().await;
    let before = current(dir, campaign).await?;
    if !before.builtin && before.toml.trim() == text.trim() {
        return Err(WebError::Conflict(format!(
            "the scorecard of {campaign} is unchanged; nothing saved"
        )));
    }
    let mut floor = scored_max_version(state, &card.id).await?;
    if before.scorecard == card.id {
        floor = floor.max(before.version);
    }
    let (text, version, bumped) = if card.version > floor {
        (text.to_string(), card.version, false)
    } else {
        let v = floor + 1;
        let t = with_version(text, v)
            .filter(|t| check(t).is_ok_and(|c| c.version == v))
            .ok_or_else(|| {
                WebError::InvalidScorecard(Problem {
                    line: top_level_line(text, "version"),
                    column: None,
                    message: format!(
                        "set `version = {v}` or higher: version {} is already in use",
                        card.version
                    ),
                })
            })?;
        (t, v, true)
    };

    let hdir = history_dir(dir, campaign);
    tokio::fs::create_dir_all(&hdir)
        .await
        .map_err(io_err(&hdir))?;
    if !before.builtin && before.version > 0 {
        // A file written by hand before: keep it in the history too.
        let old = hdir.join(format!("v{}.toml", before.version));
        if read_opt(&old).await?.is_none() {
            tokio::fs::write(&old, &before.toml)
                .await
                .map_err(io_err(&old))?;
        }
    }
    let kept = hdir.join(format!("v{version}.toml"));
    tokio::fs::write(&kept, &text)
        .await
        .map_err(io_err(&kept))?;
    // Write then rename, so the scoring stage never reads half a file.
    let path = file_of(dir, campaign);
    let tmp = dir.join(format!(".{campaign}.toml.partial"));
    tokio::fs::write(&tmp, &text).await.map_err(io_err(&tmp))?;
    tokio::fs::rename(&tmp, &path)
        .await
        .map_err(io_err(&path))?;
    Ok(Saved {
        campaign: campaign.to_string(),
        scorecard: card.id,
        version,
        previous_version: before.version,
        bumped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CARD: &str = "# comment\nid = \"c\"\nversion = 2\nname = \"n\"\n\n[[items]]\nid = \"greet\"\nkind = \"required_phrase\"\nphrases = [\"hello\"]\n";

    #[test]
    fn campaign_names_are_file_safe() {
        assert!(valid_campaign("spring-2026"));
        assert!(valid_campaign("春季"));
        assert!(!valid_campaign(""));
        assert!(!valid_campaign("../etc"));
        assert!(!valid_campaign("a.b"));
        assert!(!valid_campaign("a/b"));
    }

    #[test]
    fn syntax_errors_point_at_their_line() {
        let bad = CARD.replace("name = \"n\"", "name = \"n");
        let p = check(&bad).unwrap_err();
        assert_eq!(p.line, Some(4), "{p:?}");
        assert!(p.column.is_some());
    }

    #[test]
    fn item_errors_point_at_the_item() {
        let bad = CARD.replace("required_phrase", "shouting");
        let p = check(&bad).unwrap_err();
        assert_eq!(p.line, Some(7), "{p:?}");
        assert!(p.message.contains("shouting"), "{p:?}");
        let dup = format!(
            "{CARD}\n[[items]]\nid = \"greet\"\nkind = \"forbidden_phrase\"\nphrases = [\"x\"]\n"
        );
        assert_eq!(check(&dup).unwrap_err().line, Some(12));
        assert_eq!(check(CARD).unwrap().version, 2);
    }

    #[test]
    fn version_is_rewritten_in_place() {
        let t = with_version(CARD, 7).unwrap();
        assert_eq!(check(&t).unwrap().version, 7);
        assert!(t.starts_with("# comment\n") && t.ends_with('\n'));
        assert_eq!(t.lines().count(), CARD.lines().count());
    }
}
