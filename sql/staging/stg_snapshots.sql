-- Snapshot rows of stocked SKUs, with unit cost and a day number for date arithmetic.
-- Bundles are left out: a kit's stock is its components'.
with snapshots as (
    select * from snapshots
),

skus as (
    select sku, unit_cost, is_bundle from skus
),

final as (
    select
        s.system,
        s.location_id,
        s.sku,
        s.snapshot_date,
        arrow_cast(s.snapshot_date, 'Int32') as day_number,
        s.on_hand,
        s.available,
        s.committed,
        s.reserved,
        s.inbound,
        s.in_transit,
        s.unsellable,
        s.pending_inspection,
        k.unit_cost
    from snapshots s
    join skus k on k.sku = s.sku
    where not k.is_bundle
)

select * from final
