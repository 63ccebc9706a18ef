//! A statement with its values written into its text, for the one place a statement cannot
//! go with its parameters: the simple-query batch that also begins the transaction
//! ([`super::PgTx`] sends a transaction's `BEGIN` with its first statement when that is a
//! locked read, one round trip instead of two). Each value is written as a literal cast to the type the driver binds it
//! as ([`super::bound`]), so the statement means what it means with parameters; its rows come
//! back as text and [`TextRow`] reads them as [`ReadRow`] reads the driver's rows.

use postgres::SimpleQueryRow;

use crate::db::value::{Kind, ReadRow, Value};
use crate::error::{Error, Result};
use crate::model::Role;

/// What the batch sets for the rows it reads as text: bytes in hex, floats exact.
pub(super) const TEXT_OUTPUT: &str =
    "SET LOCAL bytea_output = 'hex'; SET LOCAL extra_float_digits = 3;";

/// `sql` with each placeholder `?n` (outside string literals and quoted names) replaced by
/// the literal of `params[n - 1]`.
pub(super) fn with_values(sql: &str, params: &[Value<'_>]) -> Result<String> {
    let mut out = String::with_capacity(sql.len() + 16 * params.len());
    let mut quote: Option<char> = None;
    let mut chars = sql.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c == '?' && chars.peek().is_some_and(|(_, d)| d.is_ascii_digit()) => {
                let digits = sql[at + 1..].bytes().take_while(u8::is_ascii_digit).count();
                let n: usize = sql[at + 1..at + 1 + digits].parse().unwrap_or(0);
                let value = n
                    .checked_sub(1)
                    .and_then(|i| params.get(i))
                    .ok_or_else(|| {
                        Error::Corrupt(format!("statement names parameter ?{n} it was not given"))
                    })?;
                out.push_str(&literal(value)?);
                for _ in 0..digits {
                    chars.next();
                }
                continue;
            }
            None => {}
        }
        out.push(c);
    }
    Ok(out)
}

/// `value` as an SQL literal of the type the driver would bind it as. Text is an escape
/// string (`E'…'`, backslash and quote doubled), safe for any text PostgreSQL can hold; NUL,
/// which it cannot, is refused as the server refuses it in a parameter.
pub(super) fn literal(value: &Value<'_>) -> Result<String> {
    Ok(match value {
        Value::Null(kind) => format!("CAST(NULL AS {})", type_name(*kind)),
        Value::Int64(v) => format!("CAST('{v}' AS BIGINT)"),
        Value::Int32(v) => format!("CAST('{v}' AS INTEGER)"),
        Value::Float64(v) => format!("CAST('{}' AS DOUBLE PRECISION)", float_text(*v)),
        Value::Bool(v) => format!("CAST('{v}' AS BOOLEAN)"),
        Value::Text(v) => format!("CAST({} AS TEXT)", quoted(v)?),
        Value::Blob(v) => {
            let hex: String = v.iter().map(|b| format!("{b:02x}")).collect();
            format!("CAST(E'\\\\x{hex}' AS BYTEA)")
        }
    })
}

fn type_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Int64 => "BIGINT",
        Kind::Int32 => "INTEGER",
        Kind::Float64 => "DOUBLE PRECISION",
        Kind::Bool => "BOOLEAN",
        Kind::Text => "TEXT",
        Kind::Blob => "BYTEA",
    }
}

/// A float as PostgreSQL reads it back to the same value: Rust's shortest exact form, and
/// PostgreSQL's names for what is not a number.
fn float_text(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else {
        format!("{v:e}")
    }
}

/// `text` as an escape string literal.
fn quoted(text: &str) -> Result<String> {
    if text.contains('\0') {
        return Err(Error::invalid(
            "PostgreSQL cannot store the NUL character (\\0) in text or JSON; nothing was written",
        ));
    }
    let mut out = String::with_capacity(text.len() + 4);
    out.push_str("E'");
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("''"),
            c => out.push(c),
        }
    }
    out.push('\'');
    Ok(out)
}

/// A row read as text, by the simple-query protocol.
pub(crate) struct TextRow(pub(super) SimpleQueryRow);

impl TextRow {
    fn column(&self, index: usize) -> Result<Option<&str>> {
        Ok(self.0.try_get(index)?)
    }

    fn required(&self, index: usize) -> Result<&str> {
        self.column(index)?.ok_or_else(|| {
            let name = self.0.columns().get(index).map_or("?", |c| c.name());
            Error::Corrupt(format!("column {name} is unexpectedly NULL"))
        })
    }

