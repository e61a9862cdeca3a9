-- They run on the rows just computed for the days $first_day to $last_day, which `variances`
-- stands for here.
-- delta is system − authoritative, and never measures a system against itself.
select * from variances
where snapshot_date >= $first_day and snapshot_date <= $last_day
  and (delta <> system_qty - authoritative_qty or system = authoritative_system);

-- explained_by takes only the documented values.
select * from variances
where snapshot_date >= $first_day and snapshot_date <= $last_day
  and explained_by is not null and explained_by not in ('in_transit', 'receiving', 'lag');
