//! Sources: one module per kind of export. Each turns a file's bytes into canonical
//! records, one per data line, or a `RowError` naming the field at fault.

pub mod amazon_fba;
pub mod counts;
pub mod csv_mapped;
pub mod movements;
pub mod shopify;
pub mod table;

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde::Deserialize;

pub use table::{RawLine, RowError, Table};

/// A system in a pipeline. `kind` picks the export format; `name` is the system id that
/// appears in every table (`pos`, `shopify`, `erp`, …).
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SourceConfig {
    AmazonFbaInventory(amazon_fba::AmazonFbaConfig),
    ShopifyInventoryCsv(shopify::ShopifyConfig),
    Csv(csv_mapped::CsvConfig),
    MovementsCsv(movements::MovementsConfig),
    CountsCsv(counts::CountsConfig),
}

impl SourceConfig {
    pub fn name(&self) -> &str {
        match self {
            SourceConfig::AmazonFbaInventory(c) => &c.name,
            SourceConfig::ShopifyInventoryCsv(c) => &c.name,
            SourceConfig::Csv(c) => &c.name,
            SourceConfig::MovementsCsv(c) => &c.name,
            SourceConfig::CountsCsv(c) => &c.name,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            SourceConfig::AmazonFbaInventory(_) => "amazon_fba_inventory",
            SourceConfig::ShopifyInventoryCsv(_) => "shopify_inventory_csv",
            SourceConfig::Csv(_) => "csv",
            SourceConfig::MovementsCsv(_) => "movements_csv",
            SourceConfig::CountsCsv(_) => "counts_csv",
        }
    }

    /// Folder or URL the system's files are dropped in.
    pub fn landing(&self) -> &str {
        match self {
            SourceConfig::AmazonFbaInventory(c) => &c.landing,
            SourceConfig::ShopifyInventoryCsv(c) => &c.landing,
            SourceConfig::Csv(c) => &c.landing,
            SourceConfig::MovementsCsv(c) => &c.landing,
            SourceConfig::CountsCsv(c) => &c.landing,
        }
    }

    pub fn landing_mut(&mut self) -> &mut String {
        match self {
            SourceConfig::AmazonFbaInventory(c) => &mut c.landing,
            SourceConfig::ShopifyInventoryCsv(c) => &mut c.landing,
            SourceConfig::Csv(c) => &mut c.landing,
            SourceConfig::MovementsCsv(c) => &mut c.landing,
            SourceConfig::CountsCsv(c) => &mut c.landing,
        }
    }

    /// Whether the system reports stock levels (as opposed to movements or counts).
    pub fn is_snapshot(&self) -> bool {
        matches!(
            self,
            SourceConfig::AmazonFbaInventory(_) | SourceConfig::ShopifyInventoryCsv(_) | SourceConfig::Csv(_)
        )
    }

    /// Parses one landing file, sending each line's outcome to `sink`; returns the
    /// file-level error, if any. `file_stem` is the file's name without extension.
    pub fn parse<'a>(&self, bytes: &'a [u8], file_stem: &str, sink: Sink<'_, 'a>) -> Option<RowErrorAt> {
        match self {
            SourceConfig::AmazonFbaInventory(c) => c.parse(bytes, file_stem, sink),
            SourceConfig::ShopifyInventoryCsv(c) => c.parse(bytes, sink),
            SourceConfig::Csv(c) => c.parse(bytes, sink),
            SourceConfig::MovementsCsv(c) => c.parse(bytes, sink),
            SourceConfig::CountsCsv(c) => c.parse(bytes, sink),
        }
    }
}

/// The SPEC §3 buckets. `None` means the system does not report the bucket — never zero.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Buckets {
    pub on_hand: Option<i64>,
    pub available: Option<i64>,
    pub committed: Option<i64>,
    pub reserved: Option<i64>,
    pub inbound: Option<i64>,
    pub in_transit: Option<i64>,
    pub unsellable: Option<i64>,
    pub pending_inspection: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotRecord {
    pub location: String,
    pub external_id: String,
    pub captured_at: Option<DateTime<Utc>>,
    pub buckets: Buckets,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MovementRecord {
    pub event_at: DateTime<Utc>,
    pub location: String,
    pub external_id: String,
    pub kind: String,
    pub qty: i64,
    pub reason_code: Option<String>,
    pub reference: Option<String>,
    /// For transfers: the other location.
    pub counterparty: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CountRecord {
    pub count_date: NaiveDate,
    pub location: String,
    pub external_id: String,
    pub counted_qty: i64,
    pub blind: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Snapshot(SnapshotRecord),
    Movement(MovementRecord),
    Count(CountRecord),
}

impl Record {
    pub fn location(&self) -> &str {
        match self {
            Record::Snapshot(r) => &r.location,
            Record::Movement(r) => &r.location,
            Record::Count(r) => &r.location,
        }
    }
    pub fn external_id(&self) -> &str {
        match self {
            Record::Snapshot(r) => &r.external_id,
            Record::Movement(r) => &r.external_id,
            Record::Count(r) => &r.external_id,
        }
    }
}

/// One data line's outcome.
#[derive(Debug, Clone)]
pub struct ParsedLine<'a> {
    pub line: usize,
    /// The line's bytes as they stood in the file, for `quarantine.raw` (see `raw`).
    pub text: &'a [u8],
    pub result: Result<Record, RowError>,
}

impl ParsedLine<'_> {
    /// The line as it stood in the file (lossily decoded): made only for a line quarantined.
    pub fn raw(&self) -> String {
        String::from_utf8_lossy(self.text).into_owned()
    }
}

