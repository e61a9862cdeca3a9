-- variance_trends: per week × ABC class × location × system, how far the system sits from
-- the authoritative number.
--
--   observations      SKU-days compared
--   flagged_rate      share flagged and not explained (real variances)
--   explained_rate    share flagged but explained (in transit, receiving, lag): kept apart
--   mean_abs_delta    mean |system − authoritative| over every comparison
--   mean_abs_real_delta  the same, counting explained variances as zero
--   signed_bias       mean (system − authoritative): + phantom units, − missing units
--   value_delta       Σ |delta × unit cost| of real variances: over and under never net
--
-- slope, p_value and direction are added by src/drift/trends.rs: the Theil–Sen slope and
-- Mann–Kendall p-value of mean_abs_real_delta over the trailing `trend_weeks` weeks;
-- direction is worsening / improving when p < trend_alpha, else flat.
--
-- Built for the weeks from $first_week on; weeks already built keep the ABC classes they
-- were built with (`stocktake build --full` re-classes them).
with variances as (
    select * from variances where snapshot_date >= $first_week
),

classes as (
    select sku, abc_class from sku_classes
),

-- Summed per day first, then per week: the week and the region (a location's) are attached to
-- the few thousand summed rows, not computed or joined for each of the millions read. The
-- sums are of whole numbers (counts, units, cents), so they are exact in any order and each
-- mean is the same number as an average over the rows.
days as (
    select
        v.snapshot_date,
        coalesce(c.abc_class, 'C') as abc_class,
        v.location_id,
        v.system,
        count(*) as observations,
        sum(case when v.flagged and v.explained_by is null then 1.0 else 0.0 end) as flagged,
        sum(case when v.flagged and v.explained_by is not null then 1.0 else 0.0 end) as explained,
        sum(abs(v.delta)) as abs_delta,
        sum(case when v.explained_by is null then abs(v.delta) else 0 end) as abs_real_delta,
        sum(v.delta) as delta,
        sum(case when v.flagged and v.explained_by is null then round(abs(v.value_delta) * 100) else 0 end) as value_cents
    from variances v
    left join classes c on c.sku = v.sku
    group by v.snapshot_date, coalesce(c.abc_class, 'C'), v.location_id, v.system
),

locations as (
    select location_id, region from locations
),

final as (
    select
        arrow_cast(date_trunc('week', d.snapshot_date), 'Date32') as week,
        d.abc_class,
        d.location_id,
        l.region,
        d.system,
        sum(d.observations) as observations,
        sum(d.flagged) / cast(sum(d.observations) as double) as flagged_rate,
        sum(d.explained) / cast(sum(d.observations) as double) as explained_rate,
        cast(sum(d.abs_delta) as double) / cast(sum(d.observations) as double) as mean_abs_delta,
        cast(sum(d.abs_real_delta) as double) / cast(sum(d.observations) as double) as mean_abs_real_delta,
        cast(sum(d.delta) as double) / cast(sum(d.observations) as double) as signed_bias,
        sum(d.value_cents) / 100.0 as value_delta
    from days d
    left join locations l on l.location_id = d.location_id
    group by 1, 2, 3, 4, 5
)

select * from final
order by abc_class, location_id, system, week
