//! Writes what each system believes as that system's real export format, plus the
//! reference files and the ground truth of injected faults.

use std::collections::HashMap;
use std::fs;
use std::io::Write as _;
use std::path::Path;

use super::faults::{Fault, FaultKind};
use super::simulate::{self, History, noise};
use super::world::{DC, LOCATIONS, LocationType, World};
use crate::error::{Error, Result};

/// The system whose number is true at a location type (matches pipelines/demo.toml).
pub fn authority(kind: LocationType) -> &'static str {
    match kind {
        LocationType::Store => "pos",
        LocationType::Warehouse => "erp",
        LocationType::ThreePl => "wms",
        LocationType::Fba => "seller_central",
    }
}

/// What systems believe, given the truth and the faults.
pub struct Views<'a> {
    world: &'a World,
    history: &'a History,
    seed: u64,
    faults: HashMap<(&'static str, usize, usize), Vec<&'a Fault>>,
}

impl<'a> Views<'a> {
    pub fn new(world: &'a World, history: &'a History, seed: u64) -> Self {
        let mut faults: HashMap<_, Vec<&Fault>> = HashMap::new();
        for f in &history.faults {
            faults.entry((f.system, f.location, f.product)).or_default().push(f);
        }
        Views { world, history, seed, faults }
    }

    fn offset(&self, system: &'static str, l: usize, i: usize, d: usize) -> i64 {
        self.faults.get(&(system, l, i)).map(|fs| fs.iter().map(|f| f.offset[d]).sum()).unwrap_or(0)
    }

    /// The authoritative on-hand: physical stock, as the authoritative system records it.
    pub fn authoritative(&self, l: usize, i: usize, d: usize) -> i64 {
        let system = authority(LOCATIONS[l].kind);
        self.history.truth[d][l][i].physical() + self.offset(system, l, i, d)
    }

    /// What a system shows before counting noise: the authoritative number (late, for a
    /// lagging integration), its faults, and the temporal effects of its integration.
    fn shown(&self, system: &'static str, l: usize, i: usize, d: usize) -> i64 {
        if system == authority(LOCATIONS[l].kind) {
            return self.authoritative(l, i, d);
        }
        let lag = self
            .faults
            .get(&(system, l, i))
            .and_then(|fs| fs.iter().find_map(|f| if let FaultKind::Lag { days } = f.kind { Some(days) } else { None }))
            .unwrap_or(0);
        let truth = &self.history.truth[d][l][i];
        let mut v = self.authoritative(l, i, d.saturating_sub(lag)) + self.offset(system, l, i, d);
        // Shopify books a transfer as received when the DC ships it; the planning tool counts
        // FBA units being received as stock. Both are temporal, not errors.
        if system == "shopify" {
            v += truth.in_transit_in;
        }
        if system == "planning" && LOCATIONS[l].kind == LocationType::Fba {
            v += truth.inbound_receiving;
        }
        v
    }

    /// A system's on-hand for a SKU-location-day, as exported.
    pub fn on_hand(&self, system: &'static str, l: usize, i: usize, d: usize) -> i64 {
        if system == authority(LOCATIONS[l].kind) {
            return self.authoritative(l, i, d);
        }
        (self.shown(system, l, i, d) + noise(self.seed, system, l, i, d)).max(0)
    }

    /// The delta the pipeline will see for a fault's SKU-location-system, without noise.
    pub fn fault_delta(&self, f: &Fault, d: usize) -> i64 {
        self.shown(f.system, f.location, f.product, d).max(0) - self.authoritative(f.location, f.product, d)
    }
}

pub fn write_all(dir: &Path, world: &World, history: &History, seed: u64) -> Result<usize> {
    let views = Views::new(world, history, seed);
    write_reference(dir, world)?;
    write_ground_truth(dir, world, history, &views)?;
    write_scenarios(dir, world, history)?;
    let landing = dir.join("landing");
    let mut files = 0;
    for d in 0..history.days {
        let date = history.date(d);
        files += write_pos(&landing, &views, d)?;
        files += write_shopify(&landing, &views, d)?;
        files += write_erp(&landing, &views, d)?;
        files += write_wms(&landing, &views, d)?;
        files += write_seller_central(&landing, &views, d)?;
        files += write_planning(&landing, &views, d)?;
        files += write_movements(&landing, world, history, d)?;
        files += write_counts(&landing, world, history, d)?;
        let _ = date;
    }
    Ok(files)
}

