//! PostgreSQL's side of full-text search: the caller's FTS5 query as a `tsquery`.

use crate::error::{Error, Result};

/// The FTS5 `query` as a PostgreSQL `tsquery`: words and `"phrases"` (words in a row,
/// `<->`), `prefix*` (`:*`), `AND`, `OR`, `NOT` and parentheses; terms side by side must
/// all match, as in FTS5. Differences: PostgreSQL's `simple` parser splits words at other
/// characters than FTS5's `unicode61` (both drop punctuation), does not remove diacritics,
/// and ranks with `ts_rank` (the hit's `rank` is its negation, so lower is still better);
/// FTS5's column filters and `NEAR` are refused.
pub(crate) fn fts5_to_tsquery(query: &str) -> Result<String> {
    fn lexeme(word: &str) -> String {
        format!("'{}'", word.replace('\\', "\\\\").replace('\'', "''"))
    }
    // Worded as SQLite's FTS5 words them, so callers see one message on both backends.
    let bad = |why: &str| Error::invalid(format!("search query {query:?}: syntax error: {why}"));
    let mut out: Vec<String> = Vec::new();
    // Whether the last thing pushed can be followed by a term (an implicit AND).
    let mut after_term = false;
    let mut depth = 0i32;
    let mut chars = query.chars().peekable();
    let push_term = |out: &mut Vec<String>, term: String, after_term: &mut bool| {
        if *after_term {
            out.push("&".into());
        }
        out.push(term);
        *after_term = true;
    };
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '"' {
            chars.next();
            let mut phrase = String::new();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        phrase.push('"');
                    }
                    Some('"') => break,
                    Some(ch) => phrase.push(ch),
                    None => {
                        return Err(Error::invalid(format!(
                            "search query {query:?}: unterminated string"
                        )))
                    }
                }
            }
            let prefix = chars.peek() == Some(&'*');
            if prefix {
                chars.next();
            }
            let words: Vec<String> = phrase
                .split(|ch: char| !ch.is_alphanumeric())
                .filter(|w| !w.is_empty())
                .map(lexeme)
                .collect();
            if words.is_empty() {
                continue;
            }
            let mut term = words.join(" <-> ");
            if prefix {
                term.push_str(":*");
            }
            push_term(&mut out, format!("({term})"), &mut after_term);
        } else if c == '(' {
            chars.next();
            if after_term {
                out.push("&".into());
            }
            out.push("(".into());
            depth += 1;
            after_term = false;
        } else if c == ')' {
            chars.next();
            depth -= 1;
            if depth < 0 || !after_term {
                return Err(bad("unbalanced or empty parentheses"));
            }
            out.push(")".into());
        } else {
            let mut word = String::new();
            while let Some(&ch) = chars.peek() {
                if ch.is_whitespace() || ch == '(' || ch == ')' || ch == '"' {
                    break;
                }
                word.push(ch);
                chars.next();
            }
            match word.as_str() {
                "AND" | "OR" | "NOT" if !after_term => {
                    return Err(bad(&format!("{word} needs a term before it")))
                }
                "AND" => {
                    out.push("&".into());
                    after_term = false;
                }
                "OR" => {
                    out.push("|".into());
                    after_term = false;
                }
                "NOT" => {
                    out.push("& !".into());
                    after_term = false;
                }
                _ if word.contains(':') || word.starts_with("NEAR") => {
                    return Err(bad(
                        "column filters and NEAR are not supported on PostgreSQL",
                    ))
                }
                _ => {
                    let prefix = word.ends_with('*');
                    let parts: Vec<String> = word
                        .trim_end_matches('*')
                        .split(|ch: char| !ch.is_alphanumeric())
                        .filter(|w| !w.is_empty())
                        .map(lexeme)
                        .collect();
                    if parts.is_empty() {
                        return Err(bad(&format!("{word:?} has no word in it")));
                    }
                    let mut term = parts.join(" <-> ");
                    if prefix {
                        term.push_str(":*");
                    }
                    push_term(&mut out, format!("({term})"), &mut after_term);
                }
            }
        }
    }
    if depth != 0 {
        return Err(bad("unbalanced parentheses"));
    }
    if !after_term {
        return Err(bad("it ends without a term"));
    }
    Ok(out.join(" "))
}
