-- An exception never closes before it opens, and an open one has no close date.
select * from exceptions where closed_on < opened_on or days_open < 0;

select * from exceptions where (status = 'open') <> (closed_on is null);
