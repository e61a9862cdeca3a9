//! Day-by-day simulation of the physical stock (the truth), and of what each system
//! believes. Systems believe the authoritative number plus their own faults, the temporal
//! effects of their integration (transfers, receiving, lag) and a little counting noise.

use chrono::{Datelike, NaiveDate};

use super::faults::{Fault, FaultKind};
use super::rng::Rng;
use super::world::{DC, LOCATIONS, LocationType, World};

/// The physical state of one SKU at one location at the end of a day.
#[derive(Debug, Clone, Copy, Default)]
pub struct Truth {
    pub sellable: i64,
    /// Damaged units still on the shelf (FBA keeps customer-damaged returns).
    pub unsellable: i64,
    /// Returns received, not yet inspected; not on hand until they pass.
    pub pending: i64,
    pub committed: i64,
    /// Units shipped to this location by the DC, not yet arrived.
    pub in_transit_in: i64,
    /// Units this location shipped out, not yet arrived at their destination.
    pub in_transit_out: i64,
    /// Units on purchase orders not yet received.
    pub on_order: i64,
    /// FBA inbound: not yet shipped (working), shipped, and being received.
    pub inbound_working: i64,
    pub inbound_shipped: i64,
    pub inbound_receiving: i64,
}

impl Truth {
    pub fn physical(&self) -> i64 {
        self.sellable + self.unsellable
    }
}

#[derive(Debug, Clone)]
pub struct LedgerRow {
    pub day: usize,
    pub hour: u32,
    pub location: usize,
    pub product: usize,
    pub kind: &'static str,
    pub qty: i64,
    pub reason: Option<&'static str>,
    pub reference: String,
    pub counterparty: Option<usize>,
}

#[derive(Debug, Clone)]
pub struct CountRow {
    pub day: usize,
    pub location: usize,
    pub product: usize,
    pub counted: i64,
}

pub struct History {
    pub start: NaiveDate,
    pub days: usize,
    /// truth[day][location][product]
    pub truth: Vec<Vec<Vec<Truth>>>,
    pub ledger: Vec<LedgerRow>,
    pub counts: Vec<CountRow>,
    pub faults: Vec<Fault>,
    /// Bundle kits sold per day at the 3PL: bundle_sales[day][product]
    pub bundle_sales: Vec<Vec<i64>>,
    /// Over-shipments to Amazon UK: (product, units, day).
    pub overstock: Vec<(usize, i64, usize)>,
}

impl History {
    pub fn date(&self, day: usize) -> NaiveDate {
        self.start + chrono::Days::new(day as u64)
    }
}

struct Transfer {
    arrive: usize,
    to: usize,
    product: usize,
    qty: i64,
    reference: String,
}

struct Order {
    created: usize,
    arrive: usize,
    location: usize,
    product: usize,
    qty: i64,
    reference: String,
}

struct Return {
    id: usize,
    arrived: usize,
    inspect: usize,
    location: usize,
    product: usize,
    passes: bool,
}

/// Mean daily demand of a product at a location before weekday and season.
pub fn base_demand(world: &World, location: usize, product: usize) -> f64 {
    let p = &world.products[product];
    if p.is_bundle() || !world.carried[location][product] {
        return 0.0;
    }
    p.weight * LOCATIONS[location].demand
}

