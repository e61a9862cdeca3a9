-- Units sold, one row per sale in the movements ledger (kits already exploded into their
-- components). A pipeline names one ledger per movement: sales are taken as is. Every
-- reader sums units over its own grouping, so no grouping happens here (a grouped view
-- would be computed in full before the reader's filters and sums).
-- load_date is kept so that a query over recent sales reads only recent partitions, and
-- event_at so that a reader's window is a comparison of instants (`event_at >= DATE 'd'` is
-- folded to one timestamp) instead of a date computed for every row and then compared.
with sales as (
    select * from movements where kind = 'sale'
),

final as (
    select
        arrow_cast(event_at, 'Date32') as sale_date,
        event_at,
        location_id,
        sku,
        load_date,
        -qty as units
    from sales
)

select * from final