/// Where a source sends each line's outcome, as soon as the line is read.
pub type Sink<'s, 'a> = &'s mut dyn FnMut(ParsedLine<'a>);

/// A file's outcome, collected (tests; the ingest takes the lines one by one): its lines,
/// and the file-level error if the file as a whole was unusable (every line is then in
/// `lines` as an error, so none is lost).
#[derive(Debug, Default)]
pub struct FileParse<'a> {
    pub lines: Vec<ParsedLine<'a>>,
    pub file_error: Option<RowErrorAt>,
}

impl<'a> FileParse<'a> {
    /// Runs `parse` with a sink that keeps every line.
    pub fn collect(parse: impl FnOnce(Sink<'_, 'a>) -> Option<RowErrorAt>) -> FileParse<'a> {
        let mut lines = vec![];
        let file_error = parse(&mut |line| lines.push(line));
        FileParse { lines, file_error }
    }
}

#[derive(Debug, Clone)]
pub struct RowErrorAt {
    pub line: usize,
    pub error: RowError,
}

/// Reads a delimited file, requires `columns`, and maps each line with `record`, sending
/// each outcome to `sink`. Returns the file-level error, if any (its lines all went to the
/// sink as errors).
pub fn parse_table<'a>(
    bytes: &'a [u8],
    delimiter: u8,
    columns: &[&str],
    record: impl Fn(&Table, &RawLine) -> Result<Record, RowError>,
    sink: Sink<'_, 'a>,
) -> Option<RowErrorAt> {
    let at = |e: table::FileError| RowErrorAt { line: e.line, error: RowError::new(&e.field, e.message) };
    let (table, mut lines) = match Table::open(bytes, delimiter) {
        Ok(opened) => opened,
        Err(e) => return Some(at(e)),
    };
    let file_error = table.require(columns, delimiter).err().map(at);
    while let Some(l) = lines.next() {
        let result = match &file_error {
            Some(e) => Err(e.error.clone()),
            None => l.check_width(&table).and_then(|()| record(&table, l)),
        };
        sink(ParsedLine { line: l.line, text: l.bytes(), result });
    }
    file_error
}

/// Maps an export's location name to a location id; names not in the map are taken as ids.
pub fn map_location(names: &BTreeMap<String, String>, name: &str) -> String {
    names.get(name).cloned().unwrap_or_else(|| name.to_string())
}

/// One-character delimiter from config (`","`, `"\t"`, `";"`, `"|"`).
pub fn delimiter_byte(text: &str) -> u8 {
    match text {
        "\\t" | "\t" | "tab" => b'\t',
        other => other.bytes().next().unwrap_or(b','),
    }
}

pub fn default_comma() -> String {
    ",".to_string()
}

/// Timestamps as exports write them: RFC 3339, `YYYY-MM-DD HH:MM:SS` (UTC) or a bare date.
pub fn parse_timestamp(text: &str, format: Option<&str>) -> Option<DateTime<Utc>> {
    if let Some(format) = format {
        return NaiveDateTime::parse_from_str(text, format)
            .ok()
            .or_else(|| NaiveDate::parse_from_str(text, format).ok().and_then(|d| d.and_hms_opt(0, 0, 0)))
            .map(|t| t.and_utc());
    }
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").ok().map(|t| t.and_utc()))
        .or_else(|| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S").ok().map(|t| t.and_utc()))
        .or_else(|| NaiveDate::parse_from_str(text, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)).map(|t| t.and_utc()))
}

pub fn parse_date(text: &str, format: Option<&str>) -> Option<NaiveDate> {
    parse_timestamp(text, format).map(|t| t.date_naive())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_tag_selects_the_source_and_unknown_fields_fail() {
        let ok: SourceConfig = toml::from_str("kind = \"shopify_inventory_csv\"\nname = \"shopify\"\nlanding = \"x\"").unwrap();
        assert_eq!(ok.kind(), "shopify_inventory_csv");
        let bad = toml::from_str::<SourceConfig>("kind = \"counts_csv\"\nname = \"c\"\nlanding = \"x\"\nlandign = 1");
        assert!(bad.unwrap_err().to_string().contains("landign"));
        let unknown = toml::from_str::<SourceConfig>("kind = \"sap\"\nname = \"c\"\nlanding = \"x\"");
        assert!(unknown.unwrap_err().to_string().contains("sap"));
    }

    #[test]
    fn timestamps_in_common_shapes() {
        let t = parse_timestamp("2026-07-01T10:00:00-04:00", None).unwrap();
        assert_eq!(t.to_rfc3339(), "2026-07-01T14:00:00+00:00");
        assert_eq!(parse_timestamp("2026-07-01 10:00:00", None).unwrap().to_rfc3339(), "2026-07-01T10:00:00+00:00");
        assert_eq!(parse_date("07/31/2026", Some("%m/%d/%Y")).unwrap().to_string(), "2026-07-31");
        assert!(parse_timestamp("yesterday", None).is_none());
    }
}
