-- positions: the true stock of each SKU at each location on each day.
--
-- The buckets come from the location's authoritative system. Units in transit between the
-- merchant's own locations come from the transfer ledger and are counted once, at the
-- destination: the sending system reports them as outbound and the receiving system as
-- incoming, so adding the systems' own in-transit figures would count every transfer twice.
with snapshots as (
    select * from stg_snapshots
),

authority as (
    select * from stg_authority
),

transfers as (
    select * from stg_transfers
),

authoritative as (
    select
        s.*,
        a.region,
        a.location_type,
        a.authoritative_system
    from snapshots s
    join authority a
        on a.location_id = s.location_id and a.authoritative_system = s.system
),

in_transit as (
    select
        p.snapshot_date,
        p.sku,
        p.location_id,
        sum(t.units) as units
    from authoritative p
    join transfers t
        on t.sku = p.sku and t.location_id = p.location_id
    where t.shipped_day <= p.day_number
      and (t.received_day is null or t.received_day > p.day_number)
    group by p.snapshot_date, p.sku, p.location_id
),

final as (
    select
        a.snapshot_date,
        a.sku,
        a.location_id,
        a.region,
        a.location_type,
        a.authoritative_system,
        a.on_hand,
        a.available,
        a.committed,
        a.reserved,
        a.inbound,
        coalesce(t.units, 0) as in_transit,
        a.unsellable,
        a.pending_inspection,
        a.unit_cost,
        a.on_hand * a.unit_cost as on_hand_value
    from authoritative a
    left join in_transit t
        on t.snapshot_date = a.snapshot_date and t.sku = a.sku and t.location_id = a.location_id
)

select * from final
