-- daily_sync: the operations team's morning check. The top SKUs by revenue over the demand
-- window, on the newest snapshot day: the authoritative quantity at each location against
-- every other system. A row is a discrepancy when the difference is beyond tolerance
-- (flagged, SPEC §5) and nothing temporal — a transfer in transit, receiving, lag —
-- explains it. `:top_n` is replaced by the number of SKUs to check.
with newest as (
    select max(snapshot_date) as day from variances
),

thresholds as (
    select * from thresholds
),

revenue as (
    select m.sku, sum(-m.qty * k.price) as revenue
    from movements m
    join skus k on k.sku = m.sku
    cross join newest n
    cross join thresholds t
    where m.kind = 'sale'
      and arrow_cast(arrow_cast(m.event_at, 'Date32'), 'Int32') > arrow_cast(n.day, 'Int32') - t.demand_window_days
    group by m.sku
),

top_skus as (
    select sku, revenue, row_number() over (order by revenue desc, sku) as revenue_rank
    from revenue
    order by revenue desc, sku
    limit :top_n
),

final as (
    select
        t.revenue_rank,
        v.sku,
        v.location_id,
        v.authoritative_system,
        v.authoritative_qty,
        v.system,
        v.system_qty,
        v.delta,
        v.flagged and v.explained_by is null as discrepancy,
        v.explained_by,
        t.revenue,
        n.day
    from variances v
    join top_skus t on t.sku = v.sku
    cross join newest n
    where v.snapshot_date = n.day
)

select * from final order by revenue_rank, location_id, system
