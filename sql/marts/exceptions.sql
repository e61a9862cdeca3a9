-- exceptions: a SKU-location-system beyond tolerance (flagged, and not explained as in
-- transit, receiving or lag) opens an exception; it closes on the first observed day back
-- within tolerance, or when a physical count of that SKU-location settles the number.
--
--   opened_on       first day beyond tolerance
--   closed_on       first day back within tolerance, or the count date; NULL while open
--   days_open       closed_on − opened_on, or (newest day − opened_on) while open
--   peak_abs_delta  largest |delta| while open
--   status          open | closed | resolved_by_count
with variances as (
    select
        sku,
        location_id,
        system,
        snapshot_date,
        arrow_cast(snapshot_date, 'Int32') as day_number,
        delta,
        flagged and explained_by is null as beyond
    from variances
),

counts as (
    select distinct location_id, sku, arrow_cast(count_date, 'Int32') as count_day from counts
),

as_of as (
    select max(arrow_cast(snapshot_date, 'Int32')) as last_day from variances
),

-- Gaps and islands: runs of consecutive observations beyond tolerance.
numbered as (
    select
        *,
        row_number() over (partition by sku, location_id, system order by snapshot_date)
          - row_number() over (partition by sku, location_id, system, beyond order by snapshot_date) as island
    from variances
),

islands as (
    select
        sku,
        location_id,
        system,
        min(day_number) as opened_day,
        max(day_number) as last_beyond_day,
        max(abs(delta)) as peak_abs_delta
    from numbered
    where beyond
    group by sku, location_id, system, island
),

next_within as (
    select i.sku, i.location_id, i.system, i.opened_day, min(v.day_number) as back_day
    from islands i
    join variances v
        on v.sku = i.sku and v.location_id = i.location_id and v.system = i.system
       and v.day_number > i.last_beyond_day and not v.beyond
    group by i.sku, i.location_id, i.system, i.opened_day
),

-- A count settles an exception it falls in, or one still open (a count taken after the
-- newest snapshot closes it too).
counted as (
    select i.sku, i.location_id, i.system, i.opened_day, min(c.count_day) as count_day
    from islands i
    left join next_within n
        on n.sku = i.sku and n.location_id = i.location_id and n.system = i.system and n.opened_day = i.opened_day
    join counts c
        on c.sku = i.sku and c.location_id = i.location_id
       and c.count_day >= i.opened_day
       and (c.count_day <= i.last_beyond_day or n.back_day is null)
    group by i.sku, i.location_id, i.system, i.opened_day
),

final as (
    select
        i.sku,
        i.location_id,
        i.system,
        arrow_cast(i.opened_day, 'Date32') as opened_on,
        arrow_cast(coalesce(c.count_day, n.back_day), 'Date32') as closed_on,
        coalesce(c.count_day, n.back_day, a.last_day) - i.opened_day as days_open,
        i.peak_abs_delta,
        case
            when c.count_day is not null then 'resolved_by_count'
            when n.back_day is not null then 'closed'
            else 'open'
        end as status
    from islands i
    cross join as_of a
    left join next_within n
        on n.sku = i.sku and n.location_id = i.location_id and n.system = i.system and n.opened_day = i.opened_day
    left join counted c
        on c.sku = i.sku and c.location_id = i.location_id and c.system = i.system and c.opened_day = i.opened_day
)

select * from final
order by sku, location_id, system, opened_on
