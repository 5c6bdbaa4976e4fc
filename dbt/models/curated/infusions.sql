-- Grain: one row per coi_id x batch_id (latest ingested version). See curated.yml.
with latest as (
    {{ latest_per_key(ref('stg_clinic__infusions'), ['coi_id', 'batch_id']) | indent(4) }}
)

select
    *,
    {{ run_id() }} as _run_id
from latest
