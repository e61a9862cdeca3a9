-- positions: the true stock of each SKU at each location on each day.
--
-- The buckets come from the location's authoritative system. Units in transit between the
-- merchant's own locations come from the transfer ledger and are counted once, at the
-- destination: the sending system reports them as outbound and the receiving system as
-- incoming, so adding the systems' own in-transit figures would count every transfer twice.
--
-- Built for the days $first_day to $last_day at a time (stocktake fills them in, and
-- $authoritative_systems: the systems authoritative at some location, so that the scan skips
-- the partitions of the others, whose rows the join below would drop).
-- DataFusion hashes the left side of a join unless it can tell that side is the larger, and
-- it guesses a join of the locations to the snapshots at 40 rows. So the SKUs (20 k at tier M)
-- come first, hashed and looked up by every row read, and the locations' authority after:
-- written the other way round, the ~1 M authoritative rows of a 14-day chunk were hashed to
-- look up 20 k SKUs (0.30 instead of 0.18 CPU-s for the two joins).
with snapshots as (
    select * from snapshots
    where snapshot_date >= $first_day and snapshot_date <= $last_day
      and system in ($authoritative_systems)
),

skus as (
    select sku, unit_cost, is_bundle from skus
),

authority as (
    select * from stg_authority
),

transfers as (
    select * from stg_transfers
),

-- Bundles are left out, as in stg_snapshots: a kit's stock is its components'.
authoritative as (
    select s.*, arrow_cast(s.snapshot_date, 'Int32') as day_number
    from authority a
    join (
        select s.*, k.unit_cost
        from skus k
        join snapshots s on s.sku = k.sku
        where not k.is_bundle
    ) s
        on s.location_id = a.location_id and s.system = a.authoritative_system
),

-- Read from the partition column alone.
days as (
    select distinct snapshot_date, arrow_cast(snapshot_date, 'Int32') as day_number from snapshots
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

located as (
    select
        coalesce(a.snapshot_date, t.snapshot_date) as snapshot_date,
        coalesce(a.sku, t.sku) as sku,
        coalesce(a.location_id, t.location_id) as location_id,
        a.on_hand,
        a.available,
        a.committed,
        a.reserved,
        a.inbound,
        coalesce(t.units, 0) as in_transit,
        a.unsellable,
        a.pending_inspection,
        a.unit_cost
    from authoritative a
    full outer join in_transit t
        on t.snapshot_date = a.snapshot_date and t.sku = a.sku and t.location_id = a.location_id
),

final as (
    select
        p.snapshot_date,
        p.sku,
        p.location_id,
        l.region,
        l.location_type,
        l.authoritative_system,
        p.on_hand,
        p.available,
        p.committed,
        p.reserved,
        p.inbound,
        p.in_transit,
        p.unsellable,
        p.pending_inspection,
        p.unit_cost,
        p.on_hand * p.unit_cost as on_hand_value
    from authority l
    join located p on p.location_id = l.location_id
)

select * from final
