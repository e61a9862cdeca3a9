-- Variance trend of class A at one location: week by week, per system, how often the
-- system was out beyond tolerance (unexplained), its signed bias, and whether the
-- Mann–Kendall trend over the trailing weeks says it is getting worse.
-- Change the location to yours.
select week, system, observations, round(flagged_rate, 3) as flagged_rate,
       round(signed_bias, 2) as signed_bias, value_delta, direction, round(p_value, 4) as p_value
from variance_trends
where abc_class = 'A' and location_id = 'STORE-NYC'
order by system, week;