pub(super) fn writer(path: &Path, delimiter: u8, bom: bool, crlf: bool) -> Result<csv::Writer<fs::File>> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|e| Error::io(parent.display(), e))?;
    }
    let mut file = fs::File::create(path).map_err(|e| Error::io(path.display(), e))?;
    if bom {
        file.write_all(b"\xEF\xBB\xBF").map_err(|e| Error::io(path.display(), e))?;
    }
    Ok(csv::WriterBuilder::new()
        .delimiter(delimiter)
        .terminator(if crlf { csv::Terminator::CRLF } else { csv::Terminator::Any(b'\n') })
        .from_writer(file))
}

pub(super) fn row<W: std::io::Write>(w: &mut csv::Writer<W>, path: &Path, fields: &[String]) -> Result<()> {
    w.write_record(fields).map_err(|e| Error::Usage(format!("{}: {e}", path.display())))
}

pub(super) fn finish<W: std::io::Write>(mut w: csv::Writer<W>, path: &Path) -> Result<usize> {
    w.flush().map_err(|e| Error::io(path.display(), e))?;
    Ok(1)
}

pub(super) fn s(v: impl ToString) -> String {
    v.to_string()
}

fn write_pos(landing: &Path, v: &Views, d: usize) -> Result<usize> {
    let date = v.history.date(d);
    let path = landing.join(format!("pos/{date}/pos_inventory_{date}.csv"));
    let mut w = writer(&path, b',', false, false)?;
    row(&mut w, &path, &["Store", "Item Code", "Description", "Qty On Hand", "Qty Committed", "Qty Incoming", "Last Updated"].map(s))?;
    for l in [0, 1] {
        for i in v.world.stocked().filter(|&i| v.world.carried[l][i]) {
            let t = &v.history.truth[d][l][i];
            let p = &v.world.products[i];
            row(&mut w, &path, &[
                s(LOCATIONS[l].name), s(&p.sku), s(&p.title), s(v.on_hand("pos", l, i, d)), s(t.committed),
                s(t.in_transit_in), format!("{date} 23:55:00"),
            ])?;
        }
    }
    if d == 60 {
        // A pop-up shop the reference data does not know yet: quarantined, not lost.
        row(&mut w, &path, &[s("Pop-up Store"), s(&v.world.products[0].sku), s("Pop-up"), s(4), s(0), s(0), format!("{date} 23:55:00")])?;
    }
    finish(w, &path)
}

fn write_shopify(landing: &Path, v: &Views, d: usize) -> Result<usize> {
    let date = v.history.date(d);
    let path = landing.join(format!("shopify/{date}/inventory_export_{date}.csv"));
    let mut w = writer(&path, b',', true, false)?;
    row(&mut w, &path, &["Handle", "Title", "Option1 Name", "Option1 Value", "Option2 Name", "Option2 Value", "Option3 Name", "Option3 Value", "SKU", "HS Code", "COO", "Location", "Incoming", "Unavailable", "Committed", "Available", "On hand"].map(s))?;
    for l in [0, 1, 3] {
        for (i, p) in v.world.products.iter().enumerate() {
            let handle = p.product_id.to_ascii_lowercase();
            let (o1n, o2n) = (if p.option1.is_some() { "Size" } else { "" }, if p.option2.is_some() { "Colour" } else { "" });
            let options = [s(o1n), p.option1.clone().unwrap_or_default(), s(o2n), p.option2.clone().unwrap_or_default(), s(""), s("")];
            let mut fields = vec![handle, p.title.clone()];
            fields.extend(options);
            fields.extend([p.sku.clone(), s("6109.10"), s("PT"), s(LOCATIONS[l].name)]);
            if p.is_bundle() {
                if l != 3 {
                    continue;
                }
                // A kit's availability is what its components allow.
                let kits = p.components.iter().map(|(c, q)| v.on_hand("shopify", 3, *c, d) / q).min().unwrap_or(0);
                fields.extend([s(0), s(0), s(0), s(kits), s(kits)]);
            } else if !v.world.carried[l][i] {
                fields.extend(["Not stocked"; 5].map(s));
            } else {
                let on_hand = v.on_hand("shopify", l, i, d);
                let committed = v.history.truth[d][l][i].committed.min(on_hand);
                fields.extend([s(0), s(0), s(committed), s(on_hand - committed), s(on_hand)]);
            }
            row(&mut w, &path, &fields)?;
        }
    }
    // A limited run created in Shopify without SKUs: lands in unmapped_skus.
    for size in ["M", "L"] {
        row(&mut w, &path, &[s("limited-tee"), s("Limited Tee"), s("Size"), s(size), s("Colour"), s("Red"), s(""), s(""), s(""), s(""), s(""), s("NYC Store"), s(0), s(0), s(0), s(3), s(3)])?;
    }
    finish(w, &path)
}