pub fn simulate(world: &World, start: NaiveDate, days: usize, faults: Vec<Fault>, rng: &mut Rng) -> History {
    let n = world.products.len();
    let nl = LOCATIONS.len();
    let mut faults = faults;
    let mut state = vec![vec![Truth::default(); n]; nl];
    let demand: Vec<Vec<f64>> = (0..nl).map(|l| (0..n).map(|i| base_demand(world, l, i)).collect()).collect();
    let network: Vec<f64> = (0..n).map(|i| demand[0][i] + demand[1][i] + demand[3][i]).collect();
    for l in 0..nl {
        for i in world.stocked() {
            if !world.carried[l][i] {
                continue;
            }
            let days_cover = if l == DC { 50.0 } else { 25.0 };
            let need = if l == DC { network[i] } else { demand[l][i] };
            state[l][i].sellable = (need * days_cover * (0.8 + 0.4 * rng.uniform())).round() as i64 + 3;
        }
    }
    let mut history = History { start, days, truth: Vec::with_capacity(days), ledger: vec![], counts: vec![], faults: vec![], bundle_sales: vec![], overstock: vec![] };
    let mut transfers: Vec<Transfer> = vec![];
    let mut orders: Vec<Order> = vec![];
    let mut returns: Vec<Return> = vec![];
    let (mut next_transfer, mut next_order, mut next_return) = (1, 1, 0);

    for d in 0..days {
        let date = start + chrono::Days::new(d as u64);
        let season = 0.9 + 0.4 * d as f64 / days as f64;
        let weekday = date.weekday().num_days_from_monday();

        // Arrivals: transfers from the DC, purchase orders at the DC and at FBA.
        for t in transfers.iter().filter(|t| t.arrive == d) {
            state[t.to][t.product].sellable += t.qty;
            state[t.to][t.product].in_transit_in -= t.qty;
            state[DC][t.product].in_transit_out -= t.qty;
            let recorded = t.qty + faults.iter_mut().map(|f| f.on_transfer_in(d, t.to, t.product, t.qty)).sum::<i64>();
            history.ledger.push(LedgerRow { day: d, hour: 9, location: t.to, product: t.product, kind: "transfer_in", qty: recorded, reason: None, reference: t.reference.clone(), counterparty: Some(DC) });
        }
        transfers.retain(|t| t.arrive != d);
        for o in orders.iter().filter(|o| o.arrive == d) {
            let s = &mut state[o.location][o.product];
            s.sellable += o.qty;
            s.on_order -= o.qty;
            history.ledger.push(LedgerRow { day: d, hour: 8, location: o.location, product: o.product, kind: "receipt", qty: o.qty, reason: None, reference: o.reference.clone(), counterparty: None });
        }
        orders.retain(|o| o.arrive != d);
        // Twenty-five days before the end, a supplier over-ships three SKUs to Amazon UK: an
        // overstock the UK region rows must show, whatever the US needs.
        if d + 25 == days {
            let mut busiest: Vec<usize> = world.stocked().filter(|&i| world.carried[5][i]).collect();
            busiest.sort_by(|a, b| demand[5][*b].total_cmp(&demand[5][*a]));
            for &i in busiest.iter().take(3) {
                let units = 400;
                state[5][i].sellable += units;
                history.overstock.push((i, units, d));
                history.ledger.push(LedgerRow { day: d, hour: 8, location: 5, product: i, kind: "receipt", qty: units, reason: None, reference: format!("PO-OVERSHIP-{i}"), counterparty: None });
            }
        }

        // Returns: inspected ones pass to stock or leave; new ones wait for inspection.
        for r in returns.iter().filter(|r| r.inspect == d) {
            let s = &mut state[r.location][r.product];
            s.pending -= 1;
            if r.passes {
                s.sellable += 1;
                history.ledger.push(LedgerRow { day: d, hour: 15, location: r.location, product: r.product, kind: "return_restock", qty: 1, reason: Some("INSPECTED_OK"), reference: format!("RMA-{:06}", r.id), counterparty: None });
            } else if LOCATIONS[r.location].kind == LocationType::Fba {
                s.unsellable += 1;
            }
            for f in faults.iter_mut() {
                f.on_inspection(r.arrived, r.location, r.product, r.passes);
            }
        }
        returns.retain(|r| r.inspect != d);

        // Sales.
        let mut sold_today = vec![vec![0i64; n]; nl];
        for l in 0..nl {
            let loc = &LOCATIONS[l];
            if loc.demand == 0.0 {
                continue;
            }
            let day_factor = match (loc.kind, weekday) {
                (LocationType::Store, 5) => 1.5,
                (LocationType::Store, 6) => 1.2,
                (LocationType::Store, 4) => 1.1,
                (LocationType::Store, _) => 0.85,
                (_, 0) => 1.15,
                _ => 0.97,
            };
            for i in world.stocked() {
                let lambda = demand[l][i] * season * day_factor;
                if lambda == 0.0 {
                    continue;
                }
                let sold = rng.poisson(lambda).min(state[l][i].sellable);
                if sold == 0 {
                    continue;
                }
                state[l][i].sellable -= sold;
                sold_today[l][i] = sold;
                let unrecorded: i64 = faults.iter_mut().map(|f| f.on_sale(d, l, i, sold, rng)).sum();
                if sold - unrecorded > 0 {
                    history.ledger.push(LedgerRow { day: d, hour: 18, location: l, product: i, kind: "sale", qty: -(sold - unrecorded), reason: None, reference: format!("SALES-{date}-{}", loc.id), counterparty: None });
                }
                // Web and marketplace apparel comes back far more often than store sales.
                let apparel = !world.products[i].sku.starts_with("ACC");
                let rate = match (loc.kind, apparel) {
                    (LocationType::Store, _) => 0.04,
                    (_, true) => 0.25,
                    (_, false) => 0.06,
                };
                for _ in 0..rng.binomial(sold, rate) {
                    let arrived = d + 3 + rng.below(6);
                    next_return += 1;
                    returns.push(Return { id: next_return, arrived, inspect: arrived + 1 + rng.below(3), location: l, product: i, passes: rng.chance(0.7) });
                }
            }
        }
        for r in returns.iter().filter(|r| r.arrived == d) {
            state[r.location][r.product].pending += 1;
            history.ledger.push(LedgerRow { day: d, hour: 11, location: r.location, product: r.product, kind: "return", qty: 1, reason: Some("CUSTOMER_RETURN"), reference: format!("RMA-{:06}", r.id), counterparty: None });
            for f in faults.iter_mut() {
                f.on_return(d, r.location, r.product);
            }
        }

        // Bundles sell on the web from the 3PL and take their components with them.
        let mut kits_today = vec![0i64; n];
        for k in (0..n).filter(|&k| world.products[k].is_bundle()) {
            let parts = &world.products[k].components;
            let possible = parts.iter().map(|(c, q)| state[3][*c].sellable / q).min().unwrap_or(0);
            let sold = rng.poisson(world.products[k].weight * LOCATIONS[3].demand * season).min(possible);
            if sold == 0 {
                continue;
            }
            kits_today[k] = sold;
            for (c, q) in parts {
                state[3][*c].sellable -= sold * q;
            }
            for f in faults.iter_mut() {
                f.on_bundle_sale(d, k, sold, parts);
            }
            history.ledger.push(LedgerRow { day: d, hour: 19, location: 3, product: k, kind: "sale", qty: -sold, reason: None, reference: format!("SALES-{date}-3PL-RNO"), counterparty: None });
        }
        history.bundle_sales.push(kits_today);

        // Occasional damage found at the DC, written off with a reason.
        for i in world.stocked() {
            if state[DC][i].sellable > 5 && rng.chance(0.002) {
                let lost = 1 + rng.below(3) as i64;
                state[DC][i].sellable -= lost;
                history.ledger.push(LedgerRow { day: d, hour: 16, location: DC, product: i, kind: "adjustment", qty: -lost, reason: Some("DAMAGED"), reference: format!("ADJ-{date}-{i}"), counterparty: None });
            }
        }

        // Replenishment: stores and the 3PL from the DC; the DC and FBA from suppliers.
        for l in [0, 1, 3] {
            let lead = LOCATIONS[l].transfer_days as f64;
            for i in world.stocked() {
                let rate = demand[l][i];
                if rate == 0.0 {
                    continue;
                }
                let position = state[l][i].sellable + state[l][i].in_transit_in;
                let reorder = (rate * (lead + 7.0)).ceil().max(2.0) as i64;
                if position >= reorder {
                    continue;
                }
                let want = (rate * (lead + 21.0)).ceil().max(4.0) as i64 - position;
                let qty = want.min(state[DC][i].sellable);
                if qty <= 0 {
                    continue;
                }
                state[DC][i].sellable -= qty;
                state[DC][i].in_transit_out += qty;
                state[l][i].in_transit_in += qty;
                let reference = format!("TR-{next_transfer:05}");
                next_transfer += 1;
                history.ledger.push(LedgerRow { day: d, hour: 14, location: DC, product: i, kind: "transfer_out", qty: -qty, reason: None, reference: reference.clone(), counterparty: Some(l) });
                transfers.push(Transfer { arrive: d + LOCATIONS[l].transfer_days as usize, to: l, product: i, qty, reference });
            }
        }
        for l in [DC, 4, 5] {
            for i in world.stocked() {
                let rate = if l == DC { network[i] } else { demand[l][i] };
                if rate == 0.0 {
                    continue;
                }
                let p = &world.products[i];
                let s = &state[l][i];
                let position = s.sellable + s.on_order;
                if (position as f64) >= rate * (p.lead_time_days + 14.0) {
                    continue;
                }
                let raw = (rate * 45.0).ceil() as i64;
                let qty = (raw.max(p.moq) + p.case_pack - 1) / p.case_pack * p.case_pack;
                let lead = (p.lead_time_days + p.lead_time_sd * rng.normal()).round().max(5.0) as usize;
                state[l][i].on_order += qty;
                let reference = format!("PO-{next_order:05}");
                next_order += 1;
                orders.push(Order { created: d, arrive: d + lead, location: l, product: i, qty, reference });
            }
        }

        // Orders waiting to be picked are committed stock.
        for l in 0..nl {
            for i in world.stocked() {
                let s = &mut state[l][i];
                s.committed = if demand[l][i] > 0.0 { rng.poisson(demand[l][i] * 0.5).min(s.sellable) } else { 0 };
            }
        }
        // FBA inbound states: working for 3 days, then shipped, receiving for the last 2.
        for l in [4, 5] {
            for i in world.stocked() {
                let s = &mut state[l][i];
                (s.inbound_working, s.inbound_shipped, s.inbound_receiving) = (0, 0, 0);
            }
            for o in orders.iter().filter(|o| o.location == l) {
                let s = &mut state[l][o.product];
                if d < o.created + 3 {
                    s.inbound_working += o.qty;
                } else if d + 2 >= o.arrive {
                    s.inbound_receiving += o.qty;
                } else {
                    s.inbound_shipped += o.qty;
                }
            }
        }

        for f in faults.iter_mut() {
            f.end_of_day(d, date, &mut history.ledger);
        }
        // Cycle counts: each Sunday a dozen SKUs per store and at the DC, and the SKUs where
        // the POS is known to miss sales are counted every four weeks.
        if weekday == 6 {
            for l in [0, 1, DC] {
                let stocked: Vec<usize> = world.stocked().collect();
                let mut picked: Vec<usize> = (0..12).map(|_| stocked[rng.below(stocked.len())]).collect();
                if d / 7 % 4 == 3 {
                    picked.extend(faults.iter().filter(|f| f.location == l && matches!(f.kind, FaultKind::OfflineUnrecorded { .. })).map(|f| f.product));
                }
                picked.sort_unstable();
                picked.dedup();
                for i in picked {
                    history.counts.push(CountRow { day: d, location: l, product: i, counted: state[l][i].physical() });
                }
            }
        }
        history.truth.push(state.clone());
    }
    history.faults = faults;
    history
}

/// Deterministic counting noise for a system's view: mostly zero, sometimes ±1 or ±2.
pub fn noise(seed: u64, system: &str, location: usize, product: usize, day: usize) -> i64 {
    let mut h = seed ^ 0x51_7c_c1_b7_27_22_0a_95;
    for b in system.bytes().chain((location as u64).to_le_bytes()).chain((product as u64).to_le_bytes()).chain((day as u64).to_le_bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h ^= h >> 29;
    match h % 100 {
        0..=1 => -2,
        2..=4 => -1,
        5..=7 => 1,
        8..=9 => 2,
        _ => 0,
    }
}

/// Last three days of a month: when month-end close adjustments land.
pub fn is_month_end(date: NaiveDate) -> bool {
    (date + chrono::Days::new(3)).month() != date.month()
}
