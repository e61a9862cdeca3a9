-- explain/identity: how each system names the SKU, the kits it is part of, and ids left
-- unmapped that resemble it (same letters and digits, or carrying its product id).
with sku as (
    select * from skus where sku = :sku
),

final as (
    select 'alias' as kind, a.system, a.external_id as id, cast(null as varchar) as detail
    from sku_aliases a where a.sku = :sku
    union all
    select 'kit', cast(null as varchar), b.bundle_sku, 'contains ' || cast(b.qty as varchar)
    from bundles b where b.component_sku = :sku
    union all
    select 'unmapped', u.system, u.external_id,
           cast(u.rows as varchar) || ' rows, ' || coalesce(cast(u.units as varchar), '?') || ' units, '
           || cast(u.first_seen as varchar) || ' … ' || cast(u.last_seen as varchar)
    from unmapped_skus u cross join sku s
    where lower(regexp_replace(u.external_id, '[^A-Za-z0-9]', '', 'g')) = lower(regexp_replace(s.sku, '[^A-Za-z0-9]', '', 'g'))
       or strpos(u.external_id, s.product_id) > 0
)

select * from final order by kind, system, id