fn write_erp(landing: &Path, v: &Views, d: usize) -> Result<usize> {
    let date = v.history.date(d);
    let path = landing.join(format!("erp/{date}/ERP_STOCK_{}.csv", date.format("%Y%m%d")));
    let mut w = writer(&path, b';', false, true)?;
    row(&mut w, &path, &["Item No", "Description", "Site", "On Hand", "Allocated", "In Transit", "On Order"].map(s))?;
    for (l, loc) in LOCATIONS.iter().enumerate() {
        for i in v.world.stocked().filter(|&i| v.world.carried[l][i]) {
            let t = &v.history.truth[d][l][i];
            let p = &v.world.products[i];
            row(&mut w, &path, &[s(&p.erp_item), s(&p.title), s(loc.id), s(v.on_hand("erp", l, i, d)), s(t.committed), s(t.in_transit_out), s(t.on_order)])?;
        }
    }
    // Retired item numbers still holding stock at the DC: the ERP never mapped them.
    for item in ["999001", "999002", "999003"] {
        row(&mut w, &path, &[s(item), s("RETIRED"), s(LOCATIONS[DC].id), s(7), s(0), s(0), s(0)])?;
    }
    finish(w, &path)
}

fn write_wms(landing: &Path, v: &Views, d: usize) -> Result<usize> {
    let date = v.history.date(d);
    let path = landing.join(format!("wms/{date}/reno_inventory.csv"));
    let mut w = writer(&path, b',', false, false)?;
    row(&mut w, &path, &["sku", "description", "on_hand", "allocated", "available", "damaged", "returns_pending", "lot"].map(s))?;
    for (n, i) in v.world.stocked().filter(|&i| v.world.carried[3][i]).enumerate() {
        let t = &v.history.truth[d][3][i];
        let p = &v.world.products[i];
        let on_hand = v.on_hand("wms", 3, i, d);
        // One day the portal writes "n/a" for a quantity: that line is quarantined.
        let shown = if d == 45 && n == 7 { s("n/a") } else { s(on_hand) };
        row(&mut w, &path, &[s(&p.sku), s(&p.title), shown, s(t.committed), s(on_hand - t.committed), s(0), s(t.pending), s("")])?;
    }
    finish(w, &path)
}

