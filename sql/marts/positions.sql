-- positions: the true stock of each SKU at each location on each day.
--
-- The buckets come from the location's authoritative system. Units in transit between the
-- merchant's own locations come from the transfer ledger and are counted once, at the
-- destination: the sending system reports them as outbound and the receiving system as
-- incoming, so adding the systems' own in-transit figures would count every transfer twice.
--
-- Built for the days $first_day to $last_day at a time (stocktake fills them in).
with snapshots as (
    select * from stg_snapshots
    where snapshot_date >= $first_day and snapshot_date <= $last_day
),

authority as (
    select * from stg_authority
),

transfers as (
    select * from stg_transfers
),

authoritative as (
    select s.*
    from snapshots s
    join authority a
        on a.location_id = s.location_id and a.authoritative_system = s.system
),

days as (
    select distinct snapshot_date, day_number from snapshots
),

-- Units on the road to each location at the end of each day. A position exists where the
-- authoritative system reports the SKU or units are on their way to it, so transfers stay
-- counted even on a day the destination's snapshot line was quarantined.
in_transit as (
    select
        d.snapshot_date,
        t.sku,
        t.location_id,
        sum(t.units) as units
    from days d
    join transfers t
        on t.shipped_day <= d.day_number
       and (t.received_day is null or t.received_day > d.day_number)
    group by d.snapshot_date, t.sku, t.location_id
),

final as (
    select
        coalesce(a.snapshot_date, t.snapshot_date) as snapshot_date,
        coalesce(a.sku, t.sku) as sku,
        coalesce(a.location_id, t.location_id) as location_id,
        l.region,
        l.location_type,
        l.authoritative_system,
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
    full outer join in_transit t
        on t.snapshot_date = a.snapshot_date and t.sku = a.sku and t.location_id = a.location_id
    join authority l
        on l.location_id = coalesce(a.location_id, t.location_id)
)

select * from final
