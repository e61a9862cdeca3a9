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

/// One data line of a file. Lines are read one at a time into the same buffers: a day's
/// exports are hundreds of thousands of lines, and holding them all at once cost more (in
/// page faults and copies) than parsing them.
#[derive(Debug, Clone)]
pub struct RawLine<'a> {
    pub line: usize,
    /// The line's bytes as they stood in the file, line end excluded.
    bytes: &'a [u8],
    fields: csv::ByteRecord,
}

/// A file's header; `Lines` reads the data lines after it.
#[derive(Debug)]
pub struct Table {
    pub header: Vec<String>,
}

/// Why a whole file could not be read as a table; the source still quarantines every line.
#[derive(Debug)]
pub struct FileError {
    pub line: usize,
    pub field: String,
    pub message: String,
}

/// The data lines of a file, in order; blank lines are skipped (they carry nothing).
pub struct Lines<'a> {
    body: &'a [u8],
    reader: csv::Reader<&'a [u8]>,
    counter: LineCounter,
    current: RawLine<'a>,
    done: bool,
}

impl Table {
    /// Reads the header of `bytes` with `delimiter`. Fails only when there is no header at all.
    pub fn open(bytes: &[u8], delimiter: u8) -> Result<(Table, Lines<'_>), FileError> {
        let body = bytes.strip_prefix(b"\xEF\xBB\xBF".as_slice()).unwrap_or(bytes);
        if body.iter().all(|b| b.is_ascii_whitespace()) {
            return Err(FileError { line: 1, field: "<file>".into(), message: "empty file: no header and no rows".into() });
        }
        let reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .has_headers(false)
            .flexible(true)
            .from_reader(body);
        let current = RawLine { line: 0, bytes: &[], fields: csv::ByteRecord::new() };
        let mut lines = Lines { body, reader, counter: LineCounter::default(), current, done: false };
        let head = lines.read().expect("non-empty body has a first record");
        let header = head.fields.iter().map(|f| String::from_utf8_lossy(f).trim().to_string()).collect();
        Ok((Table { header }, lines))
    }

    /// Column index by header name, case-insensitive (the last of repeated names). Called
    /// for every field of every line: a scan of a dozen names allocates nothing.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.header.iter().rposition(|h| h.eq_ignore_ascii_case(name))
    }

    /// Fails the whole file when a required column is absent, hinting at a wrong delimiter.
    pub fn require(&self, columns: &[&str], delimiter: u8) -> Result<(), FileError> {
        if let Some(missing) = columns.iter().find(|c| self.column(c).is_none()) {
            let mut message = format!("missing required column '{missing}'");
            if self.header.len() == 1 {
                message.push_str(&format!(
                    " (the header has a single column '{}': is the delimiter {:?}?)",
                    self.header[0], delimiter as char
                ));
            }
            return Err(FileError { line: 1, field: missing.to_string(), message });
        }
        Ok(())
    }
}

impl<'a> Lines<'a> {
    /// The next data line, or `None` at the end of the file.
    #[allow(clippy::should_implement_trait)] // each line borrows the reader's buffers: not an Iterator
    pub fn next(&mut self) -> Option<&RawLine<'a>> {
        loop {
            let line = self.read()?;
            // Blank lines carry nothing: skip them rather than quarantine them.
            if !(line.fields.len() <= 1 && line.bytes.iter().all(|b| b.is_ascii_whitespace())) {
                return Some(&self.current);
            }
        }
    }

    /// The next record as it stands, blank or not.
    fn read(&mut self) -> Option<&RawLine<'a>> {
        if self.done {
            return None;
        }
        let body = self.body;
        let start = first_content_byte(body, self.reader.position().byte() as usize);
        // Line numbers are counted here from byte offsets: the csv crate's own count lags
        // behind on CRLF files.
        self.current.line = self.counter.line_at(body, start);
        match self.reader.read_byte_record(&mut self.current.fields) {
            Ok(false) => {
                self.done = true;
                None
            }
            Ok(true) => {
                let end = (self.reader.position().byte() as usize).clamp(start, body.len());
                let mut bytes = &body[start..end];
                while let [rest @ .., b'\r' | b'\n'] = bytes {
                    bytes = rest;
                }
                self.current.bytes = bytes;
                Some(&self.current)
            }
            Err(_) => {
                // An unterminated quote runs to end of file: keep what is left as one bad line.
                self.done = true;
                self.current.bytes = &body[start..];
                self.current.fields.clear();
                Some(&self.current)
            }
        }
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