fn write_seller_central(landing: &Path, v: &Views, d: usize) -> Result<usize> {
    let date = v.history.date(d);
    let mut files = 0;
    for l in [4, 5] {
        let path = landing.join(format!("seller_central/{date}/{}.txt", LOCATIONS[l].id));
        let mut w = writer(&path, b'\t', false, false)?;
        row(&mut w, &path, &["sku", "fnsku", "asin", "product-name", "condition", "your-price", "mfn-listing-exists", "mfn-fulfillable-quantity", "afn-listing-exists", "afn-warehouse-quantity", "afn-fulfillable-quantity", "afn-unsellable-quantity", "afn-reserved-quantity", "afn-total-quantity", "per-unit-volume", "afn-inbound-working-quantity", "afn-inbound-shipped-quantity", "afn-inbound-receiving-quantity"].map(s))?;
        for i in v.world.stocked().filter(|&i| v.world.carried[l][i]) {
            let t = &v.history.truth[d][l][i];
            let p = &v.world.products[i];
            let warehouse = v.on_hand("seller_central", l, i, d);
            let reserved = t.committed.min(warehouse);
            let unsellable = t.unsellable.min(warehouse - reserved);
            let fulfillable = warehouse - reserved - unsellable;
            let total = warehouse + t.inbound_working + t.inbound_shipped + t.inbound_receiving;
            row(&mut w, &path, &[
                seller_sku(l, &p.sku), format!("X00{i:05}"), format!("B0{i:08}"), format!("{}, {}", p.title, p.option1.clone().unwrap_or_default()),
                s("New"), format!("{:.2}", p.price), s("No"), s(""), s("Yes"), s(warehouse), s(fulfillable), s(unsellable), s(reserved),
                s(total), s("0.12"), s(t.inbound_working), s(t.inbound_shipped), s(t.inbound_receiving),
            ])?;
        }
        files += finish(w, &path)?;
    }
    Ok(files)
}

/// Seller SKUs as listed on Amazon: prefixed per marketplace.
pub fn seller_sku(location: usize, sku: &str) -> String {
    if location == 4 { format!("AMZ-{sku}") } else { format!("AMZUK-{sku}") }
}

fn write_planning(landing: &Path, v: &Views, d: usize) -> Result<usize> {
    let date = v.history.date(d);
    let path = landing.join(format!("planning/{date}/planning_stock.csv"));
    let mut w = writer(&path, b',', false, false)?;
    row(&mut w, &path, &["Location", "SKU", "Stock", "Incoming", "Days of Cover"].map(s))?;
    for (l, loc) in LOCATIONS.iter().enumerate() {
        for i in v.world.stocked().filter(|&i| v.world.carried[l][i]) {
            let t = &v.history.truth[d][l][i];
            row(&mut w, &path, &[s(loc.id), s(&v.world.products[i].sku), s(v.on_hand("planning", l, i, d)), s(t.on_order), s("")])?;
        }
    }
    finish(w, &path)
}

fn write_movements(landing: &Path, world: &World, h: &History, d: usize) -> Result<usize> {
    let date = h.date(d);
    let path = landing.join(format!("erp_movements/{date}/movements.csv"));
    let mut w = writer(&path, b',', false, false)?;
    row(&mut w, &path, &["timestamp", "location", "sku", "kind", "qty", "reason_code", "reference", "counterparty"].map(s))?;
    for m in h.ledger.iter().filter(|m| m.day == d) {
        row(&mut w, &path, &[
            format!("{date}T{:02}:00:00Z", m.hour), s(LOCATIONS[m.location].id), s(&world.products[m.product].erp_item), s(m.kind), s(m.qty),
            m.reason.map(s).unwrap_or_default(), m.reference.clone(), m.counterparty.map(|c| s(LOCATIONS[c].id)).unwrap_or_default(),
        ])?;
    }
    finish(w, &path)
}

fn write_counts(landing: &Path, world: &World, h: &History, d: usize) -> Result<usize> {
    let counts: Vec<_> = h.counts.iter().filter(|c| c.day == d).collect();
    if counts.is_empty() {
        return Ok(0);
    }
    let date = h.date(d);
    let path = landing.join(format!("counts/{date}/counts.csv"));
    let mut w = writer(&path, b',', false, false)?;
    row(&mut w, &path, &["date", "location", "sku", "counted_qty", "blind", "counter"].map(s))?;
    for c in counts {
        row(&mut w, &path, &[s(date), s(LOCATIONS[c.location].id), s(&world.products[c.product].sku), s(c.counted), s("yes"), s("cycle team")])?;
    }
    finish(w, &path)
}

