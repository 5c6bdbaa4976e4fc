-- Grain: one row per batch_id (latest ingested version). See curated.yml.
with latest as (
    {{ latest_per_key(ref('stg_mes__batches'), ['batch_id']) | indent(4) }}
)

select
    *,
    {{ run_id() }} as _run_id
from latest
