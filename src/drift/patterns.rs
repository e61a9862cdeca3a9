//! `drift_patterns`: tests on each SKU-location-system series of variances.
//!
//! Only real variances count (temporal ones — in transit, receiving, short lag — are
//! excluded), and nothing is claimed on fewer than `min_observations` observations.
//!
//! - same_direction_over / _under: two-sided sign test on the non-zero deltas of the window;
//!   at least three of them flagged.
//! - month_end: flagged days concentrated in the last three days of the month, binomial test
//!   against the share of observed days that are month-end days.
//! - persistent: flagged on at least `persistent_share` of the window's days, binomial test
//!   against the system's overall flagged rate.
//! - fixed_offset: one non-zero delta makes up `fixed_offset_share` of the non-zero deltas
//!   and shows on at least half the window's days.
//! - integration_lag: the system equals the authoritative series shifted by k days far more
//!   often than unshifted.
//!
//! The more specific explanation wins: a series with an integration lag is not also reported
//! as a fixed offset, and neither is also reported as same-direction drift.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, Date32Array, Float64Array, Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use chrono::Datelike;
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use futures::future::BoxFuture;

use super::points::{self, CompactPoint};
use super::{Columns, SeriesKeys, date_from_days, date_literal};
use crate::config::Thresholds;
use crate::error::{Error, Result};
use crate::stats;
use crate::warehouse::collect;

/// One day of one series.
#[derive(Debug, Clone, Copy)]
pub struct Point {
    pub day: i64,
    pub system_qty: i64,
    pub authoritative_qty: i64,
    pub delta: i64,
    pub flagged: bool,
    pub explained: bool,
    /// Units on their way to this location (some systems already count them).
    pub in_transit: i64,
}

impl Point {
    fn real_flag(&self) -> bool {
        self.flagged && !self.explained
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    pub pattern: &'static str,
    pub n_obs: i64,
    pub statistic: f64,
    pub p_value: f64,
    pub effect: f64,
    pub first_seen: i64,
    pub last_seen: i64,
}

/// Per-system base rates the tests compare against.
#[derive(Debug, Clone, Copy)]
pub struct BaseRates {
    /// Share of observations flagged and not explained.
    pub flagged: f64,
    /// Share of observations with a non-zero real delta.
    pub nonzero: f64,
}

pub fn is_month_end(day: i64) -> bool {
    let date = date_from_days(day);
    (date + chrono::Days::new(3)).month() != date.month()
}

/// Runs every test on one series (points ordered by day).
pub fn detect(points: &[Point], base: BaseRates, t: &Thresholds) -> Vec<Detection> {
    let min_obs = t.min_observations.max(1) as usize;
    if points.len() < min_obs {
        return vec![];
    }
    let last_day = points.last().expect("non-empty").day;
    let window: Vec<&Point> = points.iter().filter(|p| p.day > last_day - t.pattern_window_days).collect();
    let mut found = vec![];

    // A lagging copy of a steadily moving number is also a constant offset: the lag explains it.
    let lag = integration_lag(points, min_obs, t);
    let fixed = if lag.is_none() { fixed_offset(&window, min_obs, base, t) } else { None };
    if lag.is_none() && fixed.is_none() {
        found.extend(same_direction(&window, min_obs, t));
    }
    found.extend(lag);
    found.extend(fixed);
    found.extend(month_end(points, min_obs, t));
    found.extend(persistent(&window, min_obs, base, t));
    found
}

fn same_direction(window: &[&Point], min_obs: usize, t: &Thresholds) -> Option<Detection> {
    let nonzero: Vec<&&Point> = window.iter().filter(|p| !p.explained && p.delta != 0).collect();
    let n = nonzero.len();
    if n < min_obs || nonzero.iter().filter(|p| p.real_flag()).count() < 3 {
        return None;
    }
    let positives = nonzero.iter().filter(|p| p.delta > 0).count();
    let p_value = stats::sign_test(positives as u64, n as u64);
    if p_value >= t.pattern_alpha {
        return None;
    }
    Some(Detection {
        pattern: if positives * 2 > n { "same_direction_over" } else { "same_direction_under" },
        n_obs: n as i64,
        statistic: positives as f64 / n as f64,
        p_value,
        effect: nonzero.iter().map(|p| p.delta as f64).sum::<f64>() / n as f64,
        first_seen: nonzero[0].day,
        last_seen: nonzero[n - 1].day,
    })
}

fn month_end(points: &[Point], min_obs: usize, t: &Thresholds) -> Option<Detection> {
    let month_end_days = points.iter().filter(|p| is_month_end(p.day)).count();
    let flagged: Vec<&Point> = points.iter().filter(|p| p.real_flag()).collect();
    let at_month_end: Vec<&&Point> = flagged.iter().filter(|p| is_month_end(p.day)).collect();
    if points.len() < min_obs || at_month_end.len() < 3 || month_end_days == 0 {
        return None;
    }
    let p0 = month_end_days as f64 / points.len() as f64;
    let p_value = stats::binomial_upper_tail(at_month_end.len() as u64, flagged.len() as u64, p0);
    if p_value >= t.pattern_alpha {
        return None;
    }
    Some(Detection {
        pattern: "month_end",
        n_obs: points.len() as i64,
        statistic: at_month_end.len() as f64 / flagged.len() as f64,
        p_value,
        effect: at_month_end.iter().map(|p| p.delta as f64).sum::<f64>() / at_month_end.len() as f64,
        first_seen: at_month_end[0].day,
        last_seen: at_month_end[at_month_end.len() - 1].day,
    })
}

fn persistent(window: &[&Point], min_obs: usize, base: BaseRates, t: &Thresholds) -> Option<Detection> {
    let n = window.len();
    let flagged: Vec<&&Point> = window.iter().filter(|p| p.real_flag()).collect();
    if n < min_obs || (flagged.len() as f64) < t.persistent_share * n as f64 {
        return None;
    }
    let p_value = stats::binomial_upper_tail(flagged.len() as u64, n as u64, base.flagged.clamp(0.001, 0.999));
    if p_value >= t.pattern_alpha {
        return None;
    }
    Some(Detection {
        pattern: "persistent",
        n_obs: n as i64,
        statistic: flagged.len() as f64 / n as f64,
        p_value,
        effect: flagged.iter().map(|p| p.delta as f64).sum::<f64>() / flagged.len() as f64,
        first_seen: flagged[0].day,
        last_seen: flagged[flagged.len() - 1].day,
    })
}

fn fixed_offset(window: &[&Point], min_obs: usize, base: BaseRates, t: &Thresholds) -> Option<Detection> {
    let nonzero: Vec<&&Point> = window.iter().filter(|p| !p.explained && p.delta != 0).collect();
    let mut tally: HashMap<i64, usize> = HashMap::new();
    for p in &nonzero {
        *tally.entry(p.delta).or_default() += 1;
    }
    let (&offset, &count) = tally.iter().max_by(|a, b| a.1.cmp(b.1).then(b.0.abs().cmp(&a.0.abs())))?;
    if count < min_obs || (count as f64) < t.fixed_offset_share * nonzero.len() as f64 || count * 2 < window.len() {
        return None;
    }
    // Against chance: a day shows any real non-zero delta at the system's base rate, so this
    // exact value at most that often.
    let p_value = stats::binomial_upper_tail(count as u64, window.len() as u64, base.nonzero.clamp(0.001, 0.999));
    if p_value >= t.pattern_alpha {
        return None;
    }
    let days: Vec<i64> = nonzero.iter().filter(|p| p.delta == offset).map(|p| p.day).collect();
    Some(Detection {
        pattern: "fixed_offset",
        n_obs: window.len() as i64,
        statistic: count as f64 / nonzero.len() as f64,
        p_value,
        effect: offset as f64,
        first_seen: days[0],
        last_seen: days[days.len() - 1],
    })
}

fn integration_lag(points: &[Point], min_obs: usize, t: &Thresholds) -> Option<Detection> {
    let first = points[0].day;
    let span = (points[points.len() - 1].day - first + 1) as usize;
    let mut system = vec![None; span];
    let mut reference = vec![None; span];
    for p in points {
        system[(p.day - first) as usize] = Some(p.system_qty);
        reference[(p.day - first) as usize] = Some(p.authoritative_qty);
    }
    // A lag is only visible where the authoritative number moves.
    let moves = reference.windows(2).filter(|w| matches!(w, [Some(a), Some(b)] if a != b)).count();
    if (moves as f64) < 0.2 * span as f64 {
        return None;
    }
    let m = stats::best_lag(&system, &reference, t.max_lag_days.max(1) as usize, min_obs)?;
    if m.share < 0.7 || m.share - m.share_at_zero < 0.3 {
        return None;
    }
    let days = (m.lag..span).filter(|&d| system[d].is_some() && reference[d - m.lag].is_some()).count();
    let matches = (m.share * days as f64).round() as u64;
    let p_value = stats::binomial_upper_tail(matches, days as u64, m.share_at_zero.max(0.05));
    if p_value >= t.pattern_alpha {
        return None;
    }
    Some(Detection {
        pattern: "integration_lag",
        n_obs: days as i64,
        statistic: m.share,
        p_value,
        effect: m.lag as f64,
        first_seen: first,
        last_seen: points[points.len() - 1].day,
    })
}

/// Ledger quantities per SKU-location and day, for naming the likely cause: the cause is the
/// ledger stream whose daily quantities move with the drift (correlation of daily changes,
/// so the unknown share of events a system misses does not matter).
#[derive(Default)]
pub struct Ledger {
    /// Units sold, kits excluded.
    pub sales: HashMap<(String, String), HashMap<i64, f64>>,
    /// Component units sold inside kits.
    pub kit_sales: HashMap<(String, String), HashMap<i64, f64>>,
    /// Returns received minus returns restocked: units waiting for inspection.
    pub returns: HashMap<(String, String), HashMap<i64, f64>>,
    /// Units received (purchase orders and transfers in).
    pub receipts: HashMap<(String, String), HashMap<i64, f64>>,
    /// Days of adjustments booked without a reason code, per SKU-location.
    pub unreasoned: HashMap<(String, String), Vec<i64>>,
}

/// Day-to-day changes of the delta, on consecutive observed days. A system that counts
/// transfers as they ship jumps by a whole transfer twice; when taking the units in transit
/// out of its delta makes the series calmer, they are taken out. Days on which the system
/// shows zero are skipped: a number floored at zero cannot show further drift.
pub fn increments(points: &[Point]) -> Vec<(i64, f64)> {
    let changes = |adjust: bool| -> Vec<(i64, f64)> {
        let value = |p: &Point| (p.delta - if adjust { p.in_transit } else { 0 }) as f64;
        points
            .windows(2)
            .filter(|w| w[1].day == w[0].day + 1 && w[0].system_qty > 0 && w[1].system_qty > 0)
            .map(|w| (w[1].day, value(&w[1]) - value(&w[0])))
            .collect()
    };
    let spread = |v: &[(i64, f64)]| v.iter().map(|(_, x)| x * x).sum::<f64>();
    let (raw, adjusted) = (changes(false), changes(true));
    if spread(&adjusted) < spread(&raw) { adjusted } else { raw }
}

/// Pearson correlation; 0 when either side does not vary.
pub fn correlation(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len().min(y.len()) as f64;
    if n < 3.0 {
        return 0.0;
    }
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx).powi(2);
        syy += (b - my).powi(2);
    }
    if sxx == 0.0 || syy == 0.0 { 0.0 } else { sxy / (sxx * syy).sqrt() }
}

