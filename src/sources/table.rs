//! A header-keyed reader for delimited exports. Real exports arrive with a BOM, CRLF line
//! ends, quoted delimiters, stray Latin-1 bytes and truncated last lines; this reader keeps
//! every data line (with its 1-based line number and original text) so that nothing is
//! lost, and leaves the decision about a bad line to the source that knows its columns.

/// A field problem on one line; becomes a `quarantine` row.
#[derive(Debug, Clone, PartialEq)]
pub struct RowError {
    pub field: String,
    pub message: String,
}

impl RowError {
    pub fn new(field: &str, message: impl Into<String>) -> Self {
        RowError { field: field.to_string(), message: message.into() }
    }
}

/// One data line of a file.
#[derive(Debug, Clone)]
pub struct RawLine {
    pub line: usize,
    /// The line as it stood in the file (lossily decoded), for `quarantine.raw`.
    pub raw: String,
    fields: csv::ByteRecord,
}

/// A parsed file: its header and its data lines.
#[derive(Debug)]
pub struct Table {
    pub header: Vec<String>,
    pub lines: Vec<RawLine>,
}

/// Why a whole file could not be read as a table; every data line still gets quarantined.
#[derive(Debug)]
pub struct FileError {
    pub line: usize,
    pub field: String,
    pub message: String,
    pub lines: Vec<RawLine>,
}

impl Table {
    /// Reads `bytes` with `delimiter`. Fails only when there is no header at all.
    pub fn read(bytes: &[u8], delimiter: u8) -> Result<Table, FileError> {
        let body = bytes.strip_prefix(b"\xEF\xBB\xBF".as_slice()).unwrap_or(bytes);
        if body.iter().all(|b| b.is_ascii_whitespace()) {
            return Err(FileError {
                line: 1,
                field: "<file>".into(),
                message: "empty file: no header and no rows".into(),
                lines: vec![],
            });
        }
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .has_headers(false)
            .flexible(true)
            .from_reader(body);
        let mut records = Vec::new();
        let mut record = csv::ByteRecord::new();
        // Line numbers are counted here from byte offsets: the csv crate's own count lags
        // behind on CRLF files.
        let mut lines = LineCounter::default();
        loop {
            let start = first_content_byte(body, reader.position().byte() as usize);
            match reader.read_byte_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {
                    let end = (reader.position().byte() as usize).clamp(start, body.len());
                    let raw = String::from_utf8_lossy(&body[start..end]).trim_end_matches(['\r', '\n']).to_string();
                    records.push(RawLine { line: lines.line_at(body, start), raw, fields: record.clone() });
                }
                Err(_) => {
                    // An unterminated quote runs to end of file: keep what is left as one bad line.
                    let raw = String::from_utf8_lossy(&body[start..]).to_string();
                    records.push(RawLine { line: lines.line_at(body, start), raw, fields: csv::ByteRecord::new() });
                    break;
                }
            }
        }
        let mut lines = records.into_iter();
        let head = lines.next().expect("non-empty body has a first record");
        let header: Vec<String> = head
            .fields
            .iter()
            .map(|f| String::from_utf8_lossy(f).trim().to_string())
            .collect();
        // Blank lines carry nothing: skip them rather than quarantine them.
        let lines = lines.filter(|l| !(l.fields.len() <= 1 && l.raw.trim().is_empty())).collect();
        Ok(Table { header, lines })
    }

    /// Column index by header name, case-insensitive (the last of repeated names). Called
    /// for every field of every line: a scan of a dozen names allocates nothing.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.header.iter().rposition(|h| h.eq_ignore_ascii_case(name))
    }

    /// Fails the whole file when a required column is absent, hinting at a wrong delimiter.
    pub fn require(self, columns: &[&str], delimiter: u8) -> Result<Table, FileError> {
        if let Some(missing) = columns.iter().find(|c| self.column(c).is_none()) {
            let mut message = format!("missing required column '{missing}'");
            if self.header.len() == 1 {
                message.push_str(&format!(
                    " (the header has a single column '{}': is the delimiter {:?}?)",
                    self.header[0], delimiter as char
                ));
            }
            return Err(FileError { line: 1, field: missing.to_string(), message, lines: self.lines });
        }
        Ok(self)
    }
}

/// Skips the line ends the reader leaves before the next record.
fn first_content_byte(body: &[u8], mut at: usize) -> usize {
    while at < body.len() && matches!(body[at], b'\r' | b'\n') {
        at += 1;
    }
    at
}

/// 1-based line of increasing byte offsets, counted incrementally.
#[derive(Default)]
struct LineCounter {
    offset: usize,
    newlines: usize,
}

impl LineCounter {
    fn line_at(&mut self, body: &[u8], at: usize) -> usize {
        let at = at.min(body.len());
        self.newlines += body[self.offset.min(at)..at].iter().filter(|b| **b == b'\n').count();
        self.offset = at;
        self.newlines + 1
    }
}

