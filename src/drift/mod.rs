//! Drift intelligence: ABC classes, variance trends, drift patterns. The statistics run in
//! Rust over tables the SQL models produce; their results are tables again.

pub mod abc;
pub mod exceptions;
pub mod patterns;
pub mod points;
pub mod trends;

use std::collections::HashMap;

use arrow::array::{Array, StringArray, StringViewArray};
use arrow::record_batch::RecordBatch;
use chrono::NaiveDate;

use crate::error::Result;

pub fn date_from_days(days: i64) -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch") + chrono::TimeDelta::days(days)
}

/// A day number as a date literal: filters on `snapshot_date` in this form read only the
/// partitions of those days.
pub fn date_literal(day: i64) -> String {
    format!("arrow_cast(arrow_cast({day}, 'Int32'), 'Date32')")
}

/// A two-column text query as a map from the first column to the second (NULLs skipped).
pub async fn text_map(ctx: &datafusion::prelude::SessionContext, context: &str, sql: &str) -> Result<std::collections::HashMap<String, String>> {
    let mut out = std::collections::HashMap::new();
    for batch in crate::warehouse::collect(ctx, context, sql).await? {
        let c = Columns::new(&batch);
        for (key, value) in c.text(0)?.into_iter().zip(c.text(1)?) {
            if let (Some(key), Some(value)) = (key, value) {
                out.insert(key, value);
            }
        }
    }
    Ok(out)
}

/// Columns of a query result by position, typed.
pub struct Columns<'a> {
    batch: &'a RecordBatch,
}

impl<'a> Columns<'a> {
    pub fn new(batch: &'a RecordBatch) -> Self {
        Columns { batch }
    }
    pub fn text(&self, i: usize) -> Result<Vec<Option<String>>> {
        crate::warehouse::strings(self.batch, i)
    }
    /// A text column read in place: for hot loops that must not allocate a string per row.
    pub fn text_array(&self, i: usize) -> Result<Texts> {
        let column = self.batch.column(i);
        if let Some(view) = column.as_any().downcast_ref::<StringViewArray>() {
            return Ok(Texts::View(view.clone()));
        }
        let array = arrow::compute::cast(column, &arrow::datatypes::DataType::Utf8)
            .map_err(|e| crate::Error::arrow("reading a text column", e))?;
        Ok(Texts::Utf8(arrow::array::cast::as_string_array(&array).clone()))
    }
    pub fn int(&self, i: usize) -> Result<Vec<Option<i64>>> {
        crate::warehouse::integers(self.batch, i)
    }
    pub fn float(&self, i: usize) -> Result<Vec<Option<f64>>> {
        crate::warehouse::floats(self.batch, i)
    }
    pub fn boolean(&self, i: usize) -> Result<Vec<Option<bool>>> {
        let array = arrow::compute::cast(self.batch.column(i), &arrow::datatypes::DataType::Boolean)
            .map_err(|e| crate::Error::arrow("reading a boolean column", e))?;
        Ok(arrow::array::cast::as_boolean_array(&array).iter().collect())
    }
}

/// A text column as scans return it (string views) or as anything else casts to.
pub enum Texts {
    Utf8(StringArray),
    View(StringViewArray),
}

impl Texts {
    pub fn get(&self, i: usize) -> Option<&str> {
        match self {
            Texts::Utf8(a) => (!a.is_null(i)).then(|| a.value(i)),
            Texts::View(a) => (!a.is_null(i)).then(|| a.value(i)),
        }
    }
}

/// SKU-location-system keys of query rows as dense ids, so that rows can be grouped by
/// series without allocating three strings per row (a tier-M history has tens of millions).
/// Scans return a day's rows ordered by SKU and location, so a row mostly has the previous
/// row's SKU-location, and a SKU-location has few systems: most rows cost two string
/// comparisons and a short scan, no hashing.
#[derive(Default)]
pub struct SeriesKeys {
    /// SKU-location ids by "sku\u{1f}location".
    pairs: HashMap<String, u32>,
    pair_names: Vec<(String, String)>,
    systems: Vec<String>,
    /// The series of each SKU-location: (system index, series id).
    series_of_pair: Vec<Vec<(u16, u32)>>,
    /// (SKU-location, system index) of each series id.
    series: Vec<(u32, u16)>,
}