    fn unreadable(&self, index: usize, what: &str, text: &str) -> Error {
        let name = self.0.columns().get(index).map_or("?", |c| c.name());
        Error::Corrupt(format!("column {name}: {text:?} is not {what}"))
    }

    fn parse_int(&self, index: usize, text: &str) -> Result<i64> {
        match text {
            "t" => Ok(1),
            "f" => Ok(0),
            _ => text
                .parse()
                .map_err(|_| self.unreadable(index, "an integer", text)),
        }
    }

    fn parse_float(&self, index: usize, text: &str) -> Result<f64> {
        text.parse()
            .map_err(|_| self.unreadable(index, "a number", text))
    }

    fn parse_blob(&self, index: usize, text: &str) -> Result<Vec<u8>> {
        let bad = || self.unreadable(index, "bytes in hex", text);
        let hex = text.strip_prefix("\\x").ok_or_else(bad)?;
        if hex.len() % 2 != 0 {
            return Err(bad());
        }
        (0..hex.len())
            .step_by(2)
            .map(|i| {
                hex.get(i..i + 2)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(bad)
            })
            .collect()
    }
}

impl ReadRow for TextRow {
    fn int64(&self, index: usize) -> Result<i64> {
        self.parse_int(index, self.required(index)?)
    }
    fn int64_opt(&self, index: usize) -> Result<Option<i64>> {
        self.column(index)?
            .map(|t| self.parse_int(index, t))
            .transpose()
    }
    fn float64(&self, index: usize) -> Result<f64> {
        self.parse_float(index, self.required(index)?)
    }
    fn float64_opt(&self, index: usize) -> Result<Option<f64>> {
        self.column(index)?
            .map(|t| self.parse_float(index, t))
            .transpose()
    }
    fn boolean(&self, index: usize) -> Result<bool> {
        Ok(self.int64(index)? != 0)
    }
    fn text(&self, index: usize) -> Result<String> {
        Ok(self.required(index)?.to_string())
    }
    fn text_opt(&self, index: usize) -> Result<Option<String>> {
        Ok(self.column(index)?.map(str::to_string))
    }
    fn blob(&self, index: usize) -> Result<Vec<u8>> {
        self.parse_blob(index, self.required(index)?)
    }
    fn blob_opt(&self, index: usize) -> Result<Option<Vec<u8>>> {
        self.column(index)?
            .map(|t| self.parse_blob(index, t))
            .transpose()
    }
    fn role(&self, index: usize) -> Result<Role> {
        self.text(index)?
            .parse()
            .map_err(|e: Error| Error::Corrupt(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::{literal, with_values};
    use crate::db::value::{Kind, Value};

    #[test]
    fn text_is_an_escape_string_with_backslash_and_quote_doubled() {
        assert_eq!(
            literal(&Value::Text("a'b\\c$1;\n–")).unwrap(),
            "CAST(E'a''b\\\\c$1;\n–' AS TEXT)"
        );
        assert!(literal(&Value::Text("a\0b")).is_err());
    }

    #[test]
    fn numbers_nulls_and_bytes_keep_their_type() {
        assert_eq!(
            literal(&Value::Int64(i64::MIN)).unwrap(),
            "CAST('-9223372036854775808' AS BIGINT)"
        );
        assert_eq!(
            literal(&Value::Float64(0.1)).unwrap(),
            "CAST('1e-1' AS DOUBLE PRECISION)"
        );
        assert_eq!(
            literal(&Value::Null(Kind::Text)).unwrap(),
            "CAST(NULL AS TEXT)"
        );
        assert_eq!(
            literal(&Value::Blob(&[0, 255])).unwrap(),
            "CAST(E'\\\\x00ff' AS BYTEA)"
        );
    }

    #[test]
    fn placeholders_outside_literals_take_their_values() {
        assert_eq!(
            with_values(
                "SELECT '?1', x FROM t WHERE a = ?1 AND b = ?2 OR c = ?1",
                &[Value::Int64(7), Value::Text("?1")]
            )
            .unwrap(),
            "SELECT '?1', x FROM t WHERE a = CAST('7' AS BIGINT) AND b = CAST(E'?1' AS TEXT) \
             OR c = CAST('7' AS BIGINT)"
        );
        assert!(with_values("SELECT ?3", &[Value::Int64(1)]).is_err());
    }
}
