-- Worst systems this month: for the month of the newest snapshot, per system, the share of
-- SKU-location-days out beyond tolerance with nothing temporal to explain it, and the
-- money those differences represent. The system at the top is the one to fix first.
with month as (
    select date_trunc('month', max(snapshot_date)) as start from variances
)
select v.system,
       count(*) as compared,
       sum(case when v.flagged and v.explained_by is null then 1 else 0 end) as unexplained,
       round(avg(case when v.flagged and v.explained_by is null then 1.0 else 0.0 end), 4) as unexplained_rate,
       round(sum(case when v.flagged and v.explained_by is null then abs(v.value_delta) else 0 end), 2) as value_at_stake
from variances v, month m
where v.snapshot_date >= m.start
group by v.system
order by unexplained_rate desc, value_at_stake desc;