fn correlate(inc: &[(i64, f64)], events: Option<&HashMap<i64, f64>>) -> f64 {
    let Some(events) = events else { return 0.0 };
    let x: Vec<f64> = inc.iter().map(|(_, v)| *v).collect();
    let y: Vec<f64> = inc.iter().map(|(d, _)| events.get(d).copied().unwrap_or(0.0)).collect();
    correlation(&x, &y)
}

/// The cause of drift in one direction, from the ledger stream that moves with it.
pub fn directional_cause(points: &[Point], sku: &str, location: &str, ledger: &Ledger) -> (&'static str, &'static str) {
    let key = (sku.to_string(), location.to_string());
    let inc = increments(points);
    // The drift began with a jump on the day of an edit booked without a reason.
    if let (Some(edits), Some((jump_day, _))) = (ledger.unreasoned.get(&key), inc.iter().max_by(|a, b| a.1.abs().total_cmp(&b.1.abs())))
        && edits.iter().any(|d| (d - jump_day).abs() <= 1) {
            return ("manual_edit_no_reason", "ledger");
        }
    let over = points.iter().filter(|p| !p.explained).map(|p| p.delta).sum::<i64>() >= 0;
    let candidates: Vec<(&'static str, &'static str, f64)> = if over {
        vec![
            ("bundle_not_decrementing", "identity", correlate(&inc, ledger.kit_sales.get(&key))),
            ("return_before_inspection", "policy", correlate(&inc, ledger.returns.get(&key))),
            ("sale_not_propagated", "publish", correlate(&inc, ledger.sales.get(&key))),
        ]
    } else {
        vec![
            ("restock_not_entered", "ledger", -correlate(&inc, ledger.receipts.get(&key))),
            ("sale_not_propagated", "publish", -correlate(&inc, ledger.sales.get(&key))),
        ]
    };
    let best = candidates.iter().max_by(|a, b| a.2.total_cmp(&b.2)).expect("candidates");
    if best.2 >= 0.2 {
        (best.0, best.1)
    } else if over {
        ("sale_not_propagated", "publish")
    } else {
        ("restock_not_entered", "ledger")
    }
}

/// The variances of the trailing history of the series in `pattern_candidates`, unordered
/// (grouped into series in Rust, so no sort of the whole history is needed). The system's
/// number is the authoritative one plus the delta (both are set on every variance row), so
/// it is not read: the scan of 120 days is most of a daily run's drift_patterns.
fn variances_sql(first_day: i64) -> String {
    format!(
        "select arrow_cast(v.snapshot_date, 'Int32') as day, v.sku, v.location_id, v.system, v.authoritative_qty,
                v.delta, v.flagged, v.explained_by is not null as explained, v.in_transit
         from variances v
         join {CANDIDATES} c on c.sku = v.sku and c.location_id = v.location_id and c.system = v.system
         where v.snapshot_date >= {}",
        date_literal(first_day)
    )
}

