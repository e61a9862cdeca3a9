-- coverage: which systems reported stock at which locations on which days, and how many
-- rows (bundles included: it describes the exports, not the stock). A small table, so that
-- staleness is read without scanning every snapshot.
--
-- Built for the days $first_day to $last_day at a time.
with snapshots as (
    select snapshot_date, system, location_id
    from snapshots
    where snapshot_date >= $first_day and snapshot_date <= $last_day
),

final as (
    select snapshot_date, system, location_id, count(*) as snapshot_rows
    from snapshots
    group by snapshot_date, system, location_id
)

select * from final