fn write_reference(dir: &Path, world: &World) -> Result<()> {
    let path = dir.join("reference/skus.csv");
    let mut w = writer(&path, b',', false, false)?;
    row(&mut w, &path, &["sku", "product_id", "title", "option1", "option2", "unit_cost", "price", "case_pack", "moq", "lead_time_days", "lead_time_sd", "is_bundle"].map(s))?;
    for p in &world.products {
        row(&mut w, &path, &[
            p.sku.clone(), p.product_id.clone(), p.title.clone(), p.option1.clone().unwrap_or_default(), p.option2.clone().unwrap_or_default(),
            format!("{:.2}", p.unit_cost), format!("{:.2}", p.price), s(p.case_pack), s(p.moq), s(p.lead_time_days), s(p.lead_time_sd), s(p.is_bundle()),
        ])?;
    }
    finish(w, &path)?;

    let path = dir.join("reference/locations.csv");
    let mut w = writer(&path, b',', false, false)?;
    row(&mut w, &path, &["location_id", "name", "type", "region", "country"].map(s))?;
    for l in &LOCATIONS {
        row(&mut w, &path, &[s(l.id), s(l.name), s(l.kind.as_str()), s(l.region), s(l.country)])?;
    }
    finish(w, &path)?;

    let path = dir.join("reference/sku_aliases.csv");
    let mut w = writer(&path, b',', false, false)?;
    row(&mut w, &path, &["system", "external_id", "sku"].map(s))?;
    for (i, p) in world.products.iter().enumerate() {
        row(&mut w, &path, &[s("erp"), p.erp_item.clone(), p.sku.clone()])?;
        for l in [4, 5] {
            if world.carried[l][i] {
                row(&mut w, &path, &[s("seller_central"), seller_sku(l, &p.sku), p.sku.clone()])?;
            }
        }
    }
    finish(w, &path)?;

    let path = dir.join("reference/bundles.csv");
    let mut w = writer(&path, b',', false, false)?;
    row(&mut w, &path, &["bundle_sku", "component_sku", "qty"].map(s))?;
    for p in world.products.iter().filter(|p| p.is_bundle()) {
        for (c, q) in &p.components {
            row(&mut w, &path, &[p.sku.clone(), world.products[*c].sku.clone(), s(q)])?;
        }
    }
    finish(w, &path).map(|_| ())
}

/// Window and tolerances the expectations are judged with: the pipeline defaults.
const WINDOW: usize = 30;