/// The session table the series worth reading point by point are put in.
const CANDIDATES: &str = "pattern_candidates";

/// What a variance row counts as in the per-series counts. Counting afresh and sliding both
/// use these, so they cannot disagree.
const REAL_FLAG: &str = "flagged and explained_by is null";
const REAL_NONZERO: &str = "explained_by is null and coalesce(delta, 0) <> 0";
const DIFFERING: &str = "coalesce(system_qty, 0) <> coalesce(authoritative_qty, 0)";

/// The table the per-series counts are kept in between builds, so that a build that only
/// adds a day counts that day (and the days leaving the history) instead of the whole history.
pub const STATE: &str = "drift_patterns_state";

/// A build adding more days than this counts the history afresh (cheaper than sliding).
const MAX_SLIDE_DAYS: i64 = 7;

/// The trailing history and pattern window (days) of a build whose newest day is `last_day`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Span {
    last_day: i64,
    history: i64,
    /// The pattern window, within the history.
    window: i64,
}

impl Span {
    fn new(last_day: i64, t: &Thresholds) -> Span {
        let history = t.pattern_history_days.max(1);
        Span { last_day, history, window: t.pattern_window_days.clamp(0, history) }
    }

    fn first_day(&self) -> i64 {
        self.last_day - self.history + 1
    }
}

/// The counts per series of the trailing history, in the columns of `STATE`: what the
/// systems' base rates and `Series::may_show_a_pattern` need, the window being the newest
/// day's (the window of a series that ends earlier is its own: such series are always read).
fn counts_sql(span: Span) -> String {
    let in_window = format!("arrow_cast(snapshot_date, 'Int32') > {}", span.last_day - span.window);
    let count = |condition: &str| format!("arrow_cast(sum(case when {condition} then 1 else 0 end), 'Int64')");
    format!(
        "select sku, location_id, system, arrow_cast(count(*), 'Int64') as n,
                arrow_cast(max(arrow_cast(snapshot_date, 'Int32')), 'Int64') as last_day,
                {} as flags, {} as nonzero, {} as differing, {} as window_nonzero, {} as window_days,
                arrow_cast({}, 'Int64') as as_of, arrow_cast({}, 'Int64') as history_days, arrow_cast({}, 'Int64') as window_len
         from variances
         where snapshot_date >= {} and snapshot_date <= {}
         group by sku, location_id, system",
        count(REAL_FLAG),
        count(REAL_NONZERO),
        count(DIFFERING),
        count(&format!("{in_window} and {REAL_NONZERO}")),
        count(&in_window),
        span.last_day,
        span.history,
        span.window,
        date_literal(span.first_day()),
        date_literal(span.last_day),
    )
}

/// The kept counts of `before` moved on to `now`: each variance row of a day that entered or
/// left the history (or the window) counted +1 or -1, joined to the kept counts.
fn slide_sql(before: Span, now: Span) -> String {
    let day = "arrow_cast(snapshot_date, 'Int32')";
    let within = |span: Span, length: i64| format!("(case when {day} > {} and {day} <= {} then 1 else 0 end)", span.last_day - length, span.last_day);
    let history = format!("({} - {})", within(now, now.history), within(before, before.history));
    let window = format!("({} - {})", within(now, now.window), within(before, before.window));
    let one = |condition: &str| format!("(case when {condition} then 1 else 0 end)");
    let nonzero = one(REAL_NONZERO);
    let (flag, differs) = (one(REAL_FLAG), one(DIFFERING));
    // The days that entered the history, left it, or left the window.
    let ranges = [(before.last_day, now.last_day), (before.last_day - before.history, now.last_day - now.history), (before.last_day - before.window, now.last_day - now.window)]
        .iter()
        .map(|(after, upto)| format!("(snapshot_date > {} and snapshot_date <= {})", date_literal(*after), date_literal(*upto)))
        .collect::<Vec<_>>()
        .join(" or ");
    let keys = ["sku", "location_id", "system"].map(|k| format!("coalesce(k.{k}, d.{k}) as {k}")).join(", ");
    let sum = |column: &str| format!("arrow_cast(coalesce(k.{column}, 0) + coalesce(d.{column}, 0), 'Int64')");
    let (n, flags, nonzero_days, differing, window_nonzero, window_days) =
        (sum("n"), sum("flags"), sum("nonzero"), sum("differing"), sum("window_nonzero"), sum("window_days"));
    let (first, newest_before, as_of, history_days, window_len) = (date_literal(before.first_day()), before.last_day, now.last_day, now.history, now.window);
    format!(
        "with changed as (
             select sku, location_id, system,
                    sum({history}) as n,
                    max(case when {day} > {newest_before} then {day} end) as last_day,
                    sum({history} * {flag}) as flags,
                    sum({history} * {nonzero}) as nonzero,
                    sum({history} * {differs}) as differing,
                    sum({window} * {nonzero}) as window_nonzero,
                    sum({window}) as window_days
             from variances
             where snapshot_date >= {first} and ({ranges})
             group by sku, location_id, system
         )
         select {keys}, {n} as n,
                arrow_cast(greatest(coalesce(k.last_day, d.last_day), coalesce(d.last_day, k.last_day)), 'Int64') as last_day,
                {flags} as flags, {nonzero_days} as nonzero, {differing} as differing,
                {window_nonzero} as window_nonzero, {window_days} as window_days,
                arrow_cast({as_of}, 'Int64') as as_of, arrow_cast({history_days}, 'Int64') as history_days,
                arrow_cast({window_len}, 'Int64') as window_len
         from {STATE} k
         full join changed d on d.sku = k.sku and d.location_id = k.location_id and d.system = k.system
         where {n} > 0"
    )
}

/// The span the kept counts were made for, when they can be moved on to `now`: the build only
/// adds days after them (`append_from`; the days up to theirs are then as they were counted,
/// since a build that rebuilt one would have counted afresh or failed before finishing and
/// left nothing to append), with the same history and window, and only a few days.
async fn kept_span(ctx: &SessionContext, append_from: Option<i64>, now: Span) -> Result<Option<Span>> {
    let Some(append_from) = append_from else { return Ok(None) };
    let Some(stamps) = crate::warehouse::kept_stamps(ctx, STATE, &["as_of", "history_days", "window_len"]).await? else { return Ok(None) };
    let &[as_of, history, window] = &stamps[..] else { return Ok(None) };
    let before = Span { last_day: as_of, history, window };
    let usable = (history, window) == (now.history, now.window) && as_of < append_from && (0..=MAX_SLIDE_DAYS).contains(&(now.last_day - as_of));
    Ok(usable.then_some(before))
}

