//! Turns the user's query text into a tantivy query over the transcript fields, and
//! remembers which (analysed) terms to highlight in snippets.
//!
//! tantivy's own `QueryParser` is not used because it rejects a single-term prefix query
//! (`refun*`) and cannot say which terms came from negated clauses; the grammar is the same
//! (`AND`, `OR`, `-term`, `"phrase"`, `"phrase"~2`, `prefix*`, parentheses, `^boost`).
//! Words are ANDed by default. A `field:value` literal is searched as plain text (users
//! type times like `10:30`); the speaker restriction comes from the request instead.

use std::collections::HashSet;

use callqa_ingest::text::{join_spoken_digits, normalize_zh};
use tantivy::query::{
    AllQuery, BooleanQuery, BoostQuery, Occur, PhrasePrefixQuery, PhraseQuery, Query, TermQuery,
};
use tantivy::query_grammar::{self, Delimiter, UserInputAst, UserInputLeaf, UserInputLiteral};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::tokenizer::TextAnalyzer;
use tantivy::Term;

use crate::error::SearchError;

/// A prefix query expands to at most this many indexed terms.
const MAX_PREFIX_EXPANSIONS: u32 = 200;

/// Analysed terms of the non-negated parts of a query, for highlighting.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct HighlightTerms {
    pub exact: HashSet<String>,
    pub prefixes: Vec<String>,
}

impl HighlightTerms {
    /// Does an analysed token of a segment match the query?
    pub fn matches(&self, token: &str) -> bool {
        self.exact.contains(token) || self.prefixes.iter().any(|p| token.starts_with(p.as_str()))
    }

    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.prefixes.is_empty()
    }
}

/// A parsed query. `query` is `None` when the text has no searchable word (an empty box
/// means "every call", narrowed by the filters).
pub struct ParsedQuery {
    pub query: Option<Box<dyn Query>>,
    pub highlight: HighlightTerms,
}

/// Parses `text` against `fields` using the query-time `analyzer`.
pub fn parse(
    text: &str,
    fields: &[Field],
    analyzer: &mut TextAnalyzer,
) -> Result<ParsedQuery, SearchError> {
    // Numbers are typed the way transcripts store them: "555-0199" and "5 5 5 0 1 9 9" as
    // 5550199.
    let normalized = join_spoken_digits(&normalize_zh(text));
    let mut highlight = HighlightTerms::default();
    if normalized.trim().is_empty() {
        return Ok(ParsedQuery {
            query: None,
            highlight,
        });
    }
    // The reason's position counts characters of what was typed: `normalize_zh` keeps their
    // number, joining digits does not (and neither adds nor removes a syntax error).
    let ast = query_grammar::parse_query(&normalized).map_err(|_| SearchError::BadQuery {
        query: text.to_string(),
        reason: syntax_error_reason(&normalize_zh(text)),
    })?;
    let mut builder = Builder {
        text,
        fields,
        analyzer,
        highlight: &mut highlight,
    };
    let query = builder.build(ast, false)?;
    Ok(ParsedQuery { query, highlight })
}

/// The grammar's strict parser gives no reason; its lenient one does.
fn syntax_error_reason(text: &str) -> String {
    let (_, errors) = query_grammar::parse_query_lenient(text);
    match errors.first() {
        Some(e) => format!(
            "syntax error at character {}: {} (check quotes, parentheses and a dangling AND/OR/-)",
            text[..e.pos.min(text.len())].chars().count(),
            e.message
        ),
        None => "syntax error (check quotes, parentheses and a dangling AND/OR/-)".to_string(),
    }
}

struct Builder<'a> {
    text: &'a str,
    fields: &'a [Field],
    analyzer: &'a mut TextAnalyzer,
    highlight: &'a mut HighlightTerms,
}

