//! The reader of HdrHistogram's percentile-distribution text, as `tickfeed run --hist FILE` writes
//! it (and HdrHistogram's own `outputPercentileDistribution`):
//!
//! ```text
//!        Value     Percentile TotalCount 1/(1-Percentile)
//!
//!        0.063 0.500000000000        442           2.00
//!        0.247 1.000000000000        883
//! #[Mean    =        0.071, StdDeviation   =        0.030]
//! #[Max     =        0.247, Total count    =          883]
//! ```
//!
//! It is strict about the data rows (three or four numeric columns, percentiles in 0..=1 that never
//! go down, counts that never go down) and lenient only where the format itself is: the header
//! line, blank lines and `#` footer lines are skipped. Every mistake is a [`ParseError`] naming the
//! line. It is not a reader of HdrHistogram's compressed log format (`.hlog`).

use std::fmt;

/// One data row: `value` is at or above `percentile` of the recorded samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Row {
    /// The value, in the file's unit (tickfeed writes milliseconds for `--hist FILE` and
    /// microseconds for `FILE.process`).
    pub value: f64,
    /// The fraction of samples at or below `value`, 0..=1.
    pub percentile: f64,
    /// Samples at or below `value` (cumulative).
    pub total_count: u64,
}

/// Why a percentile file could not be read. `line` is 1-based; 0 means the file as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// The line the problem is on (0: no particular line).
    pub line: usize,
    /// What is wrong, in a few words.
    pub reason: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.reason)
        } else {
            write!(f, "line {}: {}", self.line, self.reason)
        }
    }
}

impl std::error::Error for ParseError {}

fn err(line: usize, reason: impl Into<String>) -> ParseError {
    ParseError { line, reason: reason.into() }
}

/// At most this much of a bad token is quoted back, so one error stays one short line.
const QUOTE_MAX: usize = 24;

fn quote(tok: &str) -> String {
    if tok.chars().count() <= QUOTE_MAX {
        format!("{tok:?}")
    } else {
        let head: String = tok.chars().take(QUOTE_MAX).collect();
        format!("{head:?}...")
    }
}

fn number(line: usize, column: &str, tok: &str) -> Result<f64, ParseError> {
    match tok.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(err(line, format!("{column} {} is not a finite number", quote(tok)))),
    }
}

/// Parses a whole percentile-distribution file. Returns its rows in file order; at least one.
pub fn parse(text: &str) -> Result<Vec<Row>, ParseError> {
    let mut rows: Vec<Row> = Vec::new();
    let mut header_seen = false;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with("Value") {
            if header_seen || !rows.is_empty() {
                return Err(err(n, "a second header line"));
            }
            header_seen = true;
            continue;
        }
        let toks: Vec<&str> = line.split_whitespace().collect();
        if toks.len() != 3 && toks.len() != 4 {
            return Err(err(
                n,
                format!(
                    "expected 3 or 4 columns (Value Percentile TotalCount [1/(1-Percentile)]), found {}",
                    toks.len()
                ),
            ));
        }
        let value = number(n, "Value", toks[0])?;
        if value < 0.0 {
            return Err(err(n, format!("Value {} is negative", quote(toks[0]))));
        }
        let percentile = number(n, "Percentile", toks[1])?;
        if !(0.0..=1.0).contains(&percentile) {
            return Err(err(n, format!("Percentile {} is outside 0..1", quote(toks[1]))));
        }
        let total_count =
            toks[2].parse::<u64>().map_err(|_| err(n, format!("TotalCount {} is not a count", quote(toks[2]))))?;
        if let Some(inv) = toks.get(3) {
            // The fourth column is derived from the second; it is checked to be a number but not
            // used, since the percentile itself is exact and this one is rounded to 2 decimals.
            let v = number(n, "1/(1-Percentile)", inv)?;
            if v < 1.0 {
                return Err(err(n, format!("1/(1-Percentile) {} is below 1", quote(inv))));
            }
        }
        if let Some(prev) = rows.last() {
            if percentile < prev.percentile {
                return Err(err(n, format!("Percentile goes down ({} after {})", percentile, prev.percentile)));
            }
            if total_count < prev.total_count {
                return Err(err(n, format!("TotalCount goes down ({} after {})", total_count, prev.total_count)));
            }
            if value < prev.value {
                return Err(err(n, format!("Value goes down ({} after {})", value, prev.value)));
            }
        }
        rows.push(Row { value, percentile, total_count });
    }
    if rows.is_empty() {
        return Err(err(0, "no percentile rows (an empty histogram, or not a percentile file)"));
    }
    Ok(rows)
}