/// The counts per series: the kept ones moved on when they can be, else counted afresh.
async fn series_counts(ctx: &SessionContext, kept: Option<Span>, now: Span) -> Result<Vec<RecordBatch>> {
    if let Some(before) = kept {
        tracing::debug!(from = before.last_day, to = now.last_day, "drift_patterns: sliding the kept counts");
        return collect_counts(ctx, &slide_sql(before, now)).await;
    }
    // The rows come day by day, so the first 100 k (DataFusion's probe) hold as many series
    // as rows and it would skip aggregating within each partition, sending all 18 M rows (at
    // tier M) through the repartition to one final aggregate. Probe past a few days' rows.
    let probe = "datafusion.execution.skip_partial_aggregation_probe_rows_threshold";
    let before = ctx.copied_config().options().execution.skip_partial_aggregation_probe_rows_threshold;
    collect(ctx, "drift_patterns: settings", &format!("set {probe} = 5000000")).await?;
    let counts = collect_counts(ctx, &counts_sql(now)).await;
    collect(ctx, "drift_patterns: settings", &format!("set {probe} = {before}")).await?;
    counts
}

/// The counts of `counts_sql` from the tallies of a census of the history.
fn counts_of(census: &points::Census, span: Span) -> Result<RecordBatch> {
    let (names, tallies): (Vec<_>, Vec<_>) = census.series().unzip();
    let names = names_table(&names)?;
    let number = |value: fn(&points::Tally) -> i64| Arc::new(Int64Array::from_iter_values(tallies.iter().map(&value))) as ArrayRef;
    let stamp = |value: i64| Arc::new(Int64Array::from_value(value, census.len())) as ArrayRef;
    let columns = [
        ("sku", names.column(0).clone()),
        ("location_id", names.column(1).clone()),
        ("system", names.column(2).clone()),
        ("n", number(|t| t.rows)),
        ("last_day", number(|t| t.last_day)),
        ("flags", number(|t| t.real_flags)),
        ("nonzero", number(|t| t.real_nonzero)),
        ("differing", number(|t| t.differing)),
        ("window_nonzero", number(|t| t.window_real_nonzero)),
        ("window_days", number(|t| t.window_rows)),
        ("as_of", stamp(span.last_day)),
        ("history_days", stamp(span.history)),
        ("window_len", stamp(span.window)),
    ];
    RecordBatch::try_from_iter(columns).map_err(|e| Error::arrow("drift_patterns: series counts", e))
}

/// The counts, with at least one (maybe empty) batch: they are kept, so their schema is needed.
async fn collect_counts(ctx: &SessionContext, sql: &str) -> Result<Vec<RecordBatch>> {
    crate::warehouse::collect_at_least_one(ctx, "drift_patterns: series counts", sql).await
}

/// What the per-series counts say: base rates per system, and the series that may show a
/// pattern (`may_show_a_pattern` on per-series counts: a superset of the series it accepts).
struct Summary {
    rates: HashMap<String, BaseRates>,
    /// (sku, location, system) of each candidate, as a table for the ledger's query.
    candidates: RecordBatch,
    names: Vec<(String, String, String)>,
    /// Whether every series has a key of its own (else the kept points cannot tell them apart).
    distinct_keys: bool,
}

fn summarise(counts: &[RecordBatch], last_day: i64) -> Result<Summary> {
    let mut totals: HashMap<String, [i64; 3]> = HashMap::new();
    let mut names = vec![];
    let mut keys = vec![];
    for batch in counts {
        let c = Columns::new(batch);
        let (sku, location, system) = (c.text(0)?, c.text(1)?, c.text(2)?);
        let counts = (3..10).map(|i| c.int(i)).collect::<Result<Vec<_>>>()?;
        for (i, ((sku, location), system)) in sku.into_iter().zip(location).zip(system).enumerate() {
            let (Some(sku), Some(location), Some(system)) = (sku, location, system) else { continue };
            let [n, last, flags, nonzero, differing, window_nonzero, window_days] = [0, 1, 2, 3, 4, 5, 6].map(|j| counts[j][i].unwrap_or(0));
            let total = totals.entry(system.clone()).or_default();
            for (sum, value) in total.iter_mut().zip([n, flags, nonzero]) {
                *sum += value;
            }
            keys.push(points::series_key(&sku, &location, &system));
            // A series that ends before the newest day has a window of its own: read it.
            if last < last_day || may_show_a_pattern(Counts { observed: n, real_flags: flags, differing, window_days, window_nonzero }) {
                names.push((sku, location, system));
            }
        }
    }
    let rates = totals
        .into_iter()
        .map(|(system, [n, flagged, nonzero])| {
            let n = n.max(1) as f64;
            (system, BaseRates { flagged: flagged as f64 / n, nonzero: nonzero as f64 / n })
        })
        .collect();
    Ok(Summary { rates, candidates: names_table(&names)?, names, distinct_keys: points::distinct(keys) })
}

/// Series names as a table of sku, location_id and system.
fn names_table<N: std::borrow::Borrow<(String, String, String)>>(names: &[N]) -> Result<RecordBatch> {
    let text = |name: &str| Field::new(name, DataType::Utf8, false);
    let schema = Arc::new(Schema::new(vec![text("sku"), text("location_id"), text("system")]));
    let column = |part: fn(&(String, String, String)) -> &str| Arc::new(StringArray::from_iter_values(names.iter().map(|n| part(n.borrow())))) as ArrayRef;
    let columns = vec![column(|n| &n.0), column(|n| &n.1), column(|n| &n.2)];
    RecordBatch::try_new(schema, columns).map_err(|e| Error::arrow("listing drift_patterns series", e))
}

/// Movements of the trailing history at the SKU-locations of `pattern_candidates` (causes are
/// named only for series with a pattern); load dates can be up to two days before the events
/// (time zones), so the partitions read start two days earlier. The events are kept from an
/// instant (midnight UTC of the first day): a comparison of timestamps, where a date cast
/// would be computed for each of the ~1 M movements read (tier M).
fn ledger_sql(first_day: i64) -> String {
    format!(
        "select m.sku, m.location_id, m.kind, arrow_cast(arrow_cast(m.event_at, 'Date32'), 'Int32') as day,
                m.bundle_sku is not null as from_kit, coalesce(m.reason_code, '') = '' as unreasoned, m.qty
         from movements m
         join (select distinct sku, location_id from {CANDIDATES}) c on c.sku = m.sku and c.location_id = m.location_id
         where m.load_date >= {}
           and m.event_at >= DATE '{}'",
        date_literal(first_day - 2),
        date_from_days(first_day)
    )
}