impl Builder<'_> {
    fn bad(&self, reason: impl Into<String>) -> SearchError {
        SearchError::BadQuery {
            query: self.text.to_string(),
            reason: reason.into(),
        }
    }

    fn build(
        &mut self,
        ast: UserInputAst,
        negated: bool,
    ) -> Result<Option<Box<dyn Query>>, SearchError> {
        match ast {
            UserInputAst::Clause(clauses) => {
                let mut subs: Vec<(Occur, Box<dyn Query>)> = Vec::new();
                for (occur, sub) in clauses {
                    let occur = occur.unwrap_or(Occur::Must);
                    let sub_negated = negated ^ (occur == Occur::MustNot);
                    if let Some(q) = self.build(sub, sub_negated)? {
                        subs.push((occur, q));
                    }
                }
                if subs.is_empty() {
                    return Ok(None);
                }
                if subs.iter().all(|(o, _)| *o == Occur::MustNot) {
                    // `-refund` alone means "calls without refund", not "nothing".
                    subs.push((Occur::Must, Box::new(AllQuery)));
                }
                if subs.len() == 1 && subs[0].0 != Occur::MustNot {
                    return Ok(subs.pop().map(|(_, q)| q));
                }
                Ok(Some(Box::new(BooleanQuery::new(subs))))
            }
            UserInputAst::Boost(sub, boost) => Ok(self
                .build(*sub, negated)?
                .map(|q| Box::new(BoostQuery::new(q, boost as f32)) as Box<dyn Query>)),
            UserInputAst::Leaf(leaf) => match *leaf {
                UserInputLeaf::Literal(lit) => Ok(self.literal(lit, negated)),
                UserInputLeaf::All => Ok(Some(Box::new(AllQuery))),
                UserInputLeaf::Range { .. } => {
                    Err(self.bad("range queries are not supported; use the date and score filters"))
                }
                UserInputLeaf::Set { .. } => Err(self.bad("IN [...] sets are not supported")),
                UserInputLeaf::Exists { .. } => {
                    Err(self.bad("field existence queries are not supported"))
                }
            },
        }
    }

    fn literal(&mut self, mut lit: UserInputLiteral, negated: bool) -> Option<Box<dyn Query>> {
        // The grammar only marks `"quoted"*` as a prefix; a bare `refun*` arrives as the
        // word "refun*", which users expect to be a prefix query too.
        if lit.delimiter == Delimiter::None && !lit.prefix && lit.phrase.len() > 1 {
            if let Some(stem) = lit.phrase.strip_suffix('*') {
                lit.phrase = stem.to_string();
                lit.prefix = true;
            }
        }
        let phrase = match &lit.field_name {
            Some(field) => format!("{field}:{}", lit.phrase),
            None => lit.phrase,
        };
        let mut tokens: Vec<(usize, String)> = Vec::new();
        let mut stream = self.analyzer.token_stream(&phrase);
        while let Some(t) = stream.next() {
            tokens.push((t.position, t.text.clone()));
        }
        if tokens.is_empty() {
            return None;
        }
        if !negated {
            for (i, (_, word)) in tokens.iter().enumerate() {
                if lit.prefix && i + 1 == tokens.len() {
                    self.highlight.prefixes.push(word.clone());
                } else {
                    self.highlight.exact.insert(word.clone());
                }
            }
        }
        let mut per_field: Vec<(Occur, Box<dyn Query>)> = self
            .fields
            .iter()
            .map(|&field| {
                (
                    Occur::Should,
                    field_query(field, &tokens, lit.slop, lit.prefix),
                )
            })
            .collect();
        if per_field.len() == 1 {
            return per_field.pop().map(|(_, q)| q);
        }
        Some(Box::new(BooleanQuery::new(per_field)))
    }
}

fn field_query(
    field: Field,
    tokens: &[(usize, String)],
    slop: u32,
    prefix: bool,
) -> Box<dyn Query> {
    let terms: Vec<(usize, Term)> = tokens
        .iter()
        .map(|(pos, word)| (*pos, Term::from_field_text(field, word)))
        .collect();
    if prefix {
        let mut q = PhrasePrefixQuery::new_with_offset(terms);
        q.set_max_expansions(MAX_PREFIX_EXPANSIONS);
        return Box::new(q);
    }
    match terms.len() {
        1 => Box::new(TermQuery::new(
            terms[0].1.clone(),
            IndexRecordOption::WithFreqs,
        )),
        _ => Box::new(PhraseQuery::new_with_offset_and_slop(terms, slop)),
    }
}
