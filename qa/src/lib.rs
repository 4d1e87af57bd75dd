//! callqa-qa: scores call transcripts against versioned scorecards with explained
//! results, detects complaints and opt-outs, reports complaint rates, and keeps the
//! blacklist the dialer checks before every dial.

pub mod bench;
pub mod blacklist;
pub mod error;
pub mod matcher;
pub mod measure;
pub mod number;
pub mod report;
pub mod score;
pub mod scorecard;
pub mod sentiment;
pub mod store;

pub use bench::bench_scoring;
pub use blacklist::{apply_policy, Blacklist, BlacklistEntry, BlacklistPolicy, Source};
pub use error::QaError;
pub use report::{complaints_report, qa_report, to_csv, ComplaintRow, ReportBy, ReportRow};
pub use score::{score_call, Evidence, ItemResult, QaResult};
pub use scorecard::{Scorecard, ScorecardError, Scorecards};
pub use store::{load_result, migrate, store_result, version_diff, VersionDiff};
