//! Leadership: the HTML report, rendered in headless Chromium; its charts must be drawn.

use std::process::Command;

use crate::{binary, scalar, shared_demo, shared_warehouse};

#[tokio::test(flavor = "multi_thread")]
async fn the_report_is_self_contained_and_its_charts_render_in_chromium() {
    let (dir, _) = shared_demo();
    let out_dir = tempfile::tempdir().unwrap();
    let report = out_dir.path().join("report.html");
    let out = Command::new(binary()).args(["report", "--out", &report.display().to_string()]).current_dir(dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(!html.contains("<link") && !html.contains("src=\"http"), "the report fetches nothing");
    assert_eq!(html.matches("<svg").count(), 4, "four SVG charts");
    assert!(html.contains("Inventory record accuracy") && html.contains("vs last week"), "KPI tiles with week-over-week change");
    // The demo's counts fall on Sundays; the last week ends on a Saturday, so the accuracy
    // tile shows the newest counted week and says so, rather than a blank.
    let accuracy = &html[html.find("Inventory record accuracy").unwrap()..];
    let accuracy = &accuracy[..accuracy.find("</div></div>").unwrap_or(accuracy.len())];
    assert!(accuracy.contains('%') && !accuracy.contains("no data"), "accuracy tile: {accuracy}");

    // Headless Chromium runs the page's check script; the dumped DOM says what was drawn.
    let chromium = ["chromium", "chromium-browser", "google-chrome"].into_iter().find(|c| Command::new(c).arg("--version").output().is_ok()).expect("chromium (.ci/run installs it)");
    let url = format!("file://{}", report.display());
    let dom = Command::new(chromium)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=3000", "--dump-dom", &url])
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert!(dom.contains("data-checked=\"yes\""), "the check script did not run: {}", &dom[..dom.len().min(500)]);
    let drawn = |chart: &str| -> usize {
        let at = dom.find(&format!("data-chart=\"{chart}\"")).unwrap_or_else(|| panic!("no chart {chart}"));
        let tag = &dom[at..at + dom[at..].find('>').unwrap()];
        tag.split("data-drawn=\"").nth(1).and_then(|v| v.split('"').next()).and_then(|v| v.parse().ok()).unwrap_or(0)
    };
    let w = shared_warehouse();
    let locations = scalar(&w, "select count(distinct location_id) from positions where snapshot_date = (select max(snapshot_date) from positions)").await as usize;
    let patterns = scalar(&w, "select count(distinct pattern) from drift_patterns").await as usize;
    assert!(drawn("variance_trend") >= 3, "one line per ABC class: {}", drawn("variance_trend"));
    assert!(drawn("positions") >= locations, "a bar per location: {} < {locations}", drawn("positions"));
    assert!(drawn("drift_patterns") >= patterns, "a bar per pattern");
    assert!(drawn("exception_ages") >= 1, "exceptions by age");

    // A screenshot to look at.
    let png = out_dir.path().join("report.png");
    let shot = Command::new(chromium)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1000,2600", &format!("--screenshot={}", png.display()), &url])
        .output()
        .unwrap();
    assert!(shot.status.success() && std::fs::metadata(&png).unwrap().len() > 20_000, "{}", String::from_utf8_lossy(&shot.stderr));
    if let Ok(keep) = std::env::var("STOCKTAKE_KEEP_SCREENSHOT") {
        std::fs::copy(&png, keep).unwrap();
    }
}
