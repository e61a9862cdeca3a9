//! `stocktake report --out report.html`: one self-contained HTML file for the weekly
//! leadership review — KPI tiles with week-over-week change, and SVG charts (plotters) of the
//! variance trend by ABC class, positions by region and location, the worst drift patterns
//! and open exceptions by age. No network: styles, charts and the check script are inline.

use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;

use crate::error::{Error, Result};
use crate::warehouse::{self, Warehouse};

/// Series colours; the page's check script counts shapes drawn in them.
const PALETTE: [RGBColor; 6] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
];

const TILES_SQL: &str = "select cast(week as varchar) as week_label, inventory_record_accuracy, count_variance_rate, cast(oversell_incidents as double),
        cast(open_exceptions as double), median_days_to_close, publish_lag_days, variance_value, cast(stale_systems as double)
    from kpi_weekly where segment_type = 'all' order by week desc limit 8";
const TREND_SQL: &str = "select cast(week as varchar) as week_label, abc_class, sum(flagged_rate * observations) / sum(observations)
    from variance_trends group by week, abc_class order by week, abc_class";
const POSITIONS_SQL: &str = "select coalesce(region, '?'), location_id, sum(coalesce(on_hand, 0))
    from positions where snapshot_date = (select max(snapshot_date) from positions)
    group by region, location_id order by region, location_id";
const PATTERNS_SQL: &str = "select pattern, min(layer), count(*) from drift_patterns group by pattern order by count(*) desc, pattern";
const WORST_SQL: &str = "select sku, location_id, system, pattern, likely_cause, round(effect, 1) from drift_patterns order by abs(effect) desc, sku limit 10";
const AGES_SQL: &str = "select case when days_open <= 3 then '0–3' when days_open <= 7 then '4–7' when days_open <= 14 then '8–14'
        when days_open <= 30 then '15–30' else '> 30' end as age, min(days_open), count(*)
    from exceptions where status = 'open' group by 1 order by 2";

fn draw_error(e: impl std::fmt::Display) -> Error {
    Error::Usage(format!("drawing a chart: {e}"))
}

pub async fn write(warehouse: &Warehouse, out: &Path) -> Result<()> {
    let ctx = warehouse.session(&["kpi_weekly", "variance_trends", "positions", "drift_patterns", "exceptions"]).await?;
    let q = |sql: &'static str| {
        let ctx = &ctx;
        async move { warehouse::collect(ctx, "report", sql).await }
    };
    let mut html = String::from(HEAD);
    html.push_str(&tiles(&q(TILES_SQL).await?)?);
    html.push_str(&trend(&q(TREND_SQL).await?)?);
    html.push_str(&positions(&q(POSITIONS_SQL).await?)?);
    html.push_str(&patterns(&q(PATTERNS_SQL).await?, &q(WORST_SQL).await?)?);
    html.push_str(&ages(&q(AGES_SQL).await?)?);
    html.push_str(TAIL);
    std::fs::write(out, html).map_err(|e| Error::io(out.display(), e))
}

fn text(batches: &[arrow::record_batch::RecordBatch], column: usize) -> Result<Vec<String>> {
    let mut out = vec![];
    for b in batches {
        out.extend(warehouse::strings(b, column)?.into_iter().map(|v| v.unwrap_or_default()));
    }
    Ok(out)
}

fn numbers(batches: &[arrow::record_batch::RecordBatch], column: usize) -> Result<Vec<Option<f64>>> {
    let mut out = vec![];
    for b in batches {
        out.extend(warehouse::floats(b, column)?);
    }
    Ok(out)
}