/// The value at percentile `p`: the first row whose percentile reaches `p` (as HdrHistogram's
/// `value_at_quantile` answers), or `None` when the file stops short of `p`.
pub fn value_at(rows: &[Row], p: f64) -> Option<f64> {
    rows.iter().find(|r| r.percentile >= p).map(|r| r.value)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What tickfeed's `percentile_distribution` writes (header, blank line, rows, footer), by hand.
    const GOOD: &str = "       Value     Percentile TotalCount 1/(1-Percentile)

      63.000 0.000000000000          1           1.00
      63.000 0.500000000000        442           2.00
      90.000 0.750000000000        663           4.00
     172.000 0.990000000000        875         100.00
     247.000 1.000000000000        883
#[Mean    =       71.402, StdDeviation   =       30.113]
#[Max     =      247.000, Total count    =          883]
#[Buckets =           15, SubBuckets     =         2048]
";

    #[test]
    fn reads_tickfeeds_format() {
        let rows = parse(GOOD).unwrap();
        assert_eq!(rows.len(), 5);
        assert_eq!(rows[1], Row { value: 63.0, percentile: 0.5, total_count: 442 });
        assert_eq!(rows[4], Row { value: 247.0, percentile: 1.0, total_count: 883 });
        assert_eq!(value_at(&rows, 0.5), Some(63.0));
        assert_eq!(value_at(&rows, 0.9), Some(172.0));
        assert_eq!(value_at(&rows, 0.9999), Some(247.0));
    }

    #[test]
    fn header_and_footer_are_optional_and_crlf_is_fine() {
        let rows = parse("1.5 0.5 2\r\n3 1.0 4\r\n").unwrap();
        assert_eq!(
            rows,
            vec![
                Row { value: 1.5, percentile: 0.5, total_count: 2 },
                Row { value: 3.0, percentile: 1.0, total_count: 4 }
            ]
        );
    }

    #[test]
    fn value_at_past_the_end_is_none() {
        let rows = parse("1 0.5 2\n2 0.9 4\n").unwrap();
        assert_eq!(value_at(&rows, 0.99), None);
    }

    fn bad(text: &str) -> ParseError {
        parse(text).expect_err(text)
    }

    #[test]
    fn malformed_lines_name_their_line() {
        let e = bad("Value Percentile TotalCount\n\n1 0.5 2\n2 0.9\n");
        assert_eq!(e.line, 4);
        assert!(e.reason.contains("found 2"), "{e}");
        assert_eq!(e.to_string().lines().count(), 1);

        let e = bad("1 0.5 2\nabc 0.9 3\n");
        assert_eq!((e.line, e.to_string()), (2, "line 2: Value \"abc\" is not a finite number".to_string()));

        assert_eq!(bad("1 0.5 2 2.00 extra\n").line, 1);
        assert!(bad("1 1.5 2\n").reason.contains("outside 0..1"));
        assert!(bad("1 -0.1 2\n").reason.contains("outside 0..1"));
        assert!(bad("-1 0.5 2\n").reason.contains("negative"));
        assert!(bad("1 0.5 -2\n").reason.contains("TotalCount"));
        assert!(bad("1 0.5 2.5\n").reason.contains("TotalCount"));
        assert!(bad("NaN 0.5 2\n").reason.contains("finite"));
        assert!(bad("inf 0.5 2\n").reason.contains("finite"));
        assert!(bad("1 0.5 2 x\n").reason.contains("1/(1-Percentile)"));
        assert!(bad("1 0.5 2 0.5\n").reason.contains("below 1"));
    }

    #[test]
    fn rows_must_not_go_backwards() {
        let e = bad("1 0.5 2\n2 0.4 3\n");
        assert_eq!(e.line, 2);
        assert!(e.reason.contains("Percentile goes down"), "{e}");
        assert!(bad("1 0.5 5\n2 0.6 3\n").reason.contains("TotalCount goes down"));
        assert!(bad("5 0.5 2\n2 0.6 3\n").reason.contains("Value goes down"));
        assert_eq!(bad("1 0.5 2\nValue Percentile TotalCount\n").line, 2);
    }

    #[test]
    fn empty_or_foreign_files_are_errors() {
        assert_eq!(bad("").line, 0);
        // An empty histogram as tickfeed writes it: header and footer, no rows.
        let e = bad("       Value     Percentile TotalCount 1/(1-Percentile)\n\n#[Mean    =        0.000, StdDeviation   =        0.000]\n");
        assert!(e.reason.contains("no percentile rows"), "{e}");
        assert_eq!(bad("{\"events\": 3}\n").line, 1);
    }

    #[test]
    fn a_long_bad_token_is_cut_in_the_message() {
        let e = bad(&format!("{} 0.5 2\n", "9".repeat(400) + "x"));
        assert!(e.to_string().len() < 100, "{e}");
    }
}
