//! Integration tests: one binary, a module per area. Fixtures live in tests/fixtures/.

mod analysts;
mod bad_input;
mod crash;
mod demo;
mod drift;
mod idempotent;
mod incremental;
mod object_store;
mod operations;
mod outside_reader;
mod planning;
mod report;
mod scale;
mod schedule;

use std::path::{Path, PathBuf};

use stocktake::config::Pipeline;
use stocktake::warehouse::{Warehouse, integers, strings};

/// Copies the bad-input corpus into `dir` and returns its pipeline, pointed at `dir` and a
/// warehouse inside it.
pub fn corpus_pipeline(dir: &Path) -> Pipeline {
    let source = Path::new("tests/fixtures/bad");
    copy_tree(source, dir);
    let text = std::fs::read_to_string(source.join("pipeline.toml"))
        .unwrap()
        .replace("tests/fixtures/bad/", &format!("{}/", dir.display()));
    let mut pipeline = Pipeline::parse(&text, &dir.join("pipeline.toml")).unwrap();
    pipeline.warehouse = dir.join("warehouse").display().to_string();
    pipeline
}

pub fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// The single integer a query returns.
pub async fn scalar(warehouse: &Warehouse, sql: &str) -> i64 {
    let batches = stocktake::query::query(warehouse, sql).await.unwrap();
    let batch = batches.iter().find(|b| b.num_rows() > 0).expect("one row");
    integers(batch, 0).unwrap()[0].unwrap_or(0)
}

/// Every row of a query as text, one string per row, in order.
pub async fn rows(warehouse: &Warehouse, sql: &str) -> Vec<String> {
    let batches = stocktake::query::query(warehouse, sql).await.unwrap();
    let mut out = vec![];
    for b in &batches {
        let columns: Vec<Vec<Option<String>>> = (0..b.num_columns())
            .map(|c| {
                let as_text = arrow::compute::cast(b.column(c), &arrow::datatypes::DataType::Utf8).unwrap();
                let single = arrow::record_batch::RecordBatch::try_from_iter([("c", as_text)]).unwrap();
                strings(&single, 0).unwrap()
            })
            .collect();
        for r in 0..b.num_rows() {
            out.push(columns.iter().map(|c| c[r].clone().unwrap_or_else(|| "∅".into())).collect::<Vec<_>>().join("|"));
        }
    }
    out
}

/// `stocktake generate --tier S --days N` into `data` and `warehouse`; returns its stdout.
pub fn generate_tier_s(data: &Path, warehouse: &Path, days: u32) -> String {
    let out = std::process::Command::new(binary())
        .args(["generate", "--tier", "S", "--days", &days.to_string(), "--dir"])
        .arg(data)
        .arg("--warehouse")
        .arg(warehouse)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_stocktake"))
}

/// The default demo (seed 42, 120 days), run once through the command line and shared by
/// every test that reads it: the folder it ran in, and what it printed.
pub fn shared_demo() -> &'static (PathBuf, String) {
    static DEMO: std::sync::OnceLock<(PathBuf, String)> = std::sync::OnceLock::new();
    DEMO.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap().keep();
        let out = std::process::Command::new(binary()).arg("demo").current_dir(&dir).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "demo failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        (dir, stdout)
    })
}

pub fn shared_warehouse() -> Warehouse {
    Warehouse::open(&shared_demo().0.join("warehouse").display().to_string()).unwrap()
}

/// Runs a Python peer: `input` as JSON on its standard input, its JSON answer parsed.
pub fn python_peer<T: serde::de::DeserializeOwned>(script: &str, input: &impl serde::Serialize, peer: &str) -> T {
    use std::io::Write;
    let mut child = std::process::Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(serde_json::to_string(input).unwrap().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{peer} failed (.ci/run installs it): {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A two-week demo (files, pipeline and the warehouse its run built), generated once;
/// tests copy it with `small_demo_in`.
fn small_demo_template() -> &'static PathBuf {
    static DEMO: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DEMO.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap().keep();
        let out = std::process::Command::new(binary()).args(["demo", "--days", "14", "--quiet"]).current_dir(&dir).output().unwrap();
        assert!(out.status.success(), "demo failed: {}", String::from_utf8_lossy(&out.stderr));
        dir
    })
}

/// Copies the two-week demo into `dir` (`stocktake-demo/…`, and its warehouse when
/// `with_warehouse`); commands run in `dir` find the pipeline at `stocktake-demo/pipeline.toml`.
pub fn small_demo_in(dir: &Path, with_warehouse: bool) {
    let template = small_demo_template();
    std::fs::create_dir_all(dir.join("stocktake-demo")).unwrap();
    copy_tree(&template.join("stocktake-demo"), &dir.join("stocktake-demo"));
    if with_warehouse {
        std::fs::create_dir_all(dir.join("warehouse")).unwrap();
        copy_tree(&template.join("warehouse"), &dir.join("warehouse"));
    }
}
