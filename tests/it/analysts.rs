//! Analysts: the PostgreSQL wire server driven by the real `psql` and Python's `psycopg`,
//! read-only, loopback by default, a password anywhere else; and the SQL shell.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{binary, scalar, shared_demo, shared_warehouse};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(host: &str, password: Option<&str>) -> (Server, u16) {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut command = Command::new(binary());
    command.args(["serve", "--host", host, "--port", &port.to_string()]).current_dir(&shared_demo().0).stdout(Stdio::null()).stderr(Stdio::null());
    command.env_remove("STOCKTAKE_SERVE_PASSWORD");
    if let Some(p) = password {
        command.env("STOCKTAKE_SERVE_PASSWORD", p);
    }
    let server = Server(command.spawn().unwrap());
    let began = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(began.elapsed() < Duration::from_secs(60), "stocktake serve did not listen on {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
    (server, port)
}

fn psql(port: u16, password: Option<&str>, sql: &str) -> (bool, String, String) {
    let mut command = Command::new("psql");
    command.args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "analyst", "-d", "stocktake", "-At", "-v", "ON_ERROR_STOP=1", "-c", sql]);
    match password {
        Some(p) => command.env("PGPASSWORD", p),
        None => command.env_remove("PGPASSWORD"),
    };
    let out = command.output().expect("psql (.ci/run installs postgresql-client)");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).trim().to_string(), String::from_utf8_lossy(&out.stderr).into())
}

#[tokio::test(flavor = "multi_thread")]
async fn psql_and_psycopg_query_every_table_and_writes_are_refused() {
    let (_server, port) = serve("127.0.0.1", None);
    let w = shared_warehouse();
    let (ok, out, err) = psql(port, None, "select count(*) from positions");
    assert!(ok, "{err}");
    assert_eq!(out, scalar(&w, "select count(*) from positions").await.to_string());
    for table in stocktake::marts::all_tables() {
        let (ok, _, err) = psql(port, None, &format!("select * from {table} limit 1"));
        assert!(ok, "{table}: {err}");
    }
    for sql in ["drop table positions", "delete from snapshots", "insert into runs (run_id) values ('x')", "create table x as select 1"] {
        let (ok, _, err) = psql(port, None, sql);
        assert!(!ok && err.contains("read-only"), "{sql}: {err}");
    }
    assert_eq!(psql(port, None, "select count(*) from positions").1, out, "a refused write changed nothing");

    // psycopg binds parameters through the extended protocol.
    let script = r#"
import json, sys, psycopg
port = int(sys.argv[1])
with psycopg.connect(host="127.0.0.1", port=port, user="analyst", dbname="stocktake") as conn:
    row = conn.execute("select count(*), sum(observations) from variance_trends where abc_class = %s and location_id = %s", ("A", "STORE-NYC")).fetchone()
    print(json.dumps([int(row[0]), int(row[1])]))
"#;
    let out = Command::new("python3").args(["-c", script, &port.to_string()]).output().unwrap();
    assert!(out.status.success(), "psycopg: {}", String::from_utf8_lossy(&out.stderr));
    let got: Vec<i64> = serde_json::from_slice(&out.stdout).unwrap();
    let rows = scalar(&w, "select count(*) from variance_trends where abc_class = 'A' and location_id = 'STORE-NYC'").await;
    let observations = scalar(&w, "select sum(observations) from variance_trends where abc_class = 'A' and location_id = 'STORE-NYC'").await;
    assert!(rows > 0);
    assert_eq!(got, vec![rows, observations]);
}

#[test]
fn any_address_but_loopback_needs_a_password_and_checks_it() {
    let out = Command::new(binary()).args(["serve", "--host", "0.0.0.0", "--port", "0"]).env_remove("STOCKTAKE_SERVE_PASSWORD").current_dir(&shared_demo().0).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("without a password"));

    let (_server, port) = serve("0.0.0.0", Some("correct horse"));
    let (ok, _, err) = psql(port, Some("wrong"), "select 1");
    assert!(!ok && err.to_lowercase().contains("password"), "{err}");
    let (ok, _, err) = psql(port, None, "select 1");
    assert!(!ok, "no password was accepted: {err}");
    let (ok, out, err) = psql(port, Some("correct horse"), "select count(*) from skus");
    assert!(ok, "{err}");
    assert_eq!(out, "304");
}

#[test]
fn the_shell_runs_statements_and_example_files_and_keeps_history() {
    let (dir, _) = shared_demo();
    let history = tempfile::NamedTempFile::new().unwrap();
    // Read when the test runs, not baked in when it compiled: a test binary reused from a
    // build in another clone of the repository (one target directory for all) would look
    // for the files in that clone.
    let root = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into());
    let examples = std::path::Path::new(&root).join("sql/examples");
    let input = format!(
        "select count(*) as skus\nfrom skus;\n\\i {}\nselect nonsense from nowhere;\n\\d\n\\q\n",
        examples.join("worst_systems_this_month.sql").display()
    );
    let mut child = Command::new(binary())
        .args(["shell"])
        .env("STOCKTAKE_HISTORY", history.path())
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("| 304  |") || stdout.contains("| 304 "), "{stdout}");
    assert!(stdout.contains("unexplained_rate") && stdout.contains("value_at_stake"), "{stdout}");
    assert!(stderr.contains("nowhere"), "errors go on: {stderr}");
    assert!(stdout.contains("variance_trends"), "\\d lists tables: {stdout}");
    let kept = std::fs::read_to_string(history.path()).unwrap();
    assert!(kept.contains("from skus;"), "{kept}");

    // Every shipped example runs.
    for entry in std::fs::read_dir(&examples).unwrap() {
        let sql = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let out = Command::new(binary()).args(["sql", "--", sql.trim().trim_end_matches(';')]).current_dir(dir).output().unwrap();
        assert!(out.status.success(), "{sql}\n{}", String::from_utf8_lossy(&out.stderr));
    }
}
