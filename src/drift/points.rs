//! drift_patterns' kept points (`drift_patterns_points`): the trailing history of every series
//! as narrow rows of numbers keyed by a 64-bit hash of the series, partitioned by day.
//!
//! The tests need every point of the series that may show a pattern (a few thousand of
//! 150 k at tier M), and any series can become one with its next flag. Read from `variances`,
//! finding them meant joining 120 days (18 M rows at tier M) on three texts; read from here,
//! it is a scan of integers and a lookup of each key. A build that only adds days adds their
//! rows and drops the days that left the history; any other build writes the history afresh.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, BooleanArray, Int64Array};
use arrow::datatypes::{DataType, Field, Int32Type, Int64Type, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use datafusion::prelude::SessionContext;
use deltalake::parquet::basic::{Compression, Encoding};
use deltalake::parquet::schema::types::ColumnPath;
use futures::StreamExt;

use super::{Columns, Texts, date_literal};
use crate::error::{Error, Result};
use crate::warehouse::{TableSpec, Warehouse, Write, collect};

pub const TABLE: &str = "drift_patterns_points";

/// Days of variances read (and written here) at a time when the history is written afresh: a
/// tier-M history is 18 M rows, too many to hold at once.
const DAYS_PER_PASS: i64 = 15;

/// The key of a series: a 64-bit hash of its system, location and SKU. Written down here, not
/// taken from a crate, because the table keeps it across versions.
pub fn series_key(sku: &str, location: &str, system: &str) -> i64 {
    finish(hash(hash(hash(SEED, system), location), sku))
}

const SEED: u64 = 0xcbf2_9ce4_8422_2325;
const CHECK_SEED: u64 = 0x9e37_79b9_7f4a_7c15;

/// Goes on hashing `text` from `state`, eight bytes at a time (FNV-1a over words; the length
/// ends each part, so that "ab" + "c" and "a" + "bc" differ).
fn hash(state: u64, text: &str) -> u64 {
    let step = |h: u64, word: u64| (h ^ word).wrapping_mul(0x0100_0000_01b3);
    let mut words = text.as_bytes().chunks_exact(8);
    let mut h = words.by_ref().fold(state, |h, word| step(h, u64::from_le_bytes(word.try_into().expect("eight bytes"))));
    if !words.remainder().is_empty() {
        let mut word = [0u8; 8];
        word[..words.remainder().len()].copy_from_slice(words.remainder());
        h = step(h, u64::from_le_bytes(word));
    }
    step(h, text.len() as u64 | 1 << 63)
}

/// Mixes every bit of the state into every bit of the key (MurmurHash3's finaliser).
fn finish(state: u64) -> i64 {
    let mut h = state;
    h = (h ^ (h >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
    h = (h ^ (h >> 33)).wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    (h ^ (h >> 33)) as i64
}

/// A point of a series in 24 bytes instead of 48: stock quantities fit in 32 bits.
#[derive(Clone, Copy)]
pub struct CompactPoint {
    pub day: i32,
    pub system_qty: i32,
    pub authoritative_qty: i32,
    pub delta: i32,
    pub in_transit: i32,
    /// 1: flagged, 2: explained.
    pub flags: u8,
}

impl CompactPoint {
    pub fn new(day: i64, authoritative_qty: i64, delta: i64, flagged: bool, explained: bool, in_transit: i64) -> CompactPoint {
        let clamp = |v: i64| v.clamp(i32::MIN as i64, i32::MAX as i64) as i32;
        CompactPoint {
            day: clamp(day),
            system_qty: clamp(authoritative_qty.saturating_add(delta)),
            authoritative_qty: clamp(authoritative_qty),
            delta: clamp(delta),
            in_transit: clamp(in_transit),
            flags: flagged as u8 | (explained as u8) << 1,
        }
    }

    /// Flagged and not explained.
    pub fn real_flag(&self) -> bool {
        self.flags & 3 == 1
    }

    /// Not explained, and off the authoritative number.
    pub fn real_nonzero(&self) -> bool {
        self.flags & 2 == 0 && self.delta != 0
    }
}

/// What the per-series counts of drift_patterns hold, tallied from a series' rows.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Tally {
    pub rows: i64,
    pub last_day: i64,
    pub real_flags: i64,
    pub real_nonzero: i64,
    /// Rows whose system number differs from the authoritative one (every variance row has
    /// both, so: a delta).
    pub differing: i64,
    pub window_rows: i64,
    pub window_real_nonzero: i64,
}

impl Tally {
    fn add(&mut self, p: &CompactPoint, window_after: i64) {
        let (in_window, real_nonzero) = (p.day as i64 > window_after, p.real_nonzero() as i64);
        self.rows += 1;
        self.last_day = self.last_day.max(p.day as i64);
        self.real_flags += p.real_flag() as i64;
        self.real_nonzero += real_nonzero;
        self.differing += (p.delta != 0) as i64;
        self.window_rows += in_window as i64;
        self.window_real_nonzero += in_window as i64 * real_nonzero;
    }

    fn merge(&mut self, other: &Tally) {
        self.rows += other.rows;
        self.last_day = self.last_day.max(other.last_day);
        self.real_flags += other.real_flags;
        self.real_nonzero += other.real_nonzero;
        self.differing += other.differing;
        self.window_rows += other.window_rows;
        self.window_real_nonzero += other.window_real_nonzero;
    }
}

/// Every series a scan of `variances` met, with the tally of its rows.
pub struct Census {
    /// (key, a second hash of the name, tally) in the order first met. A scan returns every
    /// day's rows in the same order, so a row's series is mostly the one after the previous
    /// row's: found without a lookup, and the entries are walked in order (looked up in
    /// `index` each, among 150 k at tier M, most rows cost a cache miss: 5 s of a full pass).
    entries: Vec<(i64, u64, Tally)>,
    names: Vec<(String, String, String)>,
    index: HashMap<i64, usize, BuildHasherDefault<KeyHasher>>,
    /// Where the next row's series is looked for first.
    next: usize,
    /// Two series share a key (they differ in the second hash): the kept points cannot tell
    /// them apart, nor the tallies.
    pub collided: bool,
    /// Days after this one are in the pattern window.
    window_after: i64,
}

impl Census {
    fn new(window_after: i64) -> Census {
        Census { entries: vec![], names: vec![], index: HashMap::default(), next: 0, collided: false, window_after }
    }

    fn find(&mut self, key: i64, check: u64, name: impl FnOnce() -> (String, String, String)) -> usize {
        let i = match self.entries.get(self.next) {
            Some(entry) if entry.0 == key => self.next,
            _ => match self.index.get(&key) {
                Some(&i) => i,
                None => {
                    self.entries.push((key, check, Tally { last_day: i64::MIN, ..Tally::default() }));
                    self.names.push(name());
                    self.index.insert(key, self.entries.len() - 1);
                    self.entries.len() - 1
                }
            },
        };
        self.collided |= self.entries[i].1 != check;
        self.next = i + 1;
        i
    }

    fn add(&mut self, (key, check): (i64, u64), name: impl FnOnce() -> (String, String, String), p: &CompactPoint) {
        let i = self.find(key, check, name);
        self.entries[i].2.add(p, self.window_after);
    }

    fn merge(&mut self, other: Census) {
        self.collided |= other.collided;
        for ((key, check, tally), name) in other.entries.into_iter().zip(other.names) {
            let i = self.find(key, check, || name);
            self.entries[i].2.merge(&tally);
        }
    }

    /// Each series' name and tally.
    pub fn series(&self) -> impl Iterator<Item = (&(String, String, String), &Tally)> {
        self.names.iter().zip(self.entries.iter().map(|(_, _, tally)| tally))
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// The points of the series wanted (by key), as they are read.
pub struct Gathered {
    index: HashMap<i64, usize, BuildHasherDefault<KeyHasher>>,
    pub points: Vec<Vec<CompactPoint>>,
}

impl Gathered {
    pub fn new(keys: impl IntoIterator<Item = i64>) -> Gathered {
        let index: HashMap<i64, usize, _> = keys.into_iter().enumerate().map(|(i, key)| (key, i)).collect();
        Gathered { points: vec![vec![]; index.len()], index }
    }
}

/// Hashes a series key, which is a hash already, with one multiplication: every row read
/// (18 M at tier M) is looked up, and the default hasher took 0.37 s of a daily run for it.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn write_i64(&mut self, key: i64) {
        self.0 = (key as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

fn schema() -> SchemaRef {
    let number = |name: &str| Field::new(name, DataType::Int64, false);
    Arc::new(Schema::new(vec![
        number("series_key"),
        Field::new("snapshot_date", DataType::Date32, false),
        number("authoritative_qty"),
        number("delta"),
        Field::new("flagged", DataType::Boolean, false),
        Field::new("explained", DataType::Boolean, false),
        number("in_transit"),
    ]))
}

fn spec() -> TableSpec {
    TableSpec { name: TABLE, schema: schema(), partition_by: &["snapshot_date"] }
}

/// Read back whole by every build that adds a day, so stored for reading: not compressed
/// (decompressing was most of the read), and the quantities as differences from the row
/// before, bit-packed (a few bits a row instead of eight bytes; dictionaries were as small
/// but slower to write).
fn write(warehouse: &Warehouse, rows: Vec<RecordBatch>, mode: Write) -> impl Future<Output = Result<()>> {
    let spec = spec();
    let properties = crate::warehouse::writer_properties(&spec.schema).map(|builder| {
        ["authoritative_qty", "delta", "in_transit"]
            .into_iter()
            .fold(builder.set_compression(Compression::UNCOMPRESSED), |builder, column| {
                builder.set_column_dictionary_enabled(ColumnPath::from(column), false).set_column_encoding(ColumnPath::from(column), Encoding::DELTA_BINARY_PACKED)
            })
            .build()
    });
    async move { warehouse.write_with(&spec, rows, mode, properties?).await }
}

/// Brings the kept points, which hold the history through `through`, to the history
/// `first_day..=last_day`, adding the points of the series in `gathered` on the way.
pub async fn slide(warehouse: &Warehouse, ctx: &SessionContext, first_day: i64, last_day: i64, through: i64, gathered: &mut Gathered) -> Result<()> {
    let clock = std::time::Instant::now();
    let new_rows = from_variances(ctx, through + 1, last_day, gathered).await?;
    tracing::debug!(seconds = clock.elapsed().as_secs_f64(), "drift_patterns: the new days' points read");
    let replaced = format!("snapshot_date > {} or snapshot_date < {}", date_literal(through), date_literal(first_day));
    let write = write(warehouse, new_rows, Write::Where(replaced));
    // The session reads the version before this write.
    let (written, read) = tokio::join!(write, read_kept(ctx, first_day, through, gathered));
    tracing::debug!(seconds = clock.elapsed().as_secs_f64(), "drift_patterns: kept points read and the new days' written");
    written?;
    read
}

/// Whether the kept points hold `day` (the kept table is in the session and has rows of it).
pub async fn holds_day(ctx: &SessionContext, day: i64) -> Result<bool> {
    if !ctx.table_exist(TABLE).map_err(|e| Error::query("drift_patterns: kept points", e))? {
        return Ok(false);
    }
    let sql = format!("select count(*) from {TABLE} where snapshot_date = {}", date_literal(day));
    let batches = collect(ctx, "drift_patterns: kept points", &sql).await?;
    Ok(batches.first().map(|b| Columns::new(b).int(0)).transpose()?.and_then(|c| c[0]).unwrap_or(0) > 0)
}

/// Writes the points of the history `first_day..=last_day` afresh from `variances`, a few days
/// at a time (each pass written while the next is read). With `gathered`, adds the points of
/// its series on the way; without, tallies every series met (`window_after`: see `Census`).
pub async fn write_afresh(warehouse: &Warehouse, ctx: &SessionContext, first_day: i64, last_day: i64, window_after: i64, mut gathered: Option<&mut Gathered>) -> Result<Census> {
    // One per partition of the scans, merged at the end.
    let mut censuses: Vec<Census> = vec![];
    let mut pending: Option<(Vec<RecordBatch>, Write)> = None;
    let mut start = first_day;
    while start <= last_day {
        let end = (start + DAYS_PER_PASS - 1).min(last_day);
        let read = async {
            match gathered.as_deref_mut() {
                Some(gathered) => from_variances(ctx, start, end, gathered).await,
                None => tally(ctx, start, end, window_after, &mut censuses).await,
            }
        };
        let rows = match pending.take() {
            Some((rows, mode)) => {
                let (written, read) = tokio::join!(write(warehouse, rows, mode), read);
                written?;
                read?
            }
            None => read.await?,
        };
        pending = Some((rows, if start == first_day { Write::All } else { Write::Append }));
        start = end + 1;
    }
    let (rows, mode) = pending.unwrap_or((vec![], Write::All));
    write(warehouse, rows, mode).await?;
    let mut census = Census::new(window_after);
    for other in censuses {
        census.merge(other);
    }
    Ok(census)
}

const CONTEXT: &str = "drift_patterns: variances";

/// The variances of days `from..=to` with the columns of a point.
fn variances_sql(from: i64, to: i64) -> String {
    format!(
        "select sku, location_id, system, arrow_cast(snapshot_date, 'Int32') as day, coalesce(authoritative_qty, 0),
                coalesce(delta, 0), coalesce(flagged, false), explained_by is not null, coalesce(in_transit, 0)
         from variances where snapshot_date >= {} and snapshot_date <= {}",
        date_literal(from),
        date_literal(to)
    )
}

/// A batch of `variances_sql`: the text columns, and the rows' points.
struct Read<'a> {
    batch: &'a RecordBatch,
    texts: [Texts; 3],
}

impl<'a> Read<'a> {
    fn new(batch: &'a RecordBatch) -> Result<Read<'a>> {
        let c = Columns::new(batch);
        Ok(Read { batch, texts: [c.text_array(0)?, c.text_array(1)?, c.text_array(2)?] })
    }

    /// Each row's key and check (None where a part of the name is NULL).
    fn keys(&self) -> Vec<Option<(i64, u64)>> {
        let [sku, location, system] = &self.texts;
        keys(sku, location, system, self.batch.num_rows())
    }

    fn name(&self, i: usize) -> (String, String, String) {
        let text = |t: &Texts| t.get(i).unwrap_or_default().to_string();
        (text(&self.texts[0]), text(&self.texts[1]), text(&self.texts[2]))
    }

    /// The points of the rows, handed to `visit` with their row and key.
    fn points(&self, keys: &[Option<(i64, u64)>], mut visit: impl FnMut(usize, (i64, u64), &CompactPoint)) {
        let points = PointColumns::new(self.batch, 3);
        for (i, key) in keys.iter().enumerate() {
            if let Some(key) = *key {
                visit(i, key, &points.point(i));
            }
        }
    }

    /// The rows as this table's (rows with a part of the name missing belong to no series).
    fn rows(&self, keys: Vec<Option<(i64, u64)>>) -> Result<RecordBatch> {
        let whole = keys.iter().all(Option::is_some);
        let keep = BooleanArray::from(keys.iter().map(Option::is_some).collect::<Vec<_>>());
        let keys: Int64Array = keys.into_iter().flatten().map(|(key, _)| key).collect();
        let filter = |i: usize| match whole {
            true => Ok(self.batch.column(i).clone()),
            false => arrow::compute::filter(self.batch.column(i), &keep).map_err(|e| Error::arrow(CONTEXT, e)),
        };
        let day = arrow::compute::cast(&filter(3)?, &DataType::Date32).map_err(|e| Error::arrow(CONTEXT, e))?;
        let columns: Vec<ArrayRef> = vec![Arc::new(keys), day, filter(4)?, filter(5)?, filter(6)?, filter(7)?, filter(8)?];
        RecordBatch::try_new(schema(), columns).map_err(|e| Error::arrow(CONTEXT, e))
    }
}

/// A point's columns in a batch, from `first` on: the day as Int32, authoritative_qty, delta,
/// flagged, explained and in_transit, none NULL (the order of this table's and of
/// `variances_sql`'s).
struct PointColumns<'a> {
    days: &'a arrow::array::Int32Array,
    numbers: [&'a Int64Array; 3],
    flags: [&'a BooleanArray; 2],
}

impl<'a> PointColumns<'a> {
    fn new(batch: &'a RecordBatch, first: usize) -> PointColumns<'a> {
        let int64 = |i: usize| batch.column(first + i).as_primitive::<Int64Type>();
        let boolean = |i: usize| batch.column(first + i).as_boolean();
        PointColumns { days: batch.column(first).as_primitive::<Int32Type>(), numbers: [int64(1), int64(2), int64(5)], flags: [boolean(3), boolean(4)] }
    }

    fn point(&self, i: usize) -> CompactPoint {
        let [aq, delta, in_transit] = self.numbers.map(|c| c.value(i));
        CompactPoint::new(self.days.value(i) as i64, aq, delta, self.flags[0].value(i), self.flags[1].value(i), in_transit)
    }
}

/// The variances of days `from..=to` as rows of this table, adding the wanted series' points
/// to `gathered` on the way.
async fn from_variances(ctx: &SessionContext, from: i64, to: i64, gathered: &mut Gathered) -> Result<Vec<RecordBatch>> {
    if from > to {
        return Ok(vec![]);
    }
    let frame = ctx.sql(&variances_sql(from, to)).await.map_err(|e| Error::query(CONTEXT, e))?;
    let mut stream = frame.execute_stream().await.map_err(|e| Error::query(CONTEXT, e))?;
    let mut out = vec![];
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(|e| Error::query(CONTEXT, e))?;
        let read = Read::new(&batch)?;
        let keys = read.keys();
        read.points(&keys, |_, (key, _), point| {
            if let Some(&series) = gathered.index.get(&key) {
                gathered.points[series].push(*point);
            }
        });
        out.push(read.rows(keys)?);
    }
    Ok(out)
}

/// The variances of days `from..=to` as rows of this table, tallying every series met in
/// `censuses` (one per partition of the scan, each partition in a task of its own, so that
/// the tallying uses every core).
async fn tally(ctx: &SessionContext, from: i64, to: i64, window_after: i64, censuses: &mut Vec<Census>) -> Result<Vec<RecordBatch>> {
    let frame = ctx.sql(&variances_sql(from, to)).await.map_err(|e| Error::query(CONTEXT, e))?;
    let streams = frame.execute_stream_partitioned().await.map_err(|e| Error::query(CONTEXT, e))?;
    let tasks: Vec<_> = streams.into_iter().map(|stream| (stream, censuses.pop().unwrap_or_else(|| Census::new(window_after)))).collect();
    let tasks = tasks.into_iter().map(|(mut stream, mut census)| {
        tokio::spawn(async move {
            let mut out = vec![];
            while let Some(batch) = stream.next().await {
                let batch = batch.map_err(|e| Error::query(CONTEXT, e))?;
                let read = Read::new(&batch)?;
                let keys = read.keys();
                read.points(&keys, |i, key, point| census.add(key, || read.name(i), point));
                out.push(read.rows(keys)?);
            }
            Ok::<_, Error>((census, out))
        })
    });
    let mut out = vec![];
    for task in futures::future::join_all(tasks.collect::<Vec<_>>()).await {
        let (census, rows) = task.map_err(|e| Error::Usage(format!("{CONTEXT}: a scan stopped: {e}")))??;
        censuses.push(census);
        out.extend(rows);
    }
    Ok(out)
}

/// The key and check of each row (None where a part is NULL): `series_key`, and the same
/// hash from another seed. Scans return a day's rows by system and location, so the hashes of
/// those two are mostly the previous row's.
fn keys(sku: &Texts, location: &Texts, system: &Texts, rows: usize) -> Vec<Option<(i64, u64)>> {
    let mut previous: Option<(&str, &str, u64, u64)> = None;
    (0..rows)
        .map(|i| {
            let (Some(s), Some(l), Some(y)) = (sku.get(i), location.get(i), system.get(i)) else { return None };
            let (key, check) = match previous {
                Some((py, pl, key, check)) if py == y && pl == l => (key, check),
                _ => (hash(hash(SEED, y), l), hash(hash(CHECK_SEED, y), l)),
            };
            previous = Some((y, l, key, check));
            Some((finish(hash(key, s)), finish(hash(check, s)) as u64))
        })
        .collect()
}

/// Adds the wanted series' kept points of days `from..=to`.
pub async fn read_kept(ctx: &SessionContext, from: i64, to: i64, gathered: &mut Gathered) -> Result<()> {
    let context = "drift_patterns: kept points";
    if gathered.index.is_empty() || from > to {
        return Ok(());
    }
    let sql = format!(
        "select series_key, arrow_cast(snapshot_date, 'Int32'), authoritative_qty, delta, flagged, explained, in_transit
         from {TABLE} where snapshot_date >= {} and snapshot_date <= {}",
        date_literal(from),
        date_literal(to)
    );
    let frame = ctx.sql(&sql).await.map_err(|e| Error::query(context, e))?;
    let mut stream = frame.execute_stream().await.map_err(|e| Error::query(context, e))?;
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(|e| Error::query(context, e))?;
        let points = PointColumns::new(&batch, 1);
        for (i, key) in batch.column(0).as_primitive::<Int64Type>().values().iter().enumerate() {
            if let Some(&series) = gathered.index.get(key) {
                gathered.points[series].push(points.point(i));
            }
        }
    }
    Ok(())
}

/// Whether no two of `keys` are equal: the kept points tell series apart only then.
pub fn distinct(keys: impl IntoIterator<Item = i64>) -> bool {
    let mut seen = std::collections::HashSet::new();
    keys.into_iter().all(|key| seen.insert(key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{StringArray, StringViewArray};

    #[test]
    fn series_keys_are_stable_and_tell_the_parts_apart() {
        // The kept table holds these: a change of the hash would make every kept point unfound.
        assert_eq!(series_key("SKU-000001", "STORE-001", "pos"), KEY_OF_FIRST);
        assert_eq!(series_key("", "", ""), KEY_OF_EMPTY);
        assert_ne!(series_key("A", "BL1", "pos"), series_key("AB", "L1", "pos"));
        assert_ne!(series_key("SKU-000001", "STORE-001", "pos"), series_key("SKU-000001", "STORE-001", "erp"));
        // Rows hash as names do, in either text layout, the hash of system and location reused.
        let sku = Texts::Utf8(StringArray::from(vec![Some("SKU-000001"), Some("SKU-000002"), Some("a longer sku of 24 bytes"), None]));
        let location = Texts::View(StringViewArray::from(vec!["STORE-001", "STORE-001", "DC-1", "DC-1"]));
        let system = Texts::Utf8(StringArray::from(vec!["pos", "pos", "pos", "pos"]));
        let keys: Vec<Option<i64>> = keys(&sku, &location, &system, 4).into_iter().map(|k| k.map(|(key, _)| key)).collect();
        let expected = [("SKU-000001", "STORE-001"), ("SKU-000002", "STORE-001"), ("a longer sku of 24 bytes", "DC-1")].map(|(s, l)| Some(series_key(s, l, "pos")));
        assert_eq!(keys, [expected[0], expected[1], expected[2], None]);
    }

    // Computed apart from this code (Python: FNV-1a over little-endian words, each part ended
    // by its length with the top bit set, then MurmurHash3's finaliser).
    const KEY_OF_FIRST: i64 = -5_468_833_510_003_781_840;
    const KEY_OF_EMPTY: i64 = 838_869_888_962_673_883;

    #[test]
    fn a_census_finds_each_series_whatever_the_order_and_sees_a_shared_key() {
        let point = |day: i32, delta: i32, flags: u8| CompactPoint { day, system_qty: 10 + delta, authoritative_qty: 10, delta, in_transit: 0, flags };
        let name = |s: &str| (s.to_string(), "L".to_string(), "pos".to_string());
        let mut census = Census::new(101);
        // Day 100 in one order, day 101 in another, day 102 in the first again.
        for (day, order) in [(100, ["A", "B", "C"]), (101, ["C", "A", "B"]), (102, ["A", "B", "C"])] {
            for s in order {
                let delta = if s == "B" { 5 } else { 0 };
                census.add((series_key(s, "L", "pos"), 1), || name(s), &point(day, delta, (s == "B" && day == 102) as u8));
            }
        }
        let tallies: HashMap<&str, Tally> = census.series().map(|(n, t)| (n.0.as_str(), *t)).collect();
        assert_eq!(tallies.len(), 3);
        let b = Tally { rows: 3, last_day: 102, real_flags: 1, real_nonzero: 3, differing: 3, window_rows: 1, window_real_nonzero: 1 };
        assert_eq!(tallies["B"], b);
        assert_eq!(tallies["A"], Tally { rows: 3, last_day: 102, window_rows: 1, ..Tally::default() });
        assert!(!census.collided);
        // Merged with a census of its own rows again: counts double; a different second hash
        // under a known key is a collision.
        let mut other = Census::new(101);
        other.add((series_key("B", "L", "pos"), 1), || name("B"), &point(103, 5, 0));
        census.merge(other);
        assert_eq!(census.series().find(|(n, _)| n.0 == "B").unwrap().1.rows, 4);
        assert!(!census.collided);
        census.add((series_key("A", "L", "pos"), 2), || name("Z"), &point(104, 0, 0));
        assert!(census.collided);
    }
}
