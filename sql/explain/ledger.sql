-- explain/ledger: the SKU's movements over the 14 days up to the newest one, at the
-- location (or everywhere); adjustments without a reason code are the ones to chase.
with scoped as (
    select * from movements where sku = :sku and (:location is null or location_id = :location)
),

newest as (
    select max(event_at) as at from scoped
),

final as (
    select s.event_at, s.location_id, s.system, s.kind, s.qty, s.reason_code, s.reference
    from scoped s cross join newest n
    where s.event_at > n.at - interval '14 days'
)

select * from final order by event_at, location_id, system
