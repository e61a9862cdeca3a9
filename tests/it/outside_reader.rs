//! An outside reader — Python's `deltalake`, as an analyst's notebook would use it — sees
//! every table with the same rows as stocktake.

use std::collections::BTreeMap;
use std::process::Command;

use stocktake::marts;

use crate::scalar;

const READER: &str = r#"
import json, os, sys
from deltalake import DeltaTable
root, names = sys.argv[1], sys.argv[2].split(",")
counts = {n: DeltaTable(os.path.join(root, n)).to_pyarrow_table().num_rows for n in names}
print(json.dumps(counts), flush=True)
os._exit(0)  # deltalake's runtime can abort at interpreter teardown; the answer is out
"#;

#[tokio::test]
async fn python_deltalake_reads_every_table_with_the_same_row_counts() {
    let root = crate::shared_demo().0.join("warehouse");
    let warehouse = crate::shared_warehouse();

    let names = marts::all_tables();
    let out = Command::new("python3").args(["-c", READER, &root.display().to_string(), &names.join(",")]).output().unwrap();
    assert!(out.status.success(), "python deltalake failed (is it installed? .ci/run installs it): {}", String::from_utf8_lossy(&out.stderr));
    let theirs: BTreeMap<String, i64> = serde_json::from_slice(&out.stdout).unwrap();

    for name in names {
        let ours = scalar(&warehouse, &format!("select count(*) from {name}")).await;
        assert_eq!(theirs.get(name), Some(&ours), "table {name}");
    }
    assert!(theirs["snapshots"] > 10_000, "{theirs:?}");
}
