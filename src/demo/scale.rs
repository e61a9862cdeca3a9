//! Scale tiers for benchmarks (`stocktake generate --tier S|M|L`): the demo's mechanics —
//! the seeded generator, long-tail popularity, weekday and season demand, replenishment in
//! case packs, counting noise, fixed offsets, lagging integrations, month-end edits and drift
//! that grows — over many SKUs and locations, in the demo's real export formats.
//!
//! The simulation holds only today's state (and the last few authoritative numbers, for lag)
//! and writes each day's files before it moves on, so memory does not grow with history: L
//! (10× M) is generated the same way as S.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use chrono::{Datelike, NaiveDate};

use super::export::{finish, row, s, writer};
use super::rng::Rng;
use super::simulate::{is_month_end, noise};
use super::world::LocationType;
use crate::error::{Error, Result};

/// A tier's size. Locations carry a window of the catalogue, so SKU-locations stay realistic
/// (a store ranges a few thousand SKUs, not the whole catalogue).
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub skus: usize,
    pub stores: usize,
    pub warehouses: usize,
    pub threepls: usize,
    pub fbas: usize,
    pub days: usize,
    /// SKUs carried by each store, warehouse, 3PL and FBA location.
    pub ranged: [usize; 4],
}

impl Shape {
    pub fn tier(name: &str) -> Result<Shape> {
        match name.to_ascii_uppercase().as_str() {
            "S" => Ok(Shape { skus: 1_000, stores: 2, warehouses: 1, threepls: 1, fbas: 1, days: 90, ranged: [1_000; 4] }),
            "M" => Ok(Shape { skus: 20_000, stores: 30, warehouses: 4, threepls: 3, fbas: 3, days: 365, ranged: [1_200, 3_000, 2_000, 2_000] }),
            "L" => Ok(Shape { skus: 200_000, stores: 300, warehouses: 40, threepls: 30, fbas: 30, days: 365, ranged: [1_200, 3_000, 2_000, 2_000] }),
            other => Err(Error::Usage(format!("unknown tier `{other}`: use S, M or L"))),
        }
    }

    pub fn locations(&self) -> usize {
        self.stores + self.warehouses + self.threepls + self.fbas
    }

    pub fn sku_locations(&self) -> usize {
        self.stores * self.ranged[0] + self.warehouses * self.ranged[1] + self.threepls * self.ranged[2] + self.fbas * self.ranged[3]
    }
}

struct Location {
    id: String,
    kind: LocationType,
    region: &'static str,
    country: &'static str,
    demand: f64,
}

struct Sku {
    sku: String,
    erp_item: String,
    title: String,
    unit_cost: f64,
    price: f64,
    case_pack: i64,
    lead_time: usize,
    weight: f64,
}

/// One SKU at one location: today's physical state.
#[derive(Clone, Default)]
struct Slot {
    location: usize,
    sku: usize,
    on_hand: i64,
    committed: i64,
    on_order: i64,
    arrives: usize,
    /// Authoritative on-hand of the last three days (index 0 = yesterday), for lagging views.
    recent: [i64; 3],
}

#[derive(Clone, Copy)]
enum Fault {
    Offset(i64),
    Lag(usize),
    MonthEnd(i64),
    /// Units lost per week from the fault's start day.
    Drift { start: usize, per_week: f64 },
}

/// Systems that write one file a day for all their locations (Seller Central writes one per
/// FBA location).
const ONE_FILE_SYSTEMS: [&str; 5] = ["pos", "shopify", "erp", "wms", "planning"];
const REGIONS: [(&str, &str); 4] = [("US-East", "US"), ("US-West", "US"), ("UK", "GB"), ("EU", "DE")];

/// Which systems export a location, by its type.
fn systems_at(kind: LocationType) -> &'static [&'static str] {
    match kind {
        LocationType::Store => &["pos", "shopify", "erp", "planning"],
        LocationType::Warehouse => &["erp", "planning"],
        LocationType::ThreePl => &["shopify", "erp", "wms", "planning"],
        LocationType::Fba => &["seller_central", "erp", "planning"],
    }
}

pub struct Generated {
    pub pipeline_path: PathBuf,
    pub files: usize,
    pub snapshot_rows: usize,
    pub sku_locations: usize,
    pub start: NaiveDate,
}

