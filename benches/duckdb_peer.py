"""The peer an analyst would otherwise use: DuckDB over the same landing files.

`load` reads every system's exports into a DuckDB database (the peer of `stocktake snapshot`);
`build` computes the same positions, variances (flagged with the same tolerance, explained by
in-transit, receiving and lag) and weekly variance trends by ABC class as stocktake's marts
(the peer of `stocktake build`). Run by benches/scale.py, which times each step.

    python3 benches/duckdb_peer.py load|build DATA_DIR DB_FILE
"""

import sys

import duckdb

FLAG_PCT, FLAG_UNITS, LAG_DAYS = 0.03, 10, 3


def load(con, data):
    land = f"{data}/landing"
    day = "cast(regexp_extract(filename, '(\\d{4}-\\d{2}-\\d{2})', 1) as date)"
    opts = "header = true, filename = true, all_varchar = true"
    con.execute(f"""
        create or replace table skus as select * from read_csv('{data}/reference/skus.csv', header = true);
        create or replace table locations as select * from read_csv('{data}/reference/locations.csv', header = true);
        create or replace table aliases as select * from read_csv('{data}/reference/sku_aliases.csv', header = true, all_varchar = true);
        create or replace table snapshots as
        select 'pos' as system, {day} as snapshot_date, "Store" as location_id, "Item Code" as sku,
               cast("Qty On Hand" as bigint) as on_hand, null::bigint as available, null::bigint as inbound
          from read_csv('{land}/pos/*/*.csv', {opts})
        union all
        select 'shopify', {day}, "Location", "SKU", cast("On hand" as bigint), cast("Available" as bigint), null
          from read_csv('{land}/shopify/*/*.csv', {opts})
        union all
        select 'erp', {day}, "Site", coalesce(a.sku, e."Item No"), cast("On Hand" as bigint), null, cast("On Order" as bigint)
          from read_csv('{land}/erp/*/*.csv', {opts}, delim = ';') e
          left join aliases a on a.system = 'erp' and a.external_id = e."Item No"
        union all
        select 'wms', {day}, "warehouse", "sku", cast("on_hand" as bigint), cast("available" as bigint), null
          from read_csv('{land}/wms/*/*.csv', {opts})
        union all
        select 'seller_central', {day}, regexp_extract(filename, '([^/]+)\\.txt$', 1), "sku",
               cast("afn-warehouse-quantity" as bigint), cast("afn-fulfillable-quantity" as bigint),
               cast("afn-inbound-shipped-quantity" as bigint) + cast("afn-inbound-receiving-quantity" as bigint)
          from read_csv('{land}/seller_central/*/*.txt', {opts}, delim = '\t')
        union all
        select 'planning', {day}, "Location", "SKU", cast("Stock" as bigint), null, cast("Incoming" as bigint)
          from read_csv('{land}/planning/*/*.csv', {opts});
        create or replace table movements as
        select cast("timestamp" as timestamp) as event_at, location as location_id, coalesce(a.sku, m.sku) as sku,
               kind, cast(qty as bigint) as qty, reference
          from read_csv('{land}/erp_movements/*/*.csv', {opts}) m
          left join aliases a on a.system = 'erp' and a.external_id = m.sku;
    """)


