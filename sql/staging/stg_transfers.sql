-- Transfers between the merchant's own locations, from the movements ledger: one row per
-- transfer reference and SKU, attributed to its destination, with the day it shipped and
-- the day it arrived (NULL while still on the road). The same transfer exported by two
-- ledgers is counted once.
with movements as (
    select distinct location_id, sku, kind, qty, reference, counterparty_location, event_at
    from movements
    where reference is not null
),

shipped as (
    select
        reference,
        sku,
        counterparty_location as location_id,
        min(arrow_cast(arrow_cast(event_at, 'Date32'), 'Int32')) as shipped_day,
        -sum(qty) as units
    from movements
    where kind = 'transfer_out' and counterparty_location is not null
    group by reference, sku, counterparty_location
),

received as (
    select
        reference,
        sku,
        location_id,
        min(arrow_cast(arrow_cast(event_at, 'Date32'), 'Int32')) as received_day
    from movements
    where kind = 'transfer_in'
    group by reference, sku, location_id
),

final as (
    select
        s.reference,
        s.sku,
        s.location_id,
        s.shipped_day,
        r.received_day,
        s.units
    from shipped s
    left join received r
        on r.reference = s.reference and r.sku = s.sku and r.location_id = s.location_id
)

select * from final
