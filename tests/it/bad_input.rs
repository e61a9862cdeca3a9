//! The bad-input corpus: every bad line is quarantined with file, line and field; every good
//! line lands; one unreadable system leaves the run partial and the others committed.

use stocktake::ingest::{self, RunOptions};
use stocktake::warehouse::Warehouse;

use crate::{corpus_pipeline, rows, scalar};

#[tokio::test]
async fn bad_rows_are_quarantined_and_good_rows_land() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = corpus_pipeline(dir.path());
    let warehouse = Warehouse::open(&pipeline.warehouse).unwrap();
    let report = ingest::run(&pipeline, &warehouse, &RunOptions::default()).await.unwrap();

    assert_eq!(report.status, "partial");
    let by = |system: &str, kind: &str| report.systems.iter().find(|s| s.system == system && s.kind == kind).unwrap().clone();
    let pos = by("pos", "csv");
    assert_eq!((pos.rows_in, pos.accepted, pos.quarantined, pos.unmapped), (10, 2, 8, 0));
    let erp = by("erp", "csv");
    assert_eq!((erp.rows_in, erp.accepted, erp.quarantined, erp.unmapped), (6, 3, 2, 1));
    let fba = by("fba", "amazon_fba_inventory");
    assert_eq!((fba.rows_in, fba.accepted, fba.quarantined, fba.unmapped), (2, 1, 0, 1));
    let movements = by("erp", "movements_csv");
    assert_eq!((movements.rows_in, movements.accepted, movements.quarantined), (3, 2, 1));
    let wms = by("wms", "csv");
    assert_eq!(wms.status, "failed");
    assert!(wms.errors[0].contains("does-not-exist"), "{:?}", wms.errors);

    // Row accounting holds for every system, and the tables hold exactly what was accounted.
    for s in &report.systems {
        assert_eq!(s.rows_in, s.accepted + s.quarantined + s.unmapped, "{}", s.system);
    }
    assert_eq!(scalar(&warehouse, "select count(*) from snapshots").await, pos.accepted + erp.accepted + fba.accepted);
    assert_eq!(scalar(&warehouse, "select count(*) from quarantine").await, report.total(|s| s.quarantined));
    assert_eq!(scalar(&warehouse, "select count(*) from unmapped_rows").await, report.total(|s| s.unmapped));
    assert_eq!(
        scalar(&warehouse, "select sum(rows_in - rows_accepted - rows_quarantined - rows_unmapped) from run_systems").await,
        0
    );

    // Each bad line names its file, line and field.
    let errors = rows(&warehouse, "select source_row, field, error from quarantine where system = 'pos' order by source_file, source_row").await;
    let expect = [
        ("3|Qty|", "'seven' is not a whole number"),
        ("4|Qty|", "negative quantity -4"),
        ("5|<line>|", "duplicate of"),
        ("6|location|", "unknown location 'S9'"),
        ("8|Item|", "byte 0xC9 is not UTF-8"),
        ("9|<line>|", "truncated line"),
        ("2|Item|", "missing required column 'Item' (the header has a single column 'Store;Item;Title;Qty': is the delimiter ','?)"),
        ("3|Item|", "missing required column 'Item'"),
    ];
    assert_eq!(errors.len(), expect.len(), "{errors:#?}");
    for (row, (start, message)) in errors.iter().zip(expect) {
        assert!(row.starts_with(start) && row.contains(message), "{row} should start {start} and say {message}");
    }
    assert!(errors[0].contains("landing/pos/2026-07-01/pos.csv:3: field 'Qty'"), "{}", errors[0]);

    // The empty file and the missing column are reported against the erp system.
    assert!(erp.errors.iter().any(|e| e.contains("2026-07-02/erp.csv:1: field '<file>': empty file")), "{:?}", erp.errors);
    assert!(erp.errors.iter().any(|e| e.contains("missing required column 'Item'")), "{:?}", erp.errors);

    // Good rows: BOM, CRLF and a quoted comma did not get in the way; "Café" in an ignored
    // column of a Latin-1 Seller Central report did not either.
    let snapshots = rows(&warehouse, "select system, location_id, sku, snapshot_date, on_hand from snapshots order by system, location_id, sku").await;
    assert_eq!(snapshots, [
        "erp|S1|TEE-L|2026-07-03|8",
        "erp|W1|MUG|2026-07-03|40",
        "erp|W1|TEE-M|2026-07-03|12",
        "fba|F1|TEE-M|2026-07-01|9",
        "pos|S1|TEE-M|2026-07-01|10",
        "pos|W1|MUG|2026-07-01|30",
    ]);
    let fba_row = rows(&warehouse, "select available, reserved, unsellable, inbound from snapshots where system = 'fba'").await;
    assert_eq!(fba_row, ["7|1|1|∅"], "a bucket the report lacks is NULL, not 0");

    // Unmapped ids keep their units.
    let unmapped = rows(&warehouse, "select system, external_id, rows, units from unmapped_skus order by system").await;
    assert_eq!(unmapped, ["erp|5555|1|3", "fba|AMZ-OLD-1|1|4"]);

    // A kit sale moves its components; a kit count counts them.
    let moved = rows(&warehouse, "select sku, kind, qty, bundle_sku from movements order by sku, kind").await;
    assert_eq!(moved, ["MUG|adjustment|3|∅", "MUG|sale|-4|KIT", "TEE-M|sale|-2|KIT"]);
    let counted = rows(&warehouse, "select sku, counted_qty, book_qty, bundle_sku from counts order by sku, counted_qty").await;
    assert_eq!(counted, ["MUG|2|∅|KIT", "TEE-M|1|10|KIT", "TEE-M|11|10|∅"], "book_qty is the POS on-hand that day");
}