/// Writes a tier's reference files, landing area and pipeline under `dir`.
pub fn generate(shape: &Shape, seed: u64, end: NaiveDate, dir: &Path, warehouse: &str) -> Result<Generated> {
    let mut rng = Rng::new(seed);
    let locations = locations(shape);
    let skus = catalogue(shape, &mut rng);
    let mut slots = ranging(shape, &locations, &skus, &mut rng);
    let faults = faults(&slots, &locations, shape.days, &mut rng);
    let landing = dir.join("landing");
    if landing.exists() {
        std::fs::remove_dir_all(&landing).map_err(|e| Error::io(landing.display(), e))?;
    }
    write_reference(dir, &locations, &skus)?;
    let start = end - chrono::Days::new(shape.days as u64 - 1);
    let (mut files, mut snapshot_rows) = (0, 0);
    let progress = crate::progress::bar("generate", shape.days as u64);
    for d in 0..shape.days {
        let date = start + chrono::Days::new(d as u64);
        let movements = simulate_day(&mut slots, &locations, &skus, d, date, &mut rng);
        let day = Day { date, d, seed, slots: &slots, locations: &locations, skus: &skus, faults: &faults };
        let (f, r) = day.write(&landing, &movements)?;
        files += f;
        snapshot_rows += r;
        for slot in &mut slots {
            slot.recent = [slot.on_hand, slot.recent[0], slot.recent[1]];
        }
        progress.inc(1);
    }
    progress.finish_and_clear();
    let pipeline_path = dir.join("pipeline.toml");
    let text = pipeline_text(dir, warehouse);
    std::fs::write(&pipeline_path, text).map_err(|e| Error::io(pipeline_path.display(), e))?;
    Ok(Generated { pipeline_path, files, snapshot_rows, sku_locations: slots.len(), start })
}

fn locations(shape: &Shape) -> Vec<Location> {
    let mut out = vec![];
    let kinds = [
        (LocationType::Store, shape.stores, "STORE", 1.0),
        (LocationType::Warehouse, shape.warehouses, "DC", 0.0),
        (LocationType::ThreePl, shape.threepls, "3PL", 2.0),
        (LocationType::Fba, shape.fbas, "FBA", 1.6),
    ];
    for (kind, count, prefix, demand) in kinds {
        for n in 0..count {
            let (region, country) = REGIONS[n % REGIONS.len()];
            out.push(Location { id: format!("{prefix}-{:03}", n + 1), kind, region, country, demand });
        }
    }
    out
}

fn catalogue(shape: &Shape, rng: &mut Rng) -> Vec<Sku> {
    (0..shape.skus)
        .map(|i| {
            let cost = 3.0 + rng.uniform() * 40.0;
            let case_pack = [6, 12, 24][rng.below(3)];
            Sku {
                sku: format!("SKU-{:06}", i + 1),
                erp_item: format!("{}", 1_000_000 + i * 7),
                title: format!("Product {}", i + 1),
                unit_cost: (cost * 100.0).round() / 100.0,
                price: (cost * 2.2 * 100.0).round() / 100.0,
                case_pack,
                lead_time: 2 + rng.below(6),
                // Popularity falls off with rank: a long tail, as in the demo.
                weight: 1.5 / (1.0 + rng.uniform() * 60.0).powf(0.9),
            }
        })
        .collect()
}

/// Each location carries a window of the catalogue, starting at a random place.
fn ranging(shape: &Shape, locations: &[Location], skus: &[Sku], rng: &mut Rng) -> Vec<Slot> {
    let mut slots = vec![];
    for (l, loc) in locations.iter().enumerate() {
        let ranged = shape.ranged[loc.kind as usize].min(skus.len());
        let first = rng.below(skus.len());
        for k in 0..ranged {
            let sku = (first + k) % skus.len();
            let demand = skus[sku].weight * loc.demand.max(0.5);
            let on_hand = (demand * 20.0).ceil() as i64 + skus[sku].case_pack;
            slots.push(Slot { location: l, sku, on_hand, recent: [on_hand; 3], ..Default::default() });
        }
    }
    slots
}

/// About one in forty non-authoritative views carries a fault, spread over the four kinds.
fn faults(slots: &[Slot], locations: &[Location], days: usize, rng: &mut Rng) -> HashMap<(usize, &'static str), Fault> {
    let mut out = HashMap::new();
    for (n, slot) in slots.iter().enumerate() {
        let kind = locations[slot.location].kind;
        for &system in systems_at(kind) {
            if system == super::export::authority(kind) || !rng.chance(0.025) {
                continue;
            }
            let fault = match rng.below(4) {
                0 => Fault::Offset([-12, -6, 5, 9, 15][rng.below(5)]),
                1 => Fault::Lag(1 + rng.below(3)),
                2 => Fault::MonthEnd([-8, 6, 10][rng.below(3)]),
                _ => Fault::Drift { start: rng.below(days.max(2) / 2), per_week: 1.0 + rng.uniform() * 3.0 },
            };
            out.insert((n, system), fault);
        }
    }
    out
}

