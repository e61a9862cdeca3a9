-- Each location with its type, region, and the system whose number is true there
-- (the pipeline's [authority] table: store → POS, 3pl → the 3PL's WMS, fba → Seller Central…).
with locations as (
    select * from locations
),

authority as (
    select * from authority
),

final as (
    select
        l.location_id,
        l.location_type,
        l.region,
        a.system as authoritative_system
    from locations l
    left join authority a on a.location_type = l.location_type
)

select * from final