async fn load_ledger(ctx: &SessionContext, first_day: i64) -> Result<Ledger> {
    let mut ledger = Ledger::default();
    for batch in collect(ctx, "drift_patterns: movements", &ledger_sql(first_day)).await? {
        let c = Columns::new(&batch);
        let (skus, locations, kinds, days, kits, unreasoned, qty) = (c.text(0)?, c.text(1)?, c.text(2)?, c.int(3)?, c.boolean(4)?, c.boolean(5)?, c.int(6)?);
        for i in 0..batch.num_rows() {
            let (Some(sku), Some(location), Some(kind), Some(day)) = (&skus[i], &locations[i], &kinds[i], days[i]) else { continue };
            let key = (sku.clone(), location.clone());
            let units = qty[i].unwrap_or(0).abs() as f64;
            let stream = match kind.as_str() {
                "sale" if kits[i] == Some(true) => Some((&mut ledger.kit_sales, units)),
                "sale" => Some((&mut ledger.sales, units)),
                "return" => Some((&mut ledger.returns, units)),
                "return_restock" => Some((&mut ledger.returns, -units)),
                "receipt" | "transfer_in" => Some((&mut ledger.receipts, units)),
                "adjustment" if unreasoned[i] == Some(true) => {
                    ledger.unreasoned.entry(key.clone()).or_default().push(day);
                    None
                }
                _ => None,
            };
            if let Some((map, units)) = stream {
                *map.entry(key).or_default().entry(day).or_default() += units;
            }
        }
    }
    Ok(ledger)
}

struct Series {
    sku: String,
    location: String,
    system: String,
    /// Stored compactly (a tier-M history holds tens of millions of points).
    compact: Vec<CompactPoint>,
}

impl CompactPoint {
    #[cfg(test)]
    fn of(p: &Point) -> CompactPoint {
        CompactPoint::new(p.day, p.authoritative_qty, p.delta, p.flagged, p.explained, p.in_transit)
    }
}

/// The counts of a series that decide whether it is worth testing.
struct Counts {
    observed: i64,
    real_flags: i64,
    /// Days the system's number differs from the authoritative one.
    differing: i64,
    /// Days in the pattern window, and those with a real non-zero delta.
    window_days: i64,
    window_nonzero: i64,
}

/// Whether `detect` can find anything, from what every test needs at the least: a real flag
/// (same direction, month end, persistent), one non-zero delta on half the window's days
/// (fixed offset), or the system differing on 30 % of the days (integration lag; 29 % here,
/// so that rounding never drops a series). Most series are noise within tolerance; this
/// spares them the tests.
fn may_show_a_pattern(c: Counts) -> bool {
    c.real_flags > 0 || c.differing as f64 >= 0.29 * c.observed as f64 || c.window_nonzero * 2 >= c.window_days
}

impl Series {
    /// Whether `detect` can find anything in this series (see `may_show_a_pattern`).
    fn may_show_a_pattern(&self, t: &Thresholds) -> bool {
        let Some(last) = self.compact.last() else { return false };
        let count = |keep: &dyn Fn(&CompactPoint) -> bool| self.compact.iter().filter(|p| keep(p)).count() as i64;
        let in_window = |p: &CompactPoint| p.day as i64 > last.day as i64 - t.pattern_window_days;
        may_show_a_pattern(Counts {
            observed: self.compact.len() as i64,
            real_flags: count(&CompactPoint::real_flag),
            differing: count(&|p| p.system_qty != p.authoritative_qty),
            window_days: count(&in_window),
            window_nonzero: count(&|p| in_window(p) && p.real_nonzero()),
        })
    }

    fn points(&self) -> Vec<Point> {
        self.compact
            .iter()
            .map(|c| Point {
                day: c.day as i64,
                system_qty: c.system_qty as i64,
                authoritative_qty: c.authoritative_qty as i64,
                delta: c.delta as i64,
                flagged: c.flags & 1 != 0,
                explained: c.flags & 2 != 0,
                in_transit: c.in_transit as i64,
            })
            .collect()
    }
}

/// The candidates' series from their points, ordered by SKU, location and system, leaving out
/// any without points.
fn assemble(names: Vec<(String, String, String)>, points: Vec<Vec<CompactPoint>>) -> Vec<Series> {
    let mut series: Vec<Series> = names
        .into_iter()
        .zip(points)
        .filter(|(_, points)| !points.is_empty())
        .map(|((sku, location, system), mut compact)| {
            compact.sort_unstable_by_key(|p| p.day);
            compact.shrink_to_fit();
            Series { sku, location, system, compact }
        })
        .collect();
    series.sort_unstable_by(|a, b| (&a.sku, &a.location, &a.system).cmp(&(&b.sku, &b.location, &b.system)));
    series
}

/// The candidates' series read from `variances` by joining them (what the kept points replace
/// unless two series share a key).
async fn load_series(ctx: &SessionContext, first_day: i64) -> Result<Vec<Series>> {
    let frame = ctx.sql(&variances_sql(first_day)).await.map_err(|e| Error::query("drift_patterns: variances", e))?;
    let mut stream = frame.execute_stream().await.map_err(|e| Error::query("drift_patterns: variances", e))?;
    let mut keys = SeriesKeys::default();
    let mut points: Vec<Vec<CompactPoint>> = vec![];
    // Batch by batch: only the points are kept, never the whole result.
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(|e| Error::query("drift_patterns: variances", e))?;
        let c = Columns::new(&batch);
        let (days, skus, locations, systems) = (c.int(0)?, c.text_array(1)?, c.text_array(2)?, c.text_array(3)?);
        let (aq, delta, flagged, explained, in_transit) = (c.int(4)?, c.int(5)?, c.boolean(6)?, c.boolean(7)?, c.int(8)?);
        let ids = keys.ids(&skus, &locations, &systems, batch.num_rows());
        for (i, (day, id)) in days.into_iter().zip(ids).enumerate() {
            let (Some(day), Some(id)) = (day, id) else { continue };
            if id as usize == points.len() {
                points.push(vec![]);
            }
            let (authoritative_qty, delta) = (aq[i].unwrap_or(0), delta[i].unwrap_or(0));
            let (flagged, explained) = (flagged[i].unwrap_or(false), explained[i].unwrap_or(false));
            points[id as usize].push(CompactPoint::new(day, authoritative_qty, delta, flagged, explained, in_transit[i].unwrap_or(0)));
        }
    }
    Ok(assemble(keys.into_keys(), points))
}

