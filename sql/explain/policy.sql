-- explain/policy: what each system holds back — the newest snapshot's buckets per system
-- and location — beside the channel buffers recommended for the SKU.
with scoped as (
    select * from snapshots where sku = :sku and (:location is null or location_id = :location)
),

newest as (
    select system, location_id, max(snapshot_date) as day from scoped group by system, location_id
),

final as (
    select s.location_id, s.system, s.snapshot_date, s.on_hand, s.available, s.committed, s.reserved,
           s.inbound, s.in_transit, s.unsellable
    from scoped s
    join newest n on n.system = s.system and n.location_id = s.location_id and n.day = s.snapshot_date
)

select * from final order by location_id, system