impl<'a> RawLine<'a> {
    /// The line's bytes as they stood in the file, line end excluded (`ParsedLine::raw`
    /// decodes them for a line quarantined).
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

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
    pub fn text<'s>(&'s self, table: &Table, column: &str) -> Result<Option<&'s str>, RowError> {
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

    pub fn required<'s>(&'s self, table: &Table, column: &str) -> Result<&'s str, RowError> {
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
    // Most cells are plain integers: only the others are cleaned (which allocates).
    if let Ok(v) = text.parse::<i64>() {
        return Some(v);
    }
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

    /// The header and every data line, each line copied out of the reader.
    fn read(bytes: &[u8], delimiter: u8) -> (Table, Vec<RawLine<'_>>) {
        let (table, mut lines) = Table::open(bytes, delimiter).unwrap();
        let mut all = vec![];
        while let Some(line) = lines.next() {
            all.push(line.clone());
        }
        (table, all)
    }

    #[test]
    fn bom_crlf_and_quoted_delimiters() {
        let (t, lines) = read(b"\xEF\xBB\xBFsku,Title,qty\r\nA,\"Tee, red\",5\r\nB,x,7\r\n", b',');
        assert_eq!(t.header, vec!["sku", "Title", "qty"]);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].line, 2);
        assert_eq!(lines[0].text(&t, "title").unwrap(), Some("Tee, red"));
        assert_eq!(lines[1].quantity(&t, "QTY", false).unwrap(), Some(7));
        assert_eq!(String::from_utf8_lossy(lines[1].bytes()), "B,x,7");
    }

    #[test]
    fn line_numbers_count_blank_lines_and_quoted_newlines() {
        let (_, lines) = read(b"sku,note\r\nA,\"two\nlines\"\r\n\r\nB,x\r\n", b',');
        assert_eq!(lines.iter().map(|l| l.line).collect::<Vec<_>>(), vec![2, 5]);
    }

    #[test]
    fn not_stocked_is_null_and_negative_is_an_error() {
        let (t, lines) = read(b"sku\tqty\nA\tNot stocked\nB\t-3\nC\t2.5\n", b'\t');
        assert_eq!(lines[0].quantity(&t, "qty", false).unwrap(), None);
        let e = lines[1].quantity(&t, "qty", false).unwrap_err();
        assert_eq!(e, RowError::new("qty", "negative quantity -3"));
        assert_eq!(lines[1].quantity(&t, "qty", true).unwrap(), Some(-3));
        assert!(lines[2].quantity(&t, "qty", false).unwrap_err().message.contains("whole number"));
    }

    #[test]
    fn wrong_delimiter_is_named() {
        let (t, _) = Table::open(b"sku;qty\nA;1\n", b',').unwrap();
        let e = t.require(&["sku"], b',').unwrap_err();
        assert!(e.message.contains("is the delimiter ','"), "{}", e.message);
    }

    #[test]
    fn latin1_and_truncation_are_row_errors() {
        let (t, lines) = read(b"sku,title,qty\nCAF\xC9,x,1\nA,b\n", b',');
        assert!(lines[0].text(&t, "sku").unwrap_err().message.contains("0xC9"));
        assert!(lines[1].check_width(&t).unwrap_err().message.contains("truncated"));
    }

    #[test]
    fn an_unterminated_quote_keeps_the_rest_of_the_file_as_one_line() {
        let (_, lines) = read(b"sku,qty\nA,1\nB,\"2\nC,3\n", b',');
        assert_eq!(lines.iter().map(|l| (l.line, String::from_utf8_lossy(l.bytes()).into_owned())).collect::<Vec<_>>(), vec![(2, "A,1".into()), (3, "B,\"2\nC,3".into())]);
    }

    #[test]
    fn thousands_separators_and_whole_decimals() {
        assert_eq!(parse_whole("1,234"), Some(1234));
        assert_eq!(parse_whole("+12"), Some(12));
        assert_eq!(parse_whole("12.0"), Some(12));
        assert_eq!(parse_whole("2.5"), None);
    }

    #[test]
    fn empty_file_is_a_file_error() {
        assert!(Table::open(b"", b',').err().unwrap().message.contains("empty file"));
        assert!(Table::open(b"\xEF\xBB\xBF\r\n", b',').is_err());
    }
}
