//! Amazon Seller Central "Manage FBA Inventory" report
//! (`GET_FBA_MYI_UNSUPPRESSED_INVENTORY_DATA`), tab-separated, one row per seller SKU.

use serde::Deserialize;

use super::{Buckets, Record, RowError, RowErrorAt, Sink, SnapshotRecord, parse_table};

/// Settings for Seller Central FBA inventory reports.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmazonFbaConfig {
    /// System id (e.g. `seller_central`).
    pub name: String,
    /// Folder or URL the reports are dropped in; the snapshot date is the first
    /// `YYYY-MM-DD` in each file's path below it.
    pub landing: String,
    /// The FBA location every row belongs to (the report has no location column). When
    /// omitted, the file name without extension is the location id, so one report per
    /// marketplace can be dropped as `FBA-US.txt`, `FBA-UK.txt`.
    #[serde(default)]
    pub location: Option<String>,
}

impl AmazonFbaConfig {
    pub fn parse<'a>(&self, bytes: &'a [u8], file_stem: &str, sink: Sink<'_, 'a>) -> Option<RowErrorAt> {
        let location = self.location.clone().unwrap_or_else(|| file_stem.to_string());
        parse_table(bytes, b'\t', &["sku", "afn-fulfillable-quantity"], |t, l| {
            let q = |c: &str| l.quantity(t, c, false);
            let fulfillable = q("afn-fulfillable-quantity")?;
            let unsellable = q("afn-unsellable-quantity")?;
            let reserved = q("afn-reserved-quantity")?;
            let working = q("afn-inbound-working-quantity")?;
            let shipped = q("afn-inbound-shipped-quantity")?;
            let receiving = q("afn-inbound-receiving-quantity")?;
            // warehouse = fulfillable + unsellable + reserved, when the report omits it.
            let on_hand = match q("afn-warehouse-quantity")? {
                Some(v) => Some(v),
                None => sum(&[fulfillable, unsellable, reserved]),
            };
            let buckets = Buckets {
                on_hand,
                available: fulfillable,
                reserved,
                unsellable,
                // Working shipments are not yet shipped; they are still counted as inbound
                // (Amazon's own total does), but only shipped units are in transit.
                inbound: sum(&[working, shipped, receiving]),
                in_transit: shipped,
                ..Buckets::default()
            };
            Ok::<_, RowError>(Record::Snapshot(SnapshotRecord {
                location: location.clone(),
                external_id: l.required(t, "sku")?.to_string(),
                captured_at: None,
                buckets,
            }))
        }, sink)
    }
}

/// Sum of the reported parts; `None` when none is reported.
fn sum(parts: &[Option<i64>]) -> Option<i64> {
    parts.iter().flatten().copied().reduce(|a, b| a + b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::FileParse;

    const REPORT: &str = "sku\tfnsku\tasin\tproduct-name\tcondition\tyour-price\tmfn-listing-exists\tmfn-fulfillable-quantity\tafn-listing-exists\tafn-warehouse-quantity\tafn-fulfillable-quantity\tafn-unsellable-quantity\tafn-reserved-quantity\tafn-total-quantity\tper-unit-volume\tafn-inbound-working-quantity\tafn-inbound-shipped-quantity\tafn-inbound-receiving-quantity\n\
AMZ-TEE-M\tX001\tB0001\tTee, \"M\"\tNew\t19.99\tNo\t\tYes\t14\t10\t1\t3\t26\t0.1\t5\t4\t3\n";

    #[test]
    fn maps_the_documented_columns() {
        let cfg = AmazonFbaConfig { name: "seller_central".into(), landing: "x".into(), location: None };
        let parsed = FileParse::collect(|sink| cfg.parse(REPORT.as_bytes(), "FBA-US", sink));
        assert!(parsed.file_error.is_none());
        let Ok(Record::Snapshot(s)) = &parsed.lines[0].result else { panic!("{:?}", parsed.lines[0]) };
        assert_eq!(s.location, "FBA-US");
        assert_eq!(s.external_id, "AMZ-TEE-M");
        assert_eq!(s.buckets.on_hand, Some(14));
        assert_eq!(s.buckets.available, Some(10));
        assert_eq!(s.buckets.reserved, Some(3));
        assert_eq!(s.buckets.unsellable, Some(1));
        assert_eq!(s.buckets.inbound, Some(12));
        assert_eq!(s.buckets.in_transit, Some(4));
        assert_eq!(s.buckets.committed, None);
    }

    #[test]
    fn warehouse_quantity_is_derived_when_absent() {
        let cfg = AmazonFbaConfig { name: "sc".into(), landing: "x".into(), location: Some("FBA-UK".into()) };
        let parsed = FileParse::collect(|sink| cfg.parse(b"sku\tafn-fulfillable-quantity\tafn-unsellable-quantity\tafn-reserved-quantity\nA\t5\t1\t2\n", "ignored", sink));
        let Ok(Record::Snapshot(s)) = &parsed.lines[0].result else { panic!() };
        assert_eq!((s.location.as_str(), s.buckets.on_hand, s.buckets.inbound), ("FBA-UK", Some(8), None));
    }
}