struct Movement {
    slot: usize,
    kind: &'static str,
    qty: i64,
}

/// One day of sales, commitments and receipts; returns the ledger lines.
fn simulate_day(slots: &mut [Slot], locations: &[Location], skus: &[Sku], d: usize, date: NaiveDate, rng: &mut Rng) -> Vec<Movement> {
    let weekday = [1.0, 0.9, 0.9, 1.0, 1.2, 1.5, 1.3][date.weekday().num_days_from_monday() as usize];
    let season = 1.0 + 0.25 * (std::f64::consts::TAU * f64::from(date.ordinal()) / 365.0).sin();
    let mut movements = vec![];
    for (n, slot) in slots.iter_mut().enumerate() {
        let sku = &skus[slot.sku];
        let loc = &locations[slot.location];
        if slot.on_order > 0 && d >= slot.arrives {
            slot.on_hand += slot.on_order;
            movements.push(Movement { slot: n, kind: "receipt", qty: slot.on_order });
            slot.on_order = 0;
        }
        let rate = sku.weight * loc.demand * weekday * season;
        let sold = rng.poisson(rate).min(slot.on_hand);
        if sold > 0 {
            slot.on_hand -= sold;
            movements.push(Movement { slot: n, kind: "sale", qty: -sold });
        }
        slot.committed = rng.poisson(rate * 0.3).min(slot.on_hand);
        // Warehouses ship to the network: their stock turns over at a steady pace.
        let daily = if loc.kind == LocationType::Warehouse { sku.weight * 3.0 } else { rate.max(0.05) };
        if loc.kind == LocationType::Warehouse {
            let shipped = rng.poisson(daily).min(slot.on_hand);
            if shipped > 0 {
                slot.on_hand -= shipped;
                movements.push(Movement { slot: n, kind: "transfer_out", qty: -shipped });
            }
        }
        if slot.on_order == 0 && (slot.on_hand as f64) < daily * (sku.lead_time as f64 + 5.0) {
            let want = (daily * 25.0).ceil() as i64;
            slot.on_order = ((want + sku.case_pack - 1) / sku.case_pack).max(1) * sku.case_pack;
            slot.arrives = d + sku.lead_time;
        }
    }
    movements
}

struct Day<'a> {
    date: NaiveDate,
    d: usize,
    seed: u64,
    slots: &'a [Slot],
    locations: &'a [Location],
    skus: &'a [Sku],
    faults: &'a HashMap<(usize, &'static str), Fault>,
}