def build(con):
    con.execute(f"""
        create or replace table positions as
        select s.snapshot_date, s.sku, s.location_id, l.region, l.type as location_type, s.system as authoritative_system,
               s.on_hand, s.available, s.inbound, 0 as in_transit, k.unit_cost
          from snapshots s
          join locations l on l.location_id = s.location_id
          join (values ('store', 'pos'), ('warehouse', 'erp'), ('3pl', 'wms'), ('fba', 'seller_central')) au(type, system)
            on au.type = l.type and au.system = s.system
          left join skus k on k.sku = s.sku;

        create or replace table variances as
        with compared as (
            select s.snapshot_date, s.sku, s.location_id, p.region, s.system, p.authoritative_system,
                   case when s.on_hand is not null and p.on_hand is not null then s.on_hand else s.available end as system_qty,
                   case when s.on_hand is not null and p.on_hand is not null then p.on_hand else p.available end as authoritative_qty,
                   p.in_transit, p.inbound as authoritative_inbound, p.unit_cost
              from snapshots s
              join positions p on p.snapshot_date = s.snapshot_date and p.sku = s.sku and p.location_id = s.location_id
             where s.system <> p.authoritative_system
        ),
        measured as (
            select *, system_qty - authoritative_qty as delta,
                   greatest({FLAG_PCT} * abs(authoritative_qty), {FLAG_UNITS}) as tolerance,
                   abs(system_qty - authoritative_qty) > greatest({FLAG_PCT} * abs(authoritative_qty), {FLAG_UNITS}) as flagged
              from compared
             where system_qty is not null and authoritative_qty is not null
        ),
        lagged as (
            select m.snapshot_date, m.sku, m.location_id, m.system, min(m.snapshot_date - p.snapshot_date) as lag_days
              from measured m
              join positions p on p.sku = m.sku and p.location_id = m.location_id
             where m.delta <> 0 and p.snapshot_date < m.snapshot_date and p.snapshot_date >= m.snapshot_date - {LAG_DAYS}
               and p.on_hand = m.system_qty
             group by all
        )
        select m.snapshot_date, m.sku, m.location_id, m.region, m.system, m.authoritative_system, m.system_qty,
               m.authoritative_qty, m.delta, m.flagged,
               case when m.delta = 0 then null
                    when m.in_transit > 0 and m.delta > 0 and m.delta <= m.in_transit + m.tolerance then 'in_transit'
                    when m.authoritative_inbound > 0 and m.delta > 0 and m.delta <= m.authoritative_inbound + m.tolerance then 'receiving'
                    when l.sku is not null then 'lag' end as explained_by,
               l.lag_days, m.delta * m.unit_cost as value_delta
          from measured m
          left join lagged l using (snapshot_date, sku, location_id, system);

        create or replace table sku_classes as
        with usage as (
            select k.sku, coalesce(sum(-m.qty * k.unit_cost), 0) as value
              from skus k left join movements m on m.sku = k.sku and m.kind = 'sale'
             group by k.sku
        ),
        ranked as (
            select sku, value, sum(value) over (order by value desc, sku rows unbounded preceding) - value as before,
                   sum(value) over () as total
              from usage
        )
        select sku, case when value <= 0 then 'C' when before < 0.8 * total then 'A' when before < 0.95 * total then 'B' else 'C' end as abc_class
          from ranked;

        create or replace table variance_trends as
        select date_trunc('week', v.snapshot_date) as week, coalesce(c.abc_class, 'C') as abc_class, v.location_id, v.region, v.system,
               count(*) as observations,
               avg(case when v.flagged and v.explained_by is null then 1.0 else 0.0 end) as flagged_rate,
               avg(case when v.flagged and v.explained_by is not null then 1.0 else 0.0 end) as explained_rate,
               avg(abs(v.delta)) as mean_abs_delta,
               avg(case when v.explained_by is null then abs(v.delta) else 0 end) as mean_abs_real_delta,
               avg(v.delta) as signed_bias,
               sum(case when v.flagged and v.explained_by is null then round(abs(v.value_delta) * 100) else 0 end) / 100.0 as value_delta
          from variances v left join sku_classes c on c.sku = v.sku
         group by all;
    """)


def main():
    step, data, db = sys.argv[1:4]
    con = duckdb.connect(db)
    {"load": load, "build": lambda con, _data: build(con)}[step](con, data)
    for (name,) in con.execute("select table_name from information_schema.tables order by 1").fetchall():
        print(f"{name}\t{con.execute(f'select count(*) from {name}').fetchone()[0]}")
    con.close()


if __name__ == "__main__":
    main()