fn tiles(batches: &[arrow::record_batch::RecordBatch]) -> Result<String> {
    let weeks = text(batches, 0)?;
    let names = [
        ("Inventory record accuracy", 1, true, true),
        ("Count variance rate", 2, true, false),
        ("Oversell incidents", 3, false, false),
        ("Open exceptions", 4, false, false),
        ("Median days to close", 5, false, false),
        ("Publish lag (days)", 6, false, false),
        ("Variance value", 7, false, false),
        ("Stale systems", 8, false, false),
    ];
    let mut out = format!("<h2>Week of {}</h2><div class=\"tiles\">", weeks.first().map(String::as_str).unwrap_or("—"));
    for (name, column, percent, higher_is_better) in names {
        let values = numbers(batches, column)?;
        // Counts happen on some weeks only: a tile shows the newest week that has its figure,
        // against the one before that, and says which week it is when it is not the newest.
        let mut known = values.iter().enumerate().filter_map(|(i, v)| v.map(|v| (i, v)));
        let (now, before) = (known.next(), known.next());
        let as_of = match now {
            Some((i, _)) if i > 0 => format!("<div class=\"asof\">week of {}</div>", weeks[i]),
            _ => String::new(),
        };
        let against = match (now, before) {
            (Some((i, _)), Some((j, _))) if j > i + 1 => format!("vs week of {}", weeks[j]),
            _ => "vs last week".to_string(),
        };
        let (now, before) = (now.map(|(_, v)| v), before.map(|(_, v)| v));
        let show = |v: f64| {
            if percent {
                format!("{:.1}%", v * 100.0)
            } else if v.abs() >= 1000.0 {
                thousands(v.round() as i64)
            } else if v.fract() == 0.0 {
                format!("{v:.0}")
            } else {
                format!("{v:.2}")
            }
        };
        let change = match (now, before) {
            (Some(n), Some(b)) if n != b => {
                let better = (n > b) == higher_is_better;
                let diff = if percent {
                    format!("{:+.1} pts", (n - b) * 100.0)
                } else if (n - b).fract() == 0.0 {
                    format!("{:+.0}", n - b)
                } else {
                    format!("{:+.2}", n - b)
                };
                format!("<span class=\"{}\">{} {diff} {against}</span>", if better { "better" } else { "worse" }, if n > b { "▲" } else { "▼" })
            }
            (Some(_), Some(_)) => format!("<span class=\"same\">= {}</span>", against.trim_start_matches("vs ")),
            (None, _) => "<span class=\"same\">no data yet</span>".into(),
            _ => "<span class=\"same\">no previous week</span>".into(),
        };
        let _ = write!(out, "<div class=\"tile\"><div class=\"name\">{name}</div><div class=\"value\">{}</div>{as_of}{change}</div>", now.map(show).unwrap_or_else(|| "—".into()));
    }
    out.push_str("</div>");
    Ok(out)
}

/// 158401 → "158,401".
fn thousands(v: i64) -> String {
    let digits = v.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if v < 0 { format!("-{out}") } else { out }
}

fn figure(name: &str, title: &str, svg: &str) -> String {
    format!("<figure data-chart=\"{name}\"><figcaption>{title}</figcaption>{svg}</figure>")
}

fn trend(batches: &[arrow::record_batch::RecordBatch]) -> Result<String> {
    let (weeks, classes, rates) = (text(batches, 0)?, text(batches, 1)?, numbers(batches, 2)?);
    let axis: Vec<String> = {
        let mut w = weeks.clone();
        w.dedup();
        w
    };
    let ymax = rates.iter().flatten().fold(0.0f64, |a, b| a.max(*b)).max(0.01) * 1.15;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 320)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_error)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(34)
            .y_label_area_size(56)
            .build_cartesian_2d(0f64..(axis.len().max(2) - 1) as f64, 0f64..ymax)
            .map_err(draw_error)?;
        chart
            .configure_mesh()
            .x_labels(axis.len().min(10))
            .x_label_formatter(&|x| axis.get(x.round() as usize).cloned().unwrap_or_default())
            .y_desc("unexplained flagged share")
            .y_label_formatter(&|y| format!("{:.1}%", y * 100.0))
            .draw()
            .map_err(draw_error)?;
        for (i, class) in ["A", "B", "C"].into_iter().enumerate() {
            let points: Vec<(f64, f64)> = weeks
                .iter()
                .zip(&classes)
                .zip(&rates)
                .filter(|((_, c), r)| c.as_str() == class && r.is_some())
                .map(|((w, _), r)| (axis.iter().position(|a| a == w).unwrap_or(0) as f64, r.unwrap_or(0.0)))
                .collect();
            let color = PALETTE[i];
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(3)))
                .map_err(draw_error)?
                .label(format!("class {class}"))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(3)));
        }
        chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw().map_err(draw_error)?;
        root.present().map_err(draw_error)?;
    }
    Ok(figure("variance_trend", "Variance trend by ABC class: share of SKU-location-days out beyond tolerance, unexplained", &svg))
}

fn bars(labels: &[String], values: &[f64], colors: &[RGBColor], y_desc: &str, size: (u32, u32)) -> Result<String> {
    let ymax = values.iter().fold(0.0f64, |a, b| a.max(*b)).max(1.0) * 1.15;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(draw_error)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(64)
            .build_cartesian_2d(0f64..labels.len().max(1) as f64, 0f64..ymax)
            .map_err(draw_error)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(labels.len() * 2 + 1)
            .x_label_formatter(&|x| {
                let i = (x - 0.5).round();
                if (x - 0.5 - i).abs() < 0.01 && i >= 0.0 { labels.get(i as usize).cloned().unwrap_or_default() } else { String::new() }
            })
            .y_desc(y_desc)
            .draw()
            .map_err(draw_error)?;
        chart
            .draw_series(values.iter().enumerate().map(|(i, v)| {
                Rectangle::new([(i as f64 + 0.15, 0.0), (i as f64 + 0.85, *v)], colors[i % colors.len()].filled())
            }))
            .map_err(draw_error)?;
        root.present().map_err(draw_error)?;
    }
    Ok(svg)
}