/// Which drift patterns a fault should show, judged from its own effect on the system
/// (no noise): a pattern is expected only where the fault's delta is large and long enough
/// to be visible under the default tolerances.
pub fn expected_patterns(views: &Views, f: &Fault, days: usize) -> String {
    let delta = |d: usize| views.fault_delta(f, d);
    let authoritative = |d: usize| views.authoritative(f.location, f.product, d);
    // Beyond tolerance, and not explained as lag (the system showing what the authoritative
    // system showed one to three days before).
    let tolerance = |d: usize| (0.03 * authoritative(d).abs() as f64).max(10.0);
    // Explained as the pipeline explains it: in transit or receiving (ahead by no more than
    // the units on their way, plus the tolerance), or lag (showing what the authoritative
    // system showed one to three days before).
    let explained = |d: usize| {
        let truth = &views.history.truth[d][f.location][f.product];
        let inbound = match LOCATIONS[f.location].kind {
            LocationType::Fba => truth.inbound_working + truth.inbound_shipped + truth.inbound_receiving,
            LocationType::Warehouse => truth.on_order,
            _ => 0,
        };
        let ahead_by = |units: i64| units > 0 && delta(d) > 0 && delta(d) as f64 <= units as f64 + tolerance(d);
        let shown = authoritative(d) + delta(d);
        ahead_by(truth.in_transit_in) || ahead_by(inbound) || (1..=3).any(|k| d >= k && authoritative(d - k) == shown)
    };
    let beyond = |d: usize| (delta(d).abs() as f64) > tolerance(d) && !explained(d);
    let window = days.saturating_sub(WINDOW)..days;
    let nonzero = window.clone().filter(|&d| delta(d) != 0 && !explained(d)).count();
    let flagged = window.clone().filter(|&d| beyond(d)).count();
    let sum: i64 = window.clone().map(delta).sum();
    // The same real delta again and again (the detector prefers this to same-direction).
    let mut tally: std::collections::HashMap<i64, usize> = std::collections::HashMap::new();
    for d in window.clone().filter(|&d| delta(d) != 0 && !explained(d)) {
        *tally.entry(delta(d)).or_default() += 1;
    }
    let constant = tally.values().max().copied().unwrap_or(0) as f64;
    let (nonzero, flagged, window_days) = (nonzero as f64, flagged as f64, WINDOW as f64);
    // Counting noise moves a fault sitting right at a definition's edge to either side of it:
    // such an expectation is marked optional (`?`) and counts neither way.
    let mut expected: Vec<String> = vec![];
    let mut expect = |pattern: &str, clear: bool, edge: bool| {
        if clear {
            expected.push(pattern.to_string());
        } else if edge {
            expected.push(format!("{pattern}?"));
        }
    };
    let direction = if sum >= 0 { "same_direction_over" } else { "same_direction_under" };
    match f.kind {
        FaultKind::OfflineUnrecorded { .. } => expect("count_variance", true, false),
        FaultKind::MonthEnd { .. } => {
            let at_month_end = (0..days).filter(|&d| simulate::is_month_end(views.history.date(d)) && beyond(d)).count();
            expect("month_end", at_month_end >= 4, at_month_end == 3);
        }
        FaultKind::Lag { .. } => {
            let moves = (1..days).filter(|&d| authoritative(d) != authoritative(d - 1)).count() as f64;
            expect("integration_lag", moves >= 0.25 * days as f64, moves >= 0.15 * days as f64);
        }
        // Stock that runs out floors a system's number at zero: a fixed edit then drifts, and a
        // growing drift can stop growing. What is expected follows what the delta does.
        _ => {
            let fixed = constant >= 0.6 * window_days && constant >= 0.7 * nonzero;
            let maybe_fixed = constant >= 0.4 * window_days && constant >= 0.5 * nonzero;
            expect("fixed_offset", fixed, maybe_fixed);
            let directional = nonzero >= 12.0 && flagged >= 4.0;
            let maybe_directional = nonzero >= 8.0 && flagged >= 2.0;
            expect(direction, directional && !maybe_fixed, maybe_directional && !fixed);
        }
    }
    if !matches!(f.kind, FaultKind::MonthEnd { .. } | FaultKind::OfflineUnrecorded { .. }) {
        expect("persistent", flagged >= 0.7 * window_days, flagged >= 0.5 * window_days);
    }
    expected.join(";")
}

/// Scenarios that are not faults but that the plans must show: the UK over-shipment.
fn write_scenarios(dir: &Path, world: &World, h: &History) -> Result<()> {
    let path = dir.join("scenarios.csv");
    let mut w = writer(&path, b',', false, false)?;
    row(&mut w, &path, &["scenario", "region", "location_id", "sku", "units", "date"].map(s))?;
    for (i, units, d) in &h.overstock {
        row(&mut w, &path, &[s("overstock"), s(LOCATIONS[5].region), s(LOCATIONS[5].id), world.products[*i].sku.clone(), s(units), s(h.date(*d))])?;
    }
    finish(w, &path).map(|_| ())
}

fn write_ground_truth(dir: &Path, world: &World, h: &History, views: &Views) -> Result<()> {
    let path = dir.join("ground_truth.csv");
    let mut w = writer(&path, b',', false, false)?;
    row(&mut w, &path, &["fault_id", "error_source", "layer", "system", "location_id", "sku", "start_date", "expected_patterns", "description", "final_offset", "max_abs_offset"].map(s))?;
    for f in &h.faults {
        row(&mut w, &path, &[
            f.id.clone(), s(f.error_source()), s(f.layer()), s(f.system), s(LOCATIONS[f.location].id), world.products[f.product].sku.clone(),
            s(h.date(f.start)), expected_patterns(views, f, h.days), f.describe(world), s(f.offset.last().copied().unwrap_or(0)),
            s(f.offset.iter().map(|o| o.abs()).max().unwrap_or(0)),
        ])?;
    }
    finish(w, &path).map(|_| ())
}
