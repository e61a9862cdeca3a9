//! Shopify inventory CSV export ("All quantity types"): one row per variant × location.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{Buckets, Record, RowError, RowErrorAt, Sink, SnapshotRecord, map_location, parse_table};

/// Settings for Shopify's inventory CSV export.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShopifyConfig {
    /// System id (e.g. `shopify`).
    pub name: String,
    /// Folder or URL the exports are dropped in; the snapshot date is the first
    /// `YYYY-MM-DD` in each file's path below it.
    pub landing: String,
    /// Shopify location names → location ids, e.g. `"Reno Fulfillment" = "3PL-RNO"`.
    /// A name not listed is taken as the id itself.
    #[serde(default)]
    pub locations: BTreeMap<String, String>,
}

impl ShopifyConfig {
    pub fn parse<'a>(&self, bytes: &'a [u8], sink: Sink<'_, 'a>) -> Option<RowErrorAt> {
        parse_table(bytes, b',', &["Location"], |t, l| {
            if t.column("SKU").is_none() && t.column("Handle").is_none() {
                return Err(RowError::new("SKU", "neither SKU nor Handle column present"));
            }
            let q = |c: &str| l.quantity(t, c, false);
            let buckets = Buckets {
                on_hand: q("On hand")?,
                // Shopify lets available go below zero when a variant is oversold.
                available: l.quantity(t, "Available", true)?,
                committed: q("Committed")?,
                inbound: q("Incoming")?,
                // Unavailable = damaged + quality control + safety stock + reserved.
                unsellable: q("Unavailable")?,
                ..Buckets::default()
            };
            Ok(Record::Snapshot(SnapshotRecord {
                location: map_location(&self.locations, l.required(t, "Location")?),
                external_id: external_id(t, l)?,
                captured_at: None,
                buckets,
            }))
        }, sink)
    }
}

/// The variant's SKU; a variant without one is named by its handle and option values, so
/// that it lands in `unmapped_skus` recognisably.
fn external_id(t: &super::Table, l: &super::RawLine) -> Result<String, RowError> {
    if let Some(sku) = l.text(t, "SKU")? {
        return Ok(sku.to_string());
    }
    let mut id = l.required(t, "Handle")?.to_string();
    for option in ["Option1 Value", "Option2 Value", "Option3 Value"] {
        if let Some(v) = l.text(t, option)? {
            id.push('/');
            id.push_str(v);
        }
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::FileParse;

    const EXPORT: &str = "Handle,Title,Option1 Name,Option1 Value,Option2 Name,Option2 Value,Option3 Name,Option3 Value,SKU,HS Code,COO,Location,Incoming,Unavailable,Committed,Available,On hand\n\
classic-tee,\"Classic Tee, cotton\",Size,M,Colour,Black,,,TEE-001-M-BLK,,,NYC Store,0,1,2,9,12\n\
classic-tee,Classic Tee,Size,L,Colour,Black,,,,,,NYC Store,Not stocked,Not stocked,Not stocked,Not stocked,Not stocked\n\
classic-tee,Classic Tee,Size,S,Colour,Black,,,TEE-001-S-BLK,,,NYC Store,0,0,3,-2,1\n";

    fn config() -> ShopifyConfig {
        ShopifyConfig {
            name: "shopify".into(),
            landing: "x".into(),
            locations: [("NYC Store".to_string(), "STORE-NYC".to_string())].into(),
        }
    }

    #[test]
    fn all_quantity_types_with_not_stocked_as_null() {
        let parsed = FileParse::collect(|sink| config().parse(EXPORT.as_bytes(), sink));
        let rows: Vec<_> = parsed.lines.iter().map(|l| l.result.clone().unwrap()).collect();
        let Record::Snapshot(a) = &rows[0] else { panic!() };
        assert_eq!(a.location, "STORE-NYC");
        assert_eq!((a.buckets.on_hand, a.buckets.available, a.buckets.committed), (Some(12), Some(9), Some(2)));
        let Record::Snapshot(b) = &rows[1] else { panic!() };
        assert_eq!(b.external_id, "classic-tee/L/Black");
        assert_eq!(b.buckets, Buckets::default());
        let Record::Snapshot(c) = &rows[2] else { panic!() };
        assert_eq!(c.buckets.available, Some(-2));
    }

    #[test]
    fn only_available_mode_leaves_other_buckets_null() {
        let parsed = FileParse::collect(|sink| config().parse(b"Handle,SKU,Location,Available\nmug,MUG-1,NYC Store,4\n", sink));
        let Ok(Record::Snapshot(s)) = &parsed.lines[0].result else { panic!() };
        assert_eq!((s.buckets.available, s.buckets.on_hand), (Some(4), None));
    }
}