fn positions(batches: &[arrow::record_batch::RecordBatch]) -> Result<String> {
    let (regions, locations, units) = (text(batches, 0)?, text(batches, 1)?, numbers(batches, 2)?);
    let mut distinct: Vec<&String> = regions.iter().collect();
    distinct.dedup();
    let colors: Vec<RGBColor> = regions.iter().map(|r| PALETTE[distinct.iter().position(|d| *d == r).unwrap_or(0) % PALETTE.len()]).collect();
    let labels: Vec<String> = locations.iter().zip(&regions).map(|(l, r)| format!("{l} ({r})")).collect();
    let values: Vec<f64> = units.into_iter().map(|u| u.unwrap_or(0.0)).collect();
    let svg = bars(&labels, &values, &colors, "units on hand", (900, 320))?;
    Ok(figure("positions", "Trusted positions by region and location, newest day (units on hand)", &svg))
}

fn patterns(counts: &[arrow::record_batch::RecordBatch], worst: &[arrow::record_batch::RecordBatch]) -> Result<String> {
    let (names, n) = (text(counts, 0)?, numbers(counts, 2)?);
    let labels: Vec<String> = names.iter().map(|p| p.replace('_', " ")).collect();
    let values: Vec<f64> = n.into_iter().map(|v| v.unwrap_or(0.0)).collect();
    let svg = bars(&labels, &values, &[PALETTE[3]], "SKU-location-systems", (900, 300))?;
    let mut table = String::from("<table><tr><th>SKU</th><th>location</th><th>system</th><th>pattern</th><th>likely cause</th><th>effect</th></tr>");
    let columns: Vec<Vec<String>> = (0..6).map(|c| text(worst, c)).collect::<Result<_>>()?;
    for r in 0..columns[0].len() {
        table.push_str("<tr>");
        for c in &columns {
            let _ = write!(table, "<td>{}</td>", escape(&c[r]));
        }
        table.push_str("</tr>");
    }
    table.push_str("</table>");
    Ok(figure("drift_patterns", "Drift patterns found (SKU-location-systems per pattern) — and the ten largest", &format!("{svg}{table}")))
}

fn ages(batches: &[arrow::record_batch::RecordBatch]) -> Result<String> {
    let labels = text(batches, 0)?;
    let values: Vec<f64> = numbers(batches, 2)?.into_iter().map(|v| v.unwrap_or(0.0)).collect();
    let svg = bars(&labels, &values, &[PALETTE[1]], "open exceptions", (900, 280))?;
    Ok(figure("exception_ages", "Open exceptions by age (days open)", &svg))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

const HEAD: &str = r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>stocktake — weekly inventory truth</title>
<style>body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:960px}h1{margin:0 0 4px}
.tiles{display:grid;grid-template-columns:repeat(4,1fr);gap:10px;margin:12px 0 24px}.tile{border:1px solid #ddd;border-radius:6px;padding:10px}
.tile .name{font-size:12px;color:#666}.tile .value{font-size:26px;font-weight:600}.better{color:#2ca02c;font-size:12px}.worse{color:#d62728;font-size:12px}.asof{font-size:11px;color:#999}.same{color:#666;font-size:12px}
figure{margin:0 0 28px}figcaption{font-weight:600;margin-bottom:6px}table{border-collapse:collapse;font-size:12px;margin-top:8px}td,th{border-bottom:1px solid #eee;padding:3px 8px;text-align:left}</style>
</head><body><h1>stocktake — weekly inventory truth</h1>"#;

/// On load, each chart records how many shapes were drawn in the series colours
/// (`data-drawn`), so a headless browser can check the charts rendered.
const TAIL: &str = r#"<script>
const series = ['#1f77b4','#ff7f0e','#2ca02c','#d62728','#9467bd','#8c564b'];
for (const f of document.querySelectorAll('figure[data-chart]')) {
  let n = 0;
  for (const el of f.querySelectorAll('svg rect, svg path, svg polyline, svg line')) {
    const c = ((el.getAttribute('fill') || '') + ' ' + (el.getAttribute('stroke') || '')).toLowerCase();
    const box = el.getBBox();
    if (series.some(s => c.includes(s)) && (box.width > 0 || box.height > 0)) n++;
  }
  f.dataset.drawn = n;
}
document.body.dataset.checked = 'yes';
</script></body></html>"#;

#[cfg(test)]
mod tests {
    #[test]
    fn thousands_are_grouped() {
        assert_eq!(super::thousands(158_401), "158,401");
        assert_eq!(super::thousands(-1_234_567), "-1,234,567");
        assert_eq!(super::thousands(999), "999");
    }
}
