-- Each test query returns the rows that break a rule; a passing test returns none.
-- They run on the rows just computed for the days $first_day to $last_day, which `positions`
-- stands for here.
-- One position per day, SKU and location.
select snapshot_date, sku, location_id, count(*) as n
from positions
where snapshot_date >= $first_day and snapshot_date <= $last_day
group by snapshot_date, sku, location_id
having count(*) > 1;

-- Every position carries its region and authoritative system.
select * from positions
where snapshot_date >= $first_day and snapshot_date <= $last_day
  and (region is null or authoritative_system is null);