impl RawLine {
    /// Checks the line has as many fields as the header (a truncated line has fewer).
    pub fn check_width(&self, table: &Table) -> Result<(), RowError> {
        if self.fields.len() < table.header.len() {
            return Err(RowError::new(
                "<line>",
                format!(
                    "{} fields where the header has {} (truncated line?)",
                    self.fields.len(),
                    table.header.len()
                ),
            ));
        }
        if self.fields.len() > table.header.len() {
            return Err(RowError::new(
                "<line>",
                format!(
                    "{} fields where the header has {} (unquoted delimiter in a value?)",
                    self.fields.len(),
                    table.header.len()
                ),
            ));
        }
        Ok(())
    }

    /// The trimmed text of a column; `None` when the file has no such column or the cell is
    /// empty. Bytes that are not UTF-8 (a Latin-1 export) are an error for the columns we use.
    pub fn text<'a>(&'a self, table: &Table, column: &str) -> Result<Option<&'a str>, RowError> {
        let Some(i) = table.column(column) else { return Ok(None) };
        let bytes = self.fields.get(i).unwrap_or_default();
        let text = std::str::from_utf8(bytes).map_err(|e| {
            RowError::new(
                column,
                format!("byte 0x{:02X} is not UTF-8 (is the file Latin-1?)", bytes[e.valid_up_to()]),
            )
        })?;
        let text = text.trim();
        Ok(if text.is_empty() { None } else { Some(text) })
    }

    pub fn required<'a>(&'a self, table: &Table, column: &str) -> Result<&'a str, RowError> {
        self.text(table, column)?.ok_or_else(|| RowError::new(column, "empty value"))
    }

    /// A whole-number quantity. `Not stocked` (Shopify) and empty cells are `None` — the
    /// system does not report the bucket there, which is not zero.
    pub fn quantity(&self, table: &Table, column: &str, allow_negative: bool) -> Result<Option<i64>, RowError> {
        let Some(text) = self.text(table, column)? else { return Ok(None) };
        if text.eq_ignore_ascii_case("not stocked") {
            return Ok(None);
        }
        let value = parse_whole(text).ok_or_else(|| RowError::new(column, format!("'{text}' is not a whole number")))?;
        if value < 0 && !allow_negative {
            return Err(RowError::new(column, format!("negative quantity {value}")));
        }
        Ok(Some(value))
    }
}

/// Parses `12`, `+12`, `-3`, `1,234` (thousands separator) or `12.0`; rejects fractions.
pub fn parse_whole(text: &str) -> Option<i64> {
    let cleaned: String = text.chars().filter(|c| *c != ',' && *c != '_').collect();
    if let Ok(v) = cleaned.parse::<i64>() {
        return Some(v);
    }
    let f: f64 = cleaned.parse().ok()?;
    (f.fract() == 0.0 && f.is_finite() && f.abs() < 1e15).then_some(f as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bom_crlf_and_quoted_delimiters() {
        let t = Table::read(b"\xEF\xBB\xBFsku,Title,qty\r\nA,\"Tee, red\",5\r\nB,x,7\r\n", b',').unwrap();
        assert_eq!(t.header, vec!["sku", "Title", "qty"]);
        assert_eq!(t.lines.len(), 2);
        assert_eq!(t.lines[0].line, 2);
        assert_eq!(t.lines[0].text(&t, "title").unwrap(), Some("Tee, red"));
        assert_eq!(t.lines[1].quantity(&t, "QTY", false).unwrap(), Some(7));
        assert_eq!(t.lines[1].raw, "B,x,7");
    }

    #[test]
    fn line_numbers_count_blank_lines_and_quoted_newlines() {
        let t = Table::read(b"sku,note\r\nA,\"two\nlines\"\r\n\r\nB,x\r\n", b',').unwrap();
        assert_eq!(t.lines.iter().map(|l| l.line).collect::<Vec<_>>(), vec![2, 5]);
    }

    #[test]
    fn not_stocked_is_null_and_negative_is_an_error() {
        let t = Table::read(b"sku\tqty\nA\tNot stocked\nB\t-3\nC\t2.5\n", b'\t').unwrap();
        assert_eq!(t.lines[0].quantity(&t, "qty", false).unwrap(), None);
        let e = t.lines[1].quantity(&t, "qty", false).unwrap_err();
        assert_eq!(e, RowError::new("qty", "negative quantity -3"));
        assert_eq!(t.lines[1].quantity(&t, "qty", true).unwrap(), Some(-3));
        assert!(t.lines[2].quantity(&t, "qty", false).unwrap_err().message.contains("whole number"));
    }

    #[test]
    fn wrong_delimiter_is_named() {
        let t = Table::read(b"sku;qty\nA;1\n", b',').unwrap();
        let e = t.require(&["sku"], b',').unwrap_err();
        assert!(e.message.contains("is the delimiter ','"), "{}", e.message);
        assert_eq!(e.lines.len(), 1);
    }

    #[test]
    fn latin1_and_truncation_are_row_errors() {
        let t = Table::read(b"sku,title,qty\nCAF\xC9,x,1\nA,b\n", b',').unwrap();
        assert!(t.lines[0].text(&t, "sku").unwrap_err().message.contains("0xC9"));
        assert!(t.lines[1].check_width(&t).unwrap_err().message.contains("truncated"));
    }

    #[test]
    fn empty_file_is_a_file_error() {
        assert!(Table::read(b"", b',').unwrap_err().message.contains("empty file"));
        assert!(Table::read(b"\xEF\xBB\xBF\r\n", b',').is_err());
    }
}
