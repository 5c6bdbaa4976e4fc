-- Grain: one row per batch_id x step_seq (latest ingested version). See curated.yml.
with latest as (
    {{ latest_per_key(ref('stg_mes__process_steps'), ['batch_id', 'step_seq']) | indent(4) }}
)

select
    *,
    {{ run_id() }} as _run_id
from latest
