//! Any other system's stock export (POS, ERP, WMS, planning tool), read through a column
//! mapping given in the pipeline.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{Buckets, Record, RowError, RowErrorAt, Sink, SnapshotRecord, delimiter_byte, map_location, parse_table, parse_timestamp};

/// Settings for a generic stock export.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsvConfig {
    /// System id (e.g. `pos`, `erp`, `wms`, `planning`).
    pub name: String,
    /// Folder or URL the exports are dropped in; the snapshot date is the first
    /// `YYYY-MM-DD` in each file's path below it.
    pub landing: String,
    /// Field delimiter: `","` (default), `";"`, `"|"` or `"\t"`.
    #[serde(default = "super::default_comma")]
    pub delimiter: String,
    /// chrono format of the `captured_at` column when it is not RFC 3339 or
    /// `YYYY-MM-DD HH:MM:SS`.
    #[serde(default)]
    pub timestamp_format: Option<String>,
    /// Location for every row, for exports that cover one location and have no column for it.
    #[serde(default)]
    pub location: Option<String>,
    /// Location names as the export writes them → location ids.
    #[serde(default)]
    pub locations: BTreeMap<String, String>,
    /// Which header holds which field.
    pub columns: CsvColumns,
}

/// Header names for each canonical field. `sku` is required, and `location` unless the
/// system sets a fixed `location`; a bucket without a column is NULL (not reported).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsvColumns {
    pub sku: String,
    #[serde(default)]
    pub location: Option<String>,
    #[serde(default)]
    pub captured_at: Option<String>,
    #[serde(default)]
    pub on_hand: Option<String>,
    #[serde(default)]
    pub available: Option<String>,
    #[serde(default)]
    pub committed: Option<String>,
    #[serde(default)]
    pub reserved: Option<String>,
    #[serde(default)]
    pub inbound: Option<String>,
    #[serde(default)]
    pub in_transit: Option<String>,
    #[serde(default)]
    pub unsellable: Option<String>,
    #[serde(default)]
    pub pending_inspection: Option<String>,
}

impl CsvConfig {
    pub fn parse<'a>(&self, bytes: &'a [u8], sink: Sink<'_, 'a>) -> Option<RowErrorAt> {
        let c = &self.columns;
        let delimiter = delimiter_byte(&self.delimiter);
        let mut required = vec![c.sku.as_str()];
        if self.location.is_none() {
            required.push(c.location.as_deref().unwrap_or("location"));
        }
        parse_table(bytes, delimiter, &required, |t, l| {
            let q = |column: &Option<String>, allow_negative: bool| match column {
                Some(name) => l.quantity(t, name, allow_negative),
                None => Ok(None),
            };
            let location = match &self.location {
                Some(fixed) => fixed.clone(),
                None => {
                    let column = c.location.as_deref().unwrap_or("location");
                    map_location(&self.locations, l.required(t, column)?)
                }
            };
            let captured_at = match &c.captured_at {
                Some(column) => match l.text(t, column)? {
                    Some(text) => Some(parse_timestamp(text, self.timestamp_format.as_deref()).ok_or_else(
                        || RowError::new(column, format!("'{text}' is not a timestamp")),
                    )?),
                    None => None,
                },
                None => None,
            };
            Ok(Record::Snapshot(SnapshotRecord {
                location,
                external_id: l.required(t, &c.sku)?.to_string(),
                captured_at,
                buckets: Buckets {
                    on_hand: q(&c.on_hand, false)?,
                    available: q(&c.available, true)?,
                    committed: q(&c.committed, false)?,
                    reserved: q(&c.reserved, false)?,
                    inbound: q(&c.inbound, false)?,
                    in_transit: q(&c.in_transit, false)?,
                    unsellable: q(&c.unsellable, false)?,
                    pending_inspection: q(&c.pending_inspection, false)?,
                },
            }))
        }, sink)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::FileParse;

    fn config(delimiter: &str) -> CsvConfig {
        toml::from_str(&format!(
            "name = \"erp\"\nlanding = \"x\"\ndelimiter = \"{delimiter}\"\n\
             [locations]\n\"Main DC\" = \"DC-NJ\"\n\
             [columns]\nsku = \"Item No\"\nlocation = \"Site\"\non_hand = \"On Hand\"\ncommitted = \"Allocated\"\ncaptured_at = \"As Of\""
        ))
        .unwrap()
    }

    #[test]
    fn mapped_columns_and_location_names() {
        let parsed = FileParse::collect(|sink| config(";").parse(b"Site;Item No;On Hand;Allocated;As Of;Extra\nMain DC;100234;1234;7;2026-07-01 23:00:00;z\nMain DC;100235;1.5;0;;z\n", sink));
        let Ok(Record::Snapshot(s)) = &parsed.lines[0].result else { panic!("{:?}", parsed) };
        assert_eq!((s.location.as_str(), s.external_id.as_str()), ("DC-NJ", "100234"));
        assert_eq!(s.buckets.on_hand, Some(1234));
        assert_eq!(s.buckets.committed, Some(7));
        assert_eq!(s.buckets.available, None);
        assert_eq!(s.captured_at.unwrap().to_rfc3339(), "2026-07-01T23:00:00+00:00");
        // A fraction must not silently become a whole number.
        assert_eq!(parsed.lines[1].result.clone().unwrap_err().field, "On Hand");
    }

    #[test]
    fn bad_timestamp_names_the_column() {
        let parsed = FileParse::collect(|sink| config(",").parse(b"Site,Item No,On Hand,As Of\nMain DC,1,2,soon\n", sink));
        let e = parsed.lines[0].result.clone().unwrap_err();
        assert_eq!(e.field, "As Of");
    }
}
