-- explain/publish: per system, how often it trailed the true count over the last 30 days
-- (and by how many days), with the drift patterns found for the SKU.
with scoped as (
    select * from variances where sku = :sku and (:location is null or location_id = :location)
),

window as (
    select * from scoped
    where arrow_cast(snapshot_date, 'Int32') > (select max(arrow_cast(snapshot_date, 'Int32')) from scoped) - 30
),

final as (
    select location_id, system,
           count(*) as days,
           sum(case when delta <> 0 then 1 else 0 end) as days_different,
           sum(case when explained_by = 'lag' then 1 else 0 end) as days_lagging,
           max(lag_days) as max_lag_days,
           sum(case when flagged and explained_by is null then 1 else 0 end) as days_flagged
    from window
    group by location_id, system
)

select * from final order by location_id, system
