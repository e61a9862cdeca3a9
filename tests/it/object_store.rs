//! Object stores: the demo pipeline with its landing area and warehouse on S3 (a local
//! `moto` server), secrets from the environment; and a system whose store is unreachable,
//! retried and then failed alone while the others commit.

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use stocktake::warehouse::Warehouse;

use crate::{binary, crash::digest, rows, scalar, small_demo_in};

const SECRET: &str = "moto-secret-Xq7-do-not-log";

/// A moto S3 server on a free loopback port, stopped on drop.
struct Moto {
    child: Child,
    endpoint: String,
}

impl Moto {
    fn start() -> Moto {
        let port = free_port();
        let child = Command::new("python3")
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 -m moto.server (.ci/run installs moto[server])");
        let began = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(began.elapsed() < Duration::from_secs(30), "moto did not start on port {port}");
            std::thread::sleep(Duration::from_millis(100));
        }
        Moto { child, endpoint: format!("http://127.0.0.1:{port}") }
    }

    /// Creates `bucket` and uploads every file under `folder` below `prefix`.
    fn upload(&self, bucket: &str, folder: &Path, prefix: &str) {
        let script = r#"
import boto3, os, sys
endpoint, bucket, folder, prefix = sys.argv[1:5]
s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1")
s3.create_bucket(Bucket=bucket)
for d, _, files in os.walk(folder):
    for f in files:
        path = os.path.join(d, f)
        s3.upload_file(path, bucket, prefix + "/" + os.path.relpath(path, folder))
"#;
        let out = Command::new("python3").args(["-c", script, &self.endpoint, bucket, &folder.display().to_string(), prefix]).output().unwrap();
        assert!(out.status.success(), "upload failed: {}", String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The object-store block a pipeline on `endpoint` carries: keys only by `${ENV}`.
fn storage_block(endpoint: &str) -> String {
    format!(
        "[storage]\naws_endpoint = \"{endpoint}\"\naws_allow_http = \"true\"\naws_region = \"us-east-1\"\n\
         aws_access_key_id = \"${{STOCKTAKE_TEST_S3_KEY}}\"\naws_secret_access_key = \"${{STOCKTAKE_TEST_S3_SECRET}}\"\n\n[reference]"
    )
}

fn stocktake(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(binary())
        .args(args)
        .env("STOCKTAKE_TEST_S3_KEY", "test")
        .env("STOCKTAKE_TEST_S3_SECRET", SECRET)
        .current_dir(dir)
        .output()
        .unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_pipeline_runs_with_landing_and_warehouse_on_s3() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    small_demo_in(dir.path(), true);
    moto.upload("stocktake", &dir.path().join("stocktake-demo"), "demo");
    let text = std::fs::read_to_string(dir.path().join("stocktake-demo/pipeline.toml"))
        .unwrap()
        .replace("\"stocktake-demo/", "\"s3://stocktake/demo/")
        .replace("warehouse = \"./warehouse\"", "warehouse = \"s3://stocktake/warehouse\"")
        .replacen("[reference]", &storage_block(&moto.endpoint), 1);
    std::fs::write(dir.path().join("s3.toml"), text).unwrap();

    let (code, stdout, stderr) = stocktake(dir.path(), &["run", "s3.toml", "-vv"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("built purchase_recommendations"), "{stdout}");
    assert!(!stdout.contains(SECRET) && !stderr.contains(SECRET), "the secret reached the output");

    // Every mart on S3 equals the one the same files built in a local warehouse.
    let options = vec![
        ("aws_endpoint".to_string(), moto.endpoint.clone()),
        ("aws_allow_http".to_string(), "true".to_string()),
        ("aws_region".to_string(), "us-east-1".to_string()),
        ("aws_access_key_id".to_string(), "test".to_string()),
        ("aws_secret_access_key".to_string(), SECRET.to_string()),
    ];
    let on_s3 = Warehouse::open_with("s3://stocktake/warehouse", options.clone()).unwrap();
    let local = Warehouse::open(&dir.path().join("warehouse").display().to_string()).unwrap();
    let (s3_tables, local_tables) = (digest(&on_s3).await, digest(&local).await);
    for mart in stocktake::marts::MARTS.iter().map(|m| m.name) {
        assert_eq!(s3_tables.get(mart), local_tables.get(mart), "mart {mart} differs between S3 and local");
    }
    let snapshots = scalar(&on_s3, "select count(*) from snapshots").await;
    assert_eq!(snapshots, scalar(&local, "select count(*) from snapshots").await);
    let files = rows(&on_s3, "select distinct source_file from snapshots where system = 'pos' order by 1 limit 1").await;
    assert!(files[0].starts_with("s3://stocktake/demo/landing/pos/"), "{files:?}");
    for table in ["runs", "run_systems", "quarantine"] {
        let all = rows(&on_s3, &format!("select * from {table}")).await.join("\n");
        assert!(!all.contains(SECRET), "the secret reached table {table}");
    }

    // Idempotent on S3 too, and analysts reach it with the usual AWS_* variables.
    let (code, _, stderr) = stocktake(dir.path(), &["snapshot", "s3.toml"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(scalar(&on_s3, "select count(*) from snapshots").await, snapshots);
    let out = Command::new(binary())
        .args(["sql", "select count(*) as n from positions", "--format", "csv", "--warehouse", "s3://stocktake/warehouse"])
        .envs(options.iter().map(|(k, v)| (k.to_uppercase(), v.clone())))
        .output()
        .unwrap();
    let csv = String::from_utf8_lossy(&out.stdout);
    assert_eq!(csv.lines().nth(1), Some(s3_tables["positions"].0.to_string().as_str()), "{csv}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_system_is_retried_then_fails_alone_and_shows_as_stale() {
    let dir = tempfile::tempdir().unwrap();
    small_demo_in(dir.path(), true);
    // Three more days for every snapshot system but the WMS, whose store is now down.
    let landing = dir.path().join("stocktake-demo/landing");
    for system in ["pos", "shopify", "erp", "planning", "seller_central"] {
        for day in ["2026-11-01", "2026-11-02", "2026-11-03"] {
            let target = landing.join(system).join(day);
            std::fs::create_dir_all(&target).unwrap();
            crate::copy_tree(&landing.join(system).join("2026-10-31"), &target);
        }
    }
    let dead = format!("http://127.0.0.1:{}", free_port());
    let text = std::fs::read_to_string(dir.path().join("stocktake-demo/pipeline.toml"))
        .unwrap()
        .replace("\"stocktake-demo/landing/wms\"", "\"s3://stocktake/landing/wms\"")
        .replacen("[reference]", &storage_block(&dead), 1)
        + "\n[retry]\nattempts = 3\ninitial_backoff_ms = 100\nmax_backoff_ms = 400\n";
    std::fs::write(dir.path().join("down.toml"), text).unwrap();

    let began = Instant::now();
    let (code, stdout, stderr) = stocktake(dir.path(), &["run", "down.toml"]);
    assert_eq!(code, 2, "a partial run is an error for its scheduler:\n{stdout}\n{stderr}");
    assert!(began.elapsed() < Duration::from_secs(120));
    assert!(stderr.contains("try 2 of 3") && stderr.contains("try 3 of 3"), "{stderr}");
    let wms = stdout.lines().find(|l| l.trim_start().starts_with("wms")).unwrap();
    assert!(wms.contains("failed"), "{stdout}");
    assert!(stdout.contains("gave up after 3 tries"), "{stdout}");
    assert!(!stdout.contains(SECRET) && !stderr.contains(SECRET));

    let w = Warehouse::open(&dir.path().join("warehouse").display().to_string()).unwrap();
    let status = rows(&w, "select system, status from run_systems where run_id = (select run_id from runs order by started_at desc limit 1) order by system").await;
    assert!(status.contains(&"wms|failed".to_string()) && status.contains(&"pos|ok".to_string()), "{status:?}");
    let newest = rows(&w, "select system, cast(max(snapshot_date) as varchar) from snapshots group by system order by system").await;
    assert!(newest.contains(&"pos|2026-11-03".to_string()) && newest.contains(&"wms|2026-10-31".to_string()), "{newest:?}");
    let stale = scalar(&w, "select stale_systems from kpi_weekly where week = DATE '2026-11-02' and segment_type = 'system' and segment = 'wms'").await;
    assert_eq!(stale, 1, "the failed system's staleness shows in the KPIs");
    assert_eq!(scalar(&w, "select stale_systems from kpi_weekly where week = DATE '2026-11-02' and segment_type = 'system' and segment = 'pos'").await, 0);
    // It holds the purchase recommendations of the region it is authoritative in.
    let held = rows(&w, "select distinct hold_reason from purchase_recommendations where hold_reason like '%stale source%'").await;
    assert!(!held.is_empty() && held.iter().all(|r| r.contains("stale source: wms at ") && r.contains(" last reported 3 days ago")), "{held:?}");
}
