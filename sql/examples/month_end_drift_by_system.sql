-- Month-end drift by system: the mean signed difference in the last three days of each
-- month against the other days. A system that jumps at month end is being adjusted to
-- close the books, not kept in step (see drift_patterns, pattern = 'month_end').
select system,
       round(avg(case when extract(day from snapshot_date + interval '3 days') <= 3 then delta end), 2) as month_end_bias,
       round(avg(case when extract(day from snapshot_date + interval '3 days') > 3 then delta end), 2) as other_days_bias,
       count(*) as compared
from variances
group by system
order by abs(coalesce(month_end_bias, 0) - coalesce(other_days_bias, 0)) desc;
