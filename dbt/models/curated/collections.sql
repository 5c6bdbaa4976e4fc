-- Grain: one row per din (latest ingested version). See curated.yml.
with latest as (
    {{ latest_per_key(ref('stg_apheresis__collections'), ['din']) | indent(4) }}
)

select
    *,
    {{ run_id() }} as _run_id
from latest
