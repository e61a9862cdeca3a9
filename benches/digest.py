"""Content digest of a warehouse's marts, to check that a change left every mart as it was.

Each mart's rows (the day marts' from 2026-10-25 on), sorted by every column and hashed; then
the variances' lag explanations over every day (count, sum of lag_days and a hash per
explanation). Run on two warehouses after the same build and compare the outputs.

    python3 benches/digest.py WAREHOUSE_DIR
"""

import datetime
import hashlib
import sys

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable

MARTS = ["coverage", "positions", "variances", "sku_classes", "variance_trends", "drift_patterns", "exceptions",
         "kpi_weekly", "cycle_count_plan", "buffer_recommendations", "purchase_recommendations", "drift_patterns_state"]
DAY_MARTS = ("positions", "variances", "coverage")


def main():
    root = sys.argv[1]
    for name in MARTS:
        t = DeltaTable(f"{root}/{name}").to_pyarrow_table()
        if name in DAY_MARTS:
            t = t.filter(pc.field("snapshot_date") >= pa.scalar(datetime.date(2026, 10, 25)))
        t = t.select(sorted(t.column_names))
        t = t.sort_by([(c, "ascending") for c in t.column_names])
        h = hashlib.sha256()
        for batch in t.to_batches():
            for col in batch.columns:
                h.update(str(col.to_pylist()).encode())
        print(f"{name:28} {t.num_rows:>10} {h.hexdigest()[:16]}")
    con = duckdb.connect()
    con.register("v", DeltaTable(f"{root}/variances").to_pyarrow_dataset())
    for row in con.execute("select explained_by, count(*), sum(lag_days), sum(hash(sku, location_id, system, snapshot_date, lag_days)) % 1000003 "
                           "from v group by 1 order by 1").fetchall():
        print("variances explained_by", *row)


if __name__ == "__main__":
    main()