/// The mart's rows, and the per-series counts to keep for the next build (`STATE`).
pub fn build<'a>(warehouse: &'a crate::warehouse::Warehouse, ctx: &'a SessionContext, t: &'a Thresholds, append_from: Option<i64>) -> BoxFuture<'a, Result<(Vec<RecordBatch>, Vec<RecordBatch>)>> {
    Box::pin(async move {
        let Some(last_day) = crate::planning::as_of(ctx).await? else {
            return Ok((vec![Rows::default().finish()?], collect_counts(ctx, &counts_sql(Span::new(0, t))).await?));
        };
        let span = Span::new(last_day, t);
        let first_day = span.first_day();
        let clock = std::time::Instant::now();
        let kept = kept_span(ctx, append_from, span).await?;
        // Counted afresh, the counts come from the pass that writes the points afresh.
        let (counts, points_written) = match kept {
            Some(before) => (series_counts(ctx, Some(before), span).await?, false),
            None => {
                let census = points::write_afresh(warehouse, ctx, first_day, last_day, span.last_day - span.window, None).await?;
                warehouse.register(ctx, &[points::TABLE]).await?;
                let counts = if census.collided { series_counts(ctx, None, span).await? } else { vec![counts_of(&census, span)?] };
                (counts, true)
            }
        };
        let Summary { rates, candidates, names, distinct_keys } = summarise(&counts, last_day)?;
        tracing::debug!(seconds = clock.elapsed().as_secs_f64(), candidates = names.len(), "drift_patterns: series summarised");
        let any = !names.is_empty();
        let mut gathered = points::Gathered::new(names.iter().map(|(sku, location, system)| points::series_key(sku, location, system)));
        ctx.register_batch(CANDIDATES, candidates).map_err(|e| Error::query("drift_patterns: candidates", e))?;
        let (kept_points, ledger, by_join) = futures::join!(
            // Brought up to date whether or not there are candidates: the next build goes on from them.
            async {
                match kept {
                    _ if points_written => points::read_kept(ctx, first_day, last_day, &mut gathered).await,
                    Some(before) if points::holds_day(ctx, before.last_day).await? => {
                        points::slide(warehouse, ctx, first_day, last_day, before.last_day, &mut gathered).await
                    }
                    _ => points::write_afresh(warehouse, ctx, first_day, last_day, span.last_day - span.window, Some(&mut gathered)).await.map(drop),
                }
            },
            async { if any { load_ledger(ctx, first_day).await } else { Ok(Ledger::default()) } },
            // Two series sharing a key (a chance of about 1e-9 at tier M) are read as before.
            async { if any && !distinct_keys { load_series(ctx, first_day).await.map(Some) } else { Ok(None) } },
        );
        ctx.deregister_table(CANDIDATES).map_err(|e| Error::query("drift_patterns: candidates", e))?;
        let (ledger, series) = (ledger?, match (kept_points, by_join?) {
            (Err(e), _) => return Err(e),
            (Ok(()), Some(series)) => series,
            (Ok(()), None) => assemble(names, gathered.points),
        });
        tracing::debug!(seconds = clock.elapsed().as_secs_f64(), "drift_patterns: candidates and their ledger read");
        let products = super::text_map(ctx, "drift_patterns: skus", "select sku, product_id from skus").await?;
        let mut components = std::collections::HashSet::new();
        for batch in collect(ctx, "drift_patterns: bundles", "select distinct component_sku from bundles").await? {
            components.extend(Columns::new(&batch).text(0)?.into_iter().flatten());
        }

        let detections: Vec<(usize, Detection)> = series
            .iter()
            .enumerate()
            .filter(|(_, s)| s.may_show_a_pattern(t))
            .flat_map(|(i, s)| detect(&s.points(), rates[&s.system], t).into_iter().map(move |d| (i, d)))
            .collect();

        // One cause per series, most specific first; persistent and same-direction rows share it.
        let mut by_series: HashMap<usize, Vec<&Detection>> = HashMap::new();
        for (i, d) in &detections {
            by_series.entry(*i).or_default().push(d);
        }
        let has = |i: usize, pattern: &str| by_series.get(&i).is_some_and(|ds| ds.iter().any(|d| d.pattern == pattern));
        let direction = |i: usize| series[i].points().iter().filter(|p| !p.explained).map(|p| p.delta).sum::<i64>().signum();
        // Sibling variants of one product, drifting opposite ways in step: the sales of one are
        // booked on the other.
        let mut siblings: HashMap<(&str, &str, &str), Vec<usize>> = HashMap::new();
        for &i in by_series.keys() {
            let s = &series[i];
            if let Some(product) = products.get(&s.sku) {
                siblings.entry((product.as_str(), s.location.as_str(), s.system.as_str())).or_default().push(i);
            }
        }
        let mirrored = |i: usize| {
            let s = &series[i];
            let Some(product) = products.get(&s.sku) else { return false };
            let mine: HashMap<i64, f64> = increments(&s.points()).into_iter().collect();
            siblings[&(product.as_str(), s.location.as_str(), s.system.as_str())].iter().any(|&j| {
                if j == i || direction(j) != -direction(i) {
                    return false;
                }
                let theirs = increments(&series[j].points());
                let (x, y): (Vec<f64>, Vec<f64>) = theirs.iter().filter_map(|(d, v)| mine.get(d).map(|m| (*m, -v))).unzip();
                correlation(&x, &y) >= 0.5
            })
        };
        let mut causes: HashMap<usize, (&'static str, &'static str)> = HashMap::new();
        for &i in by_series.keys() {
            let s = &series[i];
            let cause = if has(i, "fixed_offset") {
                if ledger.unreasoned.contains_key(&(s.sku.clone(), s.location.clone())) {
                    ("manual_edit_no_reason", "ledger")
                } else if components.contains(&s.sku) {
                    ("bundle_not_decrementing", "identity")
                } else {
                    ("variant_wrong_level", "identity")
                }
            } else if has(i, "month_end") {
                ("manual_edit_no_reason", "ledger")
            } else if has(i, "integration_lag") {
                ("sale_not_propagated", "publish")
            } else if mirrored(i) {
                ("variant_wrong_level", "identity")
            } else {
                directional_cause(&s.points(), &s.sku, &s.location, &ledger)
            };
            causes.insert(i, cause);
        }

        let mut rows = Rows::default();
        for (i, d) in &detections {
            let (cause, layer) = causes[i];
            rows.push(&series[*i], d, cause, layer);
        }
        tracing::debug!(seconds = clock.elapsed().as_secs_f64(), "drift_patterns: series tested");
        Ok((vec![rows.finish()?], counts))
    })
}

#[derive(Default)]
struct Rows {
    sku: Vec<String>,
    location: Vec<String>,
    system: Vec<String>,
    pattern: Vec<&'static str>,
    cause: Vec<&'static str>,
    layer: Vec<&'static str>,
    n_obs: Vec<i64>,
    statistic: Vec<f64>,
    p_value: Vec<f64>,
    effect: Vec<f64>,
    first_seen: Vec<i32>,
    last_seen: Vec<i32>,
}

impl Rows {
    fn push(&mut self, s: &Series, d: &Detection, cause: &'static str, layer: &'static str) {
        self.sku.push(s.sku.clone());
        self.location.push(s.location.clone());
        self.system.push(s.system.clone());
        self.pattern.push(d.pattern);
        self.cause.push(cause);
        self.layer.push(layer);
        self.n_obs.push(d.n_obs);
        self.statistic.push(d.statistic);
        self.p_value.push(d.p_value);
        self.effect.push(d.effect);
        self.first_seen.push(d.first_seen as i32);
        self.last_seen.push(d.last_seen as i32);
    }

