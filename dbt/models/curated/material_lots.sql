-- Grain: one row per material_lot_id (latest ingested version). See curated.yml.
with latest as (
    {{ latest_per_key(ref('stg_erp__material_lots'), ['material_lot_id']) | indent(4) }}
)

select
    *,
    {{ run_id() }} as _run_id
from latest
