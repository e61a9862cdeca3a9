//! Reference data (SKUs, locations, aliases, bundles) and identity: which canonical SKU a
//! system's id names. Reference files are the merchant's master data, so a bad row there
//! fails the run with the file, line and field, rather than being quarantined.

use datafusion::common::HashMap;

use crate::error::{Error, Result};
use crate::sources::table::{RawLine, Table};

#[derive(Debug, Clone, PartialEq)]
pub struct Sku {
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
    pub is_bundle: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Location {
    pub location_id: String,
    pub name: String,
    pub location_type: String,
    pub region: String,
    pub country: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Alias {
    pub system: String,
    pub external_id: String,
    pub sku: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BundleLine {
    pub bundle_sku: String,
    pub component_sku: String,
    pub qty: i64,
}

/// What an external id names.
#[derive(Debug, PartialEq)]
pub enum Resolved<'a> {
    Sku(&'a str),
    /// A kit: its components and units of each per kit.
    Bundle(&'a str, &'a [(String, i64)]),
    Unmapped,
}

#[derive(Debug, Default)]
pub struct Reference {
    pub skus: Vec<Sku>,
    pub locations: Vec<Location>,
    pub aliases: Vec<Alias>,
    pub bundles: Vec<BundleLine>,
    sku_index: HashMap<String, usize>,
    location_index: HashMap<String, usize>,
    /// System (or `*`) → external id → canonical SKU: looked up by `&str`, once per row.
    alias_index: HashMap<String, HashMap<String, String>>,
    components: HashMap<String, Vec<(String, i64)>>,
}

impl Reference {
    pub fn new(skus: Vec<Sku>, locations: Vec<Location>, aliases: Vec<Alias>, bundles: Vec<BundleLine>) -> Self {
        let sku_index = skus.iter().enumerate().map(|(i, s)| (s.sku.clone(), i)).collect();
        let location_index = locations.iter().enumerate().map(|(i, l)| (l.location_id.clone(), i)).collect();
        let mut alias_index: HashMap<String, HashMap<String, String>> = HashMap::new();
        for a in &aliases {
            alias_index.entry(a.system.clone()).or_default().insert(a.external_id.clone(), a.sku.clone());
        }
        let mut components: HashMap<String, Vec<(String, i64)>> = HashMap::new();
        for b in &bundles {
            components.entry(b.bundle_sku.clone()).or_default().push((b.component_sku.clone(), b.qty));
        }
        Reference { skus, locations, aliases, bundles, sku_index, location_index, alias_index, components }
    }

    pub fn location(&self, id: &str) -> Option<&Location> {
        self.location_index.get(id).map(|&i| &self.locations[i])
    }

    pub fn sku(&self, id: &str) -> Option<&Sku> {
        self.sku_index.get(id).map(|&i| &self.skus[i])
    }

    /// A system's own alias first, then an alias for every system (`*`), then the id itself
    /// as a canonical SKU.
    pub fn resolve(&self, system: &str, external_id: &str) -> Resolved<'_> {
        let alias = |system: &str| self.alias_index.get(system).and_then(|ids| ids.get(external_id));
        let canonical = alias(system)
            .or_else(|| alias("*"))
            .map(String::as_str)
            .unwrap_or(external_id);
        match self.sku_index.get(canonical) {
            None => Resolved::Unmapped,
            Some(&i) => {
                let sku = &self.skus[i];
                match self.components.get(&sku.sku) {
                    Some(parts) if sku.is_bundle => Resolved::Bundle(&sku.sku, parts),
                    _ => Resolved::Sku(&sku.sku),
                }
            }
        }
    }

    /// Loads the four reference files; aliases and bundles are optional.
    pub fn from_files(
        skus: (&str, &[u8]),
        locations: (&str, &[u8]),
        aliases: Option<(&str, &[u8])>,
        bundles: Option<(&str, &[u8])>,
    ) -> Result<Reference> {
        let skus = read(skus, &["sku", "unit_cost"], |r| {
            Ok(Sku {
                sku: r.req("sku")?,
                product_id: r.opt("product_id")?.unwrap_or_else(|| r.req("sku").unwrap_or_default()),
                title: r.opt("title")?.unwrap_or_default(),
                option1: r.opt("option1")?,
                option2: r.opt("option2")?,
                unit_cost: r.num("unit_cost")?.unwrap_or(0.0),
                price: r.num("price")?.unwrap_or(0.0),
                case_pack: r.num("case_pack")?.unwrap_or(1.0) as i64,
                moq: r.num("moq")?.unwrap_or(0.0) as i64,
                lead_time_days: r.num("lead_time_days")?.unwrap_or(0.0),
                lead_time_sd: r.num("lead_time_sd")?.unwrap_or(0.0),
                is_bundle: r.flag("is_bundle")?,
            })
        })?;
        let locations = read(locations, &["location_id", "type", "region"], |r| {
            Ok(Location {
                location_id: r.req("location_id")?,
                name: r.opt("name")?.unwrap_or_default(),
                location_type: r.req("type")?,
                region: r.req("region")?,
                country: r.opt("country")?.unwrap_or_default(),
            })
        })?;
        let aliases = match aliases {
            Some(file) => read(file, &["system", "external_id", "sku"], |r| {
                Ok(Alias { system: r.req("system")?, external_id: r.req("external_id")?, sku: r.req("sku")? })
            })?,
            None => vec![],
        };
        let bundles = match bundles {
            Some(file) => read(file, &["bundle_sku", "component_sku", "qty"], |r| {
                Ok(BundleLine {
                    bundle_sku: r.req("bundle_sku")?,
                    component_sku: r.req("component_sku")?,
                    qty: r.num("qty")?.unwrap_or(1.0) as i64,
                })
            })?,
            None => vec![],
        };
        let reference = Reference::new(skus, locations, aliases, bundles);
        reference.check()?;
        Ok(reference)
    }

    /// Every alias and bundle line must name a known SKU.
    fn check(&self) -> Result<()> {
        for a in &self.aliases {
            if self.sku(&a.sku).is_none() {
                return Err(Error::Usage(format!("sku_aliases: alias {}:{} names unknown sku '{}'", a.system, a.external_id, a.sku)));
            }
        }
        for b in &self.bundles {
            if self.sku(&b.component_sku).is_none() || self.sku(&b.bundle_sku).is_none() {
                return Err(Error::Usage(format!("bundles: {} → {} names an unknown sku", b.bundle_sku, b.component_sku)));
            }
        }
        Ok(())
    }
}

/// One reference line with its table, for typed access with good errors.
struct RefRow<'a, 'b> {
    file: &'a str,
    table: &'a Table,
    line: &'a RawLine<'b>,
}

impl RefRow<'_, '_> {
    fn err(&self, field: &str, message: impl Into<String>) -> Error {
        Error::Reference { file: self.file.to_string(), line: self.line.line, field: field.to_string(), message: message.into() }
    }
    fn opt(&self, field: &str) -> Result<Option<String>> {
        self.line.text(self.table, field).map(|v| v.map(str::to_string)).map_err(|e| self.err(field, e.message))
    }
    fn req(&self, field: &str) -> Result<String> {
        self.opt(field)?.ok_or_else(|| self.err(field, "empty value"))
    }
    fn num(&self, field: &str) -> Result<Option<f64>> {
        match self.opt(field)? {
            None => Ok(None),
            Some(t) => t.parse::<f64>().map(Some).map_err(|_| self.err(field, format!("'{t}' is not a number"))),
        }
    }
    fn flag(&self, field: &str) -> Result<bool> {
        Ok(matches!(self.opt(field)?.map(|s| s.to_ascii_lowercase()).as_deref(), Some("true" | "yes" | "1")))
    }
}

fn read<T>((file, bytes): (&str, &[u8]), required: &[&str], map: impl Fn(&RefRow) -> Result<T>) -> Result<Vec<T>> {
    let failed = |e: crate::sources::table::FileError| Error::Reference { file: file.to_string(), line: e.line, field: e.field, message: e.message };
    let (table, mut lines) = Table::open(bytes, b',').map_err(failed)?;
    table.require(required, b',').map_err(failed)?;
    let mut rows = vec![];
    while let Some(line) = lines.next() {
        line.check_width(&table)
            .map_err(|e| Error::Reference { file: file.to_string(), line: line.line, field: e.field, message: e.message })?;
        rows.push(map(&RefRow { file, table: &table, line })?);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference() -> Reference {
        Reference::from_files(
            ("skus.csv", b"sku,unit_cost,is_bundle\nTEE-M,4.5,false\nMUG,2,false\nKIT,0,true\n"),
            ("locations.csv", b"location_id,type,region\nS1,store,US\n"),
            Some(("sku_aliases.csv", b"system,external_id,sku\nerp,100,TEE-M\n*,tee-m,TEE-M\n")),
            Some(("bundles.csv", b"bundle_sku,component_sku,qty\nKIT,TEE-M,1\nKIT,MUG,2\n")),
        )
        .unwrap()
    }

    #[test]
    fn resolves_aliases_canonical_ids_and_bundles() {
        let r = reference();
        assert_eq!(r.resolve("erp", "100"), Resolved::Sku("TEE-M"));
        assert_eq!(r.resolve("pos", "100"), Resolved::Unmapped);
        assert_eq!(r.resolve("shopify", "tee-m"), Resolved::Sku("TEE-M"));
        assert_eq!(r.resolve("pos", "MUG"), Resolved::Sku("MUG"));
        let Resolved::Bundle(kit, parts) = r.resolve("pos", "KIT") else { panic!() };
        assert_eq!((kit, parts.len(), parts[1].1), ("KIT", 2, 2));
    }

    #[test]
    fn bad_reference_row_names_file_line_and_field() {
        let err = Reference::from_files(
            ("skus.csv", b"sku,unit_cost\nA,1\nB,cheap\n"),
            ("locations.csv", b"location_id,type,region\nS1,store,US\n"),
            None,
            None,
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "reference skus.csv:3: field 'unit_cost': 'cheap' is not a number");
    }
}
