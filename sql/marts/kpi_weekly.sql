-- kpi_weekly: the weekly KPIs, for everything and per ABC class, location, region and system.
-- Each KPI is defined once, here, as a metric in `facts`; the final select only aggregates.
--
--   inventory_record_accuracy   share of counted SKU-locations whose |counted − book| is within
--                               the class tolerance × |book| (A 1 %, B 3 %, C 5 %). Every count
--                               is judged on its own: over and under never net out.
--   count_variance_rate         share of counts that differ from the book at all
--   oversell_incidents          snapshot rows of a system showing negative available
--   open_exceptions             exceptions open at the end of the week
--   median_days_to_close        median days_open of exceptions closed during the week
--   publish_lag_days            mean days behind, over variances explained as lag
--   variance_value              Σ |delta × unit cost| of real (unexplained, flagged) variances
--   real_variances              flagged variances not explained by transit, receiving or lag
--   explained_variances         flagged variances explained by transit, receiving or lag
--   unreasoned_adjustment_share share of adjustments booked without a reason code
--   returns_to_sellable_days    mean days from a return's arrival to its restock
--   stale_systems               systems whose newest snapshot (at a location) is older than
--                               `stale_after_days` at the end of the week (or at the newest
--                               snapshot of all, for the week in progress)
-- Segments: count-based KPIs have no system; stale_systems has no ABC class. A segment has a
-- row for a week when it has something to report that week (a count, a flagged or lag-explained
-- variance, an oversold row, an exception, an adjustment, a return, a system's last snapshot).
--
-- Built for the weeks from $first_week up to (not including) $end_week, a few weeks at a
-- time so that memory does not grow with history (every week in a full build). Weeks already built
-- keep the ABC classes they were built with; `stocktake build --full` re-classes them.
-- Movements are pruned by load_date, allowing for events dated up to two days after the
-- folder they arrive in (time zones); their weeks are bounded by instants (a constant cast to
-- the column's type, folded once; a date cast would be computed for every row). The cast is to
-- microseconds because the last pass ends at 9999-12-31, beyond DataFusion's default
-- nanosecond timestamps.
with classes as (
    select sku, abc_class from sku_classes
),

-- The class of every SKU whose snapshots count (stg_snapshots leaves bundles out). The
-- snapshots are joined to it directly: joined to stg_snapshots, DataFusion underestimates
-- the millions of snapshot rows and hashes them instead of the 20 k SKUs.
stocked_classes as (
    select k.sku, coalesce(c.abc_class, 'C') as abc_class
    from skus k
    left join classes c on c.sku = k.sku
    where not k.is_bundle
),

locations as (
    select location_id, region from locations
),

thresholds as (
    select * from thresholds
),

weeks as (
    select distinct arrow_cast(date_trunc('week', snapshot_date), 'Date32') as week
    from coverage
    where snapshot_date >= $first_week and snapshot_date < $end_week
),

as_of as (
    select max(arrow_cast(snapshot_date, 'Int32')) as day from coverage
),

count_facts as (
    select
        arrow_cast(date_trunc('week', c.count_date), 'Date32') as week,
        coalesce(k.abc_class, 'C') as abc_class,
        c.location_id,
        l.region,
        case when abs(c.counted_qty - c.book_qty)
                  <= case coalesce(k.abc_class, 'C') when 'A' then t.tolerance_a when 'B' then t.tolerance_b else t.tolerance_c end
                     * abs(c.book_qty)
             then 1.0 else 0.0 end as within,
        case when c.counted_qty <> c.book_qty then 1.0 else 0.0 end as differs
    from counts c
    left join classes k on k.sku = c.sku
    left join locations l on l.location_id = c.location_id
    cross join thresholds t
    where c.book_qty is not null and c.count_date >= $first_week and c.count_date < $end_week
),

exception_facts as (
    select
        w.week,
        coalesce(k.abc_class, 'C') as abc_class,
        e.location_id,
        l.region,
        e.system,
        arrow_cast(e.opened_on, 'Int32') <= arrow_cast(w.week, 'Int32') + 6
          and (e.closed_on is null or arrow_cast(e.closed_on, 'Int32') > arrow_cast(w.week, 'Int32') + 6) as open_at_end,
        e.closed_on is not null
          and arrow_cast(date_trunc('week', e.closed_on), 'Date32') = w.week as closed_this_week,
        e.days_open
    from exceptions e
    cross join weeks w
    left join classes k on k.sku = e.sku
    left join locations l on l.location_id = e.location_id
),

returns as (
    select r.location_id, r.sku, r.system,
           arrow_cast(date_trunc('week', s.event_at), 'Date32') as week,
           arrow_cast(arrow_cast(s.event_at, 'Date32'), 'Int32') - arrow_cast(arrow_cast(r.event_at, 'Date32'), 'Int32') as days
    from movements r
    join movements s
        on s.reference = r.reference and s.sku = r.sku and s.location_id = r.location_id and s.kind = 'return_restock'
    where r.kind = 'return'
      and s.event_at >= arrow_cast($first_week, 'Timestamp(Microsecond, Some("UTC"))')
      and s.event_at < arrow_cast($end_week, 'Timestamp(Microsecond, Some("UTC"))')
      and s.load_date >= $first_week - interval '2 days'
),

-- Each system's newest snapshot at a location by the end of each week. A build that only adds
-- days reads the new days' coverage and the newest days the last build kept (`coverage_kept`:
-- all before the first new day, so by the end of every week built here); other builds keep
-- none and read every day.
reports as (
    select system, location_id, arrow_cast(newest_day, 'Int32') as day from coverage_kept
    union all
    select system, location_id, arrow_cast(snapshot_date, 'Int32') from coverage where snapshot_date > $coverage_kept_until
),

latest_snapshot as (
    select w.week, s.system, s.location_id, max(s.day) as newest_day
    from reports s
    join weeks w on s.day <= arrow_cast(w.week, 'Int32') + 6
    group by w.week, s.system, s.location_id
),

-- The large inputs (snapshots, variances) are summed per day and segment key first, then per
-- week: the week and the region (a location's) are attached to the few thousand summed rows,
-- not computed or joined for each of the millions read, and the grouping sets below see
-- thousands of rows, not hundreds of millions. Every sum is of whole numbers (counts, cents,
-- days), so days then weeks give exactly the weekly sum. Every metric is a ratio of sums
-- (num / den), or a median or distinct count over small row-level inputs.
-- Only the rows a KPI counts are summed: the oversold snapshots (oversell_incidents is a
-- count, not a rate) and the flagged or lag-explained variances, a few of the rows read, so
-- the SKU join and the grouping see few rows.
snapshot_days as (
    select s.snapshot_date, k.abc_class, s.location_id, s.system, count(*) as oversold
    from snapshots s
    join stocked_classes k on k.sku = s.sku
    where s.snapshot_date >= $first_week and s.snapshot_date < $end_week and s.available < 0
    group by s.snapshot_date, k.abc_class, s.location_id, s.system
),

snapshot_totals as (
    select arrow_cast(date_trunc('week', d.snapshot_date), 'Date32') as week, d.abc_class, d.location_id, l.region, d.system,
           cast(sum(d.oversold) as double) as oversold
    from snapshot_days d
    left join locations l on l.location_id = d.location_id
    group by 1, 2, 3, 4, 5
),

variance_days as (
    select
        v.snapshot_date,
        coalesce(k.abc_class, 'C') as abc_class,
        v.location_id,
        v.system,
        sum(case when v.flagged and v.explained_by is null then 1.0 else 0.0 end) as real_variances,
        sum(case when v.flagged and v.explained_by is not null then 1.0 else 0.0 end) as explained_variances,
        sum(case when v.flagged and v.explained_by is null then round(abs(v.value_delta) * 100) else 0.0 end) as value_cents,
        sum(case when v.explained_by = 'lag' then cast(v.lag_days as double) end) as lag_days,
        sum(case when v.explained_by = 'lag' and v.lag_days is not null then 1.0 else 0.0 end) as lag_observations
    from variances v
    left join classes k on k.sku = v.sku
    where v.snapshot_date >= $first_week and v.snapshot_date < $end_week and (v.flagged or v.explained_by = 'lag')
    group by v.snapshot_date, coalesce(k.abc_class, 'C'), v.location_id, v.system
),

variance_totals as (
    select
        arrow_cast(date_trunc('week', d.snapshot_date), 'Date32') as week, d.abc_class, d.location_id, l.region, d.system,
        sum(d.real_variances) as real_variances,
        sum(d.explained_variances) as explained_variances,
        sum(d.value_cents) as value_cents,
        sum(d.lag_days) as lag_days,
        sum(d.lag_observations) as lag_observations
    from variance_days d
    left join locations l on l.location_id = d.location_id
    group by 1, 2, 3, 4, 5
),

facts as (
    select week, abc_class, location_id, region, cast(null as varchar) as system, 'ira' as metric, within as num, 1.0 as den
    from count_facts
    union all
    select week, abc_class, location_id, region, cast(null as varchar), 'count_variance', differs, 1.0
    from count_facts
    union all
    select week, abc_class, location_id, region, system, 'oversell', oversold, 1.0
    from snapshot_totals
    union all
    -- One branch for the four variance metrics: a CTE named in several branches is
    -- computed once per branch.
    select v.week, v.abc_class, v.location_id, v.region, v.system, m.metric,
           case m.metric
               when 'real_variance' then v.real_variances
               when 'explained_variance' then v.explained_variances
               when 'variance_value' then v.value_cents
               else v.lag_days
           end,
           case when m.metric = 'publish_lag' then v.lag_observations else 1.0 end
    from variance_totals v
    cross join (values ('real_variance'), ('explained_variance'), ('variance_value'), ('publish_lag')) as m(metric)
    where m.metric <> 'publish_lag' or v.lag_observations > 0
    union all
    select week, abc_class, location_id, region, system, 'open_exceptions', 1.0, 1.0
    from exception_facts where open_at_end
    union all
    select week, abc_class, location_id, region, system, 'days_to_close', cast(days_open as double), 1.0
    from exception_facts where closed_this_week
    union all
    select arrow_cast(date_trunc('week', m.event_at), 'Date32'), coalesce(k.abc_class, 'C'), m.location_id, l.region, m.system,
           'unreasoned_adjustment', case when coalesce(m.reason_code, '') = '' then 1.0 else 0.0 end, 1.0
    from movements m
    left join classes k on k.sku = m.sku
    left join locations l on l.location_id = m.location_id
    where m.kind = 'adjustment' and m.event_at >= arrow_cast($first_week, 'Timestamp(Microsecond, Some("UTC"))')
      and m.event_at < arrow_cast($end_week, 'Timestamp(Microsecond, Some("UTC"))')
      and m.load_date >= $first_week - interval '2 days'
    union all
    select r.week, coalesce(k.abc_class, 'C'), r.location_id, l.region, r.system, 'returns_to_sellable', cast(r.days as double), 1.0
    from returns r
    left join classes k on k.sku = r.sku
    left join locations l on l.location_id = r.location_id
    union all
    select s.week, cast(null as varchar), s.location_id, l.region, s.system, 'stale',
           case when least(arrow_cast(s.week, 'Int32') + 6, a.day) - s.newest_day > t.stale_after_days then 1.0 else 0.0 end, 1.0
    from latest_snapshot s
    cross join thresholds t
    cross join as_of a
    left join locations l on l.location_id = s.location_id
),

aggregated as (
    select
        week,
        case
            when grouping(abc_class) = 0 then 'abc_class'
            when grouping(location_id) = 0 then 'location'
            when grouping(region) = 0 then 'region'
            when grouping(system) = 0 then 'system'
            else 'all'
        end as segment_type,
        case
            when grouping(abc_class) = 0 then abc_class
            when grouping(location_id) = 0 then location_id
            when grouping(region) = 0 then region
            when grouping(system) = 0 then system
            else 'all'
        end as segment,
        sum(case when metric = 'ira' then num end) / sum(case when metric = 'ira' then den end) as inventory_record_accuracy,
        sum(case when metric = 'count_variance' then num end) / sum(case when metric = 'count_variance' then den end) as count_variance_rate,
        arrow_cast(sum(case when metric = 'oversell' then num else 0 end), 'Int64') as oversell_incidents,
        arrow_cast(sum(case when metric = 'open_exceptions' then num else 0 end), 'Int64') as open_exceptions,
        median(case when metric = 'days_to_close' then num end) as median_days_to_close,
        sum(case when metric = 'publish_lag' then num end) / sum(case when metric = 'publish_lag' then den end) as publish_lag_days,
        -- Cents, summed exactly whatever the order (see variance_trends).
        sum(case when metric = 'variance_value' then num else 0 end) / 100.0 as variance_value,
        arrow_cast(sum(case when metric = 'real_variance' then num else 0 end), 'Int64') as real_variances,
        arrow_cast(sum(case when metric = 'explained_variance' then num else 0 end), 'Int64') as explained_variances,
        sum(case when metric = 'unreasoned_adjustment' then num end) / sum(case when metric = 'unreasoned_adjustment' then den end) as unreasoned_adjustment_share,
        avg(case when metric = 'returns_to_sellable' then num end) as returns_to_sellable_days,
        count(distinct case when metric = 'stale' and num > 0 then system end) as stale_systems
    from facts
    group by grouping sets ((week), (week, abc_class), (week, location_id), (week, region), (week, system))
),

final as (
    select * from aggregated where segment is not null
)

select * from final
order by week, segment_type, segment
