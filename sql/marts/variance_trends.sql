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

final as (
    select
        arrow_cast(date_trunc('week', v.snapshot_date), 'Date32') as week,
        coalesce(c.abc_class, 'C') as abc_class,
        v.location_id,
        v.region,
        v.system,
        count(*) as observations,
        avg(case when v.flagged and v.explained_by is null then 1.0 else 0.0 end) as flagged_rate,
        avg(case when v.flagged and v.explained_by is not null then 1.0 else 0.0 end) as explained_rate,
        avg(abs(v.delta)) as mean_abs_delta,
        avg(case when v.explained_by is null then abs(v.delta) else 0 end) as mean_abs_real_delta,
        avg(v.delta) as signed_bias,
        -- Summed in whole cents: integer-valued floats add up exactly in any order, so
        -- parallel aggregation gives the same figure on every run.
        sum(case when v.flagged and v.explained_by is null then round(abs(v.value_delta) * 100) else 0 end) / 100.0 as value_delta
    from variances v
    left join classes c on c.sku = v.sku
    group by 1, 2, 3, 4, 5
)

select * from final
order by abc_class, location_id, system, week