impl Day<'_> {
    /// What `system` shows for slot `n` today.
    fn on_hand(&self, system: &'static str, n: usize) -> i64 {
        let slot = &self.slots[n];
        if system == super::export::authority(self.locations[slot.location].kind) {
            return slot.on_hand;
        }
        let shown = match self.faults.get(&(n, system)) {
            None => slot.on_hand,
            Some(Fault::Offset(k)) => slot.on_hand + k,
            Some(Fault::Lag(days)) => slot.recent[days - 1],
            Some(Fault::MonthEnd(k)) => slot.on_hand + if is_month_end(self.date) { *k } else { 0 },
            Some(Fault::Drift { start, per_week }) => slot.on_hand + (self.d.saturating_sub(*start) as f64 * per_week / 7.0).round() as i64,
        };
        (shown + noise(self.seed, system, slot.location, slot.sku, self.d)).max(0)
    }

    /// Slots exported by `system`, in location order.
    fn exported(&self, system: &'static str) -> impl Iterator<Item = (usize, &Slot)> + '_ {
        self.slots.iter().enumerate().filter(move |(_, s)| systems_at(self.locations[s.location].kind).contains(&system))
    }

    fn write(&self, landing: &Path, movements: &[Movement]) -> Result<(usize, usize)> {
        let date = self.date;
        let (mut files, mut rows) = self.write_seller_central(landing)?;
        for system in ONE_FILE_SYSTEMS {
            let (path, delimiter, bom, crlf) = match system {
                "pos" => (format!("pos/{date}/pos_inventory_{date}.csv"), b',', false, false),
                "shopify" => (format!("shopify/{date}/inventory_export_{date}.csv"), b',', true, false),
                "erp" => (format!("erp/{date}/ERP_STOCK_{}.csv", date.format("%Y%m%d")), b';', false, true),
                "wms" => (format!("wms/{date}/wms_inventory.csv"), b',', false, false),
                _ => (format!("planning/{date}/planning_stock.csv"), b',', false, false),
            };
            let path = landing.join(path);
            let mut w = writer(&path, delimiter, bom, crlf)?;
            row(&mut w, &path, &header(system))?;
            for (n, slot) in self.exported(system) {
                let (loc, sku) = (&self.locations[slot.location], &self.skus[slot.sku]);
                let v = self.on_hand(system, n);
                let fields: Vec<String> = match system {
                    "pos" => vec![s(&loc.id), s(&sku.sku), s(&sku.title), s(v), s(slot.committed), s(0), format!("{date} 23:55:00")],
                    "shopify" => {
                        let committed = slot.committed.min(v);
                        let mut f = vec![sku.sku.to_ascii_lowercase(), s(&sku.title)];
                        f.extend(["", "", "", "", "", ""].map(s));
                        f.extend([s(&sku.sku), s(""), s(""), s(&loc.id), s(0), s(0), s(committed), s(v - committed), s(v)]);
                        f
                    }
                    "erp" => vec![s(&sku.erp_item), s(&sku.title), s(&loc.id), s(v), s(slot.committed), s(0), s(slot.on_order)],
                    "wms" => vec![s(&sku.sku), s(&loc.id), s(v), s(slot.committed), s(v - slot.committed.min(v)), s(0), s(0)],
                    _ => vec![s(&loc.id), s(&sku.sku), s(v), s(slot.on_order), s("")],
                };
                row(&mut w, &path, &fields)?;
                rows += 1;
            }
            files += finish(w, &path)?;
        }
        files += self.write_movements(landing, movements)?;
        Ok((files, rows))
    }

    fn write_seller_central(&self, landing: &Path) -> Result<(usize, usize)> {
        let (mut files, mut rows) = (0, 0);
        let mut current: Option<(usize, PathBuf, csv::Writer<std::fs::File>)> = None;
        for (n, slot) in self.exported("seller_central") {
            if current.as_ref().is_none_or(|(l, _, _)| *l != slot.location) {
                if let Some((_, path, w)) = current.take() {
                    files += finish(w, &path)?;
                }
                let path = landing.join(format!("seller_central/{}/{}.txt", self.date, self.locations[slot.location].id));
                let mut w = writer(&path, b'\t', false, false)?;
                row(&mut w, &path, &header("seller_central"))?;
                current = Some((slot.location, path, w));
            }
            let (_, path, w) = current.as_mut().expect("opened above");
            let sku = &self.skus[slot.sku];
            let warehouse = self.on_hand("seller_central", n);
            let reserved = slot.committed.min(warehouse);
            row(w, path, &[
                s(&sku.sku), format!("X{:09}", slot.sku), format!("B{:09}", slot.sku), s(&sku.title), s("New"), format!("{:.2}", sku.price),
                s("No"), s(""), s("Yes"), s(warehouse), s(warehouse - reserved), s(0), s(reserved), s(warehouse + slot.on_order), s("0.12"),
                s(0), s(slot.on_order), s(0),
            ])?;
            rows += 1;
        }
        if let Some((_, path, w)) = current {
            files += finish(w, &path)?;
        }
        Ok((files, rows))
    }

    fn write_movements(&self, landing: &Path, movements: &[Movement]) -> Result<usize> {
        let date = self.date;
        let path = landing.join(format!("erp_movements/{date}/movements.csv"));
        let mut w = writer(&path, b',', false, false)?;
        row(&mut w, &path, &["timestamp", "location", "sku", "kind", "qty", "reason_code", "reference", "counterparty"].map(s))?;
        for m in movements {
            let slot = &self.slots[m.slot];
            let hour = match m.kind { "receipt" => 9, "sale" => 18, _ => 14 };
            let reference = if m.kind == "sale" { String::new() } else { format!("{}-{date}-{}", m.kind, m.slot) };
            row(&mut w, &path, &[
                format!("{date}T{hour:02}:00:00Z"), s(&self.locations[slot.location].id), s(&self.skus[slot.sku].erp_item), s(m.kind), s(m.qty),
                s(""), reference, s(""),
            ])?;
        }
        finish(w, &path)
    }
}

