-- Each test query returns the rows that break a rule; a passing test returns none.
-- One position per day, SKU and location.
select snapshot_date, sku, location_id, count(*) as n
from positions
group by snapshot_date, sku, location_id
having count(*) > 1;

-- Every position carries its region and authoritative system.
select * from positions where region is null or authoritative_system is null;
