//! The seven error sources of the SPEC, injected on known SKU-location-systems, plus
//! month-end close edits and integration lag. Each fault keeps the offset it puts on its
//! system's on-hand, day by day; the ground-truth file lists them all.

use chrono::NaiveDate;

use super::rng::Rng;
use super::simulate::{LedgerRow, base_demand, is_month_end};
use super::world::{DC, LOCATIONS, World};

#[derive(Debug, Clone)]
pub enum FaultKind {
    /// Sales made elsewhere never reach this system.
    SaleNotPropagated { fraction: f64 },
    /// Restocks entered short: part of each received transfer never booked.
    RestockShort { short: f64 },
    /// Returns counted as stock on arrival, before inspection; failures never leave.
    ReturnBeforeInspection,
    /// This variant's sales are booked on a sibling variant (`partner`).
    VariantOver { partner: usize },
    /// Receives the sales of a sibling variant (`source`).
    VariantUnder { source: usize },
    /// Kit sales do not decrement this component.
    BundleNotDecrementing { kit: usize },
    /// Offline store sales never recorded in the POS.
    OfflineUnrecorded { fraction: f64 },
    /// One manual edit with no reason code.
    ManualEdit { delta: i64 },
    /// Month-end close edits with no reason code, reversed on the 1st.
    MonthEnd { delta: i64 },
    /// The system shows the authoritative number of `days` ago.
    Lag { days: usize },
}

#[derive(Debug, Clone)]
pub struct Fault {
    pub id: String,
    pub kind: FaultKind,
    pub system: &'static str,
    pub location: usize,
    pub product: usize,
    pub start: usize,
    /// Offset on the system's on-hand at the end of each day.
    pub offset: Vec<i64>,
    current: i64,
}

