//! The demo merchant: an apparel and accessories brand with two stores (New York, London),
//! its own warehouse, a 3PL for web orders, and Amazon FBA in the US and the UK.

use super::rng::Rng;

#[derive(Debug, Clone)]
pub struct Product {
    pub sku: String,
    pub product_id: String,
    pub title: String,
    pub option1: Option<String>,
    pub option2: Option<String>,
    pub unit_cost: f64,
    pub price: f64,
    pub case_pack: i64,
    pub moq: i64,
    pub lead_time_days: f64,
    pub lead_time_sd: f64,
    /// Relative popularity; daily demand at a location scales with it.
    pub weight: f64,
    /// ERP item number (the ERP knows SKUs only by number).
    pub erp_item: String,
    /// Components of a bundle, with units per kit.
    pub components: Vec<(usize, i64)>,
}

impl Product {
    pub fn is_bundle(&self) -> bool {
        !self.components.is_empty()
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LocationType {
    Store,
    Warehouse,
    ThreePl,
    Fba,
}

impl LocationType {
    pub fn as_str(self) -> &'static str {
        match self {
            LocationType::Store => "store",
            LocationType::Warehouse => "warehouse",
            LocationType::ThreePl => "3pl",
            LocationType::Fba => "fba",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Location {
    pub id: &'static str,
    pub name: &'static str,
    pub kind: LocationType,
    pub region: &'static str,
    pub country: &'static str,
    /// Demand multiplier relative to a store.
    pub demand: f64,
    /// Days a transfer from the DC takes to arrive.
    pub transfer_days: i64,
}

pub const LOCATIONS: [Location; 6] = [
    Location { id: "STORE-NYC", name: "NYC Store", kind: LocationType::Store, region: "US", country: "US", demand: 1.0, transfer_days: 2 },
    Location { id: "STORE-LDN", name: "London Store", kind: LocationType::Store, region: "UK", country: "GB", demand: 0.8, transfer_days: 8 },
    Location { id: "DC-NJ", name: "Newark DC", kind: LocationType::Warehouse, region: "US", country: "US", demand: 0.0, transfer_days: 0 },
    Location { id: "3PL-RNO", name: "Reno Fulfillment", kind: LocationType::ThreePl, region: "US", country: "US", demand: 2.0, transfer_days: 4 },
    Location { id: "FBA-US", name: "Amazon US", kind: LocationType::Fba, region: "US", country: "US", demand: 1.6, transfer_days: 0 },
    Location { id: "FBA-UK", name: "Amazon UK", kind: LocationType::Fba, region: "UK", country: "GB", demand: 0.9, transfer_days: 0 },
];

pub const DC: usize = 2;

pub struct World {
    pub products: Vec<Product>,
    /// carried[location][product]
    pub carried: Vec<Vec<bool>>,
}

const SIZES: [&str; 4] = ["S", "M", "L", "XL"];
const SIZE_MIX: [f64; 4] = [0.7, 1.2, 1.1, 0.6];
const COLOURS: [(&str, &str); 3] = [("BLK", "Black"), ("WHT", "White"), ("NVY", "Navy")];
const COLOUR_MIX: [f64; 3] = [1.3, 0.9, 0.8];
const TEES: [&str; 14] = [
    "Classic Tee", "Pocket Tee", "Heavyweight Tee", "Ringer Tee", "Long Sleeve Tee", "Henley", "Polo",
    "Oxford Shirt", "Linen Shirt", "Crew Sweatshirt", "Rugby Shirt", "Tank Top", "Baseball Tee", "V-Neck Tee",
];
const OUTER: [&str; 20] = [
    "Zip Hoodie", "Pullover Hoodie", "Fleece Jacket", "Rain Shell", "Puffer Vest", "Chore Coat", "Denim Jacket",
    "Quilted Jacket", "Track Jacket", "Windbreaker", "Cardigan", "Knit Sweater", "Chino Pant", "Cargo Pant",
    "Jogger", "Denim Jean", "Short", "Swim Short", "Overshirt", "Parka",
];
const ACCESSORIES: [&str; 10] = ["Mug", "Tote Bag", "Cap", "Beanie", "Socks", "Water Bottle", "Notebook", "Scarf", "Belt", "Keyring"];

impl World {
    pub fn generate(rng: &mut Rng) -> World {
        let mut products = Vec::new();
        let next_weight = |rng: &mut Rng| {
            // Popularity falls off with rank (a long tail), shuffled so families mix.
            1.0 / (1.0 + rng.uniform() * 60.0).powf(0.9)
        };
        for (p, name) in TEES.iter().enumerate() {
            let base = next_weight(rng) * 3.0;
            let cost = 6.0 + rng.uniform() * 8.0;
            for (s, size) in SIZES.iter().enumerate() {
                for (c, (code, colour)) in COLOURS.iter().enumerate() {
                    products.push(variant(rng, format!("TEE-{:03}-{size}-{code}", p + 1), format!("TEE-{:03}", p + 1), name, Some(size), Some(colour), cost, base * SIZE_MIX[s] * COLOUR_MIX[c]));
                }
            }
        }
        for (p, name) in OUTER.iter().enumerate() {
            let base = next_weight(rng) * 2.5;
            let cost = 18.0 + rng.uniform() * 30.0;
            for (s, size) in SIZES.iter().enumerate() {
                products.push(variant(rng, format!("OUT-{:03}-{size}", p + 1), format!("OUT-{:03}", p + 1), name, Some(size), None, cost, base * SIZE_MIX[s]));
            }
        }
        for i in 0..50 {
            let name = format!("{} {}", ACCESSORIES[i % ACCESSORIES.len()], ["Original", "Sport", "Heritage", "Mini", "Pro"][i / ACCESSORIES.len()]);
            let base = next_weight(rng) * 4.0;
            let cost = 2.0 + rng.uniform() * 10.0;
            products.push(variant(rng, format!("ACC-{:03}", i + 1), format!("ACC-{:03}", i + 1), &name, None, None, cost, base));
        }
        // Bundles: a tee with one or two accessories, sold on the web.
        for k in 0..6 {
            let tee = rng.below(14 * 12);
            let acc1 = 14 * 12 + 20 * 4 + rng.below(25);
            let acc2 = 14 * 12 + 20 * 4 + 25 + rng.below(25);
            let mut components = vec![(tee, 1), (acc1, 1)];
            if k % 2 == 0 {
                components.push((acc2, 2));
            }
            let cost: f64 = components.iter().map(|(i, q)| products[*i].unit_cost * *q as f64).sum();
            let mut kit = variant(rng, format!("KIT-{:03}", k + 1), format!("KIT-{:03}", k + 1), "Gift Set", None, None, cost, 0.8);
            kit.components = components;
            products.push(kit);
        }
        for (i, p) in products.iter_mut().enumerate() {
            p.erp_item = format!("{}", 100_000 + i * 7);
        }
        // Stores, DC and 3PL carry every stocked SKU; FBA the most popular.
        let mut order: Vec<usize> = (0..products.len()).filter(|&i| !products[i].is_bundle()).collect();
        order.sort_by(|a, b| products[*b].weight.total_cmp(&products[*a].weight));
        let mut carried = vec![vec![false; products.len()]; LOCATIONS.len()];
        for (l, loc) in LOCATIONS.iter().enumerate() {
            let take = match (loc.kind, loc.id) {
                (LocationType::Fba, "FBA-US") => 150,
                (LocationType::Fba, _) => 80,
                _ => order.len(),
            };
            for &i in order.iter().take(take) {
                // The London shop does not range XL.
                let sku = &products[i].sku;
                carried[l][i] = !(loc.id == "STORE-LDN" && (sku.ends_with("-XL") || sku.contains("-XL-")));
            }
        }
        World { products, carried }
    }

    pub fn stocked(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.products.len()).filter(|&i| !self.products[i].is_bundle())
    }
}

#[allow(clippy::too_many_arguments)]
fn variant(rng: &mut Rng, sku: String, product_id: String, title: &str, option1: Option<&str>, option2: Option<&str>, cost: f64, weight: f64) -> Product {
    let case_pack = [6, 12, 24][rng.below(3)];
    Product {
        sku,
        product_id,
        title: title.to_string(),
        option1: option1.map(str::to_string),
        option2: option2.map(str::to_string),
        unit_cost: (cost * 100.0).round() / 100.0,
        price: (cost * 2.2 * 100.0).round() / 100.0,
        case_pack,
        moq: case_pack * (1 + rng.below(4) as i64),
        lead_time_days: (20 + rng.below(25)) as f64,
        lead_time_sd: (2 + rng.below(6)) as f64,
        weight,
        erp_item: String::new(),
        components: vec![],
    }
}
