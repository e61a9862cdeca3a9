//! `stocktake check`: the daily sync check a person reads in a terminal. Exit 1 when any of
//! the top SKUs is out beyond tolerance, unexplained; 0 when clean.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::error::{Error, Result};
use crate::warehouse::{self, Warehouse};

const DAILY_SYNC: &str = include_str!("../sql/checks/daily_sync.sql");

/// The rendered table and how many SKU-locations need a look.
pub struct SyncCheck {
    pub text: String,
    pub flagged: usize,
}

/// One SKU-location on the newest day: the true number and every system's.
struct Line {
    rank: i64,
    sku: String,
    location: String,
    authority: String,
    true_qty: Option<i64>,
    /// system → (qty, delta, discrepancy, explained)
    systems: BTreeMap<String, (Option<i64>, Option<i64>, bool, bool)>,
}

pub async fn daily_sync(warehouse: &Warehouse, top: usize) -> Result<SyncCheck> {
    if warehouse.load("variances").await?.is_none() {
        return Err(Error::Usage(format!("the warehouse at {} has no variances yet: run the pipeline first", warehouse.root())));
    }
    let ctx = warehouse.session(&["variances", "movements", "skus", "thresholds"]).await?;
    let sql = DAILY_SYNC.replace(":top_n", &top.to_string());
    let batches = warehouse::collect(&ctx, "check daily_sync", &sql).await?;
    let mut lines: Vec<Line> = vec![];
    let mut systems = BTreeSet::new();
    let (mut day, mut top_found) = (String::new(), BTreeSet::new());
    for b in &batches {
        let rank = warehouse::integers(b, 0)?;
        let sku = warehouse::strings(b, 1)?;
        let location = warehouse::strings(b, 2)?;
        let authority = warehouse::strings(b, 3)?;
        let true_qty = warehouse::integers(b, 4)?;
        let system = warehouse::strings(b, 5)?;
        let qty = warehouse::integers(b, 6)?;
        let delta = warehouse::integers(b, 7)?;
        let discrepancy = warehouse::strings(b, 8)?;
        let explained = warehouse::strings(b, 9)?;
        let dates = warehouse::strings(b, 11)?;
        for i in 0..b.num_rows() {
            let (sku_i, location_i) = (sku[i].clone().unwrap_or_default(), location[i].clone().unwrap_or_default());
            top_found.insert(sku_i.clone());
            day = dates[i].clone().unwrap_or_default();
            let system_i = system[i].clone().unwrap_or_default();
            systems.insert(system_i.clone());
            if lines.last().is_none_or(|l| l.sku != sku_i || l.location != location_i) {
                lines.push(Line {
                    rank: rank[i].unwrap_or(0),
                    sku: sku_i,
                    location: location_i,
                    authority: authority[i].clone().unwrap_or_default(),
                    true_qty: true_qty[i],
                    systems: BTreeMap::new(),
                });
            }
            let flagged = discrepancy[i].as_deref() == Some("true");
            lines.last_mut().expect("pushed").systems.insert(system_i, (qty[i], delta[i], flagged, explained[i].is_some()));
        }
    }
    let flagged = lines.iter().filter(|l| l.systems.values().any(|s| s.2)).count();
    Ok(SyncCheck { text: render(&lines, &systems, &day, top, top_found.len(), flagged), flagged })
}

fn render(lines: &[Line], systems: &BTreeSet<String>, day: &str, top: usize, skus: usize, flagged: usize) -> String {
    let mut header = vec!["#".to_string(), "sku".into(), "location".into(), "true (system)".into()];
    header.extend(systems.iter().cloned());
    header.push("status".into());
    let mut table = vec![header];
    for l in lines {
        let mut row = vec![l.rank.to_string(), l.sku.clone(), l.location.clone(), format!("{} ({})", show(l.true_qty), l.authority)];
        for s in systems {
            row.push(match l.systems.get(s) {
                None => "·".into(),
                Some((qty, Some(0), _, _)) => show(*qty),
                Some((qty, delta, discrepancy, explained)) => {
                    let mark = if *discrepancy { " !" } else if *explained { " ~" } else { "" };
                    format!("{} ({:+}){mark}", show(*qty), delta.unwrap_or(0))
                }
            });
        }
        row.push(if l.systems.values().any(|s| s.2) { "FLAGGED".into() } else { "ok".into() });
        table.push(row);
    }
    let widths: Vec<usize> = (0..table[0].len()).map(|c| table.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    let mut out = format!("daily sync check, {day}: top {top} SKUs by revenue ({skus} with stock records), every system against the true count\n\n");
    for (i, row) in table.iter().enumerate() {
        let cells: Vec<String> = row.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        let _ = writeln!(out, "{}", cells.join("  ").trim_end());
        if i == 0 {
            let _ = writeln!(out, "{}", widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>().join("  "));
        }
    }
    let _ = writeln!(
        out,
        "\n(+n) system minus true count · ! beyond tolerance, unexplained · ~ explained (in transit, receiving, lag) · · not reported"
    );
    let _ = writeln!(out, "{flagged} of {} SKU-locations flagged", lines.len());
    out
}

fn show(qty: Option<i64>) -> String {
    qty.map(|q| q.to_string()).unwrap_or_else(|| "∅".into())
}