impl Fault {
    /// Which of the SPEC's error sources this is.
    pub fn error_source(&self) -> &'static str {
        match self.kind {
            FaultKind::SaleNotPropagated { .. } => "sale_not_propagated",
            FaultKind::RestockShort { .. } => "restock_not_entered",
            FaultKind::ReturnBeforeInspection => "return_before_inspection",
            FaultKind::VariantOver { .. } | FaultKind::VariantUnder { .. } => "variant_wrong_level",
            FaultKind::BundleNotDecrementing { .. } => "bundle_not_decrementing",
            FaultKind::OfflineUnrecorded { .. } => "offline_sale_unrecorded",
            FaultKind::ManualEdit { .. } | FaultKind::MonthEnd { .. } => "manual_edit_no_reason",
            FaultKind::Lag { .. } => "integration_lag",
        }
    }

    /// Where in the stack the cause sits (identity, ledger, policy, publish).
    pub fn layer(&self) -> &'static str {
        match self.kind {
            FaultKind::VariantOver { .. } | FaultKind::VariantUnder { .. } | FaultKind::BundleNotDecrementing { .. } => "identity",
            FaultKind::RestockShort { .. } | FaultKind::OfflineUnrecorded { .. } | FaultKind::ManualEdit { .. } | FaultKind::MonthEnd { .. } => "ledger",
            FaultKind::ReturnBeforeInspection => "policy",
            FaultKind::SaleNotPropagated { .. } | FaultKind::Lag { .. } => "publish",
        }
    }

    pub fn describe(&self, world: &World) -> String {
        match &self.kind {
            FaultKind::SaleNotPropagated { fraction } => format!("misses {:.0}% of sales", fraction * 100.0),
            FaultKind::RestockShort { short } => format!("books each received transfer {:.0}% short", short * 100.0),
            FaultKind::ReturnBeforeInspection => "restocks returns on arrival, before inspection".into(),
            FaultKind::VariantOver { partner } => format!("sales booked on {}", world.products[*partner].sku),
            FaultKind::VariantUnder { source } => format!("carries the sales of {}", world.products[*source].sku),
            FaultKind::BundleNotDecrementing { kit } => format!("not decremented by {} sales", world.products[*kit].sku),
            FaultKind::OfflineUnrecorded { fraction } => format!("{:.0}% of sales made offline never recorded", fraction * 100.0),
            FaultKind::ManualEdit { delta } => format!("manual edit {delta:+} with no reason code"),
            FaultKind::MonthEnd { delta } => format!("month-end edit -{delta} with no reason code, reversed on the 1st"),
            FaultKind::Lag { days } => format!("shows the authoritative number {days} days late"),
        }
    }

    fn here(&self, day: usize, location: usize, product: usize) -> bool {
        day >= self.start && location == self.location && product == self.product
    }

    /// A sale happened; returns units the ERP ledger never hears of (it learns sales from the POS).
    pub fn on_sale(&mut self, day: usize, location: usize, product: usize, sold: i64, rng: &mut Rng) -> i64 {
        match self.kind {
            FaultKind::SaleNotPropagated { fraction } if self.here(day, location, product) => {
                self.current += rng.binomial(sold, fraction);
                0
            }
            FaultKind::OfflineUnrecorded { fraction } if self.here(day, location, product) => {
                let missed = rng.binomial(sold, fraction);
                self.current += missed;
                missed
            }
            FaultKind::VariantOver { .. } if self.here(day, location, product) => {
                self.current += sold;
                0
            }
            FaultKind::VariantUnder { source } if day >= self.start && location == self.location && product == source => {
                self.current -= sold;
                0
            }
            _ => 0,
        }
    }

    /// A transfer arrived; returns the change to the quantity the ERP books.
    pub fn on_transfer_in(&mut self, day: usize, location: usize, product: usize, qty: i64) -> i64 {
        match self.kind {
            FaultKind::RestockShort { short } if self.here(day, location, product) => {
                let missed = (qty as f64 * short).round() as i64;
                self.current -= missed;
                -missed
            }
            _ => 0,
        }
    }

    pub fn on_return(&mut self, day: usize, location: usize, product: usize) {
        if matches!(self.kind, FaultKind::ReturnBeforeInspection) && self.here(day, location, product) {
            self.current += 1;
        }
    }

    pub fn on_inspection(&mut self, arrived: usize, location: usize, product: usize, passes: bool) {
        if matches!(self.kind, FaultKind::ReturnBeforeInspection) && passes && self.here(arrived, location, product) {
            self.current -= 1;
        }
    }

    pub fn on_bundle_sale(&mut self, day: usize, kit: usize, sold: i64, parts: &[(usize, i64)]) {
        if let FaultKind::BundleNotDecrementing { kit: mine } = self.kind
            && mine == kit && day >= self.start {
                let per_kit = parts.iter().find(|(c, _)| *c == self.product).map(|(_, q)| *q).unwrap_or(0);
                self.current += sold * per_kit;
            }
    }

    pub fn end_of_day(&mut self, day: usize, date: NaiveDate, ledger: &mut Vec<LedgerRow>) {
        let edit = |qty: i64, reference: String| LedgerRow {
            day,
            hour: 17,
            location: self.location,
            product: self.product,
            kind: "adjustment",
            qty,
            reason: None,
            reference,
            counterparty: None,
        };
        match self.kind {
            FaultKind::ManualEdit { delta } if day == self.start => {
                self.current = delta;
                ledger.push(edit(delta, format!("ADJ-{date}-{}", self.id)));
            }
            FaultKind::MonthEnd { delta } if day >= self.start => {
                if is_month_end(date) && self.current == 0 {
                    self.current = -delta;
                    ledger.push(edit(-delta, format!("CLOSE-{date}-{}", self.id)));
                } else if !is_month_end(date) && self.current != 0 {
                    self.current = 0;
                    ledger.push(edit(delta, format!("REOPEN-{date}-{}", self.id)));
                }
            }
            _ => {}
        }
        self.offset.push(self.current);
    }
}

