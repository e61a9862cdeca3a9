-- explain/agreement: per location, the last day on which every system matched the true
-- count for the SKU (NULL: never, in the history held).
with scoped as (
    select * from variances where sku = :sku and (:location is null or location_id = :location)
),

daily as (
    select location_id, snapshot_date, max(abs(delta)) as worst from scoped group by location_id, snapshot_date
),

final as (
    select l.location_id, max(case when d.worst = 0 then d.snapshot_date end) as agreed_on
    from (select distinct location_id from scoped) l
    left join daily d on d.location_id = l.location_id
    group by l.location_id
)

select * from final order by location_id
