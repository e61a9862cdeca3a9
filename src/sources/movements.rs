//! Stock movements ledger: sale, receipt, return, return_restock, transfer_out,
//! transfer_in, adjustment — one signed quantity per line.

use serde::Deserialize;

use super::{MovementRecord, Record, RowError, RowErrorAt, Sink, delimiter_byte, parse_table, parse_timestamp};

pub const KINDS: [&str; 7] =
    ["sale", "receipt", "return", "return_restock", "transfer_out", "transfer_in", "adjustment"];

/// Settings for a movements export.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MovementsConfig {
    /// System whose ledger this is (e.g. `erp`).
    pub name: String,
    /// Folder or URL the files are dropped in; the first `YYYY-MM-DD` in a file's path is
    /// its load date (re-dropping a day's file replaces that day's rows).
    pub landing: String,
    /// Field delimiter (default `","`).
    #[serde(default = "super::default_comma")]
    pub delimiter: String,
    /// chrono format of the timestamp column when it is not RFC 3339 or `YYYY-MM-DD HH:MM:SS`.
    #[serde(default)]
    pub timestamp_format: Option<String>,
    /// Header names; each defaults to the canonical name shown.
    #[serde(default)]
    pub columns: MovementColumns,
}

/// Header names of a movements export.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MovementColumns {
    pub timestamp: String,
    pub location: String,
    pub sku: String,
    pub kind: String,
    pub qty: String,
    pub reason_code: String,
    pub reference: String,
    /// For transfers, the other location (destination of a transfer_out, source of a transfer_in).
    pub counterparty: String,
}

impl Default for MovementColumns {
    fn default() -> Self {
        MovementColumns {
            timestamp: "timestamp".into(),
            location: "location".into(),
            sku: "sku".into(),
            kind: "kind".into(),
            qty: "qty".into(),
            reason_code: "reason_code".into(),
            reference: "reference".into(),
            counterparty: "counterparty".into(),
        }
    }
}

impl MovementsConfig {
    pub fn parse<'a>(&self, bytes: &'a [u8], sink: Sink<'_, 'a>) -> Option<RowErrorAt> {
        let c = &self.columns;
        let required = [c.timestamp.as_str(), c.location.as_str(), c.sku.as_str(), c.kind.as_str(), c.qty.as_str()];
        parse_table(bytes, delimiter_byte(&self.delimiter), &required, |t, l| {
            let stamp = l.required(t, &c.timestamp)?;
            let event_at = parse_timestamp(stamp, self.timestamp_format.as_deref())
                .ok_or_else(|| RowError::new(&c.timestamp, format!("'{stamp}' is not a timestamp")))?;
            let kind = l.required(t, &c.kind)?.to_ascii_lowercase();
            if !KINDS.contains(&kind.as_str()) {
                return Err(RowError::new(&c.kind, format!("unknown movement kind '{kind}' (expected one of {})", KINDS.join(", "))));
            }
            let qty = l.quantity(t, &c.qty, true)?.ok_or_else(|| RowError::new(&c.qty, "empty value"))?;
            check_sign(&kind, qty).map_err(|m| RowError::new(&c.qty, m))?;
            let optional = |column: &str| l.text(t, column).map(|v| v.map(str::to_string));
            Ok(Record::Movement(MovementRecord {
                event_at,
                location: l.required(t, &c.location)?.to_string(),
                external_id: l.required(t, &c.sku)?.to_string(),
                kind,
                qty,
                reason_code: optional(&c.reason_code)?,
                reference: optional(&c.reference)?,
                counterparty: optional(&c.counterparty)?,
            }))
        }, sink)
    }
}

/// Sales and transfers out take stock away; receipts, returns and transfers in bring it.
fn check_sign(kind: &str, qty: i64) -> Result<(), String> {
    let outgoing = matches!(kind, "sale" | "transfer_out");
    let incoming = matches!(kind, "receipt" | "return" | "return_restock" | "transfer_in");
    if (outgoing && qty > 0) || (incoming && qty < 0) {
        return Err(format!("quantity {qty} has the wrong sign for a {kind}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::FileParse;

    fn config() -> MovementsConfig {
        toml::from_str("name = \"erp\"\nlanding = \"x\"").unwrap()
    }

    #[test]
    fn parses_a_ledger_line() {
        let parsed = FileParse::collect(|sink| config().parse(b"timestamp,location,sku,kind,qty,reason_code,reference,counterparty\n2026-07-01T09:30:00Z,DC-NJ,TEE-1,transfer_out,-12,,T-9,STORE-NYC\n", sink));
        let Ok(Record::Movement(m)) = &parsed.lines[0].result else { panic!("{parsed:?}") };
        assert_eq!((m.kind.as_str(), m.qty, m.reason_code.as_deref()), ("transfer_out", -12, None));
        assert_eq!(m.counterparty.as_deref(), Some("STORE-NYC"));
    }

    #[test]
    fn unknown_kind_and_wrong_sign_are_errors() {
        let parsed = FileParse::collect(|sink| config().parse(b"timestamp,location,sku,kind,qty\n2026-07-01,DC,A,theft,-1\n2026-07-01,DC,A,sale,3\n2026-07-01,DC,A,adjustment,3\n", sink));
        assert!(parsed.lines[0].result.clone().unwrap_err().message.contains("unknown movement kind"));
        assert_eq!(parsed.lines[1].result.clone().unwrap_err().field, "qty");
        assert!(parsed.lines[2].result.is_ok());
    }
}
