-- Units sold per day, SKU and location, from the movements ledger (kits already exploded
-- into their components). A pipeline names one ledger per movement: sales are summed as is.
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
        -sum(qty) as units
    from sales
    group by arrow_cast(event_at, 'Date32'), location_id, sku, load_date
)

select * from final
