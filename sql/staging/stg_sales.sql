-- Units sold, one row per sale in the movements ledger (kits already exploded into their
-- components). A pipeline names one ledger per movement: sales are taken as is. Every
-- reader sums units over its own grouping, so no grouping happens here (a grouped view
-- would be computed in full before the reader's filters and sums).
-- load_date is kept so that a query over recent sales reads only recent partitions.
with sales as (
    select * from movements where kind = 'sale'
),

final as (
    select
        arrow_cast(event_at, 'Date32') as sale_date,
        location_id,
        sku,
        load_date,
        -qty as units
    from sales
)

select * from final
