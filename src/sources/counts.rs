//! Physical counts (cycle counts, blind count sheets filled in on the floor).

use serde::Deserialize;

use super::{CountRecord, Record, RowError, RowErrorAt, Sink, delimiter_byte, parse_date, parse_table};

/// Settings for a counts export.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CountsConfig {
    /// Id recorded for the counting source (e.g. `counts`).
    pub name: String,
    /// Folder or URL the count files are dropped in; the first `YYYY-MM-DD` in a file's
    /// path is its load date.
    pub landing: String,
    /// Field delimiter (default `","`).
    #[serde(default = "super::default_comma")]
    pub delimiter: String,
    /// chrono format of the date column when it is not `YYYY-MM-DD`.
    #[serde(default)]
    pub date_format: Option<String>,
    /// Header names; each defaults to the canonical name shown.
    #[serde(default)]
    pub columns: CountColumns,
}

/// Header names of a counts export.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CountColumns {
    pub date: String,
    pub location: String,
    pub sku: String,
    pub counted_qty: String,
    /// `yes`/`no` (also `true`/`false`, `1`/`0`); a missing column means blind.
    pub blind: String,
}

impl Default for CountColumns {
    fn default() -> Self {
        CountColumns {
            date: "date".into(),
            location: "location".into(),
            sku: "sku".into(),
            counted_qty: "counted_qty".into(),
            blind: "blind".into(),
        }
    }
}

impl CountsConfig {
    pub fn parse<'a>(&self, bytes: &'a [u8], sink: Sink<'_, 'a>) -> Option<RowErrorAt> {
        let c = &self.columns;
        let required = [c.date.as_str(), c.location.as_str(), c.sku.as_str(), c.counted_qty.as_str()];
        parse_table(bytes, delimiter_byte(&self.delimiter), &required, |t, l| {
            let text = l.required(t, &c.date)?;
            let count_date = parse_date(text, self.date_format.as_deref())
                .ok_or_else(|| RowError::new(&c.date, format!("'{text}' is not a date")))?;
            let blind = match l.text(t, &c.blind)?.map(str::to_ascii_lowercase).as_deref() {
                None | Some("yes" | "y" | "true" | "1") => true,
                Some("no" | "n" | "false" | "0") => false,
                Some(other) => return Err(RowError::new(&c.blind, format!("'{other}' is not yes or no"))),
            };
            Ok(Record::Count(CountRecord {
                count_date,
                location: l.required(t, &c.location)?.to_string(),
                external_id: l.required(t, &c.sku)?.to_string(),
                counted_qty: l.quantity(t, &c.counted_qty, false)?.ok_or_else(|| RowError::new(&c.counted_qty, "empty value"))?,
                blind,
            }))
        }, sink)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::FileParse;

    #[test]
    fn counts_with_blind_flag() {
        let cfg: CountsConfig = toml::from_str("name = \"counts\"\nlanding = \"x\"").unwrap();
        let parsed = FileParse::collect(|sink| cfg.parse(b"date,location,sku,counted_qty,blind\n2026-07-03,STORE-NYC,TEE-1,17,no\n2026-07-03,STORE-NYC,TEE-2,,yes\n", sink));
        let Ok(Record::Count(c)) = &parsed.lines[0].result else { panic!() };
        assert_eq!((c.counted_qty, c.blind, c.count_date.to_string().as_str()), (17, false, "2026-07-03"));
        assert_eq!(parsed.lines[1].result.clone().unwrap_err().field, "counted_qty");
    }
}