/// Picks fault sites: busy SKU-locations, each used by one fault only, so that every
/// injected drift is attributable.
pub fn choose(world: &World, days: usize, rng: &mut Rng) -> Vec<Fault> {
    let mut used = std::collections::HashSet::new();
    let mut faults: Vec<Fault> = vec![];
    let add = |faults: &mut Vec<Fault>, kind: FaultKind, system: &'static str, location: usize, product: usize, start: usize| {
        faults.push(Fault { id: format!("F{:03}", faults.len() + 1), kind, system, location, product, start, offset: Vec::with_capacity(days), current: 0 });
    };
    let busiest = |location: usize, used: &std::collections::HashSet<(usize, usize)>, filter: &dyn Fn(usize) -> bool| {
        let mut c: Vec<usize> = world.stocked().filter(|&i| world.carried[location][i] && !used.contains(&(location, i)) && filter(i)).collect();
        c.sort_by(|a, b| base_demand(world, location, *b).total_cmp(&base_demand(world, location, *a)));
        c
    };
    let start = |rng: &mut Rng, from: usize, spread: usize| from + rng.below(spread);

    // Bundles first: their components at the 3PL are reserved for them.
    let kits: Vec<usize> = (0..world.products.len()).filter(|&k| world.products[k].is_bundle()).take(3).collect();
    for &kit in &kits {
        let s = start(rng, 5, 15);
        for &(component, _) in &world.products[kit].components {
            if used.insert((3, component)) {
                add(&mut faults, FaultKind::BundleNotDecrementing { kit }, "shopify", 3, component, s);
            }
        }
    }
    for &location in &[0, 0, 0, 3, 3, 3] {
        let i = busiest(location, &used, &|_| true)[0];
        used.insert((location, i));
        let s = start(rng, 5, 20);
        add(&mut faults, FaultKind::SaleNotPropagated { fraction: 0.5 }, "shopify", location, i, s);
    }
    for &location in &[0, 1, 3, 0, 1, 3] {
        let i = busiest(location, &used, &|_| true)[0];
        used.insert((location, i));
        let s = start(rng, 5, 20);
        add(&mut faults, FaultKind::RestockShort { short: 0.35 }, "erp", location, i, s);
    }
    for _ in 0..6 {
        let i = busiest(3, &used, &|i| !world.products[i].sku.starts_with("ACC"))[0];
        used.insert((3, i));
        let s = start(rng, 3, 10);
        add(&mut faults, FaultKind::ReturnBeforeInspection, "shopify", 3, i, s);
    }
    // Variant pairs: a size-M variant's sales booked on the L of the same colour.
    for _ in 0..3 {
        let sibling = |i: usize| world.products[i].sku.replacen("-M-", "-L-", 1);
        let a = busiest(3, &used, &|i| {
            let sku = &world.products[i].sku;
            sku.starts_with("TEE") && sku.contains("-M-") && world.products.iter().position(|p| p.sku == sibling(i)).is_some_and(|b| !used.contains(&(3, b)))
        })[0];
        let b = world.products.iter().position(|p| p.sku == sibling(a)).expect("sibling exists");
        used.insert((3, a));
        used.insert((3, b));
        let s = start(rng, 10, 20);
        add(&mut faults, FaultKind::VariantOver { partner: b }, "shopify", 3, a, s);
        add(&mut faults, FaultKind::VariantUnder { source: a }, "shopify", 3, b, s);
    }
    for &location in &[0, 1, 0, 1, 0, 1] {
        let i = busiest(location, &used, &|_| true)[0];
        used.insert((location, i));
        let s = start(rng, 5, 20);
        add(&mut faults, FaultKind::OfflineUnrecorded { fraction: 0.35 }, "pos", location, i, s);
    }
    for &location in &[0, 0, 3, 3, 1, 0] {
        let i = busiest(location, &used, &|_| true)[rng.below(10)];
        used.insert((location, i));
        // Units keyed in by hand; the ones taken out are at the 3PL, which rarely runs dry, so
        // that no edit is floored at zero and stops being a fixed offset.
        let delta = (12 + rng.below(19) as i64) * if location == 3 { -1 } else { 1 };
        let s = start(rng, 15, 60.min(days.saturating_sub(30)).max(1));
        add(&mut faults, FaultKind::ManualEdit { delta }, "erp", location, i, s);
    }
    for &location in &[0, 1, 3, 4, 0, 3] {
        let i = busiest(location, &used, &|_| true)[rng.below(10)];
        used.insert((location, i));
        let delta = 15 + rng.below(16) as i64;
        add(&mut faults, FaultKind::MonthEnd { delta }, "erp", location, i, 0);
    }
    for &location in &[0, 3, 4, DC, 1, 4] {
        let i = busiest(location, &used, &|_| true)[0];
        used.insert((location, i));
        let lag = 2 + rng.below(3);
        add(&mut faults, FaultKind::Lag { days: lag }, "planning", location, i, 0);
    }
    debug_assert!(faults.iter().all(|f| f.location < LOCATIONS.len()));
    faults
}
