-- variances: every other system measured against the authoritative one, per day, SKU and
-- location.
--
-- Compared bucket: on_hand where both systems report it, else available (a storefront
-- exporting only available quantities is compared on those). `bucket` says which.
-- Flagged (SPEC §5): |delta| > max(flag_pct × |authoritative_qty|, flag_units).
-- Explained (temporal, not an error), first match wins:
--   in_transit  the system is ahead by no more than the units on their way to this location
--               (plus the tolerance): it already counts a transfer that has not arrived;
--   receiving   the system is ahead by no more than the units the authoritative system has
--               inbound (plus the tolerance): it counts stock still being received;
--   lag         the system equals the authoritative value of one of the previous lag_days days
--               (lag_days then says how many days behind it is).
--
-- Built for the days $first_day to $last_day at a time, reading only the partitions of
-- $compared_systems: the systems that report some location they are not authoritative at
-- (from `coverage`; stocktake fills them in). This model leaves lag_days NULL
-- and the lag explanation out: stocktake matches lags after it (src/marts/lag.rs), for
-- the rows with a delta only (about one in nine), instead of carrying each position's
-- previous days through the join for every row.
-- The systems' rows come from `snapshots`, not `stg_snapshots`: a row is compared only
-- where the position has a number, and positions take their numbers from stg_snapshots,
-- which leaves bundles out. Read straight from the table, DataFusion knows how many rows
-- there are and hashes the smaller side of the join.
with snapshots as (
    select system, location_id, sku, snapshot_date, on_hand, available
    from snapshots
    where snapshot_date >= $first_day and snapshot_date <= $last_day
      and system in ($compared_systems)
),

positions as (
    select * from positions
    where snapshot_date >= $first_day and snapshot_date <= $last_day
),

thresholds as (
    select * from thresholds
),

compared as (
    select
        s.snapshot_date,
        s.sku,
        s.location_id,
        p.region,
        s.system,
        p.authoritative_system,
        case when s.on_hand is not null and p.on_hand is not null then 'on_hand' else 'available' end as bucket,
        case when s.on_hand is not null and p.on_hand is not null then s.on_hand else s.available end as system_qty,
        case when s.on_hand is not null and p.on_hand is not null then p.on_hand else p.available end as authoritative_qty,
        p.in_transit,
        p.inbound as authoritative_inbound,
        p.unit_cost
    from positions p
    join snapshots s
        on p.snapshot_date = s.snapshot_date and p.sku = s.sku and p.location_id = s.location_id
    where s.system <> p.authoritative_system
),

measured as (
    select
        c.*,
        c.system_qty - c.authoritative_qty as delta,
        case when c.authoritative_qty <> 0
             then cast(c.system_qty - c.authoritative_qty as double) / abs(cast(c.authoritative_qty as double))
        end as pct_delta,
        greatest(t.flag_pct * abs(c.authoritative_qty), t.flag_units) as tolerance,
        abs(c.system_qty - c.authoritative_qty) > greatest(t.flag_pct * abs(c.authoritative_qty), t.flag_units) as flagged
    from compared c
    cross join thresholds t
    where c.system_qty is not null and c.authoritative_qty is not null
),

final as (
    select
        m.snapshot_date,
        m.sku,
        m.location_id,
        m.region,
        m.system,
        m.authoritative_system,
        m.bucket,
        m.system_qty,
        m.authoritative_qty,
        m.delta,
        m.pct_delta,
        m.flagged,
        case
            when m.delta = 0 then null
            when m.in_transit > 0 and m.delta > 0 and m.delta <= m.in_transit + m.tolerance then 'in_transit'
            when m.authoritative_inbound > 0 and m.delta > 0 and m.delta <= m.authoritative_inbound + m.tolerance then 'receiving'
        end as explained_by,
        cast(null as bigint) as lag_days,
        m.delta * m.unit_cost as value_delta,
        m.in_transit
    from measured m
)

select * from final