impl SeriesKeys {
    /// The series id of each row of a batch (None where a part of the key is NULL). Ids
    /// count up from 0 in the order keys are first seen.
    pub fn ids(&mut self, sku: &Texts, location: &Texts, system: &Texts, rows: usize) -> Vec<Option<u32>> {
        let mut ids = Vec::with_capacity(rows);
        let mut previous: Option<(&str, &str, u32)> = None;
        let mut joined = String::new();
        for i in 0..rows {
            let (Some(s), Some(l), Some(y)) = (sku.get(i), location.get(i), system.get(i)) else {
                ids.push(None);
                continue;
            };
            let pair = match previous {
                Some((ps, pl, pair)) if ps == s && pl == l => pair,
                _ => {
                    joined.clear();
                    joined.push_str(s);
                    joined.push('\u{1f}');
                    joined.push_str(l);
                    match self.pairs.get(joined.as_str()) {
                        Some(&pair) => pair,
                        None => {
                            let pair = self.pair_names.len() as u32;
                            self.pairs.insert(joined.clone(), pair);
                            self.pair_names.push((s.to_string(), l.to_string()));
                            self.series_of_pair.push(vec![]);
                            pair
                        }
                    }
                }
            };
            previous = Some((s, l, pair));
            let system_index = match self.systems.iter().position(|known| known == y) {
                Some(index) => index as u16,
                None => {
                    self.systems.push(y.to_string());
                    (self.systems.len() - 1) as u16
                }
            };
            let of_pair = &mut self.series_of_pair[pair as usize];
            let id = match of_pair.iter().find(|(index, _)| *index == system_index) {
                Some(&(_, id)) => id,
                None => {
                    let id = self.series.len() as u32;
                    self.series.push((pair, system_index));
                    of_pair.push((system_index, id));
                    id
                }
            };
            ids.push(Some(id));
        }
        ids
    }

    pub fn len(&self) -> usize {
        self.series.len()
    }

    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// (sku, location, system) of a series id.
    pub fn key(&self, id: u32) -> (&str, &str, &str) {
        let (pair, system) = self.series[id as usize];
        let (sku, location) = &self.pair_names[pair as usize];
        (sku, location, &self.systems[system as usize])
    }

    /// The keys, indexed by id.
    pub fn into_keys(self) -> Vec<(String, String, String)> {
        (0..self.series.len() as u32)
            .map(|id| {
                let (sku, location, system) = self.key(id);
                (sku.to_string(), location.to_string(), system.to_string())
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_of_one_series_share_an_id_and_nulls_have_none() {
        let sku = Texts::Utf8(StringArray::from(vec![Some("A"), Some("A"), Some("AB"), None]));
        let location = Texts::View(StringViewArray::from(vec![Some("L1"), Some("L1"), Some("L1"), Some("L1")]));
        // "A" + "BL1" must not collide with "AB" + "L1".
        let system = Texts::Utf8(StringArray::from(vec!["pos", "pos", "pos", "pos"]));
        let other = Texts::View(StringViewArray::from(vec!["BL1", "L1", "L1", "L1"]));
        let mut keys = SeriesKeys::default();
        assert_eq!(keys.ids(&sku, &location, &system, 4), [Some(0), Some(0), Some(1), None]);
        assert_eq!(keys.ids(&sku, &other, &system, 1), [Some(2)]);
        let erp = Texts::Utf8(StringArray::from(vec!["erp", "pos"]));
        assert_eq!(keys.ids(&sku, &location, &erp, 2), [Some(3), Some(0)], "another system is another series");
        assert_eq!(keys.key(1), ("AB", "L1", "pos"));
        assert_eq!(keys.key(3), ("A", "L1", "erp"));
        assert_eq!(keys.len(), 4);
    }
}