fn header(system: &str) -> Vec<String> {
    let names: &[&str] = match system {
        "pos" => &["Store", "Item Code", "Description", "Qty On Hand", "Qty Committed", "Qty Incoming", "Last Updated"],
        "shopify" => &[
            "Handle", "Title", "Option1 Name", "Option1 Value", "Option2 Name", "Option2 Value", "Option3 Name", "Option3 Value", "SKU", "HS Code", "COO",
            "Location", "Incoming", "Unavailable", "Committed", "Available", "On hand",
        ],
        "erp" => &["Item No", "Description", "Site", "On Hand", "Allocated", "In Transit", "On Order"],
        "wms" => &["sku", "warehouse", "on_hand", "allocated", "available", "damaged", "returns_pending"],
        "seller_central" => &[
            "sku", "fnsku", "asin", "product-name", "condition", "your-price", "mfn-listing-exists", "mfn-fulfillable-quantity", "afn-listing-exists",
            "afn-warehouse-quantity", "afn-fulfillable-quantity", "afn-unsellable-quantity", "afn-reserved-quantity", "afn-total-quantity", "per-unit-volume",
            "afn-inbound-working-quantity", "afn-inbound-shipped-quantity", "afn-inbound-receiving-quantity",
        ],
        _ => &["Location", "SKU", "Stock", "Incoming", "Days of Cover"],
    };
    names.iter().map(|n| n.to_string()).collect()
}

fn write_reference(dir: &Path, locations: &[Location], skus: &[Sku]) -> Result<()> {
    let path = dir.join("reference/skus.csv");
    let mut w = writer(&path, b',', false, false)?;
    row(&mut w, &path, &["sku", "product_id", "title", "option1", "option2", "unit_cost", "price", "case_pack", "moq", "lead_time_days", "lead_time_sd", "is_bundle"].map(s))?;
    for p in skus {
        row(&mut w, &path, &[
            p.sku.clone(), p.sku.clone(), p.title.clone(), s(""), s(""), format!("{:.2}", p.unit_cost), format!("{:.2}", p.price), s(p.case_pack),
            s(p.case_pack * 2), s(p.lead_time * 7), s(3), s(false),
        ])?;
    }
    finish(w, &path)?;
    let path = dir.join("reference/locations.csv");
    let mut w = writer(&path, b',', false, false)?;
    row(&mut w, &path, &["location_id", "name", "type", "region", "country"].map(s))?;
    for l in locations {
        row(&mut w, &path, &[s(&l.id), s(&l.id), s(l.kind.as_str()), s(l.region), s(l.country)])?;
    }
    finish(w, &path)?;
    let path = dir.join("reference/sku_aliases.csv");
    let mut w = writer(&path, b',', false, false)?;
    row(&mut w, &path, &["system", "external_id", "sku"].map(s))?;
    for p in skus {
        row(&mut w, &path, &[s("erp"), p.erp_item.clone(), p.sku.clone()])?;
    }
    finish(w, &path)?;
    Ok(())
}

/// The tier's pipeline: the demo's systems and authority, location ids used as they are.
fn pipeline_text(dir: &Path, warehouse: &str) -> String {
    super::point_pipeline(include_str!("../../pipelines/scale.toml"), "scale", "./scale-warehouse", dir, warehouse)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tier_m_has_the_issue_s_shape() {
        let m = Shape::tier("M").unwrap();
        assert_eq!((m.skus, m.locations(), m.sku_locations(), m.days), (20_000, 40, 60_000, 365));
        let l = Shape::tier("l").unwrap();
        assert_eq!((l.skus, l.locations(), l.sku_locations()), (200_000, 400, 600_000));
        assert!(Shape::tier("XL").is_err());
    }

    #[test]
    fn views_follow_their_faults() {
        let locations = vec![Location { id: "STORE-001".into(), kind: LocationType::Store, region: "UK", country: "GB", demand: 1.0 }];
        let skus = vec![Sku { sku: "A".into(), erp_item: "1".into(), title: "A".into(), unit_cost: 1.0, price: 2.0, case_pack: 6, lead_time: 3, weight: 1.0 }];
        let slots = vec![Slot { location: 0, sku: 0, on_hand: 50, recent: [40, 30, 20], ..Default::default() }];
        let faults = HashMap::from([((0, "shopify"), Fault::Lag(2)), ((0, "erp"), Fault::Offset(9))]);
        let date = NaiveDate::from_ymd_opt(2026, 6, 10).unwrap();
        let day = Day { date, d: 5, seed: 1, slots: &slots, locations: &locations, skus: &skus, faults: &faults };
        assert_eq!(day.on_hand("pos", 0), 50, "the authority shows the truth, without noise");
        assert!((day.on_hand("shopify", 0) - 30).abs() <= 2, "two days late, within noise");
        assert!((day.on_hand("erp", 0) - 59).abs() <= 2);
        assert!((day.on_hand("planning", 0) - 50).abs() <= 2);
    }
}