    fn finish(self) -> Result<RecordBatch> {
        let text = |name: &str| Field::new(name, DataType::Utf8, false);
        let schema = Arc::new(Schema::new(vec![
            text("sku"), text("location_id"), text("system"), text("pattern"), text("likely_cause"), text("layer"),
            Field::new("n_obs", DataType::Int64, false),
            Field::new("statistic", DataType::Float64, false),
            Field::new("p_value", DataType::Float64, false),
            Field::new("effect", DataType::Float64, false),
            Field::new("first_seen", DataType::Date32, false),
            Field::new("last_seen", DataType::Date32, false),
        ]));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(self.sku)),
            Arc::new(StringArray::from(self.location)),
            Arc::new(StringArray::from(self.system)),
            Arc::new(StringArray::from(self.pattern)),
            Arc::new(StringArray::from(self.cause)),
            Arc::new(StringArray::from(self.layer)),
            Arc::new(Int64Array::from(self.n_obs)),
            Arc::new(Float64Array::from(self.statistic)),
            Arc::new(Float64Array::from(self.p_value)),
            Arc::new(Float64Array::from(self.effect)),
            Arc::new(Date32Array::from(self.first_seen)),
            Arc::new(Date32Array::from(self.last_seen)),
        ];
        RecordBatch::try_new(schema, columns).map_err(|e| Error::arrow("building drift_patterns", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(deltas: &[i64], authoritative: impl Fn(i64) -> i64) -> Vec<Point> {
        deltas
            .iter()
            .enumerate()
            .map(|(d, &delta)| {
                let day = 20_600 + d as i64;
                let a = authoritative(day);
                Point { day, system_qty: a + delta, authoritative_qty: a, delta, flagged: delta.abs() > 10, explained: false, in_transit: 0 }
            })
            .collect()
    }

    const BASE: BaseRates = BaseRates { flagged: 0.02, nonzero: 0.1 };

    fn patterns(points: &[Point]) -> Vec<&'static str> {
        detect(points, BASE, &Thresholds::default()).into_iter().map(|d| d.pattern).collect()
    }

    #[test]
    fn growing_phantom_units_are_same_direction_and_persistent() {
        let deltas: Vec<i64> = (0..40).map(|d| d / 2).collect();
        assert_eq!(patterns(&series(&deltas, |_| 100)), ["same_direction_over", "persistent"]);
    }

    #[test]
    fn a_constant_edit_is_a_fixed_offset_not_same_direction() {
        let deltas: Vec<i64> = (0..40).map(|d| if d % 9 == 0 { 19 } else { 18 }).collect();
        let found = detect(&series(&deltas, |_| 100), BASE, &Thresholds::default());
        assert_eq!(found.iter().map(|d| d.pattern).collect::<Vec<_>>(), ["fixed_offset", "persistent"]);
        assert_eq!(found[0].effect, 18.0);
    }

    #[test]
    fn noise_and_short_series_claim_nothing() {
        let noise: Vec<i64> = (0..60).map(|d| [0, 0, 1, 0, -1, 0, 0, 2, 0, -2][d % 10]).collect();
        assert!(patterns(&series(&noise, |_| 50)).is_empty());
        assert!(patterns(&series(&[30; 5], |_| 50)).is_empty(), "below min_observations");
        assert!(patterns(&series(&[0; 40], |_| 50)).is_empty(), "zero variance");
    }

    #[test]
    fn month_end_edits_are_month_end() {
        // 2026-05-27 is day 20600; month ends fall on the last three days of each month.
        let deltas: Vec<i64> = (0..120).map(|d| if is_month_end(20_600 + d) { -20 } else { 0 }).collect();
        assert_eq!(patterns(&series(&deltas, |_| 100)), ["month_end"]);
    }

    fn prefilter(points: &[Point]) -> bool {
        let compact = points.iter().map(CompactPoint::of).collect();
        Series { sku: "S".into(), location: "L".into(), system: "erp".into(), compact }.may_show_a_pattern(&Thresholds::default())
    }

    #[test]
    fn the_prefilter_keeps_every_series_with_a_pattern_and_drops_quiet_ones() {
        let growing: Vec<i64> = (0..40).map(|d| d / 2).collect();
        let constant: Vec<i64> = (0..40).map(|d| if d % 9 == 0 { 19 } else { 18 }).collect();
        let month_end: Vec<i64> = (0..120).map(|d| if is_month_end(20_600 + d) { -20 } else { 0 }).collect();
        // Within tolerance (so never flagged), but the same +2 on most days: a fixed offset.
        let small_offset: Vec<i64> = (0..40).map(|d| if d % 5 == 0 { 0 } else { 2 }).collect();
        for deltas in [&growing, &constant, &month_end, &small_offset] {
            let points: Vec<Point> = series(deltas, |_| 100).into_iter().map(|p| Point { flagged: p.delta.abs() > 10, ..p }).collect();
            assert!(!patterns(&points).is_empty() && prefilter(&points));
        }
        let quiet: Vec<i64> = (0..60).map(|d| if d % 20 == 7 { 1 } else { 0 }).collect();
        assert!(!prefilter(&series(&quiet, |_| 50)));
        assert!(!prefilter(&series(&[0; 40], |_| 50)));
    }

    /// Variances of three series over 12 days: noise, gaps, flags, explained rows.
    fn variances_table() -> RecordBatch {
        let (mut sku, mut location, mut system, mut day, mut sq, mut aq, mut delta, mut flagged, mut explained, mut in_transit) =
            (vec![], vec![], vec![], vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
        for (s, series) in ["A", "B", "C"].iter().enumerate() {
            for d in 0..12i32 {
                // Series C stops after day 7; B misses every third day.
                if (s == 2 && d > 7) || (s == 1 && d % 3 == 0) {
                    continue;
                }
                let dlt = [(d * 7 + s as i32) % 5 - 2, 15, (d % 4) * 6][s] as i64;
                sku.push(series.to_string());
                location.push("L1".to_string());
                system.push("erp".to_string());
                day.push(20_600 + d);
                let authoritative = 100 + 3 * d as i64;
                sq.push(Some(authoritative + dlt));
                aq.push(Some(authoritative));
                delta.push(Some(dlt));
                flagged.push(Some(dlt.abs() > 10));
                explained.push((d % 5 == 1).then(|| "lag".to_string()));
                in_transit.push(if s == 1 { d as i64 % 3 } else { 0 });
            }
        }
        RecordBatch::try_from_iter([
            ("sku", Arc::new(StringArray::from(sku)) as ArrayRef),
            ("location_id", Arc::new(StringArray::from(location))),
            ("system", Arc::new(StringArray::from(system))),
            ("snapshot_date", Arc::new(Date32Array::from(day))),
            ("system_qty", Arc::new(Int64Array::from(sq))),
            ("authoritative_qty", Arc::new(Int64Array::from(aq))),
            ("delta", Arc::new(Int64Array::from(delta))),
            ("flagged", Arc::new(arrow::array::BooleanArray::from(flagged))),
            ("explained_by", Arc::new(StringArray::from(explained))),
            ("in_transit", Arc::new(Int64Array::from(in_transit))),
        ])
        .unwrap()
    }

    /// A session over the test variances through day `last`, and the kept points of `warehouse`.
    async fn session_through(last: i32, warehouse: &crate::warehouse::Warehouse) -> SessionContext {
        let table = variances_table();
        let days = table.column_by_name("snapshot_date").unwrap().as_any().downcast_ref::<Date32Array>().unwrap().clone();
        let keep = arrow::compute::kernels::cmp::lt_eq(&days, &Date32Array::new_scalar(last)).unwrap();
        let ctx = SessionContext::new();
        ctx.register_batch("variances", arrow::compute::filter_record_batch(&table, &keep).unwrap()).unwrap();
        warehouse.register(&ctx, &[points::TABLE]).await.unwrap();
        ctx
    }

    /// Every point of `series`, as text.
    fn point_rows(series: &[Series]) -> Vec<String> {
        let row = |s: &Series, p: &CompactPoint| format!("{} {} {} {} {} {} {} {} {}", s.sku, s.system, p.day, p.system_qty, p.authoritative_qty, p.delta, p.in_transit, p.flags, s.location);
        series.iter().flat_map(|s| s.compact.iter().map(move |p| row(s, p))).collect()
    }

    /// The candidates' series read by joining them to `variances` (the reading the kept points replace).
    async fn joined(ctx: &SessionContext, names: &[(String, String, String)], first_day: i64) -> Vec<Series> {
        ctx.register_batch(CANDIDATES, names_table(names).unwrap()).unwrap();
        let series = load_series(ctx, first_day).await.unwrap();
        ctx.deregister_table(CANDIDATES).unwrap();
        series
    }

    async fn kept_points(warehouse: &crate::warehouse::Warehouse) -> String {
        let ctx = warehouse.session(&[points::TABLE]).await.unwrap();
        let batches = collect(&ctx, "test", "select * from drift_patterns_points order by series_key, snapshot_date").await.unwrap();
        arrow::util::pretty::pretty_format_batches(&batches).unwrap().to_string()
    }

    #[tokio::test]
    async fn the_kept_points_and_their_counts_equal_reading_variances() {
        let (dir, afresh_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let open = |dir: &tempfile::TempDir| crate::warehouse::Warehouse::open(dir.path().to_str().unwrap()).unwrap();
        let (warehouse, afresh) = (open(&dir), open(&afresh_dir));
        let span = |last_day| Span { last_day, history: 6, window: 3 };
        let names: Vec<(String, String, String)> = ["A", "B", "C"].iter().map(|s| (s.to_string(), "L1".to_string(), "erp".to_string())).collect();
        let wanted = || points::Gathered::new(names.iter().map(|(s, l, y)| points::series_key(s, l, y)));

        // Written afresh through day 20607: the points as the join reads them, counted as the SQL counts.
        let before = span(20_607);
        let ctx = session_through(20_607, &warehouse).await;
        let census = points::write_afresh(&warehouse, &ctx, before.first_day(), before.last_day, before.last_day - before.window, None).await.unwrap();
        assert!(!census.collided && census.len() == 3);
        ctx.register_batch("tallied", counts_of(&census, before).unwrap()).unwrap();
        let (tallied, counted) = (sorted(&ctx, "select * from tallied").await, sorted(&ctx, &counts_sql(before)).await);
        let values = |b: &RecordBatch| -> Vec<Vec<Option<i64>>> { (3..13).map(|i| Columns::new(b).int(i).unwrap()).collect() };
        assert_eq!(values(&tallied[0]), values(&counted[0]));
        assert_eq!(Columns::new(&tallied[0]).text(0).unwrap(), Columns::new(&counted[0]).text(0).unwrap());
        let by_join = point_rows(&joined(&ctx, &names, before.first_day()).await);
        assert!(by_join.len() > 10, "{by_join:?}");
        let mut gathered = wanted();
        points::write_afresh(&afresh, &ctx, before.first_day(), before.last_day, 0, Some(&mut gathered)).await.unwrap();
        assert_eq!(point_rows(&assemble(names.clone(), gathered.points)), by_join, "gathered while written");
        assert_eq!(kept_points(&afresh).await, kept_points(&warehouse).await, "written while gathering or tallying");
        let mut kept = wanted();
        points::read_kept(&session_through(20_607, &warehouse).await, before.first_day(), before.last_day, &mut kept).await.unwrap();
        assert_eq!(point_rows(&assemble(names.clone(), kept.points)), by_join, "read back");

        // Three days later: gone on from, the points are those of the new history, and the
        // kept table the one written afresh.
        let now = span(20_610);
        let ctx = session_through(20_610, &warehouse).await;
        assert!(points::holds_day(&ctx, before.last_day).await.unwrap() && !points::holds_day(&ctx, now.last_day).await.unwrap());
        let mut slid = wanted();
        points::slide(&warehouse, &ctx, now.first_day(), now.last_day, before.last_day, &mut slid).await.unwrap();
        let by_join = point_rows(&joined(&ctx, &names, now.first_day()).await);
        assert_eq!(point_rows(&assemble(names.clone(), slid.points)), by_join);
        points::write_afresh(&afresh, &session_through(20_610, &afresh).await, now.first_day(), now.last_day, 0, None).await.unwrap();
        let (slid, written) = (kept_points(&warehouse).await, kept_points(&afresh).await);
        // Day 20605, the new history's first, is 2026-06-01: the days before it left.
        assert!(slid.lines().count() > 15 && slid.contains("2026-06-06") && !slid.contains("2026-05-"), "{slid}");
        assert_eq!(slid, written);
    }

    async fn sorted(ctx: &SessionContext, sql: &str) -> Vec<RecordBatch> {
        let batches = collect(ctx, "test", &format!("select * from ({sql}) order by sku")).await.unwrap();
        vec![arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap()]
    }

    #[tokio::test]
    async fn sliding_the_kept_counts_equals_counting_afresh() {
        let ctx = SessionContext::new();
        ctx.register_batch("variances", variances_table()).unwrap();
        for (history, window) in [(5, 3), (5, 5), (4, 0), (20, 6)] {
            for (before, steps) in [(20_605, 1), (20_606, 2), (20_608, 3), (20_609, 2)] {
                let span = |last_day| Span { last_day, history, window };
                let kept = sorted(&ctx, &counts_sql(span(before))).await;
                ctx.deregister_table(STATE).unwrap();
                ctx.register_batch(STATE, kept[0].clone()).unwrap();
                let slid = sorted(&ctx, &slide_sql(span(before), span(before + steps))).await;
                let afresh = sorted(&ctx, &counts_sql(span(before + steps))).await;
                assert!(afresh[0].num_rows() >= 2, "series to compare");
                // Compared as values: the two queries differ only in nullability.
                let text = |b: &RecordBatch| -> Vec<Vec<Option<i64>>> { (3..13).map(|i| Columns::new(b).int(i).unwrap()).collect() };
                assert_eq!(text(&slid[0]), text(&afresh[0]), "history {history}, window {window}, {before} + {steps}");
                assert_eq!(Columns::new(&slid[0]).text(0).unwrap(), Columns::new(&afresh[0]).text(0).unwrap());
            }
        }
    }

    #[test]
    fn a_lagging_copy_is_integration_lag() {
        let reference = |day: i64| 500 - (day - 20_600) * 3;
        let points: Vec<Point> = (0..40)
            .map(|d| {
                let day = 20_600 + d;
                let system = reference((day - 2).max(20_600));
                let delta = system - reference(day);
                Point { day, system_qty: system, authoritative_qty: reference(day), delta, flagged: false, explained: false, in_transit: 0 }
            })
            .collect();
        let found = detect(&points, BASE, &Thresholds::default());
        assert_eq!(found.iter().map(|d| (d.pattern, d.effect)).collect::<Vec<_>>(), [("integration_lag", 2.0)]);
        assert!(prefilter(&points));
    }
}
