-- explain/since: every movement at the location after the last day all systems agreed,
-- oldest first: the cause of the disagreement is among these.
select event_at, system, kind, qty, reason_code, reference, counterparty_location
from movements
where sku = :sku and location_id = :location and arrow_cast(event_at, 'Date32') > :agreed_on
order by event_at, system