#[tokio::test]
async fn the_command_line_reports_file_line_and_field_and_exits_2_on_a_partial_run() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = corpus_pipeline(dir.path());
    let path = dir.path().join("pipeline.toml");
    let text = std::fs::read_to_string("tests/fixtures/bad/pipeline.toml")
        .unwrap()
        .replace("tests/fixtures/bad/", &format!("{}/", dir.path().display()))
        .replace("name = \"bad_inputs\"", &format!("name = \"bad_inputs\"\nwarehouse = \"{}\"", pipeline.warehouse));
    std::fs::write(&path, text).unwrap();
    let out = std::process::Command::new(crate::binary()).arg("run").arg(&path).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    assert!(stdout.contains("— partial"), "{stdout}");
    assert!(stdout.contains("2026-07-02/pos.csv:1: field 'Item': missing required column 'Item'"), "{stdout}");
    assert!(stdout.contains("built positions"), "the systems that could be read are built: {stdout}");
}

#[test]
fn a_config_error_names_file_line_and_key() {
    let out = std::process::Command::new(crate::binary()).args(["run", "tests/fixtures/broken_pipeline.toml"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("tests/fixtures/broken_pipeline.toml:9:") && stderr.contains("delimeter"), "{stderr}");
}

#[test]
fn sql_answers_as_table_csv_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = corpus_pipeline(dir.path());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let warehouse = Warehouse::open(&pipeline.warehouse).unwrap();
        ingest::run(&pipeline, &warehouse, &RunOptions::default()).await.unwrap();
    });
    let query = "select system, count(*) as n from snapshots group by system order by system";
    let run = |format: &str| {
        let out = std::process::Command::new(crate::binary())
            .args(["sql", query, "--format", format, "--warehouse", &pipeline.warehouse])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(run("csv"), "system,n\nerp,3\nfba,1\npos,2\n");
    assert_eq!(run("json"), "[{\"system\":\"erp\",\"n\":3},{\"system\":\"fba\",\"n\":1},{\"system\":\"pos\",\"n\":2}]\n");
    let table = run("table");
    assert!(table.contains("| erp    | 3 |"), "{table}");
    let bad = std::process::Command::new(crate::binary()).args(["sql", "select * from nowhere", "--warehouse", &pipeline.warehouse]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("nowhere"));
}
